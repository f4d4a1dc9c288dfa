"""aigc_course: the support package of an offline-first course on generative AI.

Notebooks import from here; everything they use has a docstring and a test.
The small public surface below is what the first lessons need::

    from aigc_course import pick_device, seed_everything, load_digits, load_pretrained
"""
from aigc_course.env import pick_device, seed_everything
from aigc_course.data import load_digits, digit_loaders
from aigc_course.checkpoints import load_pretrained

__version__ = "0.1.0"
__all__ = ["pick_device", "seed_everything", "load_digits", "digit_loaders", "load_pretrained", "__version__"]
