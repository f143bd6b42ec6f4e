"""Shared test configuration: markers for slow and GPU tests."""

from __future__ import annotations

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


# Tests known to hang on a loaded 2-core machine at this commit; they run with --runslow.
# The torchrun restart test waits on an elastic rendezvous that can outlive its timeout
# (issue 8 is still open for it).
KNOWN_SLOW = {
    "tests/distributed/test_failures.py::test_a_killed_process_is_restarted_and_the_run_ends_as_if_never_stopped",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if item.nodeid in KNOWN_SLOW:
            item.add_marker(pytest.mark.slow)
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
