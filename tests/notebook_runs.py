"""Helpers for lab notebook tests: run a solution twice in one kernel, and run its blank version."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import nbformat

from conftest import execute_notebook

SOLUTION = re.compile(r"### BEGIN SOLUTION.*?### END SOLUTION", re.S)


def _copy_lab(path: Path, tmp: Path) -> Path:
    """Copy the lab folder (notebook + its files) so runs never write into the repository."""
    target = tmp / path.parent.name
    shutil.copytree(path.parent, target, dirs_exist_ok=True)
    return target / path.name


def run_twice(path: Path, tmp: Path):
    """Execute the notebook's cells twice in a row in ONE kernel (idempotency: the second pass
    meets the state the first left) and return the executed notebook."""
    target = _copy_lab(path, tmp)
    nb = nbformat.read(target, as_version=4)
    cells = []
    for run in (1, 2):
        for cell in nb.cells:
            twin = copy.deepcopy(cell)
            twin.id = f"{cell.id}-run{run}"
            cells.append(twin)
    nb.cells = cells
    nbformat.write(nb, target)
    return execute_notebook(target)


def run_blank(path: Path, tmp: Path):
    """Execute the released form: every solution region replaced by NotImplementedError."""
    target = _copy_lab(path, tmp)
    nb = nbformat.read(target, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = SOLUTION.sub("raise NotImplementedError()", cell.source)
    nbformat.write(nb, target)
    return execute_notebook(target, allow_errors=True)


def graded_cells(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def has_error(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))
