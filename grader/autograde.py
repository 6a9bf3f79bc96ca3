"""``python -m grader autograde LAB [--jobs N]``: nbgrader autograde over submitted/, in parallel,
safely, then the grades CSV and feedback.

Layout (nbgrader's): ``submitted/<student>/<LAB>/<LAB>.ipynb`` in, ``autograded/…``, ``feedback/…``,
``gradebook.db`` and ``grades.csv`` out, plus ``autograded/<LAB>-report.csv`` with every
submission's score, status, time and the reasons for lost points.

How the batch stays safe and alive:
- N long-lived worker processes (grader.worker) each run nbgrader's Autograde in-process for one
  submission at a time, sharing the SQLite gradebook (with a lock timeout).
- Every kernel runs in its submission's sandbox (grader.sandbox: own mount, pid and network
  namespaces, rlimits) with its own local AWS outside it; hidden checks run in the worker
  (grader.preprocessors.SandboxedExecute). Without bubblewrap, grading refuses unless
  ``unsandboxed=True`` (a trusted class), and every report row then says so.
- Inside a notebook, GuardedExecute (grader.preprocessors) enforces the per-cell and per-submission
  limits and survives kernels that die or ignore interrupts.
- Outside, the parent gives each submission a wall-clock limit; a worker that overruns is killed
  with every process it started, the submission gets 0 with the reason, and a fresh worker carries on.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import nbformat

from grader.course import api, grading_env, kill_marked, load_config

MISSING_NOTE = "was missing from the submission"
STARTED_TOKENS: list[str] = []  # every worker token of this process (tests check none survive)


def submissions(root: Path, lab: str) -> list[str]:
    """Student ids with a ``submitted/<student>/<LAB>`` folder."""
    base = Path(root) / "submitted"
    return sorted(p.parent.name for p in base.glob(f"*/{lab}") if p.is_dir()) if base.is_dir() else []


def db_url(root: Path) -> str:
    return load_config(root).CourseDirectory.db_url


def register(root: Path, lab: str) -> None:
    """Record the lab's source cells (checksums, hidden tests) in the course gradebook, as
    ``nbgrader generate_assignment`` does, without touching the committed labs/ folder."""
    with tempfile.TemporaryDirectory(prefix="grader-register-") as tmp:
        result = api(root, CourseDirectory__release_directory=tmp).generate_assignment(lab, force=True)
    if not result["success"]:
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(db_url(root)) as gb:  # already registered with submissions: keep going
            try:
                gb.find_assignment(lab)
                return
            except MissingEntry:
                pass
        raise RuntimeError(f"cannot register {lab} in the gradebook:\n{result.get('log', '')}")


def scores(root: Path, lab: str, student: str) -> dict:
    """The submission's total and maximum from the gradebook (None when it has no grades)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url(root)) as gb:
        try:
            submission = gb.find_submission(lab, student)
        except MissingEntry:
            return {"score": None, "max_score": gb.find_assignment(lab).max_score}
        return {"score": submission.score, "max_score": submission.max_score}


def reasons_from_notebooks(root: Path, lab: str, student: str, log: str = "") -> list[str]:
    """Learner-facing reasons read from the autograded notebooks: the error of each failed graded
    cell (the check's message), and cells restored because the learner deleted them."""
    reasons = []
    for path in sorted((Path(root) / "autograded" / student / lab).glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"{path.name}: unreadable autograded notebook ({exc})")
            continue
        own_error = None  # the first error in the learner's own cells since the last graded cell
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            name = meta.get("grade_id", cell.get("id", "?"))
            if MISSING_NOTE in cell.get("source", ""):
                reasons.append(f"{name}: deleted from the submission; restored from the lab and run")
            if cell.cell_type != "code":
                continue
            if not meta.get("grade"):
                first = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
                if first is not None and own_error is None and first.get("ename") != "NotRun":
                    own_error = f"{name}: {first.get('ename')}: {_first_line(first.get('evalue'))}"
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    reason = (f"{name} (-{meta.get('points', 0):g}): {output.get('ename')}: "
                              f"{_first_line(output.get('evalue'))}")
                    if own_error:
                        reason += f" [first error in your own cell {own_error}]"
                    reasons.append(reason)
                    break
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    reasons.append(f"{name} (-{meta.get('points', 0):g}): the cell wrote to stderr")
                    break
            own_error = None
    return reasons


