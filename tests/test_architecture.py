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


@pytest.mark.parametrize("module, forbidden", [
    ("core/env.py", "aigc_course.models.vae"),              # the base knows no model
    ("models/vae.py", "aigc_course.train.loop"),            # models are maths, not training
    ("views/plots.py", "aigc_course.recipes.vae"),          # views never import recipes
    ("metrics/images.py", "aigc_course.views.plots"),       # metrics, views, responsible are independent
    ("recipes/vae.py", "aigc_course.teaching.exercises"),   # recipes know no teaching
])
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, forbidden):
    """The contract bites: a copy of the package with one forbidden import fails the check, naming it."""
    shutil.copytree(ROOT / "aigc_course", tmp_path / "aigc_course")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "aigc_course" / module
    path.write_text(path.read_text() + f"\nimport {forbidden}  # noqa\n")
    run = subprocess.run([_lint_imports()], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    importer = "aigc_course." + module.removesuffix(".py").replace("/", ".")
    assert run.returncode != 0
    assert f"{importer} -> {forbidden}" in run.stdout
