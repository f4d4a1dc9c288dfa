"""The package's layering is a test: the import contracts in pyproject.toml must hold."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    exe = Path(sys.executable).with_name("lint-imports")
    found = str(exe) if exe.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is missing: install the dev extra (`make setup`)")
    return found


def test_import_contracts_hold():
    run = subprocess.run([_lint_imports()], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BROKEN" not in run.stdout and "KEPT" in run.stdout


def test_a_forbidden_import_breaks_a_contract(tmp_path):
    """The contracts bite: a copy of the package whose core imports a model fails the check."""
    shutil.copytree(ROOT / "aigc_course", tmp_path / "aigc_course")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env_py = tmp_path / "aigc_course" / "core" / "env.py"
    env_py.write_text(env_py.read_text() + "\nfrom aigc_course.models import vae  # noqa\n")
    run = subprocess.run([_lint_imports()], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run.returncode != 0
    assert "aigc_course.core.env -> aigc_course.models.vae" in run.stdout
