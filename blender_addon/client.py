"""A client for Baton's service, standard library only: it runs inside Blender's own Python.

It lives in the add-on (Blender has no `backend` package) and is used by the service's tests too.
`start_backend` launches `python -m backend serve` on a free loopback port, waits for its health
check, and on failure raises with the tail of the service's log (or of its output, when it died
before it could log); `stop_backend` terminates, waits, and kills if it must. `Client` talks to a
running service with its bearer token.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from baton_core.private_files import run_folder

from .child_process import background_flags

API = "/v1"


class BackendError(Exception):
    """The service could not be started, reached, or did not do what was asked; says why."""


class ServiceLost(BackendError):
    """The service did not answer at all: not running, or gone mid-request."""


class Client:
    def __init__(self, port: int, token: str, host: str = "127.0.0.1", timeout: float = 30.0):
        self.base = f"http://{host}:{port}"
        self.token = token
        self.timeout = timeout

    @contextlib.contextmanager
    def _open(self, req: urllib.request.Request, what: str, unreachable: str = "cannot reach"):
        """The service's answer to `req` (sent with the token), its failures as a BackendError
        naming `what` was asked, or that the service `unreachable` ("cannot reach", "lost")."""
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                yield resp
        except urllib.error.HTTPError as e:
            raise BackendError(f"{what}: {e.code} {_detail(e.read())}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise ServiceLost(f"{unreachable} the Baton service at {self.base} ({getattr(e, 'reason', e)})") from None

    def _request(self, method: str, path: str, body: dict | None = None, raw: bool = False):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with self._open(req, f"{method} {path}") as resp:
            payload = resp.read()
        return payload if raw else json.loads(payload)

    def health(self) -> dict:
        return self._request("GET", f"{API}/health")

    def options(self) -> dict:
        """Every request option with its type, bounds, default and help (baton_core.request)."""
        return self._request("GET", f"{API}/options")

    def submit(self, audio_path: str | Path, **options) -> dict:
        """Queue a take; options as `python -m backend generate` (start, duration, seed, engine, …)."""
        options = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
        return self._request("POST", f"{API}/jobs", {"audio_path": str(audio_path), **options})

    def upload(self, path: str | Path) -> str:
        """Send an audio file's bytes (for a service on a machine that cannot read the path);
        returns the `audio_path` to submit."""
        path = Path(path)
        req = urllib.request.Request(f"{self.base}{API}/uploads?filename={urllib.parse.quote(path.name)}",
                                     data=path.read_bytes(), method="POST")
        req.add_header("Content-Type", "application/octet-stream")
        with self._open(req, f"upload of {path}") as resp:
            return json.loads(resp.read())["audio_path"]

    def delete_upload(self, audio_path: str | Path) -> None:
        """Remove an upload (by the `audio_path` upload() answered) from the service's quota."""
        self._request("DELETE", f"{API}/uploads/{urllib.parse.quote(Path(audio_path).name)}")

    def events(self, job_id: str):
        """The job's status each time it changes (server-sent events), until it has finished."""
        req = urllib.request.Request(f"{self.base}{API}/jobs/{job_id}/events")
        state = None
        with self._open(req, f"events of job {job_id}", unreachable="lost") as resp:
            try:
                for line in resp:  # ": heartbeat" lines keep it alive; a silent service times out
                    if line.startswith(b"data: "):
                        status = json.loads(line[6:])
                        state = status["state"]
                        yield status
            except (OSError, http.client.HTTPException) as e:
                raise ServiceLost(f"lost the Baton service at {self.base} while following job {job_id} ({e})") from None
        if state not in ("done", "failed", "cancelled"):
            raise ServiceLost(f"lost the Baton service at {self.base}: job {job_id}'s events ended while it was "
                               f"{state or 'unreported'}")

    def job(self, job_id: str) -> dict:
        return self._request("GET", f"{API}/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict:
        return self._request("DELETE", f"{API}/jobs/{job_id}")

    def take(self, job_id: str, format: str = "json"):
        """The finished take: the JSON document of baton_core/take.py as a dict, or with "npz" a
        baton_core.take.Take (compact and exact; needs numpy, which Blender's Python has)."""
        if format == "json":
            return self._request("GET", f"{API}/jobs/{job_id}/take?format=json")
        from baton_core.take import Take  # numpy from here on
        return Take.from_bytes(self._request("GET", f"{API}/jobs/{job_id}/take?format=npz", raw=True), ".npz",
                               f"take of job {job_id}")

    def wait(self, job_id: str, timeout: float = 600.0, poll: float = 0.1) -> dict:
        """Poll until the job has finished (done, failed or cancelled); returns its status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.job(job_id)
            if status["state"] in ("done", "failed", "cancelled"):
                return status
            if time.monotonic() > deadline:
                raise BackendError(f"job {job_id} still {status['state']} after {timeout:.0f} s")
            time.sleep(poll)


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail", body.decode(errors="replace"))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:300]
    return detail if isinstance(detail, str) else json.dumps(detail)[:300]


@dataclass
class Backend:
    process: subprocess.Popen
    client: Client
    log_file: Path
    token_file: Path
    run_dir: Path | None = None  # the private folder start_backend made for token and log

    def stop(self) -> int | None:
        """Stop the service and remove its run folder (token, log); returns its exit code."""
        code = stop_backend(self.process)
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return code


def log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(Path(log_file).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_backend(python: str, allow_dirs: list[str | Path], log_file: str | Path | None = None,
                  cwd: str | Path | None = None, timeout: float = 120.0, extra_args: list[str] = ()) -> Backend:
    """Launch the service with `python` (the project's venv), wait until it answers its health check.

    Its token and log go in a private run folder (`Backend.stop` removes it; folders of runs whose
    starter died are removed here). The service watches the pipe on its standard input: when this
    process closes it or dies, the service stops by itself, on every platform."""
    run_dir = run_folder("run")
    token_file = run_dir / "token"
    log_file = Path(log_file) if log_file else run_dir / "service.log"
    cmd = [python, "-m", "backend", "serve", "--port", "0", "--token-file", str(token_file), "--exit-with-parent",
           "--log-file", str(log_file), *[a for d in allow_dirs for a in ("--allow-dir", str(d))], *extra_args]
    process = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               # two malloc arenas: job and encoder threads otherwise each keep their own
                               env=os.environ | {"PYTHONUNBUFFERED": "1", "MALLOC_ARENA_MAX": "2"},
                               **background_flags())
    output: collections.deque[str] = collections.deque(maxlen=20)
    port = _read_port(process, timeout, output)
    backend = Backend(process, None, log_file, token_file, run_dir)

    def failed(what: str) -> BackendError:
        """Stop it, keep its last words, remove its run folder: the error to raise."""
        stop_backend(process)
        words = _last_words(log_file, output)
        shutil.rmtree(run_dir, ignore_errors=True)
        return BackendError(f"the Baton service {what}; {words}")

    if port is None:
        raise failed(f"did not start (exit code {process.returncode})")
    backend.client = Client(port, token_file.read_text().strip())
    deadline = time.monotonic() + timeout
    while True:
        try:
            backend.client.health()
            return backend
        except BackendError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise failed(f"on port {port} never became healthy") from None
            time.sleep(0.1)


def _last_words(log_file: Path, output: collections.deque) -> str:
    """The log's tail, or the process's own output when it has no log (it died importing, say)."""
    tail = log_tail(log_file)
    if tail.strip() in ("", "(no log)") and output:
        return "its output ends:\n" + "".join(output).rstrip()
    return f"its log ends:\n{tail}"


def _read_port(process: subprocess.Popen, timeout: float, output: collections.deque) -> int | None:
    """The port from the service's `BATON_PORT=` line, read on a thread so a hung start times out;
    the thread then keeps draining the pipe so the service can never block writing to it, keeping
    the last lines in `output`."""
    found = threading.Event()
    port: list[int] = []

    def read() -> None:
        for line in process.stdout:
            output.append(line)
            if not port and line.startswith("BATON_PORT="):
                port.append(int(line.split("=", 1)[1]))
                found.set()
        found.set()  # the service exited

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    return port[0] if port else None


def stop_backend(process: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """Close its standard input (a service started with --exit-with-parent stops cleanly on that,
    on every platform) → wait → terminate → wait → kill; returns the exit code."""
    if process.stdin is not None and not process.stdin.closed:
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            pass
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode
