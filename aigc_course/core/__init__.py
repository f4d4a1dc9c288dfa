"""The base layer: environment, shipped assets and checkpoint files.

:mod:`~aigc_course.core.env` (device, threads, seeds, hardware report),
:mod:`~aigc_course.core.assets` (the sha256 registry of everything in ``data/``)
and :mod:`~aigc_course.core.checkpoints` (safetensors weights + a JSON card).
Core imports nothing else from the course, and in particular knows no model.
"""
