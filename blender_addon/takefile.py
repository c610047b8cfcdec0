"""Reading a take file (.npz or .json, backend/take.py's format) with numpy alone.

Blender's Python has numpy but not the engine's packages, so the add-on reads takes here; the
fields are those apply_take needs, checked enough to give a one-line error on a wrong file.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import RigError

FORMAT, VERSION = "baton-take", 1


def read_take(path) -> dict:
    """{'keypoints_3d' (T, 13, 3) float64, 'fps', 'start', 'beats' (seconds from frame 0), 'tempo',
    'provenance' (dict)} from a .npz or .json take file."""
    path = Path(path)
    if path.suffix not in (".npz", ".json"):
        raise RigError(f"{path}: a take is a .npz or .json file, not {path.suffix or 'no suffix'!r}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RigError(f"{path}: cannot read the take ({e.strerror or e})") from None
    try:
        if path.suffix == ".json":
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            kp, beats = doc.get("keypoints_3d"), doc.get("beats", [])
        else:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                doc = json.loads(str(z["header"]))
                kp, beats = z["keypoints_3d"], z["beats"]
        kp = np.asarray(kp, dtype=np.float64)
        beats = np.asarray(beats, dtype=np.float64).reshape(-1)
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as e:
        raise RigError(f"{path}: not a readable take file ({type(e).__name__}: {str(e)[:100]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        doc = doc if isinstance(doc, dict) else {}
        raise RigError(f"{path}: not a Baton take (format {doc.get('format')!r})")
    if doc.get("version") != VERSION:
        raise RigError(f"{path}: take version {doc.get('version')!r} is not supported (this reads {VERSION})")
    if kp.ndim != 3 or kp.shape[1:] != (13, 3):
        raise RigError(f"{path}: keypoints_3d must have shape (T, 13, 3), got {kp.shape}")
    try:
        return {"keypoints_3d": kp, "fps": float(doc["fps"]), "start": float(doc["start"]), "beats": beats,
                "tempo": float(doc.get("tempo", 0.0)), "provenance": dict(doc.get("provenance") or {})}
    except (KeyError, TypeError, ValueError) as e:
        raise RigError(f"{path}: the take is missing or has a malformed field ({e})") from None


def action_name(take: dict) -> str:
    """'<music file name> · seed <n>' from a take's provenance, as the take's action is named."""
    prov = take.get("provenance", {})
    music = Path(str(prov.get("audio") or "take")).stem
    seed = prov.get("seed")
    return f"{music} · seed {seed}" if seed is not None else music
