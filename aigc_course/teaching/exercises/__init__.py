"""The course's exercises, one module per lesson, and the registry the checks and the grader share.

* :mod:`.framework`: what an exercise is (:class:`Exercise`), the verdict line, the default ``run`` and
  ``compare``, and the helpers the lessons share (random cases, questions answered with a letter).
* one module per lesson, each with its exercises (``EXERCISES``, by id), their inputs, references and the
  ``check_*`` functions its notebook calls: :mod:`.welcome` (00), :mod:`.vae` (01), :mod:`.gan` (02),
  :mod:`.style_transfer` (03), :mod:`.diffusion` (04), :mod:`.gpt2` (05), :mod:`.evaluation` (06),
  :mod:`.responsible_aigc` (07), :mod:`.text_to_image` (08), :mod:`.assistant` (09).

Notebooks import the checks from here (``from aigc_course.teaching.exercises import check_kl``); this module
re-exports every public name of the lesson modules.
"""
from __future__ import annotations

from typing import Callable

from aigc_course.core.i18n import tr
from aigc_course.teaching.exercises import (assistant, diffusion, evaluation, gan, gpt2, responsible_aigc,
                                            style_transfer, text_to_image, vae, welcome)
from aigc_course.teaching.exercises.assistant import (TABLE_BETA, TABLE_LR, TABLE_MIN_WON, TABLE_STEPS,
                                                     check_assistant_mask, check_dpo_loss, check_dpo_train, won_share)
from aigc_course.teaching.exercises.diffusion import (SAMPLER_LIMITS, TOY_BATCH, TOY_STEPS, check_ddim_step,
                                                      check_ddpm_step, check_diffusion_loss,
                                                      check_prediction_guidance, check_prediction_samplers,
                                                      check_q_sample, check_sample, heldout_denoising_error,
                                                      mixture_eps, mixture_fit, toy_denoiser)
from aigc_course.teaching.exercises.evaluation import (check_fid, check_frechet_distance, check_precision,
                                                       check_prediction_fid_n, check_prediction_recall)
from aigc_course.teaching.exercises.framework import (GRADING_ENV, Exercise, call, close, is_quiz, letter, question,
                                                      verdict_line, within)
from aigc_course.teaching.exercises.gan import (GAN_BATCH, GAN_MIN_MODES, GAN_RING_STD, GAN_STEPS,
                                                check_discriminator_loss, check_gan_step, check_generator_loss,
                                                check_mode_counts, modes_covered)
from aigc_course.teaching.exercises.gpt2 import (check_block, check_causal_attention, check_lora_forward,
                                                 check_prediction_kv_cache, check_prediction_lora_parameters,
                                                 check_top_p, check_train_step)
from aigc_course.teaching.exercises.responsible_aigc import (check_prediction_human_text,
                                                             check_prediction_watermark, check_train_detector,
                                                             check_z_score)
from aigc_course.teaching.exercises.style_transfer import (CLOSURE_CONTENT, CLOSURE_EVALUATIONS, CLOSURE_STYLE,
                                                           check_closure, check_gram_matrix,
                                                           check_prediction_optimizer,
                                                           check_prediction_style_weight, check_style_loss,
                                                           check_total_variation, style_objective, tiny_vgg)
from aigc_course.teaching.exercises.text_to_image import (CLIP_BATCH, CLIP_STEPS, ToyDualEncoder, check_clip_loss,
                                                          check_clip_step, check_cross_attention,
                                                          check_sdedit_start, heldout_recall)
from aigc_course.teaching.exercises.vae import (VAE_BATCH, VAE_LR, VAE_STEP_THRESHOLD, VAE_STEPS, check_kl,
                                                check_reparameterize, check_vae_step, heldout_negative_elbo)

LESSONS = (welcome, vae, gan, style_transfer, diffusion, gpt2, evaluation, responsible_aigc, text_to_image,
           assistant)

