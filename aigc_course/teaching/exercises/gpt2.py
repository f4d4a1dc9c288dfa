"""Lesson 05 (GPT-2): causal attention, top-p, LoRA, a Transformer block, two predictions, a training step."""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.teaching.exercises.framework import Exercise, _randn, _size, letter, question, within

EXERCISES: dict[str, Exercise] = {}


# --- Lesson 05: GPT-2 (causal mask, top-p, LoRA) ---

def _attention_reference(q, k, v):
    from aigc_course.models.gpt import attention_manual

    return attention_manual(q, k, v)


def _attention_public():
    g = torch.Generator().manual_seed(5)
    return tuple(torch.randn(2, 3, 6, 4, generator=g) for _ in range(3))  # (B, heads, T, head_dim)


def _attention_hidden(g: torch.Generator):
    shape = (_size(g, 1, 3), _size(g, 1, 4), _size(g, 1, 9), _size(g, 1, 8))
    return tuple(torch.randn(shape, generator=g) for _ in range(3))


def _top_p_reference(logits, p):
    from aigc_course.models.gpt import top_p_filter

    return top_p_filter(logits, p)


def _top_p_hidden(g: torch.Generator):
    return _randn(g, _size(g, 1, 5), _size(g, 2, 20), scale=2.5), round(0.3 + 0.65 * float(torch.rand(1, generator=g)), 3)


def _lora_reference(x, weight, bias, lora_a, lora_b, scale):
    from aigc_course.models.lora import lora_forward

    return lora_forward(x, weight, bias, lora_a, lora_b, scale)


def _lora_public():
    g = torch.Generator().manual_seed(7)
    x, weight, bias = torch.randn(5, 8, generator=g), torch.randn(6, 8, generator=g), torch.randn(6, generator=g)
    lora_a, lora_b = torch.randn(2, 8, generator=g), torch.randn(6, 2, generator=g)
    return x, weight, bias, lora_a, lora_b, 0.5


def _lora_hidden(g: torch.Generator):
    n, d_in, d_out, r = _size(g, 1, 6), _size(g, 2, 10), _size(g, 2, 10), _size(g, 1, 4)
    return (_randn(g, n, d_in), _randn(g, d_out, d_in), _randn(g, d_out), _randn(g, r, d_in), _randn(g, d_out, r),
            round(0.1 + 2 * float(torch.rand(1, generator=g)), 3))


EXERCISES.update({e.id: e for e in (
    Exercise("5.1", "causal self-attention", "05_gpt2", "my_causal_attention",
             "scores = q @ k^T / sqrt(head_dim); set scores above the diagonal (key after query) to -inf "
             "before the softmax over the last dimension; then multiply by v",
             reference=_attention_reference, public=_attention_public, hidden=_attention_hidden,
             protects=("aigc_course.models.gpt:attention_manual",)),
    Exercise("5.2", "top-p (nucleus) filter", "05_gpt2", "my_top_p",
             "sort descending, softmax, keep a token while the probability mass *before* it is < p "
             "(the top token always stays), set the rest to -inf, then undo the sort",
             reference=_top_p_reference, public=lambda: (torch.randn(4, 12, generator=torch.Generator()
                                                                     .manual_seed(6)) * 2, 0.8),
             hidden=_top_p_hidden, protects=("aigc_course.models.gpt:top_p_filter",)),
    Exercise("5.3", "LoRA forward", "05_gpt2", "my_lora_forward",
             "the frozen linear layer's output plus the adapter path times scale; the adapter path takes x "
             "from in to r numbers with A (r, in), then to out with B (out, r): mind each transpose",
             reference=_lora_reference, public=_lora_public, hidden=_lora_hidden,
             protects=("aigc_course.models.lora:lora_forward",)),
)})


def check_causal_attention(answer: Callable) -> None:
    """Exercise 5.1: ``answer(q, k, v)`` must return causal softmax(q k^T / sqrt(d)) v, shape of q."""
    EXERCISES["5.1"].check(answer)


def check_top_p(answer: Callable) -> None:
    """Exercise 5.2: ``answer(logits, p)`` must keep the nucleus of each row and set the rest to -inf."""
    EXERCISES["5.2"].check(answer)


