"""A take's action out of Blender through Blender's own exporters: BVH, FBX or glTF (binary).

The exporters work on the selection and the active object, so the armature is selected alone for
the export and the selection, active object and frame range are put back afterwards: exporting
changes nothing in the animator's scene.
"""

from __future__ import annotations

from pathlib import Path

from .errors import RigError

FORMATS = {".bvh": "io_anim_bvh", ".fbx": "io_scene_fbx", ".glb": "io_scene_gltf2", ".gltf": "io_scene_gltf2"}


def export_action(obj, action, path: str | Path) -> Path:
    """Write `action` as played by the armature `obj` to `path` (the format by its suffix)."""
    import addon_utils
    import bpy

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise RigError(f"{path}: a take is exported as {', '.join(FORMATS)}, not {suffix or 'no suffix'!r}")
    if obj is None or obj.type != "ARMATURE":
        raise RigError("export needs the armature that plays the take")
    if not path.parent.is_dir():
        raise RigError(f"{path}: the folder {path.parent} does not exist")
    addon_utils.enable(FORMATS[suffix], default_set=False)  # Blender's bundled exporter, enabled if it was not
    scene, layer = bpy.context.scene, bpy.context.view_layer
    selected = [o for o in scene.objects if o.select_get()]
    active, frames, shown = layer.objects.active, (scene.frame_start, scene.frame_end), obj.animation_data.action
    first, last = (int(round(f)) for f in action.frame_range)
    try:
        for o in selected:
            o.select_set(False)
        obj.select_set(True)
        layer.objects.active = obj
        obj.animation_data.action = action
        scene.frame_start, scene.frame_end = first, last
        if suffix == ".bvh":
            bpy.ops.export_anim.bvh(filepath=str(path), frame_start=first, frame_end=last)
        elif suffix == ".fbx":
            bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True, object_types={"ARMATURE"},
                                     add_leaf_bones=False, bake_anim=True, bake_anim_use_all_actions=False,
                                     bake_anim_use_nla_strips=False)
        else:
            bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB" if suffix == ".glb" else "GLTF_SEPARATE",
                                      use_selection=True, export_animations=True,
                                      export_animation_mode="ACTIVE_ACTIONS")  # not every action in the file
    finally:
        obj.animation_data.action = shown
        scene.frame_start, scene.frame_end = frames
        obj.select_set(False)
        for o in selected:
            o.select_set(True)
        layer.objects.active = active
    if not path.is_file():
        raise RigError(f"{path}: Blender's {suffix[1:].upper()} exporter wrote nothing")
    return path
