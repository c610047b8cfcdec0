"""Soak: the service under the abuse a careless user and a local attacker bring, one real process.

    .venv/bin/python benchmarks/soak_service.py LABEL   # adds LABEL's run to benchmarks/soak_results.*

The load run (load_service.py) checks well-formed work; this one runs, against one service started
as the add-on starts it (its descriptor limit lowered to 256, as on a tight desktop):
300 idle connections held open, 100 oversized or malformed bodies, uploads past the quota, 50 cancels
mid-decode of a long MP3 — while a thread asks `/v1/health` every 50 ms throughout (its latency
p99 and failures are the figure) — then RSS and open descriptors before and after; then SIGTERM
mid-job in fresh services (decoding, hearing, conducting), the time each takes to stop, and the
files the service and the client left behind. Labels keep runs side by side (the code before and
after the hardening). Works against a service without the hardening's options: it asks `serve
--help` which it has.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from backend.demo_music import demo_piece  # noqa: E402
from load_service import rss_mb  # noqa: E402
from blender_addon.client import start_backend, stop_backend  # noqa: E402

FD_LIMIT = 256
IDLE, BODIES, CANCELS = 300, 100, 50
UPLOAD_MB, QUOTA_MB, UPLOADS = 4, 16, 8
TIMEOUT = 10.0  # a health check that takes longer counts as failed


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def leftovers() -> set[str]:
    """What the service and the add-on's client may leave in the temporary folder."""
    return {p.name for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("baton-")}


def long_mp3(path: Path, minutes: float) -> Path:
    p = demo_piece()
    x = np.tile(p.samples, int(np.ceil(minutes * 60 * p.sr / len(p.samples))))[: int(minutes * 60 * p.sr)]
    sf.write(path, np.stack([x, 0.9 * x], axis=1), p.sr)
    return path


def call(client, method: str, path: str, body: bytes | None = None, timeout: float = 30.0,
         content_type: str = "application/json") -> tuple[int, bytes]:
    req = urllib.request.Request(client.base + path, data=body, method=method)
    req.add_header("Authorization", f"Bearer {client.token}")
    req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return -1, str(e).encode()


class HealthWatch:
    """`/v1/health` every 50 ms on its own thread: latencies, and failures (no 200 within TIMEOUT)."""

    def __init__(self, client):
        self.client, self.latencies, self.failures = client, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            status, _ = call(self.client, "GET", "/v1/health", timeout=TIMEOUT)
            took = time.perf_counter() - t
            self.latencies.append(took if status == 200 else TIMEOUT)
            self.failures += status != 200
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        lat = np.array(self.latencies or [np.nan])
        return {"checks": len(self.latencies), "failures": self.failures,
                "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
                "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1),
                "max_ms": round(float(lat.max()) * 1000, 1)}


def idle_connections(port: int, watch: HealthWatch) -> dict:
    """IDLE sockets that connect and never speak, held for 15 s."""
    before = len(watch.latencies), watch.failures
    socks = []
    for _ in range(IDLE):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(15)
    closed_by_service = 0
    for s in socks:
        s.setblocking(False)
        try:
            closed_by_service += s.recv(1) == b""
        except (BlockingIOError, OSError):
            pass
        s.close()
    return {"opened": len(socks), "closed_by_the_service_within_15s": closed_by_service,
            "health_failures_meanwhile": watch.failures - before[1],
            "health_checks_meanwhile": len(watch.latencies) - before[0]}


