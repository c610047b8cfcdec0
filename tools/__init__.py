"""Development tools: baking the default conductor (build_conductor.py, from MakeHuman/MPFB data read
by mpfb.py), building the test rigs (rig_builder.py) and rendering them and the add-on's frame for the docs.
Not installed; run from the repository root (`.venv/bin/python -m tools.<name>`)."""
