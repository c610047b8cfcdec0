"""Training end to end on a tiny corpus: building it (parallel, resumable, split by work), both
stages for a few steps (resuming gives the same continuation; two processes through torchrun with
gloo), the evaluation table, and the generator loading into the engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.checkpoint import load_generator, save_checkpoint
from backend.errors import CheckpointError
from backend.model import Generator, GeneratorConfig
from training.build_corpus import BuildConfig, build, read_index
from training.dataset import Corpus, CorpusError

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ["works=6", "bars=4"]
S1 = ["--clip-seconds", "3", "--batch-size", "3", "--easy-steps", "1", "--eval-pairs", "4", "--log-every", "1",
      "--shift-max", "2", "--eval-every", "100", "--save-every", "2"]
SB = ["--clip-seconds", "3", "--batch-size", "2", "--eval-every", "2", "--save-every", "2", "--log-every", "1",
      "--channels", "8", "--layers", "3", "--no-cosine"]  # the cosine schedule spans max_steps: resuming
# with another max_steps (as the resume test does) reshapes it
S2 = ["--seconds", "3", "--batch-size", "2", "--n-critic", "2", "--eval-every", "100", "--eval-crops", "2",
      "--save-every", "2", "--log-every", "1", "--final-eval-items", "0"]


def _cfg(out: Path, **kw) -> BuildConfig:
    return BuildConfig(out=str(out), source="demo", source_opt=SOURCE, clip_seconds=10, min_clip_seconds=5,
                       val_fraction=0.2, test_fraction=0.3, **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    summary = build(_cfg(out, jobs=2), progress=False)
    assert not summary["last_run"]["failures"]
    return out


@pytest.fixture(scope="module")
def stage1(corpus, tmp_path_factory) -> Path:
    from training import train_stage1
    out = tmp_path_factory.mktemp("stage1")
    train_stage1.main(["--corpus", str(corpus), "--out-dir", str(out), "--max-steps", "4"] + S1)
    return out


@pytest.fixture(scope="module")
def beats(corpus, tmp_path_factory) -> Path:
    from training import train_beats
    out = tmp_path_factory.mktemp("beats")
    train_beats.main(["--corpus", str(corpus), "--out-dir", str(out), "--max-steps", "4"] + SB)
    return out


def _run_stage2(corpus: Path, stage1: Path, out: Path, steps: int, extra: list[str] = ()) -> None:
    from training import train_stage2
    train_stage2.main(["--corpus", str(corpus), "--stage1", str(stage1 / "m2snet.pt"), "--out-dir", str(out),
                       "--max-steps", str(steps)] + S2 + list(extra))


def _state(path: Path, key: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)[key]


# -- corpus -------------------------------------------------------------------------------------------

def test_corpus_layout_splits_by_work(corpus):
    index = read_index(corpus)
    assert len(index) == 12
    split_of_work = {}
    for rec in index.values():
        assert split_of_work.setdefault(rec["work_id"], rec["split"]) == rec["split"], "a work spans two splits"
    assert {"train", "val", "test"} <= set(split_of_work.values())
    for split in ("train", "val", "test"):
        c = Corpus(corpus, split)
        for clip in c.clips:
            mel, motion = np.load(clip.path / "mel.npy"), np.load(clip.path / "motion.npy")
            assert mel.shape[1] == 128 and motion.shape[1:] == (13, 2)
            assert len(mel) == 3 * len(motion) and len(motion) % 30 == 0  # whole seconds, aligned
            assert 0.3 < motion[..., 0].mean() < 0.7 and 0.0 <= mel.min() and mel.max() <= 1.0
            assert clip.motion_3d().shape == (len(motion), 13, 3)
            beats, downbeats = clip.beats()
            assert len(beats) >= 2 and np.all((beats >= 0) & (beats < len(motion) / 30))
            assert set(np.round(downbeats, 6)) <= set(np.round(beats, 6))
            assert clip.provenance["work_id"] == clip.work_id
            assert split_of_work[clip.work_id] == split


def test_corpus_build_resumes_to_the_same_corpus(corpus, tmp_path):
    """An interrupted build (here: limited to 5 items) finished later equals a build in one go,
    and re-running a finished build does nothing."""
    partial = tmp_path / "c"
    assert build(_cfg(partial, limit=5), progress=False)["splits"]["train"]["items"] < 12
    (partial / ".staging" / "junk").mkdir(parents=True)  # what a killed worker leaves
    build(_cfg(partial), progress=False)
    strip = lambda d: {k: {f: v for f, v in r.items() if f != "render_s"} for k, r in d.items()}
    assert strip(read_index(partial)) == strip(read_index(corpus))
    assert not (partial / ".staging").exists()
    for rel in ("train/3/mel.npy", "test/1/motion.npy"):
        assert (partial / rel).read_bytes() == (corpus / rel).read_bytes()
    mtime = (partial / "train/0/mel.npy").stat().st_mtime_ns
    again = build(_cfg(partial), progress=False)
    assert again["runs"] == 3 and (partial / "train/0/mel.npy").stat().st_mtime_ns == mtime
    assert len((partial / "index.jsonl").read_text().splitlines()) == 12


def test_corpus_errors_name_the_problem(tmp_path, corpus):
    with pytest.raises(CorpusError, match="no such corpus folder"):
        Corpus(tmp_path / "nowhere", "train")
    with pytest.raises(CorpusError, match="no 'bogus' split.*test, train, val"):
        Corpus(corpus, "bogus")
    bad = tmp_path / "bad" / "train" / "0"
    bad.mkdir(parents=True)
    np.save(bad / "mel.npy", np.zeros((90, 64), np.float32))
    np.save(bad / "motion.npy", np.zeros((30, 13, 2), np.float32))
    with pytest.raises(CorpusError, match=r"mel.npy: shape \(90, 64\), expected \(T, 128\)"):
        Corpus(tmp_path / "bad", "train")


def test_score_source_renders_music21_works_with_their_beats(tmp_path):
    """The shipped corpus' source: stable jobs over music21's corpus, quartet movements grouped into
    one work, and a rendered excerpt whose conducted beats are the score's, in the corpus layout."""
    from training.score_source import corpus_jobs, work_of
    jobs = list(corpus_jobs())
    assert len(jobs) > 400 and len({j.item_id for j in jobs}) == len(jobs)
    assert [j.item_id for j in jobs[:20]] == [j.item_id for j in list(corpus_jobs())[:20]]
    assert work_of("beethoven/opus18no1/movement3.mxl") == "beethoven/opus18no1"
    assert work_of("bach/bwv101.7.mxl") == "bach/bwv101.7"
    chorale = next(j for j in jobs if j.item_id.startswith("bach/bwv101.7@"))
    summary = build(BuildConfig(out=str(tmp_path / "c"), source="training.score_source:corpus_jobs",
                                source_opt=["works=3"], val_fraction=0, test_fraction=0), progress=False)
    assert not summary["last_run"]["failures"] and summary["splits"]["train"]["items"] >= 3
    for clip in Corpus(tmp_path / "c", "train").clips:
        beats, downbeats = clip.beats()
        period = np.diff(beats)
        assert len(beats) > 8 and 0.2 < np.median(period) < 1.6  # beats a conductor beats
        assert set(np.round(downbeats, 6)) <= set(np.round(beats, 6)) and len(downbeats) >= 2
        score_bars = np.asarray(clip.plan()["score_downbeats"]) - clip.plan().get("clip_start", 0.0)
        assert np.abs(downbeats[:, None] - score_bars[None]).min(axis=1).max() < 1e-3  # beaten on the score's bars
        render = clip.provenance["render"]
        assert render["music"].startswith("music21 corpus: ") and render["soundfont"].endswith(".sf2")
        assert -4 <= render["transpose"] <= 4 and render["metres"]
    piece = chorale.render()  # the same item renders to the same audio and motion
    again = chorale.render()
    assert np.array_equal(piece.audio, again.audio) and np.array_equal(piece.motion_3d, again.motion_3d)


