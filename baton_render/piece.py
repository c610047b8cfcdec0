"""One piece of a batch render, in its own process: `python -m baton_render.piece SPEC.json EVENTS`.

The parent (backend/batch.py) writes the spec; this process generates the take, stages it in
Blender (or draws the stick-figure preview), renders the MP4 to a temporary name and renames it
when complete, so an MP4 under its final name is always a finished one. Progress and the final
error are appended to the file EVENTS as JSON lines, a line at a time (the parent reads it as it
grows, on every platform); Blender's own chatter goes to stdout (the piece's log).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from backend.batch import PieceSpec
from baton_core.errors import BatonError
from baton_core.naming import action_name
from baton_core.request import ConductRequest


class Events:
    def __init__(self, path: Path):
        self.sink = open(path, "a", buffering=1, encoding="utf-8")

    def __call__(self, **event) -> None:
        self.sink.write(json.dumps(event) + "\n")


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def run(spec: PieceSpec, emit: Events) -> dict:
    from backend.engine import generate_take

    timings = {}
    t0 = time.perf_counter()
    emit(stage="take")
    request = ConductRequest.from_dict(spec.request)
    music = Path(request.audio_path)
    take = generate_take(request)
    take.save(spec.take)
    timings["take_s"] = round(time.perf_counter() - t0, 3)
    out = Path(spec.video)
    tmp = _tmp(out)
    record = {"frames": None, "fps": None}
    if spec.preview:
        from backend.preview import render_preview

        t1 = time.perf_counter()
        emit(stage="preview")
        render_preview(take, music, tmp, size=spec.resolution[1] if spec.resolution else 480)
        timings["render_s"] = round(time.perf_counter() - t1, 3)
        record.update(frames=[0, take.n_frames - 1], fps=take.fps)
    else:
        record.update(_render_in_blender(spec, take, music, tmp, emit, timings))
    os.replace(tmp, out)
    if spec.blend:
        import bpy

        bpy.ops.wm.save_as_mainfile(filepath=str(spec.blend), copy=True)
    timings["total_s"] = round(time.perf_counter() - t0, 3)
    return record | {"timings": timings, "provenance": take.provenance,
                     "beats": int(len(take.beats)), "duration_s": round(take.duration, 3)}


def _render_in_blender(spec: PieceSpec, take, music: Path, tmp: Path, emit: Events, timings: dict) -> dict:
    import math

    from . import stage

    t1 = time.perf_counter()
    emit(stage="scene")
    if spec.scene:
        scene, armature = stage.open_user_scene(Path(spec.scene), spec.armature)
    else:
        scene, armature = stage.build_default_stage()
    if spec.fps:
        scene.render.fps, scene.render.fps_base = stage.fps_pair(spec.fps)
    fps = stage.scene_fps(scene)
    first = scene.frame_start
    report = stage.apply_take(scene, armature, take, first, name=action_name(music.stem, spec.request["seed"]))
    if spec.exports:
        import bpy
        from baton_rigs.export import export_action

        emit(stage="export")
        for path in spec.exports:
            export_action(armature, bpy.data.actions[report.action], path)
    stage.place_music(scene, music, take, first)
    last_heard = first + max(1, math.ceil(take.duration * fps)) - 1
    frames = tuple(spec.frames) if spec.frames else (first, last_heard)
    if frames[0] > frames[1]:
        raise BatonError(f"--frames {frames[0]}:{frames[1]}: the first frame is after the last")
    stage.configure_output(scene, tmp, resolution=spec.resolution, render_engine=spec.render_engine,
                           samples=spec.samples, frames=frames, threads=spec.threads)
    timings["setup_s"] = round(time.perf_counter() - t1, 3)
    t2 = time.perf_counter()
    stage.render(scene, lambda done, total, left: emit(stage="render", done=done, total=total, left_s=round(left, 1)))
    timings["render_s"] = round(time.perf_counter() - t2, 3)
    n = frames[1] - frames[0] + 1
    timings["render_fps"] = round(n / max(timings["render_s"], 1e-9), 2)
    return {"frames": list(frames), "fps": fps, "armature": armature.name, "scene": scene.name,
            "action": report.action, "rig_convention": report.convention, "keys": report.keys}


def main(argv: list[str]) -> int:
    spec = PieceSpec.read(Path(argv[0]))
    emit = Events(Path(argv[1]))
    try:
        record = run(spec, emit)
    except BatonError as e:
        emit(error=str(e))
        return 3
    except Exception as e:  # a bug: one line for the summary, the traceback for the log
        import traceback

        traceback.print_exc()
        emit(error=f"internal error ({type(e).__name__}: {e})")
        return 1
    Path(spec.record).write_text(json.dumps(record))
    emit(stage="done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
