"""The course site: generated TOC, a warning-free build, nothing instructor-only published, every lab
reachable from the navigation with launch and download buttons.

The real book is built once (tests/bookbuild.py); the same checks also run on small synthetic books
with a known defect, so each check is shown to fail when it should.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from bookbuild import (FORBIDDEN, REPO, Build, build, course, expected_launch_links, find_leaks,
                       labs_missing_from_nav, launch_links, make_toc, nav_pages, placeholder_links,
                       real_book, toc_files)

READING_CHAPTERS = ("book/data-engineering", "book/modelling", "book/operations", "book/dataset")


# --- helpers: a tiny book in a temporary folder ----------------------------------------------------
def student_notebook(title: str, extra_cells: list | None = None) -> nbformat.NotebookNode:
    """A notebook shaped like a released lab: markdown, a solution cell stub, a visible check."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nObjectives: build something real."),
                nbformat.v4.new_code_cell("import labkit\naws = labkit.connect()"),
                nbformat.v4.new_code_cell("# YOUR CODE HERE\nraise NotImplementedError()"),
                nbformat.v4.new_code_cell("assert answer == 42, 'compute the answer first'")]
    nb.cells += extra_cells or []
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def add_lab(root: Path, slug: str, nb: nbformat.NotebookNode | None = None) -> None:
    folder = root / "labs" / slug
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb or student_notebook(slug), folder / f"{slug}.ipynb")


# A course configured somewhere (test values): every button the settings allow must appear.
CONFIGURED = {"repository": "https://github.com/test-org/test-course", "branch": "fall-2026",
              "binderhub": "https://mybinder.org", "jupyterhub": "https://hub.test-university.edu"}


def configure_course(root: Path, settings: dict[str, str]) -> None:
    """Rewrite the ``course:`` block of ROOT/_config.yml (the rest stays the real config)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    config["course"] = settings
    (root / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def mini_book(root: Path, settings: dict[str, str] | None = None) -> Path:
    """A book with the real _config.yml (its ``course:`` block replaced by ``settings`` when given),
    two labs and a fidelity page; the TOC comes from make_toc."""
    (root / "book" / "fidelity").mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    if settings is not None:
        configure_course(root, settings)
    for support in ("book/_ext", "book/images"):          # what _config.yml refers to
        shutil.copytree(REPO / support, root / support)
    (root / "book" / "intro.md").write_text("# Mini course\n\nA test book.\n")
    (root / "book" / "fidelity.md").write_text("# Fidelity\n\nPer service below.\n")
    (root / "book" / "fidelity" / "s3.md").write_text("# S3\n\nLifecycle rules are validated.\n")
    add_lab(root, "01-billing-alarms")
    add_lab(root, "06-eda")
    make_toc.main(["--root", str(root)])
    return root


# --- the TOC generator ------------------------------------------------------------------------------
def test_committed_toc_is_what_make_toc_writes():
    assert make_toc.main(["--check"]) == 0, "run `python book/make_toc.py` and commit _toc.yml"


def test_make_toc_lists_present_labs_and_pages_in_their_parts(tmp_path):
    (tmp_path / "book" / "fidelity").mkdir(parents=True)
    for page in ("intro", "setup", "data-engineering", "fidelity", "troubleshooting", "glossary"):
        (tmp_path / "book" / f"{page}.md").write_text(f"# {page}\n")
    (tmp_path / "book" / "fidelity" / "s3.md").write_text("# S3\n")
    (tmp_path / "book" / "fidelity" / "athena.md").write_text("# Athena\n")
    add_lab(tmp_path, "01-billing-alarms")
    add_lab(tmp_path, "09-endpoints")
    (tmp_path / "labs" / "03-athena").mkdir()          # folder without its notebook: not a lab yet
    (tmp_path / "labs" / "README.md").write_text("x")

    toc = make_toc.build_toc(tmp_path)
    parts = {p["caption"]: [c["file"] for c in p["chapters"]] for p in toc["parts"]}
    assert toc["root"] == "book/intro"
    assert list(parts) == ["Getting started", "Data engineering", "Operations", "Reference"]
    assert parts["Data engineering"] == ["book/data-engineering", "labs/01-billing-alarms/01-billing-alarms"]
    assert parts["Operations"] == ["labs/09-endpoints/09-endpoints"]
    # unplanned pages are published in Reference rather than silently dropped
    assert parts["Reference"] == ["book/fidelity", "book/troubleshooting", "book/glossary"]
    fidelity = next(c for c in toc["parts"][-1]["chapters"] if c["file"] == "book/fidelity")
    assert [s["file"] for s in fidelity["sections"]] == ["book/fidelity/athena", "book/fidelity/s3"]


def test_make_toc_check_detects_a_stale_toc(tmp_path, capsys):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# intro\n")
    assert make_toc.main(["--root", str(tmp_path), "--check"]) == 1      # no _toc.yml yet
    assert make_toc.main(["--root", str(tmp_path)]) == 0
    assert make_toc.main(["--root", str(tmp_path), "--check"]) == 0
    add_lab(tmp_path, "02-s3-lifecycle")                                   # a lab lands
    assert make_toc.main(["--root", str(tmp_path), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    make_toc.main(["--root", str(tmp_path)])
    assert "labs/02-s3-lifecycle/02-s3-lifecycle" in (tmp_path / "_toc.yml").read_text()


# --- which log lines count as warnings --------------------------------------------------------------
SITE = "/work/.venv/lib/python3.11/site-packages"
ZMQ_SHUTDOWN_ERROR = f"""ERROR:tornado.general:Uncaught exception in ZMQStream callback
Traceback (most recent call last):
  File "{SITE}/zmq/eventloop/zmqstream.py", line 600, in _handle_events
    self._handle_recv()
  File "{SITE}/zmq/eventloop/zmqstream.py", line 619, in _handle_recv
    msg = self.socket.recv_multipart(zmq.NOBLOCK, copy=self._recv_copy)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "zmq/backend/cython/_zmq.py", line 1339, in zmq.backend.cython._zmq._check_closed
  File "/usr/lib/python3.11/asyncio/events.py", line 84, in _run
