"""The request options the add-on offers: baton_core.request's schema as shipped in the zip, replaced
by the running service's (`/v1/options`) once it answers, so the engine list and bounds shown are
those of the engine that will run the request, never a copied list."""

from __future__ import annotations

from baton_core.request import schema

from .client import BackendError

BLENDER_INT_MAX = 2 ** 31 - 1  # an IntProperty is 32-bit

_schema = schema()
_engine_items: list[tuple[str, str, str]] = []  # Blender needs the items kept alive while shown


def refresh(client) -> None:
    """Take the service's schema (kept as it was when the service cannot say)."""
    global _schema
    try:
        _schema = client.options()
    except BackendError:
        pass


def option(name: str) -> dict:
    return next(o for o in _schema["options"] if o["name"] == name)


def engine_items(_self=None, _context=None) -> list[tuple[str, str, str]]:
    labels = _schema.get("engine_labels", {})
    items = [(name, *labels.get(name, (name, ""))) for name in _schema["engines"]]
    if items != _engine_items:
        _engine_items[:] = items
    return _engine_items


def default_engine() -> str:
    return _schema["default_engine"]
