"""How lesson 05's GPTs are trained: pretraining on Shakespeare + Chinese, then LoRA on Tang poems.

``python -m aigc_course train gpt --preset gpt_char`` and a notebook cell with
``TRAIN = True`` both call :func:`train_gpt`; ``--preset tang_lora`` calls
:func:`finetune_gpt`. Language models train by *iterations* over random
windows (there is no natural epoch), with AdamW, a warm-up then cosine decay of
the learning rate, and gradient clipping; that loop is :func:`fit_lm`.

Our small models read **bytes** (vocabulary 256, :class:`ByteTokenizer`): on the
ASCII Shakespeare text that is exactly a character-level model, and the same
model can read Chinese (3 bytes per character) without an "unknown" token, so
pretraining on English + Chinese and fine-tuning on Tang poems share one
vocabulary. A per-character vocabulary would need ~4,000 entries for the
Chinese characters, most of them seen a handful of times.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from aigc_course.assets import asset_path, check_file, data_dir, sha256sum
from aigc_course.checkpoints import CHECKPOINT_DIR, load_pretrained, read_card, save_checkpoint
from aigc_course.corpora import load_corpus, random_batch, sequential_batches, split_text
from aigc_course.env import hardware_summary, pick_device, seed_everything
from aigc_course.models.gpt import GPT, GPTConfig
from aigc_course.models.lora import LoRAConfig, add_lora, lora_state_dict, merge_lora, trainable_parameters
from aigc_course.tokenizer import ByteTokenizer

POEM_BOUNDARY = "\n\n"


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
    eval_windows: int = 64      # validation windows per corpus (block tokens each)
    bf16: bool = True           # bfloat16 autocast: ~2x faster matmuls on CPUs with AMX/AVX-512, and on GPUs
    seed: int = 0
    lora: LoRAConfig | None = None  # set for fine-tuning presets: train adapters only
    base: str | None = None         # fine-tuning: the shipped checkpoint to start from


GPT_PRESETS = {
    # The shipped model: 4 layers, 128 wide, 128-byte context; Shakespeare + Chinese.
    "gpt_char": GPTRecipe(),
    # A quick one for tests and the notebook's TRAIN = True (about a minute).
    "gpt_char_tiny": GPTRecipe(GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64),
                               corpora=("shakespeare",), iters=300, batch_size=16, eval_every=100,
                               eval_windows=16),
    # Pretraining -> fine-tuning: rank-8 LoRA on the attention projections, Tang poems.
    "tang_lora": GPTRecipe(GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=128),
                           corpora=("tang300",), iters=300, batch_size=16, lr=2e-3, min_lr=2e-4, warmup=20,
                           weight_decay=0.0, eval_every=100, eval_windows=32, lora=LoRAConfig(rank=8, alpha=16),
                           base="gpt_char"),
    # The same fine-tuning, every weight trainable (the comparison in the notebook and benchmark).
    "tang_full": GPTRecipe(GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=128),
                           corpora=("tang300",), iters=300, batch_size=16, lr=3e-4, min_lr=3e-5, warmup=20,
                           weight_decay=0.0, eval_every=100, eval_windows=32, base="gpt_char"),
}


def lr_at(step: int, lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Learning rate at ``step``: linear warm-up to ``lr`` over ``warmup`` steps, then cosine to ``min_lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def encode_corpus(name: str, tokenizer=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train ids, validation ids) of a shipped corpus, as int64 tensors."""
    tokenizer = tokenizer or ByteTokenizer()
    boundary = POEM_BOUNDARY if name == "tang300" else None
    train, val = split_text(load_corpus(name), 0.1, boundary)
    return (torch.tensor(tokenizer.encode(train), dtype=torch.long),
            torch.tensor(tokenizer.encode(val), dtype=torch.long))


