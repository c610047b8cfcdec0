"""Reading a Baton take inside Blender: numpy and the standard library only.

Blender's Python has numpy but neither torch nor the `backend` package, so the add-on reads the
take format (backend/take.py documents it) itself: `.npz` (compact, exact) or `.json`. The checks
are the ones the writer guarantees, so a damaged or foreign file is refused with one clear line
instead of producing a broken action.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field

import numpy as np

FORMAT = "baton-take"
VERSION = 1
N_JOINTS = 13  # COCO upper body: nose, eyes, ears, shoulders, elbows, wrists, hips


class TakeFileError(ValueError):
    """The bytes are not a readable Baton take; says why."""


@dataclass
class Take:
    """One performance: frame i is heard at `start + i / fps` seconds into the audio file."""

    fps: float
    start: float
    keypoints_2d: np.ndarray  # (T, 13, 2) image units, y down
    keypoints_3d: np.ndarray  # (T, 13, 3) metres, Z up, facing −Y
    beats: np.ndarray         # seconds from frame 0
    tempo: float
    provenance: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.keypoints_3d.shape[0])

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


def read_take(data: bytes, suffix: str, where: str = "take") -> Take:
    """A take from the contents of a `.npz` or `.json` file, checked."""
    try:
        if suffix == ".json":
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise TakeFileError(f"{where}: not a Baton take (a JSON {type(doc).__name__})")
            arrays = {k: np.asarray(doc.get(k, []), dtype=np.float64) for k in ("keypoints_2d", "keypoints_3d", "beats")}
        elif suffix == ".npz":
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                doc = json.loads(str(z["header"]))
                arrays = {k: z[k] for k in ("keypoints_2d", "keypoints_3d", "beats")}
        else:
            raise TakeFileError(f"{where}: a take is a .npz or .json file, not {suffix or 'no suffix'!r}")
    except (OSError, ValueError, KeyError, TypeError, RecursionError, zipfile.BadZipFile) as e:
        if isinstance(e, TakeFileError):
            raise
        raise TakeFileError(f"{where}: not a readable take ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TakeFileError(f"{where}: not a Baton take")
    if doc.get("version") != VERSION:
        raise TakeFileError(f"{where}: take version {doc.get('version')!r} is not supported (this add-on reads {VERSION})")
    try:
        take = Take(float(doc["fps"]), float(doc["start"]), arrays["keypoints_2d"], arrays["keypoints_3d"],
                    arrays["beats"].reshape(-1), float(doc["tempo"]), dict(doc.get("provenance") or {}))
    except (KeyError, TypeError, ValueError) as e:
        raise TakeFileError(f"{where}: a field is missing or malformed ({e})") from None
    _check(take, where)
    if doc.get("n_frames") != take.n_frames:
        raise TakeFileError(f"{where}: the header says {doc.get('n_frames')} frames, the take holds {take.n_frames}")
    return take


def _check(take: Take, where: str) -> None:
    k2, k3, beats = take.keypoints_2d, take.keypoints_3d, take.beats
    if k3.ndim != 3 or k3.shape[1:] != (N_JOINTS, 3) or k3.shape[0] < 1:
        raise TakeFileError(f"{where}: keypoints_3d must have shape (T, {N_JOINTS}, 3), got {k3.shape}")
    if k2.shape != k3.shape[:2] + (2,):
        raise TakeFileError(f"{where}: keypoints_2d must have shape {k3.shape[:2] + (2,)}, got {k2.shape}")
    if not (np.isfinite(k2).all() and np.isfinite(k3).all()):
        raise TakeFileError(f"{where}: keypoints contain NaN or infinite values")
    if not (math.isfinite(take.fps) and 1 <= take.fps <= 1000):
        raise TakeFileError(f"{where}: fps must be between 1 and 1000, got {take.fps!r}")
    if not (math.isfinite(take.start) and take.start >= 0):
        raise TakeFileError(f"{where}: start must be a non-negative number of seconds, got {take.start!r}")
    if not (math.isfinite(take.tempo) and take.tempo >= 0):
        raise TakeFileError(f"{where}: tempo must be a non-negative number, got {take.tempo!r}")
    if not np.isfinite(beats).all() or np.any(np.diff(beats) <= 0):
        raise TakeFileError(f"{where}: beats must be increasing finite times")
