"""Execute a lesson notebook and print its slowest code cells (wall time per cell, from nbclient's metadata).

    cd notebooks && PYTHONPATH=$PWD/.. python ../scripts/cell_times.py 03_style_transfer.ipynb

Runs with the machine's default threads (leave AIGC_THREADS unset, as a learner would); the notebook file is
not modified. Prints the 15 slowest cells and the total, kernel start included.
"""
from __future__ import annotations

import datetime as dt
import sys
import time

import nbformat
from nbclient import NotebookClient


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def main(path: str, top: int = 15) -> None:
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
    total = time.perf_counter() - started
    rows = []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in meta and "shell.execute_reply" in meta:
            seconds = (_parse(meta["shell.execute_reply"]) - _parse(meta["iopub.execute_input"])).total_seconds()
            rows.append((seconds, i, cell.get("id"), cell.source.splitlines()[0][:70] if cell.source else ""))
    for seconds, i, cid, first in sorted(rows, reverse=True)[:top]:
        print(f"{seconds:7.2f} s  cell {i:3d} ({cid}): {first}")
    print(f"code cells {sum(r[0] for r in rows):.1f} s; whole run {total:.1f} s (kernel start included)")


if __name__ == "__main__":
    main(sys.argv[1])