# The order of the registry is part of grading: the grader draws an exercise's hidden inputs from the run's
# seed + 7919 * (its position here). This is the order the exercises were first registered in; a new
# exercise goes at the end, so that the hidden inputs of the others stay what they were.
GRADING_ORDER = ("1.1", "1.2", "1.3", "1.4", "1.5", "0.1", "0.2", "0.3", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6",
                 "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7",
                 "5.1", "5.2", "5.3", "5.4", "5.5", "5.6", "5.7", "6.1", "6.2", "7.1", "6.3", "6.4", "6.5",
                 "7.2", "7.3", "7.4", "9.1", "9.2", "9.3", "8.1", "8.2", "8.3", "8.4")


def _registry() -> dict[str, Exercise]:
    found = {e.id: e for lesson in LESSONS for e in lesson.EXERCISES.values()}
    if set(found) != set(GRADING_ORDER) or len(GRADING_ORDER) != len(set(GRADING_ORDER)):
        raise RuntimeError(f"GRADING_ORDER must list each exercise once: missing {sorted(set(found) - set(GRADING_ORDER))}, "
                           f"unknown {sorted(set(GRADING_ORDER) - set(found))}")
    return {id: found[id] for id in GRADING_ORDER}


EXERCISES = _registry()


def exercises_for(notebook: str) -> list[Exercise]:
    """The exercises of one lesson notebook (by file stem), in order."""
    return [e for e in EXERCISES.values() if e.notebook == notebook]


def check_answer(answer: Callable) -> None:
    """A quiz question (see :func:`~.framework.question`): ``answer()`` must return the right letter.

    The question is the one whose function is called ``answer.__name__`` (``my_answer_1_4`` is 1.4)."""
    found = [e for e in EXERCISES.values() if is_quiz(e) and e.function == getattr(answer, "__name__", "")]
    if not found:
        print(verdict_line("?", tr("question"), False,
                           tr("keep the function's name, e.g. {example}", example="my_answer_1_4")))
        return
    found[0].check(answer)


__all__ = [
    "EXERCISES", "GRADING_ENV", "GRADING_ORDER", "LESSONS", "Exercise", "call", "check_answer", "close",
    "exercises_for", "is_quiz", "letter", "question", "verdict_line", "within",
    # lesson 01
    "VAE_BATCH", "VAE_LR", "VAE_STEPS", "VAE_STEP_THRESHOLD", "check_kl", "check_reparameterize", "check_vae_step",
    "heldout_negative_elbo",
    # lesson 02
    "GAN_BATCH", "GAN_MIN_MODES", "GAN_RING_STD", "GAN_STEPS", "check_discriminator_loss", "check_gan_step",
    "check_generator_loss", "check_mode_counts", "modes_covered",
    # lesson 03
    "CLOSURE_CONTENT", "CLOSURE_EVALUATIONS", "CLOSURE_STYLE", "check_closure", "check_gram_matrix",
    "check_prediction_optimizer", "check_prediction_style_weight", "check_style_loss", "check_total_variation",
    "style_objective", "tiny_vgg",
    # lesson 04
    "SAMPLER_LIMITS", "TOY_BATCH", "TOY_STEPS", "check_ddim_step", "check_ddpm_step", "check_diffusion_loss",
    "check_prediction_guidance", "check_prediction_samplers", "check_q_sample", "check_sample",
    "heldout_denoising_error", "mixture_eps", "mixture_fit", "toy_denoiser",
    # lesson 05
    "check_block", "check_causal_attention", "check_lora_forward", "check_prediction_kv_cache",
    "check_prediction_lora_parameters", "check_top_p", "check_train_step",
    # lesson 06
    "check_fid", "check_frechet_distance", "check_precision", "check_prediction_fid_n", "check_prediction_recall",
    # lesson 07
    "check_prediction_human_text", "check_prediction_watermark", "check_train_detector", "check_z_score",
    # lesson 08
    "CLIP_BATCH", "CLIP_STEPS", "ToyDualEncoder", "check_clip_loss", "check_clip_step", "check_cross_attention",
    "check_sdedit_start", "heldout_recall",
    # lesson 09
    "TABLE_BETA", "TABLE_LR", "TABLE_MIN_WON", "TABLE_STEPS", "check_assistant_mask", "check_dpo_loss",
    "check_dpo_train", "won_share",
]
