"""How lesson 05's GPTs are trained: pretraining on Shakespeare + Chinese, then LoRA on Tang poems; a poem GPT.

``python -m aigc_course train gpt --preset gpt_char`` and a notebook cell with
``TRAIN = True`` both call :func:`train_gpt`; ``--preset tang_lora`` calls
:func:`finetune_gpt`. Language models train by *iterations* over random
windows (there is no natural epoch), with AdamW, a warm-up then cosine decay of
the learning rate, and gradient clipping: :func:`fit_lm` sets up ``train.fit`` for that.

Our small models read **bytes** (vocabulary 256, :class:`ByteTokenizer`): on the
ASCII Shakespeare text that is exactly a character-level model, and the same
model can read Chinese (3 bytes per character) without an "unknown" token, so
pretraining on English + Chinese and fine-tuning on Tang poems share one
vocabulary. A per-character vocabulary would need ~4,000 entries for the
Chinese characters, most of them seen a handful of times.

The poem model ``poem_char`` is the exception that shows the other side: it
reads one text in one script, 10,698 Tang poems written in a 2,000-character
alphabet (``data/text/tang_poems.txt``), so it is **character-level**
(:class:`CharTokenizer`): a 7-character line is 7 tokens instead of 21 bytes.
``poem_qiyan_lora`` fine-tunes it, with LoRA, on the poems in 7-character
lines (七言) only, taken from the same training split.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from aigc_course.core.checkpoints import save_adapter, save_checkpoint
from aigc_course.models.hub import load_pretrained
from aigc_course.data.corpora import boundary_starts, load_corpus, random_batch, sequential_batches, split_text
from aigc_course.core.env import hardware_summary, pick_device, seed_everything
from aigc_course.models.gpt import GPT, GPTConfig
from aigc_course.recipes.common import with_precision
from aigc_course.models.lora import LORA_ADAPTER, LoRAConfig, add_lora, lora_state_dict, trainable_parameters
from aigc_course.core.checkpoints import find_checkpoint, read_card
from aigc_course.data.corpora import poems_of_line_length
from aigc_course.data.tokenizers import ByteTokenizer, CharTokenizer, SubsetTokenizer, tokenizer_for
from aigc_course.metrics.poems import nats_per_char, poem_prompts, poem_report
from aigc_course.train import EvalEvery, History, WarmupCosine, autocast, distributed, fit

POEM_BOUNDARY = "\n\n"
POEM_FILES = ("tang300", "tang_poems")
#: Corpora cut from tang_poems by line length, after its train/validation split (so no poem changes side).
POEM_FORMS = {"tang_qiyan": 7, "tang_wuyan": 5}


@dataclass
class GPTRecipe:
    """Everything that decides a trained GPT: architecture, data and optimisation."""

    model: GPTConfig = field(default_factory=lambda: GPTConfig(vocab_size=256, block_size=128, n_layer=4,
                                                                n_head=4, n_embd=128))
    corpora: tuple[str, ...] = ("shakespeare", "zh_pretrain")
    iters: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_windows: int | None = 64  # validation windows per corpus (block tokens each); None: all of it
    # bfloat16 autocast; None: only where the hardware computes in it (CPUs with AMX or AVX-512 BF16, GPUs).
    # Elsewhere it is emulated: a gpt_char training step took 3.6x as long as in float32 (586 against 164 ms
    # on a 2-core Intel Xeon with AVX-512F but no BF16).
    bf16: bool | None = None
    seed: int = 0
    lora: LoRAConfig | None = None  # set for fine-tuning presets: train adapters only
    base: str | None = None         # fine-tuning: the shipped checkpoint to start from
    tokenizer: str = "bytes"        # "bytes" (256), "gpt2-subset" (GPT-2's BPE, SubsetTokenizer) or "chars"
    min_count: int = 3              # gpt2-subset: keep GPT-2 tokens seen this often in the training text
    aligned: float = 0.0            # share of each batch's windows that start at a poem boundary (a blank line)


GPT_PRESETS = {
    # The shipped model: 4 layers, 128 wide, 128-byte context; Shakespeare + Chinese.
    "gpt_char": GPTRecipe(),
    # The BPE variant: GPT-2's tokens (the 6,128 that Shakespeare's training text uses 3+ times, plus the 256
    # byte tokens), the same 4 x 128 network, a 64-token context (~160 characters). Shakespeare only.
    "gpt_bpe": GPTRecipe(GPTConfig(vocab_size=0, block_size=64, n_layer=4, n_head=4, n_embd=128),
                         corpora=("shakespeare",), tokenizer="gpt2-subset", eval_windows=None),
    # A quick one for tests and the notebook's TRAIN = True (about a minute).
    "gpt_char_tiny": GPTRecipe(GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64),
                               corpora=("shakespeare",), iters=300, batch_size=16, eval_every=100,
                               eval_windows=16),
    # Pretraining -> fine-tuning: rank-8 LoRA on the attention projections, Tang poems.
    "tang_lora": GPTRecipe(GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=128),
                           corpora=("tang300",), iters=300, batch_size=16, lr=2e-3, min_lr=2e-4, warmup=20,
                           weight_decay=0.0, eval_every=100, eval_windows=32, lora=LoRAConfig(rank=8, alpha=16),
                           base="gpt_char"),
    # The poem model: characters of the 2,000-character alphabet (vocabulary from the training split), 4 layers,
    # 96 wide, a 96-character context (a whole 8-line poem with its line breaks is 68); Tang poems only.
    # float32: on the small matrices of this model bfloat16 autocast made a CPU step ~3x slower, not faster.
    # Half of each batch's windows start at a poem (see fit_lm), so positions line up with the poem's form.
    # Measured with everything else equal (64 sampled poems, held-out nats/char): aligned=0.0 -> 2% well formed,
    # 4.967; 0.5 -> 70%, 4.956; 1.0 -> 92%, but 6.147 on held-out windows that start anywhere.
    "poem_char": GPTRecipe(GPTConfig(vocab_size=0, block_size=96, n_layer=4, n_head=4, n_embd=96),
                           corpora=("tang_poems",), tokenizer="chars", iters=400, batch_size=32, lr=3e-3,
                           min_lr=3e-4, warmup=40, eval_every=100, eval_windows=64, bf16=False, aligned=0.5),
    # ... fine-tuned towards one form with rank-8 LoRA: the poems in 7-character lines (七言) only.
    "poem_qiyan_lora": GPTRecipe(GPTConfig(vocab_size=0, block_size=96, n_layer=4, n_head=4, n_embd=96),
                                 corpora=("tang_qiyan",), tokenizer="chars", iters=150, batch_size=32, lr=3e-3,
                                 min_lr=3e-4, warmup=10, weight_decay=0.0, eval_every=50, eval_windows=32, bf16=False,
                                 aligned=0.5,
                                 lora=LoRAConfig(rank=8, alpha=16), base="poem_char"),
    # The same fine-tuning, every weight trainable (the comparison in the notebook and benchmark).
    "tang_full": GPTRecipe(GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=128),
                           corpora=("tang300",), iters=300, batch_size=16, lr=3e-4, min_lr=3e-5, warmup=20,
                           weight_decay=0.0, eval_every=100, eval_windows=32, base="gpt_char"),
}


def split_corpus(name: str) -> tuple[str, str]:
    """(training text, validation text) of a shipped corpus: the last 10% is held out (whole poems for poems).

    ``tang_qiyan`` / ``tang_wuyan`` are the poems of ``tang_poems`` in 7- / 5-character
    lines, taken from each side of its split.
    """
    if name in POEM_FORMS:
        return tuple(poems_of_line_length(part, POEM_FORMS[name]) for part in split_corpus("tang_poems"))
    return split_text(load_corpus(name), 0.1, POEM_BOUNDARY if name in POEM_FILES else None)


def corpus_source(name: str) -> str:
    """Where a corpus comes from, for model cards and the asset registry."""
    if name in POEM_FORMS:
        return f"data/text/tang_poems.txt (its poems in {POEM_FORMS[name]}-character lines)"
    return f"data/text/{name}.txt"


def encode_corpus(name: str, tokenizer=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train ids, validation ids) of a shipped corpus, as int64 tensors."""
    tokenizer = tokenizer or ByteTokenizer()
    train, val = split_corpus(name)
    return (torch.tensor(tokenizer.encode(train), dtype=torch.long),
            torch.tensor(tokenizer.encode(val), dtype=torch.long))


