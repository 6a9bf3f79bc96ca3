"""Fresh virtual environments for the packaging tests (tests/test_package.py, tests/test_binder.py).

What they install comes from a clean ``git clone`` of this repository's HEAD, never from the work
tree, so a file that is not committed (or not packaged) is missing there as it would be on Binder.
The pinned requirements are installed once per session into a base venv (pip's cache and the
machine's package indexes make that a few minutes, offline); each test gets its own copy of it,
hard-linked (fast) and still a separate venv: its ``python`` has its own ``sys.prefix``, so what a
test installs lands in its copy only. No ``--system-site-packages``: a missing dependency shows.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conftest import REPO, clean_env

TIMES: dict[str, float] = {}      # what each step took, printed by the tests (seconds)


def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="fresh-venv-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900):
    """Run a command; on failure the assertion shows its output."""
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed ({proc.returncode}):\n" \
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def timed(name: str, fn, *args, **kwargs):
    started = time.monotonic()
    try:
        return fn(*args, **kwargs)
    finally:
        TIMES[name] = TIMES.get(name, 0) + time.monotonic() - started


@functools.lru_cache(maxsize=1)
def clean_clone() -> Path:
    """``git clone`` of the work tree's HEAD (committed files only)."""
    target = _workdir() / "clone"
    timed("clone", run, ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)], cwd=REPO)
    return target


@functools.lru_cache(maxsize=1)
def base_venv() -> Path:
    """A venv holding exactly what the clone's ``binder/requirements.txt`` pins (what repo2docker
    installs first), and nothing of the course itself."""
    clone = clean_clone()
    venv = _workdir() / "base"
    timed("venv", run, [sys.executable, "-m", "venv", venv], cwd=clone)
    timed("requirements", run, [venv / "bin/python", "-m", "pip", "install", "-q", "-r",
                                "binder/requirements.txt"], cwd=clone)
    return venv


def fresh_venv(name: str) -> Path:
    """A private copy of the base venv (hard links), named ``name``. The scripts in its ``bin/``
    (``jupyter``, ``pip``, ...) name the base venv's python in their first line: rewritten, as new
    files, so the base keeps its own."""
    base = base_venv()
    target = _workdir() / name
    timed(f"copy {name}", run, ["cp", "-al", base, target], cwd=REPO)
    for script in (target / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(b"#!") and str(base).encode() in data:
            mode = script.stat().st_mode
            script.unlink()                      # a new inode: the hard-linked original stays
            script.write_bytes(data.replace(str(base).encode(), str(target).encode()))
            script.chmod(mode)
    return target


def venv_env(venv: Path, **extra: str) -> dict[str, str]:
    """An environment that uses ``venv`` first on PATH (as an activated venv / Binder's image)."""
    import os

    env = clean_env(**extra)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env
