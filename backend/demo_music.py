"""The bundled demo music: a short piece synthesised from code, so its every beat is known.

A 4/4 chorale-like progression for strings, bass, a melody and timpani at 96 bpm that grows from
pianissimo to fortissimo, drops to a sudden piano, and ends on a held chord. It is generated rather
than shipped as a recording so that the repository carries no audio licence questions, the demo and
the tests share one source of truth (its beat times), and any sample rate or length can be made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BPM = 96.0
BEATS_PER_BAR = 4
BARS = 14
LEAD_IN = 1.0  # seconds of silence before the first beat, so an ictus has room to be prepared

# A diatonic progression in D major (MIDI root, chord tones) and a melody note per beat.
_CHORDS = [(50, (62, 66, 69)), (55, (62, 67, 71)), (57, (61, 64, 69)), (50, (62, 66, 69)),
           (47, (62, 66, 71)), (43, (62, 67, 71)), (45, (61, 64, 69)), (50, (62, 66, 69))]
_MELODY = [74, 76, 78, 76, 74, 71, 74, 79, 76, 73, 69, 73, 74, 78, 81, 78]


@dataclass
class DemoPiece:
    samples: np.ndarray  # mono float32
    sr: int
    beats: np.ndarray  # seconds
    downbeats: np.ndarray  # seconds


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _tone(sr: int, dur: float, midi: float, partials: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(int(dur * sr)) / sr
    f = _hz(midi)
    wave = sum(np.sin(2 * np.pi * f * k * t) / k ** 1.3 for k in range(1, partials + 1) if f * k < sr / 2)
    env = np.minimum(1.0, t / attack) * np.exp(-t / decay)
    release = np.clip((dur - t) / 0.05, 0, 1)
    return (wave * env * release).astype(np.float32)


def demo_piece(sr: int = 22050, bars: int = BARS, seed: int = 7) -> DemoPiece:
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / BPM
    n_beats = bars * BEATS_PER_BAR
    total = LEAD_IN + n_beats * beat_s + 3.0
    out = np.zeros(int(total * sr), dtype=np.float32)
    beats = LEAD_IN + np.arange(n_beats) * beat_s
    # Dynamics per beat: crescendo to ff over most of the piece, subito piano for the last 2 bars
    # (a piece of 4 bars or fewer is one crescendo).
    subito = 2 * BEATS_PER_BAR if bars > 4 else 0
    dyn = np.clip(0.15 + 0.85 * np.arange(n_beats) / max(1, n_beats - subito), 0.15, 1.0)
    if subito:
        dyn[-subito:] = 0.3

    def add(start: float, sig: np.ndarray, gain: float) -> None:
        i = int(round(start * sr))
        j = min(len(out), i + len(sig))
        out[i:j] += gain * sig[: j - i]

    for bar in range(bars):
        root, chord = _CHORDS[bar % len(_CHORDS)]
        t0 = beats[bar * BEATS_PER_BAR]
        d = dyn[bar * BEATS_PER_BAR]
        last = bar == bars - 1
        length = BEATS_PER_BAR * beat_s + (2.5 if last else 0.05)
        for note in chord:  # sustained strings, soft attack
            add(t0, _tone(sr, length, note, 6, 0.08, 6.0), 0.05 * d)
        for b in range(BEATS_PER_BAR):
            tb = beats[bar * BEATS_PER_BAR + b]
            db = dyn[bar * BEATS_PER_BAR + b]
            add(tb, _tone(sr, beat_s * 0.9, root - 12 + (7 if b % 2 else 0), 8, 0.005, 0.4), 0.22 * db)
            add(tb, _tone(sr, beat_s * 0.95, _MELODY[(bar * BEATS_PER_BAR + b) % len(_MELODY)], 5, 0.01, 0.5), 0.12 * db)
            # timpani-like hit, strong on the downbeat
            hit = _tone(sr, 0.5, root - 24, 3, 0.002, 0.12) + 0.3 * rng.standard_normal(int(0.5 * sr)).astype(np.float32) * np.exp(-np.arange(int(0.5 * sr)) / sr / 0.02).astype(np.float32)
            add(tb, hit, (0.35 if b == 0 else 0.12) * db)
    out /= max(1e-6, float(np.abs(out).max())) / 0.9
    return DemoPiece(out, sr, beats, beats[::BEATS_PER_BAR])


def main(argv: list[str]) -> int:
    """`python -m backend.demo_music OUT.ogg`: write the demo piece (format from the suffix)."""
    import soundfile as sf

    if len(argv) != 1:
        print("usage: python -m backend.demo_music OUT.(ogg|flac|wav|mp3)")
        return 2
    piece = demo_piece()
    sf.write(argv[0], piece.samples, piece.sr)
    print(f"{argv[0]}: {len(piece.samples) / piece.sr:.1f} s, {len(piece.beats)} beats at {BPM:g} bpm")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