def make_tokenizer(recipe: GPTRecipe):
    """The recipe's tokenizer; a ``gpt2-subset`` vocabulary is built from the training split only."""
    if recipe.tokenizer == "bytes":
        return ByteTokenizer()
    if recipe.tokenizer == "gpt2-subset":
        return SubsetTokenizer.from_text("".join(split_corpus(c)[0] for c in recipe.corpora), recipe.min_count)
    if recipe.tokenizer == "chars":
        return CharTokenizer.from_text("".join(split_corpus(c)[0] for c in recipe.corpora))
    raise ValueError(f"unknown tokenizer {recipe.tokenizer!r}; choose bytes, gpt2-subset or chars")


def token_byte_lengths(tokenizer, vocab_size: int) -> torch.Tensor:
    """How many bytes of text each token id stands for (all 1 for the byte tokenizer)."""
    if not hasattr(tokenizer, "token_bytes"):
        return torch.ones(vocab_size, dtype=torch.long)
    return torch.tensor([len(tokenizer.token_bytes(i)) for i in range(vocab_size)])


@torch.no_grad()
def nats_per_byte(model: GPT, tokenizer, text: str, batch: int = 16) -> float:
    """Held-out loss per byte of text, so models with different tokenizers can be compared.

    A BPE token stands for ~2.5 bytes of Shakespeare, so its loss per *token* is
    larger than a byte model's for the same quality; dividing the summed loss by
    the bytes the predicted tokens spell (exactly, token by token) puts both on
    one scale. On ASCII text a byte is a character: nats per character.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    lengths = token_byte_lengths(tokenizer, model.config.vocab_size)
    total_nats, total_bytes = 0.0, 0
    for x, y in sequential_batches(data, model.config.block_size, batch):
        logits, _ = model(x.to(device))
        total_nats += F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), reduction="sum").item()
        total_bytes += lengths[y].sum().item()
    model.train(was_training)
    return total_nats / total_bytes


@torch.no_grad()
def evaluate_lm(model: GPT, data: torch.Tensor, block: int, batch: int = 16, max_windows: int | None = 64,
                bf16: bool = False) -> float:
    """Mean next-token cross-entropy (nats per token) over non-overlapping windows of ``data``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for x, y in sequential_batches(data, block, batch, max_windows):
        with autocast(device, bf16):
            _, loss = model(x.to(device), y.to(device))
        total += loss.item() * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / count


