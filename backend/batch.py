"""`python -m backend render MUSIC...`: one MP4 per piece, unattended.

Each piece runs in its own process (baton_render/piece.py) — `--jobs N` of them at once — so a
piece that fails, or crashes Blender, stops nothing else. Outputs are idempotent: a piece whose MP4
exists is skipped (`--force` redoes it), each piece leaves a record beside its video, and
`manifest.json` is rebuilt from all records under a file lock, so several invocations (one piece
each, from a render-farm manager or a cluster scheduler) can share one output folder.

It runs wherever Python and bpy do, Windows included: a piece reports its progress through a file
the parent reads as it grows (not a pipe: on Windows neither `pass_fds` nor select() on pipes
exists), and the manifest's lock is flock where there is one, Windows' msvcrt.locking elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from baton_core.errors import BatonError
from baton_core.request import ConductRequest, add_arguments

try:
    import fcntl
    msvcrt = None
except ImportError:  # Windows
    import msvcrt
    fcntl = None

# the request's options a render takes, the same for every piece
REQUEST_OPTIONS = ("engine", "checkpoint", "seed", "smooth", "lead_ms", "size", "left_hand", "hand", "arms_only",
                   "seating")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 3, 2
SCORE_SUFFIXES = (".musicxml", ".mxl", ".xml", ".mid", ".midi", ".krn", ".abc")  # --scores: what music21 reads
EXPORTS = ("bvh", "fbx", "glb")  # --export: the take's action through Blender's own exporters
MANIFEST = "manifest.json"
RECORD_SUFFIX = ".record.json"
# --render-engine names → Blender's engine identifiers (5.0)
RENDER_ENGINES = {"workbench": "BLENDER_WORKBENCH", "eevee": "BLENDER_EEVEE", "cycles": "CYCLES"}
POLL_S = 0.2  # how often the running pieces' progress files are read


@dataclass
class Piece:
    music: Path
    stem: str
    out: Path
    state: str = "pending"  # pending → running → rendered | failed; or skipped
    stage: str = ""
    progress: tuple[int, int, float] | None = None  # frames done, total, seconds left
    error: str | None = None
    proc: subprocess.Popen | None = None
    events: object = None  # the piece's progress file, open for reading
    buffer: str = ""
    started: float = 0.0
    spec_dir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def path(self, suffix: str) -> Path:
        return self.out / f"{self.stem}{suffix}"


@dataclass
class PieceSpec:
    """What one piece's process (baton_render/piece.py) is asked to do, written as JSON."""

    request: dict  # a ConductRequest's to_dict(): the music and how to conduct it
    video: str
    take: str
    record: str
    blend: str | None
    scene: str | None
    armature: str | None
    frames: list[int] | None
    resolution: list[int] | None
    fps: float | None  # the scene's frame rate to set (None: the user's scene keeps its own)
    render_engine: str
    samples: int | None
    preview: bool
    threads: int
    exports: list[str] = field(default_factory=list)  # files to export the take's action to (.bvh, .fbx, .glb)

    @classmethod
    def read(cls, path: Path) -> "PieceSpec":
        return cls(**json.loads(path.read_text()))


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be even, 16 … 8192 (H.264)")
    return w, h


