"""Lesson 00 (welcome): a checked quiz of three questions, answered with :func:`check_answer`."""
from __future__ import annotations

from aigc_course.teaching.exercises.framework import Exercise, letter, question


def _answer_0_1():
    return letter("B")


def _answer_0_2():
    return letter("C")


def _answer_0_3():
    return letter("C")


EXERCISES: dict[str, Exercise] = {}

EXERCISES.update({e.id: e for e in (
    question("0.1", "which came first (quiz)", "00_welcome",
             "the deep generative families appeared between 2013 and 2015; look at the first of them",
             _answer_0_1, letters="ABCD"),
    question("0.2", "not a family (quiz)", "00_welcome",
             "a family of generative models learns a distribution p(x) and samples from it", _answer_0_2,
             letters="ABCD"),
    question("0.3", "no weights change (quiz)", "00_welcome",
             "one of the three steers the model through its input alone", _answer_0_3, letters="ABC"),
)})
