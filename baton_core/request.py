"""One request to conduct: every option with its type, bounds, default and help, defined once.

`python -m backend generate` and `render` build their options from `OPTIONS`, the service's JSON
schema is made from it, the batch renderer hands a piece's request to its child as `to_dict()`,
and the add-on draws its engine list and seed bounds from `schema()` (shipped in its zip with this
package, refreshed from the running service's `/v1/options`). A new option is one `Option` here
and one use in the engine.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, fields

from .errors import BatonError
from .take import MAX_FPS, MAX_LEAD
from .timebase import MOTION_FPS

ENGINES = ("rules", "m2sgan")
DEFAULT_ENGINE = "m2sgan"
ENGINE_LABELS = {  # (label, description) as the add-on shows them
    "m2sgan": ("M2S-GAN", "Baton's trained generator (or the checkpoint set in Preferences > Checkpoint)"),
    "rules": ("Rules", "Rule-based conductor: patterns planned from the beats, metre and dynamics it hears"),
}
MAX_SEED = 2 ** 63 - 1
MAX_SECONDS = 60 * 60.0  # the longest music one request may conduct
MAX_TIMES = 50_000  # given beats in one request: over three hours at 240 per minute
SECTIONS = ("strings", "woodwind", "brass", "percussion", "voices", "keyboard")  # the families a conductor cues
SLICE_CONTEXT_S = 4.0  # music around a slice (start, duration) that the engine hears to conduct its edges


@dataclass(frozen=True)
class Option:
    """One request option. Bounds are inclusive except `above` (strictly greater than)."""

    name: str
    kind: type  # str, int, float, bool, or tuple (of times in seconds, ascending)
    default: object
    help: str
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[str, ...] | None = None
    generator_only: bool = False  # the m2sgan engine has it; refused for rules when not the default

    def check(self, value):
        """`value` converted to this option's kind; BatonError naming the option when it is not one."""
        if value is None:
            if self.default is None:
                return None
            raise BatonError(f"{self.name}: a value is required")
        if self.kind is tuple:
            return self._times(value)
        if self.kind is bool:
            if not isinstance(value, bool):
                raise BatonError(f"{self.name}: true or false, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str) or not value:
                raise BatonError(f"{self.name}: a non-empty text, got {value!r}")
            if self.choices and value not in self.choices:
                raise BatonError(f"{self.name}: unknown {value!r} (choose from {', '.join(self.choices)})")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BatonError(f"{self.name}: a number, got {value!r}")
        if self.kind is int:
            if value != int(value):
                raise BatonError(f"{self.name}: a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise BatonError(f"{self.name}: a finite number, got {value!r}")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum) \
                or (self.above is not None and value <= self.above):
            raise BatonError(f"{self.name}: {value:g} is outside {self.bounds()}")
        return value

    def _times(self, value) -> tuple[float, ...]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise BatonError(f"{self.name}: a list of times in seconds, got {value!r:.60}")
        times = []
        for t in value:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
                raise BatonError(f"{self.name}: times are finite, non-negative numbers of seconds, got {t!r:.40}")
            times.append(float(t))
        if len(times) > MAX_TIMES:
            raise BatonError(f"{self.name}: {len(times)} times; at most {MAX_TIMES}")
        if any(b <= a for a, b in zip(times, times[1:])):
            raise BatonError(f"{self.name}: times must rise (each later than the one before)")
        return tuple(times)

    def bounds(self) -> str:
        low = f"above {self.above:g}" if self.above is not None else (
            f"{self.minimum:g}" if self.minimum is not None else "")
        high = "2^63−1" if self.maximum == MAX_SEED else (f"{self.maximum:g}" if self.maximum is not None else "")
        return f"{low} … {high}".strip(" …") if low or high else "any value"

    def as_schema(self) -> dict:
        entry = {"name": self.name, "type": "times" if self.kind is tuple else self.kind.__name__,
                 "default": self.default, "help": self.help}
        for key in ("minimum", "maximum", "above", "choices"):
            if getattr(self, key) is not None:
                entry[key] = list(self.choices) if key == "choices" else getattr(self, key)
        if self.generator_only:
            entry["generator_only"] = True
        return entry


OPTIONS = (
    Option("audio_path", str, None, "audio file (WAV, FLAC, OGG, MP3, …)"),
    Option("start", float, None, "slice start, seconds into the file", minimum=0.0),
    Option("duration", float, None, "slice length in seconds", above=0.0, maximum=MAX_SECONDS),
    Option("engine", str, None, f"conducting engine (default: {DEFAULT_ENGINE})", choices=ENGINES),
    Option("checkpoint", str, None, "generator checkpoint for the m2sgan engine (default: the bundled one; "
                                    "or another of ours, or the paper's file)", generator_only=True),
    Option("seed", int, 0, "another seed, another performance of the same music", minimum=0, maximum=MAX_SEED),
    Option("smooth", bool, True, "the engine's 5 Hz smoothing of the generator's output (off: the raw output, "
                                 "10 Hz ripple and all)",
           generator_only=True),
    Option("fps", float, float(MOTION_FPS), f"frame rate of the take (the engines work at {MOTION_FPS})",
           minimum=1.0, maximum=float(MAX_FPS)),
    Option("score", str, None, "the music's score (MusicXML, MIDI, or any format music21 reads): aligned to the "
                               "recording, its beats, bars, dynamics, fermatas and entries are what both engines "
                               "conduct"),
    Option("beats", tuple, None, "given beats, seconds into the file: each one struck exactly, instead of the "
                                 "beats the engine hears (the generator needs its beat input for them)"),
    Option("downbeats", tuple, None, "given bar lines: the beats (of `beats`) that begin a bar; the beats up to the "
                                     "next one are that bar's metre (a bar of 1 is beaten in one)"),
    Option("lead_ms", float, 0.0, "milliseconds each gesture comes before the sound it conducts (conductors lead "
                                  "the orchestra); negative: after it", minimum=-1000.0 * MAX_LEAD,
           maximum=1000.0 * MAX_LEAD),
    Option("size", float, 1.0, "size of the baton hand's gestures (1: as conducted; 0.5 half, 2 twice)",
           minimum=0.25, maximum=2.0),
    Option("left_hand", float, 1.0, "how much the left hand does (0: it rests; 1: as conducted; 2 twice)",
           minimum=0.0, maximum=2.0),
    Option("hand", str, "right", "the hand that holds the baton (left: the take mirrored)", choices=("right", "left")),
    Option("arms_only", bool, False, "arms only: head and torso held still"),
    Option("seating", str, None, "where the sections sit, as the conductor faces them: family:degrees pairs, "
                                 "e.g. 'strings:-50,brass:40' (+ to the conductor's left; families: "
                                 f"{', '.join(SECTIONS)}); both engines cue the entrances they hear and look there"),
)
OPTION = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class ConductRequest:
    """What to conduct and how; constructed values are checked against `OPTIONS`."""

    audio_path: str
    start: float | None = None
    duration: float | None = None
    engine: str | None = None
    checkpoint: str | None = None
    seed: int = 0
    smooth: bool = True
    fps: float = float(MOTION_FPS)
    score: str | None = None
    beats: tuple[float, ...] | None = None
    downbeats: tuple[float, ...] | None = None
    lead_ms: float = 0.0
    size: float = 1.0
    left_hand: float = 1.0
    hand: str = "right"
    arms_only: bool = False
    seating: str | None = None

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("audio_path", "checkpoint", "score") and value is not None:
                value = str(value)  # a Path is welcome
            object.__setattr__(self, f.name, OPTION[f.name].check(value))
        if self.score is not None and self.beats is not None:
            raise BatonError("score: the score's aligned beats are the ones conducted; give a score or beats, not both")
        if self.downbeats is not None:
            if self.beats is None:
                raise BatonError("downbeats: bar lines need the beats they fall on (give beats too)")
            def near(d: float) -> float:  # the distance to the nearest given beat
                i = bisect.bisect_left(self.beats, d)
                return min(abs(self.beats[j] - d) for j in (i - 1, i) if 0 <= j < len(self.beats))

            off = [d for d in self.downbeats if near(d) > 1e-3]
            if off:
                raise BatonError(f"downbeats: {off[0]:.3f} s is not one of the given beats")
        if self.seating is not None:
            seating_of(self.seating)  # checked here: a BatonError naming what is wrong
        if self.engine_name == "rules":
            given = [o.name for o in OPTIONS if o.generator_only and getattr(self, o.name) != o.default]
            if given:
                raise BatonError(f"{', '.join(given)}: only for the m2sgan engine, not rules")

    @property
    def engine_name(self) -> str:
        return self.engine or DEFAULT_ENGINE

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> "ConductRequest":
        unknown = sorted(set(values) - set(OPTION))
        if unknown:
            raise BatonError(f"unknown request option(s): {', '.join(unknown)}")
        return cls(**values)


assert tuple(f.name for f in fields(ConductRequest)) == tuple(OPTION), "ConductRequest and OPTIONS must agree"


def seating_of(text: str) -> dict[str, float]:
    """'strings:-50, brass:40' → {"strings": -50.0, "brass": 40.0} (degrees, + to the conductor's left)."""
    out = {}
    for part in text.split(","):
        name, _, degrees = part.strip().partition(":")
        if name.strip() not in SECTIONS:
            raise BatonError(f"seating: unknown section {name.strip()!r} (sections: {', '.join(SECTIONS)})")
        try:
            a = float(degrees)
        except ValueError:
            raise BatonError(f"seating: {part.strip()!r} needs degrees, e.g. '{name.strip()}:-40'") from None
        if not (math.isfinite(a) and -180 <= a <= 180):
            raise BatonError(f"seating: {a:g}° for {name.strip()} is outside −180 … 180")
        out[name.strip()] = a
    return out


def schema() -> dict:
    """The options as plain JSON: what the service answers on /v1/options and the add-on reads."""
    return {"options": [o.as_schema() for o in OPTIONS], "engines": list(ENGINES), "default_engine": DEFAULT_ENGINE,
            "engine_labels": {k: list(v) for k, v in ENGINE_LABELS.items()}}


def add_arguments(parser, names: tuple[str, ...]) -> None:
    """Command-line options for the named request options (argparse, standard library): a number
    is checked against its bounds as it is parsed (a usage error naming the bound; NaN and infinity
    are left to ConductRequest), a choice lists its choices, an option that is on by default gets
    `--no-<name>`."""
    import argparse

    for name in names:
        opt = OPTION[name]
        flag = "--" + name.replace("_", "-")
        if opt.kind is bool:
            parser.add_argument(f"--no-{name.replace('_', '-')}" if opt.default else flag, dest=name,
                                action="store_false" if opt.default else "store_true",
                                help=("turn off: " if opt.default else "") + opt.help)
            continue

        if opt.kind is tuple:
            parser.add_argument(flag, default=None, type=lambda text, opt=opt: _parse_times(text, opt),
                                metavar="TIMES", help=opt.help + " (comma-separated, or a text file of them)")
            continue

        def parse(text: str, opt=opt):
            try:
                value = opt.kind(text) if opt.kind is not int else int(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{text!r} is not {'a whole number' if opt.kind is int else 'a number'}") from None
            if not math.isfinite(value):
                return value  # refused by ConductRequest with the other bad values, as one error line
            try:
                return opt.check(value)
            except BatonError as e:
                raise argparse.ArgumentTypeError(str(e)) from None

        kwargs = {"choices": opt.choices} if opt.choices else {"type": parse if opt.kind is not str else str}
        shown = "" if opt.default is None or opt.choices else f" (default {opt.default:g})" \
            if isinstance(opt.default, float) else f" (default {opt.default})"
        parser.add_argument(flag, default=opt.default, help=opt.help + shown, **kwargs)


def _parse_times(text: str, opt: Option) -> tuple[float, ...]:
    """Times from the command line: "0.5,1.0,1.5", or the path of a text file of numbers."""
    import argparse
    from pathlib import Path

    source = Path(text).read_text() if Path(text).is_file() else text
    try:
        values = [float(x) for x in source.replace(",", " ").split()]
        return opt.check(values)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{opt.name}: numbers of seconds, comma-separated or one file of them") from None
    except BatonError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
