"""Tidy executed lesson notebooks before committing them (``make notebooks`` runs this).

* A live widget cannot be stored: without a running kernel JupyterLab (and a
  web page such as GitHub) shows the output's ``text/plain`` fallback, which is
  a long ``VBox(children=...)`` repr. We replace it with a one-line invitation
  to run the cell, and drop the saved widget state (JupyterLab does not restore
  it by default, and it is tens of kB of PNG bytes).
* Per-cell execution timestamps change on every run; they are removed so a
  re-run only changes what really changed.

    python scripts/tidy_notebooks.py notebooks/*.ipynb
"""
from __future__ import annotations

import sys

import nbformat

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_FALLBACK = "Live explorer: run this cell (or Run All) to get its controls; they decode on the fly."


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if WIDGET_MIME in output.get("data", {}):
                output["data"]["text/plain"] = WIDGET_FALLBACK
    return nb


if __name__ == "__main__":
    for path in sys.argv[1:]:
        nbformat.write(tidy(nbformat.read(path, as_version=4)), path)
        print(f"tidied {path}")
