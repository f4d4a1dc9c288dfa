"""An isolated, resource-limited process for a submission's code (Linux namespaces + rlimits).

``start`` launches :mod:`aigc_course.teaching.worker` for one submission. Where
the grader runs as root and ``unshare`` works (``jail_mode() == "namespaces"``),
the worker runs

* in new mount, network and PID namespaces (``unshare --mount --net --pid``):
  no network interface at all, and when the grading ends the namespace's first
  process exits, so the kernel ends every process the submission started;
* in a fresh root filesystem (chroot into a tmpfs) that holds only the system
  and Python directories (read-only), a copy of the package in which every
  graded reference is a stub that raises (at ``/course``), the course data
  (read-only), a 256 MB home (tmpfs) and a 16 MB ``/tmp``: the package's real
  source, other checkouts, the grader's files and the report are not there;
* as an unprivileged user (its own uid for each parallel job of each grading
  run, from ``UID_BASE`` up, so no two workers share a process count) with
  no supplementary groups and ``no_new_privs``;
* under rlimits: address space, CPU seconds, processes (per uid, so a fork
  bomb stops at ``NPROC``), file size, no core files.

Elsewhere (``"rlimits"``) the worker runs as the grader's user in its own
session with the same rlimits but ``NPROC`` (which would count all of that
user's processes), the stubbed package first on ``PYTHONPATH``, and no
filesystem, network or user isolation; the report says so.

This file also runs as a script, ``sandbox.py --setup CONFIG``: the first
process inside the namespaces, which builds the root, starts the worker and
waits for it. It imports only the standard library.
"""
from __future__ import annotations

import ast
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UID_BASE = 61000
STUB_MESSAGE = "reference implementation unavailable while grading"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]   # .../aigc_course
HOME, GRADING, COURSE = "/home/learner", "/grading", "/course"


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    memory_mb: int = 8192        # address space (RLIMIT_AS) of each of its processes
    cpu_seconds: int = 900       # RLIMIT_CPU of each process
    processes: int = 64          # RLIMIT_NPROC per uid (threads count too)
    file_mb: int = 64            # largest file it may write (RLIMIT_FSIZE)
    cell_timeout: int = 60       # seconds of wall time per cell and per call of a graded function
    cell_output: int = 64 * 1024  # characters of print output kept per cell (in the worker)


# ----------------------------------------------------------------------------- the stubbed package


def build_stub_package(references: set[str], out: Path) -> Path:
    """Copy the package to ``out/aigc_course`` with each "module:function" in ``references`` stubbed.

    A stub keeps the signature and raises ``RuntimeError("reference implementation
    unavailable while grading (module:function)")``, so importing, aliasing,
    wrapping, ``getattr`` or reloading all reach only the stub.
    """
    target = out / "aigc_course"
    shutil.copytree(PACKAGE_ROOT, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    by_module: dict[str, set[str]] = {}
    for ref in references:
        module, name = ref.split(":")
        by_module.setdefault(module, set()).add(name)
    for module, names in by_module.items():
        path = target.joinpath(*module.split(".")[1:]).with_suffix(".py")
        if not path.exists():
            path = path.with_suffix("") / "__init__.py"
        lines = path.read_text().splitlines()
        nodes = [n for n in ast.parse("\n".join(lines)).body
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in names]
        missing = names - {n.name for n in nodes}
        if missing:
            raise ValueError(f"{module} defines no function {sorted(missing)} to stub out")
        for node in sorted(nodes, key=lambda n: -n.lineno):  # bottom up: line numbers stay valid
            first, last = node.body[0].lineno - 1, node.end_lineno
            indent = " " * node.body[0].col_offset
            lines[first:last] = [f"{indent}raise RuntimeError({STUB_MESSAGE + f' ({module}:{node.name})'!r})"]
        path.write_text("\n".join(lines) + "\n")
    return out


# ----------------------------------------------------------------------------- starting the worker

_MODE: list[str] = []


def jail_mode() -> str:
    """``"namespaces"`` where root can create mount, network and PID namespaces here, else ``"rlimits"``."""
    if not _MODE:
        ok = False
        if os.geteuid() == 0 and shutil.which("unshare") and sys.platform.startswith("linux"):
            probe = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child",
                                    "--mount-proc", "true"], capture_output=True, timeout=30)
            ok = probe.returncode == 0
        _MODE.append("namespaces" if ok else "rlimits")
    return _MODE[0]


