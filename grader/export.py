"""``python -m grader export --format canvas|csv``: the gradebook's totals for a learning platform.

``csv``: one row per student, one column per lab (its score) and ``total``.
``canvas``: Canvas's gradebook import format: the columns ``Student, ID, SIS User ID, SIS Login ID,
Section`` then one column per assignment, and a ``Points Possible`` row under the header. Canvas
matches an assignment column by its header: ``Name (id)`` updates the Canvas assignment with that
id (``--canvas-id LAB=ID``), a plain name creates a new assignment on import. Students are matched
by ``SIS User ID``: the nbgrader student id, which should be the roster's SIS id. A lab a student
did not submit is left blank (Canvas leaves that grade as it is).
"""

from __future__ import annotations

import csv
from pathlib import Path

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def gradebook_table(root: Path) -> tuple[list[str], dict[str, float], list[dict]]:
    """Labs (sorted), each lab's maximum, and one ``{id, first, last, scores: {lab: score}}`` per student."""
    from nbgrader.api import Gradebook, MissingEntry

    from grader.autograde import db_url

    with Gradebook(db_url(root)) as gb:
        labs = sorted(a.name for a in gb.assignments)
        maxima = {lab: gb.find_assignment(lab).max_score for lab in labs}
        students = []
        for student in sorted(gb.students, key=lambda s: s.id):
            scores = {}
            for lab in labs:
                try:
                    scores[lab] = gb.find_submission(lab, student.id).score
                except MissingEntry:
                    continue
            students.append({"id": student.id, "first": student.first_name or "",
                             "last": student.last_name or "", "scores": scores})
    return labs, maxima, students


def _num(value) -> str:
    return "" if value is None else f"{value:g}"


def export(root: Path, fmt: str = "csv", target: Path | None = None,
           canvas_ids: dict[str, str] | None = None, section: str = "") -> Path:
    """Write the export; return its path (default ``grades-canvas.csv`` / ``grades-by-lab.csv``)."""
    labs, maxima, students = gradebook_table(root)
    if fmt == "canvas":
        target = target or Path(root) / "grades-canvas.csv"
        ids = canvas_ids or {}
        headers = [f"{lab} ({ids[lab]})" if lab in ids else lab for lab in labs]
        with open(target, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(CANVAS_COLUMNS + headers)
            out.writerow(["Points Possible", "", "", "", ""] + [_num(maxima[lab]) for lab in labs])
            for s in students:
                name = ", ".join(p for p in (s["last"], s["first"]) if p) or s["id"]
                out.writerow([name, "", s["id"], "", section] + [_num(s["scores"].get(lab)) for lab in labs])
        return target
    if fmt == "csv":
        target = target or Path(root) / "grades-by-lab.csv"
        with open(target, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["student"] + labs + ["total"])
            for s in students:
                total = sum(v for v in s["scores"].values() if v is not None)
                out.writerow([s["id"]] + [_num(s["scores"].get(lab)) for lab in labs] + [_num(total)])
        return target
    raise SystemExit(f"unknown export format {fmt!r} (canvas or csv)")
