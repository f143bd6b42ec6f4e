"""`specc.runtime.train.allocator`: the malloc settings `specc train` applies, and the opt-out.

Each case runs in a fresh interpreter: the settings are process-wide.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from specc.runtime.train.allocator import tune_malloc; print(tune_malloc())"


def _tune(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True,
                          env={**os.environ, **env})
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_settings_apply_on_glibc() -> None:
    assert _tune({"SPECC_MALLOC": ""}) == str(platform.libc_ver()[0] == "glibc")


def test_opt_out_leaves_malloc_alone() -> None:
    assert _tune({"SPECC_MALLOC": "default"}) == "False"
