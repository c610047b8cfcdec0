"""What the animator clicks: Conduct (modal from the UI, blocking from scripts), the seed dice, the
takes list's actions (re-conduct with a new seed, delete) and the beat markers' (set bars,
renumber, clear).

Conduct from a button runs modal: a timer polls the run's worker thread, the status bar shows its
progress, every other event passes through (the UI never freezes), Esc cancels. Called from a script
(`bpy.ops.baton.conduct()`) or in the background it runs `execute`, which waits for the same worker.
Both end in `finish`, the only step that writes to the scene, as one undo step.
"""

import random

import bpy
from bpy.props import IntProperty, StringProperty

from . import beat_markers, conduct, rig_link, takes, timeline
from .rig_link import RigError
from .backend_life import manager
from .preferences import backend_settings, seed_max

# the run in progress (one at a time) and the last failure, for the panels
active: "Session | None" = None
last_error: str | None = None


def start_run(context, seed: int | None) -> conduct.Run:
    plan = conduct.plan_run(context, seed)
    return conduct.Run(plan, backend_settings(), manager)


def finish(context, run: conduct.Run) -> tuple[set[str], list[tuple[str, str]]]:
    """Apply a finished run; returns the operator's result and the reports to show."""
    global last_error
    if run.state == "cancelled":
        return {"CANCELLED"}, [("INFO", "Conduct cancelled; the scene is unchanged")]
    if run.state == "failed":
        last_error = run.error
        return {"CANCELLED"}, [("ERROR", run.error)]
    try:
        action, report = conduct.apply_run(context, run)
    except conduct.ConductError as e:
        last_error = str(e)
        return {"CANCELLED"}, [("ERROR", str(e))]
    last_error = None
    messages = [("INFO", f"Baton: new take {action.name!r}: {report.summary()}")]
    messages += [("WARNING", w) for w in report.warnings]
    return {"FINISHED"}, messages


class Session:
    """The UI side of one modal run: what each event does, kept apart from the operator so that it can
    be driven without a window (tests, `bpy` as a module, where modal operators cannot run)."""

    def __init__(self, run: conduct.Run):
        self.run = run
        self.workspace = None

    def on_event(self, context, event_type: str) -> tuple[set[str], list[tuple[str, str]]]:
        playing = getattr(getattr(context, "screen", None), "is_animation_playing", False)
        if event_type == "ESC" and not playing:  # while playback runs, Esc is the animator's: it stops it
            self.run.cancel()  # the worker cancels the engine's job; nothing waits for it here
            self.end(context)
            return {"CANCELLED"}, [("INFO", "Conduct cancelled; the scene is unchanged")]
        if event_type != "TIMER":
            return {"PASS_THROUGH"}, []
        if not self.run.finished:
            self.show(context)
            return {"PASS_THROUGH"}, []
        self.end(context)
        return finish(context, self.run)

    def status_text(self) -> str:
        r = self.run
        return f"Baton: {r.plan.window.name} · {r.stage} {r.progress * 100:.0f}%"

    def show(self, context) -> None:
        """Progress in the status bar (set again each tick: that redraws it) and the panels."""
        workspace = getattr(context, "workspace", None)
        if workspace is not None:
            if workspace != self.workspace:
                self._clear()
                self.workspace = workspace
            workspace.status_text_set(self._draw_status)
        _redraw(context)

    def _draw_status(self, header, _context) -> None:
        row = header.layout.row(align=True)
        row.label(text="", icon="SOUND")
        row.progress(factor=self.run.progress, type="BAR", text=self.status_text())
        row.separator()
        row.label(text="Cancel", icon="EVENT_ESC")

    def _clear(self) -> None:
        if self.workspace is not None:
            try:
                self.workspace.status_text_set(None)
            except ReferenceError:
                pass  # the workspace was deleted meanwhile
        self.workspace = None

    def end(self, context) -> None:
        global active
        self._clear()
        if active is self:
            active = None
        _redraw(context)


def _redraw(context) -> None:
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen else ():
        if area.type in ("SEQUENCE_EDITOR", "VIEW_3D"):
            area.tag_redraw()


