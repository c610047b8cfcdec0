"""The Blender side of batch rendering: a stage (ours or the user's scene), the take on an armature,
the music on the sequencer, and an MP4 (H.264 + AAC) rendered frame by frame.

Runs in a child process per piece (baton_render/piece.py), so every piece starts from a clean
Blender and a crash in one cannot take the batch down. Imports `bpy` and the rig library; the engine
(backend/) imports neither.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import bpy
from mathutils import Vector

from backend.batch import RENDER_ENGINES
from baton_core.errors import BatonError
from baton_core.take import Take
from baton_rigs.conductor_rig import create_default_conductor
from baton_rigs.errors import RigError
from baton_rigs.keyframes import apply_take as write_take

PODIUM_HEIGHT = 0.2


def fps_pair(fps: float) -> tuple[int, float]:
    """Blender's (render.fps, render.fps_base) for a frame rate: 29.97 → (30, 1.001)."""
    if fps <= 0 or not math.isfinite(fps):
        raise BatonError(f"--fps {fps}: must be a positive number")
    whole = math.ceil(fps - 1e-9)
    return whole, whole / fps


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def _look_at(obj, target: Vector) -> None:
    obj.rotation_euler = (target - obj.location).to_track_quat("-Z", "Y").to_euler()


def _material(name: str, rgba: tuple, roughness: float = 0.6):
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = rgba  # what Workbench shows
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = rgba
        bsdf.inputs["Roughness"].default_value = roughness
    return mat


def _box(name: str, size: tuple, location: tuple, material) -> object:
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=location)
    obj = bpy.context.object
    obj.name = name
    obj.scale = size
    obj.data.materials.append(material)
    return obj


def build_default_stage() -> tuple[object, object]:
    """A fresh scene: the default conductor on a podium, a floor, a camera where the orchestra sits
    (the conductor faces −Y, toward it) framing the upper body and the beat space, three lights.
    Returns (scene, armature)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.name = "Baton stage"
    armature = create_default_conductor(scene.collection, location=(0.0, 0.0, PODIUM_HEIGHT))
    _box("Podium", (1.2, 1.0, PODIUM_HEIGHT), (0.0, 0.0, PODIUM_HEIGHT / 2), _material("Podium", (0.25, 0.12, 0.06, 1)))
    _box("Floor", (12.0, 12.0, 0.02), (0.0, 0.0, -0.01), _material("Floor", (0.08, 0.08, 0.09, 1), 0.9))

    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    cam.data.lens = 50
    cam.location = Vector((0.45, -3.4, 1.3 + PODIUM_HEIGHT))  # a little below the eyes, like the players
    _look_at(cam, Vector((0.0, 0.0, 1.4 + PODIUM_HEIGHT)))
    scene.collection.objects.link(cam)
    scene.camera = cam
    for name, kind, energy, loc in (("Key", "AREA", 600.0, (-2.5, -3.0, 4.0)), ("Fill", "AREA", 200.0, (3.0, -2.5, 2.5)),
                                    ("Rim", "AREA", 400.0, (0.0, 3.0, 3.5))):
        light = bpy.data.objects.new(name, bpy.data.lights.new(name, kind))
        light.data.energy = energy
        light.data.size = 2.0
        light.location = loc
        _look_at(light, Vector((0.0, 0.0, 1.4)))
        scene.collection.objects.link(light)
    world = bpy.data.worlds.new("Stage")
    world.color = (0.06, 0.06, 0.07)
    scene.world = world
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "MATERIAL"
    return scene, armature


def open_user_scene(path: Path, armature_name: str | None) -> tuple[object, object]:
    """Open the user's .blend and pick the armature: the one named, else the only one in the scene."""
    if not path.is_file():
        raise BatonError(f"{path}: no such .blend file")
    try:
        bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    except RuntimeError as e:
        raise BatonError(f"{path}: Blender cannot open it ({str(e).strip().splitlines()[-1][:160]})") from None
    scene = bpy.context.scene
    armatures = [o for o in scene.objects if o.type == "ARMATURE"]
    if armature_name is not None:
        found = [o for o in armatures if o.name == armature_name]
        if not found:
            names = ", ".join(sorted(o.name for o in armatures)) or "none"
            raise BatonError(f"{path}: no armature named {armature_name!r} in scene {scene.name!r} (armatures: {names})")
        armature = found[0]
    elif len(armatures) == 1:
        armature = armatures[0]
    else:
        names = ", ".join(sorted(o.name for o in armatures)) or "none"
        raise BatonError(f"{path}: choose the armature with --armature (scene {scene.name!r} has: {names})")
    if scene.camera is None:
        raise BatonError(f"{path}: scene {scene.name!r} has no active camera to render from")
    return scene, armature