def test_further_works_share_nothing_with_the_corpus_works():
    """The further works (more for the bar reader) are none of the corpus' works and no part of
    one: no Bach cantata and no Palestrina mass that the corpus' works come from."""
    from music21 import corpus
    from training.score_source import corpus_works, kin_of

    def kin(name):
        return kin_of(name, corpus.getWork(name))

    first, further = corpus_works(), corpus_works(further=1)
    assert kin("bach/bwv112.5-sc.mxl") == kin("bach/bwv112.5.mxl") == "bwv112"
    assert kin("palestrina/Credo_41_a.krn") == kin("palestrina/Credo_41_b.krn") == "palestrina Missa Quinti toni"
    assert kin("palestrina/Kyrie_41.krn") != kin("palestrina/Credo_41_a.krn")  # a file's number is not its mass
    assert kin("ryansMammoth/AcaciaReel.abc") != kin("ryansMammoth/AcrobatsHornpipe.abc")
    assert len(further) > 100 and not {kin(n) for n in first} & {kin(n) for n in further}
    assert {n.split("/")[0] for n in further} >= {"bach", "palestrina", "ryansMammoth"}


def test_corpora_join_into_one_split(corpus):
    one, both = Corpus(corpus, "train"), Corpus.joined(f"{corpus},{corpus}", "train")
    assert len(both) == 2 * len(one) and both.hours == pytest.approx(2 * one.hours)
    assert both.describe()["root"] == f"{corpus},{corpus}" and Corpus.joined(str(corpus), "val").describe()["root"] == str(corpus)
    with pytest.raises(CorpusError, match="no such corpus folder"):
        Corpus.joined(f"{corpus},{corpus}-missing", "train")
    with pytest.raises(CorpusError, match="no corpus folder named"):
        Corpus.joined(",", "train")


def test_conductormotion100_layout_loads_without_our_extras(tmp_path):
    """The real data set: 60 s clips with only mel.npy and motion.npy, no work ids."""
    for n in range(2):
        d = tmp_path / "cm100" / "train" / str(n)
        d.mkdir(parents=True)
        np.save(d / "mel.npy", np.random.rand(5400, 128).astype(np.float32))
        np.save(d / "motion.npy", (0.5 + 0.1 * np.random.rand(1800, 13, 2)).astype(np.float32))
    c = Corpus(tmp_path / "cm100", "train")
    assert len(c) == 2 and c.hours == pytest.approx(2 / 60) and c.clips[0].beats() is None
    assert c.clips[0].work_id != c.clips[1].work_id
    mel, motion = c.batch(c.sample_crops(np.random.default_rng(0), 3, 300), 300)
    assert mel.shape == (3, 900, 128) and motion.shape == (3, 300, 13, 2)


# -- stage 1 ------------------------------------------------------------------------------------------

def test_pairs_are_the_papers_easy_and_hard_negatives(corpus):
    from training.m2snet import draw_pairs
    clips = Corpus(corpus, "train").clips
    pairs = draw_pairs(np.random.default_rng(0), clips, 400, 90, 0.5, 0.5, 2.0)
    kinds = [p[4] for p in pairs]
    assert 120 < kinds.count("hard") < 280
    for i, a, j, b, kind in pairs:
        assert 0 <= a <= clips[i].frames - 90 and 0 <= b <= clips[j].frames - 90
        if kind == "hard":
            assert i == j and 15 <= abs(a - b) <= 60
        else:
            assert clips[i].work_id != clips[j].work_id


