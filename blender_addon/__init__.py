"""Baton for Blender: select a sound strip, press Conduct, get a conductor as ordinary keyframes.

The pieces, in the order a run goes through them:
  preferences.py   the engine: installed from there, an expert's Python, or a running service;
                   a run's defaults
  engine_env.py    Install Engine: the engine's private environment (no bpy); engine_operators.py
                   its buttons; engine_lock.txt its pinned, hashed packages
  backend_life.py  the engine process: found, started when first needed, health-checked,
                   restarted after a crash, stopped with Blender
  client.py        the service's HTTP API (standard library only; the service's tests use it too)
  timeline.py      which slice of which file the strip plays, and from which frame
  conduct.py       one run: a worker thread does the talking, the main thread writes the take
  rig_link.py      the one place that calls the rig library (bonemap, keyframes, conductor_rig)
  takes.py         takes as actions: naming, listing, switching, deleting, keeping what was there
  operators.py, ui.py, properties.py   what the animator clicks

The rig library (bone maps, retargeting, keyframes, the default conductor) is `baton_rigs`, and
the take format, skeleton and request options are `baton_core`; both ship in the extension's zip as
wheels (see ARCHITECTURE.md).

Nothing here imports `backend` or torch (Blender's Python has neither), imports inside the package are
relative (it is installed as an extension under `bl_ext.<repo>.baton`), and `bpy` is imported only
from register(), so tools and tests can use client.py or the rig math without Blender.
"""

_MODULES = ("engine_operators", "preferences", "properties", "presets", "bone_mapping", "operators", "ui")


def register() -> None:
    import importlib
    for name in _MODULES:
        importlib.import_module(f".{name}", __package__).register()
    from . import backend_life, preferences
    backend_life.on_register(preferences.backend_settings)


def unregister() -> None:
    import importlib
    from . import backend_life
    backend_life.on_unregister()
    for name in reversed(_MODULES):
        importlib.import_module(f".{name}", __package__).unregister()
