"""Milestones of generative AI for the welcome lesson's timeline (paper or release year).

Each entry names the work and the model family it belongs to; the notebook
draws them with :func:`aigc_course.plots.timeline` and discusses them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    year: int
    name: str
    family: str  # a key of plots.FAMILY_COLOURS
    reference: str


EVENTS = (
    Event(1966, "ELIZA", "early", "Weizenbaum 1966, rule-based chatbot"),
    Event(1985, "Boltzmann machine", "early", "Ackley, Hinton & Sejnowski 1985"),
    Event(1997, "LSTM", "autoregressive", "Hochreiter & Schmidhuber 1997"),
    Event(2006, "Deep belief nets", "early", "Hinton, Osindero & Teh 2006"),
    Event(2013, "VAE", "VAE", "Kingma & Welling, arXiv:1312.6114"),
    Event(2014, "GAN", "GAN", "Goodfellow et al., arXiv:1406.2661"),
    Event(2015, "Diffusion (thermodynamics)", "diffusion", "Sohl-Dickstein et al., arXiv:1503.03585"),
    Event(2015, "Neural style transfer", "style", "Gatys, Ecker & Bethge, arXiv:1508.06576"),
    Event(2015, "DCGAN", "GAN", "Radford, Metz & Chintala, arXiv:1511.06434"),
    Event(2016, "PixelCNN / WaveNet", "autoregressive", "van den Oord et al., arXiv:1606.05328, arXiv:1609.03499"),
    Event(2017, "Transformer", "autoregressive", "Vaswani et al., arXiv:1706.03762"),
    Event(2018, "StyleGAN", "GAN", "Karras, Laine & Aila, arXiv:1812.04948"),
    Event(2019, "GPT-2", "autoregressive", "Radford et al. 2019, 1.5B parameters"),
    Event(2020, "DDPM", "diffusion", "Ho, Jain & Abbeel, arXiv:2006.11239"),
    Event(2020, "GPT-3", "autoregressive", "Brown et al., arXiv:2005.14165, 175B parameters"),
    Event(2021, "DALL-E", "autoregressive", "Ramesh et al., arXiv:2102.12092 (text-to-image transformer)"),
    Event(2022, "Stable Diffusion", "diffusion", "Rombach et al., arXiv:2112.10752 (CVPR 2022); released August 2022"),
    Event(2022, "ChatGPT", "autoregressive", "OpenAI, November 2022; instruction tuning + RLHF, Ouyang et al., arXiv:2203.02155"),
)
