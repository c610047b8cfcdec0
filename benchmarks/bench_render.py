"""Batch rendering speed on this machine: frames per second of each render engine at 640×360 on
Baton's default stage, and the stick-figure preview's speed against real time.

Every number comes from `python -m backend render` itself (the per-piece record's timings), so it
measures what a user runs. The yardstick is the music's own playback: a ratio ≥ 1 renders faster
than real time. Writes benchmarks/render_results.md and .json.

    .venv/bin/python benchmarks/bench_render.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# frames rendered per engine: enough for a steady rate, few enough for the slow engines
ENGINES = {"workbench": (120, None), "eevee": (24, 16), "cycles": (12, 16)}


def render(music: Path, out: Path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "backend", "render", str(music), "--out", str(out), "--force",
                           "--json", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"render {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    stem = music.stem + (".preview" if "--preview" in args else "")
    return json.loads((out / "manifest.json").read_text())["pieces"][stem]


def main() -> None:
    from backend.demo_music import demo_piece

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "resolution": "640x360", "engines": {}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        piece = demo_piece()
        music = tmp / "demo.ogg"
        sf.write(music, piece.samples, piece.sr)
        seconds = len(piece.samples) / piece.sr
        for name, (frames, samples) in ENGINES.items():
            args = ["--render-engine", name, "--resolution", "640x360", "--frames", f"30:{29 + frames}"]
            if samples:
                args += ["--samples", str(samples)]
            rec = render(music, tmp / name, *args)
            fps = rec["timings"]["render_fps"]
            results["engines"][name] = {"frames": frames, "samples": samples, "render_fps": fps,
                                        "x_real_time": round(fps / 30.0, 3),
                                        "seconds_per_minute_of_music": round(60 * 30 / fps, 1)}
        rec = render(music, tmp / "preview", "--preview")
        t = rec["timings"]["render_s"]
        results["preview"] = {"music_s": round(seconds, 2), "draw_and_encode_s": t, "x_real_time": round(seconds / t, 1),
                              "whole_piece_s": rec["timings"]["total_s"]}

    (ROOT / "benchmarks" / "render_results.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# Batch rendering speed", "",
             f"Machine: {results['machine']}. Written by `benchmarks/bench_render.py` on {date.today()}; "
             "Baton's default stage, demo music, 30 fps, everything timed by `python -m backend render` itself.", "",
             "| render engine | samples | frames timed | frames/s | × real time | render time per minute of music |",
             "|---|---|---|---|---|---|"]
    for name, r in results["engines"].items():
        lines.append(f"| {name} | {r['samples'] or '—'} | {r['frames']} | {r['render_fps']} | {r['x_real_time']} | "
                     f"{r['seconds_per_minute_of_music']} s |")
    p = results["preview"]
    lines += ["", f"Preview (stick figure + audio, `--preview`): {p['music_s']} s of music drawn and encoded in "
              f"{p['draw_and_encode_s']} s — {p['x_real_time']}× real time; the whole piece including the take "
              f"and process start-up: {p['whole_piece_s']} s."]
    (ROOT / "benchmarks" / "render_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
