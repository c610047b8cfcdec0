"""The recording-like corpus: scores orchestrated with doublings, percussion in the metre and
textures (training/orchestra.py), and a recording chain with mastering (training/augment.py) —
and none of it moves a labelled beat."""

import shutil

import numpy as np
import pytest

from training.augment import record_audio

music21 = pytest.importorskip("music21", reason="music21 (the score extra) is needed to read scores")
from backend.score import notated_beats, read_score  # noqa: E402
from training.orchestra import BASS_DRUM, CRASH, TIMPANI, orchestrate  # noqa: E402
from training.scores import build_midi, random_performance  # noqa: E402

SR = 22050


@pytest.fixture(scope="module")
def chorale():
    return read_score("bach/bwv190.7-inst")


def _arranged(chorale, percussion, texture, seed=0):
    rng = np.random.default_rng(seed)
    bars = (1, 5)
    perf = random_performance(chorale, bars, rng, 90.0, 0.3, "random")
    pm, _ = build_midi(chorale, perf, rng, 40.0)
    written = {i.name: sorted(n.start for n in i.notes) for i in pm.instruments}
    drawn = orchestrate(pm, chorale, perf, bars, np.random.default_rng(seed), 40.0,
                        percussion=percussion, texture=texture)
    q, down = notated_beats(chorale, bars)
    return pm, written, drawn, perf.onset(q), perf.onset(q[down])


def test_percussion_plays_on_the_beats_and_marks_every_bar_line(chorale):
    pm, _, drawn, beats, downbeats = _arranged(chorale, "soundtrack", "written")
    kit = next(i for i in pm.instruments if i.is_drum)
    drums = np.array([n.start for n in kit.notes if n.pitch == BASS_DRUM])
    assert len(drums) and np.abs(drums[:, None] - beats[None]).min(axis=1).max() < 1e-6  # on beats only
    assert np.abs(downbeats[:, None] - drums[None]).min(axis=1).max() < 1e-6  # on every bar line
    assert any(n.pitch == CRASH for n in kit.notes)
    pm, _, drawn, beats, downbeats = _arranged(chorale, "timpani", "written")
    timp = np.array([n.start for i in pm.instruments if i.program == TIMPANI and i.name == "timpani" for n in i.notes])
    assert np.abs(downbeats[:, None] - timp[None]).min(axis=1).max() < 1e-6
    assert all(41 <= n.pitch <= 53 for i in pm.instruments if i.name == "timpani" for n in i.notes)
    pm, _, drawn, _, _ = _arranged(chorale, "none", "written")
    assert not any(i.is_drum or i.name == "timpani" for i in pm.instruments)


def test_doublings_and_textures_keep_the_written_onsets(chorale):
    for seed in range(4):
        pm, written, drawn, _, downbeats = _arranged(chorale, "none", "pad", seed)
        for inst in pm.instruments:
            if inst.name.endswith(" doubled"):
                assert sorted(n.start for n in inst.notes) == written[inst.name[: -len(" doubled")]]
        pad = next(i for i in pm.instruments if i.name == "pad")
        assert set(np.round([n.start for n in pad.notes], 6)) <= set(np.round(downbeats, 6))  # a chord a bar
    pm, written, _, _, _ = _arranged(chorale, "none", "tremolo")
    trem = next(i for i in pm.instruments if i.name == "tremolo")
    assert len(trem.notes) == sum(len(v) for v in written.values())


def test_the_recording_chain_squeezes_dynamics_and_moves_no_onset():
    rng = np.random.default_rng(1)
    t = np.arange(8 * SR) / SR
    tone = np.sin(2 * np.pi * 220 * t) * np.exp(-3 * ((t * 2) % 1))  # a note every half second
    x = tone * np.where(t < 4, 0.02, 1.0)  # pp then ff: 34 dB apart
    x[: SR] = 0

    def spread(y):
        rms = [np.sqrt(np.mean(y[int(a * SR): int((a + 1) * SR)] ** 2)) for a in (2, 6)]
        return 20 * np.log10(rms[1] / rms[0])

    for seed in range(3):
        y, params = record_audio(x, SR, np.random.default_rng(seed))
        assert y.dtype == np.float32 and len(y) == len(x) and np.abs(y).max() <= 0.98 + 1e-6
        assert spread(y) < spread(x) - 4, params  # mastered: pp and ff much closer
        env = np.abs(y[int(3.9 * SR):])
        first = 3.9 + np.flatnonzero(env > 0.3 * env.max())[0] / SR
        assert 3.99 < first < 4.01, params  # the ff entry stays where it was, 4 s in


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth is needed")
def test_a_recording_like_item_renders_with_its_labels():
    from training.score_source import recording_jobs
    job = next(iter(recording_jobs(works=3)))
    piece = job.render()
    piece.check(job.item_id)
    prov = piece.provenance
    assert prov["soundfont"] != "MuseScore_General.sf3" and "recording" in prov and "arrangement" in prov
    beats = np.array(piece.plan["beats"])
    assert len(beats) > 4 and beats.max() < len(piece.audio) / piece.sr


def test_a_passage_in_free_time_has_no_steady_pulse_and_the_rest_keeps_its_own():
    """free=0.5: one passage of about half the beats where each beat's length is drawn on its own,
    against the same performance without it: neighbouring beats differ far more than rubato lets
    them, its last beat is held, and outside it nothing moves; with free=0 nothing is drawn for it,
    so the corpora built before stay as they were."""
    chorale = read_score("bach/bwv190.7-inst")
    bars = (1, 9)
    q, _ = notated_beats(chorale, bars)
    plain = random_performance(chorale, bars, np.random.default_rng(4), 90.0, 0.3, "random")
    again = random_performance(chorale, bars, np.random.default_rng(4), 90.0, 0.3, "random", free=0.0)
    assert np.array_equal(plain.onset(q), again.onset(q))
    free = random_performance(chorale, bars, np.random.default_rng(4), 90.0, 0.3, "random", free=0.5)
    r = np.log(np.diff(free.onset(q)) / np.diff(plain.onset(q)))  # each beat's length, free against plain
    changed = np.abs(r) > 0.01
    assert 0.3 * len(r) <= changed.sum() <= 0.7 * len(r)  # about half the beats…
    assert len(np.flatnonzero(np.diff(changed.astype(int)))) <= 2  # …in one passage
    assert np.abs(np.diff(r[changed])).mean() > 0.25  # neighbours differ by a quarter and more
    assert r[changed][-1] > np.log(1.4)  # its last beat held
