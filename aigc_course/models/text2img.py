"""The text-to-image pipeline: prompt -> tokens -> text encoder -> latent U-Net (DDIM, guided) -> decoder.

The three trained parts and the tokenizer, put together the way Stable
Diffusion's pipeline puts its own (``diffusers.StableDiffusionPipeline``:
tokenizer, CLIP text encoder, U-Net, scheduler, VAE)::

    pipe = load_text_to_image()                      # models.hub: the three shipped checkpoints
    images = pipe.generate("a thin 7 leaning right", n=8, guidance=3, seed=0)     # (8, 1, 28, 28) in [0, 1]
    images = pipe.generate("一个粗体的 7", negative="thin", guidance=3)
    edited = pipe.edit(digits, "a bold 7", strength=0.6)          # SDEdit: image-to-image
    filled = pipe.inpaint(digits, mask, "a 7")                    # regenerate where mask = 1

A pixel-space U-Net (no autoencoder, ``config.autoencoder = None``) runs through
the same pipeline, which is how the benchmark compares the two.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aigc_course.data.prompts import PromptTokenizer
from aigc_course.models.clip import TinyCLIP
from aigc_course.models.diffusion import sampling_timesteps
from aigc_course.models.latent_diffusion import (LATENT_CLIP, Condition, LatentAutoencoder, TextUNet, denoise,
                                                 sdedit_start)


@dataclass
class TextToImage:
    """Tokenizer + CLIP text encoder + U-Net (+ autoencoder for a latent model)."""

    unet: TextUNet
    clip: TinyCLIP
    autoencoder: LatentAutoencoder | None = None
    tokenizer: PromptTokenizer | None = None

    def __post_init__(self) -> None:
        self.tokenizer = self.tokenizer or PromptTokenizer()
        for part in (self.unet, self.clip, self.autoencoder):
            if part is not None:
                part.eval()

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def shape(self) -> tuple[int, ...]:
        c = self.unet.config
        return (c.in_channels, c.size, c.size)

    @torch.no_grad()
    def condition(self, prompts: str | list[str], allow_empty: bool = False) -> Condition:
        """Prompt(s) -> the token states the U-Net reads. Bad prompts raise one clear ``ValueError``."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        ids = self.tokenizer.encode_batch(prompts, allow_empty).to(self.device)
        states, keep = self.clip.to(self.device).token_states(ids)
        return Condition(states, keep)

    @torch.no_grad()
    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The sampler's output -> digits (B, 1, 28, 28) in [0, 1] on the CPU."""
        if self.autoencoder is None:
            return ((x.clamp(-1, 1) + 1) / 2).cpu()
        return self.autoencoder.to(self.device).decode(x).cpu()

    @torch.no_grad()
    def to_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Digits in [0, 1] -> what the U-Net works on (scaled latents, or pixels in [-1, 1])."""
        images = images.to(self.device)
        return images * 2 - 1 if self.autoencoder is None else self.autoencoder.to(self.device).encode(images)

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, *self.shape, generator=generator).to(self.device)

    @torch.no_grad()
    def _run(self, x, timesteps, prompt, negative, guidance, generator, **kwargs) -> torch.Tensor:
        if guidance < 0:
            raise ValueError(f"guidance w must be >= 0, got {guidance}")
        cond = self.condition(prompt)
        uncond = self.condition(negative, allow_empty=True)
        clip = LATENT_CLIP if self.autoencoder is not None else 1.0
        x = denoise(self.unet, x, timesteps, cond, uncond, guidance, clip=clip, generator=generator, **kwargs)
        return self.to_pixels(x)

    def generate(self, prompt: str | list[str], n: int = 8, *, guidance: float = 3.0, negative: str = "",
                 steps: int = 20, seed: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` digits (n, 1, 28, 28) in [0, 1] for one prompt (or n prompts), DDIM-``steps``, guidance w.

        ``negative``: what to steer away from ("" = the unconditional model, as trained with caption dropout).
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        n = n if len(prompts) == 1 else len(prompts)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        generator = generator or torch.Generator().manual_seed(seed)
        x = self._noise(n, generator)
        return self._run(x, sampling_timesteps(self.unet.schedule.T, steps), prompts, negative, guidance, generator)

    def edit(self, images: torch.Tensor, prompt: str, *, strength: float = 0.6, guidance: float = 3.0,
             negative: str = "", steps: int = 20, seed: int = 0) -> torch.Tensor:
        """SDEdit image-to-image: noise ``images`` part-way (``strength`` of the way to pure noise), then
        denoise under ``prompt``. Low strength keeps the drawing, high strength keeps little but the prompt."""
        generator = torch.Generator().manual_seed(seed)
        x0 = self.to_latents(images)
        x, timesteps = sdedit_start(self.unet.schedule, x0, strength, steps, self._noise(len(x0), generator))
        return self._run(x, timesteps, prompt, negative, guidance, generator)

    def inpaint(self, images: torch.Tensor, mask: torch.Tensor, prompt: str, *, guidance: float = 3.0,
                negative: str = "", steps: int = 20, seed: int = 0) -> torch.Tensor:
        """Regenerate the region where ``mask`` (B or 1, 1, 28, 28) is 1, keep the rest; pixels outside the
        mask are pasted back from ``images`` at the end (the latent grid is 4 pixels coarse)."""
        generator = torch.Generator().manual_seed(seed)
        known = self.to_latents(images)
        small = F.adaptive_max_pool2d(mask.float(), self.shape[-1]).to(self.device)  # any masked pixel -> 1
        x = self._noise(len(known), generator)
        out = self._run(x, sampling_timesteps(self.unet.schedule.T, steps), prompt, negative, guidance, generator,
                        known=known, mask=small)
        return mask * out + (1 - mask) * images.cpu()
