"""A score read once into plain arrays: bars with their metres, every note of every part (ties
merged), dynamics marks, hairpins, metronome marks, fermatas and section marks.

music21 reads the score and is imported only here, when a score is read: it is the `score` extra
(`pip install baton[score]`), not needed to conduct audio.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baton_core.errors import BatonError

# Part-name keywords → (family, General MIDI programs to choose from). Checked in order, so
# 'contrabass' wins over 'bass' and 'bass' (a voice) comes after the instruments named bass.
INSTRUMENTS = (
    (("timpani", "timp", "pauken", "drum", "percussion"), "percussion", (47,)),
    (("violoncell", "cello", "vc"), "strings", (42,)),
    (("contrabass", "double bass", "kontrabass", "basso continuo", "violone"), "strings", (43,)),
    (("viola", "vla", "bratsche"), "strings", (41,)),
    (("violin", "violino", "vln", "vl"), "strings", (40, 40, 48)),
    (("string",), "strings", (48, 49)),
    (("flute", "flauto", "traverso", "piccolo", "recorder", "fl"), "woodwind", (73, 74)),
    (("oboe", "hautbois", "oboi", "english horn", "cor anglais", "ob"), "woodwind", (68, 69)),
    (("clarinet", "clarinetto", "cl"), "woodwind", (71,)),
    (("bassoon", "fagott", "fagotto", "bsn"), "woodwind", (70,)),
    (("horn", "corno", "cor"), "brass", (60,)),
    (("trumpet", "tromba", "clarino", "tpt", "trp"), "brass", (56,)),
    (("trombone", "posaune", "tbn"), "brass", (57,)),
    (("tuba",), "brass", (58,)),
    (("soprano", "alto", "tenor", "bass", "voice", "choir", "chorus", "canto", "coro", "s.", "a.", "t.", "b."),
     "voices", (52, 52, 53)),
    (("continuo", "organ", "organo", "orgel"), "keyboard", (19, 20, 6)),
    (("harpsichord", "cembalo"), "keyboard", (6,)),
    (("piano", "pianoforte", "klavier", "keyboard"), "keyboard", (0, 1)),
    (("harp", "arpa"), "keyboard", (46,)),
    (("guitar", "lute", "liuto"), "keyboard", (24, 25)),
)



def music21(*modules: str):
    """music21's submodules, or a BatonError saying how to install it."""
    try:
        return tuple(importlib.import_module(f"music21.{m}") for m in modules)
    except ImportError:
        raise BatonError("reading a score needs music21, the score extra: pip install 'baton[score]'") from None


def instrument_for(name: str | None, lowest: int = 60) -> tuple[str, tuple[int, ...]]:
    """(family, GM programs) for a part name; the corpus' embedded MIDI programs are often wrong,
    so the name decides. An unnamed part gets strings, cello or bass for a low one."""
    low = (name or "").lower()
    for keys, family, programs in INSTRUMENTS:
        for key in keys:
            if (len(key) <= 3 and key in low.replace(".", " ").split()) or (len(key) > 3 and key in low):
                return family, programs
    if lowest < 48:
        return "strings", (42, 43)
    return "strings", (48, 40, 41)


@dataclass
class Bar:
    number: int  # as printed in the score
    offset: float  # quarter notes from the start of the score
    length: float  # actual quarter notes (a pickup is shorter than the metre)
    numerator: int
    denominator: int
    grouping: tuple[int, ...] | None  # 5 and 7: groups of 2 and 3
    section: bool  # a section starts here: metre, key or tempo change, or after a double bar

    @property
    def nominal(self) -> float:
        return self.numerator * 4.0 / self.denominator


@dataclass
class PartNotes:
    name: str
    family: str
    programs: tuple[int, ...]
    onset: np.ndarray  # quarter notes
    dur: np.ndarray
    pitch: np.ndarray  # MIDI numbers
    staccato: np.ndarray  # bool
    accent: np.ndarray  # bool
    dynamics: list[tuple[float, str]]  # (offset, mark)
    hairpins: list[tuple[float, float, int]]  # (start, end, +1 crescendo / −1 diminuendo)


