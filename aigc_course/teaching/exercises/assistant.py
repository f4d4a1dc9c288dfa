"""Lesson 09 (from a language model to an assistant): the assistant-only loss mask, the DPO loss, and DPO
training of a table policy, graded by what the trained policy prefers.
"""
from __future__ import annotations

from typing import Callable

import torch

from aigc_course.data import assistant as _tasks
from aigc_course.models import assistant as _maths
from aigc_course.teaching.exercises.framework import Exercise, _one_thread, _randn, _size

EXERCISES: dict[str, Exercise] = {}

_ASSISTANT, _END, _USER, _SYSTEM = 1, 2, 3, 4   # the marker ids of the exercises' toy vocabulary (10 tokens)


def _mask_reference(ids, assistant_id, end_id):
    return _tasks.assistant_mask(ids, assistant_id, end_id)


def _conversation(g: torch.Generator, turns: int) -> list[int]:
    ids = [_SYSTEM, *torch.randint(5, 10, (_size(g, 0, 3),), generator=g).tolist(), _END]
    for _ in range(turns):
        ids += [_USER, *torch.randint(5, 10, (_size(g, 1, 4),), generator=g).tolist(), _END]
        ids += [_ASSISTANT, *torch.randint(5, 10, (_size(g, 0, 4),), generator=g).tolist(), _END]
    return ids


def _mask_public():
    # Ⓢ 7 Ⓔ Ⓤ 5 6 Ⓔ Ⓐ 8 9 Ⓔ Ⓤ 6 Ⓔ Ⓐ 7 Ⓔ
    return torch.tensor([[_SYSTEM, 7, _END, _USER, 5, 6, _END, _ASSISTANT, 8, 9, _END, _USER, 6, _END, _ASSISTANT, 7, _END]]), \
        _ASSISTANT, _END


def _mask_hidden(g: torch.Generator):
    rows = [_conversation(g, _size(g, 1, 3)) for _ in range(_size(g, 1, 4))]
    width = max(map(len, rows))
    # a row cut off in the middle of a reply is padded with user tokens (not the assistant's)
    return torch.tensor([r + [_USER] * (width - len(r)) for r in rows]), _ASSISTANT, _END


def _mask_cut_reply():
    """A packed row that ends inside a reply: the tokens after the last Ⓐ are still the assistant's."""
    return torch.tensor([_USER, 5, _END, _ASSISTANT, 6, 7, 8]), _ASSISTANT, _END


def _dpo_reference(pc, pr, rc, rr, beta):
    return _maths.dpo_loss(pc, pr, rc, rr, beta)


def _dpo_public():
    g = torch.Generator().manual_seed(91)
    return (*(_randn(g, 6, scale=5.0) - 20 for _ in range(4)), 0.1)


def _dpo_hidden(g: torch.Generator):
    n = _size(g, 1, 12)
    return (*(_randn(g, n, scale=10.0) - 30 for _ in range(4)), float(_size(g, 1, 50)) / 100)


def _dpo_extreme():
    """Margins of +-2,000 nats at beta 1: a naive log(sigmoid(x)) gives inf or nan, log-sigmoid does not."""
    return torch.tensor([0.0, -2000.0]), torch.tensor([-2000.0, 0.0]), torch.zeros(2), torch.zeros(2), 1.0


# --- 9.3: DPO on a table policy, graded by behaviour -----------------------------------------------------------

TABLE_STEPS, TABLE_LR, TABLE_BETA = 200, 0.5, 0.5
TABLE_MIN_WON = 0.9   # share of the preference pairs the trained policy must rank right


def _table_case(g: torch.Generator, prompts: int, answers: int, n: int):
    """A reference policy (prompts, answers) of logits and n pairs ranked by a hidden true score."""
    reference = _randn(g, prompts, answers)
    score = _randn(g, prompts, answers)                          # what the labeller prefers (never shown)
    p = torch.randint(0, prompts, (n,), generator=g)
    a, b = torch.randint(0, answers, (2, n), generator=g)
    keep = a != b
    p, a, b = p[keep], a[keep], b[keep]
    better = score[p, a] > score[p, b]
    chosen, rejected = torch.where(better, a, b), torch.where(better, b, a)
    return reference, p, chosen, rejected, TABLE_STEPS, TABLE_LR, TABLE_BETA


