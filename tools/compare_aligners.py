"""Baton's score aligner beside two well-kept ones, on the performances the alignment evaluation
keeps: synctoolbox (Müller et al.: multi-resolution, memory-restricted DTW on chroma with
onset features, DLNCO) and librosa (subsequence DTW on CQT chroma against the score's pitch
classes). Evaluation only: neither ships; both are MIT licensed.

    python -m training.eval_alignment --json training/results/alignment.json --keep /tmp/aligners
    python3 -m venv /tmp/sync && /tmp/sync/bin/pip install synctoolbox==1.4.2 pandas
    /tmp/sync/bin/python tools/compare_aligners.py /tmp/aligners training/results/alignment.json \\
        --json training/results/aligners.json                      # → and aligners.md

synctoolbox's warping is whole-sequence: its path must start and end with the recording, so the
2.7 s of silence before the music (which the performances have, and which Baton's aligner is not
told about) is also given to it cut away, in a second row. Each beat of the score is carried
through each aligner's path from its time at the score's marked tempo; errors against the
render's own beats.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SR = 22050
FPS = 50  # feature rate of both libraries' paths


def synctoolbox_beats(x: np.ndarray, notes: np.ndarray, written: np.ndarray) -> np.ndarray:
    import pandas as pd
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import compute_optimal_chroma_shift, make_path_strictly_monotonic, shift_chroma_vectors
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.pitch import audio_to_pitch_features
    from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    from synctoolbox.feature.utils import estimate_tuning
    tuning = estimate_tuning(x, SR)
    chroma_a = quantize_chroma(f_chroma=pitch_to_chroma(f_pitch=audio_to_pitch_features(
        f_audio=x, Fs=SR, tuning_offset=tuning, feature_rate=FPS, verbose=False)))
    onset_a = pitch_onset_features_to_DLNCO(
        f_peaks=audio_to_pitch_onset_features(f_audio=x, Fs=SR, tuning_offset=tuning, verbose=False),
        feature_rate=FPS, feature_sequence_length=chroma_a.shape[1], visualize=False)
    df = pd.DataFrame({"start": notes[:, 0], "duration": notes[:, 1], "pitch": notes[:, 2].astype(int),
                       "velocity": 1.0, "instrument": "score"})
    chroma_s = quantize_chroma(f_chroma=pitch_to_chroma(f_pitch=df_to_pitch_features(df, feature_rate=FPS)))
    onset_s = pitch_onset_features_to_DLNCO(f_peaks=df_to_pitch_onset_features(df), feature_rate=FPS,
                                            feature_sequence_length=chroma_s.shape[1], visualize=False)
    shift = compute_optimal_chroma_shift(chroma_a, chroma_s)
    path = sync_via_mrmsdtw(f_chroma1=chroma_a, f_onset1=onset_a, f_chroma2=shift_chroma_vectors(chroma_s, shift),
                            f_onset2=shift_chroma_vectors(onset_s, shift), input_feature_rate=FPS,
                            step_weights=np.array([1.5, 1.5, 2.0]), threshold_rec=10 ** 6, verbose=False)
    path = make_path_strictly_monotonic(path)
    return np.interp(written * FPS, path[1], path[0]) / FPS


def librosa_beats(x: np.ndarray, notes: np.ndarray, written: np.ndarray) -> np.ndarray:
    import librosa
    hop = SR // FPS
    chroma_a = librosa.feature.chroma_cqt(y=x, sr=SR, hop_length=hop) + 1e-6  # (silence: no direction)
    n = int(np.ceil((notes[:, 0] + notes[:, 1]).max() * FPS)) + 1
    chroma_s = np.full((12, n), 1e-6)
    for start, dur, pitch in notes:
        chroma_s[int(pitch) % 12, int(start * FPS):int(np.ceil((start + dur) * FPS))] += 1.0
    shifts = [librosa.sequence.dtw(X=np.roll(chroma_s, k, axis=0), Y=chroma_a, metric="cosine", subseq=True)
              for k in range(12)]
    best = int(np.argmin([d[-1, :].min() for d, _ in shifts]))
    path = shifts[best][1][::-1]  # (score frame, recording frame), rising
    return np.interp(written * FPS, path[:, 0], path[:, 1]) / FPS


def errors(beats: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(beats[: len(truth)] - truth[: len(beats)]) * 1000


def main(argv: list[str] | None = None) -> int:
    import librosa
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kept", type=Path, help="the folder eval_alignment --keep wrote")
    p.add_argument("ours", type=Path, help="eval_alignment's JSON (Baton's errors per beat)")
    p.add_argument("--json", type=Path, help="write the table here (and a .md beside it)")
    args = p.parse_args(argv)
    ours = json.loads(args.ours.read_text())["alignment"]
    rows: dict[str, dict[str, list[float]]] = {}
    for npz in sorted(args.kept.glob("*.npz")):
        z = np.load(npz)
        name = str(z["name"])
        x, _ = librosa.load(str(npz.with_suffix(".wav")), sr=SR)
        notes, written, truth = z["notes"], z["written"], z["truth"]
        cut = max(float(truth[0]) - 0.3, 0.0)  # the music's start, told to synctoolbox in its second row
        found = {"Baton (align_score)": np.array(ours[name]["errors_ms"]),
                 "Baton, the harmony alone (no heard beats)": np.array(ours[name]["errors_ms_harmony_alone"]),
                 "synctoolbox MrMsDTW, chroma + DLNCO": errors(synctoolbox_beats(x, notes, written), truth),
                 "synctoolbox, told where the music starts": errors(
                     synctoolbox_beats(x[int(cut * SR):], notes, written) + cut, truth),
                 "librosa subsequence DTW, CQT chroma": errors(librosa_beats(x, notes, written), truth)}
        for method, err in found.items():
            rows.setdefault(method, {})[name] = [round(float(e), 1) for e in err]
        print(name, "  ".join(f"{m.split(',')[0]} {np.percentile(e, 95):.0f}" for m, e in found.items()), flush=True)
    table = {m: {"median_ms": float(np.median([np.median(e) for e in per.values()])),
                 "p95_ms_mean": float(np.mean([np.percentile(e, 95) for e in per.values()])),
                 "p95_ms_pooled": float(np.percentile(np.concatenate(list(per.values())), 95)),
                 "beyond_100ms": float(np.mean(np.concatenate(list(per.values())) > 100))} for m, per in rows.items()}
    text = "\n".join(["# Score aligners compared", "",
                      f"On the {len(next(iter(rows.values())))} performances of `training/eval_alignment.py` "
                      "(made by `tools/compare_aligners.py`). Beat error against the render's own beats.", "",
                      "| aligner | median of medians ms | mean p95 ms | p95 of all beats ms | beats off by > 100 ms |",
                      "| --- | --- | --- | --- | --- |"] +
                     [f"| {m} | {r['median_ms']:.0f} | {r['p95_ms_mean']:.0f} | {r['p95_ms_pooled']:.0f} | "
                      f"{100 * r['beyond_100ms']:.1f}% |" for m, r in table.items()]) + "\n"
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"summary": table, "errors_ms": rows}))
        args.json.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
