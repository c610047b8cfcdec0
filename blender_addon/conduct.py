"""One run of Conduct: read the scene, let a worker thread talk to the engine, write the take.

Blender's data may only be touched from the main thread, and the engine takes seconds to minutes,
so a run is split in three:
  plan_run    (main thread) reads strip, timeline, armature and settings into a Plan;
  Run         (worker thread) starts or reaches the engine, sends the audio slice, follows the
              job's progress, fetches the take; it can be cancelled at any moment;
  apply_run   (main thread) writes the take as a new action (rig_link, takes) — the only step
              that changes the scene, so a cancelled or failed run leaves the scene as it was.
The modal operator polls a Run from a timer; the blocking path simply waits for it.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import bpy
from baton_core.errors import TakeError
from baton_core.naming import action_name
from baton_core.take import Take
from baton_rigs.errors import RigError

from baton_core.errors import BatonError
from baton_core.request import SECTIONS, ConductRequest

from . import beat_markers, request_options, rig_link, takes, timeline
from .properties import CONTROLS
from .backend_life import BackendManager, BackendSettings
from .client import BackendError, ServiceLost, log_tail


class ConductError(ValueError):
    """A run cannot start or could not finish; the message says why and what to do."""


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, read from the scene when it starts (later edits do not change it)."""
    scene: str
    window: timeline.AudioWindow
    seed: int
    engine: str
    checkpoint: str | None
    armature: str | None        # None: add the default conductor
    density: str                # rig_link.DENSITY_ITEMS
    controls: dict              # the request's gesture controls and lead (properties.CONTROLS)
    beats: tuple[float, ...] | None = None      # the beat markers' beats (file times); None: heard
    downbeats: tuple[float, ...] | None = None  # their bar lines
    markers: bool = True        # lay the take's beats out as markers
    root_motion: bool = False   # key the hips' travel too
    score: str | None = None    # the strip's score: its aligned beats and bars instead of the markers'


def plan_run(context, seed: int | None = None) -> Plan:
    """The Plan for the scene's settings (seed: override, for re-conducting); ConductError when the
    scene cannot be conducted as it is."""
    from .preferences import prefs
    scene = context.scene
    s = scene.baton
    try:
        if s.source == "FILE":
            window = timeline.file_window(scene, s.audio_file)
        else:
            editor = scene.sequence_editor
            window = timeline.strip_window(scene, editor.active_strip if editor else None)
        if s.use_frame_range and window.strip is not None:
            window = timeline.within_frames(window, s.frame_range_start, s.frame_range_end)
    except timeline.TimelineError as e:
        raise ConductError(str(e)) from None
    max_fps = request_options.option("fps")["maximum"]
    if window.fps > max_fps:
        raise ConductError(f"the scene runs at {window.fps:g} fps; Baton conducts at up to {max_fps:g} fps")
    arm = acted_on(context)
    if arm is None and not s.add_conductor:
        raise ConductError("choose an armature to conduct, or tick 'Add Default Conductor'")
    if arm is not None and arm.type != "ARMATURE":
        raise ConductError(f"{arm.name!r} is not an armature")
    if arm is not None:
        if arm.mode != "OBJECT" and arm.mode != "POSE":
            raise ConductError(f"{arm.name!r} is in {arm.mode.replace('_', ' ').title()} Mode; "
                               "switch to Object or Pose Mode to conduct it")
        try:
            rig_link.check_rig(arm)
        except RigError as e:
            raise ConductError(str(e)) from None
    checkpoint = bpy.path.abspath(prefs().checkpoint) if prefs().checkpoint else None
    editor = scene.sequence_editor
    score = _score(editor.strips_all.get(window.strip) if window.strip and editor else None)
    # a file to be added has no markers of its own yet (those in its frames belong to other strips)
    given = beat_markers.read(scene, window) if s.follow_markers and window.strip and not score else None
    beats, downbeats = given if given else (None, None)
    return Plan(scene.name, window, s.seed if seed is None else seed, s.engine,
                checkpoint if s.engine == "m2sgan" else None, arm.name if arm else None, s.density,
                {name: getattr(s, name) for name in CONTROLS} | _seating(scene, arm), beats, downbeats,
                s.beat_markers, s.root_motion, score)


