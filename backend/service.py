"""`python -m backend serve`: the engine behind a loopback HTTP API that Blender can trust.

Safe by default — any web page can send requests to 127.0.0.1, and DNS rebinding can make a
browser call it by another name — so every request, the OpenAPI schema included, needs the bearer
token generated at start-up (compared in constant time) and a loopback Host header; there is no
CORS; audio paths must lie inside the folders the operator allowed. CPU-heavy work runs on a job
thread, so health checks answer while a piece is being conducted.

Start-up prints `BATON_PORT=<port>` on stdout once the socket is bound and the engine is ready, and
writes the token to the token file with mode 0600.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import logging.handlers
import os
import secrets
import shutil
import socket
import sys
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from baton_core import __version__
from baton_core.errors import BatonError
from baton_core.request import DEFAULT_ENGINE, ENGINES, MAX_SECONDS, OPTIONS, schema
from .engines import generator_engine, loaded_checkpoints
from .jobs import FINISHED, JobManager, QueueFull

API = "/v1"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
log = logging.getLogger("baton.service")


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:port
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: loopback Host header and bearer token on every HTTP request."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if _host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
            return await _reject(send, 403, "the Host header must name this machine's loopback interface")
        given = headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token):
            return await _reject(send, 401, "a valid bearer token is required (see the service's token file)")
        return await self.app(scope, receive, send)


async def _reject(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _job_request_model() -> type[BaseModel]:
    """The job schema, made from baton_core.request's options (types, bounds, defaults, help)."""
    fields = {}
    for o in OPTIONS:
        kind = Literal[o.choices] if o.choices else o.kind
        bounds = {k: v for k, v in (("ge", o.minimum), ("le", o.maximum), ("gt", o.above)) if v is not None}
        fields[o.name] = ((kind | None) if o.default is None else kind,
                          Field(... if o.name == "audio_path" else o.default, description=o.help, **bounds))
    return create_model("JobRequest", __config__=ConfigDict(extra="forbid"),
                        __doc__="What to conduct: the same options as `python -m backend generate`.", **fields)


JobRequest = _job_request_model()


