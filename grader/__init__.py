"""The course grader: hidden-test checks (grader.checks.labNN) and the nbgrader glue."""
