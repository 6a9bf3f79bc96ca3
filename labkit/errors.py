"""One exception type for learner-facing problems: shown as a short message, not a traceback."""


class LabkitError(RuntimeError):
    """A problem the learner can fix; Jupyter shows just the message (no traceback)."""

    def _render_traceback_(self):  # IPython hook: replaces the traceback display
        return [f"\x1b[31mLabkitError:\x1b[0m {self}"]
