"""The engine's Windows branches, run here with the platform faked: the rooms import without POSIX-only
modules, the batch manifest's lock through msvcrt.locking, and private files without owners or
mode bits. The stand-ins for Windows' own APIs (msvcrt, kernel32) behave as those are documented to."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from backend import batch
from baton_core import private_files
from baton_core.errors import BatonError

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("backend", "baton_core", "baton_render")
POSIX_ONLY = ("fcntl", "resource", "pwd", "grp", "termios")


def test_the_rooms_import_where_posix_only_modules_do_not_exist():
    """What `import` sees on Windows: no fcntl, resource, pwd, grp, termios, and an msvcrt instead."""
    script = f"""
import importlib, pkgutil, subprocess, sys, types  # subprocess first: it takes any msvcrt to mean Windows
for name in {POSIX_ONLY!r}:
    sys.modules[name] = None  # import raises ImportError, as on Windows
sys.modules["msvcrt"] = types.SimpleNamespace(LK_LOCK=1, LK_UNLCK=0, locking=None)
imported = []
for room in {ROOMS!r}:
    for info in pkgutil.walk_packages(importlib.import_module(room).__path__, room + "."):
        if info.name != "backend.__main__":
            importlib.import_module(info.name)
            imported.append(info.name)
from backend import batch
assert batch.fcntl is None and batch.msvcrt is sys.modules["msvcrt"]
print(" ".join(imported))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = {".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for room in ROOMS for f in (ROOT / room).rglob("*.py") if f.name != "__main__.py"}
    assert set(proc.stdout.split()) == modules - set(ROOMS)  # every module, baton_render's bpy ones too


class Msvcrt:
    """msvcrt.locking(fd, mode, n) as Windows does it: n bytes from the file's current position, LK_LOCK
    waits (and raises OSError after 10 s, the first time here), LK_UNLCK releases. Backed by POSIX
    record locks, so it excludes other processes as Windows' does."""

    LK_UNLCK, LK_LOCK = 0, 1

    def __init__(self, manifest: Path):
        self.manifest, self.calls, self.busy_once = manifest, [], True

    def locking(self, fd: int, mode: int, n: int) -> None:
        self.calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR), n, self.manifest.exists()))
        if mode == self.LK_LOCK and self.busy_once:
            self.busy_once = False
            raise OSError(36, "Resource deadlock avoided")  # what LK_LOCK raises after 10 tries
        fcntl.lockf(fd, fcntl.LOCK_EX if mode == self.LK_LOCK else fcntl.LOCK_UN, n, 0, os.SEEK_CUR)


def test_the_manifest_lock_on_windows_waits_and_releases_around_the_write(monkeypatch, tmp_path):
    (tmp_path / f"song{batch.RECORD_SUFFIX}").write_text(json.dumps({"status": "rendered"}))
    fake = Msvcrt(tmp_path / batch.MANIFEST)
    monkeypatch.setattr(batch, "fcntl", None)
    monkeypatch.setattr(batch, "msvcrt", fake)
    manifest = json.loads(batch.write_manifest(tmp_path).read_text())
    assert manifest["pieces"] == {"song": {"status": "rendered"}}
    # refused once, taken on the retry, released: all on the lock file's first byte, the manifest
    # written in between
    assert fake.calls == [(1, 0, 1, False), (1, 0, 1, False), (0, 0, 1, True)]


def test_the_manifest_lock_on_windows_excludes_another_process(monkeypatch, tmp_path):
    monkeypatch.setattr(batch, "fcntl", None)
    monkeypatch.setattr(batch, "msvcrt", Msvcrt(tmp_path / "unused"))
    batch.msvcrt.busy_once = False
    holder = subprocess.Popen([sys.executable, "-c", f"""
import fcntl, os, sys, time
fd = os.open({str(tmp_path / '.manifest.lock')!r}, os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0, os.SEEK_SET)  # the byte msvcrt.locking takes
print("held", flush=True); time.sleep(1.5)
open({str(tmp_path / 'released')!r}, "w").close()
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    batch.write_manifest(tmp_path)
    assert (tmp_path / "released").exists()  # written only once the other process let go
    holder.wait(timeout=10)


def test_private_files_on_windows_have_no_owner_or_mode_to_check(monkeypatch, tmp_path):
    shared = tmp_path / "token"
    shared.write_text("x")
    shared.chmod(0o644)
    with pytest.raises(BatonError, match="readable by others"):
        private_files.check_own_file(shared, "token file")
    monkeypatch.delattr(os, "getuid")  # Windows: no uid, and no mode bits that mean anything
    monkeypatch.setattr(os, "name", "nt")
    private_files.check_own_file(shared, "token file")
    monkeypatch.undo()

    if os.geteuid() != 0:
        pytest.skip("a folder of another user's needs root to make")
    dead = tmp_path / f"baton-run-{2 ** 22 + 7}-abc"  # a crashed run's (above any pid Linux hands out)
    dead.mkdir()
    os.chown(dead, 65534, 65534)
    monkeypatch.setattr(private_files.tempfile, "gettempdir", lambda: str(tmp_path))
    assert private_files.remove_stale("run") == [] and dead.exists()  # POSIX: not ours, left alone
    monkeypatch.delattr(os, "getuid")  # Windows: the temporary folder is the user's own
    assert private_files.remove_stale("run") == [dead] and not dead.exists()


class Kernel32:
    """OpenProcess / GetExitCodeProcess / CloseHandle as Windows answers them for a table of processes
    (pid → exit code; 259 is STILL_ACTIVE), counting the handles left open."""

    def __init__(self, processes: dict[int, int]):
        self.processes, self.open = processes, set()

    def OpenProcess(self, access, inherit, pid):
        assert access == 0x1000 and inherit is False  # PROCESS_QUERY_LIMITED_INFORMATION, not inherited
        if pid not in self.processes:
            return 0
        self.open.add(pid)
        return pid

    def GetExitCodeProcess(self, handle, code):
        code._obj.value = self.processes[handle]
        return 1

    def CloseHandle(self, handle):
        self.open.remove(handle)
        return 1


def test_pid_alive_on_windows_asks_for_the_exit_code(monkeypatch):
    kernel32 = Kernel32({100: 259, 200: 0})
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "windll", SimpleNamespace(kernel32=kernel32), raising=False)
    assert private_files.pid_alive(100)
    assert not private_files.pid_alive(200)  # exited, its handle still held by someone
    assert not private_files.pid_alive(300)  # no such process
    assert not private_files.pid_alive(0)
    assert kernel32.open == set()


class WindowsOs:
    """`os` as private_files sees it on Windows (no getuid, os.name "nt"), the rest the real one:
    faked in that module alone, since pathlib itself cannot run with os.name "nt" here."""
    name = "nt"

    def __getattr__(self, attr):
        if attr in ("getuid", "getgid"):
            raise AttributeError(attr)
        return getattr(os, attr)


def test_on_windows_an_own_file_is_reused_whatever_its_mode_but_never_a_link(monkeypatch, tmp_path):
    monkeypatch.setattr(private_files, "os", WindowsOs())
    token = tmp_path / "token"
    token.write_text("x")
    token.chmod(0o644)
    private_files.check_own_file(token, "token file")  # POSIX refuses it: readable by others
    (tmp_path / "link").symlink_to(token)
    with pytest.raises(BatonError, match="symbolic link"):
        private_files.check_own_file(tmp_path / "link", "token file")
    private_files.write_private(token, "fresh", "token file")
    assert token.read_text() == "fresh"
