"""``python -m grader mutants [LAB]``: prove a lab's hidden checks judge the work.

A catalog ``tests/mutants/labNN.yaml`` lists plausible submissions, each the official solution with
one solution cell edited: *mistakes* (wrong work, which must lose exactly the listed points, with a
reason naming the mistake) and *alternatives* (correct work written differently, which must keep
full marks). All mutants of a lab are graded in one batch through the real autograde pipeline in a
scratch course directory; the per-cell scores are read from its gradebook and compared with the
catalog. Every ``check_*`` function of ``grader/checks/labNN.py`` must be the one that catches at
least one mistake.

Catalog format::

    mutants:
      - id: topic-wrong-name          # also the scratch student id
        kind: mistake                 # or: alternative
        cell: task1-solution          # grade_id of the edited solution cell
        replace:                      # [old, new] pairs on that cell's source (old must occur) ...
          - ['Name=TOPIC', 'Name="billing"']
        # source: |                   # ... or the cell's full new source
        expect: {task1-check: 0}      # points of the cells that lose points; others: full marks
        reason: "billing-alerts"      # case-insensitive fragment of the reported reasons
        note: why a learner would do this (optional)
      - id: two-cells                 # several cells: edits: [{cell, replace | source}, ...]
        edits: [{cell: task4-solution, replace: [[old, new]]}]
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from grader.autograde import fmt_points
from grader.course import labs
from grader.selfcheck import scratch_course, stage_lab

KINDS = ("mistake", "alternative")
FIELDS = {"id", "kind", "cell", "replace", "source", "edits", "expect", "reason", "note"}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)


class CatalogError(Exception):
    """The catalog cannot be applied (unknown cell, an ``old`` text not found, a bad field)."""


def catalog_path(root: Path, lab: str) -> Path:
    return Path(root) / "tests" / "mutants" / f"lab{lab.split('-')[0]}.yaml"


def catalog_labs(root: Path, only: str | None = None) -> list[str]:
    """Lab ids (optionally only ``only``) that have a mutant catalog."""
    return [lab for lab in labs(root, only) if catalog_path(root, lab).exists()]


def load_catalog(root: Path, lab: str) -> list[dict]:
    path = catalog_path(root, lab)
    data = yaml.safe_load(path.read_text()) or {}
    mutants = data.get("mutants") if isinstance(data, dict) else None
    if not isinstance(mutants, list) or not mutants:
        raise CatalogError(f"{path}: expected a top-level 'mutants:' list")
    seen = set()
    for m in mutants:
        where = f"{path.name}: mutant {m.get('id', '?')!r}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", str(m.get("id", ""))):
            raise CatalogError(f"{where}: id must be lower-case letters, digits and '-'")
        if m["id"] in seen:
            raise CatalogError(f"{where}: duplicate id")
        seen.add(m["id"])
        unknown = sorted(set(m) - FIELDS)
        if unknown:
            raise CatalogError(f"{where}: unknown field(s) {unknown} (every mutant is graded for real)")
        if m.get("kind") not in KINDS:
            raise CatalogError(f"{where}: kind must be one of {KINDS}")
        for edit in m.get("edits") or [m]:
            if not edit.get("cell"):
                raise CatalogError(f"{where}: 'cell' (a solution cell's grade_id) is required")
            if ("source" in edit) == ("replace" in edit):
                raise CatalogError(f"{where}: give exactly one of 'source' or 'replace'")
        m.setdefault("expect", {})
        if m["kind"] == "mistake" and not (m["expect"] and m.get("reason")):
            raise CatalogError(f"{where}: a mistake needs 'expect' (cells losing points) and 'reason'")
        if m["kind"] == "alternative" and m["expect"]:
            raise CatalogError(f"{where}: an alternative keeps full marks: no 'expect'")
    return mutants


def cells_by_id(nb) -> dict:
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def mutate(nb, mutant: dict):
    """A copy of ``nb`` with the mutant's edit(s) applied to its solution cell(s) (fails loudly)."""
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)
    for edit in mutant.get("edits") or [mutant]:
        edit_cell(nb, {"id": mutant["id"], **edit})
    return nb


