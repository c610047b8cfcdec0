"""Audio augmentation for the corpus: the same music as different rooms and recordings hear it.

Rendered scores are clean, dry and bright; recordings are not. `augment_audio` (every corpus item)
gives each item, from its own seed, a spectral tilt (EQ), a room (exponentially decaying noise
reverb) and a noise floor. `record_audio` (the recording-like source, training/score_source.py) is a
whole recording chain instead: a hall with early reflections and a darker tail, microphones (low
cut, presence, air roll-off), and mastering as releases are mastered — bus compression, a limiter
pushed into, loudness normalisation — which takes 5–17 dB off a render's pp-to-ff span, as
mastering does. None of them moves an onset, so the plan's beats stay exact. Plain gain
changes nothing downstream (the mel features are normalised to each clip's loudest moment), but
compression does: it is what makes loudness "as a conductor hears it" differ between the two.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, fftconvolve, lfilter, sosfilt


def augment_audio(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(augmented float32 audio of the same length, the parameters drawn)."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.abs(x).max()) or 1.0
    params: dict = {}
    # EQ: a one-pole split at ~1 kHz, lows and highs tilted against each other by up to ±6 dB.
    tilt_db = float(rng.uniform(-6, 6))
    x = tilt(x, sr, tilt_db)
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
        x = add_noise(x, snr, rng)
        params["snr_db"] = round(snr, 1)
    x *= peak / max(float(np.abs(x).max()), 1e-9)
    return x.astype(np.float32), params


def record_audio(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(the music as a mastered recording of it, float32 of the same length, the parameters drawn)."""
    x = np.asarray(x, dtype=np.float64)
    p: dict = {}
    # The hall: pre-delay, 4–12 early reflections within 80 ms, a diffuse tail darker than the sound.
    rt60, wet = float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.1, 0.5))
    n = int((rt60 + 0.1) * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    damp = float(rng.uniform(1500, 8000))
    tail = sosfilt(butter(1, damp, "low", fs=sr, output="sos"), tail)
    tail[: int(0.02 * sr)] *= np.linspace(0, 1, int(0.02 * sr))
    ir = tail / np.sqrt(np.sum(tail ** 2))
    early = np.zeros(n)
    for d in rng.uniform(0.005, 0.08, int(rng.integers(4, 13))):
        early[int(d * sr)] += rng.uniform(0.2, 0.7) * (1 - d / 0.1)
    pre = int(rng.uniform(0.0, 0.03) * sr)
    ir = np.concatenate([np.zeros(pre), 0.6 * ir + early])[:n]
    x = (1 - wet) * x + wet * fftconvolve(x, ir)[: len(x)] / max(float(np.sqrt(np.sum(ir ** 2))), 1e-9)
    p |= {"rt60_s": round(rt60, 2), "wet": round(wet, 3), "damping_hz": round(damp), "predelay_ms": round(1000 * pre / sr)}
    # Microphones: a low cut, a tilt, an air roll-off.
    low_cut, air = float(rng.uniform(25, 120)), float(rng.uniform(6000, min(16000, 0.45 * sr)))
    x = sosfilt(butter(2, low_cut, "high", fs=sr, output="sos"), x)
    x = sosfilt(butter(1, air, "low", fs=sr, output="sos"), x)
    tilt_db = float(rng.uniform(-5, 5))
    x = tilt(x, sr, tilt_db)
    p |= {"low_cut_hz": round(low_cut), "air_hz": round(air), "tilt_db": round(tilt_db, 2)}
    # Mastering: a bus compressor on the RMS envelope, make-up gain into a look-ahead limiter.
    x /= max(float(np.abs(x).max()), 1e-9)
    threshold, ratio = float(rng.uniform(-24, -8)), float(rng.uniform(1.5, 5.0))
    x *= compressor_gain(x, sr, threshold, ratio, float(rng.uniform(0.05, 0.5)))
    drive = float(rng.uniform(2, 10))
    x = limit(x * 10 ** (drive / 20) / max(float(np.abs(x).max()), 1e-9), sr, ceiling=0.89)
    p |= {"threshold_db": round(threshold, 1), "ratio": round(ratio, 2), "limiter_drive_db": round(drive, 1)}
    # A noise floor 45–80 dB below the music, then loudness normalisation to −23…−12 dB RMS.
    snr = float(rng.uniform(45, 80))
    x = add_noise(x, snr, rng)
    target = float(rng.uniform(-23, -12))
    x *= 10 ** (target / 20) / max(float(np.sqrt(np.mean(x ** 2))), 1e-9)
    x = limit(x, sr, ceiling=0.98)
    p |= {"snr_db": round(snr, 1), "loudness_db": round(target, 1)}
    return x.astype(np.float32), p


def tilt(x: np.ndarray, sr: int, db: float) -> np.ndarray:
    """Lows and highs (split by a one-pole filter at ~1 kHz) tilted against each other by `db`."""
    a = np.exp(-2 * np.pi * 1000.0 / sr)
    low = lfilter([1 - a], [1, -a], x)
    return low * 10 ** (-db / 40) + (x - low) * 10 ** (db / 40)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x ** 2))) or 1.0
    return x + rng.standard_normal(len(x)) * rms * 10 ** (-snr_db / 20)


def compressor_gain(x: np.ndarray, sr: int, threshold_db: float, ratio: float, window_s: float) -> np.ndarray:
    """Per-sample gain of a feed-forward compressor: above `threshold_db` (relative to the loudest
    5% of the RMS over about `window_s`, so it bites as hard on a quiet render as on a loud one) the
    level rises 1/ratio as fast."""
    a = np.exp(-1.0 / (window_s * sr))
    env = 20 * np.log10(np.sqrt(np.maximum(lfilter([1 - a], [1, -a], x ** 2), 1e-12)))
    over = np.maximum(env - np.percentile(env, 95) - threshold_db, 0.0)
    return 10 ** (-over * (1 - 1 / ratio) / 20)


def limit(x: np.ndarray, sr: int, ceiling: float) -> np.ndarray:
    """A look-ahead peak limiter: no sample above `ceiling`; the gain falls 5 ms before a peak and
    recovers over about 50 ms."""
    look = max(1, int(0.005 * sr))
    need = np.minimum(1.0, ceiling / np.maximum(maximum_filter1d(np.abs(x), 2 * look + 1), 1e-12))
    a = np.exp(-1.0 / (0.05 * sr))
    smooth = 1.0 - lfilter([1 - a], [1, -a], 1.0 - need)  # the gain reduction, released smoothly
    gain = np.minimum(need, smooth)
    return np.clip(x * gain, -ceiling, ceiling)
