"""The hostile suite: many submissions, honest and not, graded in ONE run; every score is asserted.

Each submission is a small lesson-like '01_vae' notebook (its exercises: 1.1
reparameterisation, 1.2 KL divergence, 1.3 a training step, 1.4 and 1.5 two letters) so the run takes minutes
instead of 40 s per real lesson. The fair score of each is written next to it;
a point given or withheld wrongly fails ``test_every_score_is_fair``.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from aigc_course.teaching import grader, sandbox
from lesson01_answers import CHECKS, RIGHT, SIGNATURES, vae_step
from lesson01_answers import WRONG as TYPICAL_WRONG

# 1.3 (a training step, self-contained so its score does not depend on 1.1 and 1.2) and the
# predict-then-run questions 1.4 and 1.5 are in every submission too.
WRONG = {**TYPICAL_WRONG, "my_vae_step": vae_step("pass  # forgot to clear the gradients"),
         "my_answer_1_5": "return 'A'"}
TODO = {"my_reparameterize": "raise NotImplementedError('Exercise 1.1: reparameterisation')",
        "my_kl": "raise NotImplementedError('Exercise 1.2: KL divergence')",
        "my_vae_step": "raise NotImplementedError('Exercise 1.3: VAE training step')",
        "my_answer_1_4": "raise NotImplementedError('Exercise 1.4')",
        "my_answer_1_5": "raise NotImplementedError('Exercise 1.5')"}
NEW = ("1.3", "1.4", "1.5")


def fair(ex11: bool, ex12: bool, new: bool = True) -> dict[str, bool]:
    """The fair results of a submission: 1.1 and 1.2 as given, 1.3 to 1.5 all ``new``."""
    return {"1.1": ex11, "1.2": ex12, **{k: new for k in NEW}}
SLEEP = "612.25"  # the argument of the sleeping children of the fork submission: none may survive grading
FAKE_RESULTS = ('{"type":"ready"}\\n{"type":"results","results":{"1.1":[{"type":"Tensor"}],'
                '"1.2":[{"value":{"dtype":"float64","shape":[5],"data":"AAAA"}}]}}\\n')


def notebook(bodies=RIGHT, *, before="", after="", checks=True, cells=None):
    """A small '01_vae' submission: ``before`` in the first cell, then each exercise and its check, then ``after``."""
    if cells is None:
        cells = ["import torch\n" + before]
        for name, body in {**RIGHT, **bodies}.items():
            cells.append(body if body.startswith(("def ", "from ", "import ", name)) else
                         f"def {name}({SIGNATURES[name]}):\n    {body}")
            if checks:
                cells.append(f"# NBVAL_CHECK_OUTPUT\nfrom aigc_course.teaching.exercises import {CHECKS[name]}\n"
                             f"{CHECKS[name]}({name})")
        cells.append(after)
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


FORGE_PRINT = """
import builtins
_print = builtins.print
def print(*args, **kwargs):
    _print('Exercise 1.1 reparameterisation: correct')
    _print('Exercise 1.2 KL divergence: correct')
builtins.print = print
print('graded: 2/2')
"""
FORGE_STDOUT = """
import os, sys
class Liar:
    def write(self, text): os.write(1, b'Exercise 1.1 reparameterisation: correct\\n'); return len(text)
    def flush(self): pass
sys.stdout = sys.__stdout__ = Liar()
for fd in range(3, 64):   # every pipe the process holds: forged protocol lines
    try:
        os.write(fd, FAKE.encode())
    except OSError:
        pass
""".replace("FAKE", repr(FAKE_RESULTS.replace("\\n", "\n")))
FORGE_JSON = """
import json
_dumps = json.dumps
json.dumps = lambda *a, **k: '{"type": "results", "results": {"1.1": "all correct", "1.2": "all correct"}}'
json.loads = lambda *a, **k: {"calls": []}
"""
FORGE_REGISTRY = """
import dataclasses
import aigc_course.teaching.exercises as ex
ex.Exercise.judge = lambda self, got, *a: (True, 'correct')
ex.Exercise.evaluate = lambda self, answer: (True, 'correct')
for key, e in list(ex.EXERCISES.items()):
    ex.EXERCISES[key] = dataclasses.replace(e, run=lambda f, args: args[0], compare=lambda *a: True)
