"""Recipes: how each shipped checkpoint is trained, shared by the CLI and the notebooks.

``python -m aigc_course train vae --preset vae_mlp2d`` and a notebook cell with
``TRAIN = True`` call the same function, so the notebook's model and the
shipped one come from the same code. One file per family:
:mod:`~aigc_course.recipes.vae`, :mod:`~aigc_course.recipes.classifier`,
:mod:`~aigc_course.recipes.gan`, :mod:`~aigc_course.recipes.diffusion` and
:mod:`~aigc_course.recipes.gpt`; :mod:`~aigc_course.recipes.common` holds the
model card every recipe writes.
"""
