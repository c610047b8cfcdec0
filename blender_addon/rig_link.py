"""The one place the add-on calls the rig library (bonemap, keyframes, conductor_rig).

Kept small on purpose: the rig library is developed alongside, and every call into it is here.
"""

from __future__ import annotations

import bpy

from baton_core.take import Take
from baton_rigs.armature import bone_map_for
from baton_rigs.bonemap import detect
from baton_rigs.conductor_rig import create_default_conductor
from baton_rigs.keyframes import apply_take

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
    report = apply_take(obj, take.keypoints_3d, take.fps, take.start, take.beats, scene_fps=scene_fps,
                        frame_offset=frame_offset, name=name, density=density)
    return bpy.data.actions[report.action], report


def add_default_conductor(scene):
    """The default conductor (armature, skinned body, baton), added to `scene`; returns the armature."""
    return create_default_conductor(scene.collection)


def remove_conductor(obj) -> None:
    """Undo add_default_conductor (a run that failed after adding it)."""
    for o in [*obj.children_recursive, obj]:
        data, kind = o.data, ("armatures" if o.type == "ARMATURE" else "meshes")
        bpy.data.objects.remove(o)
        if data is not None and data.users == 0:
            getattr(bpy.data, kind).remove(data)