def create_app(token: str, allowed_dirs: list[Path], manager, upload_dir: Path, max_upload: int,
               max_seconds: float = MAX_SECONDS) -> FastAPI:
    """The API; `Guard` wraps it with the token and Host checks. Uploads land in `upload_dir`
    (readable by jobs like an allowed folder), at most `max_upload` bytes each; audio longer than
    `max_seconds` (as its slice asks for, or as its header says) is refused at submission."""

    @asynccontextmanager
    async def lifespan(_app):
        yield
        manager.shutdown()  # SIGTERM: cancel queued and running jobs, wait for the worker to stop
        shutil.rmtree(upload_dir, ignore_errors=True)
        log.info("stopped")

    app = FastAPI(title="Baton", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.include_router(_about_routes(manager))
    app.include_router(_upload_routes(upload_dir, max_upload))
    app.include_router(_job_routes(manager, [*allowed_dirs, upload_dir], max_seconds))
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


def _upload_routes(upload_dir: Path, max_upload: int) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.post("/uploads", status_code=201)
    async def upload(request: Request, filename: str = "upload"):
        """The request body is an audio file; answers the `audio_path` to submit jobs with."""
        suffix = "".join(c for c in Path(filename).suffix if c.isalnum() or c == ".")[:8]
        target = upload_dir / f"{secrets.token_hex(8)}{suffix}"
        size = 0
        with open(target, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size <= max_upload:
                    f.write(chunk)
                elif size > 8 * max_upload:
                    break  # a client this far over is not waiting for an answer: hang up
        # Over the limit: the body was read (not stored) so the client gets this answer rather
        # than a reset connection.
        if size > max_upload:
            target.unlink()
            raise HTTPException(413, f"the upload is {size}+ bytes; the limit is {max_upload}")
        if size == 0:
            target.unlink()
            raise HTTPException(400, "the upload is empty")
        return {"audio_path": str(target), "bytes": size}

    return router


def _job_routes(manager, readable: list[Path], max_seconds: float) -> APIRouter:
    """Submitting, watching, cancelling jobs and fetching their takes; files only from `readable`."""
    router = APIRouter(prefix=API)

    def allowed(path_text: str, what: str) -> str:
        path = Path(path_text).expanduser()
        real = Path(os.path.realpath(path))
        if not any(real == d or d in real.parents for d in readable):
            raise HTTPException(403, f"{what} {path_text!r} is outside the folders this service may read")
        if not real.is_file():
            raise HTTPException(404, f"{what} {path_text!r}: no such file")
        return str(real)

    def job_or_404(job_id: str):
        job = manager.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    @router.get("/jobs/{job_id}/events")
    async def events(job_id: str):
        """Server-sent events: the job's status whenever it changes, until it has finished."""
        return StreamingResponse(_status_events(job_or_404(job_id)), media_type="text/event-stream")

    @router.post("/jobs", status_code=202)
    def submit(request: JobRequest):
        req = request.model_dump()
        req["audio_path"] = allowed(req["audio_path"], "audio")
        seconds = req["duration"] or _header_seconds(req["audio_path"]) - (req["start"] or 0.0)
        if seconds > max_seconds:
            raise HTTPException(413, f"{seconds / 60:.1f} min of audio is longer than this service's "
                                     f"{max_seconds / 60:g} min limit; send a slice (start, duration)")
        if req["checkpoint"]:
            req["checkpoint"] = allowed(req["checkpoint"], "checkpoint")
        try:
            job = manager.submit(req)
        except QueueFull as e:
            raise HTTPException(429, str(e)) from None
        return job.summary()

    @router.get("/jobs/{job_id}")
    async def status(job_id: str):
        return job_or_404(job_id).summary()

    @router.delete("/jobs/{job_id}")
    async def cancel(job_id: str):
        job_or_404(job_id)
        return manager.cancel(job_id).summary()

    @router.get("/jobs/{job_id}/take")
    async def take(job_id: str, format: Literal["json", "npz"] = "json"):
        job = job_or_404(job_id)
        if job.state not in FINISHED:
            raise HTTPException(409, f"job {job_id} is {job.state}; its take is not ready")
        if job.take is None:
            raise HTTPException(409, f"job {job_id} {job.state}: {job.error or job.stage}")
        media = "application/json" if format == "json" else "application/octet-stream"
        return Response(job.take.to_bytes(f".{format}", compress=False), media_type=media)

    return router


async def _status_events(job):
    """The job's status as server-sent events, each time it changes, until it has finished: pushed,
    not polled — the job's thread wakes this stream through the event loop."""
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
                await asyncio.wait_for(changed.wait(), timeout=1.0)
            except TimeoutError:
                pass
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


def _logging(log_file: Path | None) -> None:
    handler = (logging.handlers.RotatingFileHandler(log_file, maxBytes=2 << 20, backupCount=3)
               if log_file else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def serve(argv: list[str] | None = None) -> int:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m backend serve", description="Baton's local HTTP service.")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback unless you mean it)")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    p.add_argument("--token-file", type=Path, help="where to write the bearer token (mode 0600)")
    p.add_argument("--allow-dir", type=Path, action="append", default=[],
                   help="a folder whose files may be read (repeatable; default: the current folder)")
    p.add_argument("--log-file", type=Path, help="log here, rotated at 2 MB (default: stderr)")
    p.add_argument("--max-running", type=int, default=1, help="jobs that run at once (each uses every core)")
    p.add_argument("--max-queued", type=int, default=32, help="jobs that may wait (beyond: 429)")
    p.add_argument("--max-minutes", type=float, default=MAX_SECONDS / 60, help="longest audio (beyond: 413)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload (beyond: 413)")
    p.add_argument("--checkpoint", type=Path, help="load this generator before reporting ready "
                   "(default: the bundled one)")
    args = p.parse_args(argv)

    _logging(args.log_file)
    if args.host not in LOOPBACK_NAMES:
        log.warning("binding %s: the service is reachable from other machines", args.host)
        print(f"warning: binding {args.host} makes the service reachable beyond this machine", file=sys.stderr)
    token = secrets.token_urlsafe(32)
    if args.token_file:
        fd = os.open(args.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.chmod(args.token_file, 0o600)
    allowed_dirs = [Path(os.path.realpath(d)) for d in (args.allow_dir or [Path.cwd()])]
    try:  # the generator jobs use by default: loaded before the service reports ready
        generator_engine(args.checkpoint)
    except BatonError as e:
        if args.checkpoint:
            print(f"error: {e}", file=sys.stderr)
            return 3
        log.warning("no default generator (%s): jobs must name an engine or a checkpoint", e)
    upload_dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="baton-uploads-")))
    manager = JobManager(max_running=args.max_running, max_queued=args.max_queued)
    app = Guard(create_app(token, allowed_dirs, manager, upload_dir, int(args.max_upload_mb * 2 ** 20),
                           args.max_minutes * 60), token)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    log.info("Baton %s serving on %s:%d (folders: %s)", __version__, args.host, port,
             ", ".join(map(str, allowed_dirs)))
    print(f"BATON_PORT={port}", flush=True)
    server.run(sockets=[sock])  # returns after the lifespan's shutdown (uvicorn re-raises SIGTERM)
    return 0