def _first_line(text) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:300] if lines else ""


_db_lock = threading.Lock()


def give_zero(root: Path, lab: str, student: str) -> None:
    """Record 0 for every graded cell of a submission that could not be graded."""
    from nbgrader.api import Gradebook, MissingEntry

    with _db_lock, Gradebook(db_url(root)) as gb:
        gb.update_or_create_student(student)
        try:
            submission = gb.find_submission(lab, student)
        except MissingEntry:
            submission = gb.add_submission(lab, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.manual_score = None
                grade.needs_manual_grade = False
        gb.db.commit()


class Worker:
    """One grading worker process (see grader.worker) and the token marking all it starts."""

    def __init__(self, root: Path, lab: str, overrides: dict, log):
        self.token = uuid.uuid4().hex
        STARTED_TOKENS.append(self.token)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader.worker", str(root), lab, json.dumps(overrides)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=root,
            env=grading_env(self.token), start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        if self._next(180) is None:
            self.kill()
            raise RuntimeError("a grading worker did not start (see the grading log)")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, timeout: float):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        return json.loads(line) if line else None

    def grade(self, student: str, limit: float) -> dict | None:
        """The worker's answer for ``student``, or None if it overran ``limit`` seconds or died."""
        try:
            self.proc.stdin.write(student + "\n")
            self.proc.stdin.flush()
        except OSError:
            return None
        return self._next(limit)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self):
        kill_marked(self.token)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def autograde(root: Path, lab: str, *, jobs: int | None = None, students: list[str] | None = None,
              cell_timeout: int | None = None, time_limit: int | None = None, slack: float = 60,
              wall_limit: float | None = None, feedback: bool = True, export: bool = True,
              quiet: bool = False, unsandboxed: bool = False) -> list[dict]:
    """Grade every submission of ``lab`` under ``root``; return one result dict per submission.

    ``time_limit`` is the notebook budget (GuardedExecute); the parent's hard wall-clock limit per
    submission is ``time_limit + slack`` (kernel start, the gradebook, nbgrader's own work), unless
    ``wall_limit`` sets it directly."""
    root = Path(root).resolve()
    jobs = max(1, jobs or os.cpu_count() or 1)
    present = submissions(root, lab)
    todo_ids = students if students is not None else present
    unknown = sorted(set(todo_ids) - set(present))
    if unknown:
        raise SystemExit(f"no submission of {lab} for: {', '.join(unknown)} (expected "
                         f"submitted/<student>/{lab}/ under {root})")
    from grader import sandbox

    overrides = {}
    if unsandboxed:
        overrides["SandboxedExecute__sandbox"] = False
    elif sandbox.unavailable():
        raise SystemExit(f"refusing to grade: no sandbox for graded code on this machine: "
                         f"{sandbox.unavailable()}.\nFor a class you trust, grade without it: "
                         "python -m grader autograde LAB --unsandboxed (every report row will say so)")
    if cell_timeout:
        overrides["Execute__timeout"] = overrides["GuardedExecute__timeout"] = int(cell_timeout)
    if time_limit:
        overrides["GuardedExecute__submission_timeout"] = int(time_limit)
    config = load_config(root, **overrides)
    budget = int(config.GuardedExecute.get("submission_timeout", 1800))
    wall = wall_limit or budget + slack
    register(root, lab)

    todo: queue.Queue = queue.Queue()
    for student in todo_ids:
        todo.put(student)
    results: list[dict] = []
    log_path = root / "autograded" / f"{lab}-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def slot(log):
        worker = None
        while True:
            try:
                student = todo.get_nowait()
            except queue.Empty:
                break
            t0 = time.monotonic()
            answer = None
            try:
                if worker is None:
                    worker = Worker(root, lab, overrides, log)
                answer = worker.grade(student, wall)
            except Exception as exc:  # noqa: BLE001 - the batch goes on
                answer = {"student": student, "ok": False, "reasons": [f"grader error: {exc}"]}
            if answer is None or not answer.get("ok") or answer.get("score") is None:
                if answer is None:
                    reason = (f"stopped: no result within the {wall:g} s wall-clock limit per submission "
                              "(or the grading worker died)")
                    answer = {"student": student, "ok": False, "reasons": [reason]}
                    if worker is not None:
                        worker.kill()
                        worker = None
                shutil.rmtree(root / "autograded" / student / lab, ignore_errors=True)
                give_zero(root, lab, student)
                answer.update(scores(root, lab, student))
                answer["status"] = "zero (not gradable)"
            else:
                answer["status"] = "graded" if answer.get("ok") else "graded with errors"
            if unsandboxed:
                answer["status"] += " UNSANDBOXED"
            answer.setdefault("seconds", round(time.monotonic() - t0, 2))
            results.append(answer)
            if not quiet:
                print(f"  {student}: {fmt_score(answer)} ({answer['seconds']:.1f} s) {answer['status']}",
                      flush=True)
        if worker is not None:
            worker.close()

    with open(log_path, "a") as log:
        slots = min(jobs, max(1, len(todo_ids)))
        threads = [threading.Thread(target=slot, args=(log,)) for _ in range(slots)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    results.sort(key=lambda r: r["student"])
    elapsed = time.monotonic() - started
    write_report(root / "autograded" / f"{lab}-report.csv", results)
    if export:
        export_grades(root)
    if feedback and results:
        generate_feedback(root, lab)
    if not quiet:
        print(table(results))
        print(f"{len(results)} submission(s) of {lab} graded in {elapsed:.1f} s with {jobs} job(s); "
              f"reasons in autograded/{lab}-report.csv")
    return results


def fmt_score(result: dict) -> str:
    score, top = result.get("score"), result.get("max_score")
    return f"{score:g}/{top:g}" if score is not None and top is not None else "-"


def table(results: list[dict]) -> str:
    rows = [("student", "score", "status", "time", "reasons")]
    rows += [(r["student"], fmt_score(r), r.get("status", ""), f"{r.get('seconds', 0):.1f}s",
              "; ".join(r.get("reasons", []))[:100]) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]
                     for row in rows)


