"""Aligning a ten-minute recording to its score, against the engine's own whole request on the same
audio in the same run (issue 20: alignment at most 3× the request).

    .venv/bin/python benchmarks/bench_align.py     → benchmarks/align_results.md and .json

The piece: the first bars of Beethoven's quartet op. 59 no. 1, first movement (music21's corpus),
rendered with fluidsynth to about ten minutes (made once and cached under out/bench/). Measured, as
medians of interleaved rounds: the default engine's whole request from the audio file (decode,
features, beats and bars, generation, 3D); the alignment itself (`align_score`: chroma, the
transposition, two warpings, with the learned tracker's beats); reading the score with music21;
and the whole request conducted from the score.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "out" / "bench"
RESULTS = Path(__file__).resolve().parent / "align_results"
WORK, FIRST_BAR, BARS = "beethoven/opus59no1/movement1.mxl", 1, 300
ROUNDS = 3


def piece() -> tuple[Path, Path]:
    wav, score = OUT / "quartet_10min.wav", OUT / "quartet_10min.musicxml"
    if not wav.exists() or not score.exists():
        import soundfile as sf
        from music21 import corpus

        from training.scores import render_score
        OUT.mkdir(parents=True, exist_ok=True)
        r = render_score(WORK, first_bar=FIRST_BAR, n_bars=BARS, seed=1, rubato=0.2, max_seconds=660.0)
        sf.write(wav, r.audio, r.sr)
        corpus.parse(WORK).measures(*r.info["bars"]).write("musicxml", fp=str(score))
    return wav, score


def main() -> int:
    import numpy as np
    import torch

    from backend.audio import load_audio
    from backend.engine import _tracked_beats, generate_take
    from backend.features import mel_features
    from backend.score import read_score
    from backend.score.align import align_score
    wav, score = piece()
    audio = load_audio(wav)
    seconds = audio.duration
    info = read_score(str(score))
    heard = _tracked_beats(None, mel_features(audio.samples))
    times = {"request": [], "align": [], "read": [], "request_from_score": []}
    for _ in range(ROUNDS):
        t = time.perf_counter(); generate_take(wav); times["request"].append(time.perf_counter() - t)
        t = time.perf_counter(); al = align_score(info, audio.samples, audio.sr, heard=heard)
        times["align"].append(time.perf_counter() - t)
        t = time.perf_counter(); read_score(str(score)); times["read"].append(time.perf_counter() - t)
        t = time.perf_counter(); generate_take(wav, score=str(score))
        times["request_from_score"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["align"] / med["request"]
    doc = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads", "seconds": seconds,
           "bars": len(al.bar_confidence), "medians_s": med, "align_over_request": ratio,
           "read_over_request": med["read"] / med["request"], "goal": "align ≤ 3× the request", "met": ratio <= 3.0}
    RESULTS.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    RESULTS.with_suffix(".md").write_text(f"""# Alignment benchmark results

Machine: {doc['machine']}. Written by `benchmarks/bench_align.py` on {time.strftime('%Y-%m-%d')}; medians of {ROUNDS} interleaved rounds.
The piece: {WORK}, its first {doc['bars']} bars rendered with fluidsynth ({seconds / 60:.1f} min).

| goal | measured | target | met |
|---|---|---|---|
| the alignment against the engine's whole request on the same audio | {ratio:.2f}× | ≤ 3× | {'yes' if doc['met'] else 'no'} |

| measurement | seconds |
|---|---|
| whole request, default engine, from the audio (the yardstick) | {med['request']:.2f} |
| the alignment (`align_score`) | {med['align']:.2f} |
| reading the score (music21) | {med['read']:.2f} ({doc['read_over_request']:.1f}× the request) |
| whole request conducted from the score (reading, the tracker, alignment, generation) | {med['request_from_score']:.2f} |
""")
    print(RESULTS.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
