"""Test-session settings that apply to the whole suite: tests/ and the lesson notebooks (nbval).

`make test` runs the suite on two pytest-xdist workers (``-n 2``, see
pyproject.toml). The scheduler below hands out whole units, never single tests:

* every test file and every notebook is one unit, so a notebook's cells run in
  order in one kernel and module fixtures are built once;
* all browser tests (tests/e2e/) are one unit: one JupyterLab, one Chromium and
  one artifacts/e2e/ folder, which the session clears when it starts.

Each worker, and every kernel or subprocess it starts, uses one CPU thread
(``AIGC_THREADS=1``), so two workers do not fight over two cores.
"""
import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["AIGC_THREADS"] = "1"  # inherited by notebook kernels, graders and torchrun children
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WholeFiles(LoadScopeScheduling):
        """Like ``--dist loadfile``, with every browser test in one unit."""

        def _split_scope(self, nodeid: str) -> str:
            return "tests/e2e" if nodeid.startswith("tests/e2e/") else nodeid.split("::", 1)[0]

    return WholeFiles(config, log)