@dataclass
class ScoreInfo:
    title: str
    bars: list[Bar]
    parts: list[PartNotes]
    tempo_marks: list[tuple[float, float]]  # (offset, quarter bpm)
    fermatas: list[tuple[float, float]]  # (offset, quarter notes held), merged over parts

    def bar_range(self, first: int | None = None, count: int | None = None) -> tuple[int, int]:
        """Indices [a, b) into bars for bars numbered from `first` (default: the first), `count` long."""
        a = 0
        if first is not None:
            nums = [b.number for b in self.bars]
            if first not in nums:
                raise BatonError(f"{self.title}: no bar {first} (bars {nums[0]}–{nums[-1]})")
            a = nums.index(first)
        b = len(self.bars) if count is None else min(len(self.bars), a + int(count))
        if b <= a:
            raise BatonError(f"{self.title}: the bar range is empty")
        return a, b


def load_score(source):
    """A music21 Score of one piece from a corpus name ('bach/bwv248.64-6'), a file path, or a Score."""
    converter, corpus, stream = music21("converter", "corpus", "stream")
    if isinstance(source, stream.Score):
        return source
    path = Path(str(source))
    try:
        s = converter.parse(str(path)) if path.exists() else corpus.parse(str(source))
    except Exception as e:  # music21 raises many kinds; the user needs the name and the reason
        raise BatonError(f"cannot read the score '{source}': {e}") from e
    if isinstance(s, stream.Opus):  # a file of several pieces, such as an ABC tune book
        pieces = list(s.scores)
        if len(pieces) != 1:
            raise BatonError(f"the score '{source}' holds {len(pieces) or 'no'} pieces, and Baton conducts one: "
                             "save the piece this music plays in a file of its own")
        s = pieces[0]
    if isinstance(s, stream.Part):
        s = stream.Score([s])
    if not isinstance(s, stream.Score):
        raise BatonError(f"the score '{source}' reads as a {type(s).__name__}, not as a score")
    if s.parts and not any(p.getElementsByClass(stream.Measure) for p in s.parts):
        s.makeNotation(inPlace=True)  # music21 reads a one-line ABC tune without bars: barred by its metre
    return s


def read_score(source) -> ScoreInfo:
    """Everything the plan and the renderer need from a score, as plain data."""
    dynamics, expressions, meter, stream, tempo = music21("dynamics", "expressions", "meter", "stream", "tempo")
    score = load_score(source)
    parts = list(score.parts)
    if not parts:
        raise BatonError(f"the score '{source}' has no parts")
    title = str(source) if not isinstance(source, stream.Score) else (score.metadata.title if score.metadata else "score")
    bars: list[Bar] = []
    ts = None
    key = None
    after_double = True
    for m in parts[0].getElementsByClass(stream.Measure):
        section = after_double
        if m.timeSignature is not None:
            section |= ts is not None and m.timeSignature.ratioString != ts.ratioString
            ts = m.timeSignature
        if m.keySignature is not None:
            section |= key is not None and m.keySignature.sharps != key
            key = m.keySignature.sharps
        if ts is None:
            ts = meter.TimeSignature("4/4")
        grouping = None
        if ts.numerator in (5, 7):
            groups = [int(round(b.duration.quarterLength / (4.0 / ts.denominator))) for b in ts.beatSequence]
            grouping = tuple(groups) if len(groups) > 1 and sum(groups) == ts.numerator else None
        length = float(m.duration.quarterLength) or float(ts.barDuration.quarterLength)
        bars.append(Bar(int(m.number), float(m.offset), length, int(ts.numerator), int(ts.denominator),
                        grouping, bool(section)))
        rb = m.rightBarline
        after_double = rb is not None and rb.type in ("double", "light-light", "final", "light-heavy")
    if not bars:
        raise BatonError(f"the score '{source}' has no bars")
    bars = within_their_span(bars)
    marks: dict[float, float] = {}
    for p in parts:
        for mm in p.flatten().getElementsByClass(tempo.MetronomeMark):
            bpm = mm.getQuarterBPM()
            if bpm:
                marks.setdefault(round(float(mm.offset), 4), float(bpm))
    tempo_marks = sorted(marks.items())
    for off, _ in tempo_marks:  # a tempo change starts a section
        for b in bars:
            if abs(b.offset - off) < 1e-6 and off > 0:
                b.section = True
    out_parts, fermatas = [], []
    for p in parts:
        flat = p.flatten()
        onset, dur, pitch, stac, acc = [], [], [], [], []
        open_ties: dict[int, int] = {}
        for el in flat.notes:
            ql = float(el.quarterLength)
            if ql <= 0:  # grace notes
                continue
            off = float(el.offset)
            arts = {type(a).__name__ for a in el.articulations}
            is_stac = bool(arts & {"Staccato", "Staccatissimo", "Spiccato"})
            is_acc = bool(arts & {"Accent", "StrongAccent"})
            if any(isinstance(e, expressions.Fermata) for e in el.expressions):
                fermatas.append((off, ql))
            for n in (el.notes if el.isChord else [el]):
                if not hasattr(n, "pitch"):  # unpitched percussion: no pitch to align by or to sound
                    continue
                midi = int(n.pitch.midi)
                tie = n.tie.type if n.tie is not None else None
                if tie in ("stop", "continue") and midi in open_ties:
                    i = open_ties[midi]
                    dur[i] = off + ql - onset[i]
                    if tie == "stop":
                        del open_ties[midi]
                    continue
                onset.append(off)
                dur.append(ql)
                pitch.append(midi)
                stac.append(is_stac)
                acc.append(is_acc)
                if tie == "start":
                    open_ties[midi] = len(onset) - 1
        dyn = [(float(d.offset), str(d.value)) for d in flat.getElementsByClass(dynamics.Dynamic)]
        hp = []
        for sp in p.spannerBundle.getByClass(dynamics.DynamicWedge):
            first, last = sp.getFirst(), sp.getLast()
            try:
                a = float(first.getOffsetInHierarchy(p))
                b = float(last.getOffsetInHierarchy(p)) + float(last.quarterLength)
            except Exception:  # a spanner whose notes are not in this part
                continue
            hp.append((a, max(b, a + 0.5), 1 if isinstance(sp, dynamics.Crescendo) else -1))
        lowest = int(np.percentile(pitch, 10)) if pitch else 60
        family, programs = instrument_for(p.partName, lowest)
        out_parts.append(PartNotes(str(p.partName or f"part {len(out_parts) + 1}"), family, programs,
                                   np.array(onset, float), np.array(dur, float), np.array(pitch, int),
                                   np.array(stac, bool), np.array(acc, bool), sorted(dyn), sorted(hp)))
    # fermatas: one per score position, the longest note held there
    merged: dict[float, float] = {}
    for off, ql in fermatas:
        merged[round(off, 4)] = max(merged.get(round(off, 4), 0.0), ql)
    return ScoreInfo(title, bars, out_parts, tempo_marks, sorted(merged.items()))


