"""Lesson 05: how well each shipped GPT writes Tang poems, all measured the same way in one run.

For every model: held-out loss per character (nats/char) on the held-out Tang poems
(``tang_poems``, the last 1,072 poems, never trained on by any model here) and on
their 512 poems in 7-character lines (``tang_qiyan``), and the form of one poem per
standard prompt (a blank line, then the first character of each of the first 64
held-out poems; temperature 0.8, no top-k, seed 0): the share of lines of the
right length, of well-formed poems (4 or 8 equal lines of 5 or 7 characters) and
of poems in 7-character lines. See :mod:`aigc_course.metrics.poems`.

Models: ``gpt_char`` (bytes; Shakespeare + Chinese prose and Song lyrics),
``tang_lora`` (``gpt_char`` + LoRA on 唐诗三百首), ``poem_char`` (characters;
Tang poems) and ``poem_qiyan_lora`` (``poem_char`` + LoRA on the 七言 poems).
Byte models get 3 tokens per character of budget (240 new bytes, 80 for characters).

    python benchmarks/poems.py                    # ~5 min on 2 idle cores (the byte models decode slowly)
    python benchmarks/poems.py --models poem_char,poem_qiyan_lora --json /tmp/poems.json
"""
from __future__ import annotations

import argparse
import json
import time

from aigc_course.core.env import hardware_summary, set_threads
from aigc_course.data.tokenizers import tokenizer_for
from aigc_course.metrics.poems import nats_per_char, poem_prompts, poem_report
from aigc_course.models.hub import load
from aigc_course.recipes.gpt import POEM_SAMPLING, split_corpus

MODELS = ("gpt_char", "tang_lora", "poem_char", "poem_qiyan_lora")


def measure(name: str) -> dict:
    model, card = load(name)
    tokenizer = tokenizer_for(card)
    held_out = split_corpus("tang_poems")[1]
    budget = POEM_SAMPLING["max_new_tokens"] * (3 if model.config.vocab_size == 256 else 1)
    started = time.perf_counter()
    row = poem_report(model, tokenizer, held_out, poem_prompts(held_out, POEM_SAMPLING["n"]), budget,
                      temperature=POEM_SAMPLING["temperature"], seed=POEM_SAMPLING["seed"])
    row["nats_per_char_qiyan"] = round(nats_per_char(model, tokenizer, split_corpus("tang_qiyan")[1]), 4)
    row["seconds"] = round(time.perf_counter() - started, 1)
    return {"model": name, "parameters": sum(p.numel() for p in model.parameters()), **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    set_threads(args.threads)
    rows = [measure(name) for name in args.models.split(",")]
    print(f"{'model':<17}{'nats/char':>10}{'7-char':>9}{'lines ok':>10}{'well formed':>13}{'七言':>6}{'s':>7}")
    for r in rows:
        print(f"{r['model']:<17}{r['nats_per_char']:>10.3f}{r['nats_per_char_qiyan']:>9.3f}"
              f"{r['line_length_ok']:>10.1%}{r['well_formed']:>13.1%}{r['qiyan']:>7.1%}{r['seconds']:>7.1f}")
    print(hardware_summary())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "sampling": POEM_SAMPLING, "hardware": hardware_summary()}, f, indent=1)


if __name__ == "__main__":
    main()
