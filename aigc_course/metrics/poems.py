"""How well a language model writes classical Chinese poems: loss per character and the poems' form.

A Tang quatrain (绝句) has 4 lines, regulated verse (律诗) 8, and every line of a
poem has the same length: 5 characters (五言) or 7 (七言). Three numbers:

- **held-out loss per character** (:func:`nats_per_char`): the model's
  cross-entropy on text it never trained on, summed over every predicted token
  and divided by the characters those tokens spell, so a byte model (3 tokens
  per Chinese character) and a character model are on one scale;
- **line length** (:func:`line_length_share`): of all generated lines, the
  share whose length is the poem's own line length, 5 or 7 (the most common
  length among the poem's lines; a tie goes to the one seen first);
- **structure** (:func:`structure_share`): the share of generated poems with 4
  or 8 lines, all of the same length, 5 or 7 (:func:`is_well_formed`).

Lines are read by :func:`aigc_course.data.corpora.verse_lines`: a line of verse
ends at ， 。 ？ ！ or ；, rows without those marks (titles, authors) are skipped.
:func:`sample_poems` generates the poems these measures read, and
:func:`poem_report` puts the numbers of one model side by side.
"""
from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F

from aigc_course.data.corpora import poems, sequential_batches, verse_lines

FORMS = (5, 7)


def poem_form(lines: list[str]) -> int | None:
    """The line length a poem is written in: its most common line length if that is 5 or 7, else None."""
    if not lines:
        return None
    length = Counter(len(x) for x in lines).most_common(1)[0][0]
    return length if length in FORMS else None


def is_well_formed(poem: str) -> bool:
    """4 or 8 lines of verse, all of the same length, 5 or 7 characters."""
    lines = verse_lines(poem)
    return len(lines) in (4, 8) and len({len(x) for x in lines}) == 1 and len(lines[0]) in FORMS


def line_length_share(poems: list[str]) -> float:
    """Of all lines of all ``poems``, the share whose length is their poem's form (:func:`poem_form`)."""
    right = total = 0
    for poem in poems:
        lines = verse_lines(poem)
        form = poem_form(lines)
        right += sum(len(x) == form for x in lines)
        total += len(lines)
    return right / total if total else 0.0


def structure_share(poems: list[str]) -> float:
    """The share of ``poems`` that are well formed (:func:`is_well_formed`); 0 for no poems."""
    return sum(map(is_well_formed, poems)) / len(poems) if poems else 0.0


def form_share(poems: list[str], length: int) -> float:
    """The share of ``poems`` written in lines of ``length`` characters (5: 五言, 7: 七言)."""
    return sum(poem_form(verse_lines(p)) == length for p in poems) / len(poems) if poems else 0.0


def first_poem(text: str) -> str:
    """Generated text up to the first blank line after it starts (the end of a poem in the poem files)."""
    text = text.lstrip("\n")
    end = text.find("\n\n")
    return text if end == -1 else text[:end]


@torch.no_grad()
def sample_poems(model, tokenizer, prompts: list[str], max_new_tokens: int, *, temperature: float = 0.8,
                 top_k: int | None = None, seed: int = 0, batch: int = 64) -> list[str]:
    """One poem per prompt: generate, decode, keep :func:`first_poem` of the prompt plus its continuation.

    Prompts whose encodings have the same length are generated together, in
    batches of ``batch`` (with the KV cache when they fit the model's context);
    one seeded generator makes the result reproducible. A prompt such as
    ``"\\n\\n春"`` (a blank line, then the first character) asks a model trained
    on the poem files for a new poem beginning with 春.
    """
    if not prompts:
        raise ValueError("sample_poems needs at least one prompt")
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    encoded = [tokenizer.encode(p) for p in prompts]
    out: list[str | None] = [None] * len(prompts)
    for length in sorted({len(e) for e in encoded}):
        rows = [i for i, e in enumerate(encoded) if len(e) == length]
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            ids = torch.tensor([encoded[i] for i in chunk], device=device)
            new = model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)
            for i, row in zip(chunk, new.tolist()):
                out[i] = first_poem(tokenizer.decode(row))
    return out  # type: ignore[return-value]


def token_char_counts(tokenizer, vocab_size: int) -> torch.Tensor:
    """How many characters each token id starts: the UTF-8 bytes of the token that are not continuation bytes.

    A byte token of a Chinese character's first byte starts one character, its
    two continuation bytes (0x80-0xBF) none; a character token starts one; a
    BPE token as many as the characters whose first byte it holds. Summed over
    a text's tokens this is exactly the text's number of characters.
    """
    def starts(raw: bytes) -> int:
        return sum(not 0x80 <= b < 0xC0 for b in raw)

    if hasattr(tokenizer, "token_bytes"):
        return torch.tensor([starts(tokenizer.token_bytes(i)) for i in range(vocab_size)])
    return torch.tensor([starts(bytes([i])) if i < 256 else 1 for i in range(vocab_size)])


@torch.no_grad()
def nats_per_char(model, tokenizer, text: str, batch: int = 16) -> float:
    """Held-out loss in nats per character: summed next-token cross-entropy / characters predicted.

    The text is cut into non-overlapping windows of the model's context (the
    first token of each window is read, not predicted); the characters counted
    are those the predicted tokens start (:func:`token_char_counts`), so a
    byte model and a character model are scored on the same characters' worth
    of text. A uniform guess over V characters scores ln V.
    """
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if len(ids) < 2:
        raise ValueError("nats_per_char needs a text of at least two tokens")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counts = token_char_counts(tokenizer, model.config.vocab_size)
    block = min(model.config.block_size, len(ids) - 1)
    nats, chars = 0.0, 0
    for x, y in sequential_batches(ids, block, batch):
        logits, _ = model(x.to(device))
        nats += F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten(), reduction="sum").item()
        chars += counts[y].sum().item()
    model.train(was_training)
    return nats / chars


def poem_prompts(held_out: str, n: int = 64) -> list[str]:
    """The standard prompts: a blank line, then the first character of each of the first ``n`` held-out poems."""
    return ["\n\n" + poem[0] for poem in poems(held_out)[:n]]


def poem_report(model, tokenizer, held_out: str, prompts: list[str], max_new_tokens: int, *,
                temperature: float = 0.8, top_k: int | None = None, seed: int = 0) -> dict[str, float]:
    """One model's numbers: held-out nats/char, and the form of one poem per prompt.

    Keys: ``nats_per_char``, ``line_length_ok`` (:func:`line_length_share`),
    ``well_formed`` (:func:`structure_share`), ``qiyan`` and ``wuyan`` (shares of
    poems in 7- and 5-character lines) and ``poems`` (how many were generated).
    """
    poems = sample_poems(model, tokenizer, prompts, max_new_tokens, temperature=temperature, top_k=top_k,
                         seed=seed)
    return {"nats_per_char": round(nats_per_char(model, tokenizer, held_out), 4),
            "line_length_ok": round(line_length_share(poems), 4), "well_formed": round(structure_share(poems), 4),
            "qiyan": round(form_share(poems, 7), 4), "wuyan": round(form_share(poems, 5), 4), "poems": len(poems)}
