"""Style transfer at equal loss: the PyTorch tutorial's recipe vs ours, interleaved in one run.

    python benchmarks/style_equal_loss.py                  # 128 px, 300 evaluations, 3 interleaved rounds
    python benchmarks/style_equal_loss.py --repeats 1 --no-256

Baseline = "Neural Transfer Using PyTorch" (pytorch/tutorials, advanced_source/neural_style_tutorial.py)
as written: loss modules after conv_4 (content) and conv_1..conv_5 (style), the network trimmed after
the last one, Gram matrices divided by a*b*c*d, ``optim.LBFGS([x])`` with its defaults (lr 1,
max_iter 20, history 100, no line search) stepped until 300 closure calls, the image clamped to
[0, 1] in every closure, starting from the content image, float32.

Fairness: the tutorial's style weight 1e6 and content weight 1 are set for torchvision's input
scale (pixels standardised by an ImageNet std of about 0.226). Our shipped VGG19 has the Caffe
weights, whose input is 0-255 minus the mean pixel: every feature map is about K = 255 * 0.226 = 57.6
times larger, a content loss K**2 and a style loss (Gram of Gram) K**4 times larger. Both runs
therefore use the tutorial's own weighting expressed in those units: content 1 / K**2, style
1e6 / K**4 (the same optimisation problem as the tutorial's, the same numbers L-BFGS sees). With
them the baseline converges (the old 1e2/1 weighting made plain L-BFGS jump).

Ours = ``aigc_course.train.stylize.stylize`` with the same layers and weights (no total variation),
i.e. the same objective; it differs only in how it is computed and optimised (targets computed once,
channels_last, bf16 autocast where the CPU has it, one L-BFGS call with history 50).

One common loss: every image either run evaluates is copied, and afterwards the tutorial's
objective is recomputed on it in float32 (outside the timings). Time-to-reach = seconds from the
start of a run (model built, targets computed) until the first evaluated image whose common loss
is at or below the target; the target is the worse of the two runs' final common losses, so both
reach it. Medians over the interleaved rounds; speed-up = baseline / ours.

Plain L-BFGS (no line search) is chaotic on this objective: with the photographed texture
``--style flower`` both runs drop to ~1e3 and then jump to 1e5-1e6 late in the run, and a change
of thread count (floating-point summation order) moves where; so the best and last iterates are
both saved, and the default style is *The Starry Night*, where both runs converge monotonically.

Last, the lesson's own recipe (Gatys layers, total variation, 256 px) runs twice with the same budget of
evaluations: L-BFGS with plain unit steps (the lesson's default) and with ``line_search="strong_wolfe"``;
the script prints how soon the second reaches the first one's final loss.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from style_transfer import load, prepare, run_tutorial, tutorial_model  # noqa: E402  the tutorial's modules, in its own style

from aigc_course.models import style as S  # noqa: E402
from aigc_course.models import vgg as V  # noqa: E402
from aigc_course.train.stylize import stylize  # noqa: E402

K = 255.0 * sum(V.PREPROCESS["torchvision"].std) / 3   # Caffe feature scale / torchvision feature scale
CONTENT_WEIGHT, STYLE_WEIGHT = 1.0 / K**2, 1e6 / K**4   # the tutorial's 1 and 1e6 in Caffe units


def tutorial_loss(style_losses, content_losses):
    return STYLE_WEIGHT * sum(sl.loss for sl in style_losses) + CONTENT_WEIGHT * sum(cl.loss for cl in content_losses)


def run_baseline(content, style, steps: int):
    """The tutorial's run_style_transfer at its own weights in Caffe units; returns the final image and
    (seconds, image) of every evaluation."""
    trace = []
    image, _, _ = run_tutorial(content, style, steps, trim=True, style_weight=STYLE_WEIGHT,
                               content_weight=CONTENT_WEIGHT, trace=trace)
    return image, trace


class Recorder(nn.Module):
    """Wraps a VGGFeatures and copies every image it sees with gradients on (one per loss evaluation)."""

    def __init__(self, inner: V.VGGFeatures):
        super().__init__()
        self.inner, self.trace, self.start = inner, [], None

    def forward(self, x):
        if torch.is_grad_enabled() and self.start is not None:
            self.trace.append((time.perf_counter() - self.start, x.detach().float().contiguous().clone()))
        return self.inner(x)


def run_ours(content, style, steps: int, **overrides):
    config = S.StyleConfig(content_layers=S.TUTORIAL_CONTENT, style_layers=S.TUTORIAL_STYLE,
                           content_weight=CONTENT_WEIGHT, style_weight=STYLE_WEIGHT, tv_weight=0.0, steps=steps,
                           size=max(content.shape[-2:]), **overrides)
    start = time.perf_counter()
    rec = Recorder(V.VGGFeatures((*config.content_layers, *config.style_layers), config.weights,
                                 config.pooling, config.truncate))
    rec.start = start
    result = stylize(content, style, config, extractor=rec, progress=False)
    return result.image, rec.trace


def common_losses(trace, content, style):
    """The tutorial's objective in float32 on every recorded image: [(seconds, loss)]."""
    model, style_losses, content_losses = tutorial_model(content, style, trim=True)
    out = []
    with torch.no_grad():
        for t, img in trace:
            model(img)
            out.append((t, float(tutorial_loss(style_losses, content_losses))))
    return out


