"""Audio augmentation for the corpus: the same music as different rooms and recordings hear it.

Rendered scores are clean, dry and bright; recordings are not. Each item gets, from its own seed, a
spectral tilt (EQ), a room (exponentially decaying noise reverb) and a noise floor. None of them moves
an onset, so the plan's beats stay exact. Loudness is left alone: the mel features are normalised to
each clip's loudest moment, so a gain would change nothing.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve, lfilter


def augment_audio(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(augmented float32 audio of the same length, the parameters drawn)."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.abs(x).max()) or 1.0
    params: dict = {}
    # EQ: a one-pole split at ~1 kHz, lows and highs tilted against each other by up to ±6 dB.
    tilt_db = float(rng.uniform(-6, 6))
    a = np.exp(-2 * np.pi * 1000.0 / sr)
    low = lfilter([1 - a], [1, -a], x)
    x = low * 10 ** (-tilt_db / 40) + (x - low) * 10 ** (tilt_db / 40)
    params["tilt_db"] = round(tilt_db, 2)
    # Room: RT60 0.2–1.8 s, wet share 0–35%.
    if rng.random() < 0.8:
        rt60, wet = float(rng.uniform(0.2, 1.8)), float(rng.uniform(0.0, 0.35))
        t = np.arange(int(rt60 * sr)) / sr
        ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
        ir /= np.sqrt(np.sum(ir ** 2))
        x = (1 - wet) * x + wet * fftconvolve(x, ir)[: len(x)]
        params |= {"rt60_s": round(rt60, 2), "wet": round(wet, 3)}
    # Noise floor 25–60 dB below the music's RMS.
    if rng.random() < 0.7:
        snr = float(rng.uniform(25, 60))
        rms = float(np.sqrt(np.mean(x ** 2))) or 1.0
        x = x + rng.standard_normal(len(x)) * rms * 10 ** (-snr / 20)
        params["snr_db"] = round(snr, 1)
    x *= peak / max(float(np.abs(x).max()), 1e-9)
    return x.astype(np.float32), params
