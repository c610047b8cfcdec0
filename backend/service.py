"""`python -m backend serve`: the engine behind a loopback HTTP API that Blender can trust.

Safe by default — any web page can send requests to 127.0.0.1, and DNS rebinding can make a
browser call it by another name — so every request, the OpenAPI schema included, needs the bearer
token generated at start-up (compared in constant time) and a loopback Host header; there is no
CORS; audio paths must lie inside the folders the operator allowed (none: only uploads), and are
checked again when their job starts. Nothing on the event loop waits on a big input or output: job
bodies are bounded, takes are serialised on a thread, CPU-heavy work runs on job threads, so health
checks answer while a piece is conducted or a client misbehaves. Silent connections are closed, and
cancels and stops take effect at once (jobs.py).

Start-up prints `BATON_PORT=<port>` on stdout once the socket listens and the engine is ready. The
token goes to a new private file (baton_core.private_files); the token, the uploads and the log are
readable by this user alone, and a clean stop removes the token and the uploads; uploads a crashed
service left are removed by the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import logging.handlers
import os
import re
import secrets
import shutil
import socket
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from pydantic import BaseModel, ConfigDict, Field, create_model

from baton_core import __version__
from baton_core.errors import BatonError
from baton_core.private_files import check_own_file, remove_if_ours, run_folder, write_private
from baton_core.request import DEFAULT_ENGINE, ENGINES, MAX_SECONDS, OPTIONS, ConductRequest, schema
from .engines import generator_engine, loaded_checkpoints
from .jobs import DONE, FINISHED, JobManager, QueueFull

API = "/v1"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
MAX_BODY = 1 << 20  # a request (not an upload) is options and at most a list of beats: well under this
DRAIN_LIMIT = 256 << 20  # oversized bodies are read to here so the client hears why; beyond, hung up on
log = logging.getLogger("baton.service")


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:port
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: loopback Host header and bearer token on every HTTP request, bodies bounded.

    WebSockets (the API has none) and any other kind of connection are refused; only the server's
    own lifespan events pass. A request body other than an upload is read here, at most MAX_BODY
    bytes (beyond: 413, without reading the rest), so no handler ever parses a huge body."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if _host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
            return await _reject(send, 403, "the Host header must name this machine's loopback interface")
        given = headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token):
            return await _reject(send, 401, "a valid bearer token is required (see the service's token file)")
        if scope["path"] == f"{API}/uploads":
            return await self.app(scope, receive, send)
        body = await _bounded_body(receive, headers)
        if body is None:
            return await _reject(send, 413, f"a request body may hold at most {MAX_BODY} bytes")
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()  # the client's disconnect, for streaming responses
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


async def _bounded_body(receive, headers: dict) -> bytes | None:
    """The request's body, or None when it exceeds MAX_BODY. An oversized body is still read (and
    dropped) up to DRAIN_LIMIT, so its client gets the 413 rather than a reset connection; reading
    yields to the event loop between chunks, so health checks are answered meanwhile."""
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > DRAIN_LIMIT:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            break
        if not message.get("more_body"):
            break
    return b"".join(chunks) if size <= MAX_BODY else None


async def _reject(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _job_request_model() -> type[BaseModel]:
    """The job schema, made from baton_core.request's options (types, bounds, defaults, help):
    strict (true is not a seed, "yes" not a switch), finite numbers only, no unknown fields."""
    fields = {}
    for o in OPTIONS:
        kind = Literal[o.choices] if o.choices else list[float] if o.kind is tuple else o.kind
        bounds = {k: v for k, v in (("ge", o.minimum), ("le", o.maximum), ("gt", o.above)) if v is not None}
        fields[o.name] = ((kind | None) if o.default is None else kind,
                          Field(... if o.name == "audio_path" else o.default, description=o.help, **bounds))
    config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    return create_model("JobRequest", __config__=config,
                        __doc__="What to conduct: the same options as `python -m backend generate`.", **fields)


JobRequest = _job_request_model()


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """A 422 that says what is wrong with each field, never echoing what was sent."""
    problems = [{"loc": list(e.get("loc", ()))[:4], "msg": str(e.get("msg", ""))[:200], "type": e.get("type")}
                for e in exc.errors()[:10]]
    return JSONResponse({"detail": problems}, status_code=422)


def create_app(token: str, allowed_dirs: list[Path], manager, uploads: "Uploads",
               max_seconds: float = MAX_SECONDS) -> FastAPI:
    """The API; `Guard` wraps it with the token and Host checks. Uploads (readable by jobs like an
    allowed folder) are kept by `uploads`; audio longer than `max_seconds` (as its slice asks for,
    or as its header says) is refused at submission, and by the job as soon as decoding finds it."""

    @asynccontextmanager
    async def lifespan(_app):
        yield
        manager.shutdown()  # after Server.shutdown has already cancelled the jobs: returns at once
        uploads.remove_all()
        log.info("stopped")

    app = FastAPI(title="Baton", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(_about_routes(manager))
    app.include_router(_upload_routes(uploads))
    app.include_router(_job_routes(manager, [*allowed_dirs, uploads.folder], max_seconds))
    return app


def _about_routes(manager) -> APIRouter:
    """What the service is and can do: health, engines, the request's options."""
    router = APIRouter(prefix=API)

    @router.get("/health")
    async def health():
        return {"status": "ok", "version": __version__, "jobs": manager.counts()}

    @router.get("/engines")
    async def engines():
        return {"engines": list(ENGINES), "default": DEFAULT_ENGINE, "loaded_checkpoints": loaded_checkpoints()}

    @router.get("/options")
    async def options():
        """Every request option with its type, bounds, default and help (baton_core.request)."""
        return schema()

    return router


