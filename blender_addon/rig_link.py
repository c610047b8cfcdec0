"""The one place the add-on calls the rig library (bonemap, keyframes, conductor_rig).

Kept small on purpose: the rig library is developed alongside, and every call into it is here.
"""

from __future__ import annotations

import bpy

from baton_core.take import Take
from baton_rigs.armature import bone_map_for
from baton_rigs.bonemap import SLOTS, BoneMapSpec, detect, known_bonemaps, load_bonemap_file, match  # noqa: F401 (for bone_mapping)
from baton_rigs.conductor_rig import create_default_conductor
from baton_rigs.errors import RigError
from baton_rigs import export, keyframes

# Numbered: a scene keeps an enum as its number, and 0.1.0 saved "all" as 0 and "reduced" as 1.
DENSITY_ITEMS = [
    ("animator", "Animator", "Keys on each ictus and where each curve turns, about two per beat, every bone within "
                             "2° of the take: keys to edit by hand", 2),
    ("all", "Every Frame", "A key on every frame: exactly the take", 0),
    ("reduced", "Reduced", "Keys on beats and turning points, plus what keeps every bone within 1° of the "
                           "take: fewer keys to edit by hand", 1),
]

_conventions: dict[tuple, str] = {}


def custom_map(obj) -> dict | None:
    """The armature's custom bone map (slot → bone, bone_mapping's pickers) when ticked, else None
    (the detected convention drives it)."""
    bm = getattr(obj, "baton_bonemap", None)
    if bm is None or not bm.use_custom:
        return None
    return {"name": bm.preset_name or "custom", "label": f"custom bone map {bm.preset_name}".strip(),
            "bones": {slot: getattr(bm, slot) for slot in SLOTS if getattr(bm, slot)}}


def convention(obj) -> str:
    """The detected rig convention of an armature, as the panel shows it (cached per bone set), or
    its custom bone map's summary."""
    if custom_map(obj) is not None:
        try:
            return bone_map_for(obj, custom_map(obj)).summary()
        except RigError as e:
            return str(e)
    names = tuple(b.name for b in obj.data.bones)
    key = (obj.name, hash(names))
    if key not in _conventions:
        _conventions[key] = detect(names).describe()
    return _conventions[key]


def check_rig(obj) -> None:
    """RigError (naming the missing bones) before any work, when no bone map can drive `obj`: its
    custom bone map when ticked, else the detected convention (the error then says where to map it)."""
    try:
        bone_map_for(obj, custom_map(obj))
    except RigError as e:
        if custom_map(obj) is not None:
            raise
        raise RigError(f"{e} — map its bones in the Baton > Bone Map panel") from None


def write_take(obj, take: Take, frame_offset: float, scene_fps: float, name: str, density: str,
               root_motion: bool = False):
    """The take as a new action on `obj`, frame 0 heard at scene frame `frame_offset`; made active,
    the action it had kept with a fake user. Returns (action, report)."""
    report = keyframes.apply_take(obj, take.keypoints_3d, take.fps, take.start, take.beats, scene_fps=scene_fps,
                                  frame_offset=frame_offset, name=name, density=density, bone_map=custom_map(obj),
                                  root_motion=root_motion)
    return bpy.data.actions[report.action], report


def export_take(obj, action, path) -> None:
    """The take's action through Blender's BVH, FBX or glTF exporter (by the file's suffix)."""
    export.export_action(obj, action, path)


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

