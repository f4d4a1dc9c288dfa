"""L-BFGS against Adam for Gatys style transfer, with Adam's learning rate swept: same image, same budget.

Each run optimises the same picture (lesson 03's settings: 192 px, starting from
the content photo) for the same number of loss evaluations (one forward and
backward pass through VGG19 each). L-BFGS uses its default step length 1, once
as a plain step and once with ``torch.optim.LBFGS``'s strong-Wolfe line search
(which shortens a step that overshoots; its extra evaluations count against the
budget); Adam gets every learning rate in ``--adam-lr`` (pixels live in [0, 1]). Printed per
run: the loss at the start, after 10 evaluations and at the end, and the lowest.

    python benchmarks/style_optimizers.py                          # chelsea x starry_night
    python benchmarks/style_optimizers.py --style ihc --steps 100

Losses are deterministic up to floating-point order, so a busy machine changes
the seconds, not the ranking.
"""
from __future__ import annotations

import argparse

from aigc_course.core.env import set_threads
from aigc_course.train.stylize import stylize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default="chelsea")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=50, help="loss evaluations per run")
    parser.add_argument("--adam-lr", type=float, nargs="+", default=[0.002, 0.006, 0.02, 0.06, 0.2])
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    set_threads(args.threads)
    runs = [("lbfgs", 1.0, None), ("lbfgs", 1.0, "strong_wolfe")] + [("adam", lr, None) for lr in args.adam_lr]
    print(f"{args.content} x {args.style}, {args.size} px, {args.steps} loss evaluations per run")
    print(f"{'optimizer':<21} {'lr':>6} {'evals':>5} {'start':>9} {'after 10':>9} {'final':>9} {'lowest':>9} {'seconds':>8}")
    for optimizer, lr, line_search in runs:
        r = stylize(args.content, args.style, size=args.size, steps=args.steps, optimizer=optimizer, lr=lr,
                    line_search=line_search, progress=False)
        name = optimizer + (f" + {line_search}" if line_search else "")
        totals = [h["total"] for h in r.history]
        print(f"{name:<21} {lr:>6g} {len(totals):>5} {totals[0]:>9.3g} {totals[min(9, len(totals) - 1)]:>9.3g} "
              f"{totals[-1]:>9.3g} {min(totals):>9.3g} {r.seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