def check_lora_forward(answer: Callable) -> None:
    """Exercise 5.3: ``answer(x, weight, bias, lora_a, lora_b, scale)`` must return the LoRA layer's output."""
    EXERCISES["5.3"].check(answer)


# Lesson 05, continued: a whole Transformer block, and predictions committed before the result is shown.

_BLOCK_NAMES = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                "mlp.c_proj.weight", "mlp.c_proj.bias")


def _block_weights(g: torch.Generator, c: int) -> list[torch.Tensor]:
    """Random float64 weights for a block of width ``c``, in ``_BLOCK_NAMES`` order (LayerNorm gains near 1)."""
    shapes = {"ln_1.weight": (c,), "ln_1.bias": (c,), "attn.c_attn.weight": (3 * c, c), "attn.c_attn.bias": (3 * c,),
              "attn.c_proj.weight": (c, c), "attn.c_proj.bias": (c,), "ln_2.weight": (c,), "ln_2.bias": (c,),
              "mlp.c_fc.weight": (4 * c, c), "mlp.c_fc.bias": (4 * c,), "mlp.c_proj.weight": (c, 4 * c),
              "mlp.c_proj.bias": (c,)}
    weights = []
    for name in _BLOCK_NAMES:
        w = torch.randn(shapes[name], generator=g, dtype=torch.float64)
        weights.append(1 + 0.2 * w if name.startswith("ln") and name.endswith("weight") else
                       0.3 * w if name.endswith("bias") else w / shapes[name][1] ** 0.5)
    return weights


def _block_reference(x, weights, n_head):
    """The package's ``Block`` with these weights loaded (float64, eval mode), applied to ``x``."""
    from aigc_course.models.gpt import Block, GPTConfig

    block = Block(GPTConfig(n_embd=x.shape[-1], n_head=n_head, attention="sdpa")).double().eval()
    block.load_state_dict(dict(zip(_BLOCK_NAMES, weights)))
    with torch.no_grad():
        return block(x.double())


def _block_run(answer: Callable, args: tuple):
    """The learner's block gets the same weights as a dict named like ``Block.state_dict()``."""
    x, weights, n_head = args
    return answer(x, dict(zip(_BLOCK_NAMES, weights)), int(n_head))


def _block_public():
    g = torch.Generator().manual_seed(52)
    return torch.randn(2, 5, 8, generator=g, dtype=torch.float64) * 2, _block_weights(g, 8), 2


def _block_hidden(g: torch.Generator):
    n_head = _size(g, 1, 4)
    c = n_head * _size(g, 1, 4)
    x = torch.randn(_size(g, 1, 3), _size(g, 1, 9), c, generator=g, dtype=torch.float64) * 2
    return x, _block_weights(g, c), n_head


def _answer_5_5():
    return letter("A")   # the cache stores keys and values that would be recomputed identically


def _answer_5_6():
    # gpt_char: 4 layers, n_embd 128; rank 8 on c_attn (128 -> 384) and c_proj (128 -> 128): r * (in + out) each
    return torch.tensor([4 * (8 * (128 + 384) + 8 * (128 + 128))], dtype=torch.float64)


EXERCISES.update({e.id: e for e in (
    Exercise("5.4", "Transformer block", "05_gpt2", "my_block",
             "pre-norm: LayerNorm first, then attention or MLP, then add the input back (twice); the MLP is "
             "Linear(C, 4C), GELU with the tanh approximation, Linear(4C, C); heads are C // n_head wide",
             reference=_block_reference, public=_block_public, hidden=_block_hidden, run=_block_run,
             mentions=("aigc_course.models.gpt:Block", "aigc_course.models.gpt:CausalSelfAttention")),
    question("5.5", "prediction: the KV cache", "05_gpt2",
             "does a key or value of an earlier position depend on tokens that come after it?", _answer_5_5,
             function="my_prediction_kv_cache"),
    question("5.6", "prediction: LoRA's trainable parameters", "05_gpt2",
             "each adapted matrix (out, in) gets A (r, in) and B (out, r); count them for c_attn and c_proj "
             "in each of the 4 layers (n_embd = 128)", _answer_5_6, function="my_prediction_lora_parameters",
             compare=within(0.02)),
)})


