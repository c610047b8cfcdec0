"""The bar reader: how beats group into bars, read over the beats by a recurrent network.

Why: the learned bar tracker (beat_net.BeatNet with one output per bar state, bars.py) classifies
each beat from the sound around it, and it learned the metres largely by the sound of the works it
trained on: it counts the bars of its own training works far better than those of any other, and it
heard the 4/4 demo, whose timpani strike every fourth beat, in three, sure of it (the model card,
backend/weights/README.md, has the figures). What says how beats group is what recurs
from beat to beat — accents, the harmony and texture over each beat, which earlier beat each one
resembles — and that holds at any tempo and in any orchestration. The reader measures those per beat
(`beat_features`) and a bidirectional GRU over the whole beat sequence gives each beat's state
log-probabilities. The tracker still votes: its log-probabilities, weighted TRACKER_WEIGHT and
floored at TRACKER_FLOOR so that no beat it is sure of alone can outvote what recurs, are added
before the state space decodes the bars (bars.hear_bars). A reader given the tracker's states as an
input learned to copy them (they are sharper on the works both trained on than on any other) and
heard the demo in three again. It is trained by training/train_bar_reader.py and stored with the
generator beside the tracker.

A second reader may read each beat's spectrum as well (`spectrum=True`: `beat_spectra`, the mel at
full resolution over quarter-beat spans, through a small convolutional `SpectrumEncoder`), and the
engine averages the two readers' log-probabilities (`read_bars`). Alone it reads the bars no better
than the measures do, but it errs on other beats, so the two together read them better than either,
and better than two readers of one kind (the model card has the figures).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .bars import bar_states
from baton_core.timebase import MEL_FPS

SIM_LAGS = 8  # beats back and ahead whose likeness to each beat is measured
BANDS = 16  # the mel over each beat, averaged into this many bands
ONSET_BANDS = ((0, 24), (24, 64), (64, 128))  # low, middle and high mel bands' onsets at each beat
BEAT_FEATURES = BANDS + len(ONSET_BANDS) + 1 + 2 * SIM_LAGS + 1
SPECTRUM_SPANS = 5  # quarter-beat spans, from a quarter of a beat before each beat to its end
SPECTRUM_EMBED = 32  # what the spectrum encoder gives the reader per beat
TRACKER_WEIGHT = 0.5  # the tracker's vote (chosen on the val split)
TRACKER_FLOOR = 0.02  # the least probability a beat's tracker gives any state


def beat_features(mel: np.ndarray, beats: np.ndarray, fps: float = MEL_FPS) -> np.ndarray:
    """(n_beats, BEAT_FEATURES) float32 for a (T, bins) mel and beat times (s), each measure
    normalised over the piece so that neither loudness nor the recording's colour carries over:

    * the mel over each beat's span (to the next beat), less its mean over the beats, in BANDS bands;
    * the onset (rectified mel flux) at the beat, ±3 frames, in the ONSET_BANDS, and the level over
      the beat's first 0.1 s (accents);
    * the cosine likeness of each beat's span to the spans 1…SIM_LAGS beats before and after it
      (what recurs, and at which lag);
    * log2 of the beat's period / 0.5 s (fast bars are beaten in one, slow ones subdivided)."""
    mel = np.asarray(mel, np.float32)
    b = np.asarray(beats, np.float64)
    n, t = len(b), len(mel)
    out = np.zeros((n, BEAT_FEATURES), np.float32)
    if n < 2 or t < 2:
        return out
    f = np.clip(np.round(b * fps).astype(int), 0, t - 1)
    ends = np.maximum(np.r_[f[1:], min(t, 2 * f[-1] - f[-2])], f + 1)
    total = np.r_[np.zeros((1, mel.shape[1])), np.cumsum(mel, 0, dtype=np.float64)]
    span = (total[ends] - total[f]) / (ends - f)[:, None]
    span -= span.mean(0, keepdims=True)
    unit = span / (np.linalg.norm(span, axis=1, keepdims=True) + 1e-6)
    bands = span.reshape(n, BANDS, -1).mean(2)
    flux = np.maximum(np.diff(mel, axis=0, prepend=mel[:1]), 0)
    flux = np.stack([flux[:, lo:hi].mean(1) for lo, hi in ONSET_BANDS], 1)
    onset = np.stack([flux[max(0, c - 3): c + 4].max(0) for c in f])
    head = np.array([mel[c: max(c + 1, min(e, c + round(0.1 * fps)))].mean() for c, e in zip(f, ends)])
    like = np.zeros((n, 2 * SIM_LAGS))
    for k in range(1, min(SIM_LAGS, n - 1) + 1):
        s = (unit[k:] * unit[:-k]).sum(1)
        like[k:, k - 1] = s
        like[:-k, SIM_LAGS + k - 1] = s
    period = np.diff(b, append=b[-1] + (b[-1] - b[-2]))
    period = np.where(period > 0, period, np.median(period))
    out[:] = np.concatenate([bands / (bands.std() + 1e-6), onset / (onset.std(0, keepdims=True) + 1e-6),
                             ((head - head.mean()) / (head.std() + 1e-6))[:, None], like,
                             np.log2(np.clip(period, 0.1, 4.0) / 0.5)[:, None]], 1)
    return out


