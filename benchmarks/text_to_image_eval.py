"""Lesson 08's evaluation: the shipped text-to-image model against held-out prompts and against lesson 04.

1. Guidance sweep: for each w, one DDIM-20 sample per full caption of N held-out digits (English, then
   Chinese): attribute accuracy per attribute (measured with the code that wrote the captions; the class by
   the digit classifier), CLIP score, FID against the other held-out half.
2. Diversity: 16 samples for each class-only prompt "a 0" ... "a 9", RMS pixel distance within a prompt.
3. Class-only prompts against lesson 04's class-conditional ``ddpm_digits`` (the same N/10 per digit,
   DDIM-20, the same w): class accuracy and FID.

    python benchmarks/text_to_image_eval.py --n 1000 --threads 1 --json t2i_eval.json
"""
from __future__ import annotations

import argparse
import json

import torch

from aigc_course import metrics
from aigc_course.core import env
from aigc_course.data.digits import load_digits
from aigc_course.metrics.text2img import diversity, evaluate_text_to_image
from aigc_course.models import diffusion as dm
from aigc_course.models.hub import load_pretrained, load_text_to_image


def class_only(pipe, ddpm, classifier, n: int, w: float) -> dict:
    labels = torch.arange(n) % 10
    real = load_digits("test").x[0::2]
    ours = torch.cat([pipe.generate([f"a {d}" for d in labels[i:i + 250].tolist()], guidance=w, seed=i)
                      for i in range(0, n, 250)])
    theirs = dm.sample(ddpm, n, labels, steps=20, guidance=w, generator=torch.Generator().manual_seed(0))
    row = {}
    for name, images in (("t2i_unet (prompt \"a d\")", ours), ("ddpm_digits (label d)", theirs)):
        row[name] = {"class_accuracy": round((metrics.predict_labels(classifier, images) == labels).float().mean()
                                             .item(), 4),
                     "fid": round(metrics.fid(classifier, real, images), 2)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 3.0, 5.0])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json")
    args = parser.parse_args()
    env.set_threads(args.threads)
    pipe, classifier = load_text_to_image(), load_pretrained("digit_classifier")[0]
    ddpm = load_pretrained("ddpm_digits")[0]
    result = {"sweep": {}, "class_only": {}}
    print(f"N = {args.n} held-out prompts, DDIM-20")
    print("| w | lang | digit | thickness | slant | size | all | CLIP score | FID |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in args.guidance:
        for lang in ("en", "zh"):
            r = evaluate_text_to_image(pipe, classifier, args.n, guidance=w, lang=lang)
            result["sweep"][f"{w}/{lang}"] = r
            a = r["attribute_accuracy"]
            print(f"| {w} | {lang} | {a['digit']:.3f} | {a['thickness']:.3f} | {a['slant']:.3f} | {a['size']:.3f} | "
                  f"{a['all']:.3f} | {r['clip_score']:.1f} | {r['fid']:.1f} |", flush=True)
    prompts = [f"a {d}" for d in range(10) for _ in range(16)]
    for w in args.guidance:
        images = pipe.generate(prompts, guidance=w, seed=7)
        result.setdefault("diversity", {})[w] = diversity(images, torch.arange(160) // 16)
    print("diversity (RMS pixel distance within a class-only prompt):", result["diversity"])
    print("| w | model | class accuracy | FID |")
    print("|---|---|---|---|")
    for w in (0.0, 3.0):
        row = class_only(pipe, ddpm, classifier, args.n, w)
        result["class_only"][w] = row
        for name, r in row.items():
            print(f"| {w} | {name} | {r['class_accuracy']:.3f} | {r['fid']:.1f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
