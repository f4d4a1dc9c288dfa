"""Static checks of a submission's own code for reuse of the package's reference implementations.

The isolated worker already sees every graded reference as a stub that raises
(:mod:`aigc_course.teaching.sandbox`), so calling one, under any name, fails at
run time. These checks name the reuse in the report and catch what a stub
cannot: a reference's source pasted into the notebook. They read only the
cells the learner wrote (cells that differ from the lesson's own), and flag

* ``names``: a graded function whose definition, alias or import mentions a
  reference (``my_kl = vae.kl_to_standard_normal``, a wrapper ``def my_kl(...):
  return kl_to_standard_normal(...)``, ``... import kl_to_standard_normal as my_kl``),
  or a reference's name in any string but a docstring (``getattr(vae, "kl_to_standard_normal")``);
* ``copies``: a graded function whose body, with every name renamed, matches a
  reference's body at >= ``SIMILAR`` (difflib ratio of the AST dumps), for
  references of two or more statements and at least ``LONG_ENOUGH`` AST nodes
  (a one-line formula written from the equation cannot be told from a copy, so
  it is not judged);
* ``dynamic``: code that reads or loads code at run time (``exec``, ``eval``,
  ``compile``, ``__import__``, ``importlib``'s loaders, ``inspect.getsource``,
  ``__file__``, ``__code__``, ...): every exercise of that notebook scores 0.

What they do not catch: reuse that hides the name (built from pieces) and also
avoids the stub, which needs a copy of the package's source outside the worker.
"""
from __future__ import annotations

import ast
import copy
import difflib
import importlib
import inspect
import re
from functools import lru_cache

from aigc_course.teaching.exercises import Exercise

SIMILAR = 0.9
LONG_ENOUGH = 20
DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "breakpoint"}
DYNAMIC_NAMES = {"getsource", "getsourcelines", "getsourcefile", "getfile", "spec_from_file_location",
                 "SourceFileLoader", "run_path", "run_module", "reload", "import_module", "__file__", "__code__",
                 "__wrapped__", "__closure__", "__globals__", "linecache", "marshal", "__builtins__"}


def _names(node: ast.AST) -> set[str]:
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Attribute):
            found.add(n.attr)
        elif isinstance(n, ast.alias):
            found.update({n.name.split(".")[-1], n.asname or ""})
    return found


def _shape(function: ast.AST) -> tuple[list[str], int]:
    """Tokens of a function body's AST with every name renamed in order of first use, and its node count."""
    body = copy.deepcopy(list(function.body))
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    renames: dict[str, str] = {a.arg: f"v{i}" for i, a in enumerate(function.args.args)}
    module = ast.Module(body=body, type_ignores=[])
    for n in ast.walk(module):
        if isinstance(n, ast.Name):
            n.id = renames.setdefault(n.id, f"v{len(renames)}")
    tokens = re.findall(r"\w+|[^\w\s]", ast.dump(module, annotate_fields=False))
    return tokens, sum(1 for _ in ast.walk(module)) if len(body) > 1 else 0  # one statement: not judged


@lru_cache(maxsize=None)
def _reference_shape(ref: str) -> tuple[list[str], int] | None:
    module, name = ref.split(":")
    try:
        tree = ast.parse(inspect.getsource(getattr(importlib.import_module(module), name)).strip())
    except (OSError, TypeError, SyntaxError, AttributeError):
        return None
    return _shape(tree.body[0])


def _defines(tree: ast.AST, function: str) -> list[ast.AST]:
    """Nodes that give ``function`` its value: its def, an assignment to it, an import as it."""
    found = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function:
            found.append(n)
        elif isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if any(function in {t.id for t in ast.walk(target) if isinstance(t, ast.Name)} for target in targets):
                found.append(n)
        elif isinstance(n, (ast.Import, ast.ImportFrom)) and any(a.asname == function or a.name == function
                                                                  for a in n.names):
            found.append(n)
    return found


def scan(cells: list[str], exercises: list[Exercise]) -> tuple[dict[str, str], str | None]:
    """(reason per exercise id found reusing a reference, a notebook-wide reason or None) for these cells."""
    trees = []
    for source in cells:
        try:
            trees.append(ast.parse(source))
        except (SyntaxError, ValueError):
            continue  # the worker reports it when the cell runs
    dynamic = sorted({n.func.id for t in trees for n in ast.walk(t) if isinstance(n, ast.Call)
                      and isinstance(n.func, ast.Name) and n.func.id in DYNAMIC_CALLS}
                     | {name for t in trees for name in _names(t) & DYNAMIC_NAMES})
    docstrings = {id(n.value) for t in trees for n in ast.walk(t) if isinstance(n, ast.Expr)}
    strings = [n.value for t in trees for n in ast.walk(t) if isinstance(n, ast.Constant)
               and isinstance(n.value, str) and id(n) not in docstrings]  # a docstring may name what it mirrors
    # names the learner's cells bind to other names: `from ... import Block as B`, `B = gpt.Block`
    aliases = {a.asname: a.name.split(".")[-1] for t in trees for n in ast.walk(t)
               if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names if a.asname}
    aliases |= {target.id: n.value.attr if isinstance(n.value, ast.Attribute) else n.value.id
                for t in trees for n in ast.walk(t) if isinstance(n, ast.Assign)
                and isinstance(n.value, (ast.Name, ast.Attribute)) for target in n.targets
                if isinstance(target, ast.Name)}
    found: dict[str, str] = {}
    for exercise in exercises:
        refs = {ref.split(":")[1]: ref for ref in (*exercise.references(), *exercise.mentions)}
        for tree in trees:
            for node in _defines(tree, exercise.function):
                seen = _names(node)
                used = sorted((seen | {aliases[n] for n in seen if n in aliases}) & set(refs))
                if used:
                    found[exercise.id] = f"{exercise.function} uses the package's reference {refs[used[0]]}"
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    reason = _copied(node, exercise)
                    if reason:
                        found[exercise.id] = reason
        named = [name for name in refs for s in strings if name in s]
        if named and exercise.id not in found:
            found[exercise.id] = f"names the package's reference {refs[named[0]]} in a string"
    notebook = (f"code that reads or loads code at run time ({', '.join(dynamic)}): "
                f"reuse of the references cannot be ruled out") if dynamic else None
    return found, notebook


def _copied(node: ast.AST, exercise: Exercise) -> str | None:
    mine, _ = _shape(node)
    for ref in exercise.references():
        theirs = _reference_shape(ref)
        if theirs is None or theirs[1] < LONG_ENOUGH:
            continue
        ratio = difflib.SequenceMatcher(None, mine, theirs[0], autojunk=False).ratio()
        if ratio >= SIMILAR:
            return f"{exercise.function} copies the source of {ref} ({ratio:.0%} alike after renaming)"
    return None
