"""User-facing errors: every failure a user can cause ends in one of these, with a message that
names the file or value and the reason, so the CLI, the service and the add-on can show it as one
line."""


class BatonError(Exception):
    """Base class: the message is meant for the user, not a traceback."""


class TakeError(BatonError):
    """A take file is missing, malformed, or from an incompatible version."""
