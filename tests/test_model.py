"""The generator architecture, the paper's weights unchanged, and the project's checkpoint format."""

import numpy as np
import pytest
import torch

from backend.checkpoint import load_generator, save_checkpoint
from backend.errors import CheckpointError
from backend.generate import InferenceGenerator
from backend.model import Generator, GeneratorConfig


def test_official_weights_reproduce_the_test_vectors(official_generator_path, vectors_dir):
    loaded = load_generator(official_generator_path)
    assert loaded.kind == "official"
    mel = np.load(vectors_dir / "ref_audio_mel.npz")["mel"]
    v = np.load(vectors_dir / "official_generator_vectors.npz")
    fast = InferenceGenerator(loaded.model)
    for chunk in ("chunk60", "chunk20"):
        a, b = v[f"{chunk}_mel_range"]
        noise, want = v[f"{chunk}_noise"], v[f"{chunk}_motion"]
        with torch.inference_mode():
            plain = loaded.model(torch.from_numpy(mel[a:b])[None], torch.from_numpy(noise)[None])[0].numpy()
        assert np.abs(plain - want).max() < 1e-4, "the module itself"
        assert np.abs(fast(mel[a:b], noise) - want).max() < 1e-4, "the fast inference path"


def _changed_frames(model, mel, noise, mel2, noise2):
    with torch.inference_mode():
        diff = (model(mel2, noise2) - model(mel, noise)).abs().amax(dim=(0, 2, 3))
    return torch.nonzero(diff > 0).flatten()


def test_receptive_field_bounds_the_influence_of_the_input(any_model):
    """Perturbing the music (or the noise) far from a frame must not change that frame: the basis
    of exact windows. The music reaches the decoder's ±258 frames plus the encoder's ±6 (the
    paper's) or ±9 (the light one)."""
    mel, noise = torch.rand(1, 90 * 40, 128), torch.randn(1, 40, 8)
    reach = any_model.decoder_reach() + any_model.encoder.reach_mel // 3
    mel2 = mel.clone()
    mel2[:, 1800:1803] += 1.0  # 30 Hz frame 600
    changed = _changed_frames(any_model, mel, noise, mel2, noise)
    assert changed.min() >= 600 - reach and changed.max() <= 600 + reach
    assert changed.max() - changed.min() > reach  # and it really reaches that far
    noise2 = noise.clone()
    noise2[:, 20] += 3.0  # second 20 = frames 600..629
    changed = _changed_frames(any_model, mel, noise, mel, noise2)
    rf = any_model.receptive_field_frames()
    assert len(changed) > 0 and changed.min() >= 600 - rf and changed.max() <= 629 + rf


def test_project_checkpoint_round_trip_with_metadata(random_model, tmp_path):
    meta = {"trained_on": {"corpus": "unit-test"}, "evaluation": {"ictus_f": 0.5}}
    digest = save_checkpoint(random_model, tmp_path / "g.pt", meta)
    loaded = load_generator(tmp_path / "g.pt")
    assert loaded.kind == "baton" and loaded.sha256 == digest
    assert loaded.meta["trained_on"] == {"corpus": "unit-test"} and "torch" in loaded.meta["versions"]
    for k, v in random_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)
    assert not loaded.model.training


def test_project_checkpoint_keeps_its_architecture(tmp_path):
    cfg = GeneratorConfig(decoder_layers=4, encoder_channels=(8, 16, 16))
    save_checkpoint(Generator(cfg), tmp_path / "small.pt")
    assert load_generator(tmp_path / "small.pt").model.cfg == cfg


def _corrupt_cases(model, d):
    save_checkpoint(model, d / "good.pt")
    good = (d / "good.pt").read_bytes()
    (d / "truncated.pt").write_bytes(good[: len(good) // 2])
    (d / "garbage.pt").write_bytes(b"not a checkpoint at all" * 100)
    (d / "empty.pt").write_bytes(b"")
    payload = torch.load(d / "good.pt", weights_only=True)
    payload["state_dict"]["decoder.linear.bias"] += 1.0
    torch.save(payload, d / "edited.pt")
    torch.save({"weight": torch.zeros(3)}, d / "foreign.pt")
    torch.save([1, 2, 3], d / "list.pt")
    payload = torch.load(d / "good.pt", weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, d / "future.pt")
    return {"truncated.pt": "corrupt", "garbage.pt": "corrupt", "empty.pt": "corrupt",
            "edited.pt": "hash", "foreign.pt": "not a generator", "list.pt": "not a generator",
            "future.pt": "version 99", "missing.pt": "no such"}


def test_bad_checkpoints_give_clear_errors(random_model, tmp_path):
    for name, reason in _corrupt_cases(random_model, tmp_path).items():
        with pytest.raises(CheckpointError, match=reason) as e:
            load_generator(tmp_path / name)
        assert name in str(e.value)


def test_official_file_with_a_missing_tensor_is_refused(official_generator_path, tmp_path):
    state = torch.load(official_generator_path, map_location="cpu", weights_only=True)
    del state["tcn.fc.4.bias"]
    torch.save(state, tmp_path / "broken_official.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_generator(tmp_path / "broken_official.pt")


def test_checkpoints_with_unusable_configs_are_refused(random_model, tmp_path):
    from backend.checkpoint import content_sha256
    save_checkpoint(random_model, tmp_path / "good.pt")
    for name, change, reason in [("channels", {"encoder_channels": [16, 32]}, "encoder_channels"),
                                 ("bins", {"mel_bins": 64}, "mel_bins"),
                                 ("kernel", {"kernel_size": 4}, "odd"),
                                 ("encoder", {"encoder": "transformer"}, "encoder must be one of")]:
        payload = torch.load(tmp_path / "good.pt", weights_only=True)
        payload["config"] = payload["config"] | change
        payload["sha256"] = content_sha256(payload["config"], payload["state_dict"])  # consistent, still unusable
        torch.save(payload, tmp_path / f"{name}.pt")
        with pytest.raises(CheckpointError, match=reason):
            load_generator(tmp_path / f"{name}.pt")
    payload = torch.load(tmp_path / "good.pt", weights_only=True)
    payload["state_dict"] = [1, 2]
    torch.save(payload, tmp_path / "notdict.pt")
    with pytest.raises(CheckpointError, match="not a mapping of tensors"):
        load_generator(tmp_path / "notdict.pt")


def test_official_file_with_mismatched_weight_norm_is_refused(official_generator_path, tmp_path):
    state = torch.load(official_generator_path, map_location="cpu", weights_only=True)
    state["tcn.TCN.tcn.tcn.network.0.conv1.weight_g"] = torch.ones(3, 1, 1)
    torch.save(state, tmp_path / "bad_g.pt")
    with pytest.raises(CheckpointError, match="malformed weights"):
        load_generator(tmp_path / "bad_g.pt")


def test_checkpoint_metadata_is_stored_as_plain_json(random_model, tmp_path):
    from pathlib import Path
    save_checkpoint(random_model, tmp_path / "g.pt", {"evaluation": {"ictus_f": np.float64(0.5)}})
    meta = load_generator(tmp_path / "g.pt").meta  # a numpy scalar would not pass torch's safe loader
    assert meta["evaluation"] == {"ictus_f": 0.5} and type(meta["evaluation"]["ictus_f"]) is float
    with pytest.raises(ValueError, match="plain JSON"):
        save_checkpoint(random_model, tmp_path / "h.pt", {"data": Path("/corpus")})
    assert not (tmp_path / "h.pt").exists()
