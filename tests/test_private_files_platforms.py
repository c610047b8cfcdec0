"""baton_core/private_files.py's Windows branches, run here with Windows' `os` faked (no getuid,
os.name "nt"): there, file modes say nothing about who may read a file (the per-user temporary folder
and its ACLs do), so only links and non-files are refused and stale folders are told apart by their
maker's process alone. pid_alive's Windows branch needs kernel32 and is checked on a real Windows."""

from __future__ import annotations

import os
import tempfile

import pytest

from baton_core import private_files
from baton_core.errors import BatonError


class WindowsOs:
    """`os` as private_files sees it on Windows: no getuid, os.name "nt"; the rest is the real one."""
    name = "nt"

    def __getattr__(self, attr):
        if attr in ("getuid", "getgid"):
            raise AttributeError(attr)
        return getattr(os, attr)


@pytest.fixture
def windows(monkeypatch):
    monkeypatch.setattr(private_files, "os", WindowsOs())


def test_on_windows_an_own_file_is_reused_whatever_its_mode_but_never_a_link(windows, tmp_path):
    token = tmp_path / "token"
    token.write_text("x")
    token.chmod(0o644)
    private_files.check_own_file(token, "token file")  # POSIX would refuse: readable by others
    (tmp_path / "link").symlink_to(token)
    with pytest.raises(BatonError, match="symbolic link"):
        private_files.check_own_file(tmp_path / "link", "token file")
    private_files.write_private(token, "fresh", "token file")
    assert token.read_text() == "fresh"


def test_on_posix_the_same_file_is_refused(tmp_path):
    token = tmp_path / "token"
    token.write_text("x")
    token.chmod(0o644)
    with pytest.raises(BatonError, match="readable by others"):
        private_files.check_own_file(token, "token file")


def test_on_windows_a_dead_makers_folder_is_removed_without_owner_checks(windows, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "baton-run-999999999-abc"
    live = tmp_path / f"baton-run-{os.getpid()}-def"
    dead.mkdir()
    live.mkdir()
    assert private_files.remove_stale("run") == [dead]
    assert live.exists() and not dead.exists()