def _binds(stub_root: Path) -> list[str]:
    """Host directories the worker sees read-only at the same path: system and Python, never the repository.

    Of ``sys.path`` only the interpreter's own directories and package folders (``site-packages``,
    ``dist-packages``) are shown. ``python -m`` puts the current directory first on ``sys.path``, and a
    teaching assistant's current directory often holds every learner's submission: binding it would let one
    submission read (and reuse) the others.
    """
    repo = PACKAGE_ROOT.parent
    prefixes = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.exec_prefix).resolve()}

    def is_python_dir(entry: str) -> bool:
        real = Path(entry).resolve()
        return (real.name in ("site-packages", "dist-packages")
                or any(real == x or x in real.parents for x in prefixes))

    wanted = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys",
              sys.prefix, sys.base_prefix, sys.exec_prefix, *[p for p in sys.path if p and is_python_dir(p)]]
    found: list[Path] = []
    for p in wanted:
        path = Path(p)
        if not path.is_dir() or path.is_symlink():
            continue
        real = path.resolve()
        if real == repo or real in repo.parents or real == stub_root:
            continue  # the checkout (with the real references and its git history) stays out ...
        if repo in real.parents and not any(real == x or x in real.parents for x in prefixes):
            continue  # ... except a virtual environment inside it
        if not any(real == f or f in real.parents for f in found):
            found = [f for f in found if real not in f.parents] + [real]
    return [str(f) for f in found]


