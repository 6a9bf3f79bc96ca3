"""Builds submissions of the grader's fixture lab (tests/fixtures/course, 00-sample): the good one
and the hostile ones the autograder must survive. Shared by tests/test_grader.py and the benchmark."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "course"
LAB = "00-sample"


def _source() -> nbformat.NotebookNode:
    return nbformat.read(FIXTURE / "solutions" / LAB / f"{LAB}.ipynb", as_version=4)


def _set(nb, cell_id: str, source: str):
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            cell.source = source
            return nb
    raise KeyError(cell_id)


TASK1 = ('s3.create_bucket(Bucket=aws.bucket)\n'
         's3.put_object(Bucket=aws.bucket, Key="hello.txt", Body=b"hello labs")\n')
TASK2 = ('summary = {"n": s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"]}\n'
         's3.put_object(Bucket=aws.bucket, Key="summary.json", Body=json.dumps(summary).encode())\n')


def good():
    """A correct submission in the learner's own words (no solution markers): 10/10."""
    return _set(_set(_source(), "task1-solution", TASK1), "task2-solution", TASK2)


def infinite_loop():
    """Task 2 never finishes (an interruptible loop): task 2 lost, task 1 kept → 6/10."""
    nb = good()
    return _set(nb, "task2-solution", "while True:\n    pass\n")


def wrong_content():
    """Task 1 writes the wrong text: the visible check passes, the hidden one fails → 4/10."""
    nb = good()
    return _set(nb, "task1-solution", TASK1.replace("hello labs", "hello world"))


def sigint_ignoring():
    """Task 2 ignores SIGINT in a busy loop: the kernel is stopped, task 1 kept → 6/10."""
    nb = good()
    return _set(nb, "task2-solution", TASK2 + "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "while True:\n    pass\n")


def kernel_exit():
    """Task 1 does its work, then kills its own kernel: nothing after runs → 0/10."""
    nb = good()
    return _set(nb, "task1-solution", TASK1 + "import os\nos._exit(3)\n")


def deleted_test_cell():
    """Task 2 left undone and its test cell deleted: the cell is restored and fails → 6/10."""
    nb = _set(_source(), "task1-solution", TASK1)
    nb = _set(nb, "task2-solution", "raise NotImplementedError()")
    nb.cells = [c for c in nb.cells if c.get("id") != "task2-check"]
    return nb


def output_flood():
    """10 MB printed by a correct submission: graded 10/10, output cut in the stored notebook."""
    nb = good()
    return _set(nb, "task1-solution", TASK1 + 'print("x" * 10_000_000)\n')


def chatty():
    """A correct submission printing 20 MB in 200,000 lines: output beyond the cap is dropped as it
    arrives (bounded memory), graded 10/10."""
    nb = good()
    return _set(nb, "task1-solution", TASK1 + 'for i in range(200_000):\n    print("y" * 99)\n')


def real_aws():
    """Task 1 sent to real AWS with fake credentials: blocked at once; with no bucket in the local
    AWS, task 2 fails too → 0/10."""
    nb = good()
    return _set(nb, "task1-solution", 'import boto3\n'
                'real = boto3.client("s3", endpoint_url="https://s3.amazonaws.com",\n'
                '                    region_name="us-east-1",\n'
                '                    aws_access_key_id="AKIAIOSFODNN7EXAMPLE",\n'
                '                    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")\n'
                'real.create_bucket(Bucket=aws.bucket)\n'
                'real.put_object(Bucket=aws.bucket, Key="hello.txt", Body=b"hello labs")\n')


HOSTILE = {"good": (good, 10), "wrong": (wrong_content, 4), "loop": (infinite_loop, 6),
           "deaf": (sigint_ignoring, 6),
           "exit": (kernel_exit, 0), "deleted": (deleted_test_cell, 6), "flood": (output_flood, 10),
           "chatty": (chatty, 10),
           "network": (real_aws, 0)}


def course(root: Path) -> Path:
    """A scratch course at ``root`` holding the fixture lab's source (no submissions yet)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(FIXTURE / "solutions", root / "solutions", dirs_exist_ok=True)
    return root


def submit(root: Path, student: str, nb) -> Path:
    """Place ``nb`` as ``student``'s submission of the fixture lab."""
    folder = root / "submitted" / student / LAB
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{LAB}.ipynb"
    nbformat.write(nb, path)
    return path