class BATON_OT_conduct(bpy.types.Operator):
    """Conduct the sound strip (or file): a new take on the armature, keys where the music is heard"""
    bl_idname = "baton.conduct"
    bl_label = "Conduct"
    bl_options = {"UNDO"}  # no Adjust Last Operation: redoing would re-run the whole job, blocking the UI

    seed: IntProperty(name="Seed", default=-1, min=-1, options={"SKIP_SAVE"},
                      description="-1: the scene's seed")

    _session: Session | None = None
    _timer = None

    @classmethod
    def poll(cls, context):
        if active is not None:
            cls.poll_message_set("Baton is already conducting (Esc cancels)")
            return False
        if context.scene is None:
            return False
        s, editor = context.scene.baton, context.scene.sequence_editor
        if s.source == "FILE":
            if not s.audio_file:
                cls.poll_message_set("choose an audio file to conduct")
            return bool(s.audio_file)
        try:  # the numbers only (a packed sound's bytes are read when the run starts)
            timeline.strip_window(context.scene, editor.active_strip if editor else None, read_packed=False)
        except timeline.TimelineError as e:
            cls.poll_message_set(str(e))
            return False
        return True

    def _seed(self) -> int | None:
        return None if self.seed < 0 else self.seed

    def _start(self, context) -> conduct.Run | None:
        """The run, or None with the reason reported."""
        try:
            return start_run(context, self._seed())
        except conduct.ConductError as e:
            self._report(finish_error(str(e)))
            return None

    def execute(self, context):
        run = self._start(context)
        if run is None:
            return {"CANCELLED"}
        try:
            run.wait()
        except KeyboardInterrupt:
            run.cancel()
            run.wait()
        return self._report(finish(context, run))

    def invoke(self, context, event):
        global active
        if context.window is None:
            return self.execute(context)
        run = self._start(context)
        if run is None:
            return {"CANCELLED"}
        self._session = active = Session(run)
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        self._session.show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        result, messages = self._session.on_event(context, event.type)
        if "PASS_THROUGH" not in result:
            context.window_manager.event_timer_remove(self._timer)
        return self._report((result, messages))

    def cancel(self, context):  # Blender ends the operator (window closed, file loaded)
        self._session.run.cancel()
        self._session.end(context)
        context.window_manager.event_timer_remove(self._timer)

    def _report(self, outcome):
        result, messages = outcome
        for level, text in messages:
            self.report({level}, text)
        return result


def finish_error(message: str) -> tuple[set[str], list[tuple[str, str]]]:
    global last_error
    last_error = message
    return {"CANCELLED"}, [("ERROR", message)]


def new_seed() -> int:
    """A random seed within the bounds the request and Blender's integers allow."""
    return random.randint(0, seed_max())


class BATON_OT_roll_seed(bpy.types.Operator):
    """A new random seed: another performance of the same music"""
    bl_idname = "baton.roll_seed"
    bl_label = "New Seed"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.baton.seed = new_seed()
        return {"FINISHED"}


class BATON_OT_reconduct(bpy.types.Operator):
    """Conduct the selected take's strip again with a new seed (a new take; this one stays)"""
    bl_idname = "baton.reconduct"
    bl_label = "Re-conduct with New Seed"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return active is None and _shown_take(context) is not None

    def invoke(self, context, event):
        return self._go(context, "INVOKE_DEFAULT")

    def execute(self, context):
        return self._go(context, "EXEC_DEFAULT")

    def _go(self, context, how: str):
        obj, action = _shown_take(context)
        s, info = context.scene.baton, takes.info(action)
        editor = context.scene.sequence_editor
        strip = editor.strips_all.get(info.get("strip", "")) if editor and info.get("strip") else None
        if strip is not None:
            editor.active_strip, s.source = strip, "STRIP"
        elif info.get("audio") and info["audio"] != "(packed)":
            s.source, s.audio_file = "FILE", info["audio"]
        s.armature = obj
        result = bpy.ops.baton.conduct(how, seed=new_seed())  # the scene's own seed stays as it was
        return {"FINISHED"} if "RUNNING_MODAL" in result else result  # the modal Conduct goes on alone


class BATON_OT_delete_take(bpy.types.Operator):
    """Delete the selected take (the armature then shows the newest other take, or its original action)"""
    bl_idname = "baton.delete_take"
    bl_label = "Delete Take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _shown_take(context) is not None

    def execute(self, context):
        obj, action = _shown_take(context)
        name = action.name
        takes.delete(obj, action)
        self.report({"INFO"}, f"Deleted take {name!r}")
        return {"FINISHED"}


class BATON_OT_export_take(bpy.types.Operator):
    """Export the shown take through Blender's BVH, FBX or glTF exporter (by the file's suffix)"""
    bl_idname = "baton.export_take"
    bl_label = "Export Take"

    filepath: StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.bvh;*.fbx;*.glb;*.gltf", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return _shown_take(context) is not None

    def invoke(self, context, event):
        obj, action = _shown_take(context)
        self.filepath = self.filepath or bpy.path.clean_name(action.name) + ".fbx"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        obj, action = _shown_take(context)
        try:
            rig_link.export_take(obj, action, bpy.path.abspath(self.filepath))
        except (RigError, OSError, RuntimeError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"exported {action.name!r} to {self.filepath}")
        return {"FINISHED"}