def write_report(path: Path, results: list[dict]) -> None:
    """Write (or, when only some students were regraded, update) the lab's grading report."""
    fields = ["student", "score", "max_score", "status", "seconds", "reasons", "notices"]
    rows = {}
    if path.exists():
        with open(path, newline="") as handle:
            rows = {row["student"]: row for row in csv.DictReader(handle)}
    for r in results:
        rows[r["student"]] = {"student": r["student"], "score": r.get("score"),
                              "max_score": r.get("max_score"), "status": r.get("status"),
                              "seconds": r.get("seconds"), "reasons": " | ".join(r.get("reasons", [])),
                              "notices": " | ".join(r.get("notices", []))}
    with open(path, "w", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=fields)
        out.writeheader()
        for student in sorted(rows):
            out.writerow(rows[student])


def export_grades(root: Path) -> Path:
    """``nbgrader export`` (CSV plugin) of the whole gradebook to ``root/grades.csv``."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    target = Path(root) / "grades.csv"
    with Gradebook(db_url(root)) as gb:
        CsvExportPlugin(to=str(target)).export(gb)
    return target


def generate_feedback(root: Path, lab: str) -> None:
    """``nbgrader generate_feedback`` for every autograded submission of ``lab``."""
    result = api(root).generate_feedback(lab, force=True)
    if not result["success"]:
        print(f"warning: feedback generation for {lab} reported errors:\n{result.get('log', '')[-2000:]}",
              file=sys.stderr)


__all__ = ["autograde", "submissions", "register", "export_grades", "generate_feedback"]