def time_to_reach(curve, target):
    return next((t for t, v in curve if v <= target), float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="longer side (the tutorial's CPU size)")
    parser.add_argument("--steps", type=int, default=300, help="loss evaluations per run (the tutorial's 300)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved baseline/ours rounds")
    parser.add_argument("--content", default="chelsea")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "style_equal_loss"))
    parser.add_argument("--no-256", dest="big", action="store_false", help="skip the 256 px lesson-recipe timing")
    parser.add_argument("--big-steps", type=int, default=50, help="evaluations of the 256 px lesson recipe")
    parser.add_argument("--big-style", default="starry_night")
    args = parser.parse_args()
    content, style = prepare(args.content, args.style, args.size)
    print(f"{args.content} x {args.style}, {tuple(content.shape[-2:])} px, {args.steps} evaluations; weights "
          f"content {CONTENT_WEIGHT:.3g}, style {STYLE_WEIGHT:.3g} (tutorial's 1 and 1e6, K = {K:.1f})\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {"baseline": lambda: run_baseline(content, style, args.steps),
            "ours": lambda: run_ours(content, style, args.steps)}
    curves = {name: [] for name in runs}
    finals, bests = {}, {}
    for r in range(args.repeats):
        for name, fn in runs.items():
            image, trace = fn()
            curve = common_losses(trace, content, style)
            curves[name].append(curve)
            finals[name] = image
            bests[name] = trace[min(range(len(curve)), key=lambda i: curve[i][1])][1]
            print(f"  round {r + 1}: {name:<9} {curve[-1][0]:6.1f} s, {len(curve)} evals, final common loss "
                  f"{curve[-1][1]:.4g}, lowest {min(v for _, v in curve):.4g} ({load()})", flush=True)
    from PIL import Image
    for name in runs:  # plain L-BFGS is not monotone: the last iterate can be far worse than the best
        Image.fromarray(S.to_uint8(finals[name])).save(out / f"{name}_last_{args.size}px.png")
        Image.fromarray(S.to_uint8(bests[name])).save(out / f"{name}_best_{args.size}px.png")
    # the loss both reach: the worse of the two final (lowest-in-run) common losses, per round
    rows = []
    for b, o in zip(curves["baseline"], curves["ours"]):
        target = max(min(v for _, v in b), min(v for _, v in o))
        rows.append((target, time_to_reach(b, target), time_to_reach(o, target), b[-1][0], o[-1][0],
                     b[-1][0] / len(b), o[-1][0] / len(o)))
    med = [statistics.median(col) for col in zip(*rows)]
    print(f"\n{'':<10}{'target loss':>12}{'baseline s':>12}{'ours s':>9}{'speed-up':>10}   "
          f"(full run {med[3]:.1f} s vs {med[4]:.1f} s; {med[5] * 1000:.0f} vs {med[6] * 1000:.0f} ms/eval)")
    for i, (target, tb, to, *_rest) in enumerate(rows):
        print(f"round {i + 1:<4}{target:12.4g}{tb:12.1f}{to:9.1f}{tb / to:9.2f}x")
    print(f"{'median':<10}{med[0]:12.4g}{med[1]:12.1f}{med[2]:9.1f}{med[1] / med[2]:9.2f}x  "
          f"<- time to reach a loss both reach")
    # a second, easier target: the baseline's loss after half its evaluations
    b, o = curves["baseline"][-1], curves["ours"][-1]
    half = b[len(b) // 2][1]
    print(f"(last round, target = baseline's loss at evaluation {len(b) // 2} = {half:.4g}: baseline "
          f"{time_to_reach(b, half):.1f} s, ours {time_to_reach(o, half):.1f} s, "
          f"{time_to_reach(b, half) / time_to_reach(o, half):.2f}x)")
    print(f"images (last round, last and lowest-loss iterate): {out}/{{baseline,ours}}_{{last,best}}_{args.size}px.png")

    if args.big:  # the lesson's recipe at 256 px: plain L-BFGS steps against L-BFGS with a line search
        print(f"\nlesson recipe (Gatys layers) at 256 px, {args.content} x {args.big_style}, {args.big_steps} evaluations:")
        curves = {}  # (seconds since the call, loss) of every evaluation
        for line_search in (None, "strong_wolfe"):
            curve, start = curves.setdefault(line_search, []), time.perf_counter()

            def record(i, row, curve=curve, start=start):
                curve.append((time.perf_counter() - start, row["total"]))

            result = stylize(args.content, args.big_style, size=256, steps=args.big_steps, line_search=line_search,
                             progress=False, callback=record)
            h, w = result.image.shape[-2:]
            name = line_search or "plain"
            path = out / f"ours_lesson_{name}_{w}x{h}.png"
            Image.fromarray(S.to_uint8(result.image)).save(path)
            print(f"  L-BFGS {name:<13} {curve[-1][0]:5.1f} s, loss {result.history[0]['total']:.4g} -> "
                  f"{result.final_loss:.4g} ({load()}); {path}")
        (plain_seconds, plain_loss), searched = curves[None][-1], curves["strong_wolfe"]
        hit = next((i for i, (_, v) in enumerate(searched) if v <= plain_loss), None)
        if hit is None:
            print(f"  with the line search the plain run's final loss {plain_loss:.4g} was not reached")
        else:
            print(f"  with the line search the plain run's final loss {plain_loss:.4g} is reached after {hit + 1} "
                  f"evaluations, {searched[hit][0]:.1f} s: {plain_seconds / searched[hit][0]:.2f}x faster at equal loss")


if __name__ == "__main__":
    main()
