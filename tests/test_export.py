"""``python -m grader export``: the Canvas gradebook import CSV and the generic CSV, from a gradebook
built directly with nbgrader's API (two labs, three students, one lab not submitted by one)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grader.course import ensure_venv_on_path
from grader.export import CANVAS_COLUMNS, export

ensure_venv_on_path()  # nbgrader runs alembic from PATH

LABS = {"01-alarms": {"a": 6, "b": 4}, "02-lifecycle": {"c": 10}}
SCORES = {("ada", "01-alarms"): {"a": 6, "b": 0}, ("ada", "02-lifecycle"): {"c": 10},
          ("bob", "01-alarms"): {"a": 6, "b": 4},
          ("cy", "01-alarms"): {"a": 0, "b": 0}, ("cy", "02-lifecycle"): {"c": 5}}


pytestmark = pytest.mark.slow  # nbgrader's gradebook start-up (alembic) is slow on a loaded machine


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("export")
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        for lab, cells in LABS.items():
            gb.add_assignment(lab)
            gb.add_notebook(lab, lab)
            for name, points in cells.items():
                gb.add_grade_cell(name, lab, lab, max_score=points, cell_type="code")
        gb.add_student("ada", first_name="Ada", last_name="Lovelace")
        gb.add_student("bob")
        gb.add_student("cy", first_name="Cy", last_name="Young")
        for (student, lab), got in SCORES.items():
            submission = gb.add_submission(lab, student)
            for grade in submission.notebooks[0].grades:
                grade.auto_score = got[grade.name]
        gb.db.commit()
    return tmp_path


def read(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_generic_csv_has_one_row_per_student_one_column_per_lab_and_the_total(course):
    rows = read(export(course, "csv"))
    assert rows == [["student", "01-alarms", "02-lifecycle", "total"],
                    ["ada", "6", "10", "16"], ["bob", "10", "", "10"], ["cy", "0", "5", "5"]]


def test_canvas_csv_is_canvas_gradebook_import_format(course):
    rows = read(export(course, "canvas", canvas_ids={"02-lifecycle": "4417"}, section="Spring"))
    assert rows[0] == CANVAS_COLUMNS + ["01-alarms", "02-lifecycle (4417)"]
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", "10"]
    assert rows[2:] == [["Lovelace, Ada", "", "ada", "", "Spring", "6", "10"],
                        ["bob", "", "bob", "", "Spring", "10", ""],  # no name: the id; not submitted: blank
                        ["Young, Cy", "", "cy", "", "Spring", "0", "5"]]


def test_cli_writes_both_formats(course):
    for fmt, name in (("canvas", "grades-canvas.csv"), ("csv", "grades-by-lab.csv")):
        done = subprocess.run([sys.executable, "-m", "grader", "--root", str(course), "export", "--format", fmt],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert str(course / name) in done.stdout
        assert read(course / name)[0][0] == ("Student" if fmt == "canvas" else "student")
    done = subprocess.run([sys.executable, "-m", "grader", "--root", str(course), "export", "--format", "pdf"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "invalid choice" in done.stderr


def test_cli_refuses_a_canvas_id_without_a_lab(course):
    done = subprocess.run([sys.executable, "-m", "grader", "--root", str(course), "export", "--format", "canvas",
                           "--canvas-id", "4417"], capture_output=True, text=True)
    assert done.returncode == 2 and "expected LAB=ID" in done.stderr