def _score(strip) -> str | None:
    """The strip's score file (absolute), None when it has none; ConductError when it is missing."""
    if strip is None or not getattr(strip, "baton_score", ""):
        return None
    path = Path(bpy.path.abspath(strip.baton_score))
    if not path.is_file():
        raise ConductError(f"the score of {strip.name!r}, {path}, is missing: choose it again or clear it")
    return str(path)


def _seating(scene, arm) -> dict:
    """{"seating": "strings:-48.0,…"} from the objects the animator placed for the sections, as
    seen by the conductor (the armature facing its −Y, or the default conductor at the cursor), or
    {} when none are placed."""
    from mathutils import Vector
    placed = {name: getattr(scene.baton.seating, name) for name in SECTIONS}
    placed = {name: obj for name, obj in placed.items() if obj is not None and scene.objects.get(obj.name) == obj}
    if not placed:
        return {}
    if arm is not None:
        m = arm.matrix_world
        origin, forward, left = m.translation, -m.col[1].xyz, m.col[0].xyz
    else:
        origin, forward, left = scene.cursor.location, Vector((0, -1, 0)), Vector((1, 0, 0))
    out = []
    for name, obj in placed.items():
        v = obj.matrix_world.translation - origin
        out.append(f"{name}:{math.degrees(math.atan2(v.dot(left), v.dot(forward))):.1f}")
    return {"seating": ",".join(out)}


def acted_on(context):
    """The armature a run acts on, the one the user sees: the chosen one while it is in the scene
    (a deleted object is never a target), else the active armature; None: add the conductor."""
    scene, arm = context.scene, context.scene.baton.armature
    if arm is not None and scene.objects.get(arm.name) != arm:
        arm = None
    active = getattr(context, "active_object", None)
    if arm is None and active is not None and active.type == "ARMATURE" and scene.objects.get(active.name) == active:
        arm = active
    return arm


