"""Data the lessons learn from, all shipped in ``data/`` and checked on load.

:mod:`~aigc_course.data.digits` (MNIST digits), :mod:`~aigc_course.data.corpora`
(Shakespeare and Chinese text), :mod:`~aigc_course.data.images` (content and style
images) and :mod:`~aigc_course.data.tokenizers` (bytes, GPT-2's BPE, BPE subsets).
Data imports only :mod:`aigc_course.core`.
"""
