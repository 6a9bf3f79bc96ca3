"""Hostile submissions graded in one batch with a correct and a blank one (issue: "Grading a hostile
class"). Each attacker must score what its real work earns, the others are unchanged, the course's
files are byte-identical afterwards, no secret or hidden-test text reaches feedback/ or the graded
notebooks, nothing an attacker started is still running, and nothing it wrote is left behind.

Runs for real: bubblewrap must be installed (.ci/run installs it under CI); it never skips."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest

import grader_submissions as gs
from grader import sandbox
from grader.autograde import autograde
from grader.course import REPO

pytestmark = pytest.mark.slow
SECRET = "sk-grader-secret-5b1e"  # planted in the grader's environment and course files
MARKER = "hostile-daemon-7f3a"

TAMPER = r'''
import builtins, sys, types
fake = types.ModuleType("grader.checks.sample")
fake.check_hello = fake.check_summary = lambda *a, **k: None
sys.modules["grader"] = types.ModuleType("grader"); sys.modules["grader.checks"] = types.ModuleType("x")
sys.modules["grader.checks"].sample = fake; sys.modules["grader.checks.sample"] = fake
real_import = builtins.__import__
builtins.__import__ = lambda name, *a, **k: fake if name.startswith("grader") else real_import(name, *a, **k)
import ast
class Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]
        return ast.fix_missing_locations(node)
ip = get_ipython()
ip.ast_transformers.append(Swallow())
ip.input_transformers_post.append(lambda lines: ["pass\n"])
'''

VANDAL = r'''
import glob, os
targets = [ROOT + "/gradebook.db", ROOT + "/nbgrader_config.py", REPO + "/grader/checks/sample.py",
           REPO + "/nbgrader_config.py"] + glob.glob(ROOT + "/submitted/*/00-sample/*.ipynb") \
          + glob.glob(ROOT + "/solutions/*/*.ipynb")
wrote = []
for path in targets:
    try:
        with open(path, "a") as handle:
            handle.write("\nraise SystemExit('vandalised')\n")
        wrote.append(path)
    except OSError:
        pass
print("vandal wrote", wrote)
'''

SPY = r'''
import glob, os
found = {}
for pattern in [ROOT + "/submitted/*/00-sample/*.ipynb", ROOT + "/solutions/*/*.ipynb", ROOT + "/gradebook.db",
                REPO + "/grader/checks/sample.py", REPO + "/solutions/*/*.ipynb", os.path.expanduser("~/.aws/*"),
                "/root/.aws/*", "/proc/*/environ", SECRET_FILE]:
    for path in glob.glob(pattern):
        try:
            found[path] = open(path, "rb").read()[:3000]
        except OSError:
            pass
print("spy read", {k: v for k, v in found.items()})
print("spy env", dict(os.environ))
'''

NETWORK = r'''
import ctypes, socket, subprocess, sys
results = {}
def attempt(name, fn):
    try:
        fn(); results[name] = "reached"
    except Exception as error:
        results[name] = type(error).__name__
attempt("tcp", lambda: socket.create_connection((OUTSIDE, PORT), timeout=3))
attempt("grader-loopback", lambda: socket.create_connection(("127.0.0.1", LOOP_PORT), timeout=3))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendmsg([b"ping"], [], 0, (OUTSIDE, PORT))
attempt("udp-sendmsg", udp)
code = f"import socket; socket.create_connection(({OUTSIDE!r}, {PORT}), timeout=3)"
for name, cmd in [("python-I", [sys.executable, "-I", "-c", code]),
                  ("env-i-python", ["env", "-i", sys.executable, "-I", "-c", code]),
                  ("curl", ["curl", "-s", "--noproxy", "*", "-m", "3", f"http://{OUTSIDE}:{PORT}/"]),
                  ("env-i-curl", ["env", "-i", "curl", "-s", "-m", "3", f"http://{OUTSIDE}:{PORT}/"])]:
    try:
        results[name] = subprocess.run(cmd, capture_output=True, timeout=20).returncode
    except Exception as error:
        results[name] = type(error).__name__
print("network", results)
'''

PROCESSES = r'''
import subprocess
subprocess.Popen(["sh", "-c", f"setsid sh -c 'exec -a {MARKER} sleep 900' &"]).wait()
started = 0
try:
    for _ in range(2000):
        subprocess.Popen(["sleep", "600"])
        started += 1
except OSError as error:
    print("stopped by", error)
print("processes started", started)
'''

DISK = r'''
import os
written = {}
for folder in [os.path.expanduser("~"), "/tmp", os.getcwd()]:
    path, size = os.path.join(folder, "big.bin"), 0
    try:
        with open(path, "wb") as handle:
            for _ in range(5 * 1024):
                handle.write(b"\0" * 2**20)
                size += 1
    except OSError as error:
        pass
    written[folder] = size
print("disk MiB written", written)
'''

HTML = ('from IPython.display import HTML, display\n'
        'display(HTML("<b>hi</b><script>alert(\'pwned\')</script><img src=x onerror=alert(1)>"))\n')


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def _with(nb, cell_id, extra: str):
    _cell(nb, cell_id).source += "\n" + extra
    return nb


def blank():
    nb = gs.good()
    _cell(nb, "task1-solution").source = "raise NotImplementedError()"
    _cell(nb, "task2-solution").source = "raise NotImplementedError()"
    return nb


def outside_address() -> str:
    """An address of this machine that is not loopback (the sandbox must not reach it)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.254.254.254", 1))
        return probe.getsockname()[0]
    finally:
        probe.close()


