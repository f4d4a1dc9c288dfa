"""The learner's side of grading: run a submission's cells, then call its functions on the grader's inputs.

Started by :mod:`aigc_course.teaching.sandbox` in an isolated, resource-limited
process (``python -m aigc_course.teaching.worker CONFIG``). It talks to the grader
over two pipes in :mod:`aigc_course.teaching.wire`'s format::

    worker -> grader   {"type": "cell", "index": i}            before each cell (progress, for time limits)
                       {"type": "cell_done", "index": i, "error": ..., "cut": n}
                       {"type": "ready"}                        all cells ran
    grader -> worker   {"calls": [{"id": "1.2", "function": "my_kl", "inputs": [...]}, ...]}
    worker -> grader   {"type": "results", "results": {"1.2": [outcome, ...]}}

An outcome is ``{"value": <encoded tensor>}``, ``{"raised": name, "message": text}``
or ``{"type": name}``. Nothing here is trusted: the submission runs in this
process and may rewrite any of it. The grader therefore believes only the
arrays, checks their form, and judges them itself against references it
computes; the package seen here has those references replaced by stubs.
"""
from __future__ import annotations

import io
import json
import os
import signal
import sys


class _CappedStream(io.TextIOBase):
    """stdout/stderr for one cell: passes the first ``cap`` characters to fd 1, counts the rest."""

    def __init__(self, cap: int):
        self.cap, self.written, self.cut = cap, 0, 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = max(self.cap - self.written, 0)
        if room:
            os.write(1, text[:room].encode("utf-8", "replace"))
        self.written += min(len(text), room)
        self.cut += max(len(text) - room, 0)
        return len(text)


class _CellTimeout(BaseException):
    """Raised by SIGALRM in the running cell (a BaseException, so a bare ``except Exception`` cannot eat it)."""


def _alarm(*_):
    raise _CellTimeout("the cell ran past its time limit")


def main(config_path: str) -> None:
    config = json.load(open(config_path))
    main_pid = os.getpid()
    out = os.fdopen(config["fd_out"], "wb", buffering=0)
    inp = os.fdopen(config["fd_in"], "rb", buffering=0)

    def send(message: dict) -> None:
        if os.getpid() != main_pid:  # a process the submission forked: it speaks for no one
            os._exit(0)
        from aigc_course.teaching import wire
        out.write(wire.dumps(message))

    os.environ["AIGC_GRADING"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch  # noqa: F401  (imported before the clock of cell 0 starts)

    signal.signal(signal.SIGALRM, _alarm)
    namespace = {"__name__": "__main__", "display": lambda *a, **k: print(*a)}
    cells = json.load(open(config["cells"]))
    for index, source in enumerate(cells):
        send({"type": "cell", "index": index})
        stream = _CappedStream(config["cell_output_cap"])
        sys.stdout = sys.stderr = stream
        error = None
        try:
            signal.alarm(config["cell_timeout"])
            exec(compile(source, f"<cell {index}>", "exec"), namespace)
        except BaseException as err:  # the submission's errors are reported, never fatal here
            error = f"{type(err).__name__}: {str(err)[:200]}"
        finally:
            signal.alarm(0)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        send({"type": "cell_done", "index": index, "error": error, "cut": stream.cut})
    send({"type": "ready"})
    request = json.loads(inp.readline())
    send({"type": "results", "results": {call["id"]: _outcomes(namespace, call, config["cell_timeout"])
                                         for call in request["calls"]}})


def _outcomes(namespace: dict, call: dict, seconds: int) -> list[dict]:
    from aigc_course.teaching import exercises, wire

    function = namespace.get(call["function"])
    if not callable(function):
        return [{"raised": "NameError", "message": f"{call['function']} is not defined"}] * len(call["inputs"])
    run = exercises.EXERCISES[call["id"]].run
    found = []
    for k, inputs in enumerate(call["inputs"]):
        if found and found[-1].get("raised") == _CellTimeout.__name__:
            # one case past the limit already fails the exercise: do not wait out the limit for every case
            found += [{"raised": _CellTimeout.__name__, "message": "not run: an earlier case ran past its time limit"}
                      ] * (len(call["inputs"]) - k)
            break
        stream = _CappedStream(0)
        sys.stdout = sys.stderr = stream
        try:
            signal.alarm(seconds)
            got = run(function, tuple(wire.decode(inputs)))
            signal.alarm(0)
            found.append({"value": wire.encode(got)} if isinstance(got, torch_tensor()) else
                         {"type": type(got).__name__})
        except BaseException as err:  # includes the time limit
            found.append({"raised": type(err).__name__, "message": str(err)[:300]})
        finally:
            signal.alarm(0)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return found


def torch_tensor():
    import torch
    return torch.Tensor


if __name__ == "__main__":
    main(sys.argv[1])
