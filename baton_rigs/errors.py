"""The one error type of the Blender side: a one-line message naming what is wrong and what to do."""


class RigError(ValueError):
    """A rig, bone map or take that cannot be retargeted (unknown rig, missing bones, bad arrays)."""