def configure_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, LayerNorm gains or anything frozen)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.99))


def fit_lm(model: GPT, train_data: torch.Tensor, val_data: dict[str, torch.Tensor], recipe: GPTRecipe, *,
           device: torch.device | str = "cpu", max_seconds: float | None = None, progress: bool = True,
           boundary: list[int] | None = None) -> History:
    """Train ``model`` for ``recipe.iters`` steps (or ``max_seconds``) with ``train.fit``; return the History.

    Each step reads ``recipe.batch_size`` random windows of ``train_data``; AdamW
    with weight decay on matrices only; warm-up then cosine from ``recipe.lr`` to
    ``recipe.min_lr``; gradient clipping; validation loss per corpus every
    ``recipe.eval_every`` steps and at the end (``history.evals``, not counted in
    ``history.seconds``). With ``recipe.aligned`` > 0, that share of the windows
    starts where the token ids ``boundary`` (a blank line between poems) begin.

    Why align windows? A window that starts at a poem puts the poem's first
    character at position 2, so the position embedding alone says "this is the
    6th character of the poem": where the comma of a 5-character line goes. A
    window that starts anywhere makes the model count from the last punctuation
    mark instead, which a small model learns far more slowly.
    """
    device = torch.device(device)
    recipe = with_precision(recipe, device)
    block = model.config.block_size
    generator = torch.Generator().manual_seed(distributed.rank_seed(recipe.seed))  # each rank its own windows
    starts = boundary_starts(train_data, boundary) if recipe.aligned and boundary else None
    every = EvalEvery(lambda m: {name: round(evaluate_lm(m, data, block, 16, recipe.eval_windows, recipe.bf16), 4)
                                 for name, data in val_data.items()}, every=recipe.eval_every, unit="step")
    return fit(model, lm_step_loss, lambda: random_batch(train_data, block, recipe.batch_size, generator, device,
                                                         starts, recipe.aligned),
               steps=recipe.iters, optimizer=lambda m: configure_optimizer(m, recipe.lr, recipe.weight_decay),
               schedule=WarmupCosine(warmup=recipe.warmup, floor=recipe.min_lr / recipe.lr), callbacks=[every],
               max_seconds=max_seconds, device=device, bf16=recipe.bf16, grad_clip=recipe.grad_clip,
               progress=progress)


