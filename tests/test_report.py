"""The batch report (autograded/<LAB>-report.html) and the course page: for a graded batch of good,
wrong, blank and broken submissions every count on the page is the CSV's, and headless Chromium
renders both pages with their figures and without a JavaScript error or a failed request.

Without Chromium the browser test skips with a message, except under CI=true, where it fails."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

import grader_submissions as gs
from chromium import Chromium, SiteServer, find_binary
from grader.course import grading_env

pytestmark = pytest.mark.slow
BLANK = "# YOUR CODE HERE\nraise NotImplementedError()\n"


def blank():
    return gs._set(gs._set(gs._source(), "task1-solution", BLANK), "task2-solution", BLANK)


class Tables(HTMLParser):
    """Every ``<table class=X>``'s body rows (cell texts), and the texts of elements with an id."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: dict[str, str] = {}
        self._table = self._row = self._cell = self._id = None
        self._in_body = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("class", ""), [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""
        if tag == "span" and "id" in attrs:
            self._id, self.ids[attrs["id"]] = attrs["id"], ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "span":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._id is not None:
            self.ids[self._id] += data


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = gs.course(tmp_path_factory.mktemp("report"))
    for student, nb in {"good1": gs.good(), "good2": gs.good(), "wrong1": gs.wrong_content(),
                        "wrong2": gs.wrong_content(), "blank1": blank()}.items():
        gs.submit(root, student, nb)
    broken = gs.submit(root, "broken1", gs.good())
    broken.write_text("{ this is not a notebook")
    env = grading_env("")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    done = subprocess.run([sys.executable, "-m", "grader", "--root", str(root), "autograde", gs.LAB, "--jobs", "2",
                           "--cell-timeout", "60", "--time-limit", "180", "--no-feedback"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run([sys.executable, "-m", "grader", "--root", str(root), "report"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(root / "autograded" / f"{gs.LAB}-report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return root, rows


def test_the_report_counts_are_the_csv_counts(graded):
    root, rows = graded
    page = Tables((root / "autograded" / f"{gs.LAB}-report.html").read_text())
    by_student = {r["student"]: float(r["score"]) for r in rows}
    assert by_student == {"good1": 10, "good2": 10, "wrong1": 4, "wrong2": 4, "blank1": 0, "broken1": 0}
    # score distribution
    assert {float(s): int(n) for s, n in page.tables["scores"]} == dict(Counter(by_student.values()))
    assert int(page.ids["full-marks"]) == 2
    # not gradable: the broken notebook, and only it
    ungradable = [r["student"] for r in rows if r["status"].startswith("zero (not gradable)")]
    assert ungradable == ["broken1"]
    assert [row[0] for row in page.tables["ungradable"]] == ungradable == ["broken1"]
    assert int(page.ids["ungradable-count"]) == 1
    # pass rate per graded cell, from the CSV's per-cell scores
    passed = Counter()
    for r in rows:
        for part in r["cells"].split("; "):
            name, value = part.split("=")
            got, top = value.split("/")
            passed[name] += float(got) >= float(top)
    table = {row[0]: (int(row[2]), int(row[3])) for row in page.tables["cells"]}
    assert table == {name: (passed[name], len(rows)) for name in ("task1-check", "task2-check")}
    assert table["task1-check"] == (2, 6) and table["task2-check"] == (4, 6)
    # the most common reasons, with the number of submissions that gave each
    reasons = Counter(reason.split(" [first error in your own cell")[0].strip()
                      for r in rows for reason in set(filter(None, r["reasons"].split(" | "))))
    assert {row[0]: int(row[1]) for row in page.tables["reasons"]} == dict(reasons)
    hello = [n for reason, n in reasons.items() if "its content must be the text 'hello labs'" in reason]
    assert hello == [2]  # the two wrong submissions


def test_the_course_page_lists_the_lab(graded):
    root, rows = graded
    page = Tables((root / "autograded" / "course-report.html").read_text())
    [lab] = page.tables["labs"]
    assert lab[:3] == [gs.LAB, str(len(rows)), "2"]
    assert lab[5] == "1"  # not gradable


@pytest.fixture(scope="module")
def browser():
    binary = find_binary()
    if binary is None:
        message = "headless Chromium is not installed (Debian: apt-get install chromium); the browser test cannot run"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " — and under CI=true it must run")
        pytest.skip(message)
    with Chromium(binary) as chromium:
        yield chromium


@pytest.mark.browser
def test_reports_render_in_chromium_with_their_figures(graded, browser):
    root, _ = graded
    with SiteServer(root / "autograded") as site:
        for name, figures in ((f"{gs.LAB}-report.html", 3), ("course-report.html", 1)):
            report = browser.visit(site.url + name)
            assert report.problems() == [], (name, report.problems())
            assert browser.evaluate("document.querySelectorAll('figure svg').length") == figures
            assert browser.evaluate("Math.min(...[...document.querySelectorAll('figure svg')]"
                                    ".map(s => s.getBoundingClientRect().height))") > 50
            assert browser.evaluate("document.querySelectorAll('script, link[rel=stylesheet], img').length") == 0