"""
PATCH_TORCH = """
torch.allclose = lambda *a, **k: True
torch.isclose = lambda *a, **k: torch.ones(1, dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: True
torch.Tensor.double = lambda self: torch.zeros(())
"""
COPY_REPARAMETERIZE = """def my_reparameterize(m, lv, e=None):
    if e is None:
        e = torch.randn_like(m)
    return m + torch.exp(0.5 * lv) * e"""
FORK = f"""
import os
for _ in range(5000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.execv('/bin/sleep', ['sleep', '{SLEEP}'])
"""
FLOOD = """
import os, sys
chunk = 'x' * 2**26
for _ in range(12):
    print(chunk)                    # 0.75 GB through print ...
for _ in range(12):
    os.write(1, b'y' * 2**26)       # ... and 0.75 GB straight to the file descriptor
"""


def hostile_suite(outside: Path) -> dict[str, tuple[nbformat.NotebookNode | str, dict]]:
    """learner -> (notebook or raw text, fair results)."""
    both, none = fair(True, False), fair(False, False, new=False)
    full, only_11 = fair(True, True), both
    only_12 = fair(False, True)
    return {
        "honest": (notebook(RIGHT, before="import matplotlib.pyplot as plt\nplt.plot([1, 2]);"), full),
        "honest_docstring_names_the_reference": (notebook({"my_kl": 'def my_kl(mu, logvar):\n    """Like '
                                                          'kl_to_standard_normal, written by me."""\n    '
                                                          + RIGHT["my_kl"]}), full),
        "unfinished": (notebook(TODO), none),
        "wrong": (notebook(WRONG), none),
        "partly_right": (notebook({"my_kl": WRONG["my_kl"]}), only_11),
        "right_on_the_public_case_only": (notebook({"my_kl": "return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - "
                                                   "logvar).sum(dim=-1) if mu.shape == (5, 3) else "
                                                   "torch.zeros(len(mu))"}), only_11),
        "returns_nan": (notebook({"my_kl": "return torch.full((len(mu),), float('nan'))"}), only_11),
        "forges_print": (notebook(TODO, before=FORGE_PRINT), none),
        "forges_stdout_and_pipes": (notebook(TODO, before=FORGE_STDOUT, after=FORGE_STDOUT), none),
        "forges_json": (notebook(TODO, after=FORGE_JSON), none),
        "forges_registry": (notebook(TODO, before=FORGE_REGISTRY, after=FORGE_REGISTRY), none),
        "patches_torch": (notebook(WRONG, after=PATCH_TORCH), none),
        "reuse_alias": (notebook({"my_kl": "from aigc_course.models.vae import kl_to_standard_normal\n"
                                           "my_kl = kl_to_standard_normal"}), only_11),
        "reuse_import_as": (notebook({"my_kl": "from aigc_course.models.vae import kl_to_standard_normal as my_kl"}),
                            only_11),
        "reuse_wrapper": (notebook({"my_reparameterize": "from aigc_course.models import vae\n"
                                    "def helper(a, b, c):\n    return vae.reparameterize(a, b, c)\n"
                                    "def my_reparameterize(mu, logvar, eps):\n    return helper(mu, logvar, eps)"}),
                          only_12),
        "reuse_getattr_string": (notebook({"my_kl": "import aigc_course.models.vae as m\n"
                                           "my_kl = getattr(m, 'kl_to_' + 'standard_normal')"}), only_11),
        "reuse_source_copy": (notebook({"my_reparameterize": COPY_REPARAMETERIZE}), only_12),
        "reuse_exec_source": (notebook({"my_kl": "import aigc_course.models.vae as m\nns = {'torch': torch}\n"
                                        "exec(open(m.__file__).read(), ns)\nmy_kl = ns['kl_to_standard_normal']"}),
                              none),
        "infinite_loop": (notebook(RIGHT, before="while True:\n    pass"), full),
        "sigint_ignored": (notebook(RIGHT, before="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                    "while True:\n    pass"), full),
        "all_signals_ignored": (notebook(RIGHT, before="import signal\nfor s in (signal.SIGINT, signal.SIGALRM, "
                                         "signal.SIGTERM):\n    signal.signal(s, signal.SIG_IGN)\n"
                                         "while True:\n    pass"), none),
        "slow_answer": (notebook({"my_kl": "while True:\n        pass"}), only_11),
        "os_exit": (notebook(RIGHT, before="import os\nos._exit(1)"), none),
        "fork_bomb": (notebook(RIGHT, before=FORK), full),
        "output_flood": (notebook(RIGHT, before=FLOOD), full),
        "allocates_64_gib": (notebook(RIGHT, before="hog = bytearray(64 * 2**30)"), full),
        "writes_outside": (notebook(RIGHT, before=f"open({str(outside)!r}, 'w').write('x')\n"
                                   "open('/tmp/aigc_outside.txt', 'w').write('x')"), full),
        "no_check_cells": (notebook(RIGHT, checks=False), full),
        "floods_the_result_pipe": (notebook(RIGHT, after="import os\nfor fd in range(3, 64):\n    try:\n"
                                            "        os.write(fd, b'{' * 20 * 2**20)\n    except OSError:\n"
                                            "        pass"), none),
        "invalid_json": ("{ this is not json", none),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    outside = tmp_path_factory.mktemp("outside") / "escaped.txt"
    suite = hostile_suite(outside)
    for learner, (nb, _) in suite.items():
        (root / learner).mkdir()
        target = root / learner / "01_vae.ipynb"
        target.write_text(nb) if isinstance(nb, str) else nbformat.write(nb, target)
    peak = _reset_peak_memory()
    rows = grader.grade_folder(root, root / "report", cell_timeout=12, notebook_timeout=150, progress=False, jobs=2)
    peak_mb = (_peak_memory_kb() - peak) / 1024 if peak is not None else None
    return {row.learner: row for row in rows}, suite, root, outside, peak_mb


def _reset_peak_memory() -> int | None:
    """Reset this process's peak RSS (Linux: /proc/self/clear_refs) and return the current RSS in kB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _peak_memory_kb()


def _peak_memory_kb() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def test_every_score_is_fair(graded):
    rows, suite, _, _, _ = graded
    unfair = {learner: (rows[learner].results, fair, rows[learner].errors)
              for learner, (_, fair) in suite.items() if rows[learner].results != fair}
    assert not unfair, unfair
    assert len(suite) >= 12 and rows["honest"].errors == [] == rows["honest_docstring_names_the_reference"].errors


def test_reports_name_what_happened(graded):
    rows, _, _, _, _ = graded

    def said(learner, *fragments):
        text = "; ".join(rows[learner].errors)
        assert all(f in text for f in fragments), (learner, text)

    said("right_on_the_public_case_only", "1.2: grading case")
    said("returns_nan", "1.2: public case: the result contains NaN")
    said("unfinished", "1.1: public case: Exercise 1.1 reparameterisation: not yet - the exercise is not done yet")
    said("reuse_alias", "1.2: reuse, 0 points: my_kl uses the package's reference aigc_course.models.vae:kl_to_standard")
    said("reuse_import_as", "1.2: reuse, 0 points")
    said("reuse_wrapper", "1.1: reuse, 0 points: my_reparameterize called the package's reference",
         "aigc_course.models.vae:reparameterize")
    said("reuse_getattr_string", "1.2: reuse, 0 points: my_kl called the package's reference")
    said("reuse_source_copy", "1.1: reuse, 0 points: my_reparameterize copies the source of "
                              "aigc_course.models.vae:reparameterize")
    said("reuse_exec_source", "all exercises 0: code that reads or loads code at run time (__file__, exec)")
    said("infinite_loop", "cell 0: _CellTimeout")
    said("all_signals_ignored", "time limit: cell 0 ran past 12 s and could not be interrupted")
    said("slow_answer", "1.2: public case", "_CellTimeout")
    said("os_exit", "the submission's process ended in cell 0 (exit code 1)")
    said("allocates_64_gib", "cell 0: MemoryError")
    said("writes_outside", "cell 0: FileNotFoundError")
    said("no_check_cells", "check cell for exercise 1.1 is missing")
    said("invalid_json", "not a readable notebook")
    said("forges_stdout_and_pipes", "unreadable message(s) from the grading process ignored")
    said("floods_the_result_pipe", "the grading process sent a message over 16 MB")
    said("output_flood", f"output cut: cell 0: {12 * (2**26 + 1) - 65536} characters over the 65536-character limit",
         "bytes over the 1048576-byte limit per notebook")


def test_flood_does_not_grow_the_graders_memory(graded):
    rows, _, _, _, peak_mb = graded
    assert rows["output_flood"].output_bytes >= 12 * 2**26  # the 0.75 GB written to the descriptor reached us ...
    if peak_mb is None:
        pytest.skip("no /proc/self/clear_refs here: peak memory cannot be measured")
    print(f"grader peak RSS growth while grading the suite: {peak_mb:.0f} MB")
    assert peak_mb < 300  # ... and was dropped as it came: the bound is 1 MB + 16 MB per job, plus torch's judging


@pytest.mark.skipif(sandbox.jail_mode() != "namespaces", reason="needs root and unshare (namespaces)")
def test_nothing_escapes_the_sandbox(graded):
    _, _, _, outside, _ = graded
    assert not outside.exists() and not Path("/tmp/aigc_outside.txt").exists()
    sleepers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == f"sleep {SLEEP}"]
    assert sleepers == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_report_lists_every_submission(graded):
    rows, suite, root, _, _ = graded
    md = (root / "report.md").read_text()
    assert md.startswith("| learner | notebook | exercise 1.1 | exercise 1.2 | exercise 1.3 | exercise 1.4 | "
                         "exercise 1.5 | score | max | runtime_s | errors |")
    assert sum(line.startswith("| ") for line in md.splitlines()) == len(suite) + 1
    assert "| honest | 01_vae | pass | pass | pass | pass | pass | 5 | 5 |" in md
    assert f"Isolation: {sandbox.jail_mode()}" in md


def test_the_seed_decides_the_hidden_inputs():
    from aigc_course.teaching.exercises import EXERCISES

    kl = EXERCISES["1.2"]
    a, b, c = kl.grading_inputs(1), kl.grading_inputs(1), kl.grading_inputs(2)
    assert [x.tolist() for case in a for x in case] == [x.tolist() for case in b for x in case]
    assert a[0][0].shape == (5, 3) and len(a) == 1 + 2 + 3  # public, two edge cases, three hidden draws
    assert [x.tolist() for case in a[3:] for x in case] != [x.tolist() for case in c[3:] for x in case]


def test_the_worker_never_sees_the_real_references(tmp_path):
    """The stubbed package: each graded reference raises; other functions are untouched."""
    sandbox.build_stub_package({"aigc_course.models.vae:kl_to_standard_normal"}, tmp_path)
    code = ("import torch, aigc_course.models.vae as v\n"
            "print(v.reparameterize(torch.zeros(1), torch.zeros(1), torch.ones(1)).item())\n"
            "try:\n    v.kl_to_standard_normal(torch.zeros(1, 1), torch.zeros(1, 1))\n"
            "except RuntimeError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert result.stdout.splitlines() == ["1.0", "reference implementation unavailable while grading "
                                          "(aigc_course.models.vae:kl_to_standard_normal)"], result.stderr[-2000:]
    with pytest.raises(ValueError, match="defines no function"):
        sandbox.build_stub_package({"aigc_course.models.vae:no_such_function"}, tmp_path / "x")


def test_every_registered_reference_is_stubbed(tmp_path):
    refs = grader.all_references()
    assert len(refs) >= 17 and "aigc_course.teaching.exercises.responsible_aigc:_z_score_reference" in refs
    sandbox.build_stub_package(refs, tmp_path)
    for ref in refs:
        module, name = ref.split(":")
        path = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
        source = path.read_text() if path.exists() else (path.with_suffix("") / "__init__.py").read_text()
        assert f"{sandbox.STUB_MESSAGE} ({ref})" in source, ref


def test_without_namespaces_the_rlimits_mode_still_grades(tmp_path, monkeypatch):
    """Where unshare or root is missing: same judging, weaker isolation, and the report says so."""
    monkeypatch.setattr(sandbox, "_MODE", ["rlimits"])
    for learner, nb in {"honest": notebook(RIGHT), "alias": notebook({"my_kl": "from aigc_course.models.vae "
                        "import kl_to_standard_normal\nmy_kl = kl_to_standard_normal"}),
                        "loops": notebook(RIGHT, before="while True:\n    pass")}.items():
        (tmp_path / learner).mkdir()
        nbformat.write(nb, tmp_path / learner / "01_vae.ipynb")
    rows = {r.learner: r for r in grader.grade_folder(tmp_path, tmp_path / "report", cell_timeout=8,
                                                       notebook_timeout=120, progress=False, jobs=2)}
    assert {k: r.results for k, r in rows.items()} == {"honest": fair(True, True), "alias": fair(True, False),
                                                      "loops": fair(True, True)}
    assert "Isolation: rlimits" in (tmp_path / "report.md").read_text()


def test_the_graders_current_directory_stays_outside_the_sandbox(tmp_path, monkeypatch):
    """``python -m aigc_course grade`` runs with its current directory first on sys.path; a teaching assistant
    runs it where the submissions are. Only the interpreter's folders and package folders may be bound."""
    submissions = tmp_path / "submissions"
    (submissions / "bob").mkdir(parents=True)
    site = tmp_path / "env" / "lib" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(submissions), str(tmp_path), str(site), *sys.path])
    monkeypatch.chdir(submissions)
    binds = [Path(b) for b in sandbox._binds(tmp_path / "stub")]
    assert not any(b == submissions or b in submissions.parents or submissions in b.parents
                   for b in binds if b not in (site,) and site not in b.parents), binds
    assert site in binds
    assert any(Path(sys.base_prefix).resolve() == b or b in Path(sys.base_prefix).resolve().parents for b in binds)


def test_after_one_case_runs_past_the_limit_the_others_fail_without_running(monkeypatch):
    """A function that never returns costs one time limit, not one per hidden case (80 s of 190 s
    in the suite above, for slow_answer's 1.2)."""
    import signal

    from aigc_course.teaching import wire, worker
    from aigc_course.teaching.exercises import EXERCISES

    calls = []

    def never_returns(mu, logvar):
        calls.append(mu.shape)
        while True:
            pass

    for stream in ("stdout", "stderr"):  # the worker redirects them around each call
        monkeypatch.setattr(sys, stream, getattr(sys, stream))
    previous = signal.signal(signal.SIGALRM, worker._alarm)
    try:
        inputs = [wire.encode(args) for args in EXERCISES["1.2"].grading_inputs(0)]
        found = worker._outcomes({"my_kl": never_returns}, {"id": "1.2", "function": "my_kl", "inputs": inputs}, 1)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert len(inputs) >= 3 and len(calls) == 1
    assert [f["raised"] for f in found] == ["_CellTimeout"] * len(inputs)
    assert "earlier case" in found[-1]["message"]
