"""Presets as files the animator can keep and share: the folder they live in (a user folder kept
across updates, or one set in the preferences, e.g. a studio's shared one), their names, and the
gesture presets (the panel's controls and key settings as JSON). Bone map presets (bone_mapping.py)
live in the same folder, in their own subfolder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from .properties import CONTROLS

SUFFIX = ".json"
GESTURES = (*CONTROLS, "density", "root_motion")  # what a gesture preset holds
GESTURE_KIND = "baton-gestures"


def folder(kind: str) -> Path:
    """The folder of one kind of preset ("bonemaps", "gestures")."""
    from .preferences import prefs
    chosen = prefs().preset_folder
    if chosen:
        return Path(bpy.path.abspath(chosen)) / kind
    return Path(bpy.utils.extension_path_user(__package__, path=kind, create=True))


def saved(kind: str) -> dict[str, Path]:
    where = folder(kind)
    return {p.stem: p for p in sorted(where.glob(f"*{SUFFIX}"))} if where.is_dir() else {}


def path_for(kind: str, name: str) -> Path:
    """Where a preset named `name` is saved; ValueError for a name that cannot be a file name."""
    if not name or re.search(r'[\\/:*?"<>|]', name) or name.startswith("."):
        raise ValueError(f"a preset needs a name that can be a file name, not {name!r}")
    where = folder(kind)
    where.mkdir(parents=True, exist_ok=True)
    return where / f"{name}{SUFFIX}"


def save_gestures(settings, name: str) -> Path:
    path = path_for("gestures", name)
    doc = {"format": GESTURE_KIND, "name": name, **{k: getattr(settings, k) for k in GESTURES}}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def load_gestures(settings, path: Path) -> None:
    """Set the scene's controls from a gesture preset; ValueError naming what is wrong with it
    (nothing is changed then)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable gesture preset ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != GESTURE_KIND:
        raise ValueError(f"{path}: not a Baton gesture preset")
    before = {k: getattr(settings, k) for k in GESTURES}
    try:
        for k in GESTURES:
            if k in doc:
                setattr(settings, k, doc[k])
    except (TypeError, ValueError) as e:
        for k, v in before.items():
            setattr(settings, k, v)
        raise ValueError(f"{path}: {e}") from None


_items: list[tuple[str, str, str]] = []


def _gesture_items(_self, _context):
    _items[:] = [(name, name, str(path)) for name, path in saved("gestures").items()] or [("", "(none saved)", "")]
    return _items


class BATON_OT_gestures_save(bpy.types.Operator):
    """Save the gesture controls and key settings as a preset file"""
    bl_idname = "baton.gestures_save"
    bl_label = "Save Gesture Preset"

    name: StringProperty(name="Name")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        try:
            path = save_gestures(context.scene.baton, self.name.strip())
        except (ValueError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"saved {path}")
        return {"FINISHED"}


class BATON_OT_gestures_load(bpy.types.Operator):
    """Set the gesture controls and key settings from a saved preset"""
    bl_idname = "baton.gestures_load"
    bl_label = "Load Gesture Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"

    preset: EnumProperty(name="Preset", items=_gesture_items)

    def invoke(self, context, event):
        context.window_manager.invoke_search_popup(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        path = saved("gestures").get(self.preset)
        if path is None:
            self.report({"ERROR"}, f"no gesture preset {self.preset!r} in {folder('gestures')}")
            return {"CANCELLED"}
        try:
            load_gestures(context.scene.baton, path)
        except ValueError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


register, unregister = bpy.utils.register_classes_factory((BATON_OT_gestures_save, BATON_OT_gestures_load))
