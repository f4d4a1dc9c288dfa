"""From a language model to an assistant (lesson 09): the maths, as pure functions on a :class:`GPT`.

* :func:`masked_lm_loss`: next-token cross-entropy on the positions a mask selects (instruction tuning
  trains on the assistant's tokens only);
* :func:`completion_logprob`: log p(completion | prompt), summed over the completion's tokens;
* :func:`dpo_loss`: Direct Preference Optimization (Rafailov et al. 2023),
  ``-log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))))``;
* :func:`dpo_sft_loss`: DPO plus the chosen replies' negative log-likelihood (RPO, Pang et al. 2024);
* :func:`complete`: greedy or sampled completion of a prompt up to a stop token;
* :func:`retrieve`: the passage a question is answered from (BM25 recall, then a rerank);
* :class:`BM25`: the ranking function of Robertson et al. (Okapi BM25), for retrieval-augmented answering.
"""
from __future__ import annotations

import functools
import math
import re
from collections import Counter

import torch
import torch.nn.functional as F

from aigc_course.models.gpt import GPT


def masked_lm_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``targets`` (B, T) under ``logits`` (B, T, V), over the positions where ``mask``
    (B, T) is True. Positions outside the mask cost nothing and teach nothing."""
    if mask.sum() == 0:
        raise ValueError("the mask selects no position: nothing to train on")
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return (losses * mask.flatten().float()).sum() / mask.sum()


def completion_logprob(model: GPT, prompt_ids: list[int], completion_ids: list[int]) -> torch.Tensor:
    """log p(completion | prompt) under ``model``: the sum of the completion tokens' log-probabilities (a 0-d
    tensor, differentiable through the model's weights)."""
    ids = torch.tensor([prompt_ids + completion_ids], device=next(model.parameters()).device)
    logits, _ = model(ids[:, :-1])
    logp = F.log_softmax(logits[0, len(prompt_ids) - 1:], dim=-1)           # predictions of the completion
    return logp.gather(-1, ids[0, len(prompt_ids):, None]).sum()


def batch_completion_logprobs(model: GPT, pairs: list[tuple[list[int], list[int]]], pad_id: int = 0
                              ) -> torch.Tensor:
    """:func:`completion_logprob` for many (prompt ids, completion ids) at once: (N,) in one forward pass."""
    device = next(model.parameters()).device
    width = max(len(p) + len(c) for p, c in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(pairs), width, dtype=torch.bool)
    for i, (p, c) in enumerate(pairs):
        ids[i, :len(p) + len(c)] = torch.tensor(p + c)
        mask[i, len(p):len(p) + len(c)] = True
    ids, mask = ids.to(device), mask.to(device)
    logits, _ = model(ids[:, :-1])
    logp = F.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]   # (N, width - 1)
    return (logp * mask[:, 1:]).sum(dim=1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """The DPO loss per pair (Rafailov et al. 2023, eq. 7), from summed completion log-probabilities (N,).

    With the implicit reward r(y) = beta * (log pi(y|x) - log pi_ref(y|x)), the
    loss is -log sigmoid(r(chosen) - r(rejected)): the Bradley-Terry likelihood
    that the chosen reply wins. The frozen reference pi_ref keeps the policy
    close to where it started (the KL term of RLHF, folded into the reward).
    """
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin)


def dpo_sft_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                 ref_rejected: torch.Tensor, chosen_tokens: torch.Tensor, beta: float = 0.1,
                 sft_weight: float = 1.0) -> torch.Tensor:
    """The batch's mean DPO loss plus ``sft_weight`` times the chosen replies' mean negative log-likelihood per
    token (a scalar).

    DPO only asks that the chosen reply gain on the rejected one; both may lose
    probability, and the model's greedy answers can drift to a third reply that
    neither names. The extra term keeps the chosen replies likely (Pang et al.
    2024, "RPO"; ``trl``'s ``loss_type=["sigmoid", "sft"]``). ``chosen_tokens``
    (N,) counts each chosen reply's tokens.
    """
    nll = -policy_chosen.sum() / chosen_tokens.sum()
    return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta).mean() + sft_weight * nll


