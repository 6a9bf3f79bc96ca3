"""The course package: ``python -m build`` makes a wheel that, installed into a fresh venv, gives
``labkit`` and ``grader`` with the data set inside, working from any folder (no repository)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from freshvenv import TIMES, clean_clone, fresh_venv, run, timed, venv_env

pytestmark = pytest.mark.slow

CODE = """
import labkit, grader, grader.checks.lab01
from labkit import datasets
aws = labkit.connect()
flights = datasets.flights()
print("data:", datasets.data_dir())
print("labkit:", labkit.__file__)
print("rows:", len(flights), "tables:", sorted(len(datasets.load(t)) for t in datasets.TABLES))
aws.client("s3").create_bucket(Bucket=aws.bucket)
print("buckets:", [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]])
"""


def _packages_in(folder: Path) -> set[str]:
    """Every folder of Python modules under labkit/ and grader/, as a dotted package name."""
    return {p.parent.relative_to(folder).as_posix().replace("/", ".")
            for top in ("labkit", "grader") for p in (folder / top).rglob("*.py")
            if "__pycache__" not in p.parts}


def test_wheel_installs_and_runs_from_an_empty_folder(tmp_path):
    clone = clean_clone()
    timed("build wheel", run, [sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist",
                               "."], cwd=clone)
    wheel = next((tmp_path / "dist").glob("mlaws_labs-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith(".py")}
    assert _packages_in(clone) <= packaged, "a package folder is missing from pyproject's packages"
    for table in ("flights", "weather", "airlines", "airports", "planes"):
        assert f"labkit/_data/{table}.parquet" in names

    venv = fresh_venv("wheel")
    python = venv / "bin" / "python"
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = subprocess.run([python, "-c", "import labkit"], cwd=empty, env=venv_env(venv),
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "No module named 'labkit'" in missing.stderr   # not there yet

    timed("install wheel", run, [python, "-m", "pip", "install", "-q", "--no-deps", wheel], cwd=empty)
    run([python, "-m", "pip", "check"], cwd=empty)
    out = timed("connect + load", run, [python, "-c", CODE], cwd=empty, env=venv_env(venv)).stdout
    site = str(venv / "lib")
    assert f"data: {site}" in out and "labkit/_data" in out, out
    assert f"labkit: {site}" in out, out
    assert "rows: 336776" in out and "labkit: LOCAL mode" in out, out
    assert "mlaws-labs-" in out.split("buckets:")[1], out

    # LABKIT_DATA still overrides the packaged data: an empty folder there is reported as missing data
    override = subprocess.run(
        [python, "-c", "from labkit import datasets; datasets.flights()"], cwd=empty,
        env=venv_env(venv, LABKIT_DATA=str(empty)), capture_output=True, text=True)
    assert override.returncode != 0 and f"{empty}/flights.parquet is missing" in override.stderr
    print("\ntimes (s):", {k: round(v, 1) for k, v in TIMES.items()})
