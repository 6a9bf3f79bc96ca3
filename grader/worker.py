"""The unit of work of a grading batch: one sandboxed submission, graded wherever Dask runs it.

``grade_submission`` runs nbgrader autograde for one student in the worker's own process (nbgrader
and the grader are imported once per worker, not once per submission) and writes nothing that the
batch shares: the gradebook it writes is a private copy of the client's snapshot, the autograded
notebook goes to a private scratch folder, and both are returned as plain data. Only the client
(grader.autograde) writes the course's SQLite gradebook and ``autograded/``. A task that runs twice
(its worker was lost mid-batch and Dask re-ran it elsewhere) therefore leaves nothing half-written:
every attempt has its own scratch folder, removed when it ends, and the client keeps one answer per
student.

Each submission also has a wall-clock limit here: past it, every process the submission started
(its local AWS, its sandboxed kernel) is killed, the notebook stops, and the answer says why. (Should
nbgrader itself then hang in this process for another minute, the answer goes back anyway and the
stuck thread is left behind: a case not seen so far.)

Timings: ``answer["timings"]`` says where the submission's time went (see ``_Timings``); the report
CSV keeps them and benchmarks/bench_grading.py prints their means.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

WORKER_LOCK = threading.Lock()  # one submission at a time per process: EVENTS/NOTICES are global


def _descendants() -> set[int]:
    import psutil

    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def _kill(pids: set[int]) -> None:
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Timings:
    """Where one submission's time goes: the local AWS start, the lab's starting state, the kernel
    start, the notebook run and the rest (nbgrader's own steps), measured by wrapping the methods
    that do each (the grader's classes are unchanged). ``cells`` is the learner's cells and visible
    checks in the kernel, ``hidden_checks`` the checks run in this process, ``notebook`` the kernel's
    whole life (start, cells, shutdown; ``kernel_start_stop`` is what is left of it
    without the cells), ``nbgrader_other`` nbgrader's own steps (copying, metadata
    restore, gradebook, output limits)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 3)

    def wrap(self, owner, method: str, name: str):
        original = getattr(owner, method)
        timings = self

        if _is_coroutine(original):
            async def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    timings.add(name, time.perf_counter() - started)
        else:
            def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    timings.add(name, time.perf_counter() - started)
        setattr(owner, method, timed)
        return lambda: setattr(owner, method, original)


def _is_coroutine(function) -> bool:
    import inspect

    return inspect.iscoroutinefunction(function)


def _breakdown(timings: _Timings):
    """Install the timers; return the function that removes them."""
    from grader import outside
    from grader.preprocessors import GuardedExecute
    from grader.submission import SubmissionWorld

    undo = [timings.wrap(SubmissionWorld, "start", "local_aws_start"),
            timings.wrap(SubmissionWorld, "prepare", "lab_state"),
            timings.wrap(GuardedExecute, "preprocess_cell", "cells"),
            timings.wrap(outside, "run_hidden", "hidden_checks"),
            timings.wrap(GuardedExecute, "preprocess", "notebook")]
    return lambda: [u() for u in reversed(undo)]


def read_gradebook(db_path: Path, lab: str, student: str) -> dict | None:
    """The submission's rows of a gradebook as plain data (what the client writes back)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{db_path}") as gb:
        try:
            submission = gb.find_submission(lab, student)
        except MissingEntry:
            return None
        return {
            "timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
            "notebooks": {nb.name: {
                "flagged": nb.flagged,
                "late_submission_penalty": nb.late_submission_penalty,
                "grades": {g.name: {"auto_score": g.auto_score, "manual_score": g.manual_score,
                                    "extra_credit": g.extra_credit, "needs_manual_grade": g.needs_manual_grade,
                                    "max_score": g.max_score}
                           for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments},
            } for nb in submission.notebooks},
            "score": submission.score, "max_score": submission.max_score,
        }


def grade_submission(root: str, lab: str, student: str, snapshot: str, overrides: dict,
                     wall_limit: float) -> dict:
    """Grade ``student``'s ``lab`` and return its files, gradebook rows, reasons and timings."""
    from grader import preprocessors
    from grader.autograde import reasons_from_notebooks
    from grader.course import api, drop_credentials

    drop_credentials()
    os.environ["LABKIT_GRADING"] = "1"
    root_path = Path(root)
    with WORKER_LOCK:
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix=f"grader-task-{student}-"))
        timings = _Timings()
        undo = _breakdown(timings)
        try:
            db = scratch / "gradebook.db"
            shutil.copyfile(snapshot, db)
            nb_api = api(root_path, **overrides, CourseDirectory__db_url=f"sqlite:///{db}",
                         CourseDirectory__autograded_directory=str(scratch / "autograded"))
            preprocessors.EVENTS.clear()
            preprocessors.NOTICES.clear()
            before = _descendants()
            result: dict = {}

            def run():
                try:
                    result.update(nb_api.autograde(lab, student, force=True, create=True))
                except Exception as exc:  # noqa: BLE001 - one bad submission must not end the worker
                    result.update(success=False, error=f"{type(exc).__name__}: {exc}", log="")

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            thread.join(wall_limit)
            overran = thread.is_alive()
            if overran:  # kill what this submission started: its kernel fails, nbgrader returns
                _kill(_descendants() - before)
                thread.join(60)
            answer = {"student": student, "ok": bool(result.get("success")) and not overran,
                      "worker": os.getpid(), "host": os.uname().nodename,
                      "reasons": [f"{c}: {m}" for c, m in preprocessors.EVENTS],
                      "notices": [f"{c}: {m}" for c, m in preprocessors.NOTICES]}
            if overran:
                answer["stopped"] = (f"stopped: no result within the {wall_limit:g} s wall-clock limit "
                                     "per submission")
                return answer
            out_dir = scratch / "autograded" / student / lab
            answer["reasons"] += reasons_from_notebooks(out_dir)
            if not answer["ok"]:
                tail = (result.get("error") or result.get("log") or "").strip().splitlines()[-3:]
                answer["reasons"].append("nbgrader autograde failed: " + " | ".join(tail))
            answer["files"] = {str(p.relative_to(out_dir)): p.read_bytes()
                               for p in sorted(out_dir.rglob("*")) if p.is_file()} if out_dir.is_dir() else {}
            answer["gradebook"] = read_gradebook(db, lab, student) if answer["ok"] else None
            return answer
        finally:
            undo()
            shutil.rmtree(scratch, ignore_errors=True)
            total = time.perf_counter() - started
            timings.add("total", total)
            if "answer" in locals():
                parts = dict(timings.seconds)
                parts["kernel_start_stop"] = round(parts.get("notebook", 0.0) - parts.get("cells", 0.0)
                                                   - parts.get("hidden_checks", 0.0), 3)
                parts["nbgrader_other"] = round(total - sum(parts.get(k, 0.0) for k in (
                    "notebook", "local_aws_start", "lab_state")), 3)
                answer["timings"] = parts
                answer["seconds"] = round(total, 2)
