"""specc.atomic: a write appears whole under its final name or not at all, and leaves no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.atomic import atomic_dir, atomic_file, write_text


class Boom(Exception):
    pass


def test_write_text_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    write_text(target, "new\r\n", newline="")
    assert target.read_bytes() == b"new\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_failed_file_write_keeps_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(Boom), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise Boom
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_folder_appears_whole_and_replaces_an_old_one_only_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "run"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
        assert not target.exists()
    assert (target / "x").read_text() == "1"
    with pytest.raises(OSError), atomic_dir(target) as tmp:  # an existing, non-empty folder is not replaced silently
        (tmp / "x").write_text("2")
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "y").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["y"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["run"]


def test_a_failed_folder_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with pytest.raises(Boom), atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
        raise Boom
    assert list(tmp_path.iterdir()) == []
