"""`python -m backend …`: generate a take from music, describe a take, serve, or batch-render.

Every failure a user can cause exits non-zero with one line on stderr saying what and why.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from baton_core.errors import BatonError

EXIT_INPUT, EXIT_INTERNAL = 3, 1


class _Progress:
    """A one-line progress bar on an interactive stderr, shown once a request has taken a second
    (short requests and scripts stay quiet)."""

    DELAY = 1.0

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.open = False  # a bar is on the current line

    def __call__(self, fraction: float, stage: str) -> None:
        if not self.enabled or time.perf_counter() - self.t0 < self.DELAY:
            return
        bar = "#" * int(fraction * 30)
        sys.stderr.write(f"\r[{bar:<30}] {fraction * 100:5.1f}% {stage:<16}")
        self.open = fraction < 1.0
        if not self.open:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            self.open = False


GENERATE_OPTIONS = ("engine", "checkpoint", "seed", "start", "duration", "fps", "smooth", "score", "beats", "downbeats", "lead_ms",
                    "size", "left_hand", "hand", "arms_only", "seating")

def _parser() -> argparse.ArgumentParser:
    from baton_core.request import add_arguments

    p = argparse.ArgumentParser(prog="python -m backend", description="Baton: music in, conducting motion out.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the local HTTP service (see `serve --help`)")
    sub.add_parser("render", help="conduct and render pieces to MP4 videos (see `render --help`)")
    g = sub.add_parser("generate", help="conduct a piece of music into a take (.npz or .json)")
    g.add_argument("music", help="audio file (WAV, FLAC, OGG, MP3, …)")
    g.add_argument("-o", "--output", required=True, action="append",
                   help="take file to write: .npz or .json (repeat for both)")
    add_arguments(g, GENERATE_OPTIONS)
    g.add_argument("--noise", help="m2sgan: .npy array of noise, one row per second of music (instead of the seed's)")
    g.add_argument("--preview", help="also write a stick-figure .mp4 with the music")
    g.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    i = sub.add_parser("info", help="describe a take file")
    i.add_argument("take")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def _summary(take, path: Path) -> dict:
    return {"take": str(path), "frames": take.n_frames, "fps": take.fps, "start": take.start,
            "duration": round(take.duration, 3), "beats": int(len(take.beats)), "tempo": round(take.tempo, 2),
            "provenance": take.provenance}


def _load_noise(path: str):
    import numpy as np

    try:
        noise = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise BatonError(f"{path}: not a readable .npy noise array ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(noise, np.ndarray):
        raise BatonError(f"{path}: holds several arrays (.npz); give one .npy array, one row per second")
    return noise


def _generate(args, progress: _Progress) -> dict:
    from baton_core.request import ConductRequest
    from baton_core.take import check_take_path
    from .engine import generate_take

    outputs = [check_take_path(o) for o in args.output]
    if args.preview and Path(args.preview).suffix.lower() != ".mp4":
        raise BatonError(f"{args.preview}: the preview is an .mp4 video")
    request = ConductRequest(audio_path=args.music, **{k: getattr(args, k) for k in GENERATE_OPTIONS})
    noise = _load_noise(args.noise) if args.noise else None
    t0 = time.perf_counter()
    take = generate_take(request, progress, noise)
    for out in outputs:
        take.save(out)
    summary = _summary(take, outputs[0]) | {"seconds": round(time.perf_counter() - t0, 3)}
    if len(outputs) > 1:
        summary["also"] = [str(o) for o in outputs[1:]]
    if args.preview:
        from .preview import render_preview
        summary["preview"] = str(render_preview(take, args.music, args.preview))
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the service has its own options (backend/service.py)
        from .service import serve
        return serve(argv[1:])
    if argv[:1] == ["render"]:  # batch rendering has its own options too (backend/batch.py)
        from .batch import main as render
        return render(argv[1:])
    args = _parser().parse_args(argv)
    progress = _Progress(enabled=not args.json)
    try:
        if args.command == "generate":
            summary = _generate(args, progress)
        else:
            from baton_core.take import load_take
            summary = _summary(load_take(args.take), Path(args.take))
    except BatonError as e:
        progress.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        progress.close()
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: still one line, with the type for the report
        progress.close()
        print(f"error: internal error ({type(e).__name__}: {e})", file=sys.stderr)
        return EXIT_INTERNAL
    if args.json:
        print(json.dumps(summary))
        return 0
    p = summary
    print(f"{p['take']}: {p['frames']} frames at {p['fps']:g} fps ({p['duration']:.2f} s from "
          f"{p['start']:.2f} s), {p['beats']} beats at {p['tempo']:.1f} bpm, "
          f"engine {p['provenance'].get('engine')}, seed {p['provenance'].get('seed')}")
    for other in p.get("also", []):
        print(f"also written: {other}")
    if "preview" in p:
        print(f"preview: {p['preview']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
