"""Files only their owner can read, and folders a crashed process left behind — on every platform.

The engine's token and log, and the run folders the service and the add-on make, hold what another
local user must not read or plant: a token file is only ever written to a new file made private at
creation (never opened through a name someone else may have linked), then renamed into place; a name
that already exists is replaced only when it is this user's own private regular file. Folders are
named with their maker's process id, so whoever starts next can tell a crashed maker's leftovers from
a live one's and remove them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from .errors import BatonError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows, where links need privileges to make


def check_own_file(path: str | Path, what: str, private: bool = True) -> None:
    """Refuse `path` unless it is absent or this user's own regular file (and with `private`,
    readable by them alone)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise BatonError(f"{what} {path} is {kind}; refusing to write through it (remove it or choose another path)")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise BatonError(f"{what} {path} belongs to another user; refusing to replace it")
    if private and os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
        raise BatonError(f"{what} {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
                         "refusing to reuse it (remove it, or give a path in a private folder)")


def write_private(path: str | Path, text: str, what: str = "file") -> None:
    """Write `text` to `path` through a new file created private (0600), renamed into place."""
    path = Path(path)
    check_own_file(path, what)
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as e:
        raise BatonError(f"cannot create {what} in {path.parent} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(fresh, path)  # replaces the name itself: a link planted meanwhile is not followed
    except OSError as e:
        fresh.unlink(missing_ok=True)
        raise BatonError(f"cannot write {what} {path} ({e.strerror or e})") from None


def remove_if_ours(path: str | Path, text: str) -> None:
    """Remove the file we wrote at `path`, unless it has since been replaced by something else."""
    try:
        if Path(path).read_text() == text:
            os.unlink(path)
    except OSError:
        pass


def pid_alive(pid: int) -> bool:
    """Whether process `pid` is running (a reused id counts as alive: its folder is left alone)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes
        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_folder(kind: str) -> Path:
    """A new private folder `baton-<kind>-<pid>-…` in the temporary folder, after removing those
    of the same kind whose maker has died."""
    remove_stale(kind)
    return Path(os.path.realpath(tempfile.mkdtemp(prefix=f"baton-{kind}-{os.getpid()}-")))


def remove_stale(kind: str) -> list[Path]:
    """Remove `baton-<kind>-<pid>-…` folders of this user whose process is gone; returns them."""
    removed = []
    prefix = f"baton-{kind}-"
    for folder in Path(tempfile.gettempdir()).glob(prefix + "*"):
        pid = folder.name[len(prefix):].split("-", 1)[0]
        try:
            st = os.lstat(folder)
        except OSError:
            continue
        ours = not hasattr(os, "getuid") or st.st_uid == os.getuid()
        if stat.S_ISDIR(st.st_mode) and ours and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
