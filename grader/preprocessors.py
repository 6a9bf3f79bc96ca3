"""nbgrader preprocessors that make autograde survive hostile or broken submissions.

``GuardedExecute`` replaces nbgrader's ``Execute`` in autograde: a cell that runs past the per-cell
limit is interrupted (as nbgrader does), but a cell that ignores the interrupt, or a kernel that
dies (``os._exit``, a crash), no longer drops the whole submission: the kernel is stopped, every
remaining cell gets an error output saying why it did not run (so its points are 0), and the cells
already run keep their grades. A per-submission time budget bounds the whole notebook.

``LimitOutputSize`` caps output by characters (nbgrader's ``LimitOutput`` counts lines only, so one
10 MB line would survive). ``ScrubHiddenTracebacks`` (feedback) reduces errors in cells with hidden
tests to ``Name: message``: a traceback would otherwise quote hidden test lines.

``SandboxedExecute`` (what autograde runs) adds the trust model on top of GuardedExecute: each
submission gets its own local AWS outside the kernel, the kernel runs in its sandbox
(grader.sandbox), and every hidden block runs in this process against the grader's own handle, at
the point of the notebook where its test cell stands (grader.outside).

What cost points is appended to ``EVENTS`` (cell id, message); what did not (cut output, a blocked
network call) to ``NOTICES``. The grading worker turns both into the report's columns.
"""

from __future__ import annotations

import os
import signal
from time import monotonic

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Integer

from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from grader.course import drop_credentials

EVENTS: list[tuple[str, str]] = []
NOTICES: list[tuple[str, str]] = []
HIDDEN_MARK = "BEGIN HIDDEN TESTS"


def cell_name(cell, index: int) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id") or f"cell {index}"


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