def start(cells: list[str], scratch: Path, stub_root: Path, data_dir: Path | None, limits: Limits,
          slot: int, fd_in: int, fd_out: int) -> subprocess.Popen:
    """Start the worker for ``cells`` (the submission's code cells); its stdout+stderr is the returned pipe."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "cells.json").write_text(json.dumps(cells))
    mode = jail_mode()
    uid = UID_BASE + 64 * (os.getpid() % 4096) + slot % 64  # this run (process) and job: a uid no other worker has
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    config = {"fd_in": fd_in, "fd_out": fd_out, "cell_timeout": limits.cell_timeout,
              "cell_output_cap": limits.cell_output,
              "cells": f"{GRADING}/cells.json" if mode == "namespaces" else str(scratch / "cells.json")}
    (scratch / "config.json").write_text(json.dumps(config))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "AIGC_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONNOUSERSITE": "1", "AIGC_GRADING": "1"}
    rlimits = {"AS": limits.memory_mb * 2**20, "CPU": limits.cpu_seconds, "NPROC": limits.processes,
               "FSIZE": limits.file_mb * 2**20, "CORE": 0}
    if mode == "namespaces":
        setup = {"root": str(scratch / "root"), "binds": _binds(stub_root), "stub": str(stub_root),
                 "data": str(data_dir) if data_dir and data_dir.is_dir() else None, "grading": str(scratch),
                 "uid": uid, "rlimits": rlimits, "python": sys.executable,
                 "env": {**env, "HOME": HOME, "TMPDIR": "/tmp", "PYTHONPATH": COURSE,
                         "MPLCONFIGDIR": f"{HOME}/.config/matplotlib"},
                 "argv": ["-m", "aigc_course.teaching.worker", f"{GRADING}/config.json"]}
        (scratch / "setup.json").write_text(json.dumps(setup))
        command = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
                   sys.executable, "-I", "-S", str(Path(__file__).resolve()), "--setup", str(scratch / "setup.json")]
        preexec = None
    else:
        env.update({"HOME": str(home), "TMPDIR": str(home), "PYTHONPATH": str(stub_root),
                    "MPLCONFIGDIR": str(home / ".mpl")})
        command = [sys.executable, "-m", "aigc_course.teaching.worker", str(scratch / "config.json")]
        rlimits.pop("NPROC")  # it would count every process of the grader's own user: not enforced here
        preexec = lambda: _set_rlimits(rlimits)  # noqa: E731  (runs in the child before exec)
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=str(home), env=env if mode != "namespaces" else {"PATH": env["PATH"]},
                            pass_fds=(fd_in, fd_out), start_new_session=True, preexec_fn=preexec)


def _set_rlimits(rlimits: dict[str, int]) -> None:
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))


# ----------------------------------------------------------------------------- inside the namespaces

_MS = {"RDONLY": 1, "NOSUID": 2, "NODEV": 4, "NOEXEC": 8, "REMOUNT": 32, "BIND": 4096, "REC": 16384,
       "PRIVATE": 1 << 18}


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _bind(source: str, target: str, writable: bool = False) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, _MS["BIND"])
    if not writable:
        _mount(None, target, None, _MS["BIND"] | _MS["REMOUNT"] | _MS["RDONLY"] | _MS["NOSUID"] | _MS["NODEV"])


def _setup(config_path: str) -> int:
    """PID 1 of the namespaces: build the root, drop to the learner's uid in a child, wait, exit."""
    cfg = json.load(open(config_path))
    root, uid = cfg["root"], cfg["uid"]
    _mount(None, "/", None, _MS["REC"] | _MS["PRIVATE"])
    os.makedirs(root, exist_ok=True)
    _mount("tmpfs", root, "tmpfs", _MS["NOSUID"] | _MS["NODEV"], "size=16m,mode=755")
    for path in cfg["binds"]:
        _bind(path, root + path)
    for name in ("lib", "lib64", "bin", "sbin"):  # merged-/usr systems: keep the links
        if os.path.islink("/" + name) and not os.path.lexists(f"{root}/{name}"):
            os.symlink(os.readlink("/" + name), f"{root}/{name}")
    for device in ("null", "zero", "urandom", "random"):
        _bind(f"/dev/{device}", f"{root}/dev/{device}", writable=True)
    os.makedirs(f"{root}/proc", exist_ok=True)
    _mount("proc", f"{root}/proc", "proc", _MS["NOSUID"] | _MS["NODEV"] | _MS["NOEXEC"])
    _bind(cfg["stub"] + "/aigc_course", root + COURSE + "/aigc_course")
    for path in cfg["binds"]:  # an installed copy of the package is replaced by the stubbed one as well
        if os.path.isdir(f"{path}/aigc_course"):
            _bind(cfg["stub"] + "/aigc_course", f"{root}{path}/aigc_course")
    if cfg["data"]:
        _bind(cfg["data"], root + COURSE + "/data")
    _bind(cfg["grading"] + "/cells.json", root + GRADING + "/cells.json")
    _bind(cfg["grading"] + "/config.json", root + GRADING + "/config.json")
    os.makedirs(root + HOME, exist_ok=True)
    _mount("tmpfs", root + HOME, "tmpfs", _MS["NOSUID"] | _MS["NODEV"], f"size=256m,mode=700,uid={uid},gid={uid}")
    os.makedirs(root + "/tmp", exist_ok=True)
    os.chmod(root + "/tmp", 0o1777)
    os.chroot(root)
    os.chdir(HOME)
    child = os.fork()
    if child == 0:
        try:
            _set_rlimits(cfg["rlimits"])
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
            os.execve(cfg["python"], [cfg["python"], *cfg["argv"]], cfg["env"])
        finally:
            os._exit(127)
    while True:  # as PID 1, reap every orphan until the worker itself ends
        pid, status = os.wait()
        if pid == child:
            return os.waitstatus_to_exitcode(status)


if __name__ == "__main__" and sys.argv[1:2] == ["--setup"]:
    try:
        code = _setup(sys.argv[2])
    except Exception as err:  # the grader reads this line from the output pipe
        print(f"sandbox setup failed: {type(err).__name__}: {err}", flush=True)
        code = 125
    os._exit(code if code >= 0 else 128 - code)
