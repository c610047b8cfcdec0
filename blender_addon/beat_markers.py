"""The take's beats and bars as timeline markers the animator corrects, and read back for the next
take.

Each beat counted is a marker named bar.beat ("12.1" is bar 12's downbeat; the beats before the
first bar line are bar 0, the upbeat), on the frame where the beat is heard. The animator moves
markers, adds them (Blender's M: a marker named F_<frame> is a beat too), deletes them, or renames
a beat to "<anything>.1" to start a bar there; Set Bars renumbers a selected range N beats to the
bar (1: in one). Conduct then strikes exactly the markers' beats and beats their bars. Markers are
told apart from the animator's own by their names alone (markers carry no custom properties); any
other name is left alone. Markers do not move with a strip, so the scene keeps the strip's place
when they were laid (`ANCHOR_KEY`): after the strip is moved or trimmed they are still read as the
music's times they marked, and the next take lays them out again where the strip now plays.
"""

from __future__ import annotations

import re

import numpy as np

from .timeline import AudioWindow

ANCHOR_KEY = "baton_beat_markers"  # scene property: {strip: [first frame, file start, fps, last frame]}
HEARD_KEY = "baton_heard_beats"  # scene property: {strip: {"pulse": [...], "downbeats": [...]}}, file times

BEAT = re.compile(r"^(\d+)\.(\d+)$")
ADDED = re.compile(r"^F_\d+$")  # a marker added with M in a timeline: a beat where it stands
UNKNOWN_METRE = 4  # bars of a take that carries no bar lines (one made before bars were kept)


def is_beat(marker) -> bool:
    return bool(BEAT.match(marker.name) or ADDED.match(marker.name))


def is_downbeat(marker) -> bool:
    m = BEAT.match(marker.name)
    return bool(m) and m.group(2) == "1"


def last_frame(w: AudioWindow) -> int:
    """The window's last frame (a whole file: no end)."""
    return w.first_frame + int(round(w.duration * w.fps)) - 1 if w.duration is not None else 2 ** 31 - 1


def _frame_of(w: AudioWindow, file_time: float) -> int:
    return int(round(w.first_frame + (file_time - w.start) * w.fps))


def _in_window(scene, w: AudioWindow, last: int) -> list:
    return sorted((m for m in scene.timeline_markers if is_beat(m) and w.first_frame <= m.frame <= last),
                  key=lambda m: m.frame)


def names(n: int, downbeat: np.ndarray) -> list[str]:
    """bar.beat names for n beats of which `downbeat` (bool) begin bars: the beats before the first
    are bar 0, numbered so that its last beat leads into beat 1 as the first bar's metre says."""
    starts = np.flatnonzero(downbeat)
    if len(starts) == 0:
        return [f"{1 + i // UNKNOWN_METRE}.{1 + i % UNKNOWN_METRE}" for i in range(n)]
    first = int(starts[0])
    metre = int(starts[1] - first) if len(starts) > 1 else UNKNOWN_METRE
    # the upbeat's beats never end in .1 (that would begin a bar): a long one counts from 2
    out = [f"0.{metre - first + i + 1 if first < metre else i + 2}" for i in range(first)]
    bar, beat = 0, 0
    for i in range(first, n):
        bar, beat = (bar + 1, 1) if downbeat[i] else (bar, beat + 1)
        out.append(f"{bar}.{beat}")
    return out


def _anchor(scene, w: AudioWindow) -> AudioWindow:
    """The window as it was when the markers for `w`'s strip were laid (`w` itself if unknown)."""
    laid = scene.get(ANCHOR_KEY, {}).get(w.strip or w.name)
    if laid is None:
        return w
    first, start, fps, last = laid
    return AudioWindow(w.name, w.path, w.packed, float(start), (last - first + 1) / fps, int(first), float(fps), w.strip)


def _laid(scene, w: AudioWindow) -> list:
    """The beat markers of `w`'s strip, in frame order, where they were laid."""
    laid = _anchor(scene, w)
    return _in_window(scene, laid, last_frame(laid))


def _same_place(a: AudioWindow, b: AudioWindow) -> bool:
    """Whether the two windows put the file's times on the same frames (the strip has not moved)."""
    return a.fps == b.fps and abs((a.first_frame - a.start * a.fps) - (b.first_frame - b.start * b.fps)) < 0.5


