"""Development tools: baking the default conductor (build_conductor.py, from MakeHuman/MPFB data read
by mpfb.py), building the test rigs (rig_builder.py) and rendering them and the add-on's frame for the docs,
re-making the upgrade test's scene from an earlier build (make_upgrade_fixture.py, run as its docstring says),
and the recordings evaluation set with its independent reference beats (recordings_set.py, reference_beats.py).
Not installed; run from the repository root (`.venv/bin/python -m tools.<name>`)."""
