"""Baton's Blender side: bone maps, retargeting a take onto an armature, writing it as keyframes,
and the default conductor.

The math (retarget.py, rotations.py) is plain numpy so it runs and is tested without Blender's UI;
the modules that touch Blender (armature.py, keyframes.py, conductor_rig.py) use only bpy, mathutils
and numpy, which Blender's own Python has, and takefile.py reads take files with numpy alone. Nothing
here imports `backend` (torch is not in Blender's Python), and imports inside the package are
relative, because the package is later zipped into an extension.
"""
