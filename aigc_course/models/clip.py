"""A tiny CLIP: a text encoder and an image encoder trained to agree (Radford et al. 2021, arXiv:2103.00020).

CLIP learns from (image, caption) pairs only. Both encoders map into one
embedding space; in a batch of B pairs, the B matching pairs should be the most
similar of all B x B combinations. The loss is cross-entropy in both
directions over the cosine similarities, scaled by a learned temperature::

    logits = exp(s) * normalize(I) @ normalize(T).T       (B, B); s learned, starts at log(1 / 0.07)
    loss   = (CE(logits, arange(B)) + CE(logits.T, arange(B))) / 2

(their Figure 3 pseudo-code; exp(s) is clipped at 100 as in the paper).

Here the text encoder is a 2-layer transformer over :mod:`aigc_course.data.prompts`'s
tokens and the image encoder a small CNN over 28x28 digits. After training, the
text encoder's per-token outputs are what the diffusion U-Net reads through
cross-attention (Stable Diffusion does the same with CLIP ViT-L/14's text
encoder), and the cosine between the two embeddings is a "CLIP score" of how
well an image matches a prompt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.data.prompts import END, MAX_TOKENS, PAD, PromptTokenizer


@dataclass
class ClipConfig:
    """``width``: the text transformer's width (its token states feed the U-Net); ``embed``: the joint space."""

    vocab_size: int = len(PromptTokenizer())
    max_tokens: int = MAX_TOKENS
    width: int = 64
    layers: int = 2
    heads: int = 4
    embed: int = 64
    image_channels: tuple[int, ...] = (16, 32, 32)

    def __post_init__(self) -> None:
        self.image_channels = tuple(self.image_channels)
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """The symmetric contrastive loss of CLIP: (B, E) image and text embeddings, pair i matching pair i.

    ``logit_scale`` is s, the log of the inverse temperature; the logits are exp(s) * cosine similarities.
    """
    if image_emb.shape != text_emb.shape or image_emb.ndim != 2:
        raise ValueError(f"need two (B, E) embeddings of the same shape, got {tuple(image_emb.shape)} and "
                         f"{tuple(text_emb.shape)}")
    image_emb, text_emb = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    logits = logit_scale.exp() * image_emb @ text_emb.T         # (B, B): row i = image i against every caption
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class Block(nn.Module):
    """A pre-norm transformer block: self-attention over the prompt's tokens (padding masked), then an MLP."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(B, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])  # (B, heads, L, C/h)
        x = x + self.proj(h.transpose(1, 2).reshape(B, L, C))
        return x + self.mlp(self.ln2(x))


class TextEncoder(nn.Module):
    """Token ids (B, L) -> token states (B, L, width) and a pooled state (B, width), read at ``<end>``."""

    def __init__(self, c: ClipConfig):
        super().__init__()
        self.tok = nn.Embedding(c.vocab_size, c.width)
        self.pos = nn.Parameter(torch.randn(c.max_tokens, c.width) * 0.02)
        self.blocks = nn.ModuleList(Block(c.width, c.heads) for _ in range(c.layers))
        self.ln = nn.LayerNorm(c.width)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = ids != PAD                                        # (B, L): padding is never attended to
        x = self.tok(ids) + self.pos[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, keep)
        x = self.ln(x)
        pooled = x[torch.arange(len(ids)), (ids == END).float().argmax(1)]  # the <end> token, as CLIP reads EOT
        return x, pooled


class ImageEncoder(nn.Module):
    """Digits (B, 1, 28, 28) in [0, 1] -> (B, embed): three strided convolutions (28 -> 14 -> 7 -> 4), an MLP."""

    def __init__(self, c: ClipConfig):
        super().__init__()
        c1, c2, c3 = c.image_channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1), nn.SiLU(),          # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.SiLU(),         # (B, c2, 7, 7)
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.SiLU(),         # (B, c3, 4, 4)
            nn.Flatten(), nn.Linear(c3 * 16, 128), nn.SiLU(), nn.Linear(128, c.embed))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1:] != (1, 28, 28):
            raise ValueError(f"the image encoder takes digits (B, 1, 28, 28), got {tuple(images.shape)}")
        return self.net(images)


class TinyCLIP(nn.Module):
    """Both encoders, the text projection and the learned temperature ``logit_scale``."""

    def __init__(self, config: ClipConfig | None = None):
        super().__init__()
        self.config = c = config or ClipConfig()
        self.text = TextEncoder(c)
        self.text_proj = nn.Linear(c.width, c.embed, bias=False)
        self.image = ImageEncoder(c)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L) -> text embeddings (B, embed), not normalised."""
        return self.text_proj(self.text(ids)[1])

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Digits (B, 1, 28, 28) -> image embeddings (B, embed), not normalised."""
        return self.image(images)

    def token_states(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the U-Net cross-attends to: token states (B, L, width) and which tokens are real (B, L) bool."""
        return self.text(ids)[0], ids != PAD

    def forward(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The contrastive loss of a batch of B matching (image, caption) pairs."""
        return clip_loss(self.encode_image(images), self.encode_text(ids), self.logit_scale.clamp(max=math.log(100)))

    @torch.no_grad()
    def similarity(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Cosine similarity (N, M) between N images and M prompts."""
        return F.normalize(self.encode_image(images), dim=-1) @ F.normalize(self.encode_text(ids), dim=-1).T


def recall_at_k(similarity: torch.Tensor, same: torch.Tensor, k: int) -> float:
    """Share of queries (rows) whose ``k`` most similar items (columns) include a right one.

    ``same`` (N, M) bool says which items are right for each query: with captions
    generated from attributes, several images share one caption, and any of them
    is a right answer.
    """
    if similarity.shape != same.shape:
        raise ValueError(f"similarity {tuple(similarity.shape)} and same {tuple(same.shape)} differ in shape")
    top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
    return same.gather(1, top).any(1).float().mean().item()
