"""What learners look at: static plots (:mod:`~aigc_course.views.plots`) and live explorers (:mod:`~aigc_course.views.widgets`).

Views use models, never recipes, training or teaching code.
"""
from aigc_course.core import i18n

# Figures can show 汉字 in both editions (glossary terms, Chinese samples); see i18n.use_cjk_font.
i18n.use_cjk_font()
