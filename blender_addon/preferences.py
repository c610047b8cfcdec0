"""The add-on's preferences: the engine (installed from here, or an expert's own Python, or a running
service), and the defaults of a run.

A scene's engine and seed show these defaults until the animator changes them there (properties.py).
"""

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import engine_env, engine_operators, request_options
from .backend_life import ENV_PYTHON, BackendError, BackendSettings, find_python, manager


def engine_index(name: str) -> int:
    """`name`'s place in the engine list shown (the default engine's when the list lacks it)."""
    names = [item[0] for item in request_options.engine_items()]
    return names.index(name) if name in names else names.index(request_options.default_engine())


def _get_default_engine(self) -> int:
    return engine_index(self.default_engine_name or request_options.default_engine())


def _set_default_engine(self, value: int) -> None:
    # Add-on preferences hold no ID properties, so the choice is kept by name in a hidden string.
    self.default_engine_name = request_options.engine_items()[value][0]


def seed_max() -> int:
    return min(request_options.option("seed")["maximum"], request_options.BLENDER_INT_MAX)


class BatonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    backend_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description=f"For experts: the Python of an environment with Baton's backend (empty: ${ENV_PYTHON}, "
                    "else the engine Install Engine made, else the .venv of the Baton repository this add-on "
                    "was built from)")
    engine_wheel_folder: StringProperty(
        name="Wheel Folder", subtype="DIR_PATH",
        description="Install the engine from this folder of wheels instead of downloading (needed when Blender "
                    "works offline; `python3 build.py engine-wheels FOLDER` makes one)")
    torch_index: StringProperty(
        name="Torch Index", default=engine_env.TORCH_INDEX,
        description="Where Install Engine gets torch's CPU build, besides the usual package index "
                    "(empty: the usual index only)")
    backend_mode: EnumProperty(
        name="Engine", default="AUTO",
        items=[("AUTO", "Start Automatically", "Start the engine in the background when first needed; "
                                               "stop it when Blender quits"),
               ("CONNECT", "Connect to Running", "Use a service started by hand "
                                                 "(python -m backend serve --port … --token-file …)")])
    start_on_enable: BoolProperty(
        name="Start When Enabled", default=False,
        description="Start the engine as soon as the add-on is enabled, so the first run need not wait")
    port: IntProperty(name="Port", min=0, max=65535, default=0, description="The running service's port")
    token_file: StringProperty(name="Token File", subtype="FILE_PATH",
                               description="The file the running service wrote its bearer token to")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH",
                               description="Generator checkpoint for the M2S-GAN engine")
    default_engine_name: StringProperty(options={"HIDDEN"})
    default_engine: EnumProperty(name="Default Engine", items=request_options.engine_items,
                                 get=_get_default_engine, set=_set_default_engine)
    default_seed: IntProperty(name="Default Seed", min=0, max=seed_max(), default=0)
    preset_folder: StringProperty(name="Presets Folder", subtype="DIR_PATH",
                                  description="Folder of gesture and bone map presets (JSON), e.g. one the studio "
                                              "shares; empty: Baton's own user folder")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "AUTO":
            self.draw_engine(layout.box())
            layout.prop(self, "backend_python")
            try:
                python, origin = find_python(self.backend_python, str(engine_operators.layout().home))
                layout.label(text=f"Using {python} (from {origin})", icon="CHECKMARK")
            except BackendError as e:
                box = layout.box()
                box.alert = True
                for line in wrap_lines(str(e), 90):
                    box.label(text=line)
            layout.prop(self, "start_on_enable")
            row = layout.row()
            row.label(text=f"Engine: {manager.status()}")
            if manager.log_file():
                layout.label(text=f"Log: {manager.log_file()}")
        else:
            row = layout.row()
            row.prop(self, "port")
            row.prop(self, "token_file")
        layout.separator()
        layout.prop(self, "checkpoint")
        row = layout.row()
        row.prop(self, "default_engine")
        row.prop(self, "default_seed")
        layout.prop(self, "preset_folder")

    def draw_engine(self, box):
        """The installed engine: where, how big, its version; Install, Repair, Remove; an install's progress."""
        place = engine_operators.layout()
        info = place.installed()
        install = engine_operators.current
        if install is not None and not install.finished:
            box.label(text=f"Installing: {install.message} — {install.progress:.0%}", icon="SORTTIME")
            box.label(text=f"Log: {place.log}")
            return
        if info is None:
            box.label(text="Baton's engine is not installed (it takes about 1.3 GB of disk space)", icon="INFO")
        else:
            problem = place.version_problem()
            box.label(text=problem or f"Engine {info.get('version')} installed: "
                                      f"{engine_env.human_size(info.get('size', 0))} in {place.env}",
                      icon="ERROR" if problem else "CHECKMARK")
        if install is not None and install.error:
            sub = box.box()
            sub.alert = True
            for line in wrap_lines(install.error, 90):
                sub.label(text=line)
        row = box.row()
        row.operator("baton.install_engine", text="Repair Engine" if info else "Install Engine",
                     icon="FILE_REFRESH" if info else "IMPORT")
        if info or place.staging.exists():
            row.operator("baton.remove_engine", icon="TRASH")
        box.prop(self, "engine_wheel_folder")
        if not bpy.app.online_access and not self.engine_wheel_folder:
            box.label(text="Blender works offline: choose a wheel folder to install from", icon="INTERNET_OFFLINE")
        box.prop(self, "torch_index")
        if place.log.is_file():
            box.label(text=f"Install log: {place.log}")


def wrap_lines(text: str, width: int) -> list[str]:
    import textwrap
    return [w for line in text.splitlines() for w in (textwrap.wrap(line, width) or [""])]


def prefs() -> BatonPreferences:
    return bpy.context.preferences.addons[__package__].preferences


def backend_settings() -> BackendSettings:
    p = prefs()
    return BackendSettings(bpy.path.abspath(p.backend_python) if p.backend_python else "", p.backend_mode,
                           p.port, bpy.path.abspath(p.token_file) if p.token_file else "", p.start_on_enable,
                           str(engine_operators.layout().home))


def register() -> None:
    bpy.utils.register_class(BatonPreferences)


def unregister() -> None:
    bpy.utils.unregister_class(BatonPreferences)
