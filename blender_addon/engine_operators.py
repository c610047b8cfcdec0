"""Install, Repair and Remove Engine: the preferences' buttons over engine_env.py.

From a button the install runs on a thread while a modal timer shows its progress in the
preferences and the status bar, so Blender stays usable for the minutes it takes; from a script or
without a window (`bpy` as a module, where timers never fire) `execute` runs the same install and
blocks. Repair is an install over the old one: the old engine stays in use until the new one has
passed every step.
"""

import sys
from pathlib import Path

import bpy

from . import engine_env
from .backend_life import manager

# the install in progress or last finished (the preferences draw its progress and its outcome)
current: "engine_env.Install | None" = None


def layout() -> engine_env.Layout:
    """The engine's place: the add-on's own user folder (kept when the add-on is updated); for the
    add-on run from a checkout (not an extension), a folder in Blender's user data files."""
    try:
        home = bpy.utils.extension_path_user(__package__, path="", create=True)
    except ValueError:
        home = bpy.utils.user_resource("DATAFILES", path="baton", create=True)
    return engine_env.Layout(Path(home))


def busy() -> str | None:
    """Why the engine cannot be installed or removed now."""
    if current is not None and not current.finished:
        return "an engine install is already under way"
    return None


def new_install(context) -> engine_env.Install:
    """The install the preferences ask for: from the chosen wheel folder, else the registry (which
    needs Blender's online access). The running engine is stopped only when the new one is ready to
    take its place (its files are about to change)."""
    p = context.preferences.addons[__package__].preferences
    folder = bpy.path.abspath(p.engine_wheel_folder) if p.engine_wheel_folder else ""
    steps = engine_env.plan(layout(), sys.executable, bpy.app.online_access, folder, p.torch_index.strip())
    return engine_env.Install(layout(), steps, source=f"the wheel folder {folder}" if folder else "the registry",
                              before_replace=manager.stop)


def _redraw(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()


class BATON_OT_install_engine(bpy.types.Operator):
    """Install Baton's engine (its own Python environment with torch) in the add-on's user folder,
    or repair it"""
    bl_idname = "baton.install_engine"
    bl_label = "Install Engine"
    bl_options = {"INTERNAL"}

    _timer = None

    def _begin(self, context):
        global current
        why = busy()
        if why:
            self.report({"ERROR"}, why)
            return None
        try:
            current = new_install(context)
        except engine_env.EngineEnvError as e:
            self.report({"ERROR"}, str(e))
            return None
        return current

    def _end(self, install) -> set[str]:
        if install.error:
            self.report({"ERROR"}, install.error)
            return {"CANCELLED"}
        size = engine_env.human_size(install.layout.installed().get("size", 0))
        self.report({"INFO"}, f"Baton's engine is installed in {install.layout.env} ({size}, "
                              f"{install.seconds:.0f} s)")
        return {"FINISHED"}

    def execute(self, context):
        install = self._begin(context)
        if install is None:
            return {"CANCELLED"}
        install.run()
        return self._end(install)

    def invoke(self, context, event):
        if context.window is None:
            return self.execute(context)
        install = self._begin(context)
        if install is None:
            return {"CANCELLED"}
        install.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        wm = context.window_manager
        wm.progress_update(int(current.progress * 100))
        if context.workspace is not None:
            context.workspace.status_text_set(f"Baton: {current.message} — {current.progress:.0%}")
        _redraw(context)
        if not current.finished:
            return {"PASS_THROUGH"}
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        return self._end(current)


class BATON_OT_remove_engine(bpy.types.Operator):
    """Remove the engine Install Engine made (its environment, not the log); only Baton's own folders"""
    bl_idname = "baton.remove_engine"
    bl_label = "Remove Engine"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        why = busy()
        if why:
            self.report({"ERROR"}, why)
            return {"CANCELLED"}
        manager.stop()
        try:
            engine_env.remove(layout())
        except engine_env.EngineEnvError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Baton's engine is removed from {layout().env}")
        return {"FINISHED"}

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)


CLASSES = (BATON_OT_install_engine, BATON_OT_remove_engine)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