def lm_step_loss(model: GPT, batch) -> torch.Tensor:
    """The per-batch loss for ``fit``: next-token cross-entropy of a batch of (input, target) windows."""
    x, y = batch
    return model(x, y)[1]


def _data(recipe: GPTRecipe, tokenizer=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    parts = {name: encode_corpus(name, tokenizer) for name in recipe.corpora}
    train = torch.cat([p[0] for p in parts.values()])
    return train, {name: p[1] for name, p in parts.items()}


def train_gpt(recipe: GPTRecipe, *, out: str | Path | None = None, command: str = "",
              max_seconds: float | None = None, progress: bool = True) -> tuple[GPT, History, dict]:
    """Pretrain a GPT from scratch on ``recipe.corpora``; optionally save a checkpoint.

    Returns (model, history, metrics): validation loss per corpus in nats per
    token (per byte for the byte tokenizer), in bits per byte, and the training time.
    """
    seed_everything(recipe.seed)
    device = pick_device()
    recipe = with_precision(recipe, device)  # the card records what ran
    tokenizer = make_tokenizer(recipe)
    if recipe.tokenizer != "bytes":  # the vocabulary size comes from the data
        recipe = replace(recipe, model=replace(recipe.model, vocab_size=tokenizer.vocab_size))
    model = GPT(recipe.model)
    train, val = _data(recipe, tokenizer)
    history = fit_lm(model, train, val, recipe, device=device, max_seconds=max_seconds, progress=progress,
                     boundary=tokenizer.encode(POEM_BOUNDARY))
    model = model.cpu().eval()
    if not distributed.is_main():  # under torchrun: rank 0 evaluates and saves
        return model, history, {}
    results = _metrics(history, _bytes_per_token(recipe, tokenizer, val))
    results |= held_out_metrics(model, tokenizer, recipe.corpora) | poem_metrics(model, tokenizer, recipe.corpora)
    if out is not None:
        save_checkpoint(model, out, _card(recipe, results, command, history, tokenizer))
    return model, history, results


def held_out_metrics(model: GPT, tokenizer, corpora, prefix: str = "") -> dict[str, float]:
    """The numbers a model card reports: loss on *all* of each corpus' held-out 10%, per byte of text.

    ``val_nats_per_byte_<corpus>`` and ``val_bits_per_byte_<corpus>``, measured by
    :func:`nats_per_byte` in float32; for a character tokenizer also
    ``val_nats_per_char_<corpus>`` (:func:`aigc_course.metrics.poems.nats_per_char`).
    The ``val_loss_*`` entries and the history are the quicker estimate taken
    during training (``recipe.eval_windows`` windows from the start of the
    held-out text, per token), which can differ: for
    ``gpt_char`` the first 8 kB of held-out Shakespeare gave 1.720 nats/byte, all
    103,601 bytes of it 1.860.
    """
    results = {}
    for name in corpora:
        value = nats_per_byte(model, tokenizer, split_corpus(name)[1])
        results[f"{prefix}val_nats_per_byte_{name}"] = round(value, 4)
        results[f"{prefix}val_bits_per_byte_{name}"] = round(value / math.log(2), 4)
        if isinstance(tokenizer, CharTokenizer):
            results[f"{prefix}val_nats_per_char_{name}"] = round(nats_per_char(model, tokenizer,
                                                                               split_corpus(name)[1]), 4)
    return results


#: How the cards' poem numbers are measured: one poem per prompt (poem_prompts), sampled at this temperature.
POEM_SAMPLING = {"n": 64, "max_new_tokens": 80, "temperature": 0.8, "seed": 0}


def poem_metrics(model: GPT, tokenizer, corpora, prefix: str = "") -> dict[str, float]:
    """For each poem corpus a character model reads: the numbers of :func:`aigc_course.metrics.poems.poem_report`.

    Keys ``<prefix>poems_<corpus>_<measure>``: for 64 poems sampled from the
    standard prompts (:data:`POEM_SAMPLING`), the shares of lines of the right
    length, of well-formed poems, and of each form.
    """
    if not isinstance(tokenizer, CharTokenizer):
        return {}
    results = {}
    for name in corpora:
        if name in POEM_FILES or name in POEM_FORMS:
            held_out = split_corpus(name)[1]
            report = poem_report(model, tokenizer, held_out, poem_prompts(held_out, POEM_SAMPLING["n"]),
                                 POEM_SAMPLING["max_new_tokens"], temperature=POEM_SAMPLING["temperature"],
                                 seed=POEM_SAMPLING["seed"])
            del report["poems"], report["nats_per_char"]  # the card has it already: val_nats_per_char_<corpus>
            results |= {f"{prefix}poems_{name}_{k}": v for k, v in report.items()}
    return results


def _bytes_per_token(recipe: GPTRecipe, tokenizer, val: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per validation corpus: bytes of text per token (1 for the byte tokenizer)."""
    if recipe.tokenizer == "bytes":
        return {name: 1.0 for name in val}
    lengths = token_byte_lengths(tokenizer, tokenizer.vocab_size)
    return {name: lengths[ids].sum().item() / len(ids) for name, ids in val.items()}


def _metrics(history: History, bytes_per_token: dict[str, float] | None = None) -> dict:
    last = history.evals[-1]
    results = {"steps": last["step"], "train_seconds": round(history.seconds, 1)}
    for name, value in last.items():
        if name not in ("step", "epoch", "seconds"):
            per_byte = value / (bytes_per_token or {}).get(name, 1.0)
            results[f"val_loss_{name}"] = value
            results[f"val_bits_per_byte_{name}"] = round(per_byte / math.log(2), 4)
    return results


def _tokenizer_card(recipe: GPTRecipe, tokenizer) -> str | dict:
    if isinstance(tokenizer, CharTokenizer):
        return {"kind": "chars", "vocab_size": tokenizer.vocab_size, "chars": tokenizer.chars[1:]}
    if isinstance(tokenizer, SubsetTokenizer):
        return {"kind": "gpt2-subset", "min_count": recipe.min_count, "vocab_size": tokenizer.vocab_size,
                "gpt2_ids": tokenizer.gpt2_ids}
    return "bytes (UTF-8)"


def _card(recipe: GPTRecipe, results: dict, command: str, history: History, tokenizer=None) -> dict:
    losses = [round(v, 4) for v in history.series("loss")]  # the card keeps 4 decimals, averaged per 50 steps
    return {"metrics": results, "recipe": asdict(recipe), "command": command, "seed": recipe.seed,
            "duration_s": round(history.seconds, 1), "hardware": hardware_summary(),
            "tokenizer": _tokenizer_card(recipe, tokenizer),
            "data": ", ".join(corpus_source(c) for c in recipe.corpora)
                    + ": first 90% for training, last 10% for validation",
            "history": {"evals": [{k: v for k, v in row.items() if k != "epoch"} for row in history.evals],
                        "train_loss_every_50": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4)
                                                for i in range(0, len(losses), 50)]}}


def finetune_gpt(recipe: GPTRecipe, *, base: GPT | None = None, out: str | Path | None = None,
                 command: str = "", progress: bool = True) -> tuple[GPT, History, dict]:
    """Fine-tune a pretrained GPT on ``recipe.corpora``: LoRA adapters if ``recipe.lora``, else every weight.

    ``base`` defaults to the shipped checkpoint ``recipe.base``. Returns (model,
    history, metrics); metrics include the base model's validation loss before
    fine-tuning and the number of trainable parameters. ``out`` saves the
    adapter alone (LoRA) as NAME.safetensors + NAME.json.
    """
    seed_everything(recipe.seed)
    if base is None:
        if recipe.base is None:
            raise ValueError("fine-tuning needs a base model: pass base= or set recipe.base")
        base, _ = load_pretrained(recipe.base)
    model = base
    device = pick_device()
    recipe = with_precision(recipe, device)  # the card records what ran
    tokenizer = base_tokenizer(recipe)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"the base model has {model.config.vocab_size} tokens, the {recipe.tokenizer} tokenizer of "
                         f"{recipe.base} {tokenizer.vocab_size}: pass the base the recipe names")
    train, val = _data(recipe, tokenizer)
    model.to(device)
    before = {}
    if distributed.is_main():  # under torchrun: rank 0 evaluates
        before = {f"base_val_loss_{n}": round(evaluate_lm(model, v, model.config.block_size, 16,
                                                          recipe.eval_windows, recipe.bf16), 4)
                  for n, v in val.items()}
        before |= held_out_metrics(model, tokenizer, recipe.corpora, prefix="base_")
        before |= poem_metrics(model, tokenizer, recipe.corpora, prefix="base_")
    if recipe.lora is not None:
        add_lora(model, recipe.lora)
    results = {"trainable_parameters": trainable_parameters(model),
               "total_parameters": sum(p.numel() for p in model.parameters()), **before}
    history = fit_lm(model, train, val, recipe, device=device, progress=progress,
                     boundary=tokenizer.encode(POEM_BOUNDARY))
    model = model.cpu().eval()
    if not distributed.is_main():
        return model, history, {}
    results |= _metrics(history)
    results |= held_out_metrics(model, tokenizer, recipe.corpora) | poem_metrics(model, tokenizer, recipe.corpora)
    if out is not None:
        if recipe.lora is None:
            raise ValueError("only LoRA fine-tunes are saved as adapters; full fine-tunes: use save_checkpoint")
        save_lora_adapter(model, out, recipe, results, command, history, tokenizer)
    return model, history, results


def base_tokenizer(recipe: GPTRecipe):
    """The tokenizer a fine-tuning recipe's base model reads: bytes, or the one its card names."""
    if recipe.tokenizer == "bytes" or recipe.base is None:
        return ByteTokenizer()
    return tokenizer_for(read_card(find_checkpoint(recipe.base)))


def save_lora_adapter(model: GPT, out: str | Path, recipe: GPTRecipe, results: dict, command: str,
                      history: History, tokenizer=None) -> Path:
    """Write the adapter tensors (NAME.safetensors, ~100 kB) and a card naming the base model.

    Load it back, applied to its base, with ``models.hub.load(out)``.
    """
    return save_adapter(lora_state_dict(model), out, {
        "kind": LORA_ADAPTER, "base": recipe.base, "lora": asdict(recipe.lora),
        **_card(recipe, results, command, history, tokenizer)})
