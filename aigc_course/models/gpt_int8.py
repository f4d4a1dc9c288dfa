"""Int8 weights for batch-1 decoding: read a quarter of the bytes per token.

Why it helps: a cached decoding step multiplies *one* row vector by every weight
matrix once. Each weight is read from memory once and used for one
multiply-add, so the step's time is set by how many bytes cross the memory bus,
not by arithmetic. GPT-2 small reads ~500 MB per token in float32 (85M weights
in the blocks + the 38.6M-entry tied output layer); stored as int8 it reads
~125 MB, so on a memory-bound CPU a token can cost up to 4x less.

How (dynamic quantization, Jacob et al. 2018; PyTorch's ``quantize_dynamic``):

* each weight row r (one output channel) is stored as int8 q with a scale,
  ``W[r] ~ scale_r * q[r]``, ``scale_r = max|W[r]| / 127`` (symmetric, per channel);
* at every call the activation x is quantized too (uint8, one scale and zero point
  per call, from its min and max), the product is computed in int32 by the
  CPU's integer dot-product instructions (FBGEMM; AVX-512 VNNI where present) and
  rescaled to float.

The cost is accuracy: the logits move by a little (``benchmarks/gpt2.py`` measures
the maximal logit difference, the held-out loss and the agreement of greedy tokens).
Everything outside the matrix products (embeddings, LayerNorm, attention, the KV
cache) stays float32. ``int8_decoder(model)`` returns a quantized *copy* for
inference; the float model is unchanged, and the copy cannot be trained or saved.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from aigc_course.models.gpt import GPT


def _packed_int8(weight: torch.Tensor, bias: torch.Tensor | None):
    """FBGEMM's packed int8 matrix for ``weight`` (out, in): symmetric per-row scales max|W_r| / 127."""
    weight = weight.detach().float().contiguous()
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
    zero = torch.zeros(weight.size(0), dtype=torch.long)
    with warnings.catch_warnings():  # the quantized-tensor constructors are marked for a future API change
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach().float())


class Int8Linear(nn.Module):
    """``y = x W^T + b`` with W stored as int8 (one scale per output row) and x quantized per call.

    Build it from a float layer with :meth:`from_linear` or from a bare weight with
    :meth:`from_weight` (the tied output layer). Inference only: no gradients.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f"Int8Linear needs a 2-D (out, in) weight, got shape {tuple(weight.shape)}")
        self.in_features, self.out_features = weight.size(1), weight.size(0)
        self._packed = _packed_int8(weight, bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8Linear":
        return cls(linear.weight, linear.bias)

    @classmethod
    def from_weight(cls, weight: torch.Tensor) -> "Int8Linear":
        return cls(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(-1) != self.in_features:
            raise ValueError(f"expected inputs with {self.in_features} features, got {x.size(-1)}")
        return torch.ops.quantized.linear_dynamic(x.float().contiguous(), self._packed, False)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"


def int8_decoder(model: GPT) -> GPT:
    """A copy of ``model`` whose matrix products (the four per block and the tied output layer) read int8.

    For CPU inference, e.g. ``int8_decoder(model).generate(ids, 100, greedy=True)``. Bytes per token
    drop from 4 to 1 per weight; the copy is not trainable and its logits differ slightly from the
    float model's (measure them: ``benchmarks/gpt2.py``).
    """
    if not isinstance(model, GPT):
        raise ValueError(f"int8_decoder expects an aigc_course GPT, got {type(model).__name__}")
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        raise ValueError("this PyTorch build has no FBGEMM int8 kernels (x86 CPUs only); decode in float32")
    q = copy.deepcopy(model).cpu().eval().requires_grad_(False)
    for block in q.transformer.h:
        for parent, name in ((block.attn, "c_attn"), (block.attn, "c_proj"), (block.mlp, "c_fc"), (block.mlp, "c_proj")):
            setattr(parent, name, Int8Linear.from_linear(getattr(parent, name)))
    q.lm_head = Int8Linear.from_weight(q.transformer.wte.weight)  # the tied output layer, quantized separately
    return q


def weight_bytes_per_token(model: GPT) -> int:
    """Bytes of matrix weights one cached decoding step reads: every block's four matrices + the output layer.

    (Embedding rows, LayerNorms, biases and the KV cache are a few hundred kB more at short contexts.)
    """
    c = model.config
    per_block = 3 * c.n_embd * c.n_embd + c.n_embd * c.n_embd + 2 * 4 * c.n_embd * c.n_embd
    n = c.n_layer * per_block + c.vocab_size * c.n_embd
    int8 = isinstance(getattr(model, "lm_head", None), Int8Linear)
    return n * (1 if int8 else model.transformer.wte.weight.element_size())
