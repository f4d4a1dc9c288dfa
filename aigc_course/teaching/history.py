"""Milestones of generative AI for the welcome lesson's timeline, 1966 to 2025.

Each entry names the work, the model family it belongs to, its date and a
source for that date: the paper (an arXiv identifier also encodes the month
of submission, ``YYMM.NNNNN``) or, for products, the announcement. Dates are
``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, as precisely as the source gives
them. The notebook draws the events with
:func:`aigc_course.views.plots.timeline` and discusses them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    date: str  # "YYYY", "YYYY-MM" or "YYYY-MM-DD": paper, release or announcement
    name: str
    family: str  # a key of plots.FAMILY_COLOURS
    reference: str

    @property
    def year(self) -> int:
        return int(self.date[:4])


EVENTS = (
    Event("1966", "ELIZA", "early", "Weizenbaum 1966, Communications of the ACM 9(1); rule-based chatbot"),
    Event("1985", "Boltzmann machine", "early", "Ackley, Hinton & Sejnowski 1985, Cognitive Science 9(1)"),
    Event("1997", "LSTM", "autoregressive", "Hochreiter & Schmidhuber 1997, Neural Computation 9(8)"),
    Event("2006", "Deep belief nets", "early", "Hinton, Osindero & Teh 2006, Neural Computation 18(7)"),
    Event("2013-12", "VAE", "VAE", "Kingma & Welling, arXiv:1312.6114"),
    Event("2014-06", "GAN", "GAN", "Goodfellow et al., arXiv:1406.2661"),
    Event("2015-03", "Diffusion (thermodynamics)", "diffusion", "Sohl-Dickstein et al., arXiv:1503.03585"),
    Event("2015-08", "Neural style transfer", "style", "Gatys, Ecker & Bethge, arXiv:1508.06576"),
    Event("2015-11", "DCGAN", "GAN", "Radford, Metz & Chintala, arXiv:1511.06434"),
    Event("2016-06", "PixelCNN / WaveNet", "autoregressive", "van den Oord et al., arXiv:1606.05328, arXiv:1609.03499"),
    Event("2017-06", "Transformer", "autoregressive", "Vaswani et al., arXiv:1706.03762"),
    Event("2018-12", "StyleGAN", "GAN", "Karras, Laine & Aila, arXiv:1812.04948"),
    Event("2019-02", "GPT-2", "autoregressive", "Radford et al. 2019, OpenAI report; 1.5B parameters"),
    Event("2020-05", "GPT-3", "autoregressive", "Brown et al., arXiv:2005.14165; 175B parameters"),
    Event("2020-06", "DDPM", "diffusion", "Ho, Jain & Abbeel, arXiv:2006.11239"),
    Event("2021-02", "DALL-E", "autoregressive", "Ramesh et al., arXiv:2102.12092 (text-to-image transformer)"),
    Event("2022-08", "Stable Diffusion", "diffusion",
          "Rombach et al., arXiv:2112.10752 (CVPR 2022); weights released August 2022"),
    Event("2022-11", "ChatGPT", "autoregressive",
          "OpenAI, 30 November 2022; instruction tuning + RLHF, Ouyang et al., arXiv:2203.02155"),
    Event("2023-03-14", "GPT-4", "autoregressive",
          "OpenAI, GPT-4 Technical Report, arXiv:2303.08774; accepts images and text, outputs text"),
    Event("2023-03-16", "ERNIE Bot", "autoregressive",
          "Baidu (文心一言), launched 16 March 2023 on ERNIE 3.0 Titan (Wikipedia, 'Ernie Bot')"),
    Event("2023-09", "Qwen", "autoregressive",
          "Alibaba Qwen team (通义千问), Qwen Technical Report, arXiv:2309.16609 (base and RLHF chat models)"),
    Event("2024-02-15", "Sora", "diffusion",
          "OpenAI, 'Video generation models as world simulators', 15 February 2024 (diffusion transformer "
          "on spacetime patches of video latents)"),
    Event("2024-06-06", "Kling", "diffusion",
          "Kuaishou (可灵), announced 6 June 2024 (MIT Technology Review, China Report, June 2024); text-to-video"),
    Event("2024-12-03", "HunyuanVideo", "diffusion",
          "Tencent Hunyuan team, arXiv:2412.03603; open weights, over 13B parameters"),
    Event("2024-12-27", "DeepSeek-V3", "autoregressive",
          "DeepSeek-AI, arXiv:2412.19437; open mixture-of-experts, 671B parameters, 37B active per token"),
    Event("2025-01-22", "DeepSeek-R1", "autoregressive",
          "DeepSeek-AI, arXiv:2501.12948; reasoning trained with large-scale reinforcement learning, open weights"),
    Event("2025-05", "Qwen3", "autoregressive",
          "Qwen team, Qwen3 Technical Report, arXiv:2505.09388; open dense and MoE models, 0.6B to 235B"),
)
