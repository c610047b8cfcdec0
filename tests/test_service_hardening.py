"""The service against a careless user and a local attacker: real service processes on 127.0.0.1,
bounded loops. Each test is one way the service used to lose a file, a descriptor, memory, time or
its health."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from baton_core.private_files import pid_alive
from blender_addon.client import BackendError, start_backend
from conftest import ROOT

SERVE = [sys.executable, "-m", "backend", "serve", "--port", "0"]


@pytest.fixture(scope="module")
def folder(demo_files):
    return demo_files["ogg"].parent


@pytest.fixture(scope="module")
def long_flac(folder, demo):
    """Ten minutes of music: seconds of decoding and hearing before the first progress report."""
    path = folder / "ten_minutes.flac"
    if not path.exists():
        reps = int(np.ceil(600 * demo.sr / len(demo.samples)))
        sf.write(path, np.tile(demo.samples, reps)[: 600 * demo.sr], demo.sr)
    return path


@pytest.fixture(scope="module")
def tight(folder):
    """A service with small limits: uploads of 2 MB within a 3 MB quota, 30 s of music, takes kept
    within 0.1 MB, 16 connections."""
    b = start_backend(sys.executable, [folder], cwd=ROOT, extra_args=[
        "--max-upload-mb", "2", "--upload-quota-mb", "3", "--max-minutes", "0.5", "--keep-takes-mb", "0.1",
        "--max-connections", "16"])
    yield b
    b.stop()


def _call(b, method, path, body=None, headers=None, timeout=30):
    req = urllib.request.Request(b.client.base + path, data=body, method=method,
                                 headers={"Authorization": f"Bearer {b.client.token}",
                                          "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _serve(*args):
    """`backend serve` as a bare process, its output on a pipe."""
    return subprocess.Popen([*SERVE, *map(str, args)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


# -- files: the token, the log, run folders ------------------------------------------------------

def test_a_planted_link_or_a_foreign_file_is_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the victim's own words\n")
    link = tmp_path / "token"
    link.symlink_to(victim)
    out = subprocess.run([*SERVE, "--token-file", link], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "symbolic link" in out.stderr and "Traceback" not in out.stderr
    assert victim.read_text() == "the victim's own words\n"
    shared = tmp_path / "shared-token"
    shared.write_text("x")
    shared.chmod(0o644)
    out = subprocess.run([*SERVE, "--token-file", shared], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "readable by others" in out.stderr and shared.read_text() == "x"


def test_the_token_is_a_new_private_file_removed_at_a_clean_stop(folder, tmp_path):
    token = tmp_path / "token"
    token.write_text("an old token\n")
    token.chmod(0o600)
    inode = token.stat().st_ino
    b = start_backend(sys.executable, [folder], cwd=ROOT)
    p = _serve("--token-file", token, "--exit-with-parent", "--log-file", tmp_path / "log")
    try:
        assert p.stdout.readline().startswith("BATON_PORT=")
        assert token.stat().st_ino != inode and token.stat().st_mode & 0o777 == 0o600  # replaced, not rewritten
        assert token.read_text() != "an old token\n"
        assert (tmp_path / "log").stat().st_mode & 0o777 == 0o600
        assert b.run_dir.stat().st_mode & 0o777 == 0o700 and b.log_file.stat().st_mode & 0o777 == 0o600
    finally:
        p.stdin.close()
        assert p.wait(30) == 0
        assert b.stop() == 0
    assert not token.exists() and not b.run_dir.exists()


def test_folders_a_crashed_run_left_are_removed_by_the_next_start(folder):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = Path(tempfile.gettempdir())
    stale = [tmp / f"baton-run-{dead.pid}-crashed", tmp / f"baton-uploads-{dead.pid}-crashed"]
    live = tmp / f"baton-run-{os.getpid()}-alive"
    for d in (*stale, live):
        d.mkdir(exist_ok=True)
        (d / "token").write_text("x")
    assert not pid_alive(dead.pid)
    b = start_backend(sys.executable, [folder], cwd=ROOT)
    try:
        assert not any(d.exists() for d in stale) and live.exists()
    finally:
        b.stop()
        (live / "token").unlink()
        live.rmdir()


def test_without_a_folder_only_uploads_are_read_and_a_root_is_refused(demo_files):
    out = subprocess.run([*SERVE, "--allow-dir", "/"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "root of a file system" in out.stderr
    b = start_backend(sys.executable, [], cwd="/")
    try:
        assert "folders: none: uploads only" in b.log_file.read_text()
        with pytest.raises(BackendError, match="403"):
            b.client.submit(demo_files["ogg"])
        path = b.client.upload(demo_files["ogg"])
        assert b.client.wait(b.client.submit(path, duration=5)["id"])["state"] == "done"
    finally:
        b.stop()


# -- life: stopping, cancelling, the parent's death ----------------------------------------------

def test_cancel_takes_effect_within_a_second_at_any_stage_and_a_dead_service_ends_the_stream(folder, long_flac):
    b = start_backend(sys.executable, [folder], cwd=ROOT)
    try:
        t = time.perf_counter()  # the stages are cancelled at shares of a whole job, however fast the machine
        assert b.client.wait(b.client.submit(long_flac, engine="rules")["id"])["state"] == "done"
        whole = time.perf_counter() - t
        for delay in (0.0, 0.1 * whole, 0.35 * whole, 0.7 * whole):
            for _ in range(6):
                job = b.client.submit(long_flac, engine="rules")
                deadline = time.monotonic() + 30
                while b.client.job(job["id"])["state"] != "running" and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(delay)
                t = time.perf_counter()
                if not b.client.cancel(job["id"]).get("forgotten"):
                    break
                delay /= 2  # it finished first (a warm job outruns the timed cold one): cancel it sooner
            else:
                pytest.fail("every job finished before its cancel arrived")
            while b.client.job(job["id"])["state"] == "running":
                time.sleep(0.01)
            took = time.perf_counter() - t
            assert b.client.job(job["id"])["state"] == "cancelled" and took < 1.0, (delay, took)
        assert b.client.wait(b.client.submit(long_flac, duration=5)["id"])["state"] == "done"  # the worker is free
        events = b.client.events(b.client.submit(long_flac, engine="rules")["id"])
        next(events)
        b.process.kill()
        with pytest.raises(BackendError, match="lost the Baton service"):  # never a silent end
            list(events)
    finally:
        b.stop()


def test_sigterm_mid_job_stops_within_two_seconds_and_leaves_no_files(folder, long_flac, tmp_path):
    b = start_backend(sys.executable, [folder], cwd=ROOT)
    upload = Path(b.client.upload(folder / "demo.ogg"))
    job = b.client.submit(long_flac, engine="rules")
    events = b.client.events(job["id"])
    next(events)
    time.sleep(0.5)
    t = time.perf_counter()
    b.process.send_signal(signal.SIGTERM)
    assert [e["state"] for e in events][-1] == "cancelled"  # its follower hears why it ended
    assert b.process.wait(10) in (0, -15)
    assert time.perf_counter() - t < 2.0
    assert not upload.parent.exists() and not b.token_file.exists()
    b.stop()
    assert not b.run_dir.exists()


def test_the_engine_stops_within_five_seconds_of_its_parents_death(folder, tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from blender_addon.client import start_backend
        b = start_backend(sys.executable, [{str(folder)!r}], cwd={str(ROOT)!r})
        print(b.process.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    engine = int(parent.stdout.readline())
    parent.kill()  # as Blender dies: no clean-up of any kind
    parent.wait()
    deadline = time.monotonic() + 5
    while pid_alive(engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = pid_alive(engine)
    if alive:
        os.kill(engine, signal.SIGKILL)
    assert not alive


def test_the_port_is_told_only_once_it_listens_and_a_bracketed_host_works(tmp_path):
    p = _serve("--host", "[::1]", "--exit-with-parent", "--log-file", tmp_path / "log")
    first = p.stdout.readline()
    if first.startswith("BATON_PORT="):
        with socket.create_connection(("::1", int(first.split("=")[1])), timeout=5):
            pass  # no retry: the socket listens when the port is told
    else:  # no IPv6 on this machine: a clear error, not a traceback
        rest = first + p.stdout.read()
        assert p.wait(30) == 2 and "cannot listen on [::1]" in rest and "Traceback" not in rest
    p.stdin.close()
    p.wait(30)
    p = _serve("--exit-with-parent", "--log-file", tmp_path / "log4")
    port = int(p.stdout.readline().split("=")[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    p.stdin.close()
    assert p.wait(30) == 0


# -- limits that limit ----------------------------------------------------------------------------

def test_the_length_limit_holds_for_formats_whose_header_does_not_say(tight, folder, demo):
    mp3 = folder / "two_minutes.mp3"
    sf.write(mp3, np.tile(demo.samples, 4)[: 120 * demo.sr], demo.sr)
    status = tight.client.wait(tight.client.submit(mp3, engine="rules")["id"])
    assert status["state"] == "failed" and "longer than the 0.5 min limit" in status["error"]


def test_a_tiny_checkpoint_asking_for_a_huge_network_is_refused_before_it_is_built(tight, folder):
    import torch
    from backend.checkpoint import FORMAT, FORMAT_VERSION, content_sha256
    from backend.model import GeneratorConfig
    config = GeneratorConfig().to_dict() | {"decoder_channels": 4096}  # the most its bounds allow: ~1 GB built
    state = {"decoder.out.weight": torch.zeros(2, 2)}
    path = folder / "huge.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "config": config, "state_dict": state,
                "sha256": content_sha256(config, state), "meta": {}}, path)
    assert path.stat().st_size < 4096
    before = _rss_mb(tight.process.pid)
    status = tight.client.wait(tight.client.submit(folder / "demo.ogg", duration=5, checkpoint=path)["id"])
    assert status["state"] == "failed" and "do not fit the architecture" in status["error"]
    assert _rss_mb(tight.process.pid) - before < 100


def _rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_takes_are_kept_within_their_byte_budget_and_deleting_a_job_frees_it(tight, folder):
    first = tight.client.submit(folder / "demo.ogg", duration=20, engine="rules")
    tight.client.wait(first["id"])
    second = tight.client.submit(folder / "demo.ogg", duration=20, engine="rules", seed=2)
    tight.client.wait(second["id"])
    assert _call(tight, "GET", f"/v1/jobs/{first['id']}/take")[0] == 410  # released: over 0.1 MB together
    assert _call(tight, "GET", f"/v1/jobs/{second['id']}/take?format=npz")[0] == 200  # the newest stays
    held = tight.client.health()["jobs"]["take_bytes"]
    assert 0 < held and tight.client.cancel(second["id"])["forgotten"]
    assert _call(tight, "GET", f"/v1/jobs/{second['id']}")[0] == 404
    assert tight.client.health()["jobs"]["take_bytes"] == 0


def test_uploads_have_a_quota_a_delete_and_no_partial_leftovers(tight, tmp_path):
    blob = tmp_path / "blob.wav"
    blob.write_bytes(os.urandom(3 << 19))  # 1.5 MB
    paths = [tight.client.upload(blob), tight.client.upload(blob)]
    with pytest.raises(BackendError, match="413.*quota"):
        tight.client.upload(blob)
    upload_dir = Path(paths[0]).parent
    tight.client.delete_upload(paths[0])
    assert not Path(paths[0]).exists()
    paths[0] = tight.client.upload(blob)
    for path in paths:
        tight.client.delete_upload(path)
    port = int(tight.client.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:  # a client that hangs up mid-upload
        s.sendall(f"POST /v1/uploads?filename=a.wav HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                  f"{tight.client.token}\r\nContent-Length: {1 << 20}\r\n\r\n".encode() + bytes(100_000))
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while list(upload_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(upload_dir.iterdir()) == []


@pytest.mark.parametrize("body, why", [
    (b'{"audio_path": "a.ogg", "duration": NaN}', "finite"),
    (b'{"audio_path": "a.ogg", "start": Infinity}', "finite"),
    (b'{"audio_path": "a\\u0000.ogg"}', "NUL"),
    (b'{"audio_path": "a.ogg", "seed": true}', "integer"),
    (b'{"audio_path": "a.ogg", "smooth": "yes"}', "boolean"),
    (b'{"audio_path": "a.ogg", "seed": "7"}', "integer"),
])
def test_bad_values_are_a_4xx_that_says_which(tight, body, why):
    status, answer = _call(tight, "POST", "/v1/jobs", body)
    assert status == 422 and why.lower() in answer.decode().lower()
    assert tight.client.health()["status"] == "ok"


def test_a_huge_body_is_refused_without_echo_while_health_answers(tight):
    body = json.dumps({"audio_path": "a.ogg", "junk": "x" * (100 << 20)}).encode()
    t = time.perf_counter()
    status, answer = _call(tight, "POST", "/v1/jobs", body, timeout=60)
    assert status == 413 and len(answer) < 1000 and time.perf_counter() - t < 10
    wrong = json.dumps({"audio_path": "a.ogg", "seed": "y" * 100_000}).encode()
    status, answer = _call(tight, "POST", "/v1/jobs", wrong)
    assert status == 422 and len(answer) < 4096  # says what is wrong, does not send it back


def test_silent_connections_are_closed_and_never_starve_health(tight):
    port = int(tight.client.base.rsplit(":", 1)[1])
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]  # beyond its 16
    try:
        for _ in range(5):
            assert tight.client.health()["status"] == "ok"
        time.sleep(11)  # past the 10 s a connection may stay silent
        closed = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == len(socks)
    finally:
        for s in socks:
            s.close()


def test_a_websocket_or_other_scope_is_refused(tight):
    port = int(tight.client.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        answer = s.recv(200)
    assert b" 101 " not in answer.split(b"\r\n")[0]


# -- what a job reads and what the log says -------------------------------------------------------

def test_a_file_swapped_for_a_link_after_submission_is_not_read(folder, long_flac, tmp_path):
    b = start_backend(sys.executable, [folder], cwd=ROOT)
    try:
        ahead = b.client.submit(long_flac, engine="rules")  # the next job waits behind it
        target = folder / "swapped.ogg"
        target.write_bytes((folder / "demo.ogg").read_bytes())
        job = b.client.submit(target, duration=5)
        secret = tmp_path / "secret.ogg"  # outside the allowed folders
        secret.write_bytes((folder / "demo.ogg").read_bytes())
        target.unlink()
        target.symlink_to(secret)
        b.client.cancel(ahead["id"])
        status = b.client.wait(job["id"])
        assert status["state"] == "failed" and "was replaced after the job was submitted" in status["error"]
    finally:
        b.stop()
        target.unlink(missing_ok=True)


def test_a_file_name_cannot_forge_a_log_line(tight, folder):
    name = folder / "a\nFORGED fake entry.ogg"
    name.write_bytes(b"not audio at all" * 100)
    status = tight.client.wait(tight.client.submit(name)["id"])
    assert status["state"] == "failed"
    assert not any(line.startswith("FORGED") for line in tight.log_file.read_text().splitlines())
    assert "\\x0aFORGED" in tight.log_file.read_text()


def test_a_job_whose_worker_fails_outside_the_engine_is_failed_not_running(folder):
    from backend.jobs import JobManager

    def broken_check():
        raise RuntimeError("a bug outside the engine")

    manager = JobManager()
    job = manager.submit({"audio_path": str(folder / "demo.ogg"), "duration": 5.0}, check=broken_check)
    assert manager.wait_idle(10) and job.state == "failed" and "RuntimeError" in job.error
    manager.shutdown()


def test_a_storm_of_one_message_cannot_flood_the_log():
    import logging
    from backend.service import _NoFlood
    flood = _NoFlood()
    records = [logging.LogRecord("asyncio", logging.ERROR, "", 0, "socket.accept() out of system resource",
                                 None, None) for _ in range(500)]
    assert sum(flood.filter(r) for r in records) == _NoFlood.BURST
    other = logging.LogRecord("baton.jobs", logging.INFO, "", 0, "job %s done", ("x",), None)
    assert flood.filter(other)
