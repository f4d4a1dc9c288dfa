"""Mode coverage of toy GANs on the ring of 8 Gaussians, over several seeds: vanilla vs remedies.

For each loss and seed it trains ``recipes.train_toy_gan`` and prints the modes
covered (a mode counts when >= 2% of 2,000 samples lie within 3 std of it) at
every snapshot, the final share of high-quality samples, and the mean over
seeds. Vanilla (non-saturating) GAN is the baseline measured in the same run.

    python benchmarks/gan_toy_modes.py --seeds 0 1 2 3 4 --losses vanilla r1
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from aigc_course.core import env
from aigc_course.recipes.gan import TOY_PRESETS, train_toy_gan

PRESET = {"vanilla": "toy_vanilla", "r1": "toy_r1", "wgan-gp": "toy_wgan_gp"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--losses", nargs="+", default=["vanilla", "r1"], choices=list(PRESET))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--every", type=int, default=250, help="snapshot every N steps")
    parser.add_argument("--json", help="also write the table as JSON here")
    args = parser.parse_args()
    env.set_threads()
    print(f"{env.hardware_summary()}; torch {torch.__version__}")
    rows = []
    for loss in args.losses:
        for seed in args.seeds:
            recipe = dataclasses.replace(TOY_PRESETS[PRESET[loss]], seed=seed)
            if args.steps:
                recipe.steps = args.steps
            run = train_toy_gan(recipe, snapshot_every=args.every)
            curve = [s.coverage.covered for s in run.snapshots]
            rows.append({"loss": loss, "seed": seed, "covered_by_step": curve,
                         "steps": [s.step for s in run.snapshots], "final_covered": curve[-1],
                         "final_high_quality": round(run.final.high_quality, 3),
                         "mean_covered": round(sum(curve[1:]) / len(curve[1:]), 2), "seconds": round(run.seconds, 1)})
            print(f"{loss:8s} seed {seed}: covered by step {curve}  final {run.final}  ({run.seconds:.1f} s)",
                  flush=True)
    print("\nloss      final modes covered (mean over seeds)  mean over training  high-quality  vs vanilla")
    base = None
    for loss in args.losses:
        sel = [r for r in rows if r["loss"] == loss]
        final = sum(r["final_covered"] for r in sel) / len(sel)
        during = sum(r["mean_covered"] for r in sel) / len(sel)
        hq = sum(r["final_high_quality"] for r in sel) / len(sel)
        base = during if base is None else base
        ratio = f"x{during / base:.2f}" if base > 0 else "n/a (vanilla covered none)"
        print(f"{loss:8s}  {final:5.2f} / 8 ({[r['final_covered'] for r in sel]})        {during:5.2f}"
              f"          {hq:6.1%}      {ratio}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s")
