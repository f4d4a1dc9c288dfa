"""Command line: ``python -m aigc_course {check,assets,train,sample,student,grade}``.

    python -m aigc_course check                               environment + shipped files
    python -m aigc_course assets --verify                     checksums only (exit 1 if one is bad)
    python -m aigc_course train vae --preset vae_mlp2d --out data/checkpoints/vae_mlp2d
    python -m aigc_course sample vae --checkpoint vae_conv16 --n 64 --out samples.png
    python -m aigc_course train diffusion --preset ddpm_digits --out data/checkpoints/ddpm_digits
    python -m aigc_course sample diffusion --steps 50 --sampler ddim --guidance 2 --label 7 --out x.png
    python -m aigc_course student --out student/                 learner versions of the lessons
    python -m aigc_course grade submissions/ --out report         score table: report.csv, report.md

Errors about files or arguments print one line saying what to do (exit code 1),
not a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from aigc_course import assets, env


def cmd_check(args) -> int:
    env.set_threads()
    rows = env.report()
    width = max(map(len, rows))
    print("Environment")
    for key, value in rows.items():
        print(f"  {key:<{width}}  {value}")
    return _print_assets()


def _print_assets() -> int:
    statuses = assets.verify()
    print(f"Shipped files (in {assets.data_dir()})")
    for s in statuses:
        print(f"  {s.status:<9}  {s.size / 1e6:7.2f} MB  {s.path}")
    bad = [s for s in statuses if s.status != "ok"]
    for s in bad:
        print(f"\n{s.detail}", file=sys.stderr)
    print("all files present and intact" if not bad else f"{len(bad)} file(s) need attention (see above)")
    return 1 if bad else 0


def cmd_assets(args) -> int:
    if args.update:
        for asset in assets.registry().values():
            assets.register(assets.data_dir() / asset.path, licence=asset.licence, source=asset.source,
                            made_by=asset.made_by)
        print(f"refreshed sizes and sha256 in {assets.data_dir() / assets.REGISTRY_NAME}")
    return _print_assets()


def cmd_train(args) -> int:
    from aigc_course.recipes import (CLASSIFIER_PRESETS, DIFFUSION_PRESETS, VAE_PRESETS, train_classifier,
                                     train_diffusion, train_vae)

    env.set_threads(args.threads)
    presets = {"vae": VAE_PRESETS, "classifier": CLASSIFIER_PRESETS, "diffusion": DIFFUSION_PRESETS}[args.family]
    preset = args.preset or {"vae": "vae_conv16", "classifier": "digit_classifier",
                             "diffusion": "ddpm_digits"}[args.family]
    if preset not in presets:
        raise ValueError(f"unknown {args.family} preset {preset!r}; choose from {', '.join(presets)}")
    recipe = dataclasses.replace(presets[preset])
    for name in ("epochs", "seed", "beta"):
        if getattr(args, name) is not None:
            if not hasattr(recipe, name):
                raise ValueError(f"--{name} does not apply to the {args.family}")
            setattr(recipe, name, getattr(args, name))
    command = "python -m aigc_course " + shlex.join(args.argv)
    out = Path(args.out) if args.out else None
    if args.family == "vae":
        _, _, results = train_vae(recipe, out=out, command=command, iw_k=args.iw_k)
    elif args.family == "diffusion":
        _, _, results = train_diffusion(recipe, out=out, command=command, eval_samples=args.eval_samples)
    else:
        _, _, results = train_classifier(recipe, out=out, command=command)
    print(", ".join(f"{k}={v}" for k, v in results.items()))
    if out is not None:
        _register_if_shipped(out, preset, command)
        print(f"saved {out.with_suffix('.safetensors')} and {out.with_suffix('.json')}")
    return 0


def _register_if_shipped(out: Path, preset: str, command: str) -> None:
    try:
        out.resolve().relative_to(assets.data_dir().resolve())
    except ValueError:
        return  # a checkpoint outside data/ is the user's own: nothing to register
    for suffix in (".safetensors", ".json"):
        assets.register(out.with_suffix(suffix), licence="MIT (this course)",
                        source=f"trained by this course (preset {preset}) on data/digits.npz", made_by=command)


def cmd_sample(args) -> int:
    import torch

    if args.family == "diffusion":
        return _sample_diffusion(args)

    from aigc_course.checkpoints import load_checkpoint, load_pretrained
    from aigc_course.plots import grid_array, save_png

    path = Path(args.checkpoint)
    model, card = load_checkpoint(path) if path.with_suffix(".json").exists() else load_pretrained(args.checkpoint)
    images = model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    out = save_png(grid_array(images), args.out, scale=args.scale)
    print(f"wrote {args.n} samples from {card['name']} (seed {args.seed}) to {out}")
    return 0


def _sample_diffusion(args) -> int:
    import time

    import torch

    from aigc_course.checkpoints import load_checkpoint, load_pretrained
    from aigc_course.models.diffusion import sample
    from aigc_course.plots import grid_array, save_png

    env.set_threads()
    name = args.checkpoint if args.checkpoint != "vae_conv16" else "ddpm_digits"
    path = Path(name)
    model, card = load_checkpoint(path) if path.with_suffix(".json").exists() else load_pretrained(name)
    if args.label is not None and not 0 <= args.label <= 9:
        raise ValueError(f"--label must be a digit 0..9 (leave it out for one row per digit), got {args.label}")
    labels = args.label if args.label is not None else torch.arange(args.n) % 10
    started = time.perf_counter()
    images = sample(model.to(env.pick_device()), args.n, labels, sampler=args.sampler, steps=args.steps,
                    guidance=args.guidance, eta=args.eta, generator=torch.Generator().manual_seed(args.seed),
                    progress=True)
    seconds = time.perf_counter() - started
    out = save_png(grid_array(images, nrow=min(10, args.n)), args.out, scale=args.scale)
    what = f"digit {args.label}" if args.label is not None else "digits 0-9"
    print(f"wrote {args.n} samples ({what}, {args.sampler}-{args.steps}, guidance w={args.guidance}, "
          f"seed {args.seed}) from {card['name']} to {out} in {seconds:.1f} s")
    return 0


NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def cmd_student(args) -> int:
    from aigc_course.grading import build_student

    names = args.notebooks or sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
    paths = [Path(n) if Path(n).exists() else NOTEBOOK_DIR / (n if n.endswith(".ipynb") else f"{n}.ipynb")
             for n in names]
    for path in build_student(paths, Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_grade(args) -> int:
    from aigc_course.grading import grade_folder

    rows = grade_folder(Path(args.submissions), Path(args.out), cell_timeout=args.cell_timeout,
                        notebook_timeout=args.timeout, memory_mb=args.memory_mb)
    print(Path(args.out).with_suffix(".md").read_text(), end="")
    print(f"graded {len(rows)} submission(s): {Path(args.out).with_suffix('.csv')}, "
          f"{Path(args.out).with_suffix('.md')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from aigc_course.recipes import VAE_PRESETS

    parser = argparse.ArgumentParser(prog="python -m aigc_course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="environment report and shipped-file verification").set_defaults(run=cmd_check)
    a = sub.add_parser("assets", help="verify (or refresh) the registry of shipped files")
    a.add_argument("--verify", action="store_true", help="check sizes and sha256 (the default)")
    a.add_argument("--update", action="store_true", help="recompute sizes and sha256 of registered files")
    a.set_defaults(run=cmd_assets)
    t = sub.add_parser("train", help="train a model (reproduces a shipped checkpoint)")
    t.add_argument("family", choices=["vae", "classifier", "diffusion"])
    t.add_argument("--preset", help=f"vae: {', '.join(VAE_PRESETS)} (default vae_conv16); "
                                    "classifier: digit_classifier; diffusion: ddpm_digits")
    t.add_argument("--out", help="checkpoint path without suffix, e.g. data/checkpoints/vae_conv16")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--beta", type=float, help="KL weight (1 = the ELBO; >1 = beta-VAE)")
    t.add_argument("--iw-k", type=int, default=500, help="importance samples for the test NLL (0 skips it)")
    t.add_argument("--eval-samples", type=int, default=1000,
                   help="diffusion: DDIM-50 samples for the final FID (0 skips it)")
    t.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    t.set_defaults(run=cmd_train)
    s = sub.add_parser("sample", help="write a PNG grid of samples")
    s.add_argument("family", choices=["vae", "diffusion"])
    s.add_argument("--checkpoint", default="vae_conv16",
                   help="a shipped name or a checkpoint path (default vae_conv16; ddpm_digits for diffusion)")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scale", type=int, default=2)
    s.add_argument("--out", default="samples.png")
    s.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddim", help="diffusion: sampler")
    s.add_argument("--steps", type=int, default=50, help="diffusion: sampling steps (DDPM uses 1000)")
    s.add_argument("--guidance", type=float, default=0.0, help="diffusion: classifier-free guidance w (0 = none)")
    s.add_argument("--eta", type=float, default=0.0, help="diffusion: DDIM noise (0 deterministic, 1 ~ DDPM)")
    s.add_argument("--label", type=int, help="diffusion: draw only this digit (default: 0-9 in turn)")
    s.set_defaults(run=cmd_sample)
    st = sub.add_parser("student", help="write learner versions (solutions removed) of the lesson notebooks")
    st.add_argument("notebooks", nargs="*", help="names or paths (default: every numbered lesson)")
    st.add_argument("--out", default="student", help="output folder (default: student/)")
    st.set_defaults(run=cmd_student)
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks into a score table")
    g.add_argument("submissions", help="folder with LEARNER/NN_name.ipynb (or NN_name.ipynb files)")
    g.add_argument("--out", default="report", help="report path without suffix (default: report)")
    g.add_argument("--cell-timeout", type=int, default=120, help="seconds per cell (default 120)")
    g.add_argument("--timeout", type=int, default=600, help="seconds per notebook (default 600)")
    g.add_argument("--memory-mb", type=int, default=8192, help="address-space limit of a kernel (default 8192)")
    g.set_defaults(run=cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as err:  # our errors already say what to do
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
