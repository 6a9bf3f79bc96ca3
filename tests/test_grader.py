"""The autograder end to end on the fixture lab: selfcheck (full / zero, and a broken lab caught),
the hostile-submission batch, the hard wall-clock limit, the network guard, feedback without hidden
test source, and the whole-course runner. Limits are short so the suite stays quick."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grader.autograde import autograde
from grader.course import grading_env
from grader.run_course import run_course
from grader.selfcheck import selfcheck
import grader_submissions as gs

# The cell limit must leave room for labkit.connect() on a loaded machine (~9 s at load 12 here).
CELL_TIMEOUT, TIME_LIMIT, SLACK = 20, 120, 60
pytestmark = pytest.mark.slow


def live_grader_processes() -> list[int]:
    """Processes still carrying a token of a worker this test session started (workers, kernels)."""
    from grader.autograde import STARTED_TOKENS

    marks = {f"GRADER_TOKEN={token}".encode() for token in STARTED_TOKENS}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marks & set((entry / "environ").read_bytes().split(b"\0")):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def broken_lab(root: Path) -> None:
    """Add lab 01-broken: the fixture lab whose "solution" stores the wrong text (so it cannot get
    full marks); the self-check and the course run must report it."""
    source = gs.FIXTURE / "solutions" / gs.LAB
    target = root / "solutions" / "01-broken"
    target.mkdir(parents=True)
    nb = nbformat.read(source / f"{gs.LAB}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.id == "task1-solution":
            cell.source = cell.source.replace("hello labs", "hello world")
    nbformat.write(nb, target / "01-broken.ipynb")


@pytest.fixture(scope="module")
def two_labs(tmp_path_factory):
    root = gs.course(tmp_path_factory.mktemp("two-labs"))
    broken_lab(root)
    return root


def test_selfcheck_full_marks_for_solution_zero_for_blank_and_catches_a_broken_lab(two_labs, capsys):
    rows = selfcheck(two_labs, jobs=2, cell_timeout=60, time_limit=120)
    by_lab = {row["lab"]: row for row in rows}
    good, broken = by_lab[gs.LAB], by_lab["01-broken"]
    assert (good["solution"]["score"], good["blank"]["score"], good["ok"]) == (10, 0, True)
    assert (broken["solution"]["score"], broken["blank"]["score"], broken["ok"]) == (4, 0, False)
    assert not rows  # one failing lab makes the whole self-check fail
    table = capsys.readouterr().out
    assert "00-sample" in table and "PASS" in table and "FAIL" in table
    assert "its content must be the text 'hello labs'" in table  # the reason is shown
    assert not (two_labs / "gradebook.db").exists()  # scratch course only


def test_course_runs_every_solution_and_reports_scores(two_labs, capsys):
    rows = run_course(two_labs)
    by_lab = {row["lab"]: row for row in rows}
    assert by_lab[gs.LAB]["status"] == "ok" and by_lab[gs.LAB]["score"] == 10
    assert by_lab["01-broken"]["status"] == "FAILED" and by_lab["01-broken"]["score"] == 4
    assert "hello.txt contains b'hello world'" in by_lab["01-broken"]["error"]
    assert not rows
    out = capsys.readouterr().out
    assert "total" in out and "14/20" in out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Grade the hostile batch once (2 jobs) and share the results."""
    root = gs.course(tmp_path_factory.mktemp("hostile"))
    for student, (make, _expected) in gs.HOSTILE.items():
        gs.submit(root, student, make())
    gs.submit(root, "corrupt", gs.good()).write_text('{"cells": [ not json')  # unreadable hand-in
    started = time.monotonic()
    results = autograde(root, gs.LAB, jobs=2, cell_timeout=CELL_TIMEOUT, time_limit=TIME_LIMIT, slack=SLACK,
                        quiet=True)
    return root, {r["student"]: r for r in results}, time.monotonic() - started


def test_hostile_batch_is_graded_completely_with_expected_scores(hostile):
    root, results, _seconds = hostile
    assert set(results) == set(gs.HOSTILE) | {"corrupt"}
    scores = {student: results[student]["score"] for student in results}
    expected = {student: float(points) for student, (_make, points) in gs.HOSTILE.items()}
    assert scores == dict(expected, corrupt=0.0)
    assert results["corrupt"]["status"] == "zero (not gradable)"
    assert any("nbgrader autograde failed" in r for r in results["corrupt"]["reasons"])
    assert {r["status"] for s, r in results.items() if s != "corrupt"} == {"graded"}
    for result in results.values():
        assert result["max_score"] == 10
        assert result["seconds"] < TIME_LIMIT + SLACK  # every submission within its limit
    assert live_grader_processes() == []


