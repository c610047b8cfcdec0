"""What both of Baton's processes share — the engine (`backend`, with torch) and the Blender
extension (Blender's own Python: numpy, no torch) — with neither bpy nor torch: the skeleton and the
time base (skeleton.py, timebase.py), the take format (take.py), how a take's action is named
(naming.py), the one definition of a conducting request (request.py) and the user-facing errors
(errors.py). The extension's zip carries it as a wheel; the backend imports it.

`__version__` is the project's one version number: pyproject.toml, the extension's manifest (written
by build.py) and every take's provenance read it from here.
"""

__version__ = "0.1.0"
