"""The engine process behind the add-on: found, started when first needed, health-checked,
restarted after a crash, stopped with Blender.

Blender's Python has no torch, so the engine runs in the project's own environment as
`python -m backend serve` (client.start_backend). Which Python: the preference when set (for
experts), else $BATON_BACKEND_PYTHON, else the engine *Install Engine* put in the add-on's user folder
(engine_env.py), else the `.venv` of the repository the add-on was built from (build.py writes its
path into build_info.json), else the `.venv` beside a checkout the add-on runs from. When none exists
the error says exactly what to press or run.

An engine of another version than the add-on is refused with the fix (Repair Engine, or the
service to start): its /v1/health reports its version, the installed one's marker file too.

In "connect" mode the add-on starts nothing: it talks to a service someone else started, with the
port and token file they gave it.

This module keeps one engine per Blender session; all its state sits behind a lock because runs
talk to it from worker threads while the UI asks for its status.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import baton_core

from .client import Backend, BackendError, Client, log_tail, start_backend
from .engine_env import Layout, venv_python

ENV_PYTHON = "BATON_BACKEND_PYTHON"
HERE = Path(__file__).resolve().parent
INSTALLED = "the engine installed from the preferences"
START_TIMEOUT = 180.0  # a cold torch import on a busy machine takes tens of seconds


@dataclass(frozen=True)
class BackendSettings:
    """What the preferences say about the engine (preferences.backend_settings builds it)."""
    python: str = ""            # empty: find it
    mode: str = "AUTO"          # AUTO: start one; CONNECT: use a running one
    port: int = 0               # CONNECT only
    token_file: str = ""        # CONNECT only
    start_on_enable: bool = False
    engine_home: str = ""       # the add-on's user folder, where Install Engine puts the engine


def _venv_python(root: Path) -> Path:
    return venv_python(root / ".venv")


def build_info() -> dict:
    """What build.py recorded in the zip: version, source repository, commit ({} when run from a checkout)."""
    try:
        return json.loads((HERE / "build_info.json").read_text())
    except (OSError, ValueError):
        return {}


def find_python(configured: str = "", engine_home: str = "") -> tuple[Path, str]:
    """(the engine's Python, how it was found), or BackendError with the exact fix."""
    for value, origin in ((configured, "the add-on's preferences"), (os.environ.get(ENV_PYTHON, ""), f"${ENV_PYTHON}")):
        if value:
            path = Path(value).expanduser()
            if path.is_file() and os.access(path, os.X_OK):
                return path, origin
            raise BackendError(f"the Python set in {origin} ({value}) is not an executable file: point it at "
                               f"the Baton repository's .venv/bin/python (made by `python3 build.py setup`)")
    if engine_home and Layout(Path(engine_home)).installed() is not None:
        layout = Layout(Path(engine_home))
        if layout.version_problem():
            raise BackendError(layout.version_problem())
        return layout.python(), INSTALLED
    source = build_info().get("source")
    roots = [(Path(source), "the repository this add-on was built from")] if source else []
    roots.append((HERE.parent, "the checkout this add-on runs from"))
    for root, origin in roots:
        if (root / "backend" / "__init__.py").is_file() and _venv_python(root).is_file():
            return _venv_python(root), origin
    where = Path(source) if source else Path("<the Baton repository>")
    raise BackendError(
        f"Baton's engine is not installed: press Install Engine in Preferences > Add-ons > Baton. (From a "
        f"checkout: run `python3 build.py setup` in {where}, which makes {_venv_python(where)}; or set Engine "
        f"Python there, or ${ENV_PYTHON}, to the Python of an environment that has Baton's backend installed)")


def engine_cwd(python: Path, origin: str) -> Path | None:
    """Where the engine starts: `python -m backend` imports a `backend` folder in its working folder
    first, so a repository's engine starts in the repository and an installed one in its own
    environment (never in a checkout that happens to be Blender's working folder); an expert's
    Python in Blender's working folder, as before."""
    source = build_info().get("source")
    if origin == "the repository this add-on was built from" and source and Path(source).is_dir():
        return Path(source)
    if origin == "the checkout this add-on runs from":
        return HERE.parent
    if origin == INSTALLED:
        return python.parents[1]
    return None


def check_version(health: dict, where: str) -> None:
    """Refuse an engine of another version than this add-on, saying what to do."""
    version = health.get("version")
    if version != baton_core.__version__:
        raise BackendError(f"the Baton engine at {where} is version {version or 'unknown'}, this add-on is "
                           f"{baton_core.__version__}: press Repair Engine in Preferences > Add-ons > Baton (for "
                           f"an engine of your own, install Baton {baton_core.__version__} into its environment)")


class BackendManager:
    """The session's engine: `client()` hands out a healthy one, starting or restarting it as needed."""

    def __init__(self):
        self._lock = threading.RLock()
        self._backend: Backend | None = None
        self._allowed: list[Path] = []
        self.starting = False
        self.note: str | None = None      # why no engine runs: it crashed, or could not start
        self.restarts = 0                 # engines replaced after dying on their own

    # -- state the UI shows -----------------------------------------------------------------------
    @property
    def backend(self) -> Backend | None:
        return self._backend

    def status(self) -> str:
        """One line for the preferences (never waits for the lock: a start can take a minute)."""
        b = self._backend
        if self.starting:
            return "starting…"
        if b is None:
            return self.note or "not started (starts with the first run)"
        if b.process.poll() is not None:
            return f"exited with code {b.process.returncode} (restarts on the next run)"
        return f"running (process {b.process.pid}, port {b.client.base.rsplit(':', 1)[1]})"

    def log_file(self) -> Path | None:
        return self._backend.log_file if self._backend else None

    # -- life ---------------------------------------------------------------------------------------
    def client(self, settings: BackendSettings, audio_dir: Path | None = None, needs: list[Path] = ()) -> Client:
        """A client of a healthy engine (blocking: starting one takes seconds). A new engine may read
        `audio_dir` (audio elsewhere is uploaded) and the folders in `needs` (a checkpoint's); one
        running without a needed folder is restarted with it."""
        if settings.mode == "CONNECT":
            return self._connect(settings)
        with self._lock:
            b = self._backend
            if b is not None:
                reusable = b.process.poll() is None and all(self.allows(d, folder=True) for d in needs)
                if reusable:
                    try:
                        b.client.health()  # its version was checked when it started
                        return b.client
                    except BackendError:
                        pass  # alive but not answering: replace it
                crashed = reusable or b.process.poll() is not None
                last_words = log_tail(b.log_file, 1).strip()  # its run folder goes with it
                b.stop()
                self._backend = None
                if crashed:
                    self.note = f"stopped unexpectedly (exit code {b.process.returncode}; its log ended: {last_words})"
                    self.restarts += 1
            python, origin = find_python(settings.python, settings.engine_home)
            self._allowed = list(dict.fromkeys([*self._allowed, *needs, *([audio_dir] if audio_dir else [])]))
            self.starting = True
            try:
                self._backend = start_backend(str(python), self._allowed, timeout=START_TIMEOUT,
                                              cwd=engine_cwd(python, origin))
            except BackendError as e:
                self.note = f"could not start: {str(e).splitlines()[0]}"
                raise
            finally:
                self.starting = False
            try:
                check_version(self._backend.client.health(), str(python))
            except BackendError as e:
                self.stop()
                self.note = str(e)
                raise
            return self._backend.client

    def allows(self, path: Path, folder: bool = False) -> bool:
        """Whether the running engine may read the file (or `folder`) `path` directly."""
        real = Path(os.path.realpath(path))
        dirs = [Path(os.path.realpath(d)) for d in self._allowed]
        return any(d in real.parents or (folder and real == d) for d in dirs)

    def dead_message(self, grace: float = 0.0) -> str | None:
        """When the engine this session started has died: what to tell the user (with its log).
        `grace`: seconds to wait for it to be gone (its connection drops a moment before it is)."""
        b = self._backend
        if b is None:
            return None
        try:
            b.process.wait(grace)
        except subprocess.TimeoutExpired:
            return None
        return (f"the Baton engine stopped (exit code {b.process.returncode}); it restarts on the next run. "
                f"Its log ends:\n{log_tail(b.log_file, 12)}")

    def _connect(self, settings: BackendSettings) -> Client:
        how = ("start one with `python -m backend serve --port PORT --token-file FILE` and enter both in "
               "Preferences > Add-ons > Baton, or choose 'Start automatically' there")
        if not settings.port or not settings.token_file:
            raise BackendError(f"connecting to a running Baton service needs its port and token file: {how}")
        try:
            token = Path(settings.token_file).expanduser().read_text().strip()
        except OSError as e:
            raise BackendError(f"cannot read the token file {settings.token_file} ({e.strerror or e}): {how}") from None
        client = Client(settings.port, token)
        try:
            health = client.health()
        except BackendError as e:
            raise BackendError(f"{e}; {how}") from None
        check_version(health, client.base)
        return client

    def stop(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.stop()
                self._backend = None

    def start_in_background(self, settings: BackendSettings) -> None:
        """Start the engine without blocking Blender (preference 'start on enable'); a failure is
        kept and reported by the first run, which tries again."""
        def start():
            try:
                self.client(settings)
            except BackendError:
                pass  # kept in self.note; the next run tries again and reports it
        threading.Thread(target=start, name="baton-start", daemon=True).start()


manager = BackendManager()
atexit.register(manager.stop)  # Blender quits without unregistering add-ons


def on_register(backend_settings) -> None:
    """Start the engine at once when the preferences (`backend_settings()`) ask for it."""
    try:
        settings = backend_settings()
    except KeyError:  # enabled without a preferences entry (addon_utils.enable without default_set)
        return
    if settings.start_on_enable and settings.mode == "AUTO":
        manager.start_in_background(settings)


def on_unregister() -> None:
    manager.stop()
