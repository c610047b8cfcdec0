"""Load on the local service: 20 concurrent 30 s jobs with 200 malformed requests interleaved.

    .venv/bin/python benchmarks/load_service.py [m2sgan|rules] [N_BAD]   # writes benchmarks/load_results_<engine>.*

Checks (issue 5): every good job finishes with the take the engine makes in-process for the same
request; every bad request gets its 4xx; the service stays healthy; its memory after the run is
within 50 MB of before. Reports p50/p95 job latency (submit → done) and the throughput; then the
service's overhead for the same work (goal ≤ 10%): the 20 jobs alone through a fresh service process
(takes fetched as NPZ) against the CLI's own work for the same 20 requests in a fresh Python process
— conduct, then write the take file, as `generate -o take.npz` does; start-up and model load left
out — rounds interleaved, medians compared; conducting alone in those processes (no file written)
is reported beside it. Fresh processes on both sides, because a process keeps its own speed for its
whole life (five fresh processes took 1.11 to 1.37 s for the same 20 requests), so comparing one
long-lived pair reads that spread as overhead. One CLI run with its start-up is reported for scale.
The jobs run the default engine (the shipped generator), or the rule-based one with `rules`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from backend.demo_music import demo_piece  # noqa: E402
from backend.engine import generate_take  # noqa: E402
from baton_core.request import ConductRequest  # noqa: E402
from blender_addon.client import BackendError, start_backend, stop_backend  # noqa: E402

GOOD, BAD = 20, int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 200
ENGINE = sys.argv[1] if len(sys.argv) > 1 else "m2sgan"  # or "rules"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bad_requests(client, folder: Path) -> list[tuple[str, str, bytes | None, int]]:
    """(method, path, body, expected status) — malformed in every way the API can see."""
    cases = [("POST", "/v1/jobs", b"{not json", 422), ("POST", "/v1/jobs", b"[]", 422),
             ("POST", "/v1/jobs", json.dumps({"audio_path": "/etc/hostname"}).encode(), 403),
             ("POST", "/v1/jobs", json.dumps({"audio_path": str(folder / "nope.wav")}).encode(), 404),
             ("POST", "/v1/jobs", json.dumps({"audio_path": str(folder / "p0.flac"), "seed": -3}).encode(), 422),
             ("GET", "/v1/jobs/does-not-exist", None, 404), ("DELETE", "/v1/jobs/does-not-exist", None, 404),
             ("GET", "/v1/jobs/does-not-exist/take", None, 404)]
    return [cases[i % len(cases)] for i in range(BAD)]


def send(client, method: str, path: str, body: bytes | None, token: str | None = None) -> int:
    req = urllib.request.Request(client.base + path, data=body, method=method)
    req.add_header("Authorization", f"Bearer {token or client.token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


ROUNDS = 5


def write_requests(folder: Path) -> list[dict]:
    """20 requests for 30 s slices of four files (the demo piece rotated), different seeds."""
    piece = demo_piece()
    requests = []
    for i in range(GOOD):
        path = folder / f"p{i % 4}.flac"
        if not path.exists():
            sf.write(path, np.roll(piece.samples, i * 9000), piece.sr)
        requests.append({"audio_path": str(path), "start": float(i % 4), "duration": 30.0, "seed": i,
                         "engine": ENGINE})
    return requests


def reference_round(folder: Path) -> tuple[float, float]:
    """The 20 requests as the CLI works them, in a fresh Python process after one warm-up call
    (its start-up and model load left out): (their wall time conducting and writing each take file,
    as `generate -o take.npz` does; the same conducting alone)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), ENGINE, "--reference", str(folder)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    cli_work, conduct_only = map(float, out.split()[-2:])
    return cli_work, conduct_only


def _reference(folder: Path) -> None:
    requests = write_requests(folder)
    generate_take(ConductRequest.from_dict(requests[0]))
    t = time.perf_counter()
    for i, r in enumerate(requests):  # what `generate -o take.npz` does after its start-up
        generate_take(ConductRequest.from_dict(r)).save(folder / f"cli-{i}.npz")
    cli_work = time.perf_counter() - t
    t = time.perf_counter()
    for r in requests:
        generate_take(ConductRequest.from_dict(r))
    print(cli_work, time.perf_counter() - t)


def finish(client, req: dict) -> tuple[float, dict, dict]:
    """Submit, follow the job's pushed events to its end, fetch its take as NPZ."""
    t0 = time.perf_counter()
    job = client.submit(**req)
    status = list(client.events(job["id"]))[-1]  # pushed by the service, no polling
    take = client.take(job["id"], "npz") if status["state"] == "done" else None
    return time.perf_counter() - t0, status, take


def service_round(folder: Path, requests: list[dict]) -> float:
    """The 20 jobs alone through a fresh service (submitted at once, takes fetched): their wall
    time, after the same warm-up as the reference."""
    backend = start_backend(sys.executable, [folder], cwd=ROOT)
    try:
        finish(backend.client, requests[0])
        t = time.perf_counter()
        with ThreadPoolExecutor(GOOD) as pool:
            assert all(r[1]["state"] == "done" for r in pool.map(lambda r: finish(backend.client, r), requests))
        return time.perf_counter() - t
    finally:
        stop_backend(backend.process)