def bodies(client, folder: Path) -> dict:
    """BODIES bad bodies: half oversized (20 MB of JSON), half malformed in every way JSON allows."""
    audio = str(folder / "short.flac")
    big = json.dumps({"audio_path": audio, "seed": 1, "junk": "x" * (20 << 20)}).encode()
    malformed = [b"{not json", b"[]", b"[" * 50000 + b"]" * 50000,
                 b'{"audio_path": "%s", "duration": NaN}' % audio.encode(),
                 b'{"audio_path": "%s", "start": Infinity}' % audio.encode(),
                 json.dumps({"audio_path": audio + "\x00.flac"}).encode(),
                 json.dumps({"audio_path": audio, "seed": True}).encode(),
                 json.dumps({"audio_path": audio, "smooth": "yes"}).encode(),
                 json.dumps({"audio_path": audio, "seed": "7"}).encode(),
                 json.dumps({"audio_path": ["a"]}).encode()]
    statuses, echoed, slowest = [], 0, 0.0
    for i in range(BODIES):
        body = big if i % 2 == 0 else malformed[(i // 2) % len(malformed)]
        t = time.perf_counter()
        status, answer = call(client, "POST", "/v1/jobs", body, timeout=120)
        slowest = max(slowest, time.perf_counter() - t)
        statuses.append(status)
        echoed += len(answer) > 4096
    return {"sent": BODIES, "answered_4xx": sum(400 <= s < 500 for s in statuses),
            "answered_5xx": sum(s >= 500 for s in statuses), "no_answer": sum(s < 0 for s in statuses),
            "answers_over_4kb": echoed, "slowest_answer_s": round(slowest, 2),
            "statuses": sorted(set(statuses))}


def uploads(client, folder: Path) -> dict:
    """UPLOADS uploads of UPLOAD_MB each against a QUOTA_MB quota (where the service has one)."""
    data = os.urandom(UPLOAD_MB << 20)
    statuses, paths = [], []
    for _ in range(UPLOADS):
        status, answer = call(client, "POST", "/v1/uploads?filename=a.wav", data, content_type="application/octet-stream")
        statuses.append(status)
        if status == 201:
            paths.append(json.loads(answer)["audio_path"])
    upload_dir = Path(paths[0]).parent if paths else None
    held = sum(p.stat().st_size for p in upload_dir.iterdir()) >> 20 if upload_dir else 0
    deleted = [call(client, "DELETE", f"/v1/uploads/{Path(p).name}")[0] for p in paths]
    left = sum(p.stat().st_size for p in upload_dir.iterdir()) >> 20 if upload_dir and upload_dir.exists() else 0
    return {"sent": UPLOADS, "accepted": statuses.count(201), "refused_4xx": sum(400 <= s < 500 for s in statuses),
            "held_mb": held, "deleted_ok": sum(s == 200 for s in deleted), "held_after_delete_mb": left}


def wait_state(client, job_id: str, states: tuple[str, ...], timeout: float) -> dict | None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        status = json.loads(call(client, "GET", f"/v1/jobs/{job_id}")[1])
        if status["state"] in states:
            return status
        time.sleep(0.01)
    return None


def cancels(client, mp3: Path, rng: np.random.Generator) -> dict:
    """CANCELS jobs on a long MP3, each cancelled 0–0.4 s into its decoding: the time from the
    DELETE to the job being cancelled (the worker free for the next one)."""
    took = []
    for _ in range(CANCELS):
        status, answer = call(client, "POST", "/v1/jobs", json.dumps({"audio_path": str(mp3)}).encode())
        if status != 202:
            raise SystemExit(f"cannot submit the long job: {status} {answer[:300]!r}")
        job = json.loads(answer)["id"]
        if wait_state(client, job, ("running",), 60) is None:
            raise SystemExit("the long job never started")
        time.sleep(rng.uniform(0, 0.4))
        t = time.perf_counter()
        call(client, "DELETE", f"/v1/jobs/{job}")
        done = wait_state(client, job, ("cancelled", "done", "failed"), 60)
        took.append(time.perf_counter() - t if done and done["state"] == "cancelled" else 60.0)
    a = np.array(took)
    return {"cancels": CANCELS, "p50_s": round(float(np.median(a)), 3), "p99_s": round(float(np.percentile(a, 99)), 3),
            "max_s": round(float(a.max()), 3), "within_1s": int((a <= 1.0).sum())}


def start(folder: Path, extra: list[str]):
    backend = start_backend(sys.executable, [folder], cwd=ROOT, extra_args=extra)
    resource.prlimit(backend.process.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    return backend


def stop(backend) -> None:
    """Stop as the client does: with its run folder where the client removes it (after the hardening)."""
    if hasattr(backend, "stop"):
        backend.stop()
    else:
        stop_backend(backend.process)


def sigterm(folder: Path, mp3: Path, extra: list[str], delay: float) -> float:
    """A fresh service, a long job `delay` s into its work, SIGTERM: seconds until the process exits."""
    backend = start(folder, extra)
    call(backend.client, "POST", "/v1/jobs", json.dumps({"audio_path": str(mp3)}).encode())
    time.sleep(delay)
    t = time.perf_counter()
    backend.process.send_signal(signal.SIGTERM)
    try:
        backend.process.wait(60)
    except subprocess.TimeoutExpired:
        stop(backend)
        return 60.0
    took = time.perf_counter() - t
    stop(backend)
    return took


def supported(*options: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "backend", "serve", "--help"], cwd=ROOT,
                         capture_output=True, text=True).stdout
    return [o for o in options if o.split()[0] in out]


def main(label: str) -> None:
    rng = np.random.default_rng(0)
    extra = ["--max-upload-mb", str(UPLOAD_MB)] + [a for o in supported(f"--upload-quota-mb {QUOTA_MB}")
                                                 for a in o.split()]
    before_files = leftovers()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        p = demo_piece()
        sf.write(folder / "short.flac", p.samples, p.sr)
        mp3 = long_mp3(folder / "long.mp3", 20)
        backend = start(folder, extra)
        client = backend.client
        try:
            call(client, "POST", "/v1/jobs", json.dumps({"audio_path": str(folder / "short.flac")}).encode())
            time.sleep(8)  # the warm-up job: every path once before memory is measured
            rss0, fds0 = rss_mb(backend.process.pid), open_fds(backend.process.pid)
            with HealthWatch(client) as watch:
                idle = idle_connections(int(client.base.rsplit(":", 1)[1]), watch)
                bad = bodies(client, folder)
                up = uploads(client, folder)
                cancel = cancels(client, mp3, rng)
                time.sleep(2)
            health = watch.summary()
            time.sleep(6)  # keep-alive and idle timers run out
            rss1, fds1 = rss_mb(backend.process.pid), open_fds(backend.process.pid)
            healthy = call(client, "GET", "/v1/health")[0] == 200
        finally:
            stop(backend)
        stops = [round(sigterm(folder, mp3, extra, delay), 3) for delay in (0.2, 2.0, 6.0)]
    time.sleep(1)
    left = sorted(leftovers() - before_files)
    result = {"date": time.strftime("%Y-%m-%d"), "health": health, "healthy_after": healthy,
              "rss_mb": [round(rss0, 1), round(rss1, 1)], "open_fds": [fds0, fds1], "idle_connections": idle,
              "bad_bodies": bad, "uploads": up, "cancel_mid_decode": cancel, "sigterm_stop_s": stops,
              "files_left": left}
    path = HERE / "soak_results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[label] = result
    path.write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results)
    print(json.dumps(result, indent=2))


def write_markdown(results: dict) -> None:
    labels = list(results)
    rows = [("health p99 / max during the soak (ms)", lambda r: f"{r['health']['p99_ms']} / {r['health']['max_ms']}", "p99 ≤ 100"),
            ("health checks failed", lambda r: f"{r['health']['failures']} of {r['health']['checks']}", "0"),
            ("idle connections: opened / closed by the service within 15 s",
             lambda r: f"{r['idle_connections']['opened']} / {r['idle_connections']['closed_by_the_service_within_15s']}", "—"),
            ("health failures while they were held", lambda r: str(r["idle_connections"]["health_failures_meanwhile"]), "0"),
            ("bad bodies: 4xx / 5xx / no answer", lambda r: "{answered_4xx} / {answered_5xx} / {no_answer}".format(**r["bad_bodies"]), "all 4xx"),
            ("bad bodies: answers over 4 KB (the body echoed)", lambda r: str(r["bad_bodies"]["answers_over_4kb"]), "0"),
            ("bad bodies: slowest answer (s)", lambda r: str(r["bad_bodies"]["slowest_answer_s"]), "—"),
            (f"uploads of {UPLOAD_MB} MB against a {QUOTA_MB} MB quota: accepted / refused",
             lambda r: f"{r['uploads']['accepted']} / {r['uploads']['refused_4xx']}", "refused past the quota"),
            ("uploads: MB held, then after deleting them", lambda r: f"{r['uploads']['held_mb']} → {r['uploads']['held_after_delete_mb']}", "→ 0"),
            ("cancel mid-decode: p50 / p99 / max (s)",
             lambda r: "{p50_s} / {p99_s} / {max_s}".format(**r["cancel_mid_decode"]), "≤ 1"),
            ("SIGTERM mid-job → exit (s), at 0.2 / 2 / 6 s into the job", lambda r: " / ".join(map(str, r["sigterm_stop_s"])), "≤ 2"),
            ("RSS before → after (MB)", lambda r: "{} → {}".format(*r["rss_mb"]), "within 50 MB"),
            ("open descriptors before → after", lambda r: "{} → {}".format(*r["open_fds"]), "same"),
            ("files left in the temporary folder after a clean stop", lambda r: str(len(r["files_left"])), "0")]
    runs = ", ".join(f"{k} on {results[k]['date']}" for k in labels)
    lines = ["# Service soak results", "",
             f"Written by `benchmarks/soak_service.py` (runs: {runs}): "
             f"one real service, its descriptor limit {FD_LIMIT}, health asked every 50 ms throughout.", "",
             "| measure | " + " | ".join(labels) + " | goal |", "|---|" + "---|" * len(labels) + "---|"]
    for name, cell, goal in rows:
        lines.append(f"| {name} | " + " | ".join(cell(results[k]) for k in labels) + f" | {goal} |")
    (HERE / "soak_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "run")