def _frames(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give FIRST:LAST scene frames, e.g. 1:240") from None
    if a > b:
        raise argparse.ArgumentTypeError(f"{text!r}: the first frame is after the last")
    return a, b


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend render",
                                description="Conduct and render pieces of music: one MP4 (H.264 + AAC) per piece.")
    p.add_argument("music", nargs="+", help="audio files (WAV, FLAC, OGG, MP3, …)")
    p.add_argument("--scene", type=Path, help="your .blend (its armature, camera and settings); default: Baton's stage")
    p.add_argument("--armature", help="armature object in --scene (default: the only one)")
    p.add_argument("--out", type=Path, default=Path("renders"), help="output folder (default: ./renders)")
    add_arguments(p, REQUEST_OPTIONS)  # the same for every piece
    p.add_argument("--given-beats", action="store_true",
                   help="strike each piece's own beats and bar lines, from song.beats.txt and song.downbeats.txt "
                        "beside song.wav (seconds, as generate's --beats and --downbeats take them)")
    p.add_argument("--scores", action="store_true",
                   help="conduct each piece from its own score, song.musicxml (or " + ", ".join(SCORE_SUFFIXES[1:]) +
                        ") beside song.wav, aligned to it")
    p.add_argument("--frames", type=_frames, help="scene frames FIRST:LAST to render (default: the whole piece)")
    p.add_argument("--resolution", type=_resolution, help="WIDTHxHEIGHT (default: 1280x720, or the scene's own)")
    p.add_argument("--fps", type=_positive(float), help="frame rate (default: 30, or the scene's own)")
    p.add_argument("--render-engine", choices=sorted(RENDER_ENGINES), default="workbench")
    p.add_argument("--samples", type=_positive(int), help="render samples (EEVEE, Cycles)")
    p.add_argument("--jobs", type=_positive(int), default=1, help="pieces rendered at once, each in its own process")
    p.add_argument("--force", action="store_true", help="redo pieces whose video already exists")
    p.add_argument("--save-blend", action="store_true", help="also save each piece's scene as .blend")
    p.add_argument("--export", action="append", choices=EXPORTS, default=[],
                   help="also export each piece's take through Blender's exporter (repeat for several)")
    p.add_argument("--preview", action="store_true",
                   help="cheap check: a stick-figure video with the audio (seconds, no Blender render)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    mode.add_argument("--json", action="store_true", help="progress and summary as JSON lines on stdout")
    return p


def plan(music: list[Path], out: Path, preview: bool) -> list[Piece]:
    """One piece per file, named after it; files that share a name get a short hash of their path."""
    stems = [m.stem for m in music]
    pieces = []
    for m, stem in zip(music, stems):
        if stems.count(stem) > 1:
            stem = f"{stem}-{hashlib.sha256(str(m.resolve()).encode()).hexdigest()[:8]}"
        pieces.append(Piece(m, stem + (".preview" if preview else ""), out))
    return pieces


class Reporter:
    """Progress on the terminal (a line per change, at most one a second per piece), quiet, or JSON."""

    def __init__(self, mode: str, total: int):
        self.mode, self.total = mode, total
        self.last: dict[str, float] = {}
        # a line a second at a terminal; a log file gets one every 15 s per piece
        self.every = 1.0 if mode != "human" or sys.stderr.isatty() else 15.0

    def emit(self, piece: Piece, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last.get(piece.stem, 0.0) < self.every:
            return
        self.last[piece.stem] = now
        if self.mode == "json":
            event = {"piece": piece.stem, "music": str(piece.music), "state": piece.state, "stage": piece.stage}
            if piece.progress:
                event |= dict(zip(("frame", "frames", "left_s"), piece.progress))
            if piece.error:
                event["error"] = piece.error
            print(json.dumps(event), flush=True)
        elif self.mode == "quiet":
            if piece.state == "failed":
                print(f"failed: {piece.music}: {piece.error}", file=sys.stderr, flush=True)
        else:
            if piece.state == "running" and piece.progress:
                done, total, left = piece.progress
                what = f"frame {done}/{total} ({100 * done / total:.0f}%), {_clock(left)} left"
            elif piece.state == "running":
                what = {"": "starting", "take": "conducting", "scene": "staging", "preview": "drawing the preview",
                        "done": "finishing"}.get(piece.stage, piece.stage)
            elif piece.state == "failed":
                what = f"FAILED: {piece.error}"
            else:
                what = piece.state
            print(f"{piece.stem}: {what}", file=sys.stderr, flush=True)

    def overall(self, pieces: list[Piece]) -> None:
        if self.mode != "human":
            return
        counts = {s: sum(p.state == s for p in pieces) for s in ("rendered", "skipped", "failed", "running", "pending")}
        print("overall: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {self.total}",
              file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def given_beats_files(music: Path) -> tuple[Path, Path]:
    """Where --given-beats finds a piece's beats and bar lines: song.beats.txt and song.downbeats.txt
    beside song.wav (seconds into the file, as --beats takes them; the bar lines may be left out)."""
    return music.with_name(music.stem + ".beats.txt"), music.with_name(music.stem + ".downbeats.txt")


def score_file(music: Path) -> Path | None:
    """The score --scores finds beside a piece: song.musicxml, song.mxl, … (the first that exists)."""
    return next((f for f in (music.with_suffix(x) for x in SCORE_SUFFIXES) if f.is_file()), None)


def _times(path: Path) -> list[float]:
    try:
        return [float(x) for x in path.read_text().replace(",", " ").split()]
    except (OSError, ValueError) as e:
        raise BatonError(f"{path}: not a list of times in seconds ({e})") from None


def _request(music: Path, args) -> ConductRequest:
    given = {}
    if args.given_beats:
        beats, bars = given_beats_files(music)
        if not beats.is_file():
            raise BatonError(f"--given-beats: {beats} is missing (the beats of {music.name}, seconds into it)")
        given = {"beats": _times(beats), "downbeats": _times(bars) if bars.is_file() else None}
    if args.scores:
        score = score_file(music)
        if score is None:
            raise BatonError(f"--scores: no score beside {music.name} ({music.stem}.musicxml, .mxl, .mid, …)")
        given["score"] = str(score)
    try:
        return ConductRequest(audio_path=str(music), **given,
                              **{name: getattr(args, name) for name in REQUEST_OPTIONS})
    except BatonError as e:
        if not given:
            raise
        raise BatonError(f"{music.name}: {e}") from None


def _spec(piece: Piece, args, threads: int) -> PieceSpec:
    return PieceSpec(
        request=_request(piece.music, args).to_dict(), video=str(piece.path(".mp4")),
        take=str(piece.path(".take.npz")), record=str(Path(piece.spec_dir.name) / "record.json"),
        blend=str(piece.path(".blend")) if args.save_blend and not args.preview else None,
        scene=str(args.scene.resolve()) if args.scene else None, armature=args.armature,
        frames=list(args.frames) if args.frames else None,
        resolution=list(args.resolution) if args.resolution else (None if args.scene else [1280, 720]),
        fps=args.fps if (args.fps or args.scene) else 30.0, render_engine=args.render_engine,
        samples=args.samples, preview=args.preview, threads=threads,
        exports=[] if args.preview else [str(piece.path(f".{kind}")) for kind in args.export])


def _start(piece: Piece, args, threads: int) -> None:
    piece.spec_dir = tempfile.TemporaryDirectory(prefix="baton-render-")
    spec_path = Path(piece.spec_dir.name) / "spec.json"
    spec_path.write_text(json.dumps(asdict(_spec(piece, args, threads))))
    events_path = Path(piece.spec_dir.name) / "events.jsonl"
    events_path.touch()
    piece.events = open(events_path, encoding="utf-8")
    log = open(piece.path(".log"), "w")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MALLOC_ARENA_MAX="2")
    piece.proc = subprocess.Popen([sys.executable, "-m", "baton_render.piece", str(spec_path), str(events_path)],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  env=env, cwd=Path(__file__).resolve().parents[1])
    log.close()
    piece.state, piece.started = "running", time.monotonic()


def _finish(piece: Piece, args) -> None:
    code = piece.proc.wait()
    record = {"music": str(piece.music.resolve()), "video": piece.path(".mp4").name, "log": piece.path(".log").name,
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                           if k not in ("music", "out", "quiet", "json", "force")},
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    made = Path(piece.spec_dir.name) / "record.json"
    if code == 0 and made.exists():
        record |= json.loads(made.read_text())
        record |= {"status": "rendered", "take": piece.path(".take.npz").name,
                   "music_sha256": record.get("provenance", {}).get("audio_sha256")}
        if args.save_blend and not args.preview:
            record["blend"] = piece.path(".blend").name
        if args.export and not args.preview:
            record["exports"] = [piece.path(f".{kind}").name for kind in args.export]
        piece.state = "rendered"
    else:
        piece.error = piece.error or _log_tail(piece.path(".log")) or f"exited with status {code}"
        record |= {"status": "failed", "error": piece.error}
        piece.state = "failed"
    piece.path(RECORD_SUFFIX).write_text(json.dumps(record, indent=1))
    piece.events.close()  # before the folder goes: Windows removes no open file
    piece.spec_dir.cleanup()


def _log_tail(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _read_events(piece: Piece, final: bool = False) -> None:
    """Take the child's new progress lines from its file (final: it has exited, so its last line
    counts even without a newline)."""
    piece.buffer += piece.events.read() + ("\n" if final else "")
    *lines, piece.buffer = piece.buffer.split("\n")
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if "error" in event:
            piece.error = event["error"]
        if "stage" in event:
            piece.stage = event["stage"]
            piece.progress = (event["done"], event["total"], event["left_s"]) if "done" in event else None


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on the file `path` (made if missing) while the block runs, against other
    processes: flock, or on Windows msvcrt.locking on its first byte (which gives up after 10 s; retried)."""
    with open(path, "a+b") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            yield
            return
        f.seek(0)
        while True:
            try:
                msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                break
            except OSError:  # another run held it for 10 s: keep waiting
                continue
        try:
            yield
        finally:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)


def write_manifest(out: Path) -> Path:
    """manifest.json from every piece record in `out`, under a lock so concurrent invocations agree."""
    with _locked(out / ".manifest.lock"):
        pieces = {}
        for rec in sorted(out.glob("*" + RECORD_SUFFIX)):
            try:
                pieces[rec.name[: -len(RECORD_SUFFIX)]] = json.loads(rec.read_text())
            except ValueError:
                continue
        manifest = {"format": "baton-render-manifest", "version": 1,
                    "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "pieces": pieces}
        tmp = out / f".{MANIFEST}.{os.getpid()}"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, out / MANIFEST)
    return out / MANIFEST


def run(args) -> int:
    if args.scene is not None and not args.scene.is_file():
        raise BatonError(f"--scene {args.scene}: no such .blend file")
    if args.armature and not args.scene:
        raise BatonError("--armature needs --scene (Baton's own stage has its own conductor)")
    if not args.given_beats and not args.scores:  # a request that cannot be conducted fails before any piece starts
        _request(Path(args.music[0]), args)
    args.out.mkdir(parents=True, exist_ok=True)
    pieces = plan([Path(m) for m in args.music], args.out, args.preview)
    mode = "json" if args.json else "quiet" if args.quiet else "human"
    report = Reporter(mode, len(pieces))
    for piece in pieces:
        if not piece.music.is_file():
            piece.state, piece.error = "failed", f"{piece.music}: no such file"
            piece.path(RECORD_SUFFIX).write_text(json.dumps({"music": str(piece.music), "status": "failed",
                                                             "error": piece.error}, indent=1))
            report.emit(piece, final=True)
        elif piece.path(".mp4").exists() and not args.force:
            piece.state = "skipped"
            report.emit(piece, final=True)
        elif args.given_beats or args.scores:
            try:
                _request(piece.music, args)
            except BatonError as e:  # this piece's beats or score are missing or wrong: the others go on
                piece.state, piece.error = "failed", str(e)
                piece.path(RECORD_SUFFIX).write_text(json.dumps({"music": str(piece.music), "status": "failed",
                                                                 "error": piece.error}, indent=1))
                report.emit(piece, final=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    todo = [p for p in pieces if p.state == "pending"]
    running: list[Piece] = []
    try:
        while todo or running:
            while todo and len(running) < args.jobs:
                piece = todo.pop(0)
                _start(piece, args, threads)
                running.append(piece)
                report.emit(piece, final=True)
            time.sleep(POLL_S)
            for piece in running:
                _read_events(piece)
                report.emit(piece)
            for piece in [p for p in running if p.proc.poll() is not None]:
                _read_events(piece, final=True)  # everything it wrote is in the file now
                _finish(piece, args)
                running.remove(piece)
                report.emit(piece, final=True)
                report.overall(pieces)
    except KeyboardInterrupt:
        for piece in running:
            piece.proc.terminate()
        for piece in running:
            try:
                piece.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                piece.proc.kill()
        raise
    manifest = write_manifest(args.out)
    failed = [p for p in pieces if p.state == "failed"]
    summary = {"rendered": [p.stem for p in pieces if p.state == "rendered"],
               "skipped": [p.stem for p in pieces if p.state == "skipped"],
               "failed": {p.stem: p.error for p in failed}, "manifest": str(manifest)}
    if mode == "json":
        print(json.dumps({"summary": summary}), flush=True)
    else:
        print(f"{len(summary['rendered'])} rendered, {len(summary['skipped'])} skipped (already done), "
              f"{len(failed)} failed — videos and {MANIFEST} in {args.out}", file=sys.stderr)
        for p in failed:
            print(f"  failed: {p.music}: {p.error}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except BatonError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