def within_their_span(bars: list[Bar]) -> list[Bar]:
    """The bars with none running into the next: a measure music21 reads as empty (as some ABC
    files' repeat marks are read) has no length of its own and took its time signature's, so it
    ends where the next bar begins, and one that begins where the next does is dropped (a section
    starting there starts with the next). Beaten as read, such bars put two strokes at one time."""
    out = []
    for b, nxt in zip(bars, bars[1:]):
        if nxt.offset < b.offset + b.length - 1e-6:
            if nxt.offset <= b.offset + 1e-6:
                nxt.section |= b.section
                continue
            b.length = nxt.offset - b.offset
        out.append(b)
    return out + bars[-1:]


def pickup_shift(info: ScoreInfo, i: int, first: int) -> float:
    """How far bar i's beats lie back from a full bar's: a pickup's beats are counted back from its
    end, so that its last beat leads into the next downbeat. A short bar is a pickup where it opens
    the excerpt (bar `first`), or where it completes the short bar before it: a bar split at a
    repeat or a phrase's end, as chorales and ABC tunes write them (music21 reads the halves as two
    measures). Any other short bar ends early (a last bar, a bar before a metre change, a bar
    music21 misreads) and its beats count from its start."""
    bar = info.bars[i]
    if bar.length >= bar.nominal - 1e-6:
        return 0.0
    before = info.bars[i - 1] if i > first else None
    completes = (before is not None and before.length < before.nominal - 1e-6 and before.nominal == bar.nominal
                 and before.length + bar.length <= bar.nominal + 1e-6 and pickup_shift(info, i - 1, first) == 0.0)
    return bar.nominal - bar.length if i == first or completes else 0.0


def notated_beats(info: ScoreInfo, bars: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(score positions, begins-a-bar) of every notated beat of bars [a, b): the denominator's unit,
    dotted in 6/8, 9/8 and 12/8; a pickup's beats counted back from its end (`pickup_shift`)."""
    q, down = [], []
    for i in range(*bars):
        bar = info.bars[i]
        unit = 4.0 / bar.denominator * (3 if bar.numerator in (6, 9, 12) else 1)
        shift = pickup_shift(info, i, bars[0])
        k = np.arange(0, bar.nominal, unit) - shift
        k = k[(k >= -1e-6) & (k < bar.length - 1e-6)]
        q.extend(bar.offset + k)
        down.extend([shift == 0.0 and j == 0 for j in range(len(k))])
    return np.array(q), np.array(down, bool)
