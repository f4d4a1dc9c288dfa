"""Regenerate the README screenshots of the live explorers in 01_vae.ipynb (`make screenshots`).

Starts JupyterLab on 127.0.0.1 with a temporary copy of notebooks/ (the same code as
the browser tests, tests/e2e/labdriver.py), opens 01_vae in headless system Chromium,
runs all cells, sets each explorer to a telling position and saves one PNG per explorer:

    docs/img/latent_explorer.png         LatentExplorer at z = (z1, z2)
    docs/img/interpolation_explorer.png  InterpolationExplorer at t

Needs the `playwright` package and Chromium (scripts/ensure_chromium); works offline.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import labdriver  # noqa: E402


def move_to(nb: labdriver.Notebook, slider, target: float, step: float, tag: str) -> None:
    """Press arrow keys on ``slider`` until its readout shows ``target`` (each press redraws ``tag``)."""
    for _ in range(1000):
        value = labdriver.readout_value(slider)
        if abs(value - target) < step / 2:
            return
        nb.press(slider, "ArrowRight" if target > value else "ArrowLeft", tag)
    raise RuntimeError(f"slider stuck at {value}, wanted {target}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="folder for the PNGs (default docs/img)")
    parser.add_argument("--z", type=float, nargs=2, default=(0.4, 0.4), metavar=("Z1", "Z2"),
                        help="latent point to show (default 0.4 0.4: a clear 2)")
    parser.add_argument("--t", type=float, default=0.5, help="interpolation position to show (default 0.5)")
    parser.add_argument("--scale", type=float, default=2, help="device pixel ratio (2: crisp on hi-dpi screens)")
    args = parser.parse_args(argv)

    reason = labdriver.missing_requirements()
    if reason:
        print(f"screenshots: cannot run: {reason}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aigc-screenshots-") as tmp:
        tmp = Path(tmp)
        with labdriver.JupyterLab(REPO / "notebooks", tmp / "lab") as lab, \
                labdriver.chromium_page(tmp / "chromium", scale=args.scale) as (page, console):
            nb = labdriver.Notebook(page, console, shots=tmp / "shots")
            nb.open(lab.url("01_vae.ipynb"))
            print(f"Run All of 01_vae.ipynb ({time.monotonic() - start:.0f} s so far) ...", flush=True)
            print(f"  done in {nb.run_all():.0f} s", flush=True)
            if nb.error_outputs():
                print("screenshots: the notebook printed errors:\n" + "\n".join(nb.error_outputs()), file=sys.stderr)
                return 1

            latent = nb.widget_with("z₁")
            nb.scroll_to(latent)
            nb.track("digit", latent.locator("img[width='196']").first)
            move_to(nb, nb.slider("z₁", latent), args.z[0], 0.05, "digit")
            move_to(nb, nb.slider("z₂", latent), args.z[1], 0.05, "digit")
            page.wait_for_timeout(800)  # status line and map settle
            paths = [nb.shot("latent_explorer", latent)]

            interp = nb.widget_with("t")
            nb.scroll_to(interp)
            nb.track("middle", interp.locator("img").nth(1))
            move_to(nb, nb.slider("t", interp), args.t, 0.02, "middle")
            page.wait_for_timeout(800)
            paths.append(nb.shot("interpolation_explorer", interp))

            if console.errors():
                print("screenshots: browser console errors:\n" + "\n".join(console.errors()), file=sys.stderr)
                return 1
        for path in paths:
            target = args.out / path.name
            target.write_bytes(path.read_bytes())
            print(f"wrote {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")
    print(f"screenshots: {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
