"""Scores: reading one (read.py, music21 as the `score` extra), how it is played (perform.py) and
the conducting plan it gives (plan.py). Rendering scores to audio for the training corpus is
training's (training/scores.py)."""

from .perform import DYNAMIC_LEVELS, GRID, Performance, dynamic_curves, make_performance
from .plan import plan_from_score
from .read import Bar, PartNotes, ScoreInfo, instrument_for, load_score, notated_beats, read_score

__all__ = ["DYNAMIC_LEVELS", "GRID", "Bar", "PartNotes", "Performance", "ScoreInfo", "dynamic_curves", "instrument_for",
           "load_score", "make_performance", "notated_beats", "plan_from_score", "read_score"]
