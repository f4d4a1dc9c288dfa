"""GPT-2 from scratch: the architecture of Radford et al. (2019), module by module.

A language model (语言模型) gives the probability of the next token given the
ones before it, ``p(x_t | x_<t)``; a whole text's probability is the product
over positions, and training minimises the average negative log-likelihood
(cross-entropy) of the next token. GPT-2 computes these probabilities with a
stack of decoder-only Transformer blocks (Vaswani et al. 2017):

    tokens (B, T) -> token + position embeddings (B, T, C)
      -> n_layer x [ x + attn(ln_1(x));  x + mlp(ln_2(x)) ]      ("pre-norm" blocks)
      -> ln_f -> logits = h @ wte^T (B, T, vocab)                  (weights tied with the input embedding)

Causal self-attention (因果自注意力) lets position t look only at positions
<= t: softmax(Q K^T / sqrt(d) + M) V with M = -inf above the diagonal.

Module and parameter names follow Hugging Face's ``GPT2LMHeadModel``
(``transformer.h.0.attn.c_attn.weight`` ...), so converting weights either way
is short: :mod:`aigc_course.models.gpt_hf` (``from_hf``, ``to_hf``,
``load_gpt2_weights``).

Generation (``GPT.generate``) supports greedy decoding, temperature, top-k,
top-p (nucleus) sampling and a repetition penalty, with a key/value cache
(KV 缓存) so each new token costs one position's work instead of the whole
prefix's. The sampling filters are pure functions on logits.
:func:`use_decoding_layout` is an opt-in speed trick for batch-1 decoding on
some CPUs; ``generate`` never applies it by itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    """Shape of a GPT. The defaults are GPT-2 small (124M parameters)."""

    vocab_size: int = 50257
    block_size: int = 1024   # longest context (number of position embeddings)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True        # GPT-2 has biases in every Linear and LayerNorm
    layer_norm_eps: float = 1e-5
    attention: str = "sdpa"  # "sdpa": torch's fused scaled_dot_product_attention; "manual": written out

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.attention not in ("sdpa", "manual"):
            raise ValueError(f"attention must be 'sdpa' or 'manual', got {self.attention!r}")


def causal_mask(t_query: int, t_key: int, device=None) -> torch.Tensor:
    """Boolean (t_query, t_key) mask, True where a query may attend to a key.

    Queries are the *last* ``t_query`` positions of the ``t_key`` keys (with a
    KV cache the keys include the earlier, cached positions), so query i sees
    keys j <= i + (t_key - t_query).
    """
    offset = t_key - t_query
    return torch.ones(t_query, t_key, dtype=torch.bool, device=device).tril(diagonal=offset)


def attention_manual(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention written out: softmax(q k^T / sqrt(d), masked) v.

    q: (B, H, Tq, D), k and v: (B, H, Tk, D) -> (B, H, Tq, D).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))          # (B, H, Tq, Tk)
    scores = scores.masked_fill(~causal_mask(q.size(-2), k.size(-2), q.device), float("-inf"))
    return F.softmax(scores, dim=-1) @ v


class KVCache:
    """Preallocated keys and values of every layer: (n_layer, B, H, max_len, D) each.

    ``length`` is how many positions are filled. Writing into a preallocated
    buffer avoids re-copying the whole cache at every step (``torch.cat``).
    """

    def __init__(self, config: GPTConfig, batch: int, max_len: int, device=None, dtype=torch.float32):
        shape = (config.n_layer, batch, config.n_head, max_len, config.n_embd // config.n_head)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.length = 0
        self.max_len = max_len

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's (B, H, T, D) keys/values after the cached ones; return all of them so far."""
        start, end = self.length, self.length + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; cannot add {k.size(2)} more after {start}")
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one Linear makes Q, K, V for all heads, one mixes the heads."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.attention = config.n_head, config.attention
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)                                  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if cache is not None:
            k, v = cache.update(layer, k, v)                                      # (B, H, T_past + T, D)
        if self.attention == "manual":
            y = attention_manual(q, k, v)
        elif k.size(2) == T:  # no earlier positions: the fused kernel's own causal mask
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        elif T == 1:  # one new query after cached keys: it may see all of them, no mask needed
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # new queries after cached keys: a query sees every cached key and the new ones up to itself
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, k.size(2), x.device))
        y = y.transpose(1, 2).contiguous().view(B, T, C)                          # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear(C, 4C) -> GELU (tanh approximation) -> Linear(4C, C)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """A pre-norm Transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """GPT-2: embeddings, ``n_layer`` blocks, final LayerNorm and the output layer tied to the embedding."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias),
        ))
        # Weight tying (Press & Wolf 2017): the output layer is the token embedding itself,
        # logits = h @ wte^T, so there is no separate lm_head matrix (saves vocab x C parameters).
        # `lm_head` stays None; only an inference copy sets it (models/gpt_int8.py: the int8 output layer).
        self.lm_head: nn.Module | None = None
        self.apply(self._init_weights)
        # GPT-2: residual projections get std 0.02 / sqrt(2 * n_layer), so the residual stream's
        # variance does not grow with depth (two residual additions per block).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights and embeddings, zero biases, LayerNorm (1, 0)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameter count; ``non_embedding`` leaves out the position table (as GPT-2's paper counts)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> (logits (B, T, vocab), mean cross-entropy with ``targets`` or None).

        With a ``cache``, idx holds only the new tokens; their positions start
        at ``cache.length`` and the cache grows by T.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than block_size {self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.length += T
        h = self.transformer.ln_f(x)
        logits = F.linear(h, self.transformer.wte.weight) if self.lm_head is None else self.lm_head(h)  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def next_token_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, vocab) of the token after ``idx`` (B, T), cropping to the last block_size tokens."""
        logits, _ = self(idx[:, -self.config.block_size:])
        return logits[:, -1, :]

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, repetition_penalty: float = 1.0,
                 greedy: bool = False, use_cache: bool = True, generator: torch.Generator | None = None,
                 ) -> torch.Tensor:
        """Append ``max_new_tokens`` tokens to ``idx`` (B, T); return (B, T + max_new_tokens).

        Each step: logits of the last position -> repetition penalty ->
        (greedy: argmax) or (divide by temperature -> top-k -> top-p ->
        softmax -> sample). With ``use_cache`` a KV cache holds the past keys
        and values, so a step feeds one token instead of the whole sequence;
        when the context would pass ``block_size`` we fall back to the sliding
        window without a cache.

        The weights are only read: their values and memory layout stay as they
        are (for the opt-in (in, out) layout, call :func:`use_decoding_layout` first).
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if not greedy and temperature <= 0:
            raise ValueError(f"temperature must be > 0 (use greedy=True for argmax), got {temperature}")
        was_training = self.training
        self.eval()
        fits = idx.size(1) + max_new_tokens <= self.config.block_size
        cache = None
        if use_cache and fits:
            p = next(self.parameters())
            cache = KVCache(self.config, idx.size(0), idx.size(1) + max_new_tokens, p.device, p.dtype)
        feed = idx
        for _ in range(max_new_tokens):
            if cache is not None:
                logits = self(feed, cache=cache)[0][:, -1, :]
            else:
                logits = self.next_token_logits(idx)
            logits = apply_repetition_penalty(logits, idx, repetition_penalty)
            if greedy:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = F.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
            feed = nxt
        self.train(was_training)
        return idx


