"""`python -m grader release`: labs/ must be a fresh, leak-free, output-free release of solutions/.

The first two tests cover every lab present in solutions/ and every committed notebook; the rest
exercise the release machinery on the grader's fixture lab, with good and bad states."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nbformat
import pytest

from grader.course import REPO, labs
from grader.release import leaks, outputs, release, stale
from grader_submissions import FIXTURE, LAB


def test_committed_labs_are_a_fresh_release_of_solutions():
    problems = []
    for lab in labs(REPO):
        problems += stale(REPO, lab)
        if (REPO / "labs" / lab).is_dir():
            problems += leaks(REPO / "labs" / lab)
    assert not problems, "labs/ is stale or leaks solutions — run `make release`:\n" + "\n".join(problems)


def test_no_committed_notebook_has_outputs():
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    problems = [f"{path}: {p}" for path in tracked if (REPO / path).exists() for p in outputs(REPO / path)]
    assert not problems, "notebooks must be committed without outputs:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The fixture course released once; tests get their own copy to modify."""
    root = tmp_path_factory.mktemp("released")
    shutil.copytree(FIXTURE / "solutions", root / "solutions")
    release(root)
    return root


@pytest.fixture()
def course(released, tmp_path):
    shutil.copytree(released, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_release_strips_solutions_and_hidden_tests_and_keeps_ids(course):
    source = nbformat.read(course / "solutions" / LAB / f"{LAB}.ipynb", as_version=4)
    released_path = course / "labs" / LAB / f"{LAB}.ipynb"
    released = nbformat.read(released_path, as_version=4)
    text = released_path.read_text()
    assert leaks(course / "labs" / LAB) == []
    assert [c.id for c in released.cells] == [c.id for c in source.cells]
    assert "put_object" not in text.split("task1-check")[0].split('"task1-solution"')[1]
    assert "raise NotImplementedError()" in text
    assert "grader.checks" not in text and "check_hello" not in text
    locked = {c.id: c.metadata["nbgrader"].get("locked") for c in released.cells if "nbgrader" in c.metadata}
    assert locked == {"task1-solution": False, "task1-check": True,
                      "task2-solution": False, "task2-check": True}
    copied = (course / "labs" / LAB / "README.txt").read_text()
    assert copied == (FIXTURE / "solutions" / LAB / "README.txt").read_text()
    assert stale(course, LAB) == []  # the release is deterministic


def test_stale_release_is_detected(course):
    path = course / "solutions" / LAB / f"{LAB}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nA new paragraph."
    nbformat.write(nb, path)
    (course / "solutions" / LAB / "extra.csv").write_text("a,b\n1,2\n")
    problems = stale(course, LAB)
    assert any(f"{LAB}.ipynb differs" in p for p in problems)
    assert any("extra.csv is missing" in p for p in problems)
    shutil.rmtree(course / "labs" / LAB)
    assert stale(course, LAB) == [f"labs/{LAB} is missing: run `make release`"]


def test_leaks_and_outputs_are_detected(course):
    path = course / "labs" / LAB / f"{LAB}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].source = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    nb.cells[4].source += "\n### BEGIN HIDDEN TESTS\nsample.check_hello(aws)\n### END HIDDEN TESTS"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nbformat.write(nb, path)
    problems = leaks(course / "labs" / LAB)
    assert any("BEGIN SOLUTION" in p for p in problems)
    assert any("BEGIN HIDDEN TESTS" in p for p in problems)
    assert any("cell setup has outputs" in p for p in problems)


def test_release_cli_one_lab_by_number(tmp_path):
    shutil.copytree(FIXTURE / "solutions", tmp_path / "solutions")
    done = subprocess.run([sys.executable, "-m", "grader", "--root", str(tmp_path), "release", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "released 1 lab(s)" in done.stdout
    assert json.loads((tmp_path / "labs" / LAB / f"{LAB}.ipynb").read_text())["nbformat_minor"] == 5
    bad = subprocess.run([sys.executable, "-m", "grader", "--root", str(tmp_path), "release", "42"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "no lab '42'" in bad.stderr
