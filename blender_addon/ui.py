"""The Baton panel, in the sequencer's sidebar and in the 3D view's sidebar (same contents), and the
takes list. While a run goes on the panel shows its progress (the status bar does too, operators.py)."""

import bpy

from . import bone_mapping, operators, rig_link, takes, timeline
from .preferences import wrap_lines


def _audio(layout, scene) -> None:
    s = scene.baton
    layout.row().prop(s, "source", expand=True)
    if s.source == "FILE":
        layout.prop(s, "audio_file", text="")
        layout.label(text=f"Added as a sound strip at frame {scene.frame_current}", icon="INFO")
        return
    editor = scene.sequence_editor
    try:
        w = timeline.strip_window(scene, editor.active_strip if editor else None, read_packed=False)
    except timeline.TimelineError as e:
        col = layout.column(align=True)
        col.alert = True
        for line in wrap_lines(str(e), 40):
            col.label(text=line)
        return
    col = layout.column(align=True)
    col.label(text=w.name, icon="SOUND")
    col.label(text=f"Frames {w.first_frame}–{w.first_frame + round(w.duration * w.fps) - 1} at {w.fps:.6g} fps")
    col.label(text=f"File {w.start:.2f}–{w.start + w.duration:.2f} s")
    layout.prop(editor.active_strip, "baton_score")


def _armature(layout, scene) -> None:
    s = scene.baton
    layout.prop(s, "armature")
    if s.armature is not None and s.armature.type == "ARMATURE":
        layout.label(text=rig_link.convention(s.armature), icon="ARMATURE_DATA")
    else:
        layout.prop(s, "add_conductor")


def _gestures(layout, s) -> None:
    row = layout.row(align=True)
    row.label(text="Gestures", icon="HAND")
    row.operator("baton.gestures_load", text="", icon="IMPORT")
    row.operator("baton.gestures_save", text="", icon="EXPORT")
    col = layout.column(align=True)
    col.prop(s, "size", slider=True)
    col.prop(s, "left_hand", slider=True)
    col.prop(s, "lead_ms")
    row = layout.row(align=True)
    row.prop(s, "hand", expand=True)
    layout.prop(s, "arms_only")


def _orchestra(layout, s) -> None:
    layout.label(text="Orchestra (cues)", icon="OUTLINER_OB_SPEAKER")
    col = layout.column(align=True)
    for name in s.seating.bl_rna.properties.keys():
        if name != "rna_type":
            col.prop(s.seating, name)


def _beats(layout, s) -> None:
    layout.label(text="Beats and Bars", icon="MARKER_HLT")
    layout.prop(s, "beat_markers")
    layout.prop(s, "follow_markers")
    row = layout.row(align=True)
    row.operator("baton.set_bars")
    row.operator("baton.beats_as_heard")
    row.operator("baton.renumber_beats", text="", icon="LINENUMBERS_ON")
    row.operator("baton.clear_beats", text="", icon="X")


def draw_conduct(layout, context) -> None:
    scene = context.scene
    s = scene.baton
    _audio(layout.box(), scene)
    _armature(layout, scene)
    layout.prop(s, "engine")
    row = layout.row(align=True)
    row.prop(s, "seed")
    row.operator("baton.roll_seed", text="", icon="FILE_REFRESH")
    row = layout.row(align=True)
    row.prop(s, "use_frame_range")
    sub = row.row(align=True)
    sub.active = s.use_frame_range
    sub.prop(s, "frame_range_start")
    sub.prop(s, "frame_range_end")
    row = layout.row(align=True)
    row.prop(s, "density")
    row.prop(s, "root_motion", text="", icon="CON_FOLLOWPATH")
    _gestures(layout.box(), s)
    _beats(layout.box(), s)
    _orchestra(layout.box(), s)
    session = operators.active
    if session is not None:
        layout.progress(factor=session.run.progress, type="BAR", text=session.status_text())
        layout.label(text="Esc cancels", icon="EVENT_ESC")
    else:
        layout.operator("baton.conduct", icon="PLAY_SOUND")
    if operators.last_error:
        box = layout.box()
        box.alert = True
        for line in wrap_lines(operators.last_error, 48):  # all of it: the cause is often last
            box.label(text=line)


def draw_takes(layout, context) -> None:
    obj = context.scene.baton.armature
    if obj is None:
        layout.label(text="Choose an armature to see its takes")
        return
    layout.template_list("BATON_UL_takes", "", bpy.data, "actions", obj, "baton_take", rows=3)
    row = layout.row(align=True)
    row.operator("baton.reconduct", icon="FILE_REFRESH")
    row.operator("baton.delete_take", text="", icon="TRASH")
    row = layout.row(align=True)
    row.operator("baton.export_take", icon="EXPORT")
    row.operator("baton.push_take_to_nla", text="", icon="NLA_PUSHDOWN")


class BATON_UL_takes(bpy.types.UIList):
    """The armature's takes (and the action it had before them), oldest first."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        info = takes.info(item)
        if info:
            layout.label(text=item.name, icon="ACTION")
            layout.label(text=f"{info.get('engine', '')} · {info.get('tempo', 0):.0f} bpm")
        else:
            layout.label(text=f"Original: {item.name}", icon="ACTION_TWEAK")

    def filter_items(self, context, data, propname):
        actions = getattr(data, propname)
        obj = context.scene.baton.armature
        mine = set(takes.takes_of(obj)) | {takes.original(obj)} if obj is not None else set()
        named = (bpy.types.UI_UL_list.filter_items_by_name(self.filter_name, self.bitflag_filter_item, actions, "name")
                 if self.filter_name else [self.bitflag_filter_item] * len(actions))
        # Blender inverts the returned flags itself when "invert" is on: other rigs' actions are
        # flagged so that they stay hidden either way.
        other = self.bitflag_filter_item if self.use_filter_invert else 0
        flags = [f if a in mine else other for a, f in zip(actions, named)]
        order = sorted(range(len(actions)), key=lambda i: takes.info(actions[i]).get("created", 0.0))
        position = {item: place for place, item in enumerate(order)}
        return flags, [position[i] for i in range(len(actions))]


class _Panel:
    bl_region_type = "UI"
    bl_category = "Baton"


def _panel(name: str, space: str, label: str, draw):
    """A Baton panel in the sidebar of `space` (the sequencer and the 3D view show the same two)."""
    return type(name, (_Panel, bpy.types.Panel),
                {"bl_space_type": space, "bl_label": label, "draw": lambda self, context: draw(self.layout, context)})


PANELS = tuple(_panel(f"{prefix}_PT_baton{suffix}", space, label, draw)
               for prefix, space in (("SEQUENCER", "SEQUENCE_EDITOR"), ("VIEW3D", "VIEW_3D"))
               for suffix, label, draw in (("", "Conduct", draw_conduct), ("_takes", "Takes", draw_takes),
                                           ("_bonemap", "Bone Map", bone_mapping.draw)))


CLASSES = (BATON_UL_takes, *PANELS)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
