"""Grading on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on loopback
(``--nthreads 1``), a small batch of the fixture lab sent with ``--scheduler``. The grades equal the
local run's, and killing one worker while it grades loses no submission (its task runs again on the
other worker)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import grader_submissions as gs
from grader.course import REPO, grading_env, kill_marked

pytestmark = pytest.mark.slow
BATCH = {"good1": gs.good, "wrong1": gs.wrong_content, "good2": gs.good, "wrong2": gs.wrong_content}
EXPECTED = {"good1": 10.0, "wrong1": 4.0, "good2": 10.0, "wrong2": 4.0}
LIMITS = ["--cell-timeout", "60", "--time-limit", "180", "--no-feedback"]


def course(root: Path) -> Path:
    gs.course(root)
    for student, make in BATCH.items():
        gs.submit(root, student, make())
    return root


def grade_command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "--root", str(root), "autograde", gs.LAB, *LIMITS, *extra]


def env(token: str) -> dict[str, str]:
    e = grading_env(token)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    return e


def rows(root: Path) -> dict[str, dict]:
    with open(root / "autograded" / f"{gs.LAB}-report.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two workers, each its own process group; everything is killed after."""
    token = uuid.uuid4().hex
    dask = str(Path(sys.executable).parent / "dask")
    info = tmp_path / "scheduler.json"
    procs = []
    try:  # a scheduler or worker that never comes up must not leave the others running
        procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(info)],
                                      env=env(token), cwd=REPO, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-nanny",
                                           "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
                                          env=env(token), cwd=REPO, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            yield address, client, procs
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        kill_marked(token)


def test_cluster_grades_like_the_local_run_and_a_lost_worker_loses_nothing(tmp_path, cluster):
    address, client, procs = cluster
    local = course(tmp_path / "local")
    done = subprocess.run(grade_command(local, "--jobs", "2"), capture_output=True, text=True, env=env(""))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "dashboard: http://127.0.0.1:" in done.stdout
    local_scores = {s: float(r["score"]) for s, r in rows(local).items()}
    assert local_scores == EXPECTED

    remote = course(tmp_path / "remote")
    batch = subprocess.Popen(grade_command(remote, "--scheduler", address), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env(""))
    workers = {pid: addr for addr, pid in client.run(os.getpid).items()}
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and batch.poll() is None:
        busy = {addr for addr, keys in client.processing().items() if keys}
        for proc in procs[1:]:
            if workers.get(proc.pid) in busy:
                time.sleep(2)  # the submission is under way: its kernel and local AWS are running
                os.killpg(proc.pid, signal.SIGKILL)
                victim = proc.pid
                break
        time.sleep(0.2)
    try:
        out, err = batch.communicate(timeout=900)
    finally:
        batch.kill()
    assert batch.returncode == 0, err[-3000:]
    assert victim is not None, "no worker was caught grading"
    assert f"grading on the Dask cluster at {address}" in out
    graded = rows(remote)
    assert {s: float(r["score"]) for s, r in graded.items()} == local_scores
    assert all(r["status"] == "graded" for r in graded.values())
    assert len(client.scheduler_info()["workers"]) == 1  # the killed worker is gone; nothing was lost
    assert {row["cells"] for row in graded.values()} == {"task1-check=6/6; task2-check=4/4",
                                                        "task1-check=0/6; task2-check=4/4"}
    assert (remote / "autograded" / "wrong2" / gs.LAB / f"{gs.LAB}.ipynb").exists()  # written by the client
