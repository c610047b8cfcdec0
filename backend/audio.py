"""Decoding any audio file (or a slice of it) to mono float32 at the engine's sample rate.

Decoding streams the file in blocks through libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, …),
downmixes and resamples block by block with soxr (the resampler librosa uses by default), so an hour
of 48 kHz stereo never sits in memory at its native rate. Everything a user can get wrong ends in an
AudioError that names the file and the reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 22050
MIN_SECONDS = 1.0
MAX_SECONDS = 60 * 60.0
SILENCE_PEAK = 1e-4  # -80 dBFS: nothing a listener would hear, nothing a conductor could follow
_BLOCK = 1 << 17


@dataclass
class Audio:
    samples: np.ndarray  # mono float32 at `sr`
    sr: int
    path: str
    start: float  # seconds into the file where `samples` begins
    file_duration: float  # of the whole file, seconds
    sha256: str  # of the whole file's bytes

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sr


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_audio(path: str | Path, start: float | None = None, duration: float | None = None,
               sr: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS) -> Audio:
    """Decode `path` (optionally only `duration` seconds from `start`) to mono float32 at `sr`."""
    import soundfile as sf

    path = Path(path)
    name = str(path)
    if not path.exists():
        raise AudioError(f"{name}: no such file")
    if not path.is_file():
        raise AudioError(f"{name}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: the file is empty (0 bytes)")
    try:
        f = sf.SoundFile(name)
    except sf.LibsndfileError as e:
        raise AudioError(f"{name}: not a readable audio file — unsupported format or corrupt "
                         f"({_reason(e)})") from None
    except (RuntimeError, TypeError, ValueError) as e:
        raise AudioError(f"{name}: not a readable audio file ({e})") from None
    with f:
        native_sr, channels, frames = f.samplerate, f.channels, f.frames
        if native_sr <= 0 or channels <= 0:
            raise AudioError(f"{name}: invalid header (sample rate {native_sr}, channels {channels})")
        file_duration = frames / native_sr
        start = float(start or 0.0)
        if start < 0 or not np.isfinite(start):
            raise AudioError(f"{name}: slice start {start} s is negative")
        if start >= file_duration:
            raise AudioError(f"{name}: slice start {start:.3f} s is past the end of the audio "
                             f"({file_duration:.3f} s)")
        avail = file_duration - start
        if duration is not None:
            if not np.isfinite(duration) or duration <= 0:
                raise AudioError(f"{name}: slice duration {duration} s must be positive")
            avail = min(avail, float(duration))
        if avail < MIN_SECONDS:
            raise AudioError(f"{name}: {avail:.2f} s of audio is too short (at least {MIN_SECONDS:g} s needed)")
        if avail > max_seconds:
            raise AudioError(f"{name}: {avail / 60:.1f} min of audio is longer than the "
                             f"{max_seconds / 60:g} min limit; pass a slice (start, duration)")
        first = int(round(start * native_sr))
        count = int(round(avail * native_sr))
        samples = _decode(f, name, first, count, native_sr, sr)
    if len(samples) == 0:
        raise AudioError(f"{name}: no audio could be decoded (truncated or corrupt)")
    if len(samples) / sr < MIN_SECONDS:
        raise AudioError(f"{name}: only {len(samples) / sr:.2f} s could be decoded "
                         f"(truncated or corrupt; at least {MIN_SECONDS:g} s needed)")
    peak = float(np.max(np.abs(samples)))
    if not np.isfinite(peak):
        raise AudioError(f"{name}: the audio contains NaN or infinite samples (corrupt)")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: the audio is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS); "
                         "there is nothing to conduct")
    return Audio(samples, sr, name, start, file_duration, file_sha256(path))


def _decode(f, name: str, first: int, count: int, native_sr: int, sr: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    out = np.empty(int(count * sr / native_sr) + 64, dtype=np.float32)
    n_out = 0
    resampler = soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality="HQ") if native_sr != sr else None
    try:
        if first:
            f.seek(first)
        remaining = count
        while remaining > 0:
            block = f.read(min(_BLOCK, remaining), dtype="float32", always_2d=True)
            if len(block) == 0:
                break  # header promised more than the stream holds: a truncated file
            remaining -= len(block)
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=remaining <= 0)
            n_out = _append(out, n_out, mono)
        if resampler is not None and remaining > 0:
            n_out = _append(out, n_out, resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    except (sf.LibsndfileError, RuntimeError) as e:
        decoded = n_out / sr
        raise AudioError(f"{name}: decoding failed after {decoded:.2f} s — truncated or corrupt "
                         f"({_reason(e)})") from None
    return out[:n_out]


def _append(out: np.ndarray, n: int, chunk: np.ndarray) -> int:
    take = min(len(chunk), len(out) - n)
    out[n:n + take] = chunk[:take]
    return n + take


def _reason(e: Exception) -> str:
    return str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