def test_stage1_trains_logs_and_resumes_exactly(corpus, stage1, tmp_path):
    log = [json.loads(x) for x in (stage1 / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "train"] == [1, 2, 3, 4]
    assert any(r["kind"] == "eval" and 0 <= r["acc"] <= 1 for r in log)
    assert all(np.isfinite(r["loss"]) for r in log if r["kind"] == "train")
    from training import train_stage1
    from training.m2snet import load_m2snet
    part = tmp_path / "s1"
    train_stage1.main(["--corpus", str(corpus), "--out-dir", str(part), "--max-steps", "2"] + S1)
    train_stage1.main(["--corpus", str(corpus), "--out-dir", str(part), "--max-steps", "4"] + S1)
    a, b = _state(stage1 / "state.pt", "model"), _state(part / "state.pt", "model")
    assert all(torch.equal(a[k], b[k]) for k in a)
    exported = load_m2snet(part / "m2snet.pt").model.state_dict()  # what stage 2 loads
    assert all(torch.equal(b[k], exported[k]) for k in b)
    with pytest.raises(SystemExit, match="lr=0.001, not 0.5"):
        train_stage1.main(["--corpus", str(corpus), "--out-dir", str(part), "--max-steps", "5", "--lr", "0.5"] + S1)


# -- stage 2 ------------------------------------------------------------------------------------------

def test_stage2_resumes_exactly_and_ships_a_checkpoint_the_engine_loads(corpus, stage1, tmp_path, demo_files):
    from backend.engine import generate_take
    from training.m2snet import load_m2snet
    full, part = tmp_path / "full", tmp_path / "part"
    _run_stage2(corpus, stage1, full, 4, ["--final-eval-items", "2"])
    _run_stage2(corpus, stage1, part, 2)
    _run_stage2(corpus, stage1, part, 4)
    for key in ("generator", "critic"):
        a, b = _state(full / "state.pt", key), _state(part / "state.pt", key)
        assert all(torch.equal(a[k], b[k]) for k in a), key
    # the generator starts from stage 1's music encoder, which stays frozen
    enc = load_m2snet(stage1 / "m2snet.pt").model.music_encoder.state_dict()
    loaded = load_generator(full / "generator.pt")
    assert loaded.kind == "baton"
    assert all(torch.equal(v, loaded.model.encoder.state_dict()[k]) for k, v in enc.items())
    meta = loaded.meta
    assert meta["trained_on"]["train"]["split"] == "train" and meta["trained_on"]["corpus_summary"]["hours"] > 0
    assert meta["step"] == 4 and "torch" in meta["versions"] and "train_stage2" in meta["command"]
    row = meta["evaluation"]["row"]
    assert meta["evaluation"]["pieces"] == 2 and 0 <= row["F"] <= 1 and row["jitter"] > 0 and "sync:stage1" in row
    log = [json.loads(x) for x in (full / "log.jsonl").read_text().splitlines()]
    train = [r for r in log if r["kind"] == "train"]
    assert len(train) == 4 and all(np.isfinite(r["loss_g"]) and r["gp"] >= 0 for r in train)
    take = generate_take(demo_files["wav"], engine="m2sgan", checkpoint=full / "generator.pt", seed=3)
    assert take.provenance["checkpoint_sha256"] == loaded.sha256
    assert take.keypoints_2d.shape[1:] == (13, 2) and np.isfinite(take.keypoints_3d).all()


def test_stage2_fine_tunes_from_a_generator_with_the_velocity_loss(corpus, stage1, tmp_path):
    """--init starts every weight from a Baton generator (with zero learning rates the weights stay
    the start's); --w-vel adds the velocity term, --best-draw runs; a mismatched or foreign start is
    refused."""
    start = tmp_path / "start"
    _run_stage2(corpus, stage1, start, 2)
    tuned = tmp_path / "tuned"
    _run_stage2(corpus, stage1, tuned, 1, ["--init", str(start / "generator.pt"), "--w-vel", "1", "--best-draw",
                                           "--lr-g", "0", "--lr-d", "0"])
    a = load_generator(start / "generator.pt").model.state_dict()
    b = load_generator(tuned / "generator.pt").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)
    first = [json.loads(x) for x in (tuned / "log.jsonl").read_text().splitlines()][0]
    assert first["vel"] > 0 and np.isfinite(first["loss_g"])

    other = Generator(GeneratorConfig(encoder="conv1d", decoder_layers=5))
    save_checkpoint(other, tmp_path / "other.pt")
    with pytest.raises(SystemExit, match="--init .*network; stage 1 makes"):
        _run_stage2(corpus, stage1, tmp_path / "bad", 1, ["--init", str(tmp_path / "other.pt")])
    with pytest.raises(SystemExit, match="--init: .*no such checkpoint"):
        _run_stage2(corpus, stage1, tmp_path / "bad2", 1, ["--init", str(tmp_path / "missing.pt")])
    official = ROOT.parent / "shared" / "reference" / "official" / "m2sgan_generator.pt"
    if official.exists():
        with pytest.raises(SystemExit, match="research use only"):
            _run_stage2(corpus, stage1, tmp_path / "bad3", 1, ["--init", str(official)])


def test_beat_tracker_trains_resumes_exactly_and_scores_held_out_works(corpus, beats, tmp_path):
    from training import train_beats
    from training.train_beats import beat_targets, clip_beats, load_beatnet
    part = tmp_path / "part"
    train_beats.main(["--corpus", str(corpus), "--out-dir", str(part), "--max-steps", "2"] + SB)
    train_beats.main(["--corpus", str(corpus), "--out-dir", str(part), "--max-steps", "4"] + SB)
    a, b = _state(beats / "state.pt", "model"), _state(part / "state.pt", "model")
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(x) for x in (beats / "log.jsonl").read_text().splitlines()]
    evals = [r for r in log if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4] and all(0 <= r["beat_f"] <= 1 for r in evals)
    model, meta = load_beatnet(beats / "beatnet.pt")
    assert meta["step"] == 4 and meta["config"] == {"channels": 8, "layers": 3} and "train_beats" in meta["command"]
    # labels: the plan's beats, 1 on the beat's frame and ½ beside it
    clip = Corpus(corpus, "train").clips[0]
    ref = clip_beats(clip)
    assert np.array_equal(ref, clip.beats()[0])
    y = beat_targets(ref, 0, clip.frames)
    f = int(round(ref[1] * 30))
    assert y[f] == 1 and y[f - 1] == y[f + 1] == 0.5 and y.sum() == pytest.approx(2 * len(ref), abs=2)
    (tmp_path / "junk.pt").write_bytes(b"not a tracker")
    with pytest.raises(CheckpointError, match="unreadable or corrupt beat tracker"):
        load_beatnet(tmp_path / "junk.pt")


