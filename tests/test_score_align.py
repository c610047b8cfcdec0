"""Conducting from the score: a recording aligned to its score (backend/score/align.py) and both
engines conducting the aligned plan. Real music21 scores, rendered with fluidsynth with rubato and a
silence the aligner is not told about; the render's own beats are the truth."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from baton_core.errors import BatonError
from baton_core.request import ConductRequest
from conftest import ROOT, TUNE_BOOK

music21 = pytest.importorskip("music21", reason="music21 (the score extra) is needed to read scores")
OFFSET = 2.1
CHORALE = "bach/bwv66.6.mxl"


def render(tmp, name, transpose=0, seed=5):
    from backend.rules import plan_beats
    from training.scores import render_score
    r = render_score(name, seed=seed, rubato=0.3, max_seconds=30, transpose=transpose)
    x = np.concatenate([np.zeros(int(OFFSET * r.sr), np.float32), r.audio])
    wav = tmp / f"{name.replace('/', '_')}_{transpose}.wav"
    sf.write(wav, x, r.sr)
    score = tmp / f"{name.replace('/', '_')}.musicxml"
    music21.corpus.parse(name).measures(*r.info["bars"]).write("musicxml", fp=str(score))
    return wav, score, x, r.sr, r.beats + OFFSET, r.downbeats + OFFSET, plan_beats(r.plan).times + OFFSET


@pytest.fixture(scope="module")
def chorale(tmp_path_factory):
    if not __import__("shutil").which("fluidsynth"):
        pytest.skip("fluidsynth is needed to render the score")
    return render(tmp_path_factory.mktemp("align"), CHORALE)


def test_the_warping_finds_a_known_path_with_music_before_and_after():
    from backend.score.align import subsequence_dtw
    eye = np.eye(13, dtype=np.float32)
    score = eye[[0, 0, 1, 1, 2, 2, 3, 3]]  # four chords, two frames each
    audio = eye[[12] * 3 + [0] * 4 + [1] * 2 + [2] + [3] * 3 + [12] * 2]  # silence, the chords slower and faster
    path, _ = subsequence_dtw(score, audio, 0.2)
    assert 3 <= path[0, 1] <= 6 and 10 <= path[-1, 1] <= 12  # within the music, not in the silences
    assert all(score[i] @ audio[j] == 1.0 for i, j in path)  # every step on its own chord
    assert np.all(np.diff(path, axis=0) >= 0) and set(path[:, 0]) == set(range(8))


def test_heard_beats_place_the_score_beats_where_harmony_cannot():
    """Through a held chord chroma cannot say where the beats are; the heard beats decide."""
    from backend.score.align import ALIGN_FPS, beat_bumps, subsequence_dtw
    chord = np.zeros((1, 13), np.float32)
    chord[0, 0] = 1.0
    score, audio = np.repeat(chord, 40, axis=0), np.repeat(chord, 60, axis=0)
    score_beats, heard = np.array([10, 20, 30]) / ALIGN_FPS, np.array([15, 27, 39]) / ALIGN_FPS
    path, _ = subsequence_dtw(score, audio, 0.2, beats=(beat_bumps(score_beats, 40), beat_bumps(heard, 60)))
    placed = [path[path[:, 0] == f, 1] for f in (10, 20, 30)]
    assert all(h in p for p, h in zip(placed, (15, 27, 39))), placed


def test_the_score_aligns_to_its_recording_beat_by_beat(chorale):
    from backend.engine import _tracked_beats
    from backend.features import mel_features
    from backend.score import read_score
    from backend.score.align import align_score
    wav, score, x, sr, beats, downbeats, _ = chorale
    al = align_score(read_score(str(score)), x, sr, heard=_tracked_beats(None, mel_features(x)))
    err = np.abs(al.beat_s - beats) * 1000
    assert len(al.beat_s) == len(beats) and np.percentile(err, 95) < 60, np.round(err)
    assert np.abs(al.beat_s[al.downbeat] - downbeats).max() < 0.07
    assert al.transpose == 0 and al.bar_confidence.min() > 0.3


def test_a_transposed_recording_aligns_and_another_piece_is_refused(chorale, tmp_path):
    from backend.score import read_score
    from backend.score.align import align_score
    _, score, _, _, beats, _, _ = chorale
    wav, *_ = render(tmp_path, CHORALE, transpose=2)
    x, sr = sf.read(wav, dtype="float32")
    al = align_score(read_score(str(score)), x, sr)
    assert al.transpose == 2 and np.median(np.abs(al.beat_s - beats)) < 0.07  # same performance, a tone higher
    other, *_ = render(tmp_path, "schumann/opus41no1/movement2.mxl")
    y, sr = sf.read(other, dtype="float32")
    with pytest.raises(BatonError, match="does not match this recording"):
        align_score(read_score(str(score)), y, sr)


@pytest.mark.parametrize("engine", ["rules", "m2sgan"])
def test_both_engines_conduct_the_aligned_score(chorale, engine):
    """The score's bars drawn (pattern R² against the score's own bars), every stroke on the beat
    the corpus' conductor would strike, the score recorded in the take."""
    from backend.engine import generate_take
    from backend.metrics import bars_from_downbeats, ictus_f, ictus_times, pattern_legibility
    wav, score, _, _, beats, downbeats, strokes = chorale
    take = generate_take(wav, engine=engine, score=score)
    assert take.provenance["score"]["transpose"] == 0 and take.settings["bars"] == "score"
    assert ictus_f(ictus_times(take.keypoints_2d), strokes) >= 0.9
    r2, chance = pattern_legibility(take.keypoints_2d, bars_from_downbeats(beats, downbeats))
    assert r2 >= 0.9 > chance + 0.5, (r2, chance)


