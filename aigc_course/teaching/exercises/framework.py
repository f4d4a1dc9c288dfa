"""What every exercise is made of: inputs, the reference answer, and a check that prints one verdict line.

An :class:`Exercise` knows five things: the function a learner writes
(``function``), the package function whose result is the right answer
(``reference``), the fixed inputs the notebook's check uses (``public``), how to
draw more inputs (``hidden``, plus ``edge`` cases), and how to judge
(``run`` calls the learner's function on one input, ``compare`` decides).

* In a notebook, ``check_kl(my_kl)`` runs the learner's function on the public
  inputs and prints exactly one line, ``Exercise 1.2 KL divergence: correct`` or
  ``... not yet - <hint>`` (in the current language: ``练习 1.2 KL 散度：正确``,
  see :mod:`aigc_course.core.i18n`), in a cell marked ``# NBVAL_CHECK_OUTPUT``, so
  ``pytest --nbval-lax`` fails exactly where an answer is wrong. Checks print and
  return ``None`` (a returned value would add a second output).
* The grader (:mod:`aigc_course.teaching.grader`) never trusts that line. It
  draws hidden inputs from a seed only it knows, sends them to an isolated
  process that calls the learner's function through ``run``, receives plain
  arrays back, and judges them with ``compare`` against ``reference``, which it
  computes in its own process. In the isolated process every ``reference`` (and
  each name in ``protects``) is replaced by a stub that raises.

A behaviour-graded exercise ("train this step N times, then measure") is the
same five things: ``run`` is the loop (it calls the learner's step N times from
a seeded start and returns the trained weights as a tensor) and ``compare``
measures those weights in the grader (e.g. the loss on held-out data it draws),
so nothing the learner's process says about itself is believed::

    Exercise("9.1", "SGD step", "09_x", "my_sgd_step", "w <- w - lr * grad",
             reference=_sgd_reference, public=_sgd_public, hidden=_sgd_hidden,
             run=_train_20_steps, compare=_heldout_loss_below(0.1))
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch

from aigc_course.core.i18n import tr

GRADING_ENV = "AIGC_GRADING"  # set in the grader's isolated process: checks print no verdict there


def verdict_line(exercise: str, title: str, ok: bool, hint: str = "") -> str:
    """``Exercise <id> <title>: correct`` or ``Exercise <id> <title>: not yet - <hint>``, in the current
    language (``title`` and ``hint`` are given already in it)."""
    if ok:
        return tr("Exercise {id} {title}: correct", id=exercise, title=title)
    return tr("Exercise {id} {title}: not yet - {hint}", id=exercise, title=title, hint=hint)


def call(answer: Callable, args: tuple):
    """The default ``run``: the learner's function on one input."""
    return answer(*args)


def close(got: torch.Tensor, expected: torch.Tensor, args: tuple = ()) -> bool:
    """The default ``compare``: equal within atol 1e-5, rtol 1e-4 (infinities must match)."""
    return bool(torch.allclose(got.detach().double(), expected.detach().double(), atol=1e-5, rtol=1e-4))


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it lives, the function the learner writes, its inputs and how to judge it."""

    id: str
    title: str
    notebook: str   # file stem of the lesson, e.g. "01_vae"
    function: str   # the name the learner's solution cell defines
    hint: str       # English, the message table's key: a value that may change is a "{field}" filled from hint_fields
    reference: Callable               # reference(*inputs) -> the right answer (a tensor)
    public: Callable[[], tuple]       # () -> the inputs the notebook's check uses
    hidden: Callable[[torch.Generator], tuple] | None = None  # one draw of hidden inputs
    edge: tuple[Callable[[], tuple], ...] = ()  # fixed edge cases the grader adds
    run: Callable = call              # (answer, inputs) -> tensor; runs where the learner's code runs
    compare: Callable = close         # (got, expected, inputs) -> bool; runs in the grader
    protects: tuple[str, ...] = ()    # "module:function" names also unavailable while grading
    # "module:Name" of package classes that would do the exercise but that other exercises' grading runs need
    # (so they cannot be stubbed): the reuse check flags a graded function that mentions them
    mentions: tuple[str, ...] = ()
    hint_fields: tuple[tuple[str, object], ...] = ()  # (name, value) pairs filled into the hint's {fields}

    def title_text(self) -> str:
        """The title as the learner reads it, in the current language."""
        return tr(self.title)

    def hint_text(self) -> str:
        """The hint as the learner reads it: in the current language, with ``hint_fields`` filled in."""
        return tr(self.hint, **dict(self.hint_fields))

    def case(self) -> tuple[tuple, torch.Tensor]:
        """The public inputs and the reference answer on them."""
        args = self.public()
        return args, self.reference(*args)

    def grading_inputs(self, seed: int, draws: int = 3) -> list[tuple]:
        """The inputs the grader uses: the public case, the edge cases and ``draws`` hidden draws from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        hidden = [self.hidden(g) for _ in range(draws)] if self.hidden else []
        return [self.public(), *(make() for make in self.edge), *hidden]

    def references(self) -> tuple[str, ...]:
        """Every "module:function" that is this exercise's answer (stubbed out while grading)."""
        own = f"{self.reference.__module__}:{self.reference.__name__}"
        return (own, *self.protects)

    def evaluate(self, answer: Callable) -> tuple[bool, str]:
        """Run ``answer`` on the public inputs; return (correct?, verdict line)."""
        args, expected = self.case()
        try:
            got = self.run(answer, args)
        except Exception as err:  # the learner's code raised: judged below, in one line
            got = err
        return self.judge(got, expected, args)

    def judge(self, got, expected=None, args: tuple | None = None) -> tuple[bool, str]:
        """Verdict for what the learner's function returned (or the exception it raised)."""
        if expected is None:
            args, expected = self.case()
        if isinstance(got, NotImplementedError):
            return self._result(False, tr("the exercise is not done yet (replace `raise NotImplementedError`)"))
        if isinstance(got, BaseException):
            return self._result(False, tr("your code raised {error}: {message}", error=type(got).__name__,
                                          message=got))
        if not isinstance(got, torch.Tensor):
            return self._result(False, tr("return a torch.Tensor, got {type}", type=type(got).__name__))
        if got.shape != expected.shape:
            return self._result(False, tr("expected shape {expected}, got {got}; {hint}", expected=tuple(expected.shape),
                                          got=tuple(got.shape), hint=self.hint_text()))
        return self._result(self.compare(got, expected, args), self.hint_text())

    def _result(self, ok: bool, hint: str) -> tuple[bool, str]:
        return ok, verdict_line(self.id, self.title_text(), ok, hint)

    def check(self, answer: Callable) -> None:
        """Print the verdict. Under nbgrader's autograder a wrong answer also raises
        ``AssertionError``, because nbgrader scores a test cell by whether it raises.
        In the grader's isolated process it prints that the grader checks it instead."""
        if os.environ.get(GRADING_ENV) == "1":
            print(tr("Exercise {id} {title}: checked by the grader", id=self.id, title=self.title_text()))
            return
        ok, line = self.evaluate(answer)
        print(line)
        if not ok and os.environ.get("NBGRADER_EXECUTION") == "autograde":
            raise AssertionError(line)


