"""Recipes: how each shipped checkpoint is trained, shared by the CLI and the notebooks.

``python -m aigc_course train vae --preset vae_mlp2d`` and a notebook cell with
``TRAIN = True`` call the same function, so the notebook's model and the
shipped one come from the same code.
"""
from aigc_course.recipes.digits import *  # noqa: F401,F403  (transitional: split per family next)
from aigc_course.recipes.digits import _save_trained  # noqa: F401
