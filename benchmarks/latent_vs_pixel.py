"""What latent space buys: the same text-conditioned U-Net recipe in pixel space (1x28x28) and in latent space (4x7x7).

Both models are trained from scratch here, with the same steps, batch size, seed, captions, text encoder
(the shipped ``t2i_clip``) and learning-rate schedule; the latent one on the shipped ``t2i_autoencoder``'s
latents. Then, for each: training seconds per step, sampling seconds for 8 digits (DDIM-20, guided, so 16
network evaluations per step), and quality on N held-out prompts (attribute accuracy, FID against
held-out digits, as in lesson 06). Ratios are pixel / latent, measured in the same run.

    python benchmarks/latent_vs_pixel.py --steps 600 --n 500 --threads 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from aigc_course.core import env
from aigc_course.metrics.text2img import evaluate_text_to_image
from aigc_course.models.hub import load_pretrained
from aigc_course.models.latent_diffusion import TextUNetConfig
from aigc_course.models.text2img import TextToImage
from aigc_course.recipes.text2img import TextToImageRecipe, _load_part, train_t2i_unet

PIXEL = TextUNetConfig(in_channels=1, size=28, channels=(32, 48, 64), attention=(False, True, True),
                       autoencoder=None)
LATENT = TextUNetConfig()


def run(config: TextUNetConfig, steps: int, n: int, classifier) -> dict:
    recipe = TextToImageRecipe(config, steps=steps, eval_samples=0)
    model, history, results = train_t2i_unet(recipe, progress=False)
    clip = _load_part(config.clip)
    autoencoder = _load_part(config.autoencoder) if config.autoencoder else None
    pipe = TextToImage(model, clip, autoencoder)
    times = []
    for seed in range(3):
        started = time.perf_counter()
        pipe.generate("a thin 7 leaning right", n=8, guidance=3.0, steps=20, seed=seed)
        times.append(time.perf_counter() - started)
    quality = evaluate_text_to_image(pipe, classifier, n=n, guidance=3.0)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "seconds_per_step": results["seconds_per_step"], "train_seconds": results["train_seconds"],
            "final_loss": results["final_loss"], "sample_8_seconds": round(statistics.median(times), 3),
            "attribute_accuracy": quality["attribute_accuracy"], "fid": quality["fid"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="training steps of each model (default 600)")
    parser.add_argument("--n", type=int, default=500, help="held-out prompts for the quality numbers")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    env.set_threads(args.threads)
    classifier = load_pretrained("digit_classifier")[0]
    rows = {"latent 4x7x7": run(LATENT, args.steps, args.n, classifier),
            "pixel 1x28x28": run(PIXEL, args.steps, args.n, classifier)}
    lat, pix = rows["latent 4x7x7"], rows["pixel 1x28x28"]
    print(f"{args.steps} training steps each, batch 64, {torch.get_num_threads()} thread(s); quality on {args.n} "
          "held-out prompts, DDIM-20, w = 3")
    print("| model | parameters | train s/step | sample 8 digits (s) | digit acc. | thickness | slant | size | FID |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        a = r["attribute_accuracy"]
        print(f"| {name} | {r['parameters']:,} | {r['seconds_per_step']:.3f} | {r['sample_8_seconds']:.2f} | "
              f"{a['digit']:.3f} | {a['thickness']:.3f} | {a['slant']:.3f} | {a['size']:.3f} | {r['fid']:.1f} |")
    print(f"pixel / latent: training {pix['seconds_per_step'] / lat['seconds_per_step']:.1f}x, "
          f"sampling {pix['sample_8_seconds'] / lat['sample_8_seconds']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps": args.steps, "n": args.n, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