def check_block(answer: Callable) -> None:
    """Exercise 5.4: ``answer(x, weights, n_head)`` must equal the package's ``Block`` with those weights."""
    EXERCISES["5.4"].check(answer)


def check_prediction_kv_cache(answer: Callable) -> None:
    """Exercise 5.5: the letter the learner predicted for greedy decoding with and without the KV cache."""
    EXERCISES["5.5"].check(answer)


def check_prediction_lora_parameters(answer: Callable) -> None:
    """Exercise 5.6: the learner's count of the LoRA adapter's trainable parameters (within 2%)."""
    EXERCISES["5.6"].check(answer)


# Lesson 05: one training step of a GPT, judged by the held-out loss after 50 steps with it.

_STEP_CONFIG = dict(block_size=16, n_layer=1, n_head=2, n_embd=32)


def _markov_chain(g: torch.Generator, vocab: int) -> torch.Tensor:
    """A random next-token table (vocab, vocab): each row a peaked distribution, so there is much to learn."""
    return torch.softmax(3 * torch.randn(vocab, vocab, generator=g, dtype=torch.float64), dim=1)


def _markov_text(table: torch.Tensor, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    tokens = [0]
    for _ in range(length - 1):
        tokens.append(int(torch.multinomial(table[tokens[-1]], 1, generator=g)))
    return torch.tensor(tokens)


def _tiny_gpt(vocab: int):
    from aigc_course.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, **_STEP_CONFIG))


def _train_50_steps(step: Callable, args: tuple) -> torch.Tensor:
    """A tiny GPT from a fixed start, 50 calls of ``step`` on 8 random windows of (T + 1) tokens; its weights."""
    table, tokens = args
    model = _tiny_gpt(len(table))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    span = _STEP_CONFIG["block_size"] + 1
    model.train()
    for _ in range(50):
        starts = torch.randint(0, len(tokens) - span, (8,), generator=g)
        step(model, optimizer, torch.stack([tokens[s:s + span] for s in starts.tolist()]))
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def _gpt_step_by_reference(model, optimizer, batch):
    _, loss = model(batch[:, :-1], batch[:, 1:])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def _gpt_training_reference(table, tokens):
    return _train_50_steps(_gpt_step_by_reference, (table, tokens))


def _heldout_lm_loss(weights: torch.Tensor, table: torch.Tensor) -> float:
    model = _tiny_gpt(len(table))
    torch.nn.utils.vector_to_parameters(weights.float(), model.parameters())
    text = _markov_text(table, 16 * 17, seed=2028).view(16, 17)   # held-out text, drawn here in the grader
    with torch.no_grad():
        return float(model.eval()(text[:, :-1], text[:, 1:])[1])


def _heldout_loss_close_to_reference(got, expected, args) -> bool:
    """Held-out next-token loss within 0.05 nats of the reference step's (it starts at about ln(vocab))."""
    if not torch.isfinite(got).all():
        return False
    return _heldout_lm_loss(got, args[0]) <= _heldout_lm_loss(expected, args[0]) + 0.05


def _gpt_step_case(g: torch.Generator, vocab: int, seed: int):
    table = _markov_chain(g, vocab)
    return table, _markov_text(table, 600, seed)


EXERCISES.update({e.id: e for e in (
    Exercise("5.7", "GPT training step", "05_gpt2", "my_train_step",
             "inputs are the first T tokens of each window, targets the last T (shifted by one); cross-entropy "
             "over all B*T positions; clear old gradients, backward, then let the optimiser step",
             reference=_gpt_training_reference,
             public=lambda: _gpt_step_case(torch.Generator().manual_seed(57), 8, 0),
             hidden=lambda g: _gpt_step_case(g, _size(g, 4, 12), _size(g, 0, 10_000)),
             run=_train_50_steps, compare=_heldout_loss_close_to_reference),
)})


def check_train_step(answer: Callable) -> None:
    """Exercise 5.7: ``answer(model, optimizer, batch)`` (batch (B, T + 1) tokens) must do one training step."""
    EXERCISES["5.7"].check(answer)
