"""Reference beats and bar lines for recordings, from a tracker that is not Baton's: madmom's
RNN downbeat tracker with its DBN over bars of 2, 3 and 4 beats (Böck, Krebs & Widmer 2016).
For each audio file in a folder, and each clip's audio in a corpus split's folder, it writes
`<name>.beats.txt` and `<name>.downbeats.txt` beside it (one time in seconds per line), which
`training.evaluate --recordings` reads as the reference, and `training.evaluate --corpus …
--reference-bars` as another tracker's hearing of the score's bars.

    /tmp/madmom-env/bin/python tools/reference_beats.py data/recordings
    /tmp/madmom-env/bin/python tools/reference_beats.py data/corpus/test

For evaluation only. madmom's code is BSD, but its trained models are CC BY-NC-SA 4.0: they are
never shipped, never imported by Baton, and what they output is never trained on (the recordings it
labels are the evaluation set). It runs in a Python of its own, because madmom 0.16.1 (the last
release) predates Python 3.11 and numpy 1.24:

    python3.11 -m venv /tmp/madmom-env
    /tmp/madmom-env/bin/pip install "numpy<1.24" "cython<3" scipy mido soundfile wheel setuptools
    /tmp/madmom-env/bin/pip download --no-deps --no-binary :all: madmom==0.16.1 && tar xzf madmom-0.16.1.tar.gz
    find madmom-0.16.1/madmom -name "*.c" -delete        # its shipped C files do not build on 3.11
    /tmp/madmom-env/bin/pip install --no-build-isolation ./madmom-0.16.1
    sed -i 's/from collections import MutableSequence/from collections.abc import MutableSequence/' \\
        /tmp/madmom-env/lib/python3.11/site-packages/madmom/processors.py

The audio is resampled to the 44.1 kHz the models were trained at here (madmom would call ffmpeg).
"""

from __future__ import annotations

import sys
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

AUDIO = (".flac", ".wav", ".ogg", ".aiff", ".aif")
MODEL_SR = 44100
BEATS_PER_BAR = [2, 3, 4]


def track(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(beats, downbeats) in seconds."""
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != MODEL_SR:
        g = gcd(sr, MODEL_SR)
        x = resample_poly(x, MODEL_SR // g, sr // g).astype(np.float32)
    act = RNNDownBeatProcessor()(Signal(x, sample_rate=MODEL_SR))
    out = DBNDownBeatTrackingProcessor(beats_per_bar=BEATS_PER_BAR, fps=100)(act)
    return out[:, 0], out[out[:, 1] == 1, 0]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    folder = Path(argv[0])
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO)
    files += sorted(p for p in folder.glob("*/audio.*") if p.suffix.lower() in AUDIO)  # a corpus split's clips
    for path in files:
        beats, downbeats = track(path)
        stem = path.with_suffix("")
        np.savetxt(f"{stem}.beats.txt", beats, fmt="%.3f")
        np.savetxt(f"{stem}.downbeats.txt", downbeats, fmt="%.3f")
        print(f"{path.relative_to(folder)}: {len(beats)} beats, {len(downbeats)} bars")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
