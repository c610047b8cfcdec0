"""Rendered frames of the default conductor over one bar, side by side, each with the baton hand's path.

    .venv/bin/python -m tools.contact_sheet [--audio FILE] [--checkpoint PATH] [--bar 3] [--out PNG]
    # → training/results/contact_sheet.png and .md
    .venv/bin/python -m tools.contact_sheet --given-bars --out training/results/contact_sheet_given.png
    # the demo music's own beats and bars given, as an animator's markers give them

Why: numbers and stick figures say whether a take has its metre's pattern; a musician wants to see
it on the body Blender renders. The batch renderer (`python -m backend render`, run by name since
tools sit beside baton_render, not above it) conducts the music with m2sgan, seed 0, and saves its
stage as .blend; this renders the chosen bar's frames from that .blend with Workbench — each beat's
ictus and even subdivisions between, plus the next downbeat — and tiles them with matplotlib, each
over the right wrist's front-view path through the bar (the frame's point in red, the beats numbered).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from baton_core.skeleton import BONES, R_WRIST
from baton_core.take import Take, load_take

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "training" / "results" / "contact_sheet.png"
TILE = (512, 288)  # the batch renderer's 16:9, so its camera frames the conductor as in its videos
FRACTIONS = {Fraction(1, 2): "½", Fraction(1, 3): "⅓", Fraction(2, 3): "⅔", Fraction(1, 4): "¼", Fraction(3, 4): "¾"}


def render_blend(music: Path, folder: Path, checkpoint: str | None, given: bool) -> tuple[Path, Path]:
    """The batch renderer's take and .blend of `music` (it renders one frame; we render our own);
    with `given`, of the beats and bars in NAME.beats.txt and NAME.downbeats.txt beside it."""
    cmd = [sys.executable, "-m", "backend", "render", str(music), "--out", str(folder), "--engine", "m2sgan",
           "--seed", "0", "--frames", "1:1", "--resolution", "x".join(map(str, TILE)), "--save-blend", "--quiet"]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    if given:
        cmd += ["--given-beats"]
    if subprocess.run(cmd, cwd=ROOT).returncode:
        sys.exit("contact_sheet: the batch render failed (its error is above)")
    return folder / f"{music.stem}.take.npz", folder / f"{music.stem}.blend"


def bar_moments(take: Take, bar: int) -> list[tuple[str, float]]:
    """(label, seconds) for full bar `bar` (1: the one from the first downbeat): each counted beat,
    even subdivisions between (about 8 tiles in all), and the next bar's downbeat."""
    if len(take.downbeats) < bar + 1:
        sys.exit(f"contact_sheet: the take has {max(0, len(take.downbeats) - 1)} full bars, not {bar}")
    start, end = take.downbeats[bar - 1], take.downbeats[bar]
    beats = [b for b in take.pulse if start - 1e-6 <= b < end - 1e-6] + [end]
    sub = max(1, round(8 / (len(beats) - 1)))
    moments = []
    for i, (a, b) in enumerate(zip(beats, beats[1:])):
        for j in range(sub):
            part = "" if j == 0 else FRACTIONS.get(Fraction(j, sub), f" {j}/{sub}")
            moments.append((f"{bar}.{i + 1}{part}", a + (b - a) * j / sub))
    return moments + [(f"{bar + 1}.1", end)]


def render_frames(blend: Path, times: list[float], folder: Path) -> list[tuple[int, Path]]:
    """Workbench PNGs of the stage at each time (seconds from the take's frame 0, heard from the
    music strip's first frame): [(scene frame, file)]."""
    import bpy
    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
    scene = bpy.context.scene
    first = scene.sequence_editor.strips_all[0].frame_start
    fps = scene.render.fps / scene.render.fps_base
    scene.render.image_settings.media_type = "IMAGE"
    scene.render.image_settings.file_format = "PNG"
    out = []
    for t in times:
        frame = int(first + round(t * fps))
        scene.frame_set(frame)
        scene.render.filepath = str(folder / f"frame_{frame:05d}.png")
        bpy.ops.render.render(write_still=True)
        out.append((frame, Path(scene.render.filepath)))
    return out