def test_a_score_is_checked_and_its_errors_are_clear(chorale, tmp_path):
    wav, score, *_ = chorale
    with pytest.raises(BatonError, match="a score or beats, not both"):
        ConductRequest(str(wav), score=str(score), beats=[1.0, 2.0])
    out = tmp_path / "take.json"
    ok = subprocess.run([sys.executable, "-m", "backend", "generate", str(wav), "--engine", "rules", "--score",
                         str(score), "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "broken.musicxml"
    bad.write_text("<score-partwise><part>")
    run = subprocess.run([sys.executable, "-m", "backend", "generate", str(wav), "--score", str(bad), "-o", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3 and "cannot read the score" in run.stderr and "Traceback" not in run.stderr  # bad input
    book = tmp_path / "tunes.abc"  # an ABC tune book: two tunes in one file
    book.write_text(TUNE_BOOK)
    drums = tmp_path / "drums.musicxml"  # music21's drum sample: nothing pitched to align by
    music21.corpus.parse("demos/drum_sample.xml").write("musicxml", fp=str(drums))
    for score, says in ((book, "holds 2 pieces, and Baton conducts one"), (drums, "has no pitched notes to align")):
        run = subprocess.run([sys.executable, "-m", "backend", "generate", str(wav), "--score", str(score), "-o", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 3 and says in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_a_percussion_part_is_read_and_left_out_of_the_alignment(chorale, tmp_path):
    from backend.score import read_score
    from backend.score.align import align_score
    _, score, x, sr, beats, _, _ = chorale
    s = music21.converter.parse(str(score))
    snare = music21.stream.Part([music21.note.Unpitched(quarterLength=1.0) for _ in range(16)])
    snare.partName = "Snare Drum"
    s.insert(0, snare)
    with_snare = tmp_path / "with_snare.musicxml"
    s.write("musicxml", fp=str(with_snare))
    info = read_score(str(with_snare))
    assert [len(p.onset) for p in info.parts if p.name == "Snare Drum"] == [0]
    al = align_score(info, x, sr)
    assert al.transpose == 0 and np.median(np.abs(al.beat_s - beats)) < 0.07


def test_the_batch_renderer_conducts_each_piece_from_the_score_beside_it(chorale, tmp_path):
    import json
    import shutil
    from baton_core.take import load_take
    wav, score, *_ = chorale
    mine, other = tmp_path / "mine.wav", tmp_path / "other.wav"
    shutil.copy(wav, mine)
    shutil.copy(score, tmp_path / "mine.musicxml")
    shutil.copy(wav, other)  # no score beside it: that piece fails, the first goes on
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "backend", "render", str(mine), str(other), "--scores", "--preview",
                           "--frames", "1:24", "--out", str(out), "--quiet", "--engine", "rules"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 3, proc.stderr  # one piece failed
    pieces = json.loads((out / "manifest.json").read_text())["pieces"]
    assert pieces["mine.preview"]["status"] == "rendered" and "no score beside other.wav" in pieces["other.preview"]["error"]
    take = load_take(out / pieces["mine.preview"]["take"])
    assert take.settings["bars"] == "score" and take.provenance["score"]["transpose"] == 0


def test_the_service_reads_a_score_from_its_folders_or_an_upload_and_no_other(chorale, tmp_path):
    from blender_addon.client import BackendError, start_backend, stop_backend
    wav, score, *_ = chorale
    b = start_backend(sys.executable, [wav.parent], cwd=ROOT)
    try:
        job = b.client.wait(b.client.submit(wav, engine="rules", score=score)["id"])
        assert job["state"] == "done", job
        assert b.client.take(job["id"])["provenance"]["score"]["transpose"] == 0
        sent = b.client.upload(score)  # a client on another machine sends its score, as it sends its audio
        assert sent.endswith(".musicxml")
        assert b.client.wait(b.client.submit(wav, engine="rules", score=sent)["id"])["state"] == "done"
        elsewhere = tmp_path / "elsewhere.musicxml"
        elsewhere.write_bytes(score.read_bytes())
        with pytest.raises(BackendError, match="403.*score .* outside the folders"):
            b.client.submit(wav, score=elsewhere)
    finally:
        stop_backend(b.process)
