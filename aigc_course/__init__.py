"""aigc_course: the support package of an offline-first course on generative AI.

The package is layered; each layer imports only the layers before it::

    core      env, assets, checkpoint files          (knows no model)
    data      digits, corpora, images, tokenizers
    models    one file per family; hub.load(name)     (no training, views or teaching)
    train     fit: the one training loop
    recipes   how each shipped checkpoint is trained  (used by the CLI and TRAIN = True)
    metrics, views, responsible, teaching              (use models; never recipes)

The small public surface below is what the first lessons need::

    from aigc_course import pick_device, seed_everything, load_digits, load_pretrained
"""
from aigc_course.core.env import pick_device, seed_everything
from aigc_course.data.digits import digit_loaders, load_digits
from aigc_course.models.hub import load, load_pretrained

__version__ = "0.1.0"
__all__ = ["pick_device", "seed_everything", "load_digits", "digit_loaders", "load", "load_pretrained", "__version__"]
