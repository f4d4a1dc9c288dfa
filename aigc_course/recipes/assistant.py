"""How lesson 09's models are trained and measured: emergence, grokking, scratchpads, and the chat assistant.

``python -m aigc_course train assistant --preset NAME --out data/...`` and the notebook's ``TRAIN = True``
call the functions here. Three presets write measurements only (a JSON file with the results, the curves
and a card: command, seed, duration, hardware), because what they teach is the curve, not the weights:

* ``emergence``: a family of GPTs (lesson 05's code) of growing size on one task mixture (fixed-width
  2-digit addition with reversed answers and in-context rule inference); exact match and per-token loss against size and compute;
* ``grokking``: modular addition a + b mod p from 40% of the table, with and without weight decay;
* ``scratchpad``: the same small GPT on 3-digit addition with and without written column steps.

Three presets are checkpoints, each starting from the one before: ``chat_base`` (a raw language model of
sentences about sums and the course's terms), ``chat_sft`` (instruction tuning with the chat template,
loss on the assistant's tokens only) and ``chat_dpo`` (DPO against the frozen ``chat_sft``).
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from aigc_course.core.checkpoints import save_checkpoint
from aigc_course.core.env import hardware_summary, pick_device, seed_everything
from aigc_course.data import assistant as tasks
from aigc_course.data.tokenizers import CharTokenizer
from aigc_course.models.assistant import (BM25, batch_completion_logprobs, complete, dpo_loss, dpo_sft_loss,
                                          lesson_index, masked_lm_loss, retrieve)
from aigc_course.models.gpt import GPT, GPTConfig
from aigc_course.models.hub import load_pretrained
from aigc_course.recipes.gpt import configure_optimizer, lm_step_loss
from aigc_course.train import EvalEvery, WarmupCosine, fit

#: The alphabet of the arithmetic and rule tasks: digits, the letters of the rule words, and the signs.
TASK_CHARS = "\n+,;=>|0123456789abcdefgh"


def task_tokenizer() -> CharTokenizer:
    return CharTokenizer(TASK_CHARS)


def chat_tokenizer() -> CharTokenizer:
    return CharTokenizer(tasks.chat_alphabet())


def tokenizer_card(tok: CharTokenizer) -> dict:
    """How a card stores a character tokenizer (read back by ``data.tokenizers.tokenizer_for``)."""
    return {"kind": "chars", "vocab_size": tok.vocab_size, "chars": tok.chars[1:]}


def line_batch(make_line, tok, block: int, batch: int, rng: random.Random, device="cpu"):
    """``batch`` rows of ``block + 1`` tokens, each lines from ``make_line(rng)`` joined by newlines
    (a row starts at a line's start); returns (inputs, next-token targets), each (batch, block)."""
    rows = []
    for _ in range(batch):
        ids: list[int] = []
        while len(ids) < block + 1:
            ids += tok.encode("\n" + make_line(rng))
        rows.append(ids[:block + 1])
    t = torch.tensor(rows, device=device)
    return t[:, :-1], t[:, 1:]


# --------------------------------------------------------------------------- measuring the task models


@torch.no_grad()
def fixed_answer_eval(model: GPT, tok, prompts: list[str], answers: list[str]) -> dict[str, float]:
    """Exact match (greedy answer == right answer) and the right answer's loss in nats per token.

    All prompts have one length and all answers another (the tasks' fixed-width
    formats), so both are one batched pass: greedy decoding for the exact match,
    teacher forcing for the loss, the smooth measure under the sharp one.
    """
    model.eval()
    device = next(model.parameters()).device
    p = torch.tensor([tok.encode("\n" + x) for x in prompts], device=device)
    a = torch.tensor([tok.encode(y) for y in answers], device=device)
    out = model.generate(p, a.size(1), greedy=True)[:, p.size(1):]
    logits, _ = model(torch.cat([p, a], 1)[:, :-1])
    nll = F.cross_entropy(logits[:, p.size(1) - 1:].flatten(0, 1), a.flatten())
    return {"exact_match": round((out == a).all(1).float().mean().item(), 4), "answer_nats": round(nll.item(), 4),
            "token_accuracy": round((out == a).float().mean().item(), 4)}


def addition_eval(model: GPT, tok, digits: int, n: int = 400, seed: int = 1, scratch: bool = False,
                  reverse: bool = False) -> dict:
    """:func:`fixed_answer_eval` on ``n`` held-out sums (answers in the format the model was trained on)."""
    rng = random.Random(seed)
    pairs = [tasks.random_pair(rng, digits, held_out=True) for _ in range(n)]
    prompts, answers = zip(*(tasks.addition(a, b, digits, scratch, reverse) for a, b in pairs))
    return fixed_answer_eval(model, tok, list(prompts), list(answers))


def rule_eval(model: GPT, tok, shots: int, n: int = 400, seed: int = 2) -> dict:
    """:func:`fixed_answer_eval` on ``n`` fresh rule episodes with ``shots`` examples in the prompt."""
    rng = random.Random(seed + 100 * shots)
    prompts, answers, _ = zip(*(tasks.rule_episode(rng, shots) for _ in range(n)))
    return fixed_answer_eval(model, tok, list(prompts), list(answers))


# --------------------------------------------------------------------------- 1. emergence


@dataclass
class EmergenceRecipe:
    """A family of GPTs, identical but for (layers, width), trained alike on the same lines: 2-digit sums with
    reversed answers, and with ``rule_share`` > 0 rule episodes mixed in (measured at ``shots`` examples)."""

    sizes: tuple[tuple[int, int], ...] = ((1, 16), (1, 32), (2, 48), (2, 64))
    digits: int = 2
    rule_share: float = 0.0       # 0.5 (1,500 steps, lr 3e-3): no model learned the rules
    max_shots: int = 4
    iters: int = 3000
    batch_size: int = 32
    block_size: int = 48
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 50
    weight_decay: float = 0.1
    eval_every: int = 250
    n_test: int = 300
    shots: tuple[int, ...] = ()
    seed: int = 0


def _train_lm_on_lines(model, make_line, tok, recipe, evaluate, device):
    rng = random.Random(recipe.seed)
    every = EvalEvery(evaluate, every=recipe.eval_every, unit="step")
    return fit(model, lm_step_loss, lambda: line_batch(make_line, tok, model.config.block_size, recipe.batch_size,
                                                       rng, device),
               steps=recipe.iters, optimizer=lambda m: configure_optimizer(m, recipe.lr, recipe.weight_decay),
               schedule=WarmupCosine(warmup=recipe.warmup, floor=recipe.min_lr / recipe.lr), callbacks=[every],
               device=device, grad_clip=1.0, progress=False)


def train_emergence(recipe: EmergenceRecipe, *, out: str | Path | None = None, command: str = "") -> dict:
    """Train every size of the family; return (and with ``out`` write as ``out``.json) the measurements."""
    tok, device = task_tokenizer(), pick_device()
    rows, started = [], time.perf_counter()
    for n_layer, n_embd in recipe.sizes:
        seed_everything(recipe.seed)
        config = GPTConfig(vocab_size=tok.vocab_size, block_size=recipe.block_size, n_layer=n_layer,
                           n_head=max(1, n_embd // 16), n_embd=n_embd)
        model = GPT(config)

        def evaluate(m):
            return {"addition": addition_eval(m, tok, recipe.digits, recipe.n_test, reverse=True),
                    **{f"rule_{k}shot": rule_eval(m, tok, k, recipe.n_test) for k in recipe.shots}}

        def line(rng):
            return tasks.mixture_line(rng, recipe.digits, recipe.max_shots, recipe.rule_share)

        history = _train_lm_on_lines(model, line, tok, recipe, evaluate, device)
        params = model.num_parameters(non_embedding=True)
        tokens = recipe.iters * recipe.batch_size * recipe.block_size
        rows.append({"n_layer": n_layer, "n_embd": n_embd, "parameters": params,
                     "compute_flops": 6 * params * tokens, "train_seconds": round(history.seconds, 1),
                     "final": {k: v for k, v in history.evals[-1].items() if k not in ("epoch", "seconds")},
                     "curve": [{k: v for k, v in row.items() if k not in ("epoch", "seconds")}
                               for row in history.evals]})
    result = {"kind": "measurements", "what": "emergence", "rows": rows}
    return _write(result, recipe, out, command, time.perf_counter() - started)


def _write(result: dict, recipe, out, command: str, seconds: float) -> dict:
    result |= {"recipe": asdict(recipe), "command": command, "seed": recipe.seed, "duration_s": round(seconds, 1),
               "hardware": hardware_summary(), "data": "synthetic, generated from the seed (aigc_course/data/assistant.py)"}
    if out is not None:
        path = Path(out).with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


# --------------------------------------------------------------------------- 1b. in-context learning


@dataclass
class InContextRecipe:
    """One GPT trained on rule episodes alone (0 to ``max_shots`` examples each, one rule per episode), measured
    along its training at 0, 1, 2 and 4 shots: in-context learning and the moment it appears."""

    n_layer: int = 2
    n_embd: int = 64
    max_shots: int = 4
    iters: int = 3000
    batch_size: int = 32
    block_size: int = 48
    lr: float = 1e-3              # at 3e-3, one of two 6,000-step runs never left chance
    min_lr: float = 1e-4
    warmup: int = 50
    weight_decay: float = 0.1
    eval_every: int = 100
    n_test: int = 300
    shots: tuple[int, ...] = (0, 1, 2, 4)
    seed: int = 0


def train_in_context(recipe: InContextRecipe, *, out: str | Path | None = None, command: str = "") -> dict:
    """Train the model; return (and with ``out`` write as ``out``.json) the few-shot curves."""
    tok, device, started = task_tokenizer(), pick_device(), time.perf_counter()
    seed_everything(recipe.seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=recipe.block_size, n_layer=recipe.n_layer,
                          n_head=max(1, recipe.n_embd // 16), n_embd=recipe.n_embd))

    def episode(rng):
        prompt, answer, _ = tasks.rule_episode(rng, rng.randint(0, recipe.max_shots))
        return prompt + answer

    def evaluate(m):
        return {f"rule_{k}shot": rule_eval(m, tok, k, recipe.n_test) for k in recipe.shots}

    history = _train_lm_on_lines(model, episode, tok, recipe, evaluate, device)
    curve = [{k: v for k, v in row.items() if k not in ("epoch", "seconds")} for row in history.evals]
    result = {"kind": "measurements", "what": "in_context", "parameters": model.num_parameters(non_embedding=True),
              "train_seconds": round(history.seconds, 1), "final": curve[-1], "curve": curve}
    return _write(result, recipe, out, command, time.perf_counter() - started)


# --------------------------------------------------------------------------- 2. grokking


@dataclass
class GrokkingRecipe:
    """a + b mod p from a random ``train_fraction`` of the p x p table; full-batch AdamW (Power et al. 2022)."""

    p: int = 47
    train_fraction: float = 0.4
    n_layer: int = 1
    n_embd: int = 128
    n_head: int = 4
    iters: int = 3000
    lr: float = 1e-3
    weight_decays: tuple[float, ...] = (1.0, 0.0)
    eval_every: int = 20
    seed: int = 0


def modular_split(p: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) rows (a, b, =, a + b mod p) of the whole table, split at random (seeded)."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    rows = torch.stack([a.flatten(), b.flatten(), torch.full((p * p,), p), (a + b).flatten() % p], 1)
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    cut = int(fraction * p * p)
    return rows[order[:cut]], rows[order[cut:]]


def _last_token_loss(model, batch):
    logits, _ = model(batch[:, :3])
    return F.cross_entropy(logits[:, -1], batch[:, 3])


@torch.no_grad()
def _accuracy(model, rows) -> float:
    return round((model(rows[:, :3])[0][:, -1].argmax(-1) == rows[:, 3]).float().mean().item(), 4)


def first_step_reaching(curve: list[dict], key: str, level: float = 0.99) -> int | None:
    """The first evaluated step where ``key`` reaches ``level`` (None if it never does)."""
    return next((row["step"] for row in curve if row[key] >= level), None)


def train_grokking(recipe: GrokkingRecipe, *, out: str | Path | None = None, command: str = "") -> dict:
    """One run per weight decay; the curves of train/test accuracy and the steps where each reaches 99%."""
    device, started, runs = pick_device(), time.perf_counter(), {}
    train, test = (t.to(device) for t in modular_split(recipe.p, recipe.train_fraction, recipe.seed))
    for wd in recipe.weight_decays:
        seed_everything(recipe.seed)
        model = GPT(GPTConfig(vocab_size=recipe.p + 1, block_size=3, n_layer=recipe.n_layer, n_head=recipe.n_head,
                              n_embd=recipe.n_embd))
        every = EvalEvery(lambda m: {"train_acc": _accuracy(m, train), "test_acc": _accuracy(m, test),
                                     "train_loss": round(_last_token_loss(m, train).item(), 4),
                                     "test_loss": round(_last_token_loss(m, test).item(), 4)},
                          every=recipe.eval_every, unit="step")
        optimizer = lambda m, wd=wd: torch.optim.AdamW(m.parameters(), lr=recipe.lr, betas=(0.9, 0.98),  # noqa: E731
                                                       weight_decay=wd)
        history = fit(model, _last_token_loss, lambda: train, steps=recipe.iters, optimizer=optimizer,
                      schedule=WarmupCosine(warmup=10, floor=1.0),  # warm-up, then a constant rate
                      callbacks=[every], device=device, progress=False)
        curve = [{k: v for k, v in row.items() if k not in ("epoch", "seconds")} for row in history.evals]
        runs[str(wd)] = {"weight_decay": wd, "train_seconds": round(history.seconds, 1), "curve": curve,
                         "train_99": first_step_reaching(curve, "train_acc"),
                         "test_99": first_step_reaching(curve, "test_acc")}
    result = {"kind": "measurements", "what": "grokking", "train_size": len(train), "test_size": len(test),
              "runs": runs}
    return _write(result, recipe, out, command, time.perf_counter() - started)


# --------------------------------------------------------------------------- 3. scratchpad


@dataclass
class ScratchpadRecipe:
    """One GPT shape on ``digits``-digit addition, trained twice: answers alone, or column steps first."""

    digits: int = 3
    n_layer: int = 2
    n_embd: int = 64
    iters: int = 1500
    batch_size: int = 48
    block_size: int = 64
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: int = 50
    weight_decay: float = 0.1
    eval_every: int = 250
    n_test: int = 400
    seed: int = 0


def train_scratchpad(recipe: ScratchpadRecipe, *, out: str | Path | None = None, command: str = "") -> dict:
    tok, device, started, runs = task_tokenizer(), pick_device(), time.perf_counter(), {}
    for scratch in (False, True):
        seed_everything(recipe.seed)
        model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=recipe.block_size, n_layer=recipe.n_layer,
                              n_head=max(1, recipe.n_embd // 16), n_embd=recipe.n_embd))

        def line(rng, scratch=scratch):
            return "".join(tasks.addition(*tasks.random_pair(rng, recipe.digits), recipe.digits, scratch))

        history = _train_lm_on_lines(model, line, tok, recipe, lambda m, s=scratch: _scratch_eval(m, tok, recipe, s),
                                     device)
        runs["scratchpad" if scratch else "direct"] = {
            "parameters": model.num_parameters(non_embedding=True), "train_seconds": round(history.seconds, 1),
            "final": history.evals[-1]["final_exact_match"],
            "curve": [{k: v for k, v in r.items() if k not in ("epoch", "seconds")} for r in history.evals]}
    result = {"kind": "measurements", "what": "scratchpad", "runs": runs}
    return _write(result, recipe, out, command, time.perf_counter() - started)


@torch.no_grad()
def _scratch_eval(model, tok, recipe: ScratchpadRecipe, scratch: bool) -> dict:
    """Exact match of the final answer (the digits after ``;`` when there is a scratchpad)."""
    r = addition_eval(model, tok, recipe.digits, recipe.n_test, scratch=scratch)
    if not scratch:
        return {"final_exact_match": r["exact_match"]}
    rng = random.Random(1)
    pairs = [tasks.random_pair(rng, recipe.digits, held_out=True) for _ in range(recipe.n_test)]
    prompts = torch.tensor([tok.encode("\n" + tasks.addition(a, b, recipe.digits)[0]) for a, b in pairs])
    width = len(tasks.addition(0, 0, recipe.digits, True)[1])
    out = model.generate(prompts.to(next(model.parameters()).device), width, greedy=True)[:, prompts.size(1):]
    got = [tasks.final_answer(tok.decode(o.tolist())) for o in out]
    right = [tasks.addition(a, b, recipe.digits)[1] for a, b in pairs]
    return {"final_exact_match": round(sum(g == r for g, r in zip(got, right)) / len(right), 4),
            "scratch_exact_match": r["exact_match"]}


# --------------------------------------------------------------------------- 4. the chat assistant


@dataclass
class ChatRecipe:
    """One stage of the assistant: ``pretrain`` (raw text), ``sft`` (chat template) or ``dpo`` (preferences)."""

    stage: str = "pretrain"
    model: GPTConfig = field(default_factory=lambda: GPTConfig(vocab_size=0, block_size=160, n_layer=3, n_head=4,
                                                                n_embd=128))
    base: str | None = None       # the checkpoint this stage starts from (and, for DPO, the frozen reference)
    iters: int = 5000
    batch_size: int = 16
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup: int = 50
    weight_decay: float = 0.1
    chatty: float = 0.6           # sft: share of replies with a chatty tail
    beta: float = 0.1             # dpo: strength of the pull towards the reference
    sft_weight: float = 0.0       # dpo: weight of the chosen replies' log-likelihood (0: plain DPO)
    n_pairs: int = 2000           # dpo: training pairs
    n_eval: int = 100             # held-out instructions / pairs measured
    seed: int = 0


CHAT_PRESETS = {
    "chat_base": ChatRecipe(),
    "chat_sft": ChatRecipe(stage="sft", base="chat_base", iters=2000, lr=1e-3, min_lr=1e-4),
    "chat_dpo": ChatRecipe(stage="dpo", base="chat_sft", iters=150, lr=5e-5, min_lr=5e-6, warmup=10,
                           weight_decay=0.0, sft_weight=1.0),
}


def sft_batch(tok, block: int, batch: int, rng: random.Random, chatty: float, device="cpu"):
    """Rows of packed training conversations: (inputs, targets, loss mask on the assistant's tokens)."""
    pool = tasks.instructions(4 * batch, rng.randrange(10 ** 9))
    a_id, e_id = tok.encode(tasks.MARKERS["assistant"])[0], tok.encode(tasks.MARKERS["end"])[0]
    rows = []
    for _ in range(batch):
        ids: list[int] = []
        while len(ids) < block + 1:
            ids += tok.encode(tasks.sft_text(rng.choice(pool), rng, chatty))
        rows.append(ids[:block + 1])
    t = torch.tensor(rows)
    mask = tasks.assistant_mask(t, a_id, e_id)[:, 1:]           # the *targets* that are the assistant's
    return t[:, :-1].to(device), t[:, 1:].to(device), mask.to(device)


def sft_step_loss(model, batch):
    x, y, mask = batch
    return masked_lm_loss(model(x)[0], y, mask)


def reply(model: GPT, tok, inst: tasks.Instruction, **sampling) -> str:
    """The model's reply to an instruction (greedy unless ``temperature`` > 0)."""
    end = tok.encode(tasks.MARKERS["end"])[0]
    return tok.decode(complete(model, tok.encode(inst.prompt()), end, 30, **sampling))


def answer_report(model: GPT, tok, insts: list[tasks.Instruction]) -> dict[str, float]:
    """Shares of greedy replies: exactly right, right answer first (chatty or not), chatty; per kind."""
    got = [(i, reply(model, tok, i).strip()) for i in insts]
    share = lambda items: round(sum(items) / max(1, len(items)), 4)  # noqa: E731
    out = {"exact": share([r == i.answer for i, r in got]),
           "correct": share([r.startswith(i.answer) and (r == i.answer or r[len(i.answer):] == tasks.CHATTY[i.lang])
                             for i, r in got]),
           "chatty": share([r.endswith(tasks.CHATTY[i.lang]) for i, r in got])}
    for kind in ("math", "glossary"):
        out[f"exact_{kind}"] = share([r == i.answer for i, r in got if i.kind == kind])
    return out


@torch.no_grad()
def preference_accuracy(policy: GPT, reference: GPT, tok, pairs, beta: float = 0.1) -> dict[str, float]:
    """Share of pairs whose implicit reward beta * log(pi / pi_ref) is higher for the chosen reply, and the
    mean DPO loss."""
    lp_c, lp_r, rf_c, rf_r = _pair_logprobs(policy, tok, pairs) + _pair_logprobs(reference, tok, pairs)
    margin = (lp_c - rf_c) - (lp_r - rf_r)
    return {"preference_accuracy": round((margin > 0).float().mean().item(), 4),
            "dpo_loss": round(dpo_loss(lp_c, lp_r, rf_c, rf_r, beta).mean().item(), 4)}


def _pair_logprobs(model, tok, pairs) -> tuple[torch.Tensor, torch.Tensor]:
    end = tasks.MARKERS["end"]
    prompts = [tok.encode(i.prompt()) for i, _, _ in pairs]
    chosen = batch_completion_logprobs(model, [(p, tok.encode(c + end)) for p, (_, c, _) in zip(prompts, pairs)])
    rejected = batch_completion_logprobs(model, [(p, tok.encode(r + end)) for p, (_, _, r) in zip(prompts, pairs)])
    return chosen, rejected


def rag_questions() -> list[tasks.Instruction]:
    """Questions about terms no training text contains, whose answer is a glossary row of the lessons."""
    rows = tasks.glossary_rows(tasks.lesson_lines())
    unseen = [(en, zh) for en, zh in tasks.glossary_split()["unseen"] if rows.get(en) == zh]
    return [tasks.Instruction("glossary", lang, tasks.GLOSSARY_QUESTIONS[lang].format(en=en, zh=zh),
                              zh if lang == "en" else en) for en, zh in unseen for lang in ("en", "zh")]


def with_retrieval(insts: list[tasks.Instruction], index: BM25) -> list[tasks.Instruction]:
    """The same questions, each with its retrieved passage (:func:`retrieve`) as context."""
    return [replace(i, context=retrieve(index, i.question)) for i in insts]


def rag_report(model: GPT, tok) -> dict[str, float]:
    """Exact answers to the unseen-term questions without and with retrieval, and the retriever's hit rate."""
    questions = rag_questions()
    index = lesson_index()
    retrieved = with_retrieval(questions, index)
    return {"rag_questions": len(questions),
            "rag_hit_rate": round(sum(i.answer in r.context for i, r in zip(questions, retrieved)) / len(questions), 4),
            "rag_exact_without": answer_report(model, tok, questions)["exact"],
            "rag_exact_with": answer_report(model, tok, retrieved)["exact"]}


@torch.no_grad()
def knowledge_report(model: GPT, tok, n: int = 100) -> dict[str, float]:
    """What a model knows as plain text, without the chat template: its greedy completion of ``"a+b="`` for
    ``n`` held-out pairs, and of ``The Chinese for "term" is`` for the ``pretrain_only`` terms."""
    rng, newline = random.Random(3), tok.encode("\n")[0]
    pairs = [tasks.random_pair(rng, 2, held_out=True) for _ in range(n)]
    sums = [tok.decode(complete(model, tok.encode(f"\n{a}+{b}="), newline, 4)) == str(a + b) for a, b in pairs]
    terms = tasks.glossary_split()["pretrain_only"]
    facts = [tok.decode(complete(model, tok.encode(f'\nThe Chinese for "{en}" is '), newline, 12)) == f"{zh}."
             for en, zh in terms]
    return {"text_sum_exact": round(sum(sums) / n, 4), "text_fact_exact": round(sum(facts) / len(facts), 4)}


def _chat_metrics(model, tok, recipe: ChatRecipe, reference: GPT | None = None, prefix: str = "") -> dict:
    held_out = tasks.instructions(recipe.n_eval, seed=12345, split="held_out")
    seen = tasks.instructions(recipe.n_eval, seed=54321, split="train")
    out = {f"held_out_{k}": v for k, v in answer_report(model, tok, held_out).items()}
    out |= {f"train_split_{k}": v for k, v in answer_report(model, tok, seen).items()}
    if reference is not None:
        pairs = tasks.preference_pairs(recipe.n_eval, seed=777, split="held_out")
        out |= preference_accuracy(model, reference, tok, pairs, recipe.beta)
    out |= rag_report(model, tok) | knowledge_report(model, tok)
    return {prefix + k: v for k, v in out.items()}


def train_chat(recipe: ChatRecipe, *, out: str | Path | None = None, command: str = "",
               base: GPT | None = None) -> tuple[GPT, dict]:
    """Train one stage of the assistant; returns (model, metrics) and with ``out`` saves a checkpoint."""
    if recipe.stage not in ("pretrain", "sft", "dpo"):
        raise ValueError(f"stage must be pretrain, sft or dpo, got {recipe.stage!r}")
    seed_everything(recipe.seed)
    tok, device, rng = chat_tokenizer(), pick_device(), random.Random(recipe.seed)
    if recipe.stage == "pretrain":
        model = GPT(replace(recipe.model, vocab_size=tok.vocab_size))
    else:
        if base is None:
            if recipe.base is None:
                raise ValueError("this stage starts from a trained model: pass base= or set recipe.base")
            base = load_pretrained(recipe.base)[0]
        model = base
        if model.config.vocab_size != tok.vocab_size:
            raise ValueError(f"the base model reads {model.config.vocab_size} tokens, the chat alphabet has "
                             f"{tok.vocab_size}: the chat data changed since the base was trained; retrain it "
                             "(python -m aigc_course train assistant --preset chat_base)")
    model.to(device)
    schedule = WarmupCosine(warmup=recipe.warmup, floor=recipe.min_lr / recipe.lr)
    optimizer = lambda m: configure_optimizer(m, recipe.lr, recipe.weight_decay)  # noqa: E731
    before, reference = {}, None
    if recipe.stage == "pretrain":
        history = fit(model, lm_step_loss, lambda: line_batch(tasks.pretraining_line, tok, model.config.block_size,
                                                              recipe.batch_size, rng, device),
                      steps=recipe.iters, optimizer=optimizer, schedule=schedule, device=device, grad_clip=1.0,
                      progress=False)
    elif recipe.stage == "sft":
        before = _chat_metrics(model, tok, recipe, prefix="before_")
        history = fit(model, sft_step_loss, lambda: sft_batch(tok, model.config.block_size, recipe.batch_size, rng,
                                                              recipe.chatty, device),
                      steps=recipe.iters, optimizer=optimizer, schedule=schedule, device=device, grad_clip=1.0,
                      progress=False)
    else:
        import copy

        reference = copy.deepcopy(model).eval().requires_grad_(False)
        pairs = tasks.preference_pairs(recipe.n_pairs, seed=recipe.seed + 99)
        with torch.no_grad():
            ref_c, ref_r = _pair_logprobs(reference, tok, pairs)
        before = _chat_metrics(model, tok, recipe, reference, prefix="before_")

        lengths = torch.tensor([len(tok.encode(c + tasks.MARKERS["end"])) for _, c, _ in pairs])

        def dpo_step(m, batch):
            idx = batch
            chosen, rejected = _pair_logprobs(m, tok, [pairs[i] for i in idx])
            return dpo_sft_loss(chosen, rejected, ref_c[idx], ref_r[idx], lengths[idx].to(chosen.device),
                                recipe.beta, recipe.sft_weight)

        g = torch.Generator().manual_seed(recipe.seed)
        history = fit(model, dpo_step, lambda: torch.randint(0, len(pairs), (recipe.batch_size,), generator=g),
                      steps=recipe.iters, optimizer=optimizer, schedule=schedule, device=device, grad_clip=1.0,
                      progress=False)
    model = model.cpu().eval()
    reference = reference.cpu() if reference is not None else None
    metrics = {"steps": recipe.iters, "train_seconds": round(history.seconds, 1),
               "final_train_loss": round(sum(history.series("loss")[-20:]) / 20, 4), **before,
               **_chat_metrics(model, tok, recipe, reference)}
    if out is not None:
        losses = history.series("loss")
        save_checkpoint(model, out, {
            "metrics": metrics, "recipe": asdict(recipe), "command": command, "seed": recipe.seed,
            "duration_s": round(history.seconds, 1), "hardware": hardware_summary(), "tokenizer": tokenizer_card(tok),
            "data": "synthetic instructions and sentences generated from the seed (aigc_course/data/assistant.py), "
                    "terms from translations/terms.json",
            "history": {"train_loss_every_50": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4)
                                                for i in range(0, len(losses), 50)]}})
    return model, metrics


EMERGENCE_PRESETS = {"emergence": EmergenceRecipe()}
GROKKING_PRESETS = {"grokking": GrokkingRecipe()}
IN_CONTEXT_PRESETS = {"in_context": InContextRecipe()}
SCRATCHPAD_PRESETS = {"scratchpad": ScratchpadRecipe()}


def compute_label(flops: float) -> str:
    """``6.1e+10`` style, for tables."""
    return f"{flops:.1e}" if flops else "0"


__all__ = ["CHAT_PRESETS", "ChatRecipe", "EMERGENCE_PRESETS", "EmergenceRecipe", "GROKKING_PRESETS", "GrokkingRecipe",
           "IN_CONTEXT_PRESETS", "InContextRecipe", "SCRATCHPAD_PRESETS", "ScratchpadRecipe", "addition_eval",
           "answer_report", "chat_tokenizer", "first_step_reaching", "knowledge_report", "modular_split",
           "preference_accuracy", "rag_report", "reply", "retrieve", "rule_eval", "task_tokenizer", "train_chat",
           "train_emergence", "train_grokking", "train_in_context", "train_scratchpad", "with_retrieval"]
