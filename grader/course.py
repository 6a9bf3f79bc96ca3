"""The course directory the grader works on: where labs are, its nbgrader config, the grading
environment (local AWS only, no credentials, network guard) and clean-up of grading processes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SANDBOX = Path(__file__).resolve().parent / "sandbox"
LAB_NAME = re.compile(r"^\d\d-[a-z0-9-]+$")


def ensure_venv_on_path() -> None:
    """nbgrader's gradebook runs the ``alembic`` command: find it beside this interpreter even when
    the venv is not activated (``.venv/bin/python -m grader``)."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


ensure_venv_on_path()


def labs(root: Path, only: str | None = None) -> list[str]:
    """Lab ids in ``root/solutions`` (``NN-slug`` folders holding ``NN-slug.ipynb``), sorted.

    ``only`` may be the full id or just its number (``"03"`` / ``"3"``)."""
    source = Path(root) / "solutions"
    found = sorted(p.name for p in source.glob("*") if p.is_dir() and LAB_NAME.match(p.name)
                   and (p / f"{p.name}.ipynb").exists()) if source.is_dir() else []
    if only is None:
        return found
    matches = [lab for lab in found if lab == only or lab.split("-")[0] == only.zfill(2)]
    if not matches:
        raise SystemExit(f"no lab {only!r} in {source} (labs: {', '.join(found) or 'none'})")
    return matches


def config_file(root: Path) -> Path:
    """The course's nbgrader_config.py; a course without one (a test fixture) uses the repo's."""
    own = Path(root) / "nbgrader_config.py"
    return own if own.exists() else REPO / "nbgrader_config.py"


def load_config(root: Path, **overrides):
    """The course's nbgrader_config.py as a traitlets Config, rooted at the absolute ``root``.

    ``overrides`` are ``"Class.trait": value`` pairs given with ``__`` for the dot."""
    from traitlets.config.loader import PyFileConfigLoader

    root = Path(root).resolve()
    source = config_file(root)
    config = PyFileConfigLoader(source.name, path=str(source.parent)).load_config()
    config.CourseDirectory.root = str(root)
    if "root" not in config.Exchange:  # the grader never uses the exchange; keep its check quiet
        config.Exchange.root = tempfile.gettempdir()
    # Several grading workers share one SQLite gradebook: wait for a lock instead of failing.
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}?timeout=120"
    for key, value in overrides.items():
        section, trait = key.split("__")
        setattr(getattr(config, section), trait, value)
    return config


def api(root: Path, **overrides):
    """An in-process nbgrader API on ``root`` (quiet logs)."""
    import logging

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = load_config(root, **overrides)
    coursedir = CourseDirectory(config=config)
    nb_api = NbGraderAPI(coursedir=coursedir, config=config)
    nb_api.log.setLevel(logging.WARNING)
    return nb_api


# Where graded processes' web traffic is sent: the discard port on loopback, which refuses it.
# Tools outside Python that honour the proxy variables (curl, wget, pip, git over https) fail at
# once instead of reaching the network; loopback (the local AWS) is exempt.
DEAD_PROXY = "http://127.0.0.1:9"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")
NO_PROXY = "127.0.0.1,localhost,::1"


def grading_env(token: str = "", base: dict | None = None) -> dict[str, str]:
    """Environment for graded code: local AWS forced, every AWS credential removed, the network
    guard (grader/sandbox/sitecustomize.py) on, web proxies pointed at a refusing loopback port
    (a second line for shell escapes such as ``!curl``, which the Python guard does not see), and a
    token that marks every process started."""
    from labkit.backend import scrub_credentials

    env = {k: v for k, v in (base if base is not None else os.environ).items()
           if not k.startswith(("AWS_", "LABKIT_"))}
    scrub_credentials(env)
    for name in PROXY_VARIABLES:
        env[name] = env[name.upper()] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = NO_PROXY
    path = [str(SANDBOX), str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update({
        "LABKIT_GRADING": "1",
        "LABKIT_BACKEND": "local",
        "LABKIT_NET_GUARD": "1",
        "PYTHONPATH": os.pathsep.join(path),
        "PYTHONUNBUFFERED": "1",
        "GRADER_TOKEN": token,
    })
    return env


def kill_marked(token: str) -> int:
    """SIGKILL every process whose environment carries ``GRADER_TOKEN=token``: a grading worker and
    everything it started (kernels run in their own session, so a process group is not enough)."""
    if not token:
        return 0
    needle = f"GRADER_TOKEN={token}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):
            continue
    return killed


def drop_credentials(environ=os.environ) -> None:
    """The grader's own process holds no AWS credentials and no endpoint: whatever graded code
    could coax out of it, no real account is reachable (called at import by the grader's modules)."""
    from labkit.backend import scrub_credentials

    for name in [k for k in environ if k.startswith("AWS_")]:
        environ.pop(name, None)
    scrub_credentials(environ)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
