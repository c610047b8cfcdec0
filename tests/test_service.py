"""The service as Blender uses it: a real process on 127.0.0.1, driven by the standard-library client."""

import json
import sys
import urllib.request

import numpy as np
import pytest

from blender_addon.client import BackendError, Client, start_backend, stop_backend
from baton_core.take import load_take
from conftest import ROOT


@pytest.fixture(scope="module")
def backend(demo_files):
    audio_dir = demo_files["ogg"].parent
    b = start_backend(sys.executable, [audio_dir], cwd=ROOT, extra_args=["--max-upload-mb", "2"])
    yield b
    assert stop_backend(b.process) in (0, -15)  # SIGTERM: uvicorn shuts down, then re-raises it
    assert "stopped" in b.log_file.read_text()  # …after the jobs were cancelled and the worker joined


def _raw(backend, path, headers, method="GET", data=None):
    req = urllib.request.Request(backend.client.base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_token_file_is_private_and_every_request_needs_it(backend):
    assert backend.token_file.stat().st_mode & 0o777 == 0o600
    token = backend.token_file.read_text().strip()
    for path in ("/v1/health", "/openapi.json", "/v1/jobs/x"):
        assert _raw(backend, path, {})[0] == 401
        assert _raw(backend, path, {"Authorization": "Bearer " + token[:-1] + "x"})[0] == 401
    assert _raw(backend, "/openapi.json", {"Authorization": f"Bearer {token}"})[0] == 200


def test_host_header_must_be_loopback(backend):
    auth = {"Authorization": f"Bearer {backend.token_file.read_text().strip()}"}
    assert _raw(backend, "/v1/health", auth | {"Host": "evil.example:8000"})[0] == 403
    assert _raw(backend, "/v1/health", auth | {"Host": "localhost"})[0] == 200
    status, _ = _raw(backend, "/v1/health", auth | {"Origin": "http://evil.example"})
    assert status == 200  # answered, but with no CORS headers a browser page cannot read it


def test_a_job_gives_the_same_take_as_the_cli(backend, demo_files, tmp_path):
    job = backend.client.submit(demo_files["flac"], seed=7, start=2.0, duration=20.0)
    status = backend.client.wait(job["id"])
    assert status["state"] == "done" and status["progress"] == 1.0
    doc = backend.client.take(job["id"])
    (tmp_path / "t.json").write_text(json.dumps(doc))
    take = load_take(tmp_path / "t.json")
    assert take.start == 2.0 and take.n_frames == 600 and take.provenance["seed"] == 7
    npz = backend.client._request("GET", f"/v1/jobs/{job['id']}/take?format=npz", raw=True)
    (tmp_path / "t.npz").write_bytes(npz)
    assert np.allclose(load_take(tmp_path / "t.npz").keypoints_3d, take.keypoints_3d, atol=1e-5)


@pytest.mark.parametrize("body, code", [
    ({"audio_path": "/etc/hostname"}, 403),
    ({"audio_path": "{dir}/missing.ogg"}, 404),
    ({"audio_path": "{ogg}", "seed": -1}, 422),
    ({"audio_path": "{ogg}", "seed": "seven"}, 422),
    ({"audio_path": "{ogg}", "colour": "red"}, 422),
    ({"audio_path": "{ogg}", "engine": "nonsense"}, 422),
    ({}, 422),
])
def test_bad_requests_get_a_4xx_and_the_service_stays_healthy(backend, demo_files, body, code):
    fill = {"dir": str(demo_files["ogg"].parent), "ogg": str(demo_files["ogg"])}
    body = {k: v.format(**fill) if isinstance(v, str) else v for k, v in body.items()}
    with pytest.raises(BackendError, match=str(code)):
        backend.client._request("POST", "/v1/jobs", body)
    assert backend.client.health()["status"] == "ok"


def test_malformed_json_and_unknown_jobs(backend):
    auth = {"Authorization": f"Bearer {backend.token_file.read_text().strip()}", "Content-Type": "application/json"}
    assert _raw(backend, "/v1/jobs", auth, "POST", b"{not json")[0] == 422
    for method in ("GET", "DELETE"):
        assert _raw(backend, "/v1/jobs/nope", auth, method)[0] == 404


def test_corrupt_audio_fails_the_job_not_the_service(backend, demo_files):
    bad = demo_files["ogg"].parent / "corrupt.ogg"
    bad.write_bytes(b"OggS" + bytes(3000))
    status = backend.client.wait(backend.client.submit(bad)["id"])
    assert status["state"] == "failed" and "not a readable audio file" in status["error"]
    with pytest.raises(BackendError, match="409"):
        backend.client.take(status["id"])
    assert backend.client.health()["status"] == "ok"


def test_cancel_queued_and_running_jobs(backend, demo_files, random_model):
    from backend.checkpoint import save_checkpoint
    import soundfile as sf
    folder = demo_files["ogg"].parent
    save_checkpoint(random_model, folder / "g.pt")
    long = folder / "long.wav"
    sf.write(long, np.tile(sf.read(demo_files["ogg"])[0], 8), 22050)  # 5 minutes: seconds of work
    running = backend.client.submit(long, checkpoint=folder / "g.pt")
    queued = backend.client.submit(demo_files["ogg"])
    assert backend.client.cancel(queued["id"])["state"] == "cancelled"
    while backend.client.job(running["id"])["state"] == "queued":
        pass
    backend.client.cancel(running["id"])
    status = backend.client.wait(running["id"])
    assert status["state"] == "cancelled" and status["stage"] == "cancelled while running"
    assert backend.client.wait(backend.client.submit(demo_files["ogg"])["id"])["state"] == "done"  # still serving


def test_a_service_that_cannot_start_says_why(tmp_path):
    with pytest.raises(BackendError, match="did not start"):
        start_backend(sys.executable, [tmp_path], cwd=ROOT, extra_args=["--port", "-5"], timeout=60)


def test_client_against_nothing_is_a_clear_error():
    with pytest.raises(BackendError, match="cannot reach"):
        Client(9, "token", timeout=2).health()


def test_upload_bytes_then_conduct_them(backend, demo_files):
    path = backend.client.upload(demo_files["ogg"])
    status = backend.client.wait(backend.client.submit(path, duration=10)["id"])
    assert status["state"] == "done"
    with pytest.raises(BackendError, match="413"):
        backend.client.upload(demo_files["wav"])  # 6.9 MB against a 2 MB limit
    assert backend.client.health()["status"] == "ok"


def test_progress_streams_until_done_and_fps_is_honoured(backend, demo_files):
    job = backend.client.submit(demo_files["flac"], fps=24, duration=20)
    seen = list(backend.client.events(job["id"]))
    assert seen[-1]["state"] == "done"
    fractions = [e["progress"] for e in seen]
    assert fractions == sorted(fractions)
    take = backend.client.take(job["id"])
    assert take["fps"] == 24 and take["n_frames"] == 480


def test_health_answers_while_a_long_job_runs(backend, demo_files, random_model):
    import time

    import soundfile as sf

    from backend.checkpoint import save_checkpoint
    folder = demo_files["ogg"].parent
    save_checkpoint(random_model, folder / "busy.pt")
    busy = folder / "busy.wav"
    sf.write(busy, np.tile(sf.read(demo_files["ogg"])[0], 8), 22050)  # 5 minutes: seconds of work
    job = backend.client.submit(busy, checkpoint=folder / "busy.pt")
    while backend.client.job(job["id"])["state"] == "queued":
        time.sleep(0.01)
    latencies = []
    while backend.client.job(job["id"])["state"] == "running":
        t = time.perf_counter()
        backend.client.health()
        latencies.append(time.perf_counter() - t)
    assert latencies and max(latencies) < 1.0
    loaded = backend.client._request("GET", "/v1/engines")["loaded_checkpoints"]
    assert [c["kind"] for c in loaded] == ["baton"]


def test_the_options_the_add_on_shows_come_from_the_request(backend):
    from baton_core.request import schema

    assert backend.client.options() == json.loads(json.dumps(schema()))


def test_a_wide_open_service_warns_refuses_long_audio_and_stops_mid_job(demo_files, random_model):
    """--host 0.0.0.0 (a warning), --max-minutes, and SIGTERM while a job runs."""
    import soundfile as sf

    from backend.checkpoint import save_checkpoint
    folder = demo_files["ogg"].parent
    b = start_backend(sys.executable, [folder], cwd=ROOT, extra_args=["--host", "0.0.0.0", "--max-minutes", "0.5"])
    try:
        assert "reachable from other machines" in b.log_file.read_text()
        with pytest.raises(BackendError, match="413"):
            b.client.submit(demo_files["flac"])  # 39 s against a 30 s limit
        assert b.client.wait(b.client.submit(demo_files["flac"], duration=20)["id"])["state"] == "done"
        save_checkpoint(random_model, folder / "sigterm.pt")
        long = folder / "long30.wav"
        sf.write(long, np.tile(sf.read(demo_files["ogg"])[0], 2)[: 22050 * 29], 22050)
        job = b.client.submit(long, checkpoint=folder / "sigterm.pt")
        stream = b.client.events(job["id"])
        next(stream)  # a client that reads one event and goes away
        stream.close()
        assert b.client.health()["status"] == "ok"
    finally:
        assert stop_backend(b.process) in (0, -15)
    log = b.log_file.read_text()
    assert "stopped" in log and ("cancelled" in log or f"job {job['id']} done" in log)


def test_checkpoints_outside_the_folders_or_unreadable_are_refused_and_the_service_keeps_serving(backend, demo_files,
                                                                                               tmp_path):
    from backend.checkpoint import save_checkpoint
    from backend.model import Generator
    outside = tmp_path / "elsewhere.pt"
    save_checkpoint(Generator(), outside)
    with pytest.raises(BackendError, match="403.*outside the folders"):
        backend.client.submit(demo_files["ogg"], checkpoint=outside)
    corrupt = demo_files["ogg"].parent / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(500))
    status = backend.client.wait(backend.client.submit(demo_files["ogg"], checkpoint=corrupt)["id"])
    assert status["state"] == "failed" and "corrupt" in status["error"]
    assert backend.client.wait(backend.client.submit(demo_files["ogg"], duration=5)["id"])["state"] == "done"


