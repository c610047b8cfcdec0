"""Batch rendering's Blender side: one piece per process (piece.py, `python -m baton_render.piece`),
staged and rendered in `bpy` (stage.py) with the rig library. `python -m backend render` (backend/batch.py)
plans the pieces and starts these processes; it never imports this package."""
