"""``python -m grader autograde LAB [--jobs N]``: nbgrader autograde over submitted/, in parallel,
safely, then the grades CSV and feedback.

Layout (nbgrader's): ``submitted/<student>/<LAB>/<LAB>.ipynb`` in, ``autograded/…``, ``feedback/…``,
``gradebook.db`` and ``grades.csv`` out, plus ``autograded/<LAB>-report.csv`` with every
submission's score, status, time and the reasons for lost points.

How the batch stays safe and alive:
- The batch runs on Dask (grader.cluster): a local cluster of N worker processes, or an existing
  cluster. One task = one submission (grader.worker.grade_submission), graded inside its sandbox
  into private scratch space; the task returns the autograded notebook, per-cell scores, reasons
  and timings, and only this client writes the SQLite gradebook, ``autograded/`` and the reports.
  A worker lost mid-batch loses no submission: Dask runs its task again elsewhere.
- Every kernel runs in its submission's sandbox (grader.sandbox: own mount, pid and network
  namespaces, rlimits) with its own local AWS outside it; hidden checks run in the worker
  (grader.preprocessors.SandboxedExecute). Without bubblewrap, grading refuses unless
  ``unsandboxed=True`` (a trusted class), and every report row then says so.
- Inside a notebook, GuardedExecute (grader.preprocessors) enforces the per-cell and per-submission
  limits and survives kernels that die or ignore interrupts.
- Each task has a wall-clock limit; past it, every process the submission started is killed and
  the submission gets 0 with the reason.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat

from grader.course import api, load_config

MISSING_NOTE = "was missing from the submission"
STARTED_TOKENS: list[str] = []  # every local cluster token of this process (tests check none survive)


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


def reasons_from_notebooks(folder: Path) -> list[str]:
    """Learner-facing reasons read from one submission's autograded notebooks: the error of each
    failed graded cell (the check's message), and cells restored because the learner deleted them."""
    reasons = []
    for path in sorted(Path(folder).glob("*.ipynb")):
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


def give_zero(root: Path, lab: str, student: str) -> None:
    """Record 0 for every graded cell of a submission that could not be graded."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url(root)) as gb:
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


def save_grades(root: Path, lab: str, student: str, rows: dict) -> None:
    """Write one graded submission's rows (grader.worker.read_gradebook) into the course gradebook:
    the client is its only writer."""
    from datetime import datetime

    from nbgrader.api import Gradebook

    with Gradebook(db_url(root)) as gb:
        gb.update_or_create_student(student)
        stamp = datetime.fromisoformat(rows["timestamp"]) if rows.get("timestamp") else None
        submission = gb.update_or_create_submission(lab, student, timestamp=stamp)
        for notebook in submission.notebooks:
            data = rows["notebooks"].get(notebook.name)
            if data is None:
                continue
            notebook.flagged = data["flagged"]
            notebook.late_submission_penalty = data["late_submission_penalty"]
            for grade in notebook.grades:
                if grade.name in data["grades"]:
                    for field in ("auto_score", "manual_score", "extra_credit", "needs_manual_grade"):
                        setattr(grade, field, data["grades"][grade.name][field])
            for comment in notebook.comments:
                if comment.name in data["comments"]:
                    comment.auto_comment = data["comments"][comment.name]
        gb.db.commit()


def snapshot_gradebook(root: Path, lab: str) -> Path:
    """A consistent copy of the gradebook for the tasks to start from (they never open the real one)."""
    import sqlite3

    target = Path(root) / "autograded" / ".grading" / f"{lab}-gradebook.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    source = sqlite3.connect(Path(root) / "gradebook.db")
    copy = sqlite3.connect(target)
    with copy:
        source.backup(copy)
    source.close()
    copy.close()
    return target


def record(root: Path, lab: str, answer: dict) -> dict:
    """Keep one task's answer: its autograded files and grades, or zero with the reason."""
    student = answer["student"]
    folder = root / "autograded" / student / lab
    shutil.rmtree(folder, ignore_errors=True)
    if answer.get("ok") and answer.get("gradebook"):
        for name, data in answer.pop("files", {}).items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        save_grades(root, lab, student, answer["gradebook"])
        answer["status"] = "graded"
    else:
        answer.pop("files", None)
        if answer.get("stopped"):
            answer["reasons"] = [answer["stopped"]] + answer.get("reasons", [])
        give_zero(root, lab, student)
        answer["status"] = "zero (not gradable)"
    answer.pop("gradebook", None)
    answer.update(scores(root, lab, student))
    answer["cells"] = cell_scores(root, lab, student)
    return answer


def cell_scores(root: Path, lab: str, student: str) -> dict[str, list]:
    """``{graded cell: [score, max]}`` of one submission, from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url(root)) as gb:
        try:
            submission = gb.find_submission(lab, student)
        except MissingEntry:
            return {}
        return {grade.name: [grade.score, grade.max_score]
                for notebook in submission.notebooks for grade in notebook.grades}


def autograde(root: Path, lab: str, *, jobs: int | None = None, students: list[str] | None = None,
              cell_timeout: int | None = None, time_limit: int | None = None, slack: float = 60,
              wall_limit: float | None = None, feedback: bool = True, export: bool = True,
              quiet: bool = False, unsandboxed: bool = False, scheduler: str | None = None,
              report: bool = True) -> list[dict]:
    """Grade every submission of ``lab`` under ``root`` on Dask; return one result dict per submission.

    ``time_limit`` is the notebook budget (GuardedExecute); the task's hard wall-clock limit per
    submission is ``time_limit + slack`` (kernel start, nbgrader's own work), unless ``wall_limit``
    sets it directly. ``scheduler`` (or ``DASK_SCHEDULER_ADDRESS``) sends the tasks to an existing
    cluster; otherwise a local cluster of ``jobs`` processes runs them (grader.cluster)."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    from tqdm import tqdm

    from grader.cluster import ALLOWED_FAILURES, grading_client
    from grader.worker import grade_submission

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
    snapshot = snapshot_gradebook(root, lab)
    results: dict[str, dict] = {}
    started = time.monotonic()
    batch = uuid.uuid4().hex[:8]
    try:
        with grading_client(min(jobs, max(1, len(todo_ids))), scheduler, quiet) as client:
            futures = {client.submit(grade_submission, str(root), lab, student, str(snapshot), overrides,
                                     wall, key=f"grade-{lab}-{student}-{batch}", pure=False): student
                       for student in todo_ids}
            bar = tqdm(total=len(futures), desc=f"grading {lab}", unit="submission", disable=quiet)
            for future in as_completed(futures):
                student = futures[future]
                try:
                    answer = future.result()
                except KilledWorker:
                    answer = {"student": student, "ok": False, "reasons": [
                        f"grader error: the grading worker died {ALLOWED_FAILURES} times while grading it"]}
                except Exception as exc:  # noqa: BLE001 - the batch goes on
                    answer = {"student": student, "ok": False,
                              "reasons": [f"grader error: {type(exc).__name__}: {exc}"]}
                answer = record(root, lab, answer)
                if unsandboxed:
                    answer["status"] += " UNSANDBOXED"
                answer.setdefault("seconds", 0.0)
                results[student] = answer
                bar.update()
                if not quiet:
                    bar.write(f"  {student}: {fmt_score(answer)} ({answer['seconds']:.1f} s) {answer['status']}")
            bar.close()
    finally:
        snapshot.unlink(missing_ok=True)
    ordered = [results[s] for s in sorted(results)]
    elapsed = time.monotonic() - started
    write_report(root / "autograded" / f"{lab}-report.csv", ordered)
    if export:
        export_grades(root)
    if feedback and ordered:
        generate_feedback(root, lab)
    if report:
        from grader.report import lab_report

        lab_report(root, lab)
    if not quiet:
        print(table(ordered))
        print(f"{len(ordered)} submission(s) of {lab} graded in {elapsed:.1f} s with {jobs} job(s); "
              f"reasons in autograded/{lab}-report.csv, figures in autograded/{lab}-report.html")
    return ordered


def fmt_points(value, missing: str = "-") -> str:
    """Points as nbgrader shows them (2, 0.5), or ``missing`` for none (a cell never graded)."""
    return missing if value is None else f"{value:g}"


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
    fields = ["student", "score", "max_score", "status", "seconds", "reasons", "notices", "cells", "timings"]
    rows = {}
    if path.exists():
        with open(path, newline="") as handle:
            rows = {row["student"]: row for row in csv.DictReader(handle)}
    for r in results:
        rows[r["student"]] = {"student": r["student"], "score": r.get("score"),
                              "max_score": r.get("max_score"), "status": r.get("status"),
                              "seconds": r.get("seconds"), "reasons": " | ".join(r.get("reasons", [])),
                              "notices": " | ".join(r.get("notices", [])),
                              "cells": "; ".join(f"{name}={fmt_points(got)}/{fmt_points(top)}" for name, (got, top)
                                                 in sorted(r.get("cells", {}).items())),
                              "timings": "; ".join(f"{k}={v:g}" for k, v in r.get("timings", {}).items())}
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