@torch.no_grad()
def complete(model: GPT, prompt_ids: list[int], stop_id: int, max_new_tokens: int = 40, *,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None) -> list[int]:
    """The completion's token ids, up to (not including) ``stop_id``: greedy when ``temperature`` is 0."""
    device = next(model.parameters()).device
    room = model.config.block_size - len(prompt_ids)
    if room < 1:
        raise ValueError(f"the prompt has {len(prompt_ids)} tokens; this model reads at most "
                         f"{model.config.block_size - 1}: ask something shorter")
    out = model.generate(torch.tensor([prompt_ids], device=device), min(max_new_tokens, room),
                         greedy=temperature == 0, temperature=temperature or 1.0, top_k=top_k, top_p=top_p,
                         generator=generator)[0, len(prompt_ids):].tolist()
    return out[:out.index(stop_id)] if stop_id in out else out


# --------------------------------------------------------------------------- retrieval

def words(text: str) -> list[str]:
    """BM25's tokens: lower-cased Latin words and numbers, and every Chinese character on its own."""
    return re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]", text.lower())


class BM25:
    """Okapi BM25 over a list of passages (Robertson & Zaragoza 2009): score(q, d) =
    sum over query words w of idf(w) * f(w, d) (k1 + 1) / (f(w, d) + k1 (1 - b + b |d| / avgdl)),
    with idf(w) = log(1 + (N - n(w) + 0.5) / (n(w) + 0.5)).

    A word found in few passages (high idf) counts more; repeats count with diminishing
    returns (k1); long passages are discounted (b).
    """

    def __init__(self, passages: list[str], k1: float = 1.5, b: float = 0.75):
        if not passages:
            raise ValueError("BM25 needs at least one passage")
        self.passages, self.k1, self.b = passages, k1, b
        self.docs = [Counter(words(p)) for p in passages]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avgdl = sum(self.lengths) / len(self.docs)
        df = Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - k + 0.5) / (k + 0.5)) for w, k in df.items()}

    def scores(self, query: str) -> list[float]:
        """One score per passage (0 for a passage sharing no word with the query)."""
        q = words(query)
        out = []
        for d, length in zip(self.docs, self.lengths):
            norm = self.k1 * (1 - self.b + self.b * length / self.avgdl)
            out.append(sum(self.idf.get(w, 0.0) * d[w] * (self.k1 + 1) / (d[w] + norm) for w in q if w in d))
        return out

    def top(self, query: str, k: int = 1) -> list[int]:
        """Indices of the ``k`` best passages, best first (ties: the earlier passage)."""
        s = self.scores(query)
        return sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]


@functools.cache
def lesson_index() -> BM25:
    """The BM25 index over the course's lesson text (the shipped snapshot, cut into passages), built once."""
    from aigc_course.data.assistant import chunks, lesson_lines

    return BM25(chunks(lesson_lines()))


GLOSSARY_ROW = re.compile(r"\|[^|]+\|[^|]+\|")
QUOTED = re.compile(r'["“](.+?)["”]')


def retrieve(index: BM25, question: str, candidates: int = 10) -> str:
    """The passage a question is answered from, in two stages, as search engines do: recall, then rerank.

    1. Recall: BM25 ranks the passages against the question's key phrase (the
       quoted term, when there is one: the words around it, "What is the Chinese
       for", would otherwise pull in every passage that mentions Chinese).
    2. Rerank: among the ``candidates`` best, a glossary row (``| term | 术语 |``)
       comes first, because that is where the lessons define a term.
    """
    quoted = QUOTED.search(question)
    top = index.top(quoted.group(1) if quoted else question, candidates)
    rows = [i for i in top if GLOSSARY_ROW.fullmatch(index.passages[i])]
    return index.passages[(rows or top)[0]]