class GuardedExecute(Execute):
    """nbgrader's Execute with a per-submission budget and recovery from dead or deaf kernels."""

    submission_timeout = Integer(
        600, help="Seconds one notebook may run in total; cells after that are not run (0 points)."
    ).tag(config=True)

    max_output_bytes = Integer(
        2_000_000, help="Output kept per cell while it runs; the rest is dropped at once, so a print "
                        "loop cannot exhaust the grader's memory before the cell's time limit."
    ).tag(config=True)

    def output(self, outs, msg, display_id, cell_index):
        """Drop a cell's output beyond ``max_output_bytes`` as it arrives."""
        if cell_index != getattr(self, "_output_cell", None):
            self._output_cell, self._output_bytes, self._output_dropped = cell_index, 0, False
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(v) for v in content.get("data", {}).values()
                                                   if isinstance(v, str))
        room = self.max_output_bytes - self._output_bytes
        self._output_bytes += size
        if size > room and msg.get("msg_type") in (
                "stream", "display_data", "execute_result", "update_display_data"):
            if msg["msg_type"] == "stream" and room > 0:  # keep the head of a huge print
                content["text"] = content["text"][:room]
                self._output_bytes = self.max_output_bytes
                return super().output(outs, msg, display_id, cell_index)
            if not self._output_dropped:
                self._output_dropped = True
                name = cell_name(self.nb.cells[cell_index], cell_index)
                NOTICES.append((name, f"output beyond {self.max_output_bytes:,} characters was discarded "
                                      "while the cell ran"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = monotonic() + self.submission_timeout
        self._cell_timeout = self.timeout
        self._stopped: str | None = None
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self.timeout = self._cell_timeout

    def _skip(self, cell, index):
        cell.outputs = [error_output("NotRun", f"this cell did not run: {self._stopped}")]
        cell.execution_count = None

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        name = cell_name(cell, index)
        remaining = self._deadline - monotonic()
        if self._stopped is None and remaining < 1:
            self._stopped = f"the submission used up its {self.submission_timeout} s time limit"
            EVENTS.append((name, self._stopped))
            self._kill_kernel()
        if self._stopped is not None:
            self._skip(cell, index)
            return cell, resources
        self.timeout = int(max(1, min(self._cell_timeout or remaining, remaining)))
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stopped = f"the kernel died while running {name} (os._exit, a crash or out of memory)"
            EVENTS.append((name, self._stopped))
            cell.outputs = list(cell.get("outputs", [])) + [error_output("DeadKernelError", self._stopped)]
        except CellTimeoutError:
            self._stopped = (f"{name} ignored the interrupt sent after its {self.timeout} s time limit; "
                             "the kernel was stopped")
            EVENTS.append((name, self._stopped))
            self._kill_kernel()
            cell.outputs = list(cell.get("outputs", [])) + [error_output("CellTimeoutError", self._stopped)]
        else:
            if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                EVENTS.append((name, f"{name} ran past the {self.timeout} s cell time limit and was "
                                     "interrupted"))
        return cell, resources

    def _kill_kernel(self) -> None:
        """SIGKILL the kernel's process group (the kernel and anything it started)."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        pid = getattr(process, "pid", None)
        if not pid:
            return
        try:
            group = os.getpgid(pid)
            if group != os.getpgid(0):
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class SandboxedExecute(GuardedExecute):
    """GuardedExecute in the trust model: sandboxed kernel, outside local AWS, outside checks."""

    sandbox = Bool(True, help="Run each kernel and its local AWS in a bubblewrap sandbox. False only for "
                              "a trusted class on a machine without bubblewrap (reports say so)."
                   ).tag(config=True)
    memory_mb = Integer(8192, help="Address space per sandboxed process, MiB (RLIMIT_AS).").tag(config=True)
    processes = Integer(512, help="Processes per user in the sandbox (RLIMIT_NPROC).").tag(config=True)
    file_size_mb = Integer(2048, help="Largest file a sandboxed process may write, MiB.").tag(config=True)
    cpu_seconds = Integer(3600, help="CPU seconds per sandboxed process (RLIMIT_CPU).").tag(config=True)
    tmp_mb = Integer(2048, help="Size of the sandbox's private /tmp and of its HOME, MiB each.").tag(config=True)

    def limits(self):
        from grader.sandbox import Limits

        return Limits(memory_mb=self.memory_mb, processes=self.processes, file_size_mb=self.file_size_mb,
                      cpu_seconds=self.cpu_seconds, tmp_mb=self.tmp_mb)

    def preprocess(self, nb, resources=None, km=None):
        from grader import sandbox
        from grader.submission import SubmissionWorld

        if self.sandbox and sandbox.unavailable():
            raise RuntimeError(f"no sandbox for graded code: {sandbox.unavailable()}. Install it, or set "
                               "c.SandboxedExecute.sandbox = False for a trusted class (python -m grader "
                               "autograde --unsandboxed)")
        drop_credentials()  # the grading process (stock `nbgrader autograde` too) holds none
        lab = ((resources or {}).get("nbgrader") or {}).get("assignment")
        self._world = SubmissionWorld(self.limits(), sandboxed=self.sandbox)
        self._world.start()
        try:
            try:
                self._world.prepare(lab)
            except Exception as exc:  # noqa: BLE001 - the grader's own set-up: say so, grade nothing
                raise RuntimeError(f"preparing the lab's starting state failed: {exc}") from exc
            self.kernel_manager_class = self._world.kernel_manager_class()
            return super().preprocess(nb, resources, km)
        finally:
            for host in self._world.network_attempts():
                NOTICES.append(("network", f"blocked network access to {host} (graded code may only "
                                           "use the local AWS)"))
            self._world.close()

    def _fetch(self, names: list[str]) -> dict:
        """Learner variables as plain data (see grader.outside)."""
        from grader.outside import export_code, new_nonce, read_export

        if self._stopped is not None or self.kc is None:
            return {}
        nonce = new_nonce()
        code = export_code(names, self._world.run_dir, nonce)
        try:
            self._run_silently(code, timeout=120)
        except Exception:  # noqa: BLE001 - no answer = the variable is not available
            return {}
        return read_export(self._world.run_dir, nonce)

    def _run_silently(self, code: str, timeout: float) -> None:
        from jupyter_core.utils import run_sync

        async def run():
            msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False)
            deadline = monotonic() + timeout
            while monotonic() < deadline:
                reply = await self.kc.shell_channel.get_msg(timeout=max(0.1, deadline - monotonic()))
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    return
            raise TimeoutError("no answer from the kernel")

        run_sync(run)()

    def preprocess_cell(self, cell, resources, index):
        from grader.outside import run_hidden, split_hidden

        if cell.cell_type != "code" or HIDDEN_MARK not in cell.source:
            return super().preprocess_cell(cell, resources, index)
        original = cell.source
        visible, hidden = split_hidden(original)
        failure = None
        if self._stopped is None:
            failure = run_hidden(hidden, self._world.aws, self._fetch)
        cell.source = visible
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = original
        if failure is not None:
            message = str(failure) or type(failure).__name__
            cell.outputs = [error_output(type(failure).__name__, message)] + list(cell.get("outputs", []))
        return cell, resources


class RestoreCellMetadata(NbGraderPreprocessor):
    """Before nbgrader's own checks: every cell's nbgrader metadata comes from the gradebook, not
    from the submission. A learner who marks a solution cell as graded, raises a cell's points or
    invents a grade id gets the lab's own metadata back (nbgrader itself would stop at such a cell
    and drop the whole submission)."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook, MissingEntry

        info = resources.get("nbgrader", {})
        try:
            with Gradebook(info["db_url"]) as gb:
                record = gb.find_notebook(info["notebook"], info["assignment"])
                known = {c.name: c.locked for c in record.source_cells}
                points = {c.name: c.max_score for c in record.grade_cells}
                solutions = {c.name for c in record.solution_cells}
                tasks = {c.name for c in record.task_cells}
        except (KeyError, MissingEntry):
            return nb, resources
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta is None:
                continue
            name = meta.get("grade_id") if isinstance(meta, dict) else None
            if name not in known:
                del cell.metadata["nbgrader"]
                continue
            restored = {"grade_id": name, "schema_version": 3, "locked": known[name],
                        "solution": name in solutions, "grade": name in points, "task": name in tasks}
            if name in points:
                restored["points"] = points[name]
            cell.metadata["nbgrader"] = restored
        return nb, resources


class LimitOutputSize(NbGraderPreprocessor):
    """Truncate each cell's text output to ``max_chars`` characters (streams and text data)."""

    max_chars = Integer(20000, help="Characters of output kept per cell (-1: no limit).").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or self.max_chars < 0:
            return cell, resources
        budget, dropped = self.max_chars, 0
        for output in cell.outputs:
            if output.output_type == "stream":
                texts = [("text", output)]
            elif output.output_type in ("display_data", "execute_result"):
                texts = [(k, output.data) for k, v in output.get("data", {}).items() if isinstance(v, str)]
            else:
                continue
            for key, holder in texts:
                text = holder[key]
                if len(text) > budget:
                    dropped += len(text) - budget
                    holder[key] = text[:budget] + ("\n... output truncated by the grader ...\n"
                                                   if key in ("text", "text/plain") else "")
                    budget = 0
                else:
                    budget -= len(text)
        if dropped:
            NOTICES.append((cell_name(cell, index), f"{dropped:,} characters of output were cut "
                                                    f"(limit {self.max_chars:,} per cell)"))
        return cell, resources


class ScrubHiddenTracebacks(NbGraderPreprocessor):
    """In cells holding hidden tests, keep only ``Name: message`` of errors (no quoted source)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and HIDDEN_MARK in cell.source:
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
