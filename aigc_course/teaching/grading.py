"""Assignments from one source: the learner's build and the grader (one import for both).

* :mod:`aigc_course.teaching.student`: learner versions (solutions stripped,
  hints kept), nbgrader metadata, hints that must not give answers;
* :mod:`aigc_course.teaching.grader`: scores a folder of submissions, each run in
  :mod:`aigc_course.teaching.sandbox` (isolated process: :mod:`~aigc_course.teaching.worker`)
  and judged on hidden inputs with the references only the grader can reach;
* :mod:`aigc_course.teaching.reuse`: static checks for reuse of the references;
* :mod:`aigc_course.teaching.wire`: the plain format between grader and worker;
* :mod:`aigc_course.teaching.nbgrader_course`: nbgrader course directories built from the lessons,
  with :mod:`~aigc_course.teaching.nbgrader_judge` (the grader as nbgrader's autograde step).
"""
from aigc_course.teaching.grader import (GradeRow, Settings, find_submissions, grade_folder,  # noqa: F401
                                         grade_submission, write_report)
from aigc_course.teaching.student import (CHECK_MARK, HINT, SOLUTION, MarkerError, _checked_exercise,  # noqa: F401
                                          _regions, annotate_for_nbgrader, build_student, exercise_in_cell,
                                          gives_answer, has_solution, hints_giving_answers, read_notebook,
                                          strip_solutions, student_notebook)