class Run:
    """The engine's side of one run, on a worker thread. Read `state`, `progress`, `stage`;
    `cancel()` from any thread; once `finished`, `take` when `state == "done"`, `error` when "failed".

    `finished` is the worker's own end, set after everything it publishes: the service's job state
    ("done" before its take is fetched, "failed" before its error is worded) is never copied into
    `state` as an end, so the UI polling from the main thread cannot catch a result half-written."""

    def __init__(self, plan: Plan, settings: BackendSettings, manager: BackendManager):
        self.plan, self.settings, self.manager = plan, settings, manager
        self.state, self.progress, self.stage = "starting", 0.0, "starting the engine"
        self.take: Take | None = None
        self.error: str | None = None
        self.job_id: str | None = None
        self._cancel = threading.Event()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._work, name="baton-run", daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        return self._ended.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.finished

    # -- the worker ---------------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            self._conduct()
        except ServiceLost as e:
            self._fail(str(e), lost=True)
        except BackendError as e:
            self._fail(str(e))
        except TakeError as e:
            self._fail(f"the engine sent a take that cannot be read: {e}")
        except Exception as e:  # a bug: report it rather than leave the run hanging
            self._fail(f"internal error ({type(e).__name__}: {e})")
        finally:
            self._ended.set()

    def _conduct(self) -> None:
        w, p = self.plan.window, self.plan
        folders = [Path(f).parent for f in (p.checkpoint, p.score) if f]
        client = self.manager.client(self.settings, w.path.parent if w.path else None, folders)
        request_options.refresh(client)
        if self._stopped():
            return
        self.stage = "sending the audio"
        audio, cut, uploaded = self._audio_path(client)
        sent = [audio] if uploaded else []
        try:
            score = p.score
            if score and (self.settings.mode != "AUTO" or not self.manager.allows(Path(score))):
                score = client.upload(score)  # a service that cannot read it gets its bytes, as the audio's
                sent.append(score)
            self._follow(client, audio, cut, score)
        finally:
            for name in sent:
                try:
                    client.delete_upload(name)
                except BackendError:
                    pass  # the service has gone, and its uploads with it

    def _follow(self, client, audio: str, cut: float, score: str | None) -> None:
        """Submit the job for `audio` (which begins at file time `cut`) and the score the engine may
        read, follow it, fetch its take."""
        w, p = self.plan.window, self.plan
        moved = lambda times: None if times is None else tuple(round(t - cut, 6) for t in times if t >= cut)
        try:
            request = ConductRequest(audio_path=str(audio), start=round(w.start - cut, 6),
                                     duration=None if w.duration is None else round(w.duration, 6),
                                     seed=p.seed, engine=p.engine, fps=w.fps, checkpoint=p.checkpoint,
                                     beats=moved(p.beats), downbeats=moved(p.downbeats), score=score,
                                     **p.controls)
        except BatonError as e:
            raise BackendError(str(e)) from None
        job = client.submit(**{k: v for k, v in request.to_dict().items() if v is not None})
        self.job_id, self.state, self.stage = job["id"], job["state"], job["stage"]
        while True:
            if self._cancel.is_set():
                client.cancel(self.job_id)
                self.state, self.stage = "cancelled", "cancelled"
                return
            status = client.job(self.job_id)
            self.progress, self.stage = status["progress"], status["stage"]
            if status["state"] in ("queued", "running"):
                self.state = status["state"]
            if status["state"] == "done":
                break
            if status["state"] == "failed":
                mine = str(w.path or w.filename or w.name)  # the user's file, not the service's copy
                error = status["error"].replace(str(audio), mine).replace(str(Path(audio).parent), mine)
                if score and p.score and score != p.score:  # an uploaded score: the user's file again
                    error = error.replace(str(score), p.score)
                raise BackendError(f"the engine could not conduct {w.name}: {error}{self._log()}")
            if status["state"] == "cancelled":
                self.state, self.stage = "cancelled", "cancelled by the engine"
                return
            self._cancel.wait(0.1)
        self.state, self.stage = "fetching", "fetching the take"
        take = client.take(self.job_id, "npz")
        if self._stopped():
            return
        if cut:  # the take's times are the file's, not the slice's
            take = dataclasses.replace(take, start=take.start + cut)
        self.take, self.progress, self.stage = take, 1.0, "done"
        self.state = "done"

    def _audio_path(self, client) -> tuple[str, float, bool]:
        """(a path the engine may read, the file time at which it begins, whether it was uploaded):
        the file itself when it lies in a folder the engine may read, else only the window's slice
        (with the music around it the engine hears) cut and uploaded — a packed sound, or a service
        that cannot see the file."""
        w = self.plan.window
        if w.packed is None and self.settings.mode == "AUTO" and self.manager.allows(w.path):
            return str(w.path), 0.0, False
        with tempfile.TemporaryDirectory(prefix="baton-slice-") as tmp:
            source = w.path
            if w.packed is not None:
                source = Path(tmp) / (w.filename or w.name).replace("/", "_").replace("\\", "_")
                source.write_bytes(w.packed)
            piece = Path(tmp) / "slice.flac"
            try:
                cut = timeline.write_slice(source, w.start, w.duration, piece)
            except timeline.TimelineError:  # audaspace cannot read it: the engine may
                return client.upload(source), 0.0, True
            return client.upload(piece), cut, True

    def _stopped(self) -> bool:
        if self._cancel.is_set():
            self.state, self.stage = "cancelled", "cancelled"
        return self._cancel.is_set()

    def _log(self) -> str:
        log = self.manager.log_file() if self.settings.mode == "AUTO" else None
        return f"\nThe engine's log ends:\n{log_tail(log, 8)}" if log else ""

    def _fail(self, message: str, lost: bool = False) -> None:
        if self.settings.mode == "AUTO":
            message = self.manager.dead_message(grace=2.0 if lost else 0.0) or message
        self.error, self.state, self.stage = message, "failed", "failed"


