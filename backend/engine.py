"""One request, end to end: audio file → features → an engine (engines.py) → take.

`generate_take` is what the CLI, the service's jobs and the batch renderer run; the options are
baton_core.request's, checked there.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from baton_core import __version__
from baton_core.errors import BatonError
from baton_core.request import MAX_SECONDS, SLICE_CONTEXT_S, ConductRequest, seating_of
from baton_core.take import Take
from baton_core.skeleton import project_front
from baton_core.timebase import MOTION_FPS
from .audio import load_audio
from .gestures import is_default, shape_gestures
from .engines import Music, engine_for, generator_engine
from .features import mel_features
from .generate import ProgressFn



def _rules_context(audio_path, audio, max_seconds: float) -> tuple[np.ndarray | None, int]:
    """(the slice with up to SLICE_CONTEXT_S of the file's music before and after it, or None when
    the slice is the whole file; how many motion frames of that context come before the slice).

    A conductor hears a trimmed strip's music in its place in the piece: planned from the slice
    alone, the beat tracker has no run-up (the first beat lands late or early) and the conductor
    would prepare and release at the cut edges. The context before the slice is a whole number of
    motion frames, so the slice's frames stay exactly where they were."""
    head_s = math.floor(min(SLICE_CONTEXT_S, audio.start) * MOTION_FPS) / MOTION_FPS
    wide = load_audio(audio_path, audio.start - head_s, head_s + audio.duration + SLICE_CONTEXT_S,
                      max_seconds=max_seconds + 2 * SLICE_CONTEXT_S)
    if head_s == 0 and len(wide.samples) <= len(audio.samples):
        return None, 0
    return wide.samples, round(head_s * MOTION_FPS)


def _tracked_beats(engine, mel: np.ndarray) -> np.ndarray | None:
    """Beats a learned tracker hears in the music, for the aligned score's beats to snap to: the
    engine's own generator's, else the bundled one's; None when there is none to load."""
    gen = getattr(engine, "gen", None)
    if gen is None or not gen.cfg.beat_input:
        try:
            gen = generator_engine(None).gen
        except BatonError:
            return None
    heard = gen.track_beats(mel)
    return None if heard is None else heard.times


def _score_plan(request: ConductRequest, audio, mel: np.ndarray, engine, max_seconds: float) -> tuple[object, dict]:
    """(the conducting plan of the request's score aligned to the whole recording, in the slice's
    time; what the take records of it). Aligned against the whole file, so a strip that plays a
    passage is conducted as that passage of the score."""
    from .score import plan_from_score, read_score
    from .score.align import align_score

    info = read_score(request.score)
    whole = audio if not (request.start or request.duration) else load_audio(request.audio_path, max_seconds=max_seconds)
    if whole is not audio:  # the slice's mel is `mel`; the whole file's is needed for its beats
        mel = mel_features(whole.samples)
    aligned = align_score(info, whole.samples, whole.sr, heard=_tracked_beats(engine, mel))
    plan = plan_from_score(info, aligned.performance).shifted(-audio.start)
    record = {"title": info.title, "file": str(request.score), "transpose": aligned.transpose,
              "bar_confidence": [round(float(c), 3) for c in aligned.bar_confidence],
              "bars": [info.bars[aligned.performance.first_bar].number, info.bars[aligned.performance.last_bar - 1].number]}
    return plan, record


def _given(request: ConductRequest, audio) -> dict:
    """The request's given beats and bar lines in the slice's time (those within it)."""
    if request.beats is None:
        return {}
    within = lambda times: np.array([t - audio.start for t in times if audio.start <= t < audio.start + audio.duration])
    given = {"beats": within(request.beats)}
    if request.downbeats is not None:
        given["downbeats"] = within(request.downbeats)
    return given


def generate_take(request: ConductRequest | str | Path, progress: ProgressFn | None = None,
                  noise: np.ndarray | None = None, *, max_seconds: float = MAX_SECONDS, **options) -> Take:
    """Conduct a request into a take at its frame rate (the engines work at 30). A path with
    keyword options is a request too: `generate_take(path, seed=3)`. `noise` (m2sgan only: one row
    per second of music) replaces the seed's noise. Music longer than `max_seconds` is refused as
    soon as decoding finds it (the service's limit, whatever the format's header says)."""
    if not isinstance(request, ConductRequest):
        request = ConductRequest(audio_path=request, **options)
    elif options:
        raise TypeError("give a ConductRequest or a path with options, not both")
    report = progress or (lambda f, s: None)
    t0 = time.perf_counter()
    report(0.0, "decoding audio")
    audio = load_audio(request.audio_path, request.start, request.duration, max_seconds=max_seconds)
    report(0.05, "mel features")
    music = Music(mel_features(audio.samples), **_given(request, audio),
                  seating=seating_of(request.seating) if request.seating else None)
    engine = engine_for(request.engine_name, request.checkpoint, request.smooth)
    score = None
    if request.score is not None:
        report(0.07, "aligning the score")
        music.plan, score = _score_plan(request, audio, music.mel, engine, max_seconds)
    if engine.name == "rules" and (request.start or request.duration):  # it hears the music around a slice
        heard, music.head = _rules_context(request.audio_path, audio, max_seconds)
        music.heard = None if heard is None else mel_features(heard)
    timings = {"features_s": time.perf_counter() - t0}
    t1 = time.perf_counter()
    motion = engine.conduct(music, request.seed, lambda f, s: report(0.1 + 0.9 * f, s), noise)
    timings["motion_s"] = time.perf_counter() - t1
    provenance = {"engine": engine.name, "seed": request.seed, "audio": audio.path, "audio_sha256": audio.sha256,
                  "slice": {"start": audio.start, "duration": audio.duration},
                  "software": {"baton": __version__}} | motion.provenance | ({"score": score} if score else {})
    provenance["timings"] = {k: round(v, 4) for k, v in timings.items()}
    provenance["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    kp2d, kp3d = motion.keypoints_2d, motion.keypoints_3d
    controls = (request.size, request.left_hand, request.hand, request.arms_only)
    if not is_default(*controls):
        kp3d = shape_gestures(kp3d, *controls, rest=motion.rest)
        kp2d = project_front(kp3d)
    report(1.0, "done")
    lead = request.lead_ms / 1000.0
    take = Take(fps=float(MOTION_FPS), start=audio.start - lead, keypoints_2d=kp2d.astype(np.float32),
                keypoints_3d=kp3d.astype(np.float32), beats=motion.beats.times, tempo=motion.beats.tempo,
                provenance=provenance, pulse=motion.pulse, downbeats=motion.downbeats, lead=lead,
                settings=take_settings(request)).validate()
    return take.resampled(request.fps)


def take_settings(request: ConductRequest) -> dict:
    """What a take records of its request: every option but the file, its slice, the checkpoint
    (those are its provenance) and the given times themselves (the take's pulse and bars)."""
    kept = {k: v for k, v in request.to_dict().items()
            if k not in ("audio_path", "start", "duration", "checkpoint", "beats", "downbeats", "score")}
    heard = "score" if request.score is not None else "heard"
    return kept | {"engine": request.engine_name, "beats": "given" if request.beats is not None else heard,
                   "bars": "given" if request.downbeats is not None else heard}
