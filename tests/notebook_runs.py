"""Helpers shared by the lab tests (tests/test_labNN.py).

- Running a solution notebook: twice in one kernel (``run_twice``), once per fresh kernel
  (``run_in_fresh_kernels``, optionally all on the session's shared local AWS via ``lab_env``), and
  its blank release (``run_blank``); what the lab tests assert about the executed notebooks
  (``assert_runs_clean``, ``assert_blank_fails_every_graded_cell``, ``assert_notebook_structure``).
- Running solution cells in this process, against the session's ``local_aws`` (``exec_cells``,
  ``solved_in_process``).
- ``fails``: a check must raise AssertionError naming the mistake.
- Small AWS state helpers several labs need (course bucket, prefixes, service roles).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from botocore.exceptions import ClientError
from jupyter_client.manager import KernelManager

from conftest import REPO, clean_env, execute_notebook

# ipykernel warns at every start that its loopback TCP is unencrypted, which flooded test logs. Kernels
# these helpers start (nbclient, through conftest.execute_notebook) get CurveZMQ keys from
# jupyter_client instead; nbclient passes no config to its kernel manager, so the default decides.
KernelManager.transport_encryption.default_value = "auto"

SOLUTION = re.compile(r"### BEGIN SOLUTION.*?### END SOLUTION", re.S)
HIDDEN = "### BEGIN HIDDEN TESTS"


# --- running notebooks in kernels ---------------------------------------------------------------
def lab_env(aws=None) -> dict[str, str]:
    """A kernel environment with the repository on PYTHONPATH and a headless matplotlib; with
    ``aws`` (the session's ``local_aws``) the kernel uses that shared local AWS instead of starting
    its own."""
    extra = {"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    if aws is not None:
        extra["AWS_ENDPOINT_URL"] = aws.endpoint
    return clean_env(**extra)


def _copy_lab(path: Path, tmp: Path) -> Path:
    """Copy the lab folder (notebook + its files) so runs never write into the repository."""
    target = tmp / path.parent.name
    shutil.copytree(path.parent, target, dirs_exist_ok=True)
    return target / path.name


def run_twice(path: Path, tmp: Path, *, env: dict[str, str] | None = None, timeout: int = 600):
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
    return execute_notebook(target, env=env, timeout=timeout)


def run_in_fresh_kernels(path: Path, tmp: Path, runs: int = 2, *, env: dict[str, str] | None = None,
                         timeout: int = 600):
    """Execute the notebook top to bottom ``runs`` times, each time in a fresh kernel, and yield
    each executed notebook as it finishes (``execute_notebook`` raises on any cell error). With
    ``env=lab_env(local_aws)`` every run meets the state the previous runs left."""
    target = _copy_lab(path, tmp)
    for _ in range(runs):
        yield execute_notebook(target, env=env, timeout=timeout)


def run_blank(path: Path, tmp: Path, *, env: dict[str, str] | None = None, timeout: int = 600):
    """Execute the released form: every solution region replaced by NotImplementedError."""
    target = _copy_lab(path, tmp)
    nb = nbformat.read(target, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = SOLUTION.sub("raise NotImplementedError()", cell.source)
    nbformat.write(nb, target)
    return execute_notebook(target, env=env, timeout=timeout, allow_errors=True)


def graded_cells(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def has_error(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def total_points(nb) -> float:
    return sum(c.metadata["nbgrader"]["points"] for c in graded_cells(nb))


def assert_runs_clean(nb) -> None:
    """No cell of the executed notebook shows an error."""
    assert [c.id for c in nb.cells if has_error(c)] == []


def assert_blank_fails_every_graded_cell(nb, *, cells: int | None = None,
                                         points: float | None = None) -> None:
    """The executed blank notebook scores zero: it has graded cells (``cells`` of them, worth
    ``points`` in total, where given) and every one of them shows an error."""
    graded = graded_cells(nb)
    assert graded, "the notebook has no graded cells"
    if cells is not None:
        assert len(graded) == cells
    if points is not None:
        assert total_points(nb) == points
    assert [c.id for c in graded if not has_error(c)] == [], "graded cells passed on a blank notebook"


def assert_notebook_structure(path: Path, checks: str) -> None:
    """The source notebook's conventions: 10 points, unique cell ids including "setup" and
    "cleanup-check", no outputs, and every hidden-test block a few lines calling ``checks``
    (e.g. "lab09" for grader.checks.lab09)."""
    nb = nbformat.read(path, as_version=4)
    assert total_points(nb) == 10
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)) and "setup" in ids and "cleanup-check" in ids
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    for cell in graded_cells(nb):
        hidden = cell.source.split(HIDDEN)[1]
        assert f"{checks}." in hidden and len(hidden.strip().splitlines()) <= 4


# --- running solution cells in this process -----------------------------------------------------
def exec_cells(path: Path, *ids: str, ns: dict | None = None, hidden: bool = False) -> dict:
    """Run code cells of the notebook in THIS process, in ``ns`` (a new namespace unless given),
    and return the namespace: the cells named by ``ids`` in that order, or, with none named,
    every code cell but the clean-up ones. A test cell runs without its hidden tests, unless
    ``hidden``: then each check runs where grading runs it, on the state its task left."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    by_id = {c.id: c for c in cells}
    chosen = [by_id[i] for i in ids] if ids else [c for c in cells if not c.id.startswith("cleanup")]
    ns = {} if ns is None else ns
    for cell in chosen:
        exec(compile(cell.source if hidden else cell.source.split(HIDDEN)[0], cell.id, "exec"), ns)
    return ns


@contextlib.contextmanager
def solved_in_process(path: Path, hidden: bool = False):
    """The solved state, in THIS process on the session's local AWS: setup, task cells and the
    visible self-checks run (``exec_cells``, with the hidden checks if ``hidden``); yields the
    namespace. On exit the clean-up solution runs, ignoring AWS errors (tests may have deleted
    resources already)."""
    import matplotlib

    matplotlib.use("Agg")
    ns = exec_cells(path, hidden=hidden)
    yield ns
    with contextlib.suppress(ClientError):
        exec_cells(path, "cleanup-solution", ns=ns)


# --- checks -------------------------------------------------------------------------------------
def fails(check, *args, match: str, explained: bool = False) -> str:
    """``check(*args)`` raises AssertionError whose message matches ``match`` (re.search); with
    ``explained`` the message also has the "<what is wrong> — <what to do>" form. Returns it."""
    with pytest.raises(AssertionError, match=match) as err:
        check(*args)
    if explained:
        assert " — " in str(err.value)  # "<what is wrong> — <what to do>"
    return str(err.value)


# --- AWS state ----------------------------------------------------------------------------------
def ensure_bucket(aws) -> None:
    """Create the course bucket unless it exists."""
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=aws.bucket)
    except ClientError:
        s3.create_bucket(Bucket=aws.bucket)


def empty_prefix(aws, prefix: str, versions: bool = False) -> None:
    """Delete every object under ``prefix`` of the course bucket (``versions``: every old version
    and delete marker too, as a clean-up check of a versioned bucket requires)."""
    s3 = aws.client("s3")
    if versions:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=aws.bucket, Prefix=prefix):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=aws.bucket, Key=item["Key"], VersionId=item["VersionId"])
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=aws.bucket, Key=item["Key"])


def create_service_role(aws, name: str, service: str) -> str:
    """An IAM role ``service`` (e.g. "glue.amazonaws.com") may assume; returns its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": service}, "Action": "sts:AssumeRole"}]}
    return aws.client("iam").create_role(RoleName=name,
                                         AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def delete_role(aws, name: str, policy: str = "p") -> None:
    """Delete the role and its inline policy ``policy``, whichever of them exists."""
    iam = aws.client("iam")
    with contextlib.suppress(ClientError):
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    with contextlib.suppress(ClientError):
        iam.delete_role(RoleName=name)