def apply_run(context, run: Run):
    """Write a finished run's take into the scene (main thread): a new action on the armature (the
    default conductor when none was chosen), the take's record, and for a chosen file its sound
    strip. Returns (action, the rig library's report)."""
    p = run.plan
    scene = bpy.data.scenes.get(p.scene)
    if scene is None:
        raise ConductError(f"scene {p.scene!r} was removed while conducting")
    created = None
    if p.armature is not None:
        obj = bpy.data.objects.get(p.armature)
        if obj is None or scene.objects.get(p.armature) != obj:
            raise ConductError(f"armature {p.armature!r} was removed while conducting")
    else:
        if context.scene != scene:  # a conductor is built in the scene the user is in
            raise ConductError(f"switched to scene {context.scene.name!r} while conducting {p.scene!r}: "
                               f"switch back and conduct again")
        obj = created = rig_link.add_default_conductor(scene, _active_collection(context, scene),
                                                       tuple(scene.cursor.location))
    w, take = p.window, _within_window(run.take, p.window)
    # frame 0 of the take is shown as file time take.start plays: the window's first frame, moved
    # by any rounding of the slice start the service made, and by the take's lead
    offset = w.first_frame + (take.start - w.start) * w.fps
    actions, shown = set(bpy.data.actions), takes.current(obj)
    placed = w
    try:
        takes.keep_existing(obj)
        action, report = rig_link.write_take(obj, take, offset, w.fps, action_name(w.name, p.seed), p.density,
                                             p.root_motion)
        takes.record(action, obj, p, take, report)
        if w.strip is None:
            placed = timeline.strip_window(scene, timeline.add_strip(scene, w, take.n_frames), read_packed=False)
    except Exception as e:  # leave the scene as it was: no half-written take
        for a in set(bpy.data.actions) - actions:
            bpy.data.actions.remove(a)
        if created is not None:
            rig_link.remove_conductor(created)
        elif takes.current(obj) != shown:
            takes.switch(obj, shown)
        if isinstance(e, RigError):
            raise ConductError(str(e)) from None
        raise
    scene.baton.armature = obj
    _fit_scene(scene, w, take, offset, report)
    if p.markers:
        beat_markers.write(scene, placed, take)
    return action, report


def _active_collection(context, scene):
    layer = getattr(context, "view_layer", None)
    active = layer.active_layer_collection.collection if layer is not None else None
    return active if active is not None and context.scene == scene else scene.collection


def _within_window(take: Take, w: timeline.AudioWindow) -> Take:
    """The take's frames that fall inside the window (a strip that plays to its file's end gets
    no key past its last frame)."""
    if w.duration is None:
        return take
    n = int(round((w.start + w.duration - take.start) * take.fps))
    if n >= take.n_frames or n <= 0:
        return take
    return dataclasses.replace(take, keypoints_2d=take.keypoints_2d[:n], keypoints_3d=take.keypoints_3d[:n],
                               beats=take.beats[take.beats < n / take.fps])


def _fit_scene(scene, w, take: Take, offset: float, report) -> None:
    """The scene's frame range grows to cover the take, and playback keeps to the music's time
    (audio sync: frames are dropped rather than the sound drifting); each change is reported."""
    first = int(round(offset))
    last = first + int(round(take.n_frames * w.fps / take.fps)) - 1
    if scene.frame_start > first or scene.frame_end < last:
        old = (scene.frame_start, scene.frame_end)
        scene.frame_start, scene.frame_end = min(scene.frame_start, max(first, 0)), max(scene.frame_end, last)
        report.warnings.append(f"the scene's frame range grew from {old[0]}–{old[1]} to "
                               f"{scene.frame_start}–{scene.frame_end} to cover the take")
    if scene.sync_mode != "AUDIO_SYNC":
        report.warnings.append(f"playback set to sync to audio (was {scene.sync_mode.replace('_', ' ').lower()}), "
                               "so the gestures stay with the music")
        scene.sync_mode = "AUDIO_SYNC"