def draw_sheet(take: Take, moments, frames, title: str, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kp = take.keypoints_2d
    at = lambda t: min(kp.shape[0] - 1, round(t * take.fps))
    path = kp[at(moments[0][1]):at(moments[-1][1]) + 1, R_WRIST]
    beat_pts = [(label.split(".")[1], kp[at(t), R_WRIST]) for label, t in moments[:-1] if label.split(".")[1].isdigit()]
    pose = kp[[at(t) for _, t in moments]]
    pad = 0.15 * np.ptp(path, axis=0).max()
    lo, hi = path.min(0) - pad, path.max(0) + pad
    cols = math.ceil(math.sqrt(len(moments)))
    rows = math.ceil(len(moments) / cols)
    w, h = TILE[0] / 100, TILE[1] / 100
    fig, axes = plt.subplots(2 * rows, cols, figsize=(w * cols, 1.6 * h * rows + 0.4), squeeze=False,
                             gridspec_kw={"height_ratios": [h, 0.6 * h] * rows, "hspace": 0.03, "wspace": 0.02})
    for ax in axes.flat:
        ax.axis("off")
    for k, ((label, t), (frame, png), p) in enumerate(zip(moments, frames, pose)):
        img, trace = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        img.imshow(plt.imread(png))
        img.text(8, 10, label, color="white", fontsize=17, weight="bold", va="top",
                 bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none"})
        img.text(TILE[0] - 8, 10, f"{t:.2f} s\nframe {frame}", color="white", fontsize=10, ha="right", va="top",
                 bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none"})
        for a, b in BONES:
            trace.plot(*p[[a, b]].T, color="0.75", lw=1.5)
        trace.plot(*path.T, color="tab:blue", lw=1.2)
        for name, q in beat_pts:
            trace.plot(*q, "o", color="black", ms=3)
            trace.annotate(name, q, xytext=(3, 3), textcoords="offset points", fontsize=8)
        trace.plot(*p[R_WRIST], "o", color="red", ms=7)
        trace.set_xlim(lo[0], hi[0])
        trace.set_ylim(hi[1], lo[1])  # image units: y down
        trace.set_aspect("equal", adjustable="datalim")
    fig.suptitle(title, fontsize=12)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio", type=Path, help="music (default: the bundled demo piece)")
    p.add_argument("--checkpoint", help="m2sgan checkpoint (default: the bundled one)")
    p.add_argument("--bar", type=int, default=3, help="which full bar (1: the one from the first downbeat)")
    p.add_argument("--out", type=Path, default=OUT, help="the sheet's PNG; its note goes beside it as .md")
    p.add_argument("--given-bars", action="store_true", help="the demo music's own beats and bars given (not with --audio)")
    args = p.parse_args(argv)
    if args.given_bars and args.audio:
        p.error("--given-bars gives the demo music's own bars: leave out --audio")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="baton-contact-") as tmp:
        tmp = Path(tmp)
        music = args.audio
        if music is None:
            import soundfile as sf
            from backend.demo_music import demo_piece
            piece, music = demo_piece(), tmp / "demo.wav"
            sf.write(music, piece.samples, piece.sr)
            if args.given_bars:
                (tmp / "demo.beats.txt").write_text("\n".join(f"{t:.6f}" for t in piece.beats) + "\n")
                (tmp / "demo.downbeats.txt").write_text("\n".join(f"{t:.6f}" for t in piece.downbeats) + "\n")
        take_path, blend = render_blend(music.resolve(), tmp / "render", args.checkpoint, args.given_bars)
        take = load_take(take_path)
        moments = bar_moments(take, args.bar)
        frames = render_frames(blend, [t for _, t in moments], tmp)
        pv = take.provenance
        span = f"{moments[0][1]:.2f}–{moments[-1][1]:.2f} s"
        title = (f"{pv['engine']}, seed {pv['seed']}, {'demo music' if args.audio is None else music.name}"
                 f"{' (its beats and bars given)' if args.given_bars else ' (beats and bars heard)'}: "
                 f"bar {args.bar} ({span}); below each frame the baton hand's path through the bar")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        draw_sheet(take, moments, frames, title, args.out)
    took = time.perf_counter() - t0
    shown = ", ".join(f"{label} ({t:.2f} s, frame {f})" for (label, t), (f, _) in zip(moments, frames))
    note = [f"# Contact sheet: bar {args.bar}", "", f"![contact sheet]({args.out.name})", "",
            f"Made by `.venv/bin/python -m tools.contact_sheet {' '.join(argv if argv is not None else sys.argv[1:])}`"
            f" in {took:.0f} s: the batch renderer (`python -m backend render`) conducted "
            f"{'the bundled demo music (backend/demo_music.py)' if args.audio is None else f'`{music.name}`'} "
            f"(audio SHA-256 `{pv['audio_sha256'][:12]}…`) with engine **{pv['engine']}**, seed {pv['seed']}, "
            f"checkpoint `{Path(pv.get('checkpoint', '-')).name}` (SHA-256 `{pv.get('checkpoint_sha256', '-')[:12]}…`) "
            f"on Baton's stage with the default conductor; the frames are Workbench renders at "
            f"{TILE[0]}×{TILE[1]} from its saved .blend.", "",
            f"Bar {args.bar} is the take's own ({'the demo music’s own bars, given' if args.given_bars else 'its heard downbeats'}), {span}, "
            f"{sum(1 for label, _ in moments[:-1] if label.split('.')[1].isdigit())} beats. Frames shown "
            f"(bar.beat, seconds from the take's start, scene frame): {shown}.", "",
            "Under each frame: the right wrist's path through the bar in the front view (the musicians' side: "
            "the conductor's right hand is on the left), the beats' points numbered, this frame's point red, "
            "and this frame's pose in grey."]
    args.out.with_suffix(".md").write_text("\n".join(note) + "\n", encoding="utf-8")
    print(f"{args.out} and {args.out.with_suffix('.md').name} in {took:.0f} s")


if __name__ == "__main__":
    main()
