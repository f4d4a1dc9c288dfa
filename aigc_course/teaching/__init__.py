"""Teaching: exercise checks, the learner version and the grader, and the history timeline."""
