"""How the add-on starts a process of its own (the engine, pip), alike on every platform.

On Windows a console program started from Blender (a GUI program) opens a console window of its own
unless told not to; on Linux and macOS there is nothing to ask. Everything the add-on starts goes
through `background_flags`, so no start can forget it.
"""

from __future__ import annotations

import sys

CREATE_NO_WINDOW = 0x08000000  # subprocess.CREATE_NO_WINDOW, which exists only on Windows' Python


def background_flags(platform: str = sys.platform) -> dict:
    """Keyword arguments for subprocess.Popen/run: no console window on Windows."""
    return {"creationflags": CREATE_NO_WINDOW} if platform == "win32" else {}
