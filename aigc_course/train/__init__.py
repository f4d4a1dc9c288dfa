"""Training: one loop for every model of the course.

Train imports core, data and models; recipes build on it.
"""
from aigc_course.train.loop import History, cosine_factor, fit

__all__ = ["History", "cosine_factor", "fit"]
