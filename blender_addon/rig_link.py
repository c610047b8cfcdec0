"""The one place the add-on calls the rig library (bonemap, keyframes, conductor_rig).

Kept small on purpose: the rig library is developed alongside, and every call into it is here.
"""

from __future__ import annotations

import bpy

from baton_core.take import Take
from baton_rigs.armature import bone_map_for
from baton_rigs.bonemap import detect
from baton_rigs.conductor_rig import create_default_conductor
from baton_rigs import keyframes

DENSITY_ITEMS = [
    ("all", "Every Frame", "A key on every frame: exactly the take"),
    ("reduced", "Reduced", "Keys on beats and turning points, plus what keeps every bone within 1° of the "
                           "take: fewer keys to edit by hand"),
]

_conventions: dict[tuple, str] = {}


def convention(obj) -> str:
    """The detected rig convention of an armature, as the panel shows it (cached per bone set)."""
    names = tuple(b.name for b in obj.data.bones)
    key = (obj.name, hash(names))
    if key not in _conventions:
        _conventions[key] = detect(names).describe()
    return _conventions[key]


def check_rig(obj) -> None:
    """RigError (naming the missing bones) before any work, when no bone map can drive `obj`."""
    bone_map_for(obj)


def write_take(obj, take: Take, frame_offset: float, scene_fps: float, name: str, density: str):
    """The take as a new action on `obj`, frame 0 heard at scene frame `frame_offset`; made active,
    the action it had kept with a fake user. Returns (action, report)."""
    report = keyframes.apply_take(obj, take.keypoints_3d, take.fps, take.start, take.beats, scene_fps=scene_fps,
                        frame_offset=frame_offset, name=name, density=density)
    return bpy.data.actions[report.action], report


def restore_settings(obj, before: list[dict]) -> None:
    """Give the rig back the settings a take keyed (as the take's record kept them)."""
    keyframes.restore_settings(obj, before)


def add_default_conductor(scene, collection=None, location=(0.0, 0.0, 0.0)):
    """The default conductor (armature, skinned body, baton), added to `collection` (default: the
    scene's own) with its feet at `location`; returns the armature. Nothing is left behind if it fails."""
    before = set(bpy.data.objects)
    try:
        return create_default_conductor(collection or scene.collection, location=location)
    except Exception:
        for o in set(bpy.data.objects) - before:
            bpy.data.objects.remove(o)
        raise


def remove_conductor(obj) -> None:
    """Undo add_default_conductor (a run that failed after adding it)."""
    for o in [*obj.children_recursive, obj]:
        data, kind = o.data, ("armatures" if o.type == "ARMATURE" else "meshes")
        bpy.data.objects.remove(o)
        if data is not None and data.users == 0:
            getattr(bpy.data, kind).remove(data)