zmq.error.ZMQError: not a socket"""


def _warnings(log: str) -> list[str]:
    return Build(REPO, REPO, 0, log).warnings()


def test_warnings_keep_sphinx_warnings_and_errors_from_our_code():
    sphinx = "/src/book/intro.md:12: WARNING: undefined label: 'nowhere' [ref.ref]"
    ours = ZMQ_SHUTDOWN_ERROR.replace('/usr/lib/python3.11/asyncio/events.py', '/src/labkit/local/s3.py')
    bare = "ERROR:tornado.general:Uncaught exception in ZMQStream callback"
    log = "\n".join(["Running Jupyter-Book", sphinx, ours, "build succeeded.", bare, "done"])
    found = _warnings(log)
    assert [w.splitlines()[0] for w in found] == [sphinx, bare, bare]
    assert found[1] == ours                      # reported with its whole traceback
    chained = ZMQ_SHUTDOWN_ERROR + ("\n\nDuring handling of the above exception, another exception"
                                    " occurred:\n\n" + ours.split("\n", 1)[1])
    assert _warnings(chained) == [chained]       # our frame sits in the chained traceback


def test_warnings_leave_out_kernel_notices_and_jupyter_shutdown_races():
    tcp = "[IPKernelApp] WARNING | Kernel is running over TCP without encryption."
    log = "\n".join(["Running Jupyter-Book", tcp, ZMQ_SHUTDOWN_ERROR, "build succeeded."])
    assert _warnings(log) == []


# --- the checks on small books: one good, one with known defects -------------------------------------
@pytest.mark.slow
def test_good_mini_book_passes_every_check(tmp_path):
    root = mini_book(tmp_path / "src", CONFIGURED)
    result = build(root, tmp_path / "out")
    assert result.returncode == 0 and not result.warnings(), "\n".join(result.warnings()) or result.log
    assert find_leaks(result.html) == []
    assert labs_missing_from_nav(root, result.html) == []
    assert "book/fidelity/s3.html" in nav_pages(result.html)
    lab = (result.html / "labs/01-billing-alarms/01-billing-alarms.html").read_text()
    assert "NotImplementedError" in lab and 'class="cell_output' not in lab     # shown, not executed
    _assert_launch_and_download(lab, "01-billing-alarms", CONFIGURED)
    assert set(launch_links(lab)) == {"Binder", "JupyterHub"}          # and no Colab
    assert placeholder_links(result.html) == []


def test_course_settings_choose_the_launch_buttons(tmp_path):
    """Only what is set gets a button; nothing set, no launch menu at all."""
    shutil.copy(REPO / "_config.yml", tmp_path / "_config.yml")
    nb = "labs/01-x/01-x.ipynb"
    configure_course(tmp_path, {"repository": "", "jupyterhub": "https://hub.test-university.edu"})
    assert expected_launch_links(course.course_settings(tmp_path), nb) == {}
    configure_course(tmp_path, {"repository": "https://github.com/o/r/", "binderhub": ""})
    settings = course.course_settings(tmp_path)
    assert settings["branch"] == "main" and settings["repository"] == "https://github.com/o/r"
    assert expected_launch_links(settings, nb) == {}
    configure_course(tmp_path, dict(CONFIGURED, jupyterhub=""))
    assert expected_launch_links(course.course_settings(tmp_path), nb) == {
        "Binder": f"https://mybinder.org/v2/gh/test-org/test-course/fall-2026?urlpath=lab/tree/{nb}"}


@pytest.mark.slow
def test_checks_catch_a_leaked_solution_and_a_lab_missing_from_navigation(tmp_path):
    root = mini_book(tmp_path / "src")
    leaky = student_notebook("01-billing-alarms", [nbformat.v4.new_code_cell(
        "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n"
        "### BEGIN HIDDEN TESTS\nfrom grader.checks import lab01\nlab01.check_alarm(aws)\n"
        "### END HIDDEN TESTS")])
    add_lab(root, "01-billing-alarms", leaky)
    # prose that quotes a marker in inline code: the HTML splits it into one <span> per word
    (root / "book" / "fidelity" / "s3.md").write_text(
        "# S3\n\nSolutions sit between `### BEGIN SOLUTION` and the end marker; checks call\n"
        "`grader.checks.lab02.check_rules(aws)`.\n")
    add_lab(root, "07-training")                      # lands after the TOC was generated
    result = build(root, tmp_path / "out")
    assert result.returncode == 0, result.log      # the defects are in the content, not the build
    leaks = find_leaks(result.html)
    assert {s for _, s in leaks} == set(FORBIDDEN)
    assert ("labs/01-billing-alarms/01-billing-alarms.html", "BEGIN HIDDEN TESTS") in leaks
    assert ("book/fidelity/s3.html", "### BEGIN SOLUTION") in leaks
    assert ("book/fidelity/s3.html", "grader.checks") in leaks
    assert labs_missing_from_nav(root, result.html) == ["labs/07-training/07-training.html"]


# --- the real book ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_book_builds_without_any_warning():
    result = real_book()
    assert result.returncode == 0 and not result.warnings(), (
        "the book build has warnings:\n" + "\n".join(result.warnings()))


@pytest.mark.slow
def test_book_publishes_no_solution_or_hidden_check():
    leaks = find_leaks(real_book().html)
    assert not leaks, f"instructor-only strings in the published site: {leaks}"


@pytest.mark.slow
def test_every_lab_and_page_is_in_the_navigation():
    html = real_book().html
    assert labs_missing_from_nav(REPO, html) == []
    linked = nav_pages(html)
    missing = [f for f in toc_files(REPO)[1:] if f"{f}.html" not in linked]
    assert not missing, f"pages in _toc.yml but not in the site navigation: {missing}"
    for slug_path in make_toc.labs(REPO).values():
        page = (html / f"{slug_path}.html").read_text()
        _assert_launch_and_download(page, Path(slug_path).name, course.course_settings(REPO))
        assert 'class="cell_output' not in page, f"{slug_path}: lab pages must not be executed"


@pytest.mark.slow
def test_reading_chapters_were_executed_with_figures():
    html = real_book().html
    for chapter in READING_CHAPTERS:
        page = (html / f"{chapter}.html").read_text()
        assert 'class="cell_output' in page, f"{chapter}: no executed output"
        assert "Traceback" not in page, f"{chapter}: a cell raised"
    for chapter in ("book/data-engineering", "book/modelling", "book/operations"):
        page = (html / f"{chapter}.html").read_text()
        images = [src for src in _img_sources(page) if src.endswith(".png")]
        assert images, f"{chapter}: no figure"
        for src in images:
            assert (html / chapter).parent.joinpath(src).resolve().is_file(), f"{chapter}: missing {src}"


def _img_sources(page: str) -> list[str]:
    import re

    return re.findall(r'<img[^>]+src="([^"]+)"', page)


@pytest.mark.slow
def test_book_links_to_no_placeholder_host():
    assert placeholder_links(real_book().html) == []


def _assert_launch_and_download(page: str, slug: str, settings: dict[str, str]) -> None:
    """The launch menu holds exactly the buttons the ``course:`` settings allow, with their
    targets; the .ipynb download is always there."""
    expected = expected_launch_links(settings, f"labs/{slug}/{slug}.ipynb")
    assert launch_links(page) == expected, f"{slug}: launch menu"
    assert f"_sources/labs/{slug}/{slug}.ipynb" in page, f"{slug}: no .ipynb download"
