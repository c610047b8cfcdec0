"""A screenshot-equivalent of the extension at work: docs/addon_conduct.png.

    .venv/bin/python tools/render_addon_frame.py

Builds the extension zip, installs and enables it in a fresh `bpy` session (a throw-away extension
repository; the user's preferences are not saved), makes the scene an animator would — the demo
music as a trimmed, offset sound strip at 24 fps, no armature chosen, 'Add Default Conductor' on —
and presses Conduct (the operator, blocking path). The add-on starts the engine itself. Then one
frame at an ictus is rendered with Workbench (640×360), and a band under it shows the strip's
window on the timeline, the frames where its beats are heard (from the music's known beat times and
the strip's own placement) and the frames where the conductor's baton hand bottoms out (as Blender
evaluates the keyed rig): they coincide.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "addon_conduct.png"
SIZE = (640, 360)
BAND = 64


def build_zip(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("baton_build", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.build_addon(folder, python=Path(sys.executable))


def install_addon(tmp: Path, module: str) -> str:
    """Build the extension, install and enable it from a throw-away repository `module` in `tmp`
    (the user's preferences are not saved); returns its package name."""
    import bpy
    prefs = bpy.context.preferences
    prefs.use_preferences_save = False
    prefs.extensions.repos.new(name=module, module=module, custom_directory=str(tmp / "ext"))
    bpy.ops.extensions.package_install_files(repo=module, filepath=str(build_zip(tmp)), enable_on_install=False)
    pkg = f"bl_ext.{module}.baton"
    bpy.ops.preferences.addon_enable(module=pkg)
    return pkg


def workbench_look(scene, size: tuple[int, int]) -> None:
    """The docs' renders: Workbench, studio light, shadows and cavity, a grey world."""
    import bpy
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "MATERIAL"
    shading.show_shadows, shading.show_cavity = True, True
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("World")
    world.color = (0.55, 0.57, 0.6)
    scene.world = world


def main() -> None:
    import bpy
    import soundfile as sf
    from mathutils import Vector
    from PIL import Image, ImageDraw

    sys.path.insert(0, str(ROOT))
    from backend.demo_music import demo_piece

    tmp = Path(tempfile.mkdtemp(prefix="baton-render-"))
    piece = demo_piece()
    music = tmp / "demo_music.wav"
    sf.write(music, piece.samples, piece.sr)

    pkg = install_addon(tmp, "baton_docs")
    armature = importlib.import_module("baton_rigs.armature")  # the rig library, a wheel in the extension
    bonemap = importlib.import_module("baton_rigs.bonemap")
    takes = importlib.import_module(f"{pkg}.takes")

    scene = bpy.data.scenes.new("Conducting")
    bpy.context.window.scene = scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_sound("Demo music", str(music), 1, 1)
    strip.sound_offset, strip.frame_offset_start = 1.5, 24
    strip.frame_offset_end = strip.frame_duration - 24 - 24 * 14
    editor.active_strip = strip
    scene.baton.armature, scene.baton.add_conductor, scene.baton.seed = None, True, 7
    if bpy.ops.baton.conduct() != {"FINISHED"}:
        sys.exit("conduct failed")
    arm = scene.baton.armature
    take = arm.animation_data.action
    fps = scene.render.fps / scene.render.fps_base

    # where the baton hand bottoms out, and where the beats are heard
    hand = arm.pose.bones[armature.bone_map_for(arm).bones[bonemap.BATON_HAND]]
    frames = np.arange(strip.frame_final_start, strip.frame_final_end)
    z = []
    for f in frames:
        scene.frame_set(int(f))
        z.append((arm.matrix_world @ hand.head).z)
    z = np.array(z)
    ictus = [int(frames[i]) for i in range(3, len(z) - 3)
             if z[i] == z[i - 3:i + 4].min() and min(z[i - 3], z[i + 3]) - z[i] > 0.005]
    heard = strip.frame_start + (piece.beats - strip.sound_offset) * fps
    heard = heard[(heard >= frames[0]) & (heard <= frames[-1])]
    shown = ictus[8]

    # the picture: Workbench, a floor, a three-quarter front camera
    workbench_look(scene, SIZE)
    floor = bpy.data.objects.new("Floor", bpy.data.meshes.new("Floor"))
    floor.data.from_pydata([(-20, -20, 0), (20, -20, 0), (20, 20, 0), (-20, 20, 0)], [], [(0, 1, 2, 3)])
    scene.collection.objects.link(floor)
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    cam.location = (1.1, -3.0, 1.45)
    cam.rotation_euler = (Vector((0.0, 0.0, 1.12)) - cam.location).to_track_quat("-Z", "Y").to_euler()
    cam.data.lens = 38
    scene.camera = cam
    scene.frame_set(shown)
    scene.render.filepath = str(tmp / "frame.png")
    bpy.ops.render.render(write_still=True)

    # the band: strip window, beats heard (above), ictus keyed (below), the rendered frame
    image = Image.open(tmp / "frame.png").convert("RGB")
    canvas = Image.new("RGB", (SIZE[0], SIZE[1] + BAND), (34, 36, 40))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0, x1, top = 12, SIZE[0] - 12, SIZE[1]

    def x(frame: float) -> float:
        return x0 + (frame - frames[0]) / (frames[-1] - frames[0]) * (x1 - x0)

    draw.rectangle((x0, top + 22, x1, top + 40), fill=(52, 92, 120))
    for f in heard:
        draw.line((x(f), top + 14, x(f), top + 30), fill=(255, 210, 90), width=2)
    for f in ictus:
        draw.line((x(f), top + 32, x(f), top + 48), fill=(240, 240, 240), width=2)
    draw.line((x(shown), top + 8, x(shown), top + 54), fill=(230, 70, 60), width=2)
    start = (strip.frame_final_start - strip.frame_start) / fps + strip.sound_offset
    draw.text((x0, top + 2), f"sound strip, frames {frames[0]}-{frames[-1]} (file {start:.1f}-"
                             f"{start + len(frames) / fps:.1f} s)   yellow: beats heard   white: ictus keyed",
              fill=(220, 220, 220))
    draw.text((x0, top + 50), f"take '{take.name}' ({takes.info(take)['engine']} engine), frame {shown} "
                              f"(red): the conductor's ictus", fill=(220, 220, 220))
    canvas.save(OUT)
    print(f"{OUT.relative_to(ROOT)}: frame {shown}; ictus {ictus[:6]}...; heard {np.round(heard[:6], 1)}...")
    bpy.ops.preferences.addon_disable(module=pkg)


if __name__ == "__main__":
    main()