def use_decoding_layout(model: nn.Module) -> None:
    """Opt-in speed trick: store every Linear weight and the token embedding transposed in memory.

    Nothing calls this for you (``GPT.generate`` leaves the weights as they
    are); call it once on a model you are about to decode with, batch 1, on a CPU.

    Why it can help: a cached decoding step multiplies one row vector by every
    weight matrix once, so its speed is set by how fast the CPU streams the
    weights (~500 MB for the 124M model in fp32) from memory, not by arithmetic.
    For that vector-times-matrix product the matrix library may read a matrix
    stored as (in, out) faster than the (out, in) that ``nn.Linear`` keeps.
    Whether it does depends on the CPU: ``benchmarks/gpt2.py`` measured 1.23x on
    an AMD EPYC and 0.97x (no gain) on an Intel Xeon, both with 2 cores; run
    it to see the ratio on yours (it prints the CPU's name next to it).
    OpenAI's GPT-2 code stored its weights as (in, out) too (the "Conv1D"
    that ``transformers`` still copies), but for its own reasons.

    Only the memory layout changes: each weight keeps its shape (out, in) and its
    values, ``weight.t()`` becomes a contiguous (in, out) matrix, and ``F.linear``
    picks the matching kernel by itself. Outputs are the same up to float rounding
    order, the Parameter objects stay the same (an optimiser holding them keeps
    working), and saving makes tensors contiguous again. Calling it twice is a no-op.
    """
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    if isinstance(model, GPT):
        weights.append(model.transformer.wte.weight)  # also the output layer (weight tying)
    with torch.inference_mode(False), torch.no_grad():  # plain tensors even when called under inference_mode
        for w in weights:
            if w.dim() == 2 and w.stride() != (1, w.size(0)):
                w.data = w.data.t().contiguous().t()


# --- sampling filters: pure functions on logits (B, vocab) -------------------------------------------

def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the ``k`` largest logits per row, set the rest to -inf (``k`` None or >= vocab: unchanged)."""
    if k is None or k >= logits.size(-1):
        return logits
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of tokens whose probability sums to >= p.

    Sort probabilities in descending order; a token is kept if the mass of the
    tokens *before* it is still < p (so the most likely token always stays).
    """
    if p is None or p >= 1.0:
        return logits
    if p <= 0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = F.softmax(sorted_logits, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    sorted_logits = sorted_logits.masked_fill(mass_before >= p, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Top-k, then top-p (the order Hugging Face's ``generate`` uses)."""
    return top_p_filter(top_k_filter(logits, top_k), top_p)


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al. 2019): make tokens already in ``previous`` less likely.

    For every token id that occurs in the row of ``previous`` (B, T), a positive
    logit is divided by ``penalty`` and a negative one multiplied by it. 1.0
    leaves the logits unchanged.
    """
    if penalty == 1.0:
        return logits
    if penalty <= 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
    seen = logits.gather(-1, previous)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, previous, seen)


def next_token_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> torch.Tensor:
    """The probabilities a sampler draws from: softmax(filter(logits / temperature))."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return F.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
