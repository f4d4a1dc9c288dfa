"""Model families of the course, one file each: pure maths and ``nn.Module``s.

Models import no training, views or teaching code. :mod:`aigc_course.models.hub`
turns a checkpoint (a shipped name or a path) back into a model.
"""
