"""The git recipe end to end, in a throwaway repository: `git diff` and `git log -p` read specs semantically.

Every driver call is a fresh `python -m specc` (seconds, mostly importing torch), so the tests make few.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_PAGER": "cat", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    """Two commits: gpt-tiny (which extends gpt2-small) at 4 layers, then at 6, with the driver set up."""
    git(tmp_path, "init", "-q")
    (tmp_path / "specs").mkdir()
    for name in ("gpt2-small.toml", "gpt-tiny.toml"):
        shutil.copy(ROOT / "specs" / name, tmp_path / "specs" / name)
    monkeypatch.chdir(tmp_path)
    assert main(["git-setup", "--pattern", "specs/*.toml", "--command", f"{sys.executable} -m specc"]) == 0
    assert "specs/*.toml diff=specc" in capsys.readouterr().out
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "gpt-tiny")
    tiny = tmp_path / "specs" / "gpt-tiny.toml"
    tiny.write_text(tiny.read_text().replace("layers = 4", "layers = 6  # deeper"))
    git(tmp_path, "commit", "-q", "-am", "deeper")
    return tmp_path


def test_git_diff_shows_the_semantic_diff(repo: Path) -> None:
    out = git(repo, "diff", "HEAD~1", "--", "specs/")
    assert "specc diff a/specs/gpt-tiny.toml → b/specs/gpt-tiny.toml" in out
    assert "depth 4 → 6" in out and "+ h.{4–5}" in out
    assert "wte, wpe, ln_f and the first 4 layers of h still load" in out  # the base file resolved: a whole model


def test_git_log_p_shows_resolved_listings(repo: Path) -> None:
    out = git(repo, "log", "-p", "-1", "--", "specs/")
    assert "-params.layers = 4\n+params.layers = 6" in out
    assert "-h = decoder_layer × 4" in out and "+h = decoder_layer × 6" in out
    assert "deeper" not in out.split("diff --git")[1]  # a comment is not a change of meaning


def test_a_broken_revision_falls_back_to_text(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both drivers, called as git calls them (GIT_EXTERNAL_DIFF's seven arguments; textconv's one)."""
    tiny = repo / "specs" / "gpt-tiny.toml"
    old = repo / "old.toml"
    shutil.copy(tiny, old)
    tiny.write_text(tiny.read_text() + "\n[params\n")
    assert main(["git-diff", "specs/gpt-tiny.toml", str(old), "0" * 40, "100644", str(tiny), "0" * 40, "100644"]) == 0
    out = capsys.readouterr().out
    assert "not a resolvable spec on one side (E001" in out and "+[params" in out
    assert main(["textconv", str(tiny)]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("# specc: cannot resolve this spec (E001") and listing.endswith("[params\n")


def test_textconv_finds_the_base_of_a_temporary_copy(repo: Path, tmp_path_factory: pytest.TempPathFactory,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """git hands textconv old revisions as /tmp/git-blob-XXXX/NAME; `extends` is looked up where NAME is tracked."""
    copy = tmp_path_factory.mktemp("git-blob") / "gpt-tiny.toml"
    shutil.copy(repo / "specs" / "gpt-tiny.toml", copy)
    assert main(["textconv", str(copy)]) == 0
    assert "h = decoder_layer × 6" in capsys.readouterr().out
