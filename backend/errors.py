"""User-facing errors: every failure a user can cause ends in one of these, with a message that
names the file or value and the reason, so the CLI and the service can show it as one line."""


class BatonError(Exception):
    """Base class: the message is meant for the user, not a traceback."""


class AudioError(BatonError):
    """The audio file is missing, unreadable, unsupported, too short, too long or silent."""


class CheckpointError(BatonError):
    """The checkpoint is missing, corrupt, or not a generator this project knows."""


class TakeError(BatonError):
    """A take file is missing, malformed, or from an incompatible version."""
