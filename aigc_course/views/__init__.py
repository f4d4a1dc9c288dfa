"""What learners look at: static plots (:mod:`~aigc_course.views.plots`) and live explorers (:mod:`~aigc_course.views.widgets`).

Views use models, never recipes, training or teaching code.
"""