def cli_times(request: dict) -> dict:
    """One request through the CLI in a fresh process: its wall time and the time it reports."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "backend", "generate", request["audio_path"], "-o", str(Path(d) / "t.npz"),
               "--start", str(request["start"]), "--duration", str(request["duration"]), "--seed", str(request["seed"]),
               "--engine", request["engine"], "--json"]
        t = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        wall = time.perf_counter() - t
    return {"wall_s": round(wall, 3), "reported_s": json.loads(out)["seconds"]}


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        requests = write_requests(folder)
        generate_take(ConductRequest.from_dict(requests[0]))  # load the model once, as the service does before it is ready
        t = time.perf_counter()
        expected = [generate_take(ConductRequest.from_dict(r)) for r in requests]
        in_process = time.perf_counter() - t

        backend = start_backend(sys.executable, [folder], cwd=ROOT)
        client = backend.client
        try:
            for req in requests[:4]:  # warm up every path once, then measure memory
                client.wait(client.submit(**req)["id"])
            for case in bad_requests(client, folder)[:8]:
                send(client, *case[:3])
            before = rss_mb(backend.process.pid)

            t = time.perf_counter()
            with ThreadPoolExecutor(24) as pool:
                futures = [pool.submit(finish, client, r) for r in requests]
                bad = list(pool.map(lambda c: (send(client, *c[:3]), c[3]), bad_requests(client, folder)))
                results = [f.result() for f in futures]
            wall = time.perf_counter() - t
            healthy = client.health()["status"] == "ok"
            after = rss_mb(backend.process.pid)
        finally:
            stop_backend(backend.process)

        # The overhead for the same work, fresh processes on both sides, rounds interleaved.
        alone, direct, bare = [], [], []
        for _ in range(ROUNDS):
            cli_work, conduct_only = reference_round(folder)
            direct.append(cli_work)
            bare.append(conduct_only)
            alone.append(service_round(folder, requests))
        cli = cli_times(requests[0])

    latencies = np.array([r[0] for r in results])
    matches = [r[2] is not None and np.allclose(r[2].keypoints_3d, e.keypoints_3d, atol=1e-5)
               for r, e in zip(results, expected)]
    statuses = [r[1]["state"] for r in results]
    bad_ok = sum(got == want for got, want in bad)
    overhead = wall / in_process - 1
    same_work = float(np.median(alone)) / float(np.median(direct)) - 1
    vs_bare = float(np.median(alone)) / float(np.median(bare)) - 1
    out = {"good_jobs": GOOD, "bad_requests": BAD, "jobs_done_with_correct_take": int(sum(matches)),
           "bad_requests_with_expected_4xx": bad_ok, "healthy_after": healthy,
           "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
           "latency_p50_s": round(float(np.percentile(latencies, 50)), 3),
           "latency_p95_s": round(float(np.percentile(latencies, 95)), 3),
           "service_wall_s": round(wall, 3), "in_process_s": round(in_process, 3),
           "throughput_jobs_per_s": round(GOOD / wall, 2), "overhead": round(overhead, 3),
           "states": statuses,
           "same_work_service_s": [round(x, 3) for x in alone], "same_work_in_process_s": [round(x, 3) for x in direct],
           "conduct_only_in_process_s": [round(x, 3) for x in bare], "overhead_vs_conduct_only": round(vs_bare, 3),
           "same_work_overhead": round(same_work, 3), "cli_per_job": cli}
    out["engine"] = ENGINE
    (HERE / f"load_results_{ENGINE}.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = ["# Service load results", "",
             f"Written by `benchmarks/load_service.py {ENGINE}` on {time.strftime('%Y-%m-%d')}: {GOOD} concurrent "
             f"30 s jobs ({ENGINE} engine) with {BAD} malformed requests interleaved, one real service process.", "",
             "| check | measured | goal |", "|---|---|---|",
             f"| jobs done with the in-process take | {sum(matches)}/{GOOD} | all |",
             f"| malformed requests answered with their 4xx | {bad_ok}/{BAD} | all |",
             f"| healthy after the run | {healthy} | yes |",
             f"| RSS before → after | {before:.0f} → {after:.0f} MB ({after - before:+.0f}) | within 50 MB |",
             f"| job latency p50 / p95 (submit → done, queued behind the others) | {out['latency_p50_s']} / {out['latency_p95_s']} s | — |",
             f"| throughput | {out['throughput_jobs_per_s']} jobs/s ({wall:.2f} s for all) | — |",
             f"| the same {GOOD} requests in-process, one after another | {in_process:.2f} s | — |",
             f"| the load run against that (it also answers the {BAD} malformed requests) | {overhead * 100:+.1f}% | — |",
             f"| **service overhead for the same work**: the {GOOD} jobs alone through a fresh service (takes fetched "
             f"as NPZ) vs the CLI's own work for them in a fresh Python process (conduct, write the take file; "
             f"start-up left out) — medians of {ROUNDS} interleaved rounds: {np.median(alone):.2f} s vs "
             f"{np.median(direct):.2f} s; rounds {', '.join(f'{x:.2f}' for x in alone)} vs {', '.join(f'{x:.2f}' for x in direct)} "
             f"| **{same_work * 100:+.1f}%** | ≤ 10% |",
             f"| the same against conducting alone in those processes (no take file written): "
             f"{np.median(alone):.2f} s vs {np.median(bare):.2f} s | {vs_bare * 100:+.1f}% | — |",
             f"| one job through the CLI (`python -m backend generate`, a fresh process) | {cli['wall_s']:.2f} s wall, "
             f"of which the CLI's own reported work {cli['reported_s']:.2f} s | — |"]
    (HERE / f"load_results_{ENGINE}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not (all(matches) and bad_ok == BAD and healthy):
        raise SystemExit("load run failed its checks")


if __name__ == "__main__":
    if "--reference" in sys.argv:
        _reference(Path(sys.argv[sys.argv.index("--reference") + 1]))
        sys.exit()
    try:
        main()
    except BackendError as e:
        raise SystemExit(f"error: {e}")
