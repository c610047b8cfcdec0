"""The rig library: a take becomes ordinary keyframes on any armature. Bone maps per rig convention
(bonemap.py, with their files in bonemaps/), retargeting maths on numpy (retarget.py, rotations.py),
reading the armature and checking what Blender evaluates (armature.py), writing the keys (keyframes.py)
and the default conductor with its baton (conductor_rig.py, its data in conductor/).

bpy, mathutils and numpy only — it runs inside Blender. Used by the extension's UI (blender_addon/)
and by batch rendering (baton_render/); the extension's zip carries it as a wheel.
"""
