"""Lesson 00 (welcome): a checked quiz of three questions, answered with :func:`check_answer`."""
from __future__ import annotations

from aigc_course.teaching.exercises.framework import Exercise, _choice

EXERCISES: dict[str, Exercise] = {}

EXERCISES.update({e.id: e for e in (
    _choice("0.1", "which came first (quiz)", "00_welcome", "ABCD", "B",
            "the deep generative families appeared between 2013 and 2015; look at the first of them"),
    _choice("0.2", "not a family (quiz)", "00_welcome", "ABCD", "C",
            "a family of generative models learns a distribution p(x) and samples from it"),
    _choice("0.3", "no weights change (quiz)", "00_welcome", "ABC", "C",
            "one of the three steers the model through its input alone"),
)})
