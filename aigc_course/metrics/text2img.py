"""Does a generated digit show what its prompt asked for? Attribute accuracy, CLIP score, retrieval, diversity.

* **attribute accuracy**: for each attribute a prompt mentions, measure the
  generated digit with the same code that wrote the training captions
  (:mod:`aigc_course.data.attributes`; the class with lesson 06's digit
  classifier) and count how often the level matches;
* **CLIP score**: 100 x the cosine between the image's and the prompt's CLIP
  embeddings (Hessel et al. 2021 use 2.5 x max(cos, 0) with OpenAI's CLIP; we
  report the plain cosine x 100 of our tiny CLIP, comparable only between our runs);
* **recall@k**: retrieval in both directions with the CLIP embeddings;
* **diversity**: RMS pixel distance between samples of the same prompt;
* FID against held-out digits with :func:`aigc_course.metrics.images.fid`.
"""
from __future__ import annotations

import torch

from aigc_course.data.attributes import ATTRIBUTES, attributes_of
from aigc_course.data.captions import requested
from aigc_course.metrics.images import predict_labels
from aigc_course.models.classifier import DigitClassifier
from aigc_course.models.clip import TinyCLIP, recall_at_k


def attribute_hits(images: torch.Tensor, asked: list[dict[str, int]],
                   classifier: DigitClassifier) -> dict[str, list[bool]]:
    """For each attribute ("digit", "thickness", "slant", "size"), one True/False per image that was asked for it."""
    if len(images) != len(asked):
        raise ValueError(f"{len(images)} images but {len(asked)} prompts")
    measured = attributes_of(images, predict_labels(classifier, images))
    hits: dict[str, list[bool]] = {a: [] for a in ("digit", *ATTRIBUTES)}
    for i, wants in enumerate(asked):
        got = measured.row(i)
        for attribute, level in wants.items():
            hits[attribute].append(got[attribute] == level)
    return hits


def attribute_accuracy(images: torch.Tensor, prompts: list[str], classifier: DigitClassifier,
                       tokenizer) -> dict[str, float]:
    """Share of images showing each attribute their prompt asked for ({attribute: accuracy}; attributes no
    prompt mentioned are left out), plus "all": the share of images matching every attribute asked for."""
    asked = [requested(tokenizer.split(p)) for p in prompts]
    hits = attribute_hits(images, asked, classifier)
    result = {a: round(sum(h) / len(h), 4) for a, h in hits.items() if h}
    measured = attributes_of(images, predict_labels(classifier, images))
    every = [all(measured.row(i)[a] == lvl for a, lvl in wants.items()) for i, wants in enumerate(asked)]
    result["all"] = round(sum(every) / len(every), 4)
    return result


@torch.no_grad()
def clip_score(clip: TinyCLIP, images: torch.Tensor, ids: torch.Tensor) -> float:
    """Mean of 100 x cos(image embedding, prompt embedding) over matching pairs (row i with prompt i)."""
    clip.eval()
    device = next(clip.parameters()).device
    image = torch.nn.functional.normalize(clip.encode_image(images.to(device)), dim=-1)
    text = torch.nn.functional.normalize(clip.encode_text(ids.to(device)), dim=-1)
    return round(100 * (image * text).sum(1).mean().item(), 2)


@torch.no_grad()
def retrieval(clip: TinyCLIP, images: torch.Tensor, ids: torch.Tensor, captions: list[str],
              ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Recall@k for image -> text and text -> image among N (image, caption) pairs.

    Captions come from attributes, so several images share a caption: a retrieved item counts as right when
    its caption is the same text as the query's own.
    """
    clip.eval()
    device = next(clip.parameters()).device
    sim = clip.similarity(images.to(device), ids.to(device)).cpu()             # (N images, N captions)
    index = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    code = torch.tensor([index[c] for c in captions])
    same = code[:, None] == code[None, :]
    out = {}
    for k in ks:
        out[f"image_to_text_r@{k}"] = round(recall_at_k(sim, same, k), 4)
        out[f"text_to_image_r@{k}"] = round(recall_at_k(sim.T, same.T, k), 4)
    return out


def diversity(images: torch.Tensor, groups: torch.Tensor) -> float:
    """Mean over groups (same prompt) of the mean RMS pixel distance between the group's images."""
    values = []
    for g in groups.unique():
        flat = images[groups == g].flatten(1)
        if len(flat) > 1:
            values.append(torch.pdist(flat).mean().item() / flat.shape[1] ** 0.5)
    if not values:
        raise ValueError("diversity needs at least one group with two or more images")
    return round(sum(values) / len(values), 4)


def balanced_order(labels: torch.Tensor) -> torch.Tensor:
    """Indices that visit the classes in turn (0, 1, ..., 9, 0, 1, ...), so any first n are balanced.

    The held-out digits are stored sorted by class: their first 300 are all zeros, ones and twos.
    """
    rank = torch.zeros_like(labels)
    for c in labels.unique():
        where = labels == c
        rank[where] = torch.arange(int(where.sum()))
    return torch.argsort(rank * 100 + labels, stable=True)


def heldout_prompts(n: int = 1000, lang: str = "en") -> tuple[list[str], torch.Tensor]:
    """The evaluation prompts: the full captions of ``n`` held-out digits (``test[1::2]``, classes in turn so
    that every n is class-balanced), and those digits."""
    from aigc_course.data.captions import full_captions
    from aigc_course.data.digits import load_digits

    test = load_digits("test")
    images, labels = test.x[1::2], test.labels[1::2]
    keep = balanced_order(labels)[:n]
    return full_captions(attributes_of(images[keep], labels[keep]), lang), images[keep]


def evaluate_text_to_image(pipe, classifier: DigitClassifier, n: int = 1000, guidance: float = 3.0,
                           steps: int = 20, seed: int = 0, lang: str = "en") -> dict:
    """Sample one digit for each of ``n`` held-out prompts and score them: attribute accuracy, CLIP score and
    FID against the other held-out half (``test[0::2]``, the real-vs-real protocol of lessons 04 and 06)."""
    from aigc_course.data.digits import load_digits
    from aigc_course.metrics.images import fid

    prompts, _ = heldout_prompts(n, lang)
    images = torch.cat([pipe.generate(prompts[i:i + 250], guidance=guidance, steps=steps, seed=seed + i)
                        for i in range(0, len(prompts), 250)])
    ids = pipe.tokenizer.encode_batch(prompts)
    return {"n": len(prompts), "guidance": guidance, "sampler": f"ddim-{steps}", "lang": lang,
            "attribute_accuracy": attribute_accuracy(images, prompts, classifier, pipe.tokenizer),
            "clip_score": clip_score(pipe.clip, images, ids),
            "fid": round(fid(classifier, load_digits("test").x[0::2], images), 2)}
