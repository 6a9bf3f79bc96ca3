"""Checks used by the labs' hidden tests: one module per lab (``grader.checks.lab01`` ...).

Each check takes the labkit handle, reads state through the backend API only (describe / list /
get / read S3) and raises ``AssertionError`` with a message a learner can act on.
"""