def edit_cell(nb, mutant: dict) -> None:
    cell = cells_by_id(nb).get(mutant["cell"])
    if cell is None or not cell.metadata["nbgrader"].get("solution"):
        raise CatalogError(f"mutant {mutant['id']!r}: no solution cell with grade_id {mutant['cell']!r}")
    if "source" in mutant:
        cell.source = mutant["source"].rstrip("\n")
        return
    source = cell.source
    for pair in mutant["replace"]:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise CatalogError(f"mutant {mutant['id']!r}: each replacement is a list [old, new]")
        old, new = pair
        if old not in source:
            raise CatalogError(f"mutant {mutant['id']!r}: {old!r} not found in cell {mutant['cell']!r}")
        source = source.replace(old, new)
    cell.source = source


def graded_cells(nb) -> dict[str, dict]:
    """grade_id → {points, checks: the check_* functions its hidden block calls}."""
    out = {}
    for grade_id, cell in cells_by_id(nb).items():
        meta = cell.metadata["nbgrader"]
        if meta.get("grade"):
            hidden = "\n".join(HIDDEN.findall(cell.source))
            out[grade_id] = {"points": float(meta.get("points", 0)),
                             "checks": sorted(set(re.findall(r"\b(check_\w+)\s*\(", hidden)))}
    return out


def lab_checks(root: Path, lab: str) -> list[str]:
    """The public ``check_*`` functions defined in grader/checks/labNN.py."""
    path = Path(root) / "grader" / "checks" / f"lab{lab.split('-')[0]}.py"
    if not path.exists():
        return []
    tree = ast.parse(path.read_text())
    return sorted(node.name for node in tree.body
                  if isinstance(node, ast.FunctionDef) and node.name.startswith("check_"))


def cell_scores(course: Path, lab: str, student: str) -> dict[str, float | None]:
    """grade_id → score of one submission, from the scratch gradebook (grader.autograde's reader)."""
    from grader import autograde

    return {name: got for name, (got, _) in autograde.cell_scores(course, lab, student).items()}


def judge(mutant: dict, cells: dict, got: dict, reasons: list[str]) -> dict:
    expected = {name: float(mutant["expect"].get(name, cell["points"])) for name, cell in cells.items()}
    unknown = sorted(set(mutant["expect"]) - set(cells))
    scores_ok = not unknown and all(got.get(name) == expected[name] for name in cells)
    text = " | ".join(reasons)
    fragment = mutant.get("reason")
    found = fragment.lower() in text.lower() if fragment else None
    lost = [name for name in cells if got.get(name) is not None and got[name] < cells[name]["points"]]
    return {"id": mutant["id"], "kind": mutant["kind"], "expected": expected, "got": got, "unknown": unknown,
            "reason": fragment, "found": found, "reasons": reasons,
            "expect_cells": sorted(mutant["expect"]),
            "caught_by": sorted({c for name in lost for c in cells[name]["checks"]}),
            "ok": scores_ok and found is not False}


def one_per_check(mutants: list[dict], cells: dict) -> list[dict]:
    """The smallest catalog slice the test suite grades: for every check the first mistake that
    targets it, and the first valid alternative (``make mutants`` grades them all)."""
    chosen: list[dict] = []
    for check in sorted({c for cell in cells.values() for c in cell["checks"]}):
        for m in mutants:
            if m["kind"] == "mistake" and any(check in cells.get(n, {}).get("checks", []) for n in m["expect"]):
                if m not in chosen:
                    chosen.append(m)
                break
    chosen += [m for m in mutants if m["kind"] == "alternative"][:1]
    return chosen