@pytest.mark.parametrize("student, reason", [
    ("loop", f"task2-solution ran past the {CELL_TIMEOUT} s cell time limit and was interrupted"),
    ("deaf", f"task2-solution ignored the interrupt sent after its {CELL_TIMEOUT} s time limit; the kernel "
             "was stopped"),
    ("exit", "the kernel died while running task1-solution"),
    ("deleted", "task2-check: deleted from the submission; restored from the lab and run"),
    ("network", 'first error in your own cell task1-solution: EndpointConnectionError: Could not connect to '
                'the endpoint URL: "https://s3.amazonaws.com/'),
    ("wrong", "task1-check (-6): AssertionError: hello.txt contains b'hello world'"),
])
def test_every_lost_point_has_a_recorded_reason(hostile, student, reason):
    root, results, _ = hostile
    assert any(reason in r for r in results[student]["reasons"]), results[student]["reasons"]
    with open(root / "autograded" / f"{gs.LAB}-report.csv") as handle:
        report = {row["student"]: row for row in csv.DictReader(handle)}
    assert reason in report[student]["reasons"]


@pytest.mark.parametrize("student, notice", [
    ("flood", "characters of output were cut"),
    ("chatty", "output beyond 2,000,000 characters was discarded while the cell ran"),
    ("network", "blocked network access to s3.amazonaws.com:443"),
])
def test_notices_are_kept_apart_from_lost_points(hostile, student, notice):
    root, results, _ = hostile
    assert any(notice in n for n in results[student]["notices"]), results[student]["notices"]
    assert not any(notice in r for r in results[student]["reasons"])
    with open(root / "autograded" / f"{gs.LAB}-report.csv") as handle:
        report = {row["student"]: row for row in csv.DictReader(handle)}
    assert notice in report[student]["notices"] and notice not in report[student]["reasons"]
    assert results["good"]["reasons"] == [] and results["good"]["notices"] == []


def test_good_submission_has_no_reasons_and_flood_is_truncated(hostile):
    root, results, _ = hostile
    assert results["good"]["reasons"] == []
    flooded = root / "autograded" / "flood" / gs.LAB / f"{gs.LAB}.ipynb"
    assert flooded.stat().st_size < 200_000  # 10 MB printed, a few kB stored
    chatty = root / "autograded" / "chatty" / gs.LAB / f"{gs.LAB}.ipynb"
    assert chatty.stat().st_size < 200_000


def test_grades_csv_and_feedback_without_hidden_test_source(hostile):
    root, results, _ = hostile
    with open(root / "grades.csv") as handle:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert exported == {s: r["score"] for s, r in results.items()}
    # the autograded notebook does hold the hidden tests (and a traceback quoting them) ...
    autograded = (root / "autograded" / "wrong" / gs.LAB / f"{gs.LAB}.ipynb").read_text()
    assert "sample.check_hello(aws)" in autograded
    # ... but no feedback page shows them, while the learner-facing message is kept
    pages = sorted((root / "feedback").glob(f"*/{gs.LAB}/{gs.LAB}.html"))
    assert len(pages) == len(results) - 1  # all but the unreadable hand-in
    for page in pages:
        html = page.read_text()
        for secret in ("check_hello", "check_summary", "grader.checks", "HIDDEN TESTS"):
            assert secret not in html, f"{page}: shows {secret!r}"
    wrong = (root / "feedback" / "wrong" / gs.LAB / f"{gs.LAB}.html").read_text()
    assert "its content must be the text" in wrong


def test_wall_clock_limit_kills_the_submission_and_gives_zero(tmp_path):
    root = gs.course(tmp_path)
    sleeper = gs.good()
    sleeper.cells[1].source += "\nimport time\ntime.sleep(60)"  # the setup cell
    gs.submit(root, "slow1", sleeper)
    gs.submit(root, "slow2", sleeper)
    results = autograde(root, gs.LAB, jobs=1, cell_timeout=120, time_limit=120, wall_limit=4,
                        feedback=False, quiet=True)
    assert [(r["student"], r["score"], r["status"]) for r in results] == [
        ("slow1", 0.0, "zero (not gradable)"), ("slow2", 0.0, "zero (not gradable)")]
    assert all("wall-clock limit" in r["reasons"][0] for r in results)
    assert live_grader_processes() == []
    assert not (root / "autograded" / "slow1" / gs.LAB).exists()


