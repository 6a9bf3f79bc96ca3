"""labkit: the learner-facing runtime of the course (backend selection, local AWS, data, waits)."""

__version__ = "0.1.0"

from labkit.backend import Handle, connect  # noqa: E402
from labkit.errors import LabkitError  # noqa: E402

__all__ = ["connect", "Handle", "LabkitError", "__version__"]
