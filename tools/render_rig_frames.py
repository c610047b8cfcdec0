"""Render one frame of every test rig mid-gesture (Workbench, small PNGs) into docs/rigs/.

    .venv/bin/python -m tools.render_rig_frames [--take out/rigs/demo_take.npz] [--frame-time 17.2]

Each rig gets the same take (the rule-based engine on the bundled demo music, made on first use),
a baton in its right hand, and a camera in front of it at three-quarter view — placed from the rig's
own facing, so rigs that face +X or +Y are seen from the front too. Also writes docs/rigs/rigs.png
(all frames side by side) and docs/rigs/README.md with each rig's FK check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "rigs"
TAKE = ROOT / "out" / "rigs" / "demo_take.npz"
SIZE = (480, 360)
LABELS = {"rigify_metarig": "Rigify metarig", "rigify_fk": "Rigify generated rig (FK controls)",
          "makehuman": "MakeHuman / MPFB default", "ue4": "Unreal 4 mannequin names (MPFB game engine)",
          "ue5": "Unreal 5 mannequin names, cm, facing +X", "mixamo": "Mixamo (FBX-style, T-pose)",
          "vrm": "VRM (VRoid names, T-pose, facing +Y)", "cmu": "CMU motion capture (T-pose)",
          "conductor": "Baton's default conductor"}


def demo_take(path: Path = TAKE) -> dict:
    """The rules engine's take of the demo music (made once, cached under out/)."""
    if not path.exists():
        import soundfile as sf
        from backend.demo_music import demo_piece
        from backend.engine import generate_take
        path.parent.mkdir(parents=True, exist_ok=True)
        piece = demo_piece()
        wav = path.with_suffix(".wav")
        sf.write(wav, piece.samples, piece.sr)
        generate_take(wav, engine="rules", seed=1).save(path)
    z = np.load(path)
    header = json.loads(str(z["header"]))
    return {"keypoints_3d": z["keypoints_3d"].astype(np.float64), "beats": z["beats"], "fps": header["fps"],
            "start": header["start"]}


def _reset_scene():
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = SIZE
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = 30, 1.0
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "MATERIAL"
    shading.show_shadows, shading.show_cavity = True, True
    scene.display.shadow_focus = 0.6
    scene.render.image_settings.file_format = "PNG"
    world = bpy.data.worlds.new("World")
    world.color = (0.55, 0.57, 0.6)
    scene.world = world
    scene.view_settings.view_transform = "Standard"
    return scene


def _camera(scene, obj, rig_rest):
    """A camera at three-quarter front view of the rig, from its own facing."""
    import bpy
    from mathutils import Matrix, Vector
    mw = obj.matrix_world
    c = rig_rest.C
    forward = (mw.to_3x3() @ Vector(c @ np.array([0.0, -1.0, 0.0]))).normalized()
    left = (mw.to_3x3() @ Vector(c @ np.array([1.0, 0.0, 0.0]))).normalized()
    up = (mw.to_3x3() @ Vector(c @ np.array([0.0, 0.0, 1.0]))).normalized()
    chest = mw @ Vector(c @ (0.5 * (rig_rest.h["upper_arm_l"] + rig_rest.h["upper_arm_r"])))
    hip = mw @ Vector(c @ rig_rest.mid_hip)
    height = (chest - hip).length / 0.55  # torso → body scale in world units
    target = chest - up * 0.32 * height
    eye = target + forward * 3.4 * height - left * 1.6 * height + up * 0.3 * height
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    z = (eye - target).normalized()
    x = up.cross(z).normalized()
    cam.matrix_world = Matrix.Translation(eye) @ Matrix((x, z.cross(x), z)).transposed().to_4x4()
    cam.data.lens = 50
    cam.data.clip_end = 1000 * height
    scene.camera = cam


def render_all(frame_time: float, rigs: list[str]) -> dict[str, dict]:
    import bpy
    from baton_rigs.armature import bone_map_for, rig_rest
    from baton_rigs.conductor_rig import attach_baton
    from baton_rigs.keyframes import apply_take
    from tools.rig_builder import build_rig
    take = demo_take()
    DOCS.mkdir(parents=True, exist_ok=True)
    results = {}
    for kind in rigs:
        scene = _reset_scene()
        obj = build_rig(kind, with_mesh=True)
        if kind != "conductor":
            attach_baton(obj)
        report = apply_take(obj, take["keypoints_3d"], take["fps"], take["start"], take["beats"], frame_offset=1)
        _camera(scene, obj, rig_rest(obj, bone_map_for(obj)))
        frame = 1 + frame_time * 30
        scene.frame_set(int(frame))
        scene.render.filepath = str(DOCS / f"{kind}.png")
        bpy.ops.render.render(write_still=True)
        _shrink(DOCS / f"{kind}.png")
        results[kind] = {"convention": report.convention, "fk_mean_deg": report.fk_evaluated_mean_deg,
                         "fk_max_deg": report.fk_evaluated_max_deg, "frame": int(frame)}
        print(f"{kind}: {report.summary()}", flush=True)
    return results


def _shrink(path: Path) -> None:
    """A 256-colour palette keeps each committed PNG small."""
    from PIL import Image
    Image.open(path).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)


def contact_sheet(rigs: list[str]) -> None:
    from PIL import Image, ImageDraw
    cols = 3
    rows = (len(rigs) + cols - 1) // cols
    sheet = Image.new("RGB", (SIZE[0] * cols, SIZE[1] * rows), "white")
    for i, kind in enumerate(rigs):
        im = Image.open(DOCS / f"{kind}.png").convert("RGB")
        ImageDraw.Draw(im).text((8, 8), LABELS[kind], fill=(255, 255, 255))
        sheet.paste(im, ((i % cols) * SIZE[0], (i // cols) * SIZE[1]))
    sheet = sheet.resize((sheet.width * 2 // 3, sheet.height * 2 // 3))
    sheet.save(DOCS / "rigs.png")
    _shrink(DOCS / "rigs.png")


def write_note(results: dict[str, dict], frame_time: float) -> None:
    lines = ["# Every rig, mid-gesture", "",
             f"One frame ({frame_time:g} s into the demo music's take from the rule-based engine) of each test "
             "rig, rendered with Workbench by `tools/render_rig_frames.py`. The FK check compares the rig's "
             "joint directions, as Blender evaluates them, with the take's (8 frames across the take).", "",
             "![all rigs](rigs.png)", "", "| rig | bone map | FK check mean / max |", "|---|---|---|"]
    for kind, r in results.items():
        lines.append(f"| [{LABELS[kind]}]({kind}.png) | {r['convention']} | {r['fk_mean_deg']:.3f}° / {r['fk_max_deg']:.2f}° |")
    (DOCS / "README.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    from tools.rig_builder import RIGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame-time", type=float, default=17.2, help="seconds into the take")
    p.add_argument("--rig", action="append", choices=RIGS, help="only these rigs (default: all)")
    a = p.parse_args(argv)
    rigs = a.rig or list(RIGS)
    results = render_all(a.frame_time, rigs)
    if not a.rig:
        contact_sheet(rigs)
        write_note(results, a.frame_time)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