def test_a_full_queue_is_a_429_and_the_log_rotates(demo_files, random_model, tmp_path):
    """--max-queued 1: one job runs, one waits, the next is refused; a log at its 2 MB limit rolls over."""
    import soundfile as sf

    from backend.checkpoint import save_checkpoint
    folder = demo_files["ogg"].parent
    save_checkpoint(random_model, folder / "queue.pt")
    long = folder / "queue.wav"
    sf.write(long, np.tile(sf.read(demo_files["ogg"])[0], 8), 22050)  # 5 minutes: seconds of work
    log_file = tmp_path / "service.log"
    log_file.write_text("x" * (2 << 20))  # an earlier run filled it
    b = start_backend(sys.executable, [folder], log_file=log_file, cwd=ROOT, extra_args=["--max-queued", "1"])
    try:
        running = b.client.submit(long, checkpoint=folder / "queue.pt")
        waiting = b.client.submit(demo_files["ogg"])
        with pytest.raises(BackendError, match="429.*try again later"):
            b.client.submit(demo_files["ogg"])
        for job in (running, waiting):
            b.client.cancel(job["id"])
        assert b.client.wait(b.client.submit(demo_files["ogg"], duration=5)["id"])["state"] == "done"
    finally:
        assert stop_backend(b.process) in (0, -15)
    rolled = log_file.with_name("service.log.1")
    assert rolled.exists() and rolled.stat().st_size >= 2 << 20
    assert log_file.stat().st_size < 1 << 20 and "serving on" in log_file.read_text()


def test_given_beats_and_bars_go_through_the_service(backend, demo_files):
    beats = [1.1 + 0.625 * k for k in range(30)]
    job = backend.client.submit(demo_files["flac"], engine="rules", duration=20.0, beats=beats, downbeats=beats[::3])
    assert backend.client.wait(job["id"])["state"] == "done"
    take = backend.client.take(job["id"])
    assert np.allclose(take["beats"], [b for b in beats if b < 20.0], atol=1e-4)
    with pytest.raises(BackendError, match="422"):
        backend.client.submit(demo_files["flac"], beats="1,2,3")
    with pytest.raises(BackendError, match="422.*not one of the given beats"):
        backend.client.submit(demo_files["flac"], beats=[1.0, 2.0], downbeats=[1.5])
