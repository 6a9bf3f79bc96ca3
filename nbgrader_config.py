"""nbgrader settings: the repository root is the course directory.

Also copied into the scratch course directories that ``python -m grader selfcheck`` builds, so every
setting here applies to real grading and to the self-check alike.
"""

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, ClearOutput,
                                    DeduplicateIds, GetGrades, IgnorePattern, LimitOutput,
                                    OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

from grader.preprocessors import LimitOutputSize, RestoreCellMetadata, SandboxedExecute, ScrubHiddenTracebacks

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "labs"
c.CourseDirectory.course_id = "mlaws-labs"
# Files of a lab folder that are never copied into releases or submissions.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".labkit"]

# Execution. A training or tuning cell in local mode takes well under a minute; 10 minutes per
# cell leaves room for a slow machine. The whole notebook gets at most 30 minutes.
c.Execute.timeout = 600
c.Execute.iopub_timeout = 10  # after an interrupt: how long to wait for the kernel to go idle
c.GuardedExecute.submission_timeout = 1800

# The sandbox of every submission (see the instructor guide, "What a submission can and cannot
# do"): limits per sandboxed process, and the size of its private /tmp and HOME.
c.SandboxedExecute.memory_mb = 8192
c.SandboxedExecute.processes = 512
c.SandboxedExecute.file_size_mb = 2048
c.SandboxedExecute.cpu_seconds = 3600
c.SandboxedExecute.tmp_mb = 2048

# Autograde: nbgrader's own chain with Execute replaced by SandboxedExecute (each kernel in its
# sandbox, its local AWS outside it, hidden checks in the grader's process; a deaf or dead kernel
# costs the cells that could not run, not the whole submission) and a character cap on output.
c.Autograde.autograde_preprocessors = [
    SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, LimitOutputSize,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]
c.LimitOutput.max_lines = 500
c.LimitOutputSize.max_chars = 20000
# A submission's cell metadata is never trusted: it is restored from the gradebook first.
c.Autograde.sanitize_preprocessors = [RestoreCellMetadata, ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      OverwriteCells, CheckCellMetadata]
# A learner who deletes a graded or locked cell gets it back (and run) from the gradebook copy.
c.OverwriteCells.add_missing_cells = True

# Feedback never shows hidden test source: tracebacks in hidden-test cells are cut to the message,
# then the hidden blocks themselves are removed. Learner HTML (outputs and markdown) is sanitised:
# no script, no event handler, no iframe reaches the feedback page.
c.GenerateFeedback.preprocessors = [GetGrades, ScrubHiddenTracebacks, ClearHiddenTests, SanitizeHTML,
                                    CSSHTMLHeaderPreprocessor]
c.SanitizeHTML.enabled = True  # nbconvert's preprocessor is off unless enabled