class BATON_OT_push_take_to_nla(bpy.types.Operator):
    """Push the shown take onto a new NLA track (to layer or blend it); the armature then shows the
    action it had before its takes"""
    bl_idname = "baton.push_take_to_nla"
    bl_label = "Push Take to NLA"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _shown_take(context) is not None

    def execute(self, context):
        obj, action = _shown_take(context)
        track = obj.animation_data.nla_tracks.new()
        track.name = action.name
        strip = track.strips.new(action.name, int(action.frame_range[0]), action)
        strip.action_slot = action.slots[0]
        takes.switch(obj, takes.original(obj))
        self.report({"INFO"}, f"{action.name!r} is on NLA track {track.name!r}")
        return {"FINISHED"}


def _strip_window(context):
    editor = context.scene.sequence_editor if context.scene else None
    try:
        return timeline.strip_window(context.scene, editor.active_strip if editor else None, read_packed=False)
    except timeline.TimelineError:
        return None


class BATON_OT_set_bars(bpy.types.Operator):
    """Make the selected beat markers bars of this many beats, from the first selected (1: in one);
    the next Conduct beats those bars"""
    bl_idname = "baton.set_bars"
    bl_label = "Set Bars"
    bl_options = {"REGISTER", "UNDO"}

    beats_per_bar: IntProperty(name="Beats per Bar", min=1, max=12, default=4)

    @classmethod
    def poll(cls, context):
        return _strip_window(context) is not None

    def execute(self, context):
        n = beat_markers.set_bars(context.scene, _strip_window(context), self.beats_per_bar)
        if not n:
            self.report({"WARNING"}, "select the beat markers (bar.beat) of the bars to set")
            return {"CANCELLED"}
        self.report({"INFO"}, f"{n} beats in bars of {self.beats_per_bar}")
        return {"FINISHED"}


class BATON_OT_renumber_beats(bpy.types.Operator):
    """Name the strip's beat markers bar.beat again after moving, adding or deleting them (a marker
    renamed to end in .1 begins a bar)"""
    bl_idname = "baton.renumber_beats"
    bl_label = "Renumber Beats"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _strip_window(context) is not None

    def execute(self, context):
        beat_markers.renumber(context.scene, _strip_window(context))
        return {"FINISHED"}


class BATON_OT_beats_as_heard(bpy.types.Operator):
    """Give the span of the selected beat markers back the beats and bars Baton heard there"""
    bl_idname = "baton.beats_as_heard"
    bl_label = "As Heard"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _strip_window(context) is not None

    def execute(self, context):
        try:
            n = beat_markers.as_heard(context.scene, _strip_window(context))
        except ValueError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        if not n:
            self.report({"WARNING"}, "select the beat markers of the span to give back as heard")
            return {"CANCELLED"}
        self.report({"INFO"}, f"{n} beats as heard")
        return {"FINISHED"}


class BATON_OT_clear_beats(bpy.types.Operator):
    """Remove the strip's beat markers: the next Conduct hears the beats again"""
    bl_idname = "baton.clear_beats"
    bl_label = "Clear Beat Markers"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _strip_window(context) is not None

    def execute(self, context):
        n = beat_markers.clear(context.scene, _strip_window(context))
        self.report({"INFO"}, f"removed {n} beat markers")
        return {"FINISHED"}


def _shown_take(context):
    """(armature, the take it shows) for the panel's armature, or None."""
    obj = context.scene.baton.armature if context.scene else None
    action = takes.current(obj) if obj is not None else None
    return (obj, action) if takes.is_take(action) else None


CLASSES = (BATON_OT_conduct, BATON_OT_roll_seed, BATON_OT_reconduct, BATON_OT_delete_take, BATON_OT_set_bars,
           BATON_OT_renumber_beats, BATON_OT_beats_as_heard, BATON_OT_clear_beats, BATON_OT_export_take,
           BATON_OT_push_take_to_nla)
MENUS = ("SEQUENCER_MT_strip", "VIEW3D_MT_object_animation")  # where menu search (F3) finds Conduct


def menu_entry(self, _context) -> None:
    self.layout.separator()
    self.layout.operator(BATON_OT_conduct.bl_idname, text="Conduct (Baton)", icon="PLAY_SOUND")


_register, _unregister = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register()
    for menu in MENUS:
        getattr(bpy.types, menu).append(menu_entry)


def unregister() -> None:
    for menu in MENUS:
        getattr(bpy.types, menu).remove(menu_entry)
    _unregister()
    if active is not None:
        active.run.cancel()

