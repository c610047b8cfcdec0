"""The recordings evaluation set: one-minute excerpts of real recorded orchestral game music from a
package installable here, cut the same way every time (the audio is never committed).

    apt-get install wesnoth-1.16-music          # 150 MB of Ogg Vorbis, GPL-2+ (its copyright file)
    .venv/bin/python -m tools.recordings_set data/recordings
    /path/to/eval-only/python tools/reference_beats.py data/recordings   # the references (madmom)
    .venv/bin/python -m training.evaluate --recordings data/recordings --checkpoint backend/weights/baton_m2sgan.pt

Why these: Battle for Wesnoth's soundtrack is real recorded (and mastered) orchestral and folk
ensemble music by several composers, dense, reverberant and often with percussion — what an
animator brings — and it is a Debian package, so the set can be rebuilt on any machine. Each track
of at least 70 s gives one excerpt: the minute from 20 s in (from its last 62 s when shorter), mono,
22.05 kHz FLAC. Stingers (victory, defeat) and the silent track are too short to be cut.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
PACKAGE = "wesnoth-1.16-music"
MIN_TRACK_S = 70.0
EXCERPT_S = 60.0
START_S = 20.0
SR = 22050


def excerpt_start(duration: float) -> float | None:
    """Where a track's excerpt starts, or None when the track is too short to give one."""
    if duration < MIN_TRACK_S:
        return None
    return min(START_S, duration - EXCERPT_S - 2.0)


def main(argv: list[str] | None = None) -> int:
    import soundfile as sf
    import soxr

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder for the excerpts (FLAC)")
    p.add_argument("--music", type=Path, default=MUSIC, help=f"the {PACKAGE} package's music folder")
    args = p.parse_args(argv)
    tracks = sorted(args.music.glob("*.ogg"))
    if not tracks:
        print(f"error: no .ogg files in {args.music} (apt-get install {PACKAGE})", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    made = 0
    for track in tracks:
        info = sf.info(track)
        start = excerpt_start(info.duration)
        if start is None:
            continue
        x, sr = sf.read(track, start=int(start * info.samplerate), frames=int(EXCERPT_S * info.samplerate),
                        dtype="float32", always_2d=True)
        y = soxr.resample(x.mean(axis=1), sr, SR).astype(np.float32)
        sf.write(args.out / f"{track.stem}.flac", y, SR)
        made += 1
        print(f"{track.stem}: {start:.0f}–{start + EXCERPT_S:.0f} s")
    print(f"{made} excerpts in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