def beat_spectra(mel: np.ndarray, beats: np.ndarray, fps: float = MEL_FPS) -> np.ndarray:
    """(n_beats, SPECTRUM_SPANS · bins) float32: each beat's mel in every mel band, averaged over
    SPECTRUM_SPANS quarter-beat spans from a quarter of its period before it to its end (the note
    struck at the beat against the one before, and how the beat is filled), the piece's mean
    spectrum taken off and divided by its spread, so that neither the recording's colour nor its
    level carries over."""
    mel = np.asarray(mel, np.float32)
    b = np.asarray(beats, np.float64)
    n, t = len(b), len(mel)
    out = np.zeros((n, SPECTRUM_SPANS, mel.shape[1]), np.float32)
    if n < 2 or t < 2:
        return out.reshape(n, -1)
    period = np.diff(b, append=b[-1] + (b[-1] - b[-2]))
    period = np.where(period > 0, period, np.median(period))
    edges = b[:, None] + period[:, None] * (np.arange(SPECTRUM_SPANS + 1) - 1)[None, :] / 4
    e = np.clip(np.round(edges * fps).astype(int), 0, t - 1)
    e[:, 1:] = np.maximum(e[:, 1:], e[:, :-1] + 1)
    lo, hi = e[:, :-1], np.minimum(np.maximum(e[:, 1:], e[:, :-1] + 1), t)
    lo = np.minimum(lo, hi - 1)
    z = (mel - mel.mean(0, keepdims=True)) / (mel.std() + 1e-6)
    total = np.r_[np.zeros((1, z.shape[1])), np.cumsum(z, 0, dtype=np.float64)]
    out[:] = (total[hi] - total[lo]) / (hi - lo)[..., None]
    return out.reshape(n, -1)


def reader_features(mel: np.ndarray, beats: np.ndarray, spectrum: bool = False) -> np.ndarray:
    """What a reader reads per beat: beat_features, and for a spectrum reader beat_spectra after them."""
    x = beat_features(mel, beats)
    return np.concatenate([x, beat_spectra(mel, beats)], 1) if spectrum else x


class SpectrumEncoder(nn.Module):
    """(M, SPECTRUM_SPANS · bins) → (M, SPECTRUM_EMBED): convolutions along the mel bands with the
    quarter-beat spans as channels, pooled to eight regions of the spectrum."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(SPECTRUM_SPANS, 24, 7, padding=3), nn.GELU(), nn.MaxPool1d(2),
                                 nn.Conv1d(24, 24, 5, padding=2), nn.GELU(), nn.MaxPool1d(2),
                                 nn.Conv1d(24, 24, 5, padding=2), nn.GELU(), nn.AdaptiveAvgPool1d(8))
        self.out = nn.Linear(24 * 8, SPECTRUM_EMBED)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x.reshape(len(x), SPECTRUM_SPANS, -1)).flatten(1))


class BarReader(nn.Module):
    """(N, n_beats, features) → (N, n_beats, states) logits of each beat's place in its bar: a
    per-beat layer, a two-layer bidirectional GRU over the beats, a per-beat head. Its features are
    `reader_features(…, spectrum)`: with `spectrum`, each beat's spectrum goes through a
    SpectrumEncoder into the per-beat layer beside the measures."""

    def __init__(self, hidden: int = 64, dropout: float = 0.2, spectrum: bool = False):
        super().__init__()
        states = len(bar_states())
        self.spectrum = SpectrumEncoder() if spectrum else None
        self.inp = nn.Sequential(nn.Linear(BEAT_FEATURES + (SPECTRUM_EMBED if spectrum else 0), hidden), nn.GELU())
        self.gru = nn.GRU(hidden, hidden, 2, batch_first=True, bidirectional=True, dropout=dropout)
        self.head = nn.Linear(2 * hidden, states)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spectrum is not None:
            n, length = x.shape[:2]
            seen = self.spectrum(x[..., BEAT_FEATURES:].reshape(n * length, -1)).reshape(n, length, -1)
            x = torch.cat([x[..., :BEAT_FEATURES], self.drop(seen)], -1)
        h, _ = self.gru(self.drop(self.inp(x)))
        return self.head(self.drop(h))

    def read(self, features: np.ndarray) -> np.ndarray:
        """(n_beats, states) log-probabilities of each beat's state from a piece's reader_features."""
        if len(features) == 0:
            return np.zeros((0, len(bar_states())))
        with torch.inference_mode():
            y = self(torch.from_numpy(np.asarray(features, np.float32))[None])[0]
            return torch.log_softmax(y, -1).numpy().astype(np.float64)


def read_bars(readers: list[BarReader], mel: np.ndarray, beats: np.ndarray, tracker_logp: np.ndarray) -> np.ndarray:
    """(n_beats, states) scores of each beat's state for the bar decoder: the readers' readings of
    the whole piece (its mel (T, bins) and beats (s)), their log-probabilities averaged, with the
    tracker's vote there (bars.beat_state_logp). The measures are taken once for all the readers."""
    x = reader_features(mel, beats, spectrum=any(r.spectrum is not None for r in readers))
    readings = [r.read(x if r.spectrum is not None else x[:, :BEAT_FEATURES]) for r in readers]
    return with_tracker(np.mean(readings, axis=0), tracker_logp)


def with_tracker(reader_logp: np.ndarray, tracker_logp: np.ndarray) -> np.ndarray:
    """The reader's log-probabilities with the tracker's floored, weighted vote added, per beat
    normalised again."""
    s = np.asarray(reader_logp, np.float64) + TRACKER_WEIGHT * np.maximum(tracker_logp, np.log(TRACKER_FLOOR))
    top = s.max(axis=1, keepdims=True)
    return s - top - np.log(np.exp(s - top).sum(axis=1, keepdims=True))