def write(scene, w: AudioWindow, take) -> int:
    """Lay the take's pulse and bar lines out as markers in the window, replacing the beat
    markers there (and, when the strip has moved since they were laid, all of its old ones);
    returns how many."""
    last = last_frame(w)
    old = _anchor(scene, w)
    moved = not _same_place(old, w)
    doomed = {m.as_pointer(): m for m in _in_window(scene, w, last) + (_laid(scene, w) if moved else [])}
    for m in doomed.values():
        scene.timeline_markers.remove(m)
    heard = take.start + take.lead  # the file time of the take's time 0 as the sound goes
    frames, seen = [], set()
    for t in take.pulse:
        f = _frame_of(w, heard + float(t))
        if w.first_frame <= f <= last and f not in seen:
            frames.append(f)
            seen.add(f)
    bar_frames = {_frame_of(w, heard + float(t)) for t in take.downbeats}
    labels = names(len(frames), np.array([f in bar_frames for f in frames], bool))
    for f, label in zip(frames, labels):
        scene.timeline_markers.new(label, frame=f)
    first, end = w.first_frame, min(last, 2 ** 31 - 1)
    if not moved and old is not w:  # a passage of the strip: the markers laid before still count
        first, end = min(first, old.first_frame), max(end, last_frame(old))
    if take.settings.get("beats") == "heard":  # what the engine heard, for As Heard on a range later
        heard_beats = dict(scene.get(HEARD_KEY, {}))
        heard_beats[w.strip or w.name] = {"pulse": [heard + float(t) for t in take.pulse],
                                          "downbeats": [heard + float(t) for t in take.downbeats]}
        scene[HEARD_KEY] = heard_beats
    anchors = dict(scene.get(ANCHOR_KEY, {}))
    anchors[w.strip or w.name] = [first, w.start + (first - w.first_frame) / w.fps, w.fps, end]
    scene[ANCHOR_KEY] = anchors
    if not moved and old is not w:
        renumber(scene, w)  # one count through the whole strip
    return len(frames)


def read(scene, w: AudioWindow) -> tuple[tuple[float, ...], tuple[float, ...] | None] | None:
    """(beats, bar lines) as file times from the beat markers laid for the window's strip (read
    where they were laid, kept where the window now plays; bar lines None when no marker begins a
    bar), or None when there are fewer than two."""
    laid = _anchor(scene, w)
    markers = _laid(scene, w)
    frames, downs = [], []
    for m in markers:
        if frames and m.frame == frames[-1]:  # two markers on one frame are one beat
            downs[-1] = downs[-1] or is_downbeat(m)
            continue
        frames.append(m.frame)
        downs.append(is_downbeat(m))
    end = w.start + w.duration if w.duration is not None else float("inf")
    heard = [(round(laid.start + (f - laid.first_frame) / laid.fps, 6), d) for f, d in zip(frames, downs)]
    heard = [(t, d) for t, d in heard if w.start <= t < end]
    if len(heard) < 2:
        return None
    bars = tuple(t for t, d in heard if d)
    return tuple(t for t, _ in heard), bars or None


def renumber(scene, w: AudioWindow) -> None:
    """Name the beat markers bar.beat again after edits, keeping which ones begin a bar."""
    markers = _laid(scene, w)
    for m, label in zip(markers, names(len(markers), np.array([is_downbeat(m) for m in markers], bool))):
        m.name = label


def set_bars(scene, w: AudioWindow, per_bar: int) -> int:
    """Make the selected beat markers bars of `per_bar` beats, from the first selected; returns how
    many markers were selected (0: nothing changed)."""
    chosen = [m for m in _laid(scene, w) if m.select]
    for i, m in enumerate(chosen):
        m.name = "0.1" if i % per_bar == 0 else "0.2"
    if chosen:
        renumber(scene, w)
    return len(chosen)


def as_heard(scene, w: AudioWindow) -> int:
    """Give the span of the selected beat markers back the beats and bar lines the engine heard
    there (in the strip's last take made from the beats it heard); returns how many beats it laid.
    ValueError when no such take was made for the strip."""
    heard = scene.get(HEARD_KEY, {}).get(w.strip or w.name)
    if heard is None:
        raise ValueError(f"Baton has not heard {w.name}'s beats yet: conduct it once with Follow Beat Markers "
                         f"off (or after Clear Beat Markers)")
    chosen = [m for m in _laid(scene, w) if m.select]
    if not chosen:
        return 0
    first, last = chosen[0].frame, chosen[-1].frame
    for m in _laid(scene, w):
        if first <= m.frame <= last:
            scene.timeline_markers.remove(m)
    bars = {_frame_of(w, t) for t in heard["downbeats"]}
    laid = 0
    for t in heard["pulse"]:
        f = _frame_of(w, t)
        if first <= f <= last:
            scene.timeline_markers.new("0.1" if f in bars else "0.2", frame=f).select = True
            laid += 1
    renumber(scene, w)
    return laid


def clear(scene, w: AudioWindow) -> int:
    """Remove the beat markers of the window's strip (the next take hears the beats again)."""
    markers = _laid(scene, w)
    for m in markers:
        scene.timeline_markers.remove(m)
    return len(markers)