class Canary:
    """A TCP and UDP listener that counts everything that reaches it."""

    def __init__(self, host: str):
        self.hits = 0
        self.tcp = socket.create_server((host, 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, self.port))
        for target in (self._tcp, self._udp):
            threading.Thread(target=target, daemon=True).start()

    def _tcp(self):
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            self.hits += 1
            conn.close()

    def _udp(self):
        while True:
            try:
                self.udp.recv(64)
            except OSError:
                return
            self.hits += 1


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    assert sandbox.unavailable() is None, f"the sandbox tests need bubblewrap: {sandbox.unavailable()}"
    root = gs.course(tmp_path_factory.mktemp("hostile"))
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text()
                                             + f"\n# {SECRET}\n")
    secret_file = root / "instructor-secret.txt"
    secret_file.write_text(SECRET)
    outside = Canary(outside_address())
    loopback = Canary("127.0.0.1")
    prelude = (f"ROOT, REPO, SECRET_FILE = {str(root)!r}, {str(REPO)!r}, {str(secret_file)!r}\n"
               f"OUTSIDE, PORT, LOOP_PORT = {outside_address()!r}, {outside.port}, {loopback.port}\n"
               f"MARKER = {MARKER!r}\n")
    metadata = gs.good()
    _cell(metadata, "task2-solution").source = "raise NotImplementedError()"
    _cell(metadata, "task2-check").metadata["nbgrader"]["points"] = 100
    _cell(metadata, "task1-solution").metadata["nbgrader"].update(grade=True, points=50)
    html = _with(gs.good(), "task1-solution", HTML)
    html.cells.append(nbformat.v4.new_markdown_cell("<script>alert('md')</script>"))
    memory = gs.good()
    _cell(memory, "task2-solution").source = "summary = None\nhog = bytearray(20 * 2**30)\n"
    subs = {
        "good": (gs.good(), 10), "blank": (blank(), 0),
        "tamper": (_with(blank(), "setup", TAMPER), 0),
        "vandal": (_with(gs.good(), "task1-solution", prelude + VANDAL), 10),
        "spy": (_with(gs.good(), "task1-solution", prelude + SPY), 10),
        "network": (_with(gs.good(), "task1-solution", prelude + NETWORK), 10),
        "processes": (_with(gs.good(), "task1-solution", prelude + PROCESSES), 10),
        "disk": (_with(gs.good(), "task1-solution", DISK), 10),
        "memory": (memory, 6), "metadata": (metadata, 6), "html": (html, 10),
    }
    for student, (nb, _) in subs.items():
        gs.submit(root, student, nb)
    before_tmp = set(Path(tempfile.gettempdir()).iterdir())
    course_files = {name: digest(root / name) for name in ("solutions", "submitted")}
    repo_checks = digest(REPO / "grader")
    os.environ["GRADER_TEST_SECRET"] = SECRET
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET
    try:
        results = autograde(root, gs.LAB, jobs=2, cell_timeout=90, time_limit=240, slack=120)
    finally:
        os.environ.pop("GRADER_TEST_SECRET")
        os.environ.pop("AWS_SECRET_ACCESS_KEY", None)
    return dict(root=root, subs=subs, results={r["student"]: r for r in results}, outside=outside,
                loopback=loopback, before_tmp=before_tmp, course_files=course_files, repo_checks=repo_checks)


