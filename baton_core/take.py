"""The take: one generated performance, as a documented, validated record — the one reader and
writer of take files, used by the engine (writing), the service (sending) and the add-on (reading
what the service sends, numpy and the standard library only).

A take is written as `.npz` (compact, exact) or `.json` (readable, for tools without numpy); both hold
the same fields:

* `format` = "baton-take", `version` = TAKE_VERSION;
* `fps` (frames per second) and `start` (seconds into the audio file of frame 0): frame i is shown
  as file time start + i / fps plays;
* `keypoints_2d` (T, 13, 2): COCO upper body, image units, y down (baton_core/skeleton.py);
* `keypoints_3d` (T, 13, 3): metres, Z up, facing −Y (Blender's conventions);
* `beats` (seconds from frame 0): every stroke the conductor strikes (subdivisions too), and `tempo`
  (bpm);
* `pulse` (seconds from frame 0): the beats counted (no subdivisions), and `downbeats`, the ones
  among them that begin a bar — what the add-on lays out as bar.beat markers and a re-conduct
  gives back; `lead` (seconds the gestures come before the sound) places them: beat t is heard at
  file time start + lead + t;
* `settings`: the request's options that shaped the take (engine, seed, given beats or not, the
  gesture controls), so a take can be made again;
* `provenance`: engine, checkpoint and its weights' SHA-256, seed, audio file and its SHA-256,
  slice, software versions, creation time.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TakeError
from .skeleton import N_JOINTS

FORMAT = "baton-take"
TAKE_VERSION = 2
READS = (1, 2)  # version 1: no pulse, bars, lead or settings (the pulse is its beats, no bar lines)
MAX_LEAD = 1.0  # seconds a take's gestures may come before (or, negative, after) the sound
MAX_FPS = 240  # the highest frame rate a take (and so a request, or a scene to conduct) may have


@dataclass
class Take:
    fps: float
    start: float
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    beats: np.ndarray
    tempo: float
    provenance: dict = field(default_factory=dict)
    pulse: np.ndarray | None = None  # None: the beats
    downbeats: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lead: float = 0.0
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.pulse is None:
            self.pulse = self.beats

    @property
    def n_frames(self) -> int:
        return int(self.keypoints_2d.shape[0])

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    def validate(self, where: str = "take") -> "Take":
        k2, k3 = np.asarray(self.keypoints_2d), np.asarray(self.keypoints_3d)
        if k2.ndim != 3 or k2.shape[1:] != (N_JOINTS, 2) or not np.issubdtype(k2.dtype, np.number):
            raise TakeError(f"{where}: keypoints_2d must have shape (T, {N_JOINTS}, 2), got {k2.shape}")
        if k3.shape != k2.shape[:2] + (3,) or not np.issubdtype(k3.dtype, np.number):
            raise TakeError(f"{where}: keypoints_3d must have shape {k2.shape[:2] + (3,)}, got {k3.shape}")
        if k2.shape[0] < 1:
            raise TakeError(f"{where}: the take has no frames")
        if not (np.isfinite(k2).all() and np.isfinite(k3).all()):
            raise TakeError(f"{where}: keypoints contain NaN or infinite values")
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and 1 <= self.fps <= MAX_FPS):
            raise TakeError(f"{where}: fps must be a number between 1 and {MAX_FPS}, got {self.fps!r}")
        if not (isinstance(self.lead, (int, float)) and math.isfinite(self.lead) and abs(self.lead) <= MAX_LEAD):
            raise TakeError(f"{where}: lead must be a number of seconds within ±{MAX_LEAD:g}, got {self.lead!r}")
        if not (math.isfinite(self.start) and self.start + self.lead >= 0):
            raise TakeError(f"{where}: start must be a number of seconds (frame 0's sound at or after the file's "
                            f"start), got {self.start!r}")
        if not (isinstance(self.tempo, (int, float)) and math.isfinite(self.tempo) and self.tempo >= 0):
            raise TakeError(f"{where}: tempo must be a non-negative number of bpm (0: no beat), got {self.tempo!r}")
        for name in ("beats", "pulse", "downbeats"):
            b = np.asarray(getattr(self, name))
            if b.ndim != 1 or not np.issubdtype(b.dtype, np.number) or not np.isfinite(b).all() or np.any(np.diff(b) <= 0):
                raise TakeError(f"{where}: {name} must be increasing finite times in seconds")
        if not isinstance(self.settings, dict):
            raise TakeError(f"{where}: settings must be a mapping of option names to values")
        return self

    # -- files ------------------------------------------------------------------------------------
    def header(self) -> dict:
        return {"format": FORMAT, "version": TAKE_VERSION, "fps": float(self.fps), "start": float(self.start),
                "n_frames": self.n_frames, "tempo": float(self.tempo), "lead": float(self.lead),
                "settings": self.settings, "provenance": self.provenance}

    def resampled(self, fps: float) -> "Take":
        """The same performance at another frame rate (linear interpolation between frames); a
        frame still lands where its time says: frame i at start + i / fps."""
        if not (math.isfinite(fps) and 1 <= fps <= MAX_FPS):
            raise TakeError(f"fps must be between 1 and {MAX_FPS}, got {fps!r}")
        if fps == self.fps:
            return self
        t_old = np.arange(self.n_frames) / self.fps
        t_new = np.arange(max(1, math.ceil(self.duration * fps - 1e-9))) / fps

        def interp(k: np.ndarray) -> np.ndarray:
            flat = k.reshape(self.n_frames, -1)
            out = np.stack([np.interp(t_new, t_old, flat[:, c]) for c in range(flat.shape[1])], axis=1)
            return out.reshape((len(t_new),) + k.shape[1:]).astype(np.float32)

        return Take(float(fps), self.start, interp(self.keypoints_2d), interp(self.keypoints_3d), self.beats,
                    self.tempo, self.provenance | {"resampled_from_fps": self.fps}, self.pulse, self.downbeats,
                    self.lead, self.settings).validate()

    @staticmethod
    def from_bytes(data: bytes, suffix: str, where: str = "take") -> "Take":
        """A take from the contents of a `.json` or `.npz` file, validated (as load_take)."""
        return _from_bytes(data, suffix, where)

    def to_bytes(self, suffix: str, compress: bool = True) -> bytes:
        """The take as the contents of a `.npz` or `.json` file. `compress=False` stores the NPZ's
        arrays as they are: 10% larger, 20× cheaper to write (the service's loopback answers)."""
        self.validate()
        if suffix == ".json":
            doc = self.header() | {"keypoints_2d": np.round(self.keypoints_2d, 6).tolist(),
                                   "keypoints_3d": np.round(self.keypoints_3d, 6).tolist(),
                                   "beats": np.round(self.beats, 6).tolist(), "pulse": np.round(self.pulse, 6).tolist(),
                                   "downbeats": np.round(self.downbeats, 6).tolist()}
            return json.dumps(doc).encode()
        if suffix == ".npz":
            buffer = io.BytesIO()
            (np.savez_compressed if compress else np.savez)(buffer, header=np.array(json.dumps(self.header())),
                                keypoints_2d=self.keypoints_2d.astype(np.float32),
                                keypoints_3d=self.keypoints_3d.astype(np.float32),
                                beats=np.asarray(self.beats, dtype=np.float64),
                                pulse=np.asarray(self.pulse, dtype=np.float64),
                                downbeats=np.asarray(self.downbeats, dtype=np.float64))
            return buffer.getvalue()
        raise TakeError(f"a take is saved as .npz or .json, not {suffix or 'no suffix'!r}")

    def save(self, path: str | Path) -> Path:
        """Write `.npz` or `.json` by the file's suffix."""
        path = check_take_path(path)
        data = self.to_bytes(path.suffix)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as e:
            raise TakeError(f"{path}: cannot write the take ({e.strerror or e})") from None
        return path


def check_take_path(path: str | Path) -> Path:
    """The path a take can be written to, or a TakeError — checked before any work is done: the
    suffix, not a directory, and a folder (or its nearest existing parent) that can be written."""
    path = Path(path)
    if path.suffix not in (".npz", ".json"):
        raise TakeError(f"{path}: a take is saved as .npz or .json, not {path.suffix or 'no suffix'!r}")
    if path.is_dir():
        raise TakeError(f"{path}: is a directory, not a take file")
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise TakeError(f"{path}: cannot write there ({folder} is not a writable folder)")
    return path


def load_take(path: str | Path) -> Take:
    path = Path(path)
    if not path.is_file():
        raise TakeError(f"{path}: no such take file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TakeError(f"{path}: cannot read the take ({e.strerror or e})") from None
    return Take.from_bytes(data, path.suffix, str(path))


_ARRAYS = ("keypoints_2d", "keypoints_3d", "beats", "pulse", "downbeats")


def _from_bytes(data: bytes, suffix: str, where: str) -> Take:
    try:
        if suffix == ".json":
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise TakeError(f"{where}: not a Baton take (a JSON {type(doc).__name__}, not an object)")
            arrays = {k: np.asarray(doc[k], dtype=np.float64) for k in _ARRAYS if k in doc}
        else:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                doc = json.loads(str(z["header"]))
                arrays = {k: z[k] for k in _ARRAYS if k in z.files}
    except (OSError, ValueError, KeyError, TypeError, RecursionError, zipfile.BadZipFile) as e:
        raise TakeError(f"{where}: not a readable take file ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TakeError(f"{where}: not a Baton take (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    version = doc.get("version")
    if version not in READS:
        raise TakeError(f"{where}: take version {version!r} is not supported (this version reads "
                        f"{', '.join(map(str, READS))})")
    try:
        extra = {} if version == 1 else {"pulse": arrays["pulse"].reshape(-1), "downbeats": arrays["downbeats"].reshape(-1),
                                         "lead": float(doc["lead"]), "settings": doc["settings"]}
        take = Take(fps=float(doc["fps"]), start=float(doc["start"]), keypoints_2d=arrays["keypoints_2d"],
                    keypoints_3d=arrays["keypoints_3d"], beats=arrays["beats"].reshape(-1),
                    tempo=float(doc["tempo"]), provenance=dict(doc.get("provenance") or {}), **extra)
    except (KeyError, TypeError, ValueError) as e:
        raise TakeError(f"{where}: take is missing or has a malformed field ({e})") from None
    take.validate(where)
    if doc.get("n_frames") != take.n_frames:
        raise TakeError(f"{where}: header says {doc.get('n_frames')} frames but the take holds {take.n_frames}")
    return take

