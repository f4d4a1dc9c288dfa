"""LoRA: low-rank adaptation (低秩适配) of a pretrained model (Hu et al. 2021).

Fine-tuning every weight of a pretrained model costs a full copy of it per task.
LoRA freezes the pretrained weight W (out, in) and learns a low-rank change

    W' = W + (alpha / r) * B A,     A: (r, in),  B: (out, r),  r << min(in, out)

so the forward pass becomes ``y = x W^T + (alpha / r) * (x A^T) B^T``. B starts
at zero, so the adapted model starts *exactly* as the pretrained one; A starts
random. Only A and B train: for a (768, 2304) projection with r = 8 that is
24,576 numbers instead of 1.77 million. After training, ``merge()`` folds
``(alpha / r) B A`` into W, so inference costs nothing extra.

An adapter is saved alone (:func:`lora_state_dict`, a few hundred kB, with
``core.checkpoints.save_adapter``) and loaded onto its base model by
``models.hub.load("tang_lora")``.

The paper adapts the attention projections (W_q, W_v; GPT-3 175B with r = 4
matched full fine-tuning). In GPT-2 Q, K and V come from one matrix
(``attn.c_attn``); we adapt it and the output projection ``attn.c_proj``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


LORA_ADAPTER = "LoRAAdapter"  # the ``kind`` on a LoRA adapter's card (core.checkpoints.save_adapter)


@dataclass
class LoRAConfig:
    """Which Linear layers get adapters, their rank r and scale alpha."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("attn.c_attn", "attn.c_proj")

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {self.rank}")
        self.targets = tuple(self.targets)


def lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, lora_a: torch.Tensor,
                 lora_b: torch.Tensor, scale: float) -> torch.Tensor:
    """y = x W^T + b + scale * (x A^T) B^T: the frozen layer plus the low-rank path.

    x (..., in), W (out, in), A (r, in), B (out, r) -> (..., out). The low-rank
    path never forms the (out, in) product B A: two thin matmuls instead.
    """
    return F.linear(x, weight, bias) + scale * F.linear(F.linear(x, lora_a), lora_b)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update; ``merge()`` folds the update in."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear's own init (and the paper's code)
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base(x)
        return lora_forward(x, self.base.weight, self.base.bias, self.lora_a, self.lora_b, self.scale)

    def delta_weight(self) -> torch.Tensor:
        """The update scale * B A, shape (out, in)."""
        return self.scale * self.lora_b @ self.lora_a

    @torch.no_grad()
    def merge(self) -> None:
        """W <- W + scale * B A. Afterwards the layer is a plain Linear in cost."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo ``merge`` (W <- W - scale * B A), e.g. to keep training the adapter."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


def add_lora(model: nn.Module, config: LoRAConfig) -> nn.Module:
    """Freeze ``model`` and wrap every Linear whose name ends with a target in a LoRALinear (in place).

    Returns the model. Afterwards only the adapters' A and B have
    ``requires_grad``; :func:`lora_state_dict` extracts them for saving.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [(name, module) for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and name.endswith(config.targets)]
    if not targets:
        raise ValueError(f"no nn.Linear in the model matches the LoRA targets {config.targets}")
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, config.rank, config.alpha))
    return model


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors (``...lora_a``, ``...lora_b``): what a LoRA checkpoint ships."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if ".lora_" in k}


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight (in place); the outputs stay the same."""
    for layer in lora_layers(model):
        layer.merge()
    return model


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
