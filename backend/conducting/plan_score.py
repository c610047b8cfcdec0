"""The conducting plan from a score: exact beats, metres, tempo, dynamics, entries and fermatas.

A music21 score is read once into plain arrays (`read_score`): bars with their metres, every note
of every part (ties merged), dynamics marks, hairpins, metronome marks, fermatas and section marks.
A `Performance` says how it is played — the time map from score position (quarter notes) to
seconds, with its tempo, rubato, fermata holds and breaths, and each part's dynamic level over
time. `default_performance` plays the score as written (its metronome marks, its dynamics);
training/scores.py draws randomised ones and renders them to audio. `plan_from_score` turns score +
performance into the per-stroke plan, choosing how each bar is beaten at its tempo (patterns.py).

music21 is imported only when a score is read: it is a training extra, not needed to conduct audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from baton_core.errors import BatonError
from . import patterns
from .plan import FAMILIES, Plan

GRID = 48  # time-map grid points per quarter note
DYNAMIC_LEVELS = {"pppp": 0.04, "ppp": 0.1, "pp": 0.2, "p": 0.33, "mp": 0.45, "mf": 0.56, "f": 0.7,
                  "ff": 0.85, "fff": 0.95, "ffff": 1.0}
ACCENT_MARKS = {"sf", "sfz", "sffz", "fz", "rf", "rfz", "sfp", "fp", "sfpp"}
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
    """A music21 Score from a corpus name ('bach/bwv248.64-6'), a file path, or a Score."""
    from music21 import converter, corpus, stream
    if isinstance(source, stream.Score):
        return source
    path = Path(str(source))
    try:
        s = converter.parse(str(path)) if path.exists() else corpus.parse(str(source))
    except Exception as e:  # music21 raises many kinds; the user needs the name and the reason
        raise BatonError(f"cannot read the score {source!r}: {e}") from e
    if not isinstance(s, stream.Score):
        s = stream.Score([s]) if isinstance(s, stream.Part) else s
    return s


def read_score(source) -> ScoreInfo:
    """Everything the plan and the renderer need from a score, as plain data."""
    from music21 import dynamics, expressions, meter, stream, tempo
    score = load_score(source)
    parts = list(score.parts)
    if not parts:
        raise BatonError(f"the score {source!r} has no parts")
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
        raise BatonError(f"the score {source!r} has no bars")
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


@dataclass
class Performance:
    """How a score is played. `q`/`sec`: the time map (quarter notes → seconds, piecewise linear,
    including fermata holds; a breath after a fermata is a jump, see onset/offset). `spq`: seconds per
    quarter of the tempo without holds (what decides how bars are beaten). `levels`: each part's
    dynamic level on `q`; `hairpin`: −1/0/+1 on `q`."""
    q: np.ndarray
    sec: np.ndarray
    spq: np.ndarray
    levels: np.ndarray  # (parts, len(q))
    hairpin: np.ndarray
    first_bar: int  # indices into ScoreInfo.bars, [first_bar, last_bar)
    last_bar: int
    breaths: list[tuple[float, float]] = field(default_factory=list)  # (offset, seconds)

    def onset(self, q) -> np.ndarray:
        """Seconds at which something starting at score position q sounds (after any breath there)."""
        return np.interp(q, self.q, self.sec) + self._breath(q, True)

    def offset(self, q) -> np.ndarray:
        """Seconds at which something ending at score position q stops (before any breath there)."""
        return np.interp(q, self.q, self.sec) + self._breath(q, False)

    def _breath(self, q, inclusive: bool) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        add = np.zeros_like(q)
        for off, s in self.breaths:
            add += s * ((q >= off - 1e-6) if inclusive else (q > off + 1e-6))
        return add

    def level(self, part: int, q) -> np.ndarray:
        return np.interp(q, self.q, self.levels[part])


def dynamic_curves(info: ScoreInfo, q: np.ndarray, default: float = 0.56) -> tuple[np.ndarray, np.ndarray]:
    """((parts, len(q)) levels, (len(q),) hairpin sign) from the score's marks. A hairpin ramps to
    the next mark after it (or two steps, ±0.2, when none follows within a bar)."""
    levels = np.zeros((len(info.parts), len(q)))
    hair = np.zeros(len(q))
    any_marks = [d for p in info.parts for d in p.dynamics if d[1] in DYNAMIC_LEVELS]
    for i, p in enumerate(info.parts):
        marks = [(o, DYNAMIC_LEVELS[v]) for o, v in p.dynamics if v in DYNAMIC_LEVELS] or \
            [(o, DYNAMIC_LEVELS[v]) for o, v in sorted(any_marks)]
        lv = np.full(len(q), marks[0][1] if marks else default)
        for o, v in marks:
            lv[q >= o] = v
        for a, b, sign in p.hairpins:
            after = [v for o, v in marks if b - 0.01 <= o <= b + 4]
            start = float(np.interp(a, q, lv))
            target = after[0] if after else float(np.clip(start + 0.2 * sign, 0.05, 1.0))
            m = (q >= a) & (q < b)
            lv[m] = start + (target - start) * (q[m] - a) / max(b - a, 1e-6)
            if not after:  # the level reached holds until the next mark
                nxt = [o for o, _ in marks if o > b]
                lv[(q >= b) & (q < (nxt[0] if nxt else np.inf))] = target
            hair[m] = sign
        levels[i] = lv
    return levels, hair


def make_performance(info: ScoreInfo, bars: tuple[int, int], spq: np.ndarray | None = None,
                     q: np.ndarray | None = None, tempo_bpm: float | None = None,
                     fermata_stretch: float | np.ndarray = 2.0, breath_s: float | np.ndarray = 0.3,
                     lead_in: float = 1.0, levels: np.ndarray | None = None,
                     hairpin: np.ndarray | None = None) -> Performance:
    """A performance of bars [a, b): tempo from `spq` (seconds per quarter on `q`) or from the score's
    metronome marks scaled so the first is `tempo_bpm` (default: as marked, else 100 quarter bpm);
    fermatas held `fermata_stretch` times as long plus a breath; the first bar starts `lead_in`
    seconds in, so a preparation has room."""
    a, b = bars
    q0 = info.bars[a].offset
    q1 = info.bars[b - 1].offset + info.bars[b - 1].length
    if q is None:
        q = np.arange(q0, q1 + 1e-9, 1.0 / GRID)
        if q[-1] < q1 - 1e-9:
            q = np.append(q, q1)
    if spq is None:
        marks = info.tempo_marks
        first = next((bpm for o, bpm in reversed(marks) if o <= q0 + 1e-6), marks[0][1] if marks else 100.0)
        scale = (tempo_bpm / first) if tempo_bpm else 1.0
        bpm = np.full(len(q), first * scale)
        for o, v in marks:
            bpm[q >= o - 1e-6] = v * scale
        spq = 60.0 / bpm
    stretch = np.ones(len(q))
    breaths = []
    ferm = [(o, d) for o, d in info.fermatas if q0 - 1e-6 <= o < q1]
    fs = np.broadcast_to(np.asarray(fermata_stretch, float), (max(len(ferm), 1),))
    bs = np.broadcast_to(np.asarray(breath_s, float), (max(len(ferm), 1),))
    for i, (o, d) in enumerate(ferm):
        stretch[(q >= o - 1e-6) & (q < o + d - 1e-6)] = fs[i]
        if o + d < q1 - 1e-6:
            breaths.append((o + d, float(bs[i])))
    cell = np.diff(q) * spq[:-1] * stretch[:-1]  # seconds of each grid cell
    sec = lead_in + np.concatenate([[0.0], np.cumsum(cell)])
    if levels is None or hairpin is None:
        lv, hp = dynamic_curves(info, q)
        levels = lv if levels is None else levels
        hairpin = hp if hairpin is None else hairpin
    return Performance(q, sec, np.asarray(spq, float), np.asarray(levels, float), np.asarray(hairpin, float),
                       a, b, breaths)


def plan_from_score(info: ScoreInfo, perf: Performance) -> Plan:
    """The conducting plan of the performed bars: every stroke at its exact time."""
    rows = []  # (q, bar index, beat, sub, pattern, metre, period_s)
    for bi in range(perf.first_bar, perf.last_bar):
        b = info.bars[bi]
        qa, qb = b.offset, b.offset + b.length
        spq_bar = float(np.mean(np.interp(np.linspace(qa, qb, 8), perf.q, perf.spq)))
        scheme = patterns.bar_scheme(b.numerator, b.denominator, spq_bar, b.grouping)
        shift = b.nominal - b.length if bi == perf.first_bar and b.length < b.nominal - 1e-6 else 0.0
        offs = [o - shift for o in scheme.offsets]
        ends = offs[1:] + [b.nominal - shift]
        for o, e, beat, sub in zip(offs, ends, scheme.beat, scheme.sub):
            if o < -1e-6 or o >= b.length - 1e-6:
                continue  # a pickup's missing beats, or beats beyond a short last bar
            rows.append((qa + o, bi, beat, sub, scheme.pattern, f"{b.numerator}/{b.denominator}",
                         (e - o) * spq_bar))
    if not rows:
        raise BatonError(f"{info.title}: no beats in the chosen bars")
    q = np.array([r[0] for r in rows])
    n = len(q)
    q_end = np.append(q[1:], info.bars[perf.last_bar - 1].offset + info.bars[perf.last_bar - 1].length)
    times = perf.onset(q)
    # drop strokes under a fermata: the held note swallows the beats it covers
    keep = np.ones(n, bool)
    hold = np.zeros(n)
    fermata = np.zeros(n, bool)
    for o, d in info.fermatas:
        if not (q[0] - 1e-6 <= o < q_end[-1]):
            continue
        k = int(np.searchsorted(q, o + 1e-6) - 1)
        keep[(q > o + 1e-6) & (q < o + d - 1e-6)] = False
        fermata[k] = True
        hold[k] = float(perf.offset(o + d) - times[k])
    # what sounds in each stroke's span
    n_parts = len(info.parts)
    sounding_parts = np.zeros((n, n_parts), bool)
    onset_parts = np.zeros((n, n_parts), bool)
    stac = np.zeros(n)
    acc = np.zeros(n)
    fam_idx = np.array([FAMILIES.index(p.family) for p in info.parts])
    note_end = 0.0
    sound_end = np.zeros(n)  # score position where the sound in each stroke's span stops
    for j, p in enumerate(info.parts):
        if len(p.onset) == 0:
            continue
        inside = (p.onset >= q[0] - 1e-6) & (p.onset < q_end[-1] - 1e-6)
        on, du = p.onset[inside], p.dur[inside]
        du = np.minimum(du, q_end[-1] - on)  # a note tied beyond the excerpt ends with it
        if len(on):
            note_end = max(note_end, float((on + du).max()))
        for k in range(n):
            over = (on < q_end[k] - 1e-6) & (on + du > q[k] + 1e-6)
            sounding_parts[k, j] = over.any()
            if over.any():
                sound_end[k] = max(sound_end[k], min(float((on + du)[over].max()), q_end[k]))
            starts = (on >= q[k] - 1e-6) & (on < q_end[k] - 1e-6)
            onset_parts[k, j] = starts.any()
            if starts.any():
                stac[k] = max(stac[k], float(p.staccato[inside][starts].mean()) * starts.sum() / max(
                    1, sum(int(((pp.onset >= q[k] - 1e-6) & (pp.onset < q_end[k] - 1e-6)).sum()) for pp in info.parts)))
                at_stroke = starts & (np.abs(on - q[k]) < 1e-3)
                acc[k] = max(acc[k], float(p.accent[inside][at_stroke].any()))
    sounding = sounding_parts.any(1)
    tutti = sounding_parts.mean(1)
    # articulation also from how detached the notes are: each note's length against the time to
    # the part's next note, the median over all notes starting in the stroke, smoothed over strokes
    ratios: list[list[float]] = [[] for _ in range(n)]
    for j, p in enumerate(info.parts):
        inside = (p.onset >= q[0] - 1e-6) & (p.onset < q_end[-1] - 1e-6)
        on, du = p.onset[inside], p.dur[inside]
        if len(on) < 2:
            continue
        order = np.argsort(on, kind="stable")
        on, du = on[order], du[order]
        ioi = np.diff(on)
        k_of = np.searchsorted(q, on[:-1] + 1e-6) - 1
        for k, d, i in zip(k_of, du[:-1], ioi):
            if i > 1e-6 and 0 <= k < n:
                ratios[k].append(min(d / i, 1.0))
    detached = np.array([np.clip((0.85 - np.median(r)) / 0.4, 0, 1) if r else np.nan for r in ratios])
    detached = np.where(np.isnan(detached), 0.0, detached)
    stac = np.maximum(stac, detached)
    stac = np.convolve(np.pad(stac, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    # dynamics: the mean level of the sounding parts, nudged by how full the texture is, smoothed
    # over neighbouring strokes (a conductor shapes the whole, not each part's entry)
    lv = np.stack([perf.level(j, q) for j in range(n_parts)], axis=1)
    counts = sounding_parts.sum(1)
    dyn = np.where(counts > 0, (lv * sounding_parts).sum(1) / np.maximum(counts, 1), lv.mean(1))
    dyn = np.convolve(np.pad(dyn, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    level = np.clip(dyn + 0.12 * (tutti - 0.5), 0.0, 1.0)
    for j, p in enumerate(info.parts):  # sf, fz … are accents
        for o, v in p.dynamics:
            if v in ACCENT_MARKS:
                k = int(np.searchsorted(q, o + 1e-6) - 1)
                if 0 <= k < n and abs(q[k] - o) < 0.26:
                    acc[k] = 1.0
    hairpin = np.interp(q, perf.q, perf.hairpin)
    # entries: a family starting after a silence of at least a bar and 2 s
    entries = np.zeros((n, len(FAMILIES)), bool)
    first_sound = int(np.flatnonzero(sounding)[0]) if sounding.any() else 0
    per_bar = np.array([patterns.n_beats(r[4]) * (2 if "/" in r[4] else 1) for r in rows])
    bar_s = np.array([r[6] for r in rows]) * per_bar
    for f in np.unique(fam_idx):
        cols = fam_idx == f
        fam_sounding = sounding_parts[:, cols].any(1)
        fam_onset = onset_parts[:, cols].any(1)
        last_sound_t = times[0] - 1.0  # silence before the excerpt
        for k in range(n):
            if fam_onset[k] and k > first_sound and times[k] - last_sound_t >= max(2.0, bar_s[k]):
                entries[k, f] = True
            if fam_sounding[k]:
                last_sound_t = times[k]
    # phrases: after a fermata, after a rest of a beat or more in the top part, at sections
    phrase = np.zeros(n, bool)
    section = np.zeros(n, bool)
    bar_idx = np.array([r[1] for r in rows])
    for k in range(n):
        if rows[k][2] == 0 and rows[k][3] == 0 and info.bars[bar_idx[k]].section:
            section[k] = True
    section[first_sound] = True
    phrase |= section
    phrase[1:] |= fermata[:-1]
    top = int(np.argmax([p.pitch.mean() if len(p.pitch) else -1 for p in info.parts]))
    phrase[1:] |= (~sounding_parts[:-1, top]) & sounding_parts[1:, top]
    # the final release, and cut-offs before rests
    last_sound = int(np.flatnonzero(sounding)[-1]) if sounding.any() else n - 1
    for k in range(n):
        if sounding[k] and (k == n - 1 or not sounding[k + 1]) and hold[k] == 0:
            hold[k] = max(float(perf.offset(sound_end[k]) - times[k]), 0.05)
    if hold[last_sound] == 0:
        hold[last_sound] = max(float(perf.offset(note_end) - times[last_sound]), 0.1)
    period = np.array([r[6] for r in rows])
    plan = Plan(times=times[keep], bar=bar_idx[keep] - perf.first_bar, beat=[r[2] for r, k in zip(rows, keep) if k],
                sub=[r[3] for r, k in zip(rows, keep) if k], pattern=[r[4] for r, k in zip(rows, keep) if k],
                metre=[r[5] for r, k in zip(rows, keep) if k], tempo=60.0 / period[keep], level=level[keep],
                accent=acc[keep], staccato=stac[keep], hairpin=hairpin[keep], phrase=phrase[keep],
                section=section[keep], entries=entries[keep], tutti=tutti[keep], sounding=sounding[keep],
                hold=hold[keep], fermata=fermata[keep], source="score",
                meta={"title": info.title, "q": q[keep].tolist()})
    return plan.validate()