def _randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * scale


def _size(g: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high], drawn from ``g`` (hidden inputs vary their shapes too)."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


@contextmanager
def _one_thread():
    """Train the exercises' tiny models on one thread (faster than several for them, and fair on a shared
    machine); the caller's thread count comes back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- questions answered with a letter


def letter(right: str) -> torch.Tensor:
    """A letter as a question's answer travels and is compared: its code point, float64, shape (1,)."""
    return torch.tensor([float(ord(right))], dtype=torch.float64)


def within(share: float) -> Callable:
    """``compare`` of a question answered with a number: right within a relative tolerance ``share``."""
    def compare(got, expected, args) -> bool:
        return bool((got - expected).abs().item() <= share * expected.abs().item())
    return compare


@dataclass(frozen=True)
class _ReadAnswer:
    """``run`` of a :func:`question`: call the learner's ``answer()`` and turn its reply into a tensor (1,)."""

    letters: str | None   # the letters allowed; None: any one letter, or a number
    quiz: bool            # a quiz question (checked by check_answer): its message also shows the reply

    def __call__(self, answer: Callable, args: tuple) -> torch.Tensor:
        value = answer()
        if self.letters is not None:
            if not (isinstance(value, str) and value.strip().upper() in tuple(self.letters)):
                if self.quiz:
                    raise ValueError(tr("return one letter as a string, one of {letters}; got {got}",
                                        letters=", ".join(repr(c) for c in self.letters), got=repr(value)))
                raise ValueError(tr("return one of the letters {letters} as a string",
                                    letters=", ".join(self.letters)))
            return letter(value.strip().upper())
        if isinstance(value, str):
            text = value.strip().upper()
            if len(text) != 1 or not text.isalpha():
                raise ValueError(tr("answer with one letter, got {value}", value=repr(value)))
            return letter(text)
        if isinstance(value, torch.Tensor):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(tr("answer with a letter in quotes or a number, got {type}", type=type(value).__name__))
        return torch.tensor([float(value)], dtype=torch.float64)


QUIZ_PREFIX = "my_answer_"   # a quiz question's function: my_answer_1_4 answers question 1.4


def question(id: str, title: str, notebook: str, hint: str, answer: Callable[[], torch.Tensor], *,
             function: str | None = None, letters: str | None = None, compare: Callable = close) -> Exercise:
    """A question the learner answers before the code that shows the result runs: a quiz question, or a
    "predict, then run" prediction. The learner's function takes no input and returns a letter (``"B"``;
    case and surrounding spaces do not matter) or, for a question that asks for a count, a number.

    * ``answer``: a module-level function of no input that returns the right answer, ``letter("B")`` or a
      float64 tensor (1,) holding the number. It is the exercise's reference, so while grading it is a
      stub that raises: the right answer never reaches the learner's process.
    * ``function``: the name of the learner's function, checked by its own ``check_*`` function. Without
      it the question is a quiz question: the function is ``my_answer_<id>`` (``my_answer_1_4`` for 1.4),
      and ``check_answer`` finds the question by that name.
    * ``letters``: the letters that may be returned (``"ABC"``); any other reply raises ``ValueError``,
      whose message lists them (and, in a quiz, repeats the reply). Without ``letters`` any one letter is
      read (a wrong one is just wrong) and so is a number, which ``compare`` judges (e.g. ``within(0.02)``).

    A reply travels as a float64 tensor (1,): a letter as its code point, a number as itself.
    """
    quiz = function is None
    if quiz and letters is None:
        raise ValueError(f"quiz question {id} needs its letters")
    return Exercise(id, title, notebook, f"{QUIZ_PREFIX}{id.replace('.', '_')}" if quiz else function, hint,
                    reference=answer, public=lambda: (), run=_ReadAnswer(letters, quiz), compare=compare)


def is_quiz(exercise: Exercise) -> bool:
    """Whether ``exercise`` is a quiz question made by :func:`question` (checked by ``check_answer``)."""
    return isinstance(exercise.run, _ReadAnswer) and exercise.run.quiz