class Uploads:
    """The service's upload folder: each upload at most `max_bytes`, all of them at most `quota`
    bytes; a partial upload (the client hung up) is removed; the folder goes with the service."""

    def __init__(self, folder: Path, max_bytes: int, quota: int):
        self.folder, self.max_bytes, self.quota = folder, max_bytes, quota

    def held(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def path(self, name: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{16}(\.[A-Za-z0-9]{1,7})?", name):
            raise HTTPException(404, f"no upload {name[:40]!r}")
        return self.folder / name

    def remove_all(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


async def _discard(request: Request, limit: int) -> None:
    """Read a refused upload's body (up to `limit` bytes) without keeping it, so that a client still
    sending gets the answer: were the connection closed under it, it would see a broken pipe."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            break


def _upload_routes(uploads: Uploads) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.post("/uploads", status_code=201)
    async def upload(request: Request, filename: str = "upload"):
        """The request body is an audio file; answers the `audio_path` to submit jobs with."""
        room = uploads.quota - uploads.held()
        if room <= 0:
            await _discard(request, 8 * uploads.max_bytes)
            raise HTTPException(413, f"the uploads already hold the service's quota of {uploads.quota} bytes; "
                                     "delete some (DELETE /v1/uploads/NAME) and try again")
        limit = min(uploads.max_bytes, room)
        ext = "".join(c for c in Path(filename).suffix[1:] if c.isascii() and c.isalnum())[:8]  # ".musicxml" too
        suffix = f".{ext}" if ext else ""  # the format's hint for the decoder, nothing else of the name
        target = uploads.folder / f"{secrets.token_hex(8)}{suffix}"
        size, complete = 0, False
        try:
            with open(target, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size <= limit:
                        f.write(chunk)
                    elif size > 8 * uploads.max_bytes:
                        break  # a client this far over is not waiting for an answer: hang up
            complete = 0 < size <= limit
        finally:  # over the limit, empty, or the client hung up: nothing stays
            if not complete:
                target.unlink(missing_ok=True)
        # Over the limit: the body was read (not stored) so the client gets this answer rather
        # than a reset connection.
        if size > uploads.max_bytes:
            raise HTTPException(413, f"the upload is {size}+ bytes; the limit is {uploads.max_bytes}")
        if size > limit:
            raise HTTPException(413, f"the upload ({size}+ bytes) does not fit in what is left of the "
                                     f"service's upload quota ({room} of {uploads.quota} bytes)")
        if size == 0:
            raise HTTPException(400, "the upload is empty")
        return {"audio_path": str(target), "bytes": size}

    @router.delete("/uploads/{name}")
    async def delete_upload(name: str):
        path = uploads.path(name)
        if not path.is_file():
            raise HTTPException(404, f"no upload {name!r}")
        path.unlink()
        return {"deleted": name}

    return router


def _job_routes(manager, readable: list[Path], max_seconds: float) -> APIRouter:
    """Submitting, watching, cancelling jobs and fetching their takes; files only from `readable`."""
    router = APIRouter(prefix=API)

    def allowed(path_text: str, what: str) -> tuple[str, Callable[[], None]]:
        """(the file's real path, a check that it is still that file): run again by the job when it
        starts, so a file swapped (for a link elsewhere, say) while the job waited is refused."""
        if "\x00" in path_text:
            raise HTTPException(422, f"{what} path contains a NUL byte")
        path = Path(path_text).expanduser()
        real = Path(os.path.realpath(path))
        if not any(real == d or d in real.parents for d in readable):
            raise HTTPException(403, f"{what} {path_text!r} is outside the folders this service may read")
        try:
            st = real.stat()
        except OSError:
            st = None
        if st is None or not real.is_file():
            raise HTTPException(404, f"{what} {path_text!r}: no such file")
        identity = (st.st_dev, st.st_ino)

        def still_the_same() -> None:
            now = Path(os.path.realpath(path))
            try:
                same = now == real and (real.stat().st_dev, real.stat().st_ino) == identity
            except OSError:
                same = False
            if not same:
                raise BatonError(f"{what} {path_text!r} was replaced after the job was submitted; submit it again")

        return str(real), still_the_same

    def job_or_404(job_id: str):
        job = manager.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:64]!r}")
        return job

    @router.get("/jobs/{job_id}/events")
    async def events(job_id: str):
        """Server-sent events: the job's status whenever it changes, until it has finished."""
        return StreamingResponse(_status_events(job_or_404(job_id)), media_type="text/event-stream")

    @router.post("/jobs", status_code=202)
    def submit(request: JobRequest):
        req = request.model_dump()
        req["audio_path"], audio_check = allowed(req["audio_path"], "audio")
        seconds = req["duration"] or _header_seconds(req["audio_path"]) - (req["start"] or 0.0)
        if seconds > max_seconds:
            raise HTTPException(413, f"{seconds / 60:.1f} min of audio is longer than this service's "
                                     f"{max_seconds / 60:g} min limit; send a slice (start, duration)")
        try:  # what the schema cannot say (bar lines on given beats, options of the other engine)
            ConductRequest.from_dict(req)
        except BatonError as e:
            raise HTTPException(422, str(e)) from None
        checks = [audio_check]
        for name in ("checkpoint", "score"):  # files the job reads besides the audio: the same rules
            if req[name]:
                req[name], file_check = allowed(req[name], name)
                checks.append(file_check)
        try:
            job = manager.submit(req, check=lambda: [c() for c in checks])
        except QueueFull as e:
            raise HTTPException(429, str(e)) from None
        return job.summary()

    @router.get("/jobs/{job_id}")
    async def status(job_id: str):
        return job_or_404(job_id).summary()

    @router.delete("/jobs/{job_id}")
    async def cancel(job_id: str):
        """Cancel a queued or running job; a finished one is forgotten and its take freed."""
        job = job_or_404(job_id)
        if job.state in FINISHED:
            manager.forget(job_id)
            return job.summary() | {"forgotten": True}
        return manager.cancel(job_id).summary()

    @router.get("/jobs/{job_id}/take")
    async def take(job_id: str, format: Literal["json", "npz"] = "json"):
        job = job_or_404(job_id)
        if job.state not in FINISHED:
            raise HTTPException(409, f"job {job_id} is {job.state}; its take is not ready")
        held = job.take
        if held is None:
            if job.state == DONE:
                raise HTTPException(410, f"job {job_id}: {job.stage}")
            raise HTTPException(409, f"job {job_id} {job.state}: {job.error or job.stage}")
        media = "application/json" if format == "json" else "application/octet-stream"
        body = await run_in_threadpool(held.to_bytes, f".{format}", compress=False)  # off the event loop
        return Response(body, media_type=media)

    return router


HEARTBEAT_S = 5.0


async def _status_events(job):
    """The job's status as server-sent events, each time it changes, until it has finished: pushed,
    not polled — the job's thread wakes this stream through the event loop. A comment line every
    HEARTBEAT_S keeps the stream visibly alive, so a client can tell a quiet job from a dead service."""
    loop, changed, last = asyncio.get_running_loop(), asyncio.Event(), None

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(changed.set)
        except RuntimeError:  # the loop has closed (shutdown)
            pass

    job.watchers.append(wake)
    try:
        while True:
            changed.clear()
            now = job.summary()
            if now != last:
                yield f"data: {json.dumps(now)}\n\n"
                last = now
            if now["state"] in FINISHED:
                return
            try:
                await asyncio.wait_for(changed.wait(), timeout=HEARTBEAT_S)
            except TimeoutError:
                yield ": heartbeat\n\n"
    finally:
        job.watchers.remove(wake)


def _header_seconds(path: str) -> float:
    """The audio's length as its header states it (0 when unknown: the job's decoder will judge)."""
    import soundfile as sf
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return 0.0
    return info.duration if info.format != "MP3" else 0.0  # an MP3's header length is a guess


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _OneLine(logging.Filter):
    """Control characters in a message (a file name with a newline, say) are escaped: no request
    can forge a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _CONTROL.search(message):
            record.msg, record.args = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", message), None
        return True


class _NoFlood(logging.Filter):
    """At most BURST records of one kind (logger and message template) a minute; the rest are
    counted and the count logged with the next one let through — a storm of one error (say, out
    of descriptors) cannot rotate the log's real content away."""

    BURST, WINDOW_S = 20, 60.0

    def __init__(self):
        super().__init__()
        self.seen: dict[tuple, list] = {}  # kind → [window start, records in it, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        kind, now = (record.name, str(record.msg)), time.monotonic()
        if len(self.seen) > 1000:
            self.seen.clear()
        window = self.seen.setdefault(kind, [now, 0, 0])
        if now - window[0] > self.WINDOW_S:
            if window[2]:
                record.msg = f"{record.getMessage()} (and {window[2]} more like it in the last minute)"
                record.args = None
            self.seen[kind] = window = [now, 0, 0]
        window[1] += 1
        if window[1] > self.BURST:
            window[2] += 1
            return False
        return True


def _logging(log_file: Path | None) -> None:
    if log_file:  # appended to, never written through a link; made private if it was not
        check_own_file(log_file, "log file", private=False)
    handler = (logging.handlers.RotatingFileHandler(log_file, maxBytes=2 << 20, backupCount=3)
               if log_file else logging.StreamHandler(sys.stderr))
    if log_file and hasattr(os, "fchmod"):
        os.fchmod(handler.stream.fileno(), 0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_OneLine())
    handler.addFilter(_NoFlood())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


IDLE_S = 10.0  # a connection must send a request's headers this soon after opening or its last answer


class _Connection(H11Protocol):
    """uvicorn's HTTP/1.1 connection, which would wait for a first request forever: here one that
    has not sent a request's headers within IDLE_S is closed, and past `max_connections` the
    longest-silent connections are closed first, so idle sockets can never starve health checks
    of descriptors (a job's event stream is not silent: it has its request)."""

    max_connections = 64
    GRACE_S = 0.2  # a new connection's request is on its way: it is not shed before this

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.opened = time.monotonic()
        self.silence = self.loop.call_later(IDLE_S, self._close_if_silent)
        if len(self.connections) > self.max_connections:
            self._shed()
            self.loop.call_later(self.GRACE_S, self._shed)  # those too new to judge now

    def _shed(self) -> None:
        """Close silent connections, the longest-silent first, until at most max_connections are open."""
        excess = len(self.connections) - self.max_connections
        if excess <= 0:
            return
        now = time.monotonic()
        silent = sorted((c for c in self.connections if now - getattr(c, "opened", now) >= self.GRACE_S
                         and c.is_silent()), key=lambda c: c.opened)
        for c in silent[:excess]:
            c.timeout_keep_alive_handler()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.is_silent():
            self.silence.cancel()

    def is_silent(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _close_if_silent(self) -> None:
        if self.cycle is None:  # never sent a request (after one, uvicorn's keep-alive timer rules)
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc) -> None:
        self.silence.cancel()
        super().connection_lost(exc)


class _Server(uvicorn.Server):
    """uvicorn's server, telling its port only once it listens, and stopping the jobs before it
    waits for connections (a job's event stream ends when its job does), then removing the token."""

    def __init__(self, config: uvicorn.Config, manager: JobManager, on_ready: Callable[[], None],
                 on_stopped: Callable[[], None]):
        super().__init__(config)
        self.manager, self.on_ready, self.on_stopped = manager, on_ready, on_stopped

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self.on_ready()

    async def shutdown(self, sockets=None) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.manager.shutdown)
        try:
            await super().shutdown(sockets)
        finally:
            self.on_stopped()


def _exit_with_parent(server: _Server) -> None:
    """Stop the service when its standard input reaches its end: the parent (Blender) closed its
    end of the pipe or died. Works alike on Linux, macOS and Windows."""
    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        log.info("standard input closed (the parent has gone): stopping")
        server.should_exit = True

    threading.Thread(target=watch, name="baton-parent-watch", daemon=True).start()


def _descriptor_limit() -> int | None:
    """Raise the open-descriptor limit to what the system allows; the limit then (None: no such limit)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard if hard != resource.RLIM_INFINITY else 65536, 65536)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def _folders(given: list[Path]) -> list[Path]:
    folders = []
    for d in given:
        real = Path(os.path.realpath(d.expanduser()))
        if real.parent == real:
            raise BatonError(f"--allow-dir {d}: that is the root of a file system; name the folder the music is in")
        if not real.is_dir():
            raise BatonError(f"--allow-dir {d}: no such folder")
        folders.append(real)
    return folders


def serve(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend serve", description="Baton's local HTTP service.")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback unless you mean it)")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    p.add_argument("--token-file", type=Path, help="where to write the bearer token: a new private file "
                   "(an existing one only if it is your own, mode 0600); removed when the service stops")
    p.add_argument("--allow-dir", type=Path, action="append", default=[],
                   help="a folder whose files may be read (repeatable; none: only uploads)")
    p.add_argument("--log-file", type=Path, help="log here, private, rotated at 2 MB (default: stderr)")
    p.add_argument("--max-running", type=int, default=1, help="jobs that run at once (each uses every core)")
    p.add_argument("--max-queued", type=int, default=32, help="jobs that may wait (beyond: 429)")
    p.add_argument("--max-minutes", type=float, default=MAX_SECONDS / 60, help="longest audio (beyond: 413)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload (beyond: 413)")
    p.add_argument("--upload-quota-mb", type=float, default=1024.0, help="all uploads together (beyond: 413)")
    p.add_argument("--keep-takes-mb", type=float, default=512.0,
                   help="finished takes kept for fetching, in memory (older ones are released first)")
    p.add_argument("--max-connections", type=int, default=64,
                   help="open connections (beyond: the longest-silent ones are closed)")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when standard input closes (how the add-on's engine notices Blender is gone)")
    p.add_argument("--checkpoint", type=Path, help="load this generator before reporting ready "
                   "(default: the bundled one)")
    args = p.parse_args(argv)
    if hasattr(os, "umask"):
        os.umask(0o077)  # everything the service writes (log, uploads, token) is private
    try:
        _logging(args.log_file)
        allowed_dirs = _folders(args.allow_dir)
        if args.token_file:
            check_own_file(args.token_file, "token file")
    except BatonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    host = args.host.strip("[]")
    if host not in LOOPBACK_NAMES:
        log.warning("binding %s: the service is reachable from other machines", host)
        print(f"warning: binding {host} makes the service reachable beyond this machine", file=sys.stderr)
    try:  # the generator jobs use by default: loaded before the service reports ready
        generator_engine(args.checkpoint)
    except BatonError as e:
        if args.checkpoint:
            print(f"error: {e}", file=sys.stderr)
            return 3
        log.warning("no default generator (%s): jobs must name an engine or a checkpoint", e)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, args.port))
        sock.listen(128)
    except OSError as e:
        print(f"error: cannot listen on {args.host} port {args.port} ({e.strerror or e})", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]

    token = secrets.token_urlsafe(32)
    if args.token_file:
        try:
            write_private(args.token_file, token + "\n", "token file")
        except BatonError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    limit = _descriptor_limit()
    _Connection.max_connections = max(8, min(args.max_connections, limit // 2 if limit else args.max_connections))
    uploads = Uploads(run_folder("uploads"), int(args.max_upload_mb * 2 ** 20), int(args.upload_quota_mb * 2 ** 20))
    manager = JobManager(max_running=args.max_running, max_queued=args.max_queued,
                         keep_bytes=int(args.keep_takes_mb * 2 ** 20), max_seconds=args.max_minutes * 60)
    app = Guard(create_app(token, allowed_dirs, manager, uploads, args.max_minutes * 60), token)
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=1, http=_Connection)

    def ready() -> None:
        log.info("Baton %s serving on %s:%d (folders: %s)", __version__, host, port,
                 ", ".join(map(str, allowed_dirs)) or "none: uploads only")
        print(f"BATON_PORT={port}", flush=True)

    def stopped() -> None:
        uploads.remove_all()
        if args.token_file:
            remove_if_ours(args.token_file, token + "\n")

    server = _Server(config, manager, ready, stopped)
    if args.exit_with_parent:
        _exit_with_parent(server)
    server.run(sockets=[sock])  # returns after the shutdown (uvicorn re-raises a SIGTERM it caught)
    return 0
