"""relight_base.atomic: whole files or nothing, created with the user's umask (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from relight_base.atomic import atomic_write_bytes, atomic_write_text, current_umask


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_get_the_users_umask(tmp_path, umask_022):
    atomic_write_text(tmp_path / "report.html", "<p>hi</p>")
    atomic_write_bytes(tmp_path / "sub" / "a.png", b"\x89PNG")
    for path in (tmp_path / "report.html", tmp_path / "sub" / "a.png"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # 0666 & ~022, readable by a web server


def test_a_stricter_umask_is_respected(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "private.csv", "a\n")
        assert current_umask() == 0o077, "reading the mask must not change it"
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private.csv").stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.csv"
    atomic_write_text(target, "old\n")

    class Boom(Exception):
        pass

    from relight_base.atomic import atomic_open

    with pytest.raises(Boom):
        with atomic_open(target) as handle:
            handle.write("half")
            raise Boom
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
