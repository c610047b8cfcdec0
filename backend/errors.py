"""The engine's own user-facing errors (the base, BatonError, and TakeError live in baton_core)."""

from baton_core.errors import BatonError


class AudioError(BatonError):
    """The audio file is missing, unreadable, unsupported, too short, too long or silent."""


class CheckpointError(BatonError):
    """The checkpoint is missing, corrupt, or not a generator this project knows."""
