"""grader.mutants without grading: edits fail loudly, catalogs are well-formed, scores are judged."""

from __future__ import annotations

import nbformat
import pytest

from grader.course import REPO
from grader.mutants import CatalogError, catalog_labs, graded_cells, judge, load_catalog, mutate

LAB = "01-billing-alarms"


def source():
    return nbformat.read(REPO / "solutions" / LAB / f"{LAB}.ipynb", as_version=4)


def test_replacement_applied_and_missing_old_text_fails_loudly():
    nb = mutate(source(), {"id": "x", "cell": "task2-solution",
                           "replace": [["Period=21600", "Period=3600"]]})
    cell = next(c for c in nb.cells if c.get("id") == "task2-solution")
    assert "Period=3600" in cell.source and "Period=21600" not in cell.source
    assert "Period=21600" in next(c for c in source().cells if c.get("id") == "task2-solution").source
    with pytest.raises(CatalogError, match="not found"):
        mutate(source(), {"id": "x", "cell": "task2-solution", "replace": [["Period=1", "Period=2"]]})
    with pytest.raises(CatalogError, match="no solution cell"):
        mutate(source(), {"id": "x", "cell": "task2-check", "source": "pass"})


def test_every_catalog_loads():
    for lab in catalog_labs(REPO):
        assert load_catalog(REPO, lab)


def test_judge_expected_scores_and_reason():
    cells = graded_cells(source())
    assert cells["task2-check"]["checks"] == ["check_alarm"]
    full = {name: cell["points"] for name, cell in cells.items()}
    mutant = {"id": "m", "kind": "mistake", "expect": {"task2-check": 0}, "reason": "maximum"}
    got = {**full, "task2-check": 0}
    assert judge(mutant, cells, got, ["task2-check (-3): AssertionError: use Maximum"])["ok"]
    assert not judge(mutant, cells, got, ["task2-check (-3): NameError"])["ok"]
    assert not judge(mutant, cells, full, ["Maximum"])["ok"]
    row = judge(mutant, cells, {**got, "task5-check": 0}, ["Maximum"])
    assert not row["ok"] and row["caught_by"] == ["check_alarm", "check_alarm_fired"]


def test_unknown_fields_are_refused(tmp_path):
    (tmp_path / "tests" / "mutants").mkdir(parents=True)
    (tmp_path / "tests" / "mutants" / "lab01.yaml").write_text(
        "mutants:\n  - {id: m, kind: mistake, cell: c, source: x, expect: {c: 0}, reason: r, new_pipeline: true}\n")
    with pytest.raises(CatalogError, match="unknown field.*new_pipeline"):
        load_catalog(tmp_path, "01-billing-alarms")