def test_stage2_with_beats_stores_the_tracker_and_fine_tunes_a_beatless_generator(corpus, stage1, beats, tmp_path,
                                                                                   demo_files):
    """--beats puts the tracker inside the generator; --init from a generator without the beat input
    keeps its weights and starts the beat input at zero (--max-steps 0: stored as it starts); the
    engine conducts the tracker's beats."""
    from backend.engine import generate_take
    from backend.features import mel_features
    from backend.generate import InferenceGenerator
    from training import train_beats
    from training.train_beats import load_beatnet
    start = tmp_path / "start"
    _run_stage2(corpus, stage1, start, 2)
    tuned = tmp_path / "tuned"
    _run_stage2(corpus, stage1, tuned, 0, ["--init", str(start / "generator.pt"), "--beats", str(beats / "beatnet.pt")])
    a = load_generator(start / "generator.pt").model.state_dict()
    loaded = load_generator(tuned / "generator.pt")
    b = loaded.model.state_dict()
    assert loaded.model.cfg.beat_input and loaded.model.cfg.beat_channels == 8
    assert all(torch.equal(a[k], b[k]) for k in a)  # no step taken: not even a batch norm's statistics move
    tracker = load_beatnet(beats / "beatnet.pt")[0].state_dict()
    assert all(torch.equal(v, b["beat_net." + k]) for k, v in tracker.items())
    assert not b["beat_proj.weight"].any()

    trained = tmp_path / "trained"  # and it learns: the beat input leaves zero
    _run_stage2(corpus, stage1, trained, 2, ["--beats", str(beats / "beatnet.pt"), "--w-mse", "100"])
    model = load_generator(trained / "generator.pt").model
    assert model.beat_proj.weight.abs().sum() > 0
    assert all(torch.equal(v, model.beat_net.state_dict()[k]) for k, v in tracker.items())  # frozen
    take = generate_take(demo_files["wav"], engine="m2sgan", checkpoint=trained / "generator.pt", seed=1)
    mel = mel_features(__import__("backend.audio", fromlist=["load_audio"]).load_audio(demo_files["wav"]).samples)
    tracked = InferenceGenerator(model).track_beats(mel).times
    heard = np.isin(np.round(tracked, 6), np.round(take.beats, 6))
    assert heard.sum() == len(take.beats) and heard.sum() > 0.8 * len(tracked)  # the tracker's beats…
    assert np.all((tracked[~heard] < 0.8) | (tracked[~heard] > 36.0))  # …but none in the silence before or after the music

    # the phase comes from the labelled beats: another tracker changes only the tracker stored
    other = tmp_path / "other_beats"
    train_beats.main(["--corpus", str(corpus), "--out-dir", str(other), "--max-steps", "2", "--seed", "7"] + SB
                     + ["--cosine"])
    _run_stage2(corpus, stage1, tmp_path / "trained2", 2, ["--beats", str(other / "beatnet.pt"), "--w-mse", "100"])
    model2 = load_generator(tmp_path / "trained2" / "generator.pt").model
    a, b = model.state_dict(), model2.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("beat_net."))
    assert not all(torch.equal(a[k], b[k]) for k in a if k.startswith("beat_net."))

    with pytest.raises(SystemExit, match="not a beat tracker"):
        _run_stage2(corpus, stage1, tmp_path / "bad", 1, ["--beats", str(start / "generator.pt")])