def run_lab(root: Path, lab: str, *, jobs: int | None = None, scratch: Path | None = None,
            quiet: bool = False, per_check: bool = False) -> dict:
    """Grade every mutant of ``lab`` (``per_check``: one per check, see one_per_check); return
    {lab, rows, uncovered, checks, seconds, ok}."""
    from grader.autograde import autograde

    root = Path(root).resolve()
    t0 = time.monotonic()
    mutants = load_catalog(root, lab)
    source = nbformat.read(root / "solutions" / lab / f"{lab}.ipynb", as_version=4)
    cells = graded_cells(source)
    checks = lab_checks(root, lab)
    named = {c for m in mutants if m["kind"] == "mistake" for name in m["expect"]
             for c in cells.get(name, {}).get("checks", [])}
    if per_check:
        mutants = one_per_check(mutants, cells)
    with tempfile.TemporaryDirectory(prefix="grader-mutants-") as tmp:
        course = scratch_course(root, Path(scratch or tmp))
        stage_lab(root, course, lab)
        for m in mutants:
            folder = course / "submitted" / m["id"] / lab
            shutil.copytree(root / "solutions" / lab, folder, dirs_exist_ok=True)
            nbformat.write(mutate(source, m), folder / f"{lab}.ipynb")
        results = {r["student"]: r for r in autograde(
            course, lab, jobs=jobs, students=[m["id"] for m in mutants],
            feedback=False, export=False, quiet=True)}
        rows = []
        for m in mutants:
            result = results.get(m["id"], {})
            row = judge(m, cells, cell_scores(course, lab, m["id"]), result.get("reasons", []))
            row["status"], row["seconds"] = result.get("status"), result.get("seconds", 0)
            rows.append(row)
            if not quiet:
                print(render_row(row), flush=True)
    caught = {c for row in rows if row["kind"] == "mistake" for c in row["caught_by"]}
    uncovered = [c for c in checks if c not in named or c not in caught]
    report = {"lab": lab, "rows": rows, "checks": checks, "covered": sorted(caught & set(checks)),
              "uncovered": uncovered, "seconds": time.monotonic() - t0,
              "ok": all(row["ok"] for row in rows) and not uncovered}
    if not quiet:
        print(render_summary(report), flush=True)
    return report




def render_row(row: dict) -> str:
    """One line: verdict, id, kind, per-cell expected→got where they differ (or the points lost)."""
    diffs = [f"{name} {fmt_points(want)}→{fmt_points(row['got'].get(name))}"
             for name, want in row["expected"].items() if row["got"].get(name) != want]
    lost = [f"{name}={fmt_points(row['got'].get(name))}" for name in row["expected"]
            if row["got"].get(name) is not None and name in row.get("expect_cells", ())]
    scores = ("expected→got " + ", ".join(diffs)) if diffs else \
        ("as expected" + (f" ({', '.join(lost)})" if lost else " (full marks)"))
    reason = ("" if row["found"] is None else
              f"; reason {row['reason']!r} {'found' if row['found'] else 'NOT FOUND'}")
    extra = f"; unknown cells {row['unknown']}" if row["unknown"] else ""
    verdict = "OK  " if row["ok"] else "FAIL"
    line = f"  {verdict} {row['id']:<34} {row['kind']:<11} {scores}{reason}{extra}"
    if not row["ok"] and row["reasons"]:
        line += "\n         reasons: " + " | ".join(row["reasons"])[:600]
    return line


def render_summary(report: dict) -> str:
    rows = report["rows"]
    mistakes = [r for r in rows if r["kind"] == "mistake"]
    alternatives = [r for r in rows if r["kind"] == "alternative"]
    lines = [f"{report['lab']}: mistakes {sum(r['ok'] for r in mistakes)}/{len(mistakes)} as expected, "
             f"alternatives {sum(r['ok'] for r in alternatives)}/{len(alternatives)} at full marks, "
             f"checks covered {len(report['covered'])}/{len(report['checks'])} "
             f"({report['seconds']:.0f} s) {'PASS' if report['ok'] else 'FAIL'}"]
    for check in report["uncovered"]:
        lines.append(f"  FAIL {check}: caught no mistake (every check_* must catch at least one)")
    return "\n".join(lines)


def mutants(root: Path, lab: str | None = None, *, jobs: int | None = None, quiet: bool = False) -> bool:
    """Run the catalogs of ``lab`` (or of every lab with one); True when all are as expected."""
    chosen = catalog_labs(root, lab)
    if not chosen:
        print(f"no mutant catalog (tests/mutants/labNN.yaml) for {lab or 'any lab'} under {root}")
        return False
    reports = []
    for name in chosen:
        if not quiet:
            print(f"{name}: grading {len(load_catalog(root, name))} mutants", flush=True)
        reports.append(run_lab(root, name, jobs=jobs, quiet=quiet))
    if not quiet and len(reports) > 1:
        print("\n".join(render_summary(r).splitlines()[0] for r in reports))
    return all(r["ok"] for r in reports)
