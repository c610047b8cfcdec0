"""`python -m backend …`: generate a take from music, or describe a take.

Every failure a user can cause exits non-zero with one line on stderr saying what and why.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import BatonError

EXIT_USAGE, EXIT_INPUT, EXIT_INTERNAL = 2, 3, 1


class _Progress:
    """A one-line progress bar on stderr for requests that take more than a second (redrawn in
    place on a terminal, every 10% otherwise); short requests stay quiet."""

    DELAY = 1.0

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = -1.0
        self.t0 = time.perf_counter()

    def __call__(self, fraction: float, stage: str) -> None:
        if not self.enabled or time.perf_counter() - self.t0 < self.DELAY:
            return
        if not self.tty and fraction - self.last < 0.1 and fraction < 1.0:
            return
        self.last = fraction
        bar = "#" * int(fraction * 30)
        line = f"[{bar:<30}] {fraction * 100:5.1f}% {stage:<16}"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _parser() -> argparse.ArgumentParser:
    from .engine import DEFAULT_ENGINE, ENGINES

    p = argparse.ArgumentParser(prog="python -m backend", description="Baton: music in, conducting motion out.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="conduct a piece of music into a take (.npz or .json)")
    g.add_argument("music", help="audio file (WAV, FLAC, OGG, MP3, …)")
    g.add_argument("-o", "--output", required=True, help="take file to write: .npz or .json")
    g.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE)
    g.add_argument("--checkpoint", help="generator checkpoint for --engine m2sgan (ours or the paper's file)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--start", type=float, help="slice start, seconds into the file")
    g.add_argument("--duration", type=float, help="slice length in seconds")
    g.add_argument("--noise", help="m2sgan: .npy array of noise, one row per second of music")
    g.add_argument("--no-smooth", action="store_true", help="m2sgan: keep the raw 10 Hz ripple")
    g.add_argument("--preview", help="also write a stick-figure MP4 with the music")
    g.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    i = sub.add_parser("info", help="describe a take file")
    i.add_argument("take")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def _summary(take, path: Path) -> dict:
    return {"take": str(path), "frames": take.n_frames, "fps": take.fps, "start": take.start,
            "duration": round(take.duration, 3), "beats": int(len(take.beats)), "tempo": round(take.tempo, 2),
            "provenance": take.provenance}


def _generate(args) -> dict:
    from .engine import generate_take
    from .take import TakeError

    out = Path(args.output)
    if out.suffix not in (".npz", ".json"):
        raise TakeError(f"{out}: the take is written as .npz or .json, not {out.suffix or 'no suffix'!r}")
    noise = None
    if args.noise:
        try:
            noise = np.load(args.noise, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise BatonError(f"{args.noise}: not a readable .npy noise array ({e})") from None
    progress = _Progress(enabled=not args.json)
    t0 = time.perf_counter()
    take = generate_take(args.music, engine=args.engine, seed=args.seed, checkpoint=args.checkpoint,
                         start=args.start, duration=args.duration, noise=noise, smooth=not args.no_smooth,
                         progress=progress)
    take.save(out)
    summary = _summary(take, out) | {"seconds": round(time.perf_counter() - t0, 3)}
    if args.preview:
        from .preview import render_preview
        summary["preview"] = str(render_preview(take, args.music, args.preview))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate":
            summary = _generate(args)
        else:
            from .take import load_take
            summary = _summary(load_take(args.take), Path(args.take))
    except BatonError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: still one line, with the type for the report
        print(f"error: internal error ({type(e).__name__}: {e})", file=sys.stderr)
        return EXIT_INTERNAL
    if args.json:
        print(json.dumps(summary))
    else:
        p = summary
        line = (f"{p['take']}: {p['frames']} frames at {p['fps']:g} fps ({p['duration']:.2f} s from "
                f"{p['start']:.2f} s), {p['beats']} beats at {p['tempo']:.1f} bpm, "
                f"engine {p['provenance'].get('engine')}, seed {p['provenance'].get('seed')}")
        print(line)
        if "preview" in p:
            print(f"preview: {p['preview']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