def test_network_guard_blocks_remote_hosts_and_allows_loopback(tmp_path):
    log = tmp_path / "net.log"
    code = (
        "import boto3, urllib.request\n"
        "try:\n"
        "    boto3.client('s3', endpoint_url='https://s3.amazonaws.com', region_name='us-east-1',\n"
        "                 aws_access_key_id='AKIAFAKE', aws_secret_access_key='x').list_buckets()\n"
        "except Exception as exc:\n"
        "    print('remote:', type(exc).__name__)\n"
        "try:\n"
        "    urllib.request.urlopen('http://127.0.0.1:9/', timeout=5)\n"
        "except Exception as exc:\n"
        "    print('local:', type(exc).__name__, getattr(exc, 'reason', ''))\n"
        "import os\n"
        "print('creds:', [k for k in os.environ if k.startswith('AWS_ACCESS') or k == 'AWS_PROFILE'])\n")
    env = grading_env("net-test", base=dict(os.environ, AWS_ACCESS_KEY_ID="AKIAREAL", AWS_PROFILE="prod"))
    env["LABKIT_NET_LOG"] = str(log)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "remote: EndpointConnectionError" in done.stdout, done.stdout + done.stderr
    assert "local: URLError [Errno 111] Connection refused" in done.stdout  # loopback is not blocked
    assert "creds: []" in done.stdout and env["AWS_CONFIG_FILE"] == os.devnull
    assert "s3.amazonaws.com:443" in log.read_text()
    unguarded = dict(env, LABKIT_NET_GUARD="0", LABKIT_NET_LOG=str(tmp_path / "none.log"))
    subprocess.run([sys.executable, "-c", "import socket\ntry:\n    socket.getaddrinfo('example.com', 80)\n"
                    "except OSError:\n    pass\n"], env=unguarded, timeout=60)
    assert not (tmp_path / "none.log").exists()


def test_processes_the_guard_does_not_cover_meet_a_refusing_proxy(tmp_path):
    """``python -I`` skips sitecustomize, like a shell tool (``!curl``) it is outside the Python
    guard: its web request goes to the dead loopback proxy and is refused, with no DNS look-up;
    requests to loopback (the local AWS) still go direct."""
    code = ("import sys, urllib.request\n"
            "for url in sys.argv[1:]:\n"
            "    try:\n"
            "        urllib.request.urlopen(url, timeout=10)\n"
            "    except Exception as exc:\n"
            "        print(url, type(exc).__name__, getattr(exc, 'reason', exc))\n")
    urls = ["http://example.invalid/", "https://s3.amazonaws.com/", "http://127.0.0.1:9/direct"]
    graded = subprocess.run([sys.executable, "-I", "-c", code, *urls], env=grading_env("proxy-test"),
                            capture_output=True, text=True, timeout=60)
    lines = graded.stdout.splitlines()
    assert len(lines) == 3 and all("Connection refused" in line for line in lines), graded.stdout + graded.stderr
    # the same request outside the grading environment looks the name up (and fails to resolve)
    plain = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    direct = subprocess.run([sys.executable, "-I", "-c", code, urls[0]], env=plain,
                            capture_output=True, text=True, timeout=60)
    assert "Connection refused" not in direct.stdout and "example.invalid" in direct.stdout


def test_cli_autograde_with_nothing_submitted(tmp_path):
    gs.course(tmp_path)
    done = subprocess.run([sys.executable, "-m", "grader", "--root", str(tmp_path), "autograde"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "nothing to grade" in done.stdout
    shutil.rmtree(tmp_path / "solutions")


def test_unknown_student_is_refused_and_report_updates_merge(tmp_path):
    from grader.autograde import write_report

    root = gs.course(tmp_path)
    gs.submit(root, "alice", gs.good())
    with pytest.raises(SystemExit, match="no submission of 00-sample for: bob"):
        autograde(root, gs.LAB, students=["bob"], quiet=True)
    report = tmp_path / "report.csv"
    write_report(report, [{"student": "alice", "score": 4.0, "max_score": 10.0, "status": "graded",
                           "reasons": ["x"]},
                          {"student": "carol", "score": 10.0, "max_score": 10.0, "status": "graded",
                           "cells": {"task1": (None, 2.0), "task2": (0.5, 1.0)}}])  # task1 never graded
    write_report(report, [{"student": "alice", "score": 10.0, "max_score": 10.0, "status": "graded"}])
    with open(report) as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert (rows["alice"]["score"], rows["alice"]["reasons"], rows["carol"]["score"]) == ("10.0", "", "10.0")
    assert rows["carol"]["cells"] == "task1=-/2; task2=0.5/1"
