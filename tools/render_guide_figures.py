"""The user guide's pictures: correcting a downbeat (docs/guide/downbeat_before_after.png) and what
the gesture controls do (docs/guide/gesture_controls.png).

    .venv/bin/python tools/render_guide_figures.py

Installs the extension in a fresh `bpy` session (a throw-away extension repository; the user's
preferences are not saved), conducts the demo music on the default conductor with the default
engine (the generator), then does what an
animator does when the bar lines are a beat off: Set Bars from the wrong marker (before), then from
the right one (after), conducting each. For one bar of each take it renders the frame of that bar's
true downbeat (Workbench, seen from the orchestra) and draws the baton hand's path through the bar
over it, each ictus numbered as the true bar counts it: after the correction, 1 is the big fall.
The controls' picture draws the hands' paths over two bars of the same music and seed, seen from
the orchestra, as the engine makes them with each control set.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "guide" / "downbeat_before_after.png"
CONTROLS_OUT = ROOT / "docs" / "guide" / "gesture_controls.png"
SIZE = (480, 400)
BAND = 54


def _stage(bpy, scene):
    from mathutils import Vector

    from tools.render_addon_frame import workbench_look
    workbench_look(scene, SIZE)
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    cam.location = (0.0, -3.4, 1.45)  # where the orchestra sits
    cam.rotation_euler = (Vector((0.0, 0.0, 1.3)) - cam.location).to_track_quat("-Z", "Y").to_euler()
    cam.data.lens = 85  # the upper body: the pattern fills the frame
    scene.camera = cam
    return cam


def controls_figure(music: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from backend.engine import generate_take
    from baton_core.skeleton import L_WRIST, R_WRIST
    cases = [("as conducted", {}), ("size 0.5", {"size": 0.5}), ("size 1.6", {"size": 1.6}),
             ("left hand 0", {"left_hand": 0.0}), ("baton in the left hand", {"hand": "left"})]
    fig, axes = plt.subplots(1, len(cases), figsize=(3.0 * len(cases), 2.4), sharex=True, sharey=True)
    for ax, (title, controls) in zip(axes, cases):
        take = generate_take(music, engine="rules", seed=3, start=10.0, duration=5.0, **controls)
        for joint, colour, label in ((R_WRIST, "#d08a00", "right hand"), (L_WRIST, "#3060a0", "left hand")):
            p = take.keypoints_3d[:, joint]
            ax.plot(p[:, 0], p[:, 2], color=colour, lw=1.4, label=label)  # seen from the orchestra: +X on the right
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("The hands' paths over two bars of the same music and seed, seen from the orchestra", fontsize=10)
    fig.tight_layout()
    CONTROLS_OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CONTROLS_OUT, dpi=90)
    print(f"{CONTROLS_OUT.relative_to(ROOT)}")


def main() -> None:
    import bpy
    import soundfile as sf
    from bpy_extras.object_utils import world_to_camera_view
    from PIL import Image, ImageDraw

    sys.path.insert(0, str(ROOT))
    from backend.demo_music import demo_piece
    from backend.metrics import bar_labels
    from baton_core.skeleton import R_WRIST

    tmp = Path(tempfile.mkdtemp(prefix="baton-guide-"))
    piece = demo_piece()
    music = tmp / "demo_music.wav"
    sf.write(music, piece.samples, piece.sr)
    controls_figure(music)
    from tools.render_addon_frame import install_addon
    pkg = install_addon(tmp, "baton_guide")
    from baton_rigs.armature import bone_map_for
    from baton_rigs.bonemap import BATON_HAND

    scene = bpy.data.scenes.new("Guide")
    bpy.context.window.scene = scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    fps = 24.0
    strip = scene.sequence_editor_create().strips.new_sound("Demo music", str(music), 1, 1)
    strip.frame_offset_end = strip.frame_duration - 24 * 16
    scene.sequence_editor.active_strip = strip
    s = scene.baton
    s.armature, s.add_conductor, s.seed, s.engine = None, True, 3, "m2sgan"
    assert bpy.ops.baton.conduct() == {"FINISHED"}, "conduct failed"
    arm = s.armature
    cam = _stage(bpy, scene)

    def beat_markers():
        return sorted((m for m in scene.timeline_markers if m.name.replace(".", "").isdigit()), key=lambda m: m.frame)

    heard = [m.name for m in beat_markers()]
    first_bar = next(i for i, name in enumerate(heard) if name.endswith(".1"))
    true_frames = [m.frame for m in beat_markers()]

    def rebar(start: int):
        for i, m in enumerate(beat_markers()):
            m.select = i >= start
            if i == start - 1:
                m.name = "0.4"  # the beat before becomes the upbeat
        assert bpy.ops.baton.set_bars(beats_per_bar=4) == {"FINISHED"}
        assert bpy.ops.baton.conduct() == {"FINISHED"}
        return arm.animation_data.action

    before = rebar(first_bar + 1)  # the bar lines a beat late, as a tracker might hear them
    after = rebar(first_bar)  # moved back where the music puts them
    bar = first_bar + 4 * 3  # the fourth bar
    down, next_down = true_frames[bar], true_frames[bar + 4]
    hand = arm.pose.bones[bone_map_for(arm).bones[BATON_HAND]]
    panels, readings = [], {}
    for name, take in (("before", before), ("after", after)):
        arm.animation_data.action = take
        span = range(down - 3, next_down + 2)
        path = []
        for f in span:
            scene.frame_set(f)
            path.append(arm.matrix_world @ hand.head.copy())
        p = np.array([tuple(v) for v in path])
        motion = np.zeros((len(p), 13, 2))
        motion[:, R_WRIST] = np.stack([p[:, 0], -p[:, 2]], axis=1)
        beats = (np.array(true_frames[bar:bar + 4]) - span[0]) / fps
        readings[name] = bar_labels(motion, beats, (next_down - span[0]) / fps, fps)
        scene.frame_set(down)
        scene.render.filepath = str(tmp / f"{name}.png")
        bpy.ops.render.render(write_still=True)
        image = Image.open(tmp / f"{name}.png").convert("RGB")
        draw = ImageDraw.Draw(image)
        xy = [world_to_camera_view(scene, cam, v) for v in path]
        pts = [(v.x * SIZE[0], (1 - v.y) * SIZE[1]) for v in xy]
        draw.line(pts, fill=(255, 200, 60), width=3)
        for k, f in enumerate(true_frames[bar:bar + 4]):
            x, y = pts[f - span[0]]
            draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=(200, 40, 40) if k == 0 else (40, 40, 40))
            draw.text((x - 3, y - 6), str(k + 1), fill=(255, 255, 255))
        panels.append(image)
    canvas = Image.new("RGB", (2 * SIZE[0], SIZE[1] + BAND), (34, 36, 40))
    for i, image in enumerate(panels):
        canvas.paste(image, (i * SIZE[0], 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((10, SIZE[1] + 6), f"Before: bar lines one beat late (Set Bars from the wrong marker). The bar "
                                 f"reads {readings['before']}", fill=(230, 230, 230))
    draw.text((SIZE[0] + 10, SIZE[1] + 6), f"After: Set Bars from the right marker, Conduct. The bar reads "
                                           f"{readings['after']}", fill=(230, 230, 230))
    draw.text((10, SIZE[1] + 28), f"Frame {down}: the true downbeat of bar {bar // 4 + 1}. Yellow: the baton hand "
                                  f"through the bar, seen from the orchestra; numbers: the bar's beats (1 in red); "
                                  f"a 4/4 pattern reads DLRU.", fill=(190, 190, 190))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(OUT)
    print(f"{OUT.relative_to(ROOT)}: bar {bar // 4 + 1}, frames {down}-{next_down}; before reads "
          f"{readings['before']}, after reads {readings['after']}")
    bpy.ops.preferences.addon_disable(module=pkg)


if __name__ == "__main__":
    main()
