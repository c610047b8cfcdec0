"""The paper's mel features, computed in bounded memory.

Recipe (../shared/reference/README.md): power mel spectrogram of mono 22050 Hz audio (n_fft 2048,
hop 256, 128 Slaney bands, Hann window, centred frames with zero padding — librosa's defaults), in dB
relative to the loudest value of the whole clip, floored at −80 dB, scaled to (dB + 80)/80, frequency
flipped (row 0 = highest band), then the time axis linearly resized to int(duration·90) frames with
half-pixel centres (what OpenCV's bilinear resize does). Matches the reference vectors to ~7e-6.

The STFT runs in blocks of frames, so an hour of audio needs ~160 MB for the mel, not GBs of complex
spectra.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .audio import SAMPLE_RATE
from baton_core.timebase import MEL_BINS, MEL_FPS

N_FFT = 2048
HOP = 256
N_MELS = MEL_BINS
TOP_DB = 80.0
_BLOCK_FRAMES = 8192


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_part = f >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular Slaney-normalised filters (n_mels, 1 + n_fft/2), as librosa.filters.mel builds them."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


def power_mel(samples: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(n_stft_frames, n_mels) power mel spectrogram, frames at sr/HOP Hz, centred, zero-padded."""
    y = np.asarray(samples, dtype=np.float32)
    n_frames = 1 + len(y) // HOP
    fb = torch.from_numpy(mel_filterbank(sr))
    window = torch.hann_window(N_FFT, periodic=True)
    out = np.empty((n_frames, fb.shape[0]), dtype=np.float32)
    half = N_FFT // 2
    with torch.inference_mode():
        for f0 in range(0, n_frames, _BLOCK_FRAMES):
            f1 = min(n_frames, f0 + _BLOCK_FRAMES)
            a, b = f0 * HOP - half, (f1 - 1) * HOP + half  # sample span of these frames, [a, b)
            seg = y[max(a, 0):min(b, len(y))]
            seg = np.pad(seg, (max(0, -a), max(0, b - len(y))))
            spec = torch.stft(torch.from_numpy(seg), N_FFT, HOP, window=window, center=False,
                              return_complex=True)
            power = spec.real.square_() + spec.imag.square_()
            out[f0:f1] = (fb @ power).T.numpy()
    return out


def scaled_db(power: np.ndarray) -> np.ndarray:
    """dB relative to the clip's loudest value, floored at −TOP_DB, scaled to [0, 1]; in place."""
    np.maximum(power, 1e-10, out=power)
    ref_db = 10.0 * np.log10(float(power.max()))
    np.log10(power, out=power)
    power *= 10.0
    power -= ref_db
    np.maximum(power, -TOP_DB, out=power)
    power += TOP_DB
    power /= TOP_DB
    return power


def mel_level_db(mel: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """Power-mean level in dB (relative to the clip's loudest bin) per mel frame, over the mel bands
    `rows`: the scaling of `scaled_db` undone. The loudness curve of features where no audio is at hand."""
    return 10 * np.log10(np.mean(10.0 ** ((mel[:, rows] - 1.0) * TOP_DB / 10), axis=1) + 1e-10)


def resize_time(x: np.ndarray, n_out: int) -> np.ndarray:
    """Linear resize of axis 0 to n_out rows with half-pixel centres (OpenCV INTER_LINEAR)."""
    n_in = x.shape[0]
    pos = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = (pos - i0).astype(np.float32)[:, None]
    out = x[i0]
    out *= 1.0 - w
    out += x[i1] * w
    return out


def mel_features(samples: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(int(duration·90), 128) float32 features in [0, 1], row 0 of each frame = highest band."""
    mel = scaled_db(power_mel(samples, sr))[:, ::-1]
    n_out = int(len(samples) / sr * MEL_FPS)
    return np.ascontiguousarray(resize_time(mel, n_out))