@torch.no_grad()
def evaluate_lm(model: GPT, data: torch.Tensor, block: int, batch: int = 16, max_windows: int | None = 64,
                bf16: bool = False) -> float:
    """Mean next-token cross-entropy (nats per token) over non-overlapping windows of ``data``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for x, y in sequential_batches(data, block, batch, max_windows):
        with _autocast(device, bf16):
            _, loss = model(x.to(device), y.to(device))
        total += loss.item() * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / count


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 and device.type in ("cpu", "cuda") \
        else nullcontext()


def configure_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, LayerNorm gains or anything frozen)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.99))


def fit_lm(model: GPT, train_data: torch.Tensor, val_data: dict[str, torch.Tensor], recipe: GPTRecipe, *,
           device: torch.device | str = "cpu", max_seconds: float | None = None, progress: bool = True,
           schedule_by_time: bool = False) -> dict:
    """Train ``model`` for ``recipe.iters`` steps (or ``max_seconds``); return the history.

    ``schedule_by_time`` (with ``max_seconds``): the cosine decay follows the
    fraction of the time budget used instead of the step count, for runs that
    are limited by wall time (the benchmark).

    History: ``steps`` [(step, loss, lr)], ``evals`` [{"step", "seconds", <corpus>: val loss}], ``seconds``.
    Evaluation time is not counted in ``seconds`` (so wall-time comparisons are about training).
    """
    device = torch.device(device)
    model.to(device).train()
    block = model.config.block_size
    optimizer = configure_optimizer(model, recipe.lr, recipe.weight_decay)
    generator = torch.Generator().manual_seed(recipe.seed)
    history: dict = {"steps": [], "evals": [], "seconds": 0.0}
    train_seconds = 0.0

    def evaluate(step: int) -> None:
        row = {"step": step, "seconds": round(train_seconds, 1)}
        for name, data in val_data.items():
            row[name] = round(evaluate_lm(model, data, block, 16, recipe.eval_windows, recipe.bf16), 4)
        history["evals"].append(row)

    bar = tqdm(total=recipe.iters, desc="training", unit="step", disable=not progress)
    step = 0
    for step in range(recipe.iters):
        started = time.perf_counter()
        if schedule_by_time and max_seconds:
            fraction = min(1.0, train_seconds / max_seconds)
            lr = recipe.lr * (step + 1) / recipe.warmup if step < recipe.warmup else \
                recipe.min_lr + 0.5 * (recipe.lr - recipe.min_lr) * (1 + math.cos(math.pi * fraction))
        else:
            lr = lr_at(step, recipe.lr, recipe.min_lr, recipe.warmup, recipe.iters)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = random_batch(train_data, block, recipe.batch_size, generator, device)
        with _autocast(device, recipe.bf16):
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], recipe.grad_clip)
        optimizer.step()
        train_seconds += time.perf_counter() - started
        history["steps"].append((step, round(loss.item(), 4), lr))
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        bar.update()
        if (step + 1) % recipe.eval_every == 0:
            evaluate(step + 1)
        if max_seconds is not None and train_seconds >= max_seconds:
            break
    bar.close()
    if not history["evals"] or history["evals"][-1]["step"] != step + 1:
        evaluate(step + 1)
    history["seconds"] = round(train_seconds, 1)
    model.eval()
    return history


def _data(recipe: GPTRecipe) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    parts = {name: encode_corpus(name) for name in recipe.corpora}
    train = torch.cat([p[0] for p in parts.values()])
    return train, {name: p[1] for name, p in parts.items()}


def train_gpt(recipe: GPTRecipe, *, out: str | Path | None = None, command: str = "",
              max_seconds: float | None = None, progress: bool = True) -> tuple[GPT, dict, dict]:
    """Pretrain a byte-level GPT from scratch on ``recipe.corpora``; optionally save a checkpoint.

    Returns (model, history, metrics): validation loss per corpus in nats per
    byte, its bits per byte, and the training time.
    """
    seed_everything(recipe.seed)
    device = pick_device()
    model = GPT(recipe.model)
    train, val = _data(recipe)
    history = fit_lm(model, train, val, recipe, device=device, max_seconds=max_seconds, progress=progress)
    model = model.cpu().eval()
    results = _metrics(history)
    if out is not None:
        save_checkpoint(model, out, _card(recipe, results, command, history))
    return model, history, results


def _metrics(history: dict) -> dict:
    last = history["evals"][-1]
    results = {"steps": last["step"], "train_seconds": history["seconds"]}
    for name, value in last.items():
        if name not in ("step", "seconds"):
            results[f"val_loss_{name}"] = value
            results[f"val_bits_per_byte_{name}"] = round(value / math.log(2), 4)
    return results


def _card(recipe: GPTRecipe, results: dict, command: str, history: dict) -> dict:
    recipe_dict = asdict(recipe)
    return {"metrics": results, "recipe": recipe_dict, "command": command, "seed": recipe.seed,
            "duration_s": history["seconds"], "hardware": hardware_summary(), "tokenizer": "bytes (UTF-8)",
            "data": "data/text/" + ", data/text/".join(f"{c}.txt" for c in recipe.corpora)
                    + ": first 90% for training, last 10% for validation",
            "history": {"evals": history["evals"],
                        "train_loss_every_50": [round(sum(r[1] for r in history["steps"][i:i + 50])
                                                      / len(history["steps"][i:i + 50]), 4)
                                                for i in range(0, len(history["steps"]), 50)]}}


def finetune_gpt(recipe: GPTRecipe, *, base: GPT | None = None, out: str | Path | None = None,
                 command: str = "", progress: bool = True) -> tuple[GPT, dict, dict]:
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
    train, val = _data(recipe)
    model.to(device)
    before = {f"base_val_loss_{n}": round(evaluate_lm(model, v, model.config.block_size, 16,
                                                      recipe.eval_windows, recipe.bf16), 4)
              for n, v in val.items()}
    if recipe.lora is not None:
        add_lora(model, recipe.lora)
    results = {"trainable_parameters": trainable_parameters(model),
               "total_parameters": sum(p.numel() for p in model.parameters()), **before}
    history = fit_lm(model, train, val, recipe, device=device, progress=progress)
    model = model.cpu().eval()
    results |= _metrics(history)
    if out is not None:
        if recipe.lora is None:
            raise ValueError("only LoRA fine-tunes are saved as adapters; full fine-tunes: use save_checkpoint")
        save_lora_adapter(model, out, recipe, results, command, history)
    return model, history, results


def save_lora_adapter(model: GPT, out: str | Path, recipe: GPTRecipe, results: dict, command: str,
                      history: dict) -> Path:
    """Write the adapter tensors (NAME.safetensors, a few hundred kB) and a card naming the base model."""
    out = Path(out).with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = out.with_suffix(".safetensors")
    save_file(lora_state_dict(model), weights)
    card = {"name": out.name, "kind": "LoRAAdapter", "base": recipe.base, "lora": asdict(recipe.lora),
            "weights": weights.name, "weights_sha256": sha256sum(weights),
            "parameters": results["trainable_parameters"], **_card(recipe, results, command, history)}
    card_path = out.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card_path


def load_lora_model(adapter: str | Path, *, merge: bool = True, base: GPT | None = None) -> tuple[GPT, dict]:
    """The base GPT with a LoRA adapter applied: a shipped name (``"tang_lora"``) or a path.

    ``merge=True`` folds the adapter into the weights (plain GPT cost at
    inference); ``merge=False`` keeps the two paths, e.g. to compare them.
    """
    path = Path(adapter)
    if not path.with_suffix(".json").exists():
        for suffix in (".json", ".safetensors"):
            asset_path(f"{CHECKPOINT_DIR}/{adapter}{suffix}")
        path = data_dir() / CHECKPOINT_DIR / str(adapter)
    path = path.with_suffix("")
    card = read_card(path)
    if card.get("kind") != "LoRAAdapter":
        raise ValueError(f"{path}.json is not a LoRA adapter card (kind {card.get('kind')!r})")
    weights = check_file(path.with_suffix(".safetensors"), card["weights_sha256"], what=f"adapter {path.name}")
    if base is None:
        base, _ = load_pretrained(card["base"])
    model = add_lora(base, LoRAConfig(**card["lora"]))
    missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    if unexpected or any(".lora_" in k for k in missing):
        raise ValueError(f"adapter {path.name} does not fit base {card['base']}: unexpected {unexpected}")
    if merge:
        merge_lora(model)
    return model.eval(), card
