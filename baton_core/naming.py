"""How a take's action is named, wherever a take becomes one (the add-on, batch rendering, scripts)."""

from __future__ import annotations

from pathlib import Path

MAX_SOURCE = 48  # characters of the strip or file name kept (Blender's names hold 63 bytes)


def action_name(source: str, seed: int | None) -> str:
    """'<strip or music file name> · seed <n>'; Blender adds .001, … when the name is taken."""
    source = source[:MAX_SOURCE]
    return f"{source} · seed {seed}" if seed is not None else source


def take_action_name(provenance: dict) -> str:
    """action_name for a take read from a file: its music file's name and seed, from its provenance."""
    return action_name(Path(str(provenance.get("audio") or "take")).stem, provenance.get("seed"))
