"""Binder: the repository builds as repo2docker builds it, and a lab runs from its own folder.

repo2docker uses ``binder/`` when it exists: ``runtime.txt`` picks the Python, ``requirements.txt``
is pip-installed, then ``postBuild`` runs from the repository root. This test does the same steps
in a fresh venv on a clean clone of HEAD, then executes lab 01 (the instructor's solution, so every
cell really runs, hidden checks included) in its folder with nothing of the repository on
``sys.path``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from freshvenv import TIMES, base_venv, clean_clone, fresh_venv, run, timed, venv_env

pytestmark = pytest.mark.slow
LAB = "01-billing-alarms"


def test_binder_config_is_what_repo2docker_reads():
    clone = clean_clone()
    binder = clone / "binder"
    python = f"python-{sys.version_info[0]}.{sys.version_info[1]}"
    assert (binder / "runtime.txt").read_text().strip() == python
    assert "-r ../requirements.txt" in (binder / "requirements.txt").read_text().splitlines()
    post = binder / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable (repo2docker runs it as is)"


def test_lab_runs_from_its_folder_after_binder_steps(tmp_path):
    clone = clean_clone()
    venv = fresh_venv("binder")
    env = venv_env(venv)
    timed("postBuild", run, ["bash", "binder/postBuild"], cwd=clone, env=env)
    folder = clone / "solutions" / LAB
    python = venv / "bin" / "python"
    where = run([python, "-c", "import labkit, grader; print(labkit.__file__)"], cwd=folder, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout          # the installed package, not the clone
    out = tmp_path / f"{LAB}.ipynb"
    timed("run lab 01", run, [python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                              f"{LAB}.ipynb", "--output", out,
                              "--ExecutePreprocessor.timeout=300"], cwd=folder, env=env)
    cells = json.loads(out.read_text())["cells"]
    errors = [c["id"] for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    setup = next(c for c in cells if c["id"] == "setup")
    assert "labkit: LOCAL mode" in "".join("".join(o.get("text", "")) for o in setup["outputs"])
    print("\ntimes (s):", {k: round(v, 1) for k, v in TIMES.items()})


def test_a_lab_without_the_course_package_fails_to_import(tmp_path):
    """The wrong case: the same venv before postBuild cannot run a lab (what Binder did before)."""
    clone = clean_clone()
    venv = base_venv()                    # requirements only, nothing installed after them
    proc = subprocess.run([venv / "bin" / "python", "-c", "import labkit"], cwd=clone / "labs" / LAB,
                          env=venv_env(venv), capture_output=True, text=True)
    assert proc.returncode != 0 and "No module named 'labkit'" in proc.stderr
