"""Shared fixtures: one embedded local AWS for the test session, and a subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """The current environment without AWS / labkit variables, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABKIT_"))}
    env.update(overrides)
    return env


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 120):
    """Run ``code`` in a fresh interpreter (connect() changes process-wide state)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env if env is not None else clean_env(), timeout=timeout, cwd=REPO)


@pytest.fixture(scope="session")
def local_aws():
    """The embedded local AWS, started once per test session; yields the labkit handle.

    Tests that use it must create uniquely named resources (or clean up), since state is shared.
    """
    import labkit

    handle = labkit.connect(quiet=True)
    yield handle


def execute_notebook(path: Path, env: dict[str, str] | None = None, timeout: int = 600,
                     allow_errors: bool = False):
    """Execute a notebook top to bottom in a fresh kernel (its own embedded local AWS) and return
    the executed nbformat object. The kernel's working directory is the notebook's folder."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env if env is not None else clean_env())
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb
