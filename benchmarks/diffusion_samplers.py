"""DDPM-1000 against DDIM-50 and DDIM-20 with the same trained network: quality, time, and guidance.

Baseline: ancestral DDPM sampling with all 1,000 steps (Ho et al. 2020). For
each sampler the script draws the same N digits (N/10 per class, no guidance,
the same seed), times it, and scores it with the course's digit classifier:
FID against N held-out digits (``test[0::2]``, the README's protocol) and class
accuracy. It prints the speed-up over DDPM-1000 and the FID ratio, then sweeps
the classifier-free guidance scale w (DDIM-20) and prints class accuracy and
FID per w. The real-vs-real FID floor (``test[0::2]`` vs ``test[1::2]``, first
N of each) is measured at the same N, because FID is biased upwards for small N.

    python benchmarks/diffusion_samplers.py --n 1000            # the issue's setting
    python benchmarks/diffusion_samplers.py --n 200 --threads 2 # what fits a busy 2-core machine
    python benchmarks/diffusion_samplers.py --samplers ddim-50@1 ddim-100 ddim-200 --guidance
    python benchmarks/diffusion_samplers.py --n 200 --seeds 3 --guidance \
        --samplers ddpm-1000 ddim-50 ddim-50@0.5 ddim-50@1 dpm++-50 dpm++-20 dpm++-10
        # a cheaper protocol for the FID ratio: fewer digits, every row (DDPM-1000 too) drawn with 3 seeds,
        # the seeds' spread printed as the noise of each FID
        # other rows: SAMPLER-STEPS[@ETA] (eta: DDIM's noise, 0 = deterministic, 1 = DDPM's level);
        # --guidance with no values skips the guidance sweep

Target: DDIM-50 (any eta) at least 15x faster than DDPM-1000 with FID within 20%, judged for every
DDIM-50 row when DDPM-1000 is the first.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from aigc_course import metrics
from aigc_course.models.hub import load_checkpoint, load_pretrained
from aigc_course.data.digits import load_digits
from aigc_course.core.env import hardware_summary, set_threads
from aigc_course.models.diffusion import sample


DEFAULT_SAMPLERS = ("ddpm-1000", "ddim-50", "ddim-20")


def parse_sampler(spec: str) -> tuple[str, int, float]:
    """``"ddim-50@1"`` -> ("ddim", 50, 1.0): sampler, steps and DDIM's eta (0 when omitted)."""
    head, _, eta = spec.lower().partition("@")
    sampler, _, steps = head.partition("-")
    if sampler not in ("ddpm", "ddim", "dpm++") or not steps.isdigit() or (eta and sampler != "ddim"):
        raise argparse.ArgumentTypeError(f"expected SAMPLER-STEPS[@ETA] such as ddim-50, ddim-50@1 or dpm++-20, "
                                         f"got {spec!r}")
    return sampler, int(steps), float(eta or 0.0)


def row_name(sampler: str, steps: int, eta: float) -> str:
    return f"{sampler.upper()}-{steps}" + (f" eta={eta:g}" if eta else "")


def draw(model, n: int, sampler: str, steps: int, guidance: float = 0.0, seed: int = 0, eta: float = 0.0):
    labels = torch.arange(n) % 10
    start, cpu = time.perf_counter(), time.process_time()
    images = sample(model, n, labels, sampler=sampler, steps=steps, guidance=guidance, eta=eta,
                    generator=torch.Generator().manual_seed(seed), progress=False)
    return images, labels, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="digits per sampler (the same N for every row)")
    parser.add_argument("--checkpoint", default="ddpm_digits")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--guidance", type=float, nargs="*", default=[0.0, 1.0, 3.0, 6.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1,
                        help="draw every row with this many seeds (seed, seed+1, ...): FID is then the mean, and its "
                             "spread across seeds is the noise to compare row differences with")
    parser.add_argument("--samplers", type=parse_sampler, nargs="+", default=[parse_sampler(s) for s in DEFAULT_SAMPLERS],
                        help="rows to compare, SAMPLER-STEPS[@ETA]; speed-up and FID ratio are relative to the first")
    args = parser.parse_args()
    set_threads(args.threads)
    model, card = (load_checkpoint(args.checkpoint) if os.path.exists(f"{args.checkpoint}.json")
                   else load_pretrained(args.checkpoint))
    classifier, _ = load_pretrained("digit_classifier")
    test = load_digits("test").x  # sorted by class: thin out evenly so every class keeps its share
    stride = max(1, (len(test) // 2) // args.n)
    real = test[0::2][::stride][:args.n]
    floor = metrics.fid(classifier, real, test[1::2][::stride][:args.n])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{hardware_summary()}; {torch.get_num_threads()} torch threads; load average at start {load:.1f}")
    print(f"checkpoint {card['name']} ({card['parameters']:,} parameters); N = {args.n} digits per row; "
          f"real-vs-real FID floor at this N: {floor:.1f}\n")

    rows = []
    spreads = {}
    for sampler, steps, eta in args.samplers:
        fids, accs, seconds, cpu = [], [], 0.0, 0.0
        for seed in range(args.seed, args.seed + args.seeds):
            images, labels, s, c = draw(model, args.n, sampler, steps, seed=seed, eta=eta)
            fids.append(metrics.fid(classifier, real, images))
            accs.append((metrics.predict_labels(classifier, images) == labels).float().mean().item())
            seconds, cpu = seconds + s / args.seeds, cpu + c / args.seeds
        fid, acc = sum(fids) / len(fids), sum(accs) / len(accs)
        spreads[row_name(sampler, steps, eta)] = torch.tensor(fids).std().item() if len(fids) > 1 else float("nan")
        rows.append((row_name(sampler, steps, eta), steps, seconds, cpu, fid, acc))
    base_seconds, base_cpu, base_fid = rows[0][2], rows[0][3], rows[0][4]
    base = "DDPM" if rows[0][0] == "DDPM-1000" else "row 1"
    width = max(10, *(len(row[0]) for row in rows))
    print(f"{'sampler':<{width}} {'steps':>5} {'wall s':>8} {'speed-up':>9} {'CPU s':>8} {'speed-up':>9} {'FID':>7} "
          f"{'FID / ' + base:>10} {'class acc':>9}")
    for name, steps, seconds, cpu, fid, acc in rows:
        print(f"{name:<{width}} {steps:>5} {seconds:>8.1f} {base_seconds / seconds:>8.1f}x {cpu:>8.1f} "
              f"{base_cpu / cpu:>8.1f}x {fid:>7.1f} {fid / base_fid:>10.2f} {acc:>9.3f}", flush=True)
    print("(CPU s = process CPU time: steadier than wall time when other jobs share the cores)")
    if args.seeds > 1:
        print(f"FID spread (standard deviation over {args.seeds} seeds, same real digits): " +
              ", ".join(f"{name} {sd:.1f}" for name, sd in spreads.items()))
    if rows[0][0] == "DDPM-1000":
        print()
        for name, _, seconds, _, fid, _ in rows[1:]:
            if name.split()[0] == "DDIM-50":
                verdict = base_seconds / seconds >= 15 and fid <= 1.2 * base_fid
                print(f"target: {name} >= 15x faster than DDPM-1000 with FID within 20%: "
                      f"{'met' if verdict else 'not met'} ({base_seconds / seconds:.1f}x, FID ratio {fid / base_fid:.2f})")
    if not args.guidance:
        return

    print(f"\nclassifier-free guidance (DDIM-20, N = {args.n}): accuracy = fraction the classifier reads as the "
          "requested digit")
    print(f"{'w':>5} {'class acc':>9} {'FID':>7} {'seconds':>9}")
    for w in args.guidance:
        images, labels, seconds, _ = draw(model, args.n, "ddim", 20, guidance=w, seed=args.seed)
        acc = (metrics.predict_labels(classifier, images) == labels).float().mean().item()
        print(f"{w:>5.1f} {acc:>9.3f} {metrics.fid(classifier, real, images):>7.1f} {seconds:>9.1f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at the end {load:.1f} (on a shared machine the times include waiting for the CPU)")


if __name__ == "__main__":
    main()