def _table_reference(reference, p, chosen, rejected, steps, lr, beta):
    """DPO by full-batch Adam on the table of logits, starting from the reference."""
    with _one_thread(), torch.enable_grad():
        logits = reference.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([logits], lr=lr)
        ref_logp = reference.log_softmax(-1)
        for _ in range(steps):
            logp = logits.log_softmax(-1)
            loss = _maths.dpo_loss(logp[p, chosen], logp[p, rejected], ref_logp[p, chosen], ref_logp[p, rejected],
                                   beta).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return logits.detach()


def won_share(trained, reference, p, chosen, rejected) -> float:
    """Share of pairs whose implicit reward log pi - log pi_ref is higher for the chosen answer."""
    logp, ref = trained.log_softmax(-1), reference.log_softmax(-1)
    margin = (logp[p, chosen] - ref[p, chosen]) - (logp[p, rejected] - ref[p, rejected])
    return (margin > 0).double().mean().item()


def _table_compare(got, expected, args) -> bool:
    """Behaviour: the trained table ranks at least TABLE_MIN_WON of the pairs right (the reference's share
    minus 0.05 if that is lower), and it is a table of finite logits."""
    if not torch.isfinite(got).all():
        return False
    reference, p, chosen, rejected = args[:4]
    needed = min(TABLE_MIN_WON, won_share(expected, reference, p, chosen, rejected) - 0.05)
    return won_share(got.double(), reference.double(), p, chosen, rejected) >= needed


EXERCISES.update({e.id: e for e in (
    Exercise("9.1", "assistant-only loss mask", "09_assistant", "my_assistant_mask",
             "walk along the last dimension and remember whether the latest marker was Ⓐ (then the next "
             "tokens are the assistant's) or Ⓔ; the Ⓐ itself is not the assistant's, the closing Ⓔ is",
             reference=_mask_reference, public=_mask_public, hidden=_mask_hidden, edge=(_mask_cut_reply,),
             protects=("aigc_course.data.assistant:assistant_mask",)),
    Exercise("9.2", "DPO loss", "09_assistant", "my_dpo_loss",
             "margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected); the loss is "
             "-log sigmoid(beta * margin), per pair; torch.nn.functional.logsigmoid stays finite for large margins",
             reference=_dpo_reference, public=_dpo_public, hidden=_dpo_hidden, edge=(_dpo_extreme,),
             protects=("aigc_course.models.assistant:dpo_loss",)),
    Exercise("9.3", "DPO training of a table policy", "09_assistant", "my_dpo_train",
             "start from a copy of the reference logits that requires gradients; each step: log_softmax, pick the "
             "chosen and rejected entries with [p, chosen], the mean DPO loss, backward, an optimiser step "
             "(Adam with lr works); return the trained logits",
             reference=_table_reference, public=lambda: _table_case(torch.Generator().manual_seed(93), 4, 5, 60),
             hidden=lambda g: _table_case(g, _size(g, 2, 6), _size(g, 3, 6), _size(g, 30, 80)),
             compare=_table_compare, protects=("aigc_course.models.assistant:dpo_loss",)),
)})


def check_assistant_mask(answer: Callable) -> None:
    """Exercise 9.1: ``answer(ids, assistant_id, end_id)`` -> bool mask of the assistant's tokens."""
    EXERCISES["9.1"].check(answer)


def check_dpo_loss(answer: Callable) -> None:
    """Exercise 9.2: ``answer(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)`` -> (N,) losses."""
    EXERCISES["9.2"].check(answer)


def check_dpo_train(answer: Callable) -> None:
    """Exercise 9.3: ``answer(reference, p, chosen, rejected, steps, lr, beta)`` -> trained (P, K) logits."""
    EXERCISES["9.3"].check(answer)