def apply_take(scene, armature, take: Take, first_frame: int, name: str):
    """The take as a new action on the armature (its bone map detected), heard from `first_frame`."""
    try:
        return write_take(armature, take.keypoints_3d, take.fps, take.start, take.beats, scene_fps=scene_fps(scene),
                          frame_offset=first_frame, name=name, verify_frames=0)
    except RigError as e:
        raise BatonError(f"armature {armature.name!r}: {e}") from None


def place_music(scene, music: Path, take: Take, first_frame: int):
    """The music as a sound strip from `first_frame` for as long as the take, on a free channel, so
    the video carries the audio the conductor hears (batch takes start at the file's beginning)."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    used = {s.channel for s in editor.strips_all}
    channel = next(c for c in range(1, 129) if c not in used)
    strip = editor.strips.new_sound("Baton music", str(music), channel, first_frame)
    fps = scene_fps(scene)
    strip.frame_final_duration = max(1, min(strip.frame_final_duration, math.ceil(take.duration * fps)))
    return strip


def configure_output(scene, out: Path, *, resolution: tuple[int, int] | None, render_engine: str,
                     samples: int | None, frames: tuple[int, int], threads: int | None) -> None:
    r = scene.render
    engine = RENDER_ENGINES[render_engine]
    try:
        r.engine = engine
    except TypeError:  # the engine list is built at run time: an engine missing from this build
        raise BatonError(f"--render-engine {render_engine}: not available in this Blender") from None
    if engine == "CYCLES":
        scene.cycles.device = "CPU"
        if samples is not None:
            scene.cycles.samples = samples
    elif engine == "BLENDER_EEVEE" and samples is not None:
        scene.eevee.taa_render_samples = samples
    if resolution is not None:
        r.resolution_x, r.resolution_y = resolution
        r.resolution_percentage = 100
    if threads:
        r.threads_mode, r.threads = "FIXED", threads
    scene.frame_start, scene.frame_end = frames
    r.image_settings.media_type = "VIDEO"  # before file_format (Blender 5.0)
    r.image_settings.file_format = "FFMPEG"
    r.ffmpeg.format = "MPEG4"
    r.ffmpeg.codec = "H264"
    r.ffmpeg.constant_rate_factor = "MEDIUM"
    r.ffmpeg.ffmpeg_preset = "GOOD"
    r.ffmpeg.audio_codec = "AAC"
    r.ffmpeg.audio_channels = "STEREO"
    r.ffmpeg.audio_mixrate = 48000
    r.ffmpeg.audio_bitrate = 192
    r.use_file_extension = False
    r.filepath = str(out)


def render(scene, on_frame: Callable[[int, int, float], None]) -> None:
    """Render the scene's frame range to its FFMPEG output; `on_frame(done, total, seconds_left)`
    after every frame written."""
    total = scene.frame_end - scene.frame_start + 1
    state = {"done": 0, "t0": time.perf_counter()}

    def written(_scene, *_):
        state["done"] += 1
        rate = (time.perf_counter() - state["t0"]) / state["done"]
        on_frame(state["done"], total, rate * (total - state["done"]))

    bpy.app.handlers.render_write.append(written)
    try:
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        bpy.app.handlers.render_write.remove(written)
    if state["done"] < total:
        raise BatonError(f"Blender stopped after {state['done']} of {total} frames")

