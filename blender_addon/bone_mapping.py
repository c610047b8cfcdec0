"""The bone map an armature is driven through, as the animator sees and edits it: every slot of
the conductor's chain with a bone picker, filled from the detected convention, saved and loaded as
JSON presets (the rig library's own file format) in a preset folder the animator can share.

An armature whose map is not ticked "Custom" is driven through the detected convention, as before;
ticking it makes the pickers the map (rig_link.custom_map), so any rig conducts once its bones are named.
A preset is matched against the armature's bones by the rig library's normalised names, so one made
on a Character Creator export maps the next one whatever its prefix or side markers.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, PointerProperty, StringProperty

from . import presets
from .rig_link import SLOTS, BoneMapSpec, RigError, detect, known_bonemaps, load_bonemap_file, match

def _presets() -> dict[str, Path | None]:
    """Preset names → their files (None: a convention shipped with Baton)."""
    return {f"Baton: {spec.label}": None for spec in known_bonemaps()} | presets.saved("bonemaps")


_items: list[tuple[str, str, str]] = []  # Blender needs enum items kept alive


def _preset_items(_self, _context):
    _items[:] = [(name, name, str(path) if path else "shipped with Baton") for name, path in _presets().items()]
    return _items


# one bone picker per slot of the chain, besides the switch and the preset's name
BatonBoneMap = type("BatonBoneMap", (bpy.types.PropertyGroup,), {"__annotations__": {
    "use_custom": BoolProperty(name="Custom Bone Map", default=False,
                               description="Drive the armature through the bones picked below, not the detected "
                                           "convention"),
    "preset_name": StringProperty(name="Name", description="The preset's name (its file name)"),
    **{slot: StringProperty(name=slot.replace("_", " ").title(),
                            description=f"The bone that plays the {slot.replace('_', ' ')}") for slot in SLOTS}}})


def fill(obj, spec: BoneMapSpec | None = None) -> int:
    """Set the pickers from `spec` matched against the armature (None: the detected convention);
    returns how many slots found a bone."""
    names = [b.name for b in obj.data.bones]
    if spec is None:
        found = detect(names)
        resolved = found.bonemap or found.scores[0].bonemap
    else:
        resolved = match(spec, names)
    pg = obj.baton_bonemap
    for slot in SLOTS:
        setattr(pg, slot, resolved.bones.get(slot, ""))
    return len(resolved.bones)


def save_preset(obj, name: str) -> Path:
    """The armature's picked bones as a preset file named `name` in the preset folder."""
    try:
        path = presets.path_for("bonemaps", name)
    except ValueError as e:
        raise RigError(str(e)) from None
    pg = obj.baton_bonemap
    doc = {"name": name, "label": name, "description": f"saved from {obj.name!r} in Blender",
           "bones": {slot: getattr(pg, slot) for slot in SLOTS if getattr(pg, slot)}}
    BoneMapSpec.from_dict(doc, name)  # the rig library reads it back
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def load_preset(obj, name: str) -> int:
    presets = _presets()
    if name not in presets:
        raise RigError(f"no bone map preset {name!r} (in {presets.folder('bonemaps')})")
    path = presets[name]
    spec = load_bonemap_file(path) if path else next(s for s in known_bonemaps() if f"Baton: {s.label}" == name)
    n = fill(obj, spec)
    obj.baton_bonemap.use_custom, obj.baton_bonemap.preset_name = True, name if path else ""
    return n


def _armature(context):
    obj = context.scene.baton.armature if context.scene else None
    return obj if obj is not None and obj.type == "ARMATURE" else None


class BATON_OT_bonemap_detect(bpy.types.Operator):
    """Fill the bone pickers from the convention Baton detects (or the closest one)"""
    bl_idname = "baton.bonemap_detect"
    bl_label = "Fill from Detected"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _armature(context) is not None

    def execute(self, context):
        n = fill(_armature(context))
        self.report({"INFO"}, f"{n} of {len(SLOTS)} slots found a bone")
        return {"FINISHED"}


class BATON_OT_bonemap_save(bpy.types.Operator):
    """Save the picked bones as a bone map preset (a JSON file in the preset folder)"""
    bl_idname = "baton.bonemap_save"
    bl_label = "Save Bone Map Preset"

    @classmethod
    def poll(cls, context):
        return _armature(context) is not None

    def execute(self, context):
        obj = _armature(context)
        try:
            path = save_preset(obj, obj.baton_bonemap.preset_name.strip())
        except (RigError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"saved {path}")
        return {"FINISHED"}


class BATON_OT_bonemap_load(bpy.types.Operator):
    """Load a bone map preset onto the armature's pickers (matched to its bone names) and use it"""
    bl_idname = "baton.bonemap_load"
    bl_label = "Load Bone Map Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"

    preset: EnumProperty(name="Preset", items=_preset_items)

    @classmethod
    def poll(cls, context):
        return _armature(context) is not None

    def invoke(self, context, event):
        context.window_manager.invoke_search_popup(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            n = load_preset(_armature(context), self.preset)
        except (RigError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{self.preset}: {n} of {len(SLOTS)} slots found a bone")
        return {"FINISHED"}


def draw(layout, context) -> None:
    obj = _armature(context)
    if obj is None:
        layout.label(text="Choose an armature to map its bones")
        return
    pg = obj.baton_bonemap
    layout.prop(pg, "use_custom")
    row = layout.row(align=True)
    row.operator("baton.bonemap_detect", icon="VIEWZOOM")
    row.operator("baton.bonemap_load", text="Load", icon="IMPORT")
    row = layout.row(align=True)
    row.prop(pg, "preset_name", text="")
    row.operator("baton.bonemap_save", text="Save", icon="EXPORT")
    col = layout.column(align=True)
    col.active = pg.use_custom
    for slot in SLOTS:
        col.prop_search(pg, slot, obj.data, "bones")


CLASSES = (BatonBoneMap, BATON_OT_bonemap_detect, BATON_OT_bonemap_save, BATON_OT_bonemap_load)


def register() -> None:
    for c in CLASSES:
        bpy.utils.register_class(c)
    bpy.types.Object.baton_bonemap = PointerProperty(type=BatonBoneMap)


def unregister() -> None:
    del bpy.types.Object.baton_bonemap
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
