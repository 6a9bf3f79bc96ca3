"""``make lab`` in a real browser: ``python -m labkit lab`` starts headless, headless Chromium opens
JupyterLab on lab 01, runs its setup cell through the UI (a click on the cell, Shift+Enter), and the
output shows labkit's banner naming the shared local AWS that ``labkit lab`` started; the page
throws no JavaScript error. Screenshots go to ``_build/screenshots/jupyterlab/``.

Without Chromium the test skips with a message, except under CI=true, where it fails (.ci/run
installs Debian's chromium package).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from chromium import Chromium, find_binary, screenshot_dir
from conftest import REPO, clean_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LAB = "01-billing-alarms"
# The setup cell, found by its code; its first output line once it has run.
SETUP_CELL = """Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell')).find(
  c => (c.querySelector('.jp-InputArea-editor') || {}).textContent?.includes('labkit.connect()'))"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    binary = find_binary()
    if binary is None:
        message = ("headless Chromium is not installed (Debian: apt-get install chromium "
                   "chromium-driver); the JupyterLab browser test cannot run")
        if os.environ.get("CI") == "true":
            pytest.fail(message + " — and under CI=true it must run")
        pytest.skip(message)
    with Chromium(binary, timeout=60) as chromium:
        yield chromium


@pytest.fixture
def jupyterlab(tmp_path):
    """``python -m labkit lab`` on a copy of lab 01 (the repository's notebook is never written);
    yields (url with token, endpoint of the shared local AWS)."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "labs" / LAB, work / LAB)
    port, token = _free_port(), secrets.token_hex(16)
    env = clean_env(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
                    JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
                    JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), MPLBACKEND="Agg")
    log = open(tmp_path / "jupyterlab.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit", "lab", "--no-browser", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.allow_root=True", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("labkit: shared local AWS at http://127.0.0.1:"), first
        endpoint = first.split(" at ", 1)[1].split(";", 1)[0]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert proc.poll() is None, f"labkit lab exited:\n{log.seek(0) or log.read()}"
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(0.5)
        yield f"{base}/lab/tree/{LAB}/{LAB}.ipynb?token={token}", endpoint
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_lab01_setup_cell_runs_in_jupyterlab(browser, jupyterlab):
    url, endpoint = jupyterlab
    shots = screenshot_dir(REPO) / "jupyterlab"
    started = time.monotonic()
    browser.events.clear()
    browser.call("Page.navigate", url=url)
    browser.wait_until(f"!!({SETUP_CELL})", 120, "lab 01 open in JupyterLab with its setup cell")
    browser.wait_until("(document.querySelector('.jp-NotebookPanel-toolbar') || {})"
                       ".innerText?.includes('Python 3')",
                       120, "the kernel started (the toolbar names Python 3, not 'No Kernel')")
    browser.screenshot(shots / f"{LAB}-opened.png")
    rect = browser.evaluate(f"(() => {{ const c = {SETUP_CELL}; c.scrollIntoView({{block: 'center'}});"
                            " const r = c.querySelector('.jp-InputArea-editor').getBoundingClientRect();"
                            " return [r.x + 20, r.y + r.height / 2]; })()")
    browser.click(*rect)                                          # select the setup cell
    run = browser.evaluate("(() => { const b = document.querySelector('.jp-NotebookPanel-toolbar "
                           "[data-command=\"notebook:run-cell-and-select-next\"]');"
                           " if (!b) return null; const r = b.getBoundingClientRect();"
                           " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    if run:
        browser.click(*run)                                       # the toolbar's Run button
    else:
        browser.press("Enter", 13, modifiers=8)                   # Shift+Enter
    try:
        output = browser.wait_until(
        f"(() => {{ const o = ({SETUP_CELL}).querySelector('.jp-OutputArea'); const t = o ? o.innerText : '';"
            " return t.includes('labkit:') ? t : ''; })()", 120, "the setup cell's output")
    finally:
        browser.screenshot(shots / f"{LAB}-setup-ran.png")
    shot = shots / f"{LAB}-setup-ran.png"
    elapsed = time.monotonic() - started
    assert "labkit: LOCAL mode" in output and endpoint in output, output   # the shared local AWS
    assert "Error" not in output, output
    assert browser.exceptions() == []
    assert shot.stat().st_size > 10_000
    print(f"\nJupyterLab: lab 01 opened and its setup cell ran in {elapsed:.1f}s; screenshots in {shots}")
