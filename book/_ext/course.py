"""Launch buttons from the one place that says where the course lives: ``course:`` in _config.yml.

    course:
      repository: https://github.com/ORG/REPO   # empty: no launch button at all
      branch: main
      binderhub: https://mybinder.org            # empty: no Binder button
      jupyterhub: https://hub.example.edu        # empty: no JupyterHub button

Jupyter Book's own ``repository:`` / ``launch_buttons:`` keys are not used: its defaults point at
someone else's repository, and a button must never link to a host nobody configured. There is no
Colab button: Colab starts without the course package and its data, and the labs' setup cell does
not install them (see the instructor guide, "Publishing the course").

The kernels the book build starts get CurveZMQ keys from jupyter_client (``transport_encryption =
"auto"``; the python3 kernelspec declares support): ipykernel warned at every start that its
loopback TCP was unencrypted, and now it is encrypted.
"""

from __future__ import annotations

from pathlib import Path

import yaml

KEYS = ("repository", "branch", "binderhub", "jupyterhub")


def course_settings(root: Path) -> dict[str, str]:
    """The ``course:`` block of ROOT/_config.yml, every key present, values stripped ('' = unset)."""
    config = yaml.safe_load((Path(root) / "_config.yml").read_text()) or {}
    block = config.get("course") or {}
    settings = {key: str(block.get(key) or "").strip().rstrip("/") for key in KEYS}
    settings["branch"] = settings["branch"] or "main"
    return settings


def apply_course(app, config) -> None:
    settings = course_settings(Path(app.srcdir))
    options = dict(config.html_theme_options or {})
    for key in ("repository_url", "repository_branch", "launch_buttons"):
        options.pop(key, None)
    if settings["repository"]:
        options["repository_url"] = settings["repository"]
        options["repository_branch"] = settings["branch"]
        options["launch_buttons"] = {"notebook_interface": "jupyterlab",
                                     "binderhub_url": settings["binderhub"],
                                     "jupyterhub_url": settings["jupyterhub"], "thebe": False}
    config.html_theme_options = options


def encrypt_kernels() -> None:
    """Kernels started in this process (myst-nb -> jupyter-cache -> nbclient, which passes no config
    to its kernel manager) are provisioned with CurveZMQ keys."""
    from jupyter_client.manager import KernelManager

    KernelManager.transport_encryption.default_value = "auto"


def setup(app):
    encrypt_kernels()
    app.connect("config-inited", apply_course, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
