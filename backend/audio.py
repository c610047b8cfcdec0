"""Decoding any audio file (or a slice of it) to mono float32 at the engine's sample rate.

Decoding streams the file in blocks through libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, …),
downmixes and resamples block by block with soxr (the resampler librosa uses by default), so an hour
of 48 kHz stereo never sits in memory at its native rate. Everything a user can get wrong ends in an
AudioError that names the file and the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baton_core.request import MAX_SECONDS
from .errors import AudioError

SAMPLE_RATE = 22050
MIN_SECONDS = 1.0
SILENCE_PEAK = 1e-4  # -80 dBFS: nothing a listener would hear, nothing a conductor could follow
_BLOCK = 1 << 17
POLARITY_S = 30.0  # how much of a slice tells each channel's polarity


@dataclass
class Audio:
    samples: np.ndarray  # mono float32 at `sr`
    sr: int
    path: str
    start: float  # seconds into the file where `samples` begins
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
    start = float(start or 0.0)
    if not np.isfinite(start) or start < 0:
        raise AudioError(f"{name}: slice start {start} s must be a finite, non-negative number of seconds")
    if duration is not None and (not np.isfinite(duration) or duration <= 0):
        raise AudioError(f"{name}: slice duration {duration} s must be a finite, positive number of seconds")
    with _quiet_stderr() as decoder_notes:
        try:
            f = sf.SoundFile(name)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            reason = _reason(e, decoder_notes())
            samples = _decode_with_ffmpeg(path, name, start, duration, sr, max_seconds, reason)
        else:
            samples = _load(f, path, name, start, duration, sr, max_seconds, decoder_notes)
    if len(samples) / sr < MIN_SECONDS:
        raise AudioError(f"{name}: only {len(samples) / sr:.2f} s could be decoded "
                         f"(truncated or corrupt; at least {MIN_SECONDS:g} s needed)")
    peak = float(np.max(np.abs(samples)))
    if not np.isfinite(peak):
        raise AudioError(f"{name}: the audio contains NaN or infinite samples (corrupt)")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: the audio is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS); "
                         "there is nothing to conduct")
    return Audio(samples, sr, name, start, file_sha256(path))


def _decode_with_ffmpeg(path: Path, name: str, start: float, duration: float | None, sr: int,
                        max_seconds: float, reason: str) -> np.ndarray:
    """What libsndfile cannot open (AAC/M4A, WMA, video soundtracks, …) goes through the ffmpeg
    binary that the imageio-ffmpeg wheel carries, as librosa's audioread would use ffmpeg."""
    import imageio_ffmpeg

    limit = min(duration if duration is not None else np.inf, max_seconds + 1.0)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-ss", f"{start}", "-i", str(path),
           "-t", f"{limit}", "-vn", "-ac", "2", "-ar", str(sr), "-f", "f32le", "-"]
    try:
        run = subprocess.run(cmd, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{name}: decoding took longer than 10 minutes; is it really audio?") from None
    pairs = np.frombuffer(run.stdout[: len(run.stdout) // 8 * 8], dtype=np.float32).reshape(-1, 2)
    samples = to_mono(pairs, polarity(pairs))
    if run.returncode != 0 or len(samples) == 0:
        said = re.sub(r"\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", " ".join(run.stderr.decode(errors="replace").split()))
        said = said.split(". ")[0][:120]  # its first sentence, without the demuxer addresses
        if run.returncode == 0 and start > 0:
            raise AudioError(f"{name}: slice start {start:.3f} s is past the end of the audio")
        raise AudioError(f"{name}: not a readable audio file — unsupported format or corrupt "
                         f"({reason}; ffmpeg: {said or 'no audio stream'})")
    _check_limit(name, len(samples) / sr, max_seconds)
    return samples


def _load(f, path: Path, name: str, start: float, duration, sr: int, max_seconds: float, notes) -> np.ndarray:
    with f:
        if f.format == "OGG" and _ogg_truncated(path):
            raise AudioError(f"{name}: truncated — the Ogg stream stops before its end-of-stream page")
        if "(should be" in f.extra_info:  # libsndfile's note on a RIFF/AIFF chunk cut short
            raise AudioError(f"{name}: truncated — the file ends before its audio data does")
        native_sr, channels = f.samplerate, f.channels
        if native_sr <= 0 or channels <= 0:
            raise AudioError(f"{name}: invalid header (sample rate {native_sr}, channels {channels})")
        # An MP3's length is only an estimate (no Xing header, VBR, files joined end to end): decode
        # to the end of the stream and judge what was decoded. Other formats know their length.
        exact = f.format != "MP3"
        header_duration = f.frames / native_sr if exact else np.inf
        if header_duration == 0:
            raise AudioError(f"{name}: the file holds no audio (0 samples)")
        if start >= header_duration:
            raise AudioError(f"{name}: slice start {start:.3f} s is past the end of the audio "
                             f"({header_duration:.3f} s)")
        avail = header_duration - start
        if duration is not None:
            avail = min(avail, float(duration))
        if avail < MIN_SECONDS:
            raise AudioError(f"{name}: {avail:.2f} s of audio is too short (at least {MIN_SECONDS:g} s needed)")
        if exact:
            _check_limit(name, avail, max_seconds)
        first = int(round(start * native_sr))
        count = int(round(min(avail, max_seconds + 1.0) * native_sr))
        samples, missing = _decode(f, name, first, count, native_sr, sr, notes, exact)
    if exact and missing > native_sr // 10:
        samples = _second_opinion(path, name, first, count, missing, native_sr, sr, max_seconds)
    if not exact:
        if len(samples) == 0:
            raise AudioError(f"{name}: slice start {start:.3f} s is past the end of the audio")
        _check_limit(name, len(samples) / sr, max_seconds)
        promised = _mp3_xing_seconds(path, native_sr)
        if promised is not None and duration is None and start + len(samples) / sr < promised - 0.5:
            raise AudioError(f"{name}: truncated — its Xing header promises {promised:.2f} s but the data "
                             f"ends at {start + len(samples) / sr:.2f} s")
    return samples


def _check_limit(name: str, seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise AudioError(f"{name}: {seconds / 60:.1f} min of audio is longer than the "
                         f"{max_seconds / 60:g} min limit; pass a slice (start, duration)")


def _second_opinion(path: Path, name: str, first: int, count: int, missing: int, native_sr: int, sr: int,
                    max_seconds: float) -> np.ndarray:
    """The slice as ffmpeg decodes it, where libsndfile stopped `missing` frames short of what the
    header promises: libsndfile ends an Ogg stream at its first end-of-stream page, and real files
    (a game soundtrack's, Debian-packaged) carry several, with music after the first that every
    player plays. A file that ffmpeg too finds short is truncated."""
    ends = f"{(count + first - missing) / native_sr:.2f} s"
    short = AudioError(f"{name}: truncated — the header promises {(count + first) / native_sr:.2f} s "
                       f"but the data ends at {ends}")
    try:
        samples = _decode_with_ffmpeg(path, name, first / native_sr, count / native_sr, sr, max_seconds,
                                      f"libsndfile stopped at {ends}")
    except AudioError:
        raise short from None
    if len(samples) < (count - native_sr // 10) * sr / native_sr:
        raise short
    return samples


def _decode(f, name: str, first: int, count: int, native_sr: int, sr: int, notes,
            exact: bool) -> tuple[np.ndarray, int]:
    """Up to `count` frames from frame `first`, and how many of them the stream did not hold."""
    import soundfile as sf
    import soxr

    out = np.empty(int(count * sr / native_sr) + 64, dtype=np.float32)
    n_out = 0
    resampler = soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality="HQ") if native_sr != sr else None
    try:
        if first:
            f.seek(first)
        remaining = count
        # the slice's first POLARITY_S come in one block: they tell each channel's polarity
        block = f.read(min(count, int(POLARITY_S * native_sr)), dtype="float32", always_2d=True)
        signs = polarity(block)
        while len(block):  # an empty block: the end of the stream
            remaining -= len(block)
            mono = to_mono(block, signs)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=remaining <= 0)
            n_out = _append(out, n_out, mono)
            if remaining <= 0:
                break
            block = f.read(min(_BLOCK, remaining), dtype="float32", always_2d=True)
        if resampler is not None and remaining > 0:
            n_out = _append(out, n_out, resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    except (sf.LibsndfileError, RuntimeError) as e:
        if not exact and n_out == 0 and first:
            raise AudioError(f"{name}: slice start {first / native_sr:.3f} s is past the end of the audio") from None
        decoded = n_out / sr
        raise AudioError(f"{name}: decoding failed after {decoded:.2f} s — truncated or corrupt "
                         f"({_reason(e, notes())})") from None
    return out[:n_out], max(remaining, 0)


def polarity(frames: np.ndarray) -> np.ndarray:
    """(channels,) float32 ±1: −1 for a channel that plays the first one's sound inverted (their
    correlation −0.5 or less), as a stereo file with one channel's phase flipped does; a plain mean
    would cancel such music to near silence."""
    x = np.asarray(frames, np.float32)
    gram = (x.T @ x).astype(np.float64)  # the channels' products with each other
    norm = np.sqrt(gram[0, 0] * np.diag(gram))
    flipped = (norm > 0) & (gram[0] <= -0.5 * norm)
    return np.where(flipped, -1.0, 1.0).astype(np.float32)


def to_mono(frames: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """(n, channels) → (n,) float32: the channels' mean, each turned to `signs`' polarity."""
    if frames.shape[1] == 1:
        return frames[:, 0].astype(np.float32)
    return (frames if np.all(signs > 0) else frames * signs).mean(axis=1, dtype=np.float32)


def _ogg_truncated(path: Path) -> bool:
    """An Ogg file that was cut short has no complete last page carrying the end-of-stream flag
    (libsndfile just reports the shorter length, so the header cannot tell)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    at = tail.rfind(b"OggS")
    if at < 0 or len(tail) - at < 27:
        return True
    n_seg = tail[at + 26]
    if len(tail) - at < 27 + n_seg:
        return True
    page_len = 27 + n_seg + sum(tail[at + 27: at + 27 + n_seg])
    return len(tail) - at < page_len or not tail[at + 5] & 0x04


def _mp3_xing_seconds(path: Path, sr: int) -> float | None:
    """The length an MP3's Xing/Info header records (exact, unlike an estimate from the bit
    rate), or None when the file has no such header."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    at = 0
    if head[:3] == b"ID3" and len(head) >= 10:  # skip an ID3v2 tag: its size is 4 syncsafe bytes
        at = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F))
    while at + 4 <= len(head) and not (head[at] == 0xFF and head[at + 1] & 0xE0 == 0xE0):
        at += 1
    if at + 4 > len(head):
        return None
    frame = head[at: at + 200]
    tag = max(frame.find(b"Xing"), frame.find(b"Info"))
    if tag < 0 or len(frame) < tag + 12 or not int.from_bytes(frame[tag + 4: tag + 8], "big") & 1:
        return None
    frames = int.from_bytes(frame[tag + 8: tag + 12], "big")
    per_frame = 1152 if (head[at + 1] >> 3) & 3 == 3 else 576  # MPEG-1 Layer III, else MPEG-2/2.5
    return frames * per_frame / sr


def _append(out: np.ndarray, n: int, chunk: np.ndarray) -> int:
    take = min(len(chunk), len(out) - n)
    out[n:n + take] = chunk[:take]
    return n + take


def _reason(e: Exception, notes: str = "") -> str:
    text = str(e).strip()
    if not text or "does not exist" in text:  # libsndfile's words for "no decoder recognised it"
        text = "format not recognised"
    if notes:
        text += f"; decoder said: {notes.splitlines()[0][:120]}"
    return text.splitlines()[-1][:240]


_stderr_lock = threading.Lock()


@contextmanager
def _quiet_stderr():
    """Capture what C decoders (mpg123, vorbis) print on fd 2 while a file is decoded, so a bad file
    gives one clear error instead of library chatter; yields a function returning the capture."""
    with _stderr_lock, tempfile.TemporaryFile(mode="w+b") as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            def notes() -> str:
                capture.flush()
                capture.seek(0)
                return capture.read().decode(errors="replace").strip()
            yield notes
        finally:
            os.dup2(saved, 2)
            os.close(saved)