def graded_text(root: Path, student: str) -> str:
    nb = nbformat.read(root / "autograded" / student / gs.LAB / f"{gs.LAB}.ipynb", as_version=4)
    return "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_every_submission_scores_what_its_real_work_earns(batch):
    got = {s: batch["results"][s]["score"] for s in batch["subs"]}
    assert got == {s: expected for s, (_, expected) in batch["subs"].items()}


def test_course_files_are_byte_identical_and_no_secret_or_hidden_source_leaks(batch):
    root = batch["root"]
    assert {name: digest(root / name) for name in ("solutions", "submitted")} == batch["course_files"]
    assert digest(REPO / "grader") == batch["repo_checks"]
    assert "vandalised" not in (root / "nbgrader_config.py").read_text()
    leaks = []
    for folder in ("feedback", "autograded"):
        for path in (root / folder).rglob("*"):
            if path.is_file() and path.suffix in {".html", ".ipynb"}:
                text = path.read_text(errors="replace")
                if SECRET in text or "def check_hello" in text or "s3_body(aws" in text:
                    leaks.append(str(path))
                if folder == "feedback" and "BEGIN HIDDEN TESTS" in text:
                    leaks.append(str(path))
    assert not leaks
    spied = graded_text(root, "spy")
    read = re.findall(r"'(/[^']+)': b", spied.split("spy read ", 1)[1].split("spy env", 1)[0])
    # nothing of the course, the peers or the instructor was readable; only its own processes
    assert "spy read" in spied and all(path.startswith("/proc/") for path in read), read
    assert SECRET not in spied


def test_tampering_inside_the_kernel_changes_no_check(batch):
    reasons = " ".join(batch["results"]["tamper"]["reasons"])
    assert "does not exist" in reasons  # the real checks ran, outside the kernel


def test_no_network_path_reaches_outside_or_the_grader(batch):
    text = graded_text(batch["root"], "network")
    assert "network {" in text and "'reached'" not in text
    assert batch["outside"].hits == 0 and batch["loopback"].hits == 0


def test_resource_abuse_is_bounded_and_nothing_outlives_grading(batch):
    text = graded_text(batch["root"], "processes")
    started = int(re.search(r"processes started (\d+)", text).group(1))
    assert started < 600, f"{started} processes started: the process limit did not hold"
    alive = [p for p in Path("/proc").iterdir() if p.name.isdigit()
             and MARKER.encode() in (p / "cmdline").read_bytes() if (p / "cmdline").exists()]
    assert not alive
    disk = graded_text(batch["root"], "disk")
    assert "disk MiB written" in disk and "5120" not in disk  # no 5 GiB file anywhere
    memory = batch["results"]["memory"]
    assert memory["score"] == 6 and any("task2-check" in r and "MemoryError" in r for r in memory["reasons"])
    left = set(Path(tempfile.gettempdir()).iterdir()) - batch["before_tmp"]
    assert not [p for p in left if p.name.startswith("grader-submission-")]


def test_feedback_html_is_sanitised(batch):
    page = batch["root"] / "feedback" / "html" / gs.LAB / f"{gs.LAB}.html"
    text = page.read_text()
    assert "<b>hi</b>" in text or "hi" in text
    # the learner's code may show escaped in the source listing; no live script or handler may remain
    assert "<script>alert" not in text and "<img src=x onerror" not in text and "<script>alert('md')" not in text


def test_relay_exits_with_the_process_that_started_it():
    """Without the sandbox's pid namespace (``--unsandboxed``) nothing else would stop the relay."""
    import subprocess
    import sys
    import time

    relay_py = REPO / "grader" / "sandbox" / "relay.py"
    starter = ("import subprocess, sys; p = subprocess.Popen([sys.executable, sys.argv[1], '/nonexistent.sock', '0'], "
               "stdout=subprocess.PIPE, text=True, start_new_session=True); "
               "print(p.stdout.readline().strip(), p.pid, flush=True)")
    out = subprocess.run([sys.executable, "-c", starter, str(relay_py)], capture_output=True, text=True,
                         timeout=30).stdout.split()
    assert out[0] == "ready", out
    pid = int(out[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, 9)
    pytest.fail("the relay outlived the process that started it")
