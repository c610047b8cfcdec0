"""Timeline truth: which part of which audio file a run conducts, and from which frame.

A sound strip plays its file from `(frame_final_start − frame_start) / fps + sound_offset` seconds
for `frame_final_duration / fps` seconds, starting at scene frame `frame_final_start`, where
`fps = render.fps / render.fps_base` (23.976 is 24 / 1.001). The service is asked for exactly that
slice, at exactly that frame rate, so take frame i is scene frame `frame_final_start + i`: every key
lands where its sound is heard, however the strip is moved, trimmed, offset or re-channelled.
(A negative sound offset means silence first: the window then begins at the first whole frame at
which the file is playing, so keys stay on whole frames.)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import bpy
from baton_core.request import SLICE_CONTEXT_S


class TimelineError(ValueError):
    """The audio to conduct cannot be placed on the timeline; says why and what to do."""


@dataclass(frozen=True)
class AudioWindow:
    name: str                 # what the take is named after (the strip, or the file)
    path: Path | None         # the audio file (None: packed into the .blend, sent as `packed`)
    packed: bytes | None
    start: float              # seconds into the file where the heard part begins
    duration: float | None    # seconds heard (None: to the end of the file)
    first_frame: int          # scene frame at which `start` is heard
    fps: float                # the scene's frame rate
    strip: str | None = None  # the strip's name (None: a file to be added as a strip)
    filename: str = ""        # a packed sound's original file name (its suffix tells the engine the format)


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def strip_window(scene, strip, read_packed: bool = True) -> AudioWindow:
    """The window a sound strip plays (`read_packed` False: a packed sound's bytes are left out, as
    the panel needs only the numbers)."""
    if strip is None or strip.type != "SOUND":
        kind = "nothing" if strip is None else f"a {strip.type.lower()} strip ({strip.name})"
        raise TimelineError(f"conducting needs a sound strip: select one in the sequencer (the active strip is {kind}), "
                            f"or choose an audio file")
    if strip.sound is None:
        raise TimelineError(f"sound strip {strip.name!r} has no sound")
    if len(getattr(strip, "retiming_keys", ())) > 0:
        raise TimelineError(f"sound strip {strip.name!r} is retimed; Baton follows strips playing at normal speed "
                            f"(clear its retiming, or mix the retimed sound down to a file)")
    fps = scene_fps(scene)
    pf = strip.sound.packed_file
    packed = (bytes(pf.data) if read_packed else b"") if pf else None
    path = None if pf else Path(bpy.path.abspath(strip.sound.filepath, library=strip.sound.library))
    if path is not None and not path.is_file():
        raise TimelineError(f"sound strip {strip.name!r} plays {path}, which does not exist (relink it, "
                            f"or pack it into the .blend)")
    first = int(strip.frame_final_start)
    start = (first - strip.frame_start) / fps + strip.sound_offset
    skip = max(0, math.ceil(-start * fps - 1e-6))  # frames of silence before the file plays
    duration = (strip.frame_final_duration - skip) / fps
    if duration < 1.0:
        raise TimelineError(f"sound strip {strip.name!r} plays {max(duration, 0):.2f} s of its file; "
                            f"conducting needs at least 1 s")
    return AudioWindow(strip.name, path, packed, max(0.0, start + skip / fps), duration, first + skip, fps, strip.name,
                       Path(bpy.path.basename(strip.sound.filepath)).name if pf else "")


def within_frames(w: AudioWindow, first: int, last: int) -> AudioWindow:
    """The part of the window between scene frames `first` and `last` (inclusive): the frame range
    to conduct. TimelineError when under a second of it is left."""
    end = w.first_frame + round(w.duration * w.fps) - 1 if w.duration is not None else last
    a, b = max(first, w.first_frame), min(last, end)
    if (b - a + 1) / w.fps < 1.0:
        raise TimelineError(f"frames {first}–{last} hold {max(b - a + 1, 0)} frames of {w.name}'s "
                            f"{w.first_frame}–{end}; conducting needs at least 1 s")
    return dataclasses.replace(w, first_frame=a, start=w.start + (a - w.first_frame) / w.fps,
                               duration=(b - a + 1) / w.fps)


def file_window(scene, filepath: str) -> AudioWindow:
    """A whole audio file, heard from the current frame (it is added there as a sound strip)."""
    path = Path(bpy.path.abspath(filepath)) if filepath else None
    if path is None or not path.is_file():
        raise TimelineError(f"choose an audio file to conduct ({filepath or 'none chosen'} is not a file)")
    return AudioWindow(path.name, path, None, 0.0, None, scene.frame_current, scene_fps(scene))


def write_slice(source: Path, start: float, duration: float | None, target: Path) -> float:
    """Write the part of `source` a window plays, with the music the engine hears around it
    (SLICE_CONTEXT_S each side), to `target` as mono FLAC with Blender's own audaspace; returns
    the file time at which `target` begins. An engine that cannot read the file gets this, not
    the whole file: a minute's strip of a long recording is a few MB."""
    import aud
    try:
        sound = aud.Sound(str(source))
        rate = int(sound.specs[0])
        cut = math.floor(max(0.0, start - SLICE_CONTEXT_S) * rate) / rate
        end = sound.length / rate if duration is None else min(sound.length / rate, start + duration + SLICE_CONTEXT_S)
        sound.limit(cut, end).write(str(target), rate, 1, aud.FORMAT_S16, aud.CONTAINER_FLAC, aud.CODEC_FLAC, 0, 1 << 16)
    except Exception as e:  # aud raises plain Exceptions for unreadable or unwritable files
        raise TimelineError(f"cannot cut the slice of {source.name} to send to the engine ({e})") from None
    return cut


def add_strip(scene, window: AudioWindow, n_frames: int):
    """The chosen file as a sound strip at the window's first frame, on the lowest channel free for
    the `n_frames` it plays."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    end = window.first_frame + n_frames
    busy = {s.channel for s in editor.strips_all if s.frame_final_start < end and s.frame_final_end > window.first_frame}
    channel = next((c for c in range(1, 129) if c not in busy), 128)
    strip = editor.strips.new_sound(window.name, str(window.path), channel, window.first_frame)
    editor.active_strip = strip
    return strip
