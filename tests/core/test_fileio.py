"""Whole outputs: atomic files with the user's umask, output folders replaced as a whole."""

import os

import pytest

from bitmill.errors import BitmillError
from bitmill.fileio import atomic_dir, atomic_write_text, check_new_dir


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600


def test_folder_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "net"
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as d:
            (d / "graph.json").write_text("{}")
            raise RuntimeError("disk full")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(out) as d:
        (d / "graph.json").write_text("{}")
        assert not out.exists()
    assert sorted(p.name for p in out.iterdir()) == ["graph.json"]


def test_existing_folder_needs_force_and_loses_stale_files(tmp_path):
    out = tmp_path / "net"
    out.mkdir()
    (out / "stale.bin").write_text("old")
    with pytest.raises(BitmillError, match="already exists; pass --force"):
        check_new_dir(out, force=False)
    with pytest.raises(BitmillError, match="already exists"):
        with atomic_dir(out):
            pass
    with pytest.raises(RuntimeError):                 # a failed run keeps the old folder
        with atomic_dir(out, force=True) as d:
            (d / "new.bin").write_text("new")
            raise RuntimeError
    assert sorted(p.name for p in out.iterdir()) == ["stale.bin"]
    with atomic_dir(out, force=True) as d:
        (d / "new.bin").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BitmillError, match="is not a folder"):
        check_new_dir(tmp_path / "f", force=True)
