"""A scene's Conduct settings (`scene.baton`) and the takes list's selection (`object.baton_take`).

Engine and seed show the preferences' defaults until they are changed in the scene (get/set
callbacks keep an explicit value apart from "not set"), so changing a default in the preferences
reaches every scene that never chose otherwise.

The takes list's active row is not stored: it *is* the action the armature shows (get), and picking
a row shows that take (set), so the list can never disagree with the armature.
"""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from baton_core.request import SECTIONS

from . import request_options, takes
from .preferences import engine_index, prefs, seed_max
from .rig_link import DENSITY_ITEMS

CONTROLS = ("lead_ms", "size", "left_hand", "hand", "arms_only")  # request options, named as the request names them


def _option(option: str, **kwargs):
    """A scene property for a request option: its default, bounds and help from the request's schema."""
    o = request_options.option(option)
    if o["type"] == "bool":
        return BoolProperty(default=o["default"], description=o["help"].capitalize(), **kwargs)
    if o["type"] == "str":
        return EnumProperty(items=[(c, c.title(), o["help"].capitalize()) for c in o["choices"]], default=o["default"],
                            **kwargs)
    return FloatProperty(default=o["default"], min=o["minimum"], max=o["maximum"], description=o["help"].capitalize(),
                         **kwargs)


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE"


def _get_engine(self) -> int:
    return engine_index(self.get("engine_set") or prefs().default_engine)


def _set_engine(self, value: int) -> None:
    self["engine_set"] = request_options.engine_items()[value][0]


def _get_seed(self) -> int:
    return self.get("seed_set", prefs().default_seed)


def _set_seed(self, value: int) -> None:
    self["seed_set"] = value


def _get_take(obj) -> int:
    action = takes.current(obj)
    return bpy.data.actions.find(action.name) if action is not None else -1


def _set_take(obj, index: int) -> None:
    if 0 <= index < len(bpy.data.actions):
        action = bpy.data.actions[index]
        if action in takes.takes_of(obj) or action == takes.original(obj):
            takes.switch(obj, action)


# where each section sits: an object in the scene the conductor cues and looks at
BatonSeating = type("BatonSeating", (bpy.types.PropertyGroup,), {"__annotations__": {
    name: PointerProperty(name=name.title(), type=bpy.types.Object,
                          description=f"Where the {name} sit: the conductor cues them and looks there (rules engine)")
    for name in SECTIONS}})


class BatonSettings(bpy.types.PropertyGroup):
    source: EnumProperty(
        name="Audio", default="STRIP",
        items=[("STRIP", "Sound Strip", "Conduct the sequencer's active sound strip, as it plays"),
               ("FILE", "File", "Conduct an audio file; it is added as a sound strip at the current frame")])
    audio_file: StringProperty(name="Audio File", subtype="FILE_PATH")
    armature: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                              description="The rig that conducts (empty: add the default conductor)")
    engine: EnumProperty(name="Engine", items=request_options.engine_items, get=_get_engine, set=_set_engine)
    seed: IntProperty(name="Seed", min=0, max=seed_max(), get=_get_seed, set=_set_seed,
                      description=request_options.option("seed")["help"].capitalize())
    lead_ms: _option("lead_ms", name="Lead (ms)")
    size: _option("size", name="Size")
    left_hand: _option("left_hand", name="Left Hand")
    hand: _option("hand", name="Baton Hand")
    arms_only: _option("arms_only", name="Arms Only")
    follow_markers: BoolProperty(name="Follow Beat Markers", default=True,
                                 description="Strike the beat markers (bar.beat) in the strip's frames and beat "
                                             "their bars, instead of the beats the engine hears")
    beat_markers: BoolProperty(name="Beat Markers", default=True,
                               description="Lay each take's beats and bars out as timeline markers named bar.beat, "
                                           "to move, add, delete or renumber for the next take")
    density: EnumProperty(name="Keys", items=DENSITY_ITEMS, default="animator")
    use_frame_range: BoolProperty(name="Frame Range", default=False,
                                  description="Conduct only these frames of the strip (a new take for a passage)")
    frame_range_start: IntProperty(name="Start", default=1)
    frame_range_end: IntProperty(name="End", default=250)
    root_motion: BoolProperty(name="Root Motion", default=False,
                              description="Key the hips' travel (the conductor sways and steps); off: the hips stay "
                                          "where the rig stands")
    seating: PointerProperty(type=BatonSeating)
    add_conductor: BoolProperty(name="Add Default Conductor", default=True,
                                description="When no armature is chosen, add Baton's default conductor rig")


@bpy.app.handlers.persistent
def upgrade_scenes(_=None) -> None:
    """Scene settings an earlier build saved, read as this one's: the lead in frames (before take
    version 2) becomes the same lead in milliseconds at the scene's frame rate."""
    for scene in bpy.data.scenes:
        b = scene.baton
        frames = b.get("lead_frames")
        if frames is None:
            continue
        if frames and "lead_ms" not in b:
            fps = scene.render.fps / scene.render.fps_base
            b.lead_ms = min(1000.0 * frames / fps, float(b.bl_rna.properties["lead_ms"].hard_max))
        del b["lead_frames"]


def register() -> None:
    bpy.utils.register_class(BatonSeating)
    bpy.utils.register_class(BatonSettings)
    bpy.types.Scene.baton = PointerProperty(type=BatonSettings)
    bpy.types.Object.baton_take = IntProperty(name="Take", get=_get_take, set=_set_take,
                                              description="The take the armature shows")
    bpy.types.Strip.baton_score = StringProperty(
        name="Score", subtype="FILE_PATH",
        description="The music's score (MusicXML, MIDI, …): aligned to the strip's sound, its beats, bars, dynamics "
                    "and entrances are conducted (the beat markers are not followed while a score is set)")
    bpy.app.handlers.load_post.append(upgrade_scenes)


def unregister() -> None:
    if upgrade_scenes in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(upgrade_scenes)
    del bpy.types.Strip.baton_score
    del bpy.types.Object.baton_take
    del bpy.types.Scene.baton
    bpy.utils.unregister_class(BatonSettings)
    bpy.utils.unregister_class(BatonSeating)