def test_the_downbeat_tracker_trains_and_stage2_stores_it_and_learns_the_bars(corpus, stage1, beats, tmp_path,
                                                                              demo_files):
    """--target downbeats trains BeatNet on the plans' bar lines (held-out downbeat F and metre
    accuracy logged); --bars stores it in the generator, whose bar input starts at zero from a
    generator without one and leaves zero as it learns; the engine's take has the bars it hears."""
    from backend.engine import generate_take
    from training import train_beats
    from training.train_beats import load_beatnet
    bars = tmp_path / "bars"
    train_beats.main(["--corpus", str(corpus), "--out-dir", str(bars), "--max-steps", "2", "--target", "bars"] + SB)
    evals = [json.loads(line) for line in (bars / "log.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["kind"] == "eval"]
    assert evals and all(0 <= r["downbeat_f"] <= 1 and 0 <= r["metre_acc"] <= 1 for r in evals)
    tracker, meta = load_beatnet(bars / "barnet.pt")
    assert meta["target"] == "bars"
    started = tmp_path / "bars_from_beats"  # --init: the bar tracker's body starts as the beat tracker's, its head afresh
    train_beats.main(["--corpus", str(corpus), "--out-dir", str(started), "--max-steps", "1", "--target", "bars",
                      "--init", str(beats / "beatnet.pt"), "--lr", "0"] + SB)
    body, source = load_beatnet(started / "barnet.pt")[0].state_dict(), load_beatnet(beats / "beatnet.pt")[0].state_dict()
    assert all(torch.equal(v, body[k]) for k, v in source.items() if not k.startswith("head."))
    with pytest.raises(SystemExit, match="neither a beat tracker nor a generator"):
        train_beats.main(["--corpus", str(corpus), "--out-dir", str(tmp_path / "bad_init"), "--target", "bars",
                          "--init", str(bars / "log.jsonl")] + SB)

    start = tmp_path / "start"
    _run_stage2(corpus, stage1, start, 1, ["--beats", str(beats / "beatnet.pt")])
    tuned = tmp_path / "tuned"
    _run_stage2(corpus, stage1, tuned, 1, ["--init", str(start / "generator.pt"), "--beats", str(beats / "beatnet.pt"),
                                           "--bars", str(bars / "barnet.pt"), "--lr-g", "0", "--lr-d", "0"])
    a = load_generator(start / "generator.pt").model.state_dict()
    b = load_generator(tuned / "generator.pt").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)
    assert all(torch.equal(v, b["bar_net." + k]) for k, v in tracker.state_dict().items())
    assert not b["bar_proj.weight"].any()

    trained = tmp_path / "trained"
    _run_stage2(corpus, stage1, trained, 2, ["--beats", str(beats / "beatnet.pt"), "--bars", str(bars / "barnet.pt"),
                                             "--w-mse", "100"])
    model = load_generator(trained / "generator.pt").model
    assert model.cfg.bar_input and model.bar_proj.weight.abs().sum() > 0
    assert all(torch.equal(v, model.bar_net.state_dict()[k]) for k, v in tracker.state_dict().items())  # frozen
    take = generate_take(demo_files["wav"], engine="m2sgan", checkpoint=trained / "generator.pt", seed=1)
    assert take.provenance["bars"] == "heard" and len(take.downbeats) > 0
    assert set(np.round(take.downbeats, 6)) <= set(np.round(take.beats, 6))

    with pytest.raises(SystemExit, match="--bars needs a beat input"):
        _run_stage2(corpus, stage1, tmp_path / "bad", 1, ["--bars", str(bars / "barnet.pt")])
    with pytest.raises(SystemExit, match="not a bar tracker .*--target bars"):
        _run_stage2(corpus, stage1, tmp_path / "bad2", 1, ["--beats", str(beats / "beatnet.pt"),
                                                            "--bars", str(beats / "beatnet.pt")])
    kept = tmp_path / "kept"  # fine-tuning without naming the trackers keeps the generator's own
    _run_stage2(corpus, stage1, kept, 1, ["--init", str(trained / "generator.pt")])
    c = load_generator(kept / "generator.pt").model.state_dict()
    assert all(torch.equal(c[k], v) for k, v in model.state_dict().items() if k.startswith(("beat_net.", "bar_net.")))


def test_the_bar_reader_trains_on_its_tracker_and_stage2_stores_it(corpus, stage1, beats, tmp_path, demo_files):
    """train_bar_reader reads a frozen bar tracker (a barnet.pt or a generator's) and logs held-out
    downbeat F and metre accuracy; --bar-reader stores it beside the tracker, and --spectrum-reader a
    second one that reads the beats' spectra, changing no other weight; the engine's bars are the two
    readers' together; naming another tracker drops readers of the old one."""
    from backend.audio import load_audio
    from backend.bar_reader import read_bars
    from backend.bars import beat_state_logp, hear_bars
    from backend.engine import generate_take
    from backend.features import mel_features
    from backend.generate import InferenceGenerator
    from baton_core.timebase import MOTION_FPS
    from training import train_bar_reader, train_beats
    from training.train_bar_reader import load_reader
    bars = tmp_path / "bars"
    train_beats.main(["--corpus", str(corpus), "--out-dir", str(bars), "--max-steps", "1", "--target", "bars"] + SB)
    gen = tmp_path / "gen"
    _run_stage2(corpus, stage1, gen, 1, ["--beats", str(beats / "beatnet.pt"), "--bars", str(bars / "barnet.pt")])
    small = ["--hidden", "8", "--min-beats", "4", "--max-beats", "8", "--batch-size", "2", "--eval-every", "2",
             "--save-every", "2", "--log-every", "1"]
    reader = tmp_path / "reader"
    train_bar_reader.main(["--corpus", str(corpus), "--bars", str(bars / "barnet.pt"), "--out-dir", str(reader),
                           "--max-steps", "2"] + small)
    evals = [json.loads(line) for line in (reader / "log.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["kind"] == "eval"]
    assert evals and all(0 <= r["downbeat_f"] <= 1 and 0 <= r["metre_acc"] <= 1 for r in evals)
    model, meta = load_reader(reader / "barreader.pt")
    assert meta["config"] == {"hidden": 8, "spectrum": False} and meta["step"] == 2
    spectral = tmp_path / "spectral"  # a second reader, of the beats' spectra too
    train_bar_reader.main(["--corpus", str(corpus), "--bars", str(bars / "barnet.pt"), "--out-dir", str(spectral),
                           "--max-steps", "2", "--spectrum"] + small)
    spec_model, spec_meta = load_reader(spectral / "barreader.pt")
    assert spec_meta["config"] == {"hidden": 8, "spectrum": True} and spec_model.spectrum is not None
    from_gen = tmp_path / "reader_of_gen"  # the tracker a generator holds is the same tracker
    train_bar_reader.main(["--corpus", str(corpus), "--bars", str(gen / "generator.pt"), "--out-dir", str(from_gen),
                           "--max-steps", "2"] + small)
    a = load_reader(from_gen / "barreader.pt")[0].state_dict()
    assert all(torch.equal(v, a[k]) for k, v in model.state_dict().items())
    heard = tmp_path / "reader_heard"  # the beats the generator's own tracker hears in a corpus, learnt from too
    train_bar_reader.main(["--corpus", str(corpus), "--bars", str(gen / "generator.pt"), "--out-dir", str(heard),
                           "--max-steps", "2", "--heard-corpus", str(corpus)] + small)
    h, meta = load_reader(heard / "barreader.pt")
    assert meta["heard"]["clips"] == meta["train"]["clips"] and meta["heard"]["root"] == str(corpus)
    assert any(not torch.equal(v, h.state_dict()[k]) for k, v in a.items())  # it learnt from them

    stored = tmp_path / "stored"  # stored in the generator with no step: stage 1's network is not read
    _run_stage2(corpus, tmp_path / "no_stage1", stored, 0, ["--init", str(gen / "generator.pt"), "--bar-reader",
                                            str(reader / "barreader.pt"), "--spectrum-reader",
                                            str(spectral / "barreader.pt")])
    before = load_generator(gen / "generator.pt").model
    after = load_generator(stored / "generator.pt").model
    assert (after.cfg.bar_reader, after.cfg.spectrum_reader) == (8, 8) and before.cfg.bar_reader == 0
    recorded = load_generator(stored / "generator.pt").meta["stage1"]  # the stage 1 its init records
    assert recorded["read"] is False and recorded["as_in_init"] == str(gen / "generator.pt")
    assert recorded["file_sha256"] == load_generator(gen / "generator.pt").meta["stage1"]["file_sha256"]
    b = after.state_dict()
    assert all(torch.equal(v, b[k]) for k, v in before.state_dict().items())
    assert all(torch.equal(v, b["bar_reader." + k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, b["spectrum_reader." + k]) for k, v in spec_model.state_dict().items())
    for kind, flags, want in (("first", [], model), ("spectrum", ["--spectrum"], spec_model)):
        tuned = tmp_path / f"tuned_{kind}"  # --init starts a reader from the one of its kind a generator holds
        train_bar_reader.main(["--corpus", str(corpus), "--bars", str(gen / "generator.pt"), "--out-dir", str(tuned),
                               "--max-steps", "1", "--lr", "0", "--init", str(stored / "generator.pt")] + flags + small)
        t = load_reader(tuned / "barreader.pt")[0].state_dict()
        assert all(torch.equal(v, t[k]) for k, v in want.state_dict().items())
    with pytest.raises(SystemExit, match="not of this kind and size"):
        train_bar_reader.main(["--corpus", str(corpus), "--bars", str(gen / "generator.pt"), "--out-dir",
                               str(tmp_path / "bad_init"), "--init", str(stored / "generator.pt"),
                               "--hidden", "16"] + small[2:])

    take = generate_take(demo_files["wav"], engine="m2sgan", checkpoint=stored / "generator.pt", seed=1)
    mel = mel_features(load_audio(demo_files["wav"]).samples)
    inf = InferenceGenerator(after)
    act = after.bar_net.eval().activation(mel)
    read = hear_bars(read_bars([model, spec_model], mel, take.beats, beat_state_logp(act, take.beats, MOTION_FPS)),
                     take.beats)
    assert take.provenance["bars"] == "heard"
    assert np.allclose(take.downbeats, read.downbeats) and np.allclose(inf.track_bars(mel, take.beats).downbeats,
                                                                       read.downbeats)

    kept = tmp_path / "kept"  # fine-tuning keeps the reader with its tracker…
    _run_stage2(corpus, stage1, kept, 0, ["--init", str(stored / "generator.pt")])
    assert (load_generator(kept / "generator.pt").model.cfg.bar_reader,
            load_generator(kept / "generator.pt").model.cfg.spectrum_reader) == (8, 8)
    other = tmp_path / "other"  # …and drops it when --bars names another tracker
    _run_stage2(corpus, stage1, other, 0, ["--init", str(stored / "generator.pt"), "--bars", str(bars / "barnet.pt")])
    assert (load_generator(other / "generator.pt").model.cfg.bar_reader,
            load_generator(other / "generator.pt").model.cfg.spectrum_reader) == (0, 0)

    with pytest.raises(SystemExit, match="need 0 ≤ beat errors < 0.5"):
        train_bar_reader.main(["--corpus", str(corpus), "--bars", str(bars / "barnet.pt"), "--out-dir",
                               str(tmp_path / "bad0"), "--beat-errors", "0.7"] + small)
    with pytest.raises(SystemExit, match="--heard-corpus needs --bars to name a generator checkpoint"):
        train_bar_reader.main(["--corpus", str(corpus), "--bars", str(bars / "barnet.pt"), "--out-dir",
                               str(tmp_path / "bad1"), "--heard-corpus", str(corpus)] + small)
    with pytest.raises(SystemExit, match="not a bar tracker"):
        train_bar_reader.main(["--corpus", str(corpus), "--bars", str(beats / "beatnet.pt"), "--out-dir",
                               str(tmp_path / "bad")] + small)
    with pytest.raises(SystemExit, match="--bar-reader needs a bar tracker"):
        _run_stage2(corpus, stage1, tmp_path / "bad2", 0, ["--beats", str(beats / "beatnet.pt"), "--bar-reader",
                                                            str(reader / "barreader.pt")])
    for k, (match, flag, path) in enumerate((  # a file in the wrong slot, or no first reader beside a spectrum reader
            ("a reader of the beats' spectra: store it with --spectrum-reader", "--bar-reader", spectral / "barreader.pt"),
            ("a reader without the beats' spectra: store it with --bar-reader", "--spectrum-reader", reader / "barreader.pt"),
            ("--spectrum-reader reads beside a bar reader", "--spectrum-reader", spectral / "barreader.pt"),
            ("not a bar reader", "--bar-reader", bars / "barnet.pt"))):
        with pytest.raises(SystemExit, match=match):
            _run_stage2(corpus, stage1, tmp_path / f"bad{k + 3}", 0, ["--init", str(gen / "generator.pt"), flag, str(path)])


def test_the_reader_learns_from_beats_misheard_as_a_tracker_mishears_them():
    """The misheard copies: a hold the conductor leaves unbeaten is beaten through at the piece's
    period with no state to learn; kept beats keep theirs; a tracker at twice the rate hears a four in eight."""
    from backend.bars import bar_positions, bar_states, state_labels
    from training.train_bar_reader import ReaderConfig, beat_copies, misheard, twice_as_fast
    grid = 0.5 * np.arange(24)
    beats = np.delete(grid, [10, 11, 12, 13])  # a hold of four beats, unbeaten
    downbeats = grid[::4]
    labels = state_labels(beats, downbeats)
    t, lab = misheard(beats, labels, 0.0, np.random.default_rng(0))
    assert len(t) == 24 and np.all(np.diff(t) > 0) and np.abs(t - grid).max() < 0.08
    assert np.array_equal(lab[10:14], [-1] * 4) and np.array_equal(np.delete(lab, range(10, 14)), labels)
    t, lab = misheard(beats, labels, 0.3, np.random.default_rng(1))
    kept = lab[lab >= 0]
    assert len(kept) < len(labels) and (lab == -1).sum() > 4  # beats dropped and beats added
    cfg = ReaderConfig(misheard_copies=4, twice_share=1.0)  # twice the rate only where the beats are slow
    for period, eights in ((0.5, False), (0.9, True)):
        steady, bar_lines = period * np.arange(24), period * np.arange(0, 24, 4)
        copies = beat_copies(steady, bar_lines, cfg, np.random.default_rng(2))
        assert len(copies) == 5 and np.array_equal(copies[0][1], state_labels(steady, bar_lines))
        assert all((len(b) > 40) == eights for b, _ in copies[1:])
    fast, fast_lab = twice_as_fast(grid, downbeats)
    metre, pos = bar_positions(fast, downbeats)
    assert len(fast) == 47 and set(metre[:40]) == {8} and list(pos[:8]) == list(range(8))
    assert [bar_states()[i] for i in fast_lab[:8]] == [(8, p) for p in range(8)]


def test_the_reader_learns_the_beats_a_tracker_heard_labelled_from_the_score():
    """Heard copies: each heard beat takes the state of the labelled beat it hears; beats through a
    hold, extra beats and the farther of two beats at one labelled beat take none; a tracker at
    twice the rate hears a four in eight; at half the rate there is nothing to learn."""
    from backend.bars import bar_states, state_labels
    from training.train_bar_reader import heard_labels
    grid = 0.5 * np.arange(24)
    beats = np.delete(grid, [10, 11, 12, 13])  # a hold of four beats, unbeaten
    downbeats = grid[::4]
    labels = state_labels(beats, downbeats)
    heard = grid + 0.02 * np.sin(np.arange(24))  # beaten through the hold
    got = heard_labels(heard, beats, downbeats)
    assert np.array_equal(got[10:14], [-1] * 4) and np.array_equal(np.delete(got, range(10, 14)), labels)
    odd = np.sort(np.r_[np.delete(grid, 5), 1.25, 4.1])  # beat 5 missed; an extra at 1.25; 4.1 beside 4.0
    got = heard_labels(odd, grid, downbeats)
    full = state_labels(grid, downbeats)
    assert got[np.flatnonzero(odd == 1.25)[0]] == -1 and got[np.flatnonzero(odd == 4.1)[0]] == -1
    assert got[np.flatnonzero(odd == 4.0)[0]] == full[8] and got[np.flatnonzero(odd == 3.0)[0]] == full[6]
    assert np.sum(got >= 0) == 23
    fast = np.sort(np.r_[grid, grid[:-1] + 0.25])
    assert [bar_states()[i] for i in heard_labels(fast, grid, downbeats)[:8]] == [(8, p) for p in range(8)]
    assert heard_labels(grid[::2], grid, downbeats) is None


def test_best_draw_regression_counts_each_clips_closer_draw():
    from training.train_stage2 import regression
    real = torch.rand(3, 30, 13, 2).repeat_interleave(2, 0)  # (clip 0 draw 0, clip 0 draw 1, clip 1 draw 0, …)
    fake = real.clone()
    fake[1::2] += 0.1  # every clip's second draw is off by 0.1 everywhere
    assert regression(fake, real, 3, best_draw=True).item() == 0.0
    assert regression(fake, real, 3, best_draw=False).item() == pytest.approx(0.005)
    fake[0] += 0.2  # clip 0's first draw is now the worse one: its second counts
    assert regression(fake, real, 3, best_draw=True).item() == pytest.approx(0.01 / 3)


def test_stage2_refuses_the_papers_stage1(corpus, tmp_path):
    official = ROOT.parent / "shared" / "reference" / "official" / "m2snet.pt"
    if not official.exists():
        pytest.skip("../shared is absent")
    from training import train_stage2
    with pytest.raises(SystemExit, match="research use only"):
        train_stage2.main(["--corpus", str(corpus), "--stage1", str(official), "--out-dir", str(tmp_path)] + S2)


def test_two_processes_with_gloo(corpus, stage1, tmp_path):
    """torchrun, two CPU processes: every stage runs, logs once, and ends with identical replicas."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for module, args in (("training.train_stage1", S1 + ["--batch-size", "2"]), ("training.train_beats", SB),
                         ("training.train_stage2", S2 + ["--stage1", str(stage1 / "m2snet.pt")])):
        out = tmp_path / module
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", module,
               "--corpus", str(corpus), "--out-dir", str(out), "--max-steps", "2"] + args
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
        assert [x["step"] for x in log if x["kind"] == "train"] == [1, 2]
        assert log[-1] == {"step": 2, "kind": "end", "world": 2, "replicas_in_sync": True}


# -- evaluation ---------------------------------------------------------------------------------------

def test_a_subdivided_bar_is_judged_on_its_main_beats_by_its_metres_pattern():
    """A corpus clip's bars are judged as its conductor beats them: a two beaten subdivided (four
    strokes a bar) is a two, not a four, so the conductor's own motion reads as its pattern."""
    from backend import metrics as M
    from backend.conducting import conduct_plan, sample_style
    from backend.conducting.motion import beaten_strokes
    from backend.conducting.plan import grid_plan
    from baton_core.skeleton import project_front
    from training.evaluate import conducted_bars
    plan = grid_plan("2/2", 100, 8)
    arrays = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in plan.to_arrays().items()}
    beaten = beaten_strokes(plan)
    start, end = 2.0, float(plan.times[-1])  # a clip cut from the plan: bars outside it are not judged
    bars = conducted_bars({"strokes": arrays}, start, end)
    assert bars and all(b.pattern == "2/2" and len(b.beats) == 2 for b in bars)
    assert bars[0].beats[0] >= 0 and bars[-1].next_downbeat < end - start
    motion = project_front(conduct_plan(plan, sample_style(1), int((plan.times[-1] + 1) * 30), 30.0))
    main = beaten & (plan.beat == 0) & (plan.sub == 0)
    whole = [M.Bar(b.beats + start, b.next_downbeat + start, b.pattern) for b in bars]
    assert M.pattern_accuracy(motion, whole) == 1.0 and M.downbeat_accuracy(motion, whole) == 1.0
    every_stroke = M.bars_from_downbeats(plan.times[beaten], plan.times[main])
    assert {b.pattern for b in every_stroke} == {"4"} and M.pattern_accuracy(motion, every_stroke) < 0.5
    assert conducted_bars({"beats": [], "downbeats": []}, 0.0, 10.0) is None


def test_evaluate_prints_the_table_and_stores_it(corpus, stage1, tmp_path, capsys):
    from training import evaluate
    _run_stage2(corpus, stage1, tmp_path / "s2", 2)
    ckpt = tmp_path / "s2" / "generator.pt"
    sha = load_generator(ckpt).sha256
    assert evaluate.main(["--corpus", str(corpus), "--split", "test", "--max-items", "2", "--checkpoint", str(ckpt),
                          "--stage1", str(stage1 / "m2snet.pt"), "--sync-pairs", "4", "--store",
                          "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("F "))
    for col in ("F", "chance", "downb", "pattern", "dyn r", "jitter", "seam", "div", "RDE", "SCE", "SDP%"):
        assert col in header
    rows = json.loads((tmp_path / "t.json").read_text())
    (table,) = rows.values()
    assert {"data", "rules", "generator"} <= set(table["rows"])
    if (evaluate.OFFICIAL / "m2sgan_generator.pt").exists():
        assert "official" in table["rows"] and "sync:official" in table["rows"]["rules"]
    rules, data = table["rows"]["rules"], table["rows"]["data"]
    # the rule-based conductor on the demo music: on the beat, far above chance
    assert rules["F"] > 0.8 and rules["F"] > rules["chance"] + 0.4 and data["F"] > 0.8
    assert rules["div"] > 0 and data["div"] is None and rules["seam"] is None
    stored = load_generator(ckpt)
    assert stored.sha256 == sha and stored.meta["evaluation_table"] == rows


def test_evaluate_conducts_another_trackers_bars_beside_a_clips_audio(corpus, tmp_path):
    """--reference-bars: a row conducting the beats and bar lines written beside a corpus clip's audio
    (as tools/reference_beats.py writes them; here the clip's own score's, so that tracker hears every
    bar), scoring that tracker's bars against the score's; a clip without them is left out of the row."""
    from training import evaluate
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(encoder="conv1d", encoder_channels=(32, 32, 32), beat_input=True, beat_channels=8,
                                    beat_layers=3, bar_input=True, bar_channels=8, bar_layers=3))
    save_checkpoint(gen.eval(), tmp_path / "g.pt")
    first, second = Corpus(corpus, "test").clips[:2]
    beats, down = first.beats()
    stem = first.audio_path().with_suffix("")
    written = [Path(f"{stem}.beats.txt"), Path(f"{stem}.downbeats.txt")]
    assert second.audio_path() is not None and not Path(f"{second.audio_path().with_suffix('')}.beats.txt").exists()

    def rows(items: int) -> dict:
        out = tmp_path / f"t{items}.json"
        assert evaluate.main(["--corpus", str(corpus), "--split", "test", "--max-items", str(items), "--checkpoint",
                              str(tmp_path / "g.pt"), "--no-rules", "--official", "none", "--official-stage1", "none",
                              "--given-bars", "--reference-bars", "--json", str(out)]) == 0
        (table,) = json.loads(out.read_text()).values()
        return table["rows"]

    try:
        np.savetxt(written[0], beats, fmt="%.17g")
        np.savetxt(written[1], down, fmt="%.17g")
        one, two = rows(1), rows(2)
    finally:
        for f in written:
            f.unlink(missing_ok=True)
    ref, given = one["g (reference bars)"], one["g (given bars)"]
    assert ref["bar_f"] == 1.0 and ref["metre"] == 1.0  # the score's bars, heard whole by that "tracker"
    # conducting them as given is conducting the score's beats and bars as given
    assert {k: v for k, v in ref.items() if k not in ("bar_f", "metre")} == {k: v for k, v in given.items() if k not in ("bar_f", "metre")}
    assert two["g (reference bars)"] == ref and two["g (given bars)"] != given  # the second clip: no reference, left out
    assert "g (reference bars)" not in rows(1)  # none beside any clip: no row


def test_evaluate_judges_the_demo_piece_by_the_bars_it_was_made_with(tmp_path):
    from training import evaluate
    assert evaluate.main(["--demo", "--official", "none", "--official-stage1", "none",
                          "--json", str(tmp_path / "d.json")]) == 0
    (table,) = json.loads((tmp_path / "d.json").read_text()).values()
    assert table["pieces"] == 1 and set(table["rows"]) == {"rules"}
    rules = table["rows"]["rules"]  # the rule-based conductor draws the 4/4 pattern and prepares the first sound
    assert rules["F"] > 0.9 and rules["R2"] > rules["R2_chance"] + 0.5 and rules["downbeat"] > 0.8 and rules["prep"] == 1.0


def test_evaluate_reads_the_recordings_references_beside_them(tmp_path, demo, capsys):
    """A recordings folder: the one with beats and bar lines beside it (here the demo's own, as
    tools/reference_beats.py writes them) is judged by them, bars included, and librosa's tracker is
    scored against them as the second reference; a folder with none falls back to librosa's."""
    import soundfile as sf
    from training import evaluate
    rec = tmp_path / "recordings"
    rec.mkdir()
    sf.write(rec / "a.flac", demo.samples, demo.sr)
    np.savetxt(rec / "a.beats.txt", demo.beats, fmt="%.3f")
    np.savetxt(rec / "a.downbeats.txt", demo.downbeats, fmt="%.3f")
    assert evaluate.main(["--recordings", str(rec), "--official", "none", "--official-stage1", "none",
                          "--json", str(tmp_path / "r.json")]) == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["agreement (F of librosa's tracker against the reference)"]["a.flac"] > 0.8
    both = doc["recordings where the references agree (F ≥ 0.8)"]
    rules = doc["recordings (reference: the beats and bars beside them)"]["rows"]["rules"]
    assert both["pieces"] == 1 and rules["downbeat"] > 0.8 and rules["bar_f"] > 0.8  # judged by the bars given
    assert "agrees with the reference at F ≥ 0.8 on 1 of 1" in capsys.readouterr().out
    for name in ("a.beats.txt", "a.downbeats.txt"):
        (rec / name).unlink()
    assert evaluate.main(["--recordings", str(rec), "--official", "none", "--official-stage1", "none",
                          "--json", str(tmp_path / "r.json")]) == 0
    assert list(json.loads((tmp_path / "r.json").read_text())) == ["recordings (reference beats: librosa's tracker)"]


def test_evaluate_names_a_bad_corpus(tmp_path, capsys):
    from training import evaluate
    assert evaluate.main(["--corpus", str(tmp_path / "none"), "--official", "none", "--official-stage1", "none"]) == 2
    assert "no such corpus folder" in capsys.readouterr().err
