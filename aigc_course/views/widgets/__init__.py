"""Live explorers built on ipywidgets: every change of a control redraws from the model, on the fly.

One base class (:class:`~aigc_course.views.widgets.base.Explorer`) owns what
they share: display, the status line, the timing of each update and error
reporting. One file per lesson family holds its thin explorers:

========================  ==========================================================  ======
file                      explorers                                                   lesson
========================  ==========================================================  ======
``vae.py``                :class:`LatentExplorer`, :class:`InterpolationExplorer`     01
``gan.py``                :class:`ToyGANReplay`, :class:`GANExplorer`                 02
``style.py``              :class:`StyleExplorer`                                      03
``diffusion.py``          :class:`TimestepScrubber`, :class:`GuidanceExplorer`        04
``gpt.py``                :class:`SamplingExplorer`                                   05
``text2img.py``           :class:`PromptExplorer`                                     08
``chat.py``               :class:`ChatExplorer`                                       09
========================  ==========================================================  ======

``from aigc_course.views.widgets import LatentExplorer`` (and every name below) works as before.
"""
from aigc_course.views.widgets.base import Explorer, digit_png, error_html, grid_png, png_bytes, to_pixels
from aigc_course.views.widgets.chat import ChatExplorer, chat_reply
from aigc_course.views.widgets.diffusion import GuidanceExplorer, TimestepScrubber
from aigc_course.views.widgets.gan import GANExplorer, ToyGANReplay, toy_frame
from aigc_course.views.widgets.gpt import SamplingExplorer, probability_bars_html, token_label
from aigc_course.views.widgets.style import StyleExplorer
from aigc_course.views.widgets.text2img import PromptExplorer
from aigc_course.views.widgets.vae import InterpolationExplorer, LatentExplorer, latent_map

__all__ = [
    "Explorer", "digit_png", "error_html", "grid_png", "png_bytes", "to_pixels",
    "LatentExplorer", "InterpolationExplorer", "latent_map",
    "ToyGANReplay", "GANExplorer", "toy_frame",
    "StyleExplorer",
    "TimestepScrubber", "GuidanceExplorer",
    "SamplingExplorer", "probability_bars_html", "token_label",
    "PromptExplorer", "ChatExplorer", "chat_reply",
]
