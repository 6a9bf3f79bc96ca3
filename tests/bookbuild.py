"""Build the course site once per test session and inspect what it publishes.

Shared by tests/test_book.py and tests/test_browser.py (pytest puts tests/ on sys.path), so a
session that runs both builds the book once. The checks are plain functions taking a folder, so
they are tested on deliberately broken sites as well as on the real one.
"""

from __future__ import annotations

import atexit
import functools
import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book"))
sys.path.insert(0, str(REPO / "book" / "_ext"))
import course  # noqa: E402  (book/_ext/course.py: the course: block -> launch buttons)
import make_toc  # noqa: E402  (book/make_toc.py: the TOC generator under test)

# Strings that only instructor material contains: nbgrader solution regions, hidden test blocks and
# the hidden checks' import. None of them may appear anywhere in the published site.
FORBIDDEN = ("### BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "grader.checks")
TEXT_SUFFIXES = {".html", ".js", ".json", ".ipynb", ".md", ".txt", ".inv", ".py", ".css", ".log"}
WARNING = re.compile(r"\bWARNING\b|\bERROR\b")


def _clean_env() -> dict[str, str]:
    """The build always runs the book in local mode: no AWS/labkit variables may leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABKIT_"))}
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    return env


@dataclass
class Build:
    root: Path          # the book's source folder
    output: Path        # --path-output
    returncode: int
    log: str

    @property
    def html(self) -> Path:
        return self.output / "_build" / "html"

    def warnings(self) -> list[str]:
        """Every warning or error in the log, each with the traceback that follows it.

        Two kinds are not the book's: the kernel's notice that it runs over loopback TCP, and an
        error that Jupyter's own kernel plumbing logs while a kernel shuts down after its page ran
        (a traceback made only of tornado / pyzmq / ipykernel / jupyter_client frames). Anything
        with a frame of our code in it, or no traceback at all, still counts.
        """
        return [entry for entry in log_entries(self.log)
                if "[IPKernelApp]" not in entry.splitlines()[0] and not is_kernel_plumbing(entry)]


def log_entries(log: str) -> list[str]:
    """The warning/error lines of a build log, each joined with the traceback printed under it."""
    lines, entries = log.splitlines(), []
    for i, line in enumerate(lines):
        if not WARNING.search(line):
            continue
        end = i + 1
        while end < len(lines) and lines[end].startswith("Traceback (most recent call last)"):
            end += 1
            while end < len(lines) and lines[end].startswith((" ", "\t")):
                end += 1
            end += end < len(lines)          # the exception line itself
            if end + 1 < len(lines) and not lines[end] and lines[end + 1].startswith(CHAINED):
                end += 3                     # blank, "During handling ...", blank, next traceback
        entries.append("\n".join(lines[i:end]))
    return entries


CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
# A frame in the Jupyter kernel stack (pyzmq's compiled frames name a relative file) or in the
# standard library, never in site-packages of anything else or in this repository.
JUPYTER_STACK = "tornado|zmq|ipykernel|jupyter_client|jupyter_core|IPython|traitlets|comm|matplotlib_inline"
KERNEL_PLUMBING = re.compile(rf'File "(.*/site-packages/)?({JUPYTER_STACK})/'
                             r'|File "[^"]*/lib/python3\.\d+/(?!site-packages/)[^"]*"')


def is_kernel_plumbing(entry: str) -> bool:
    """An uncaught error in a kernel's ZMQ stream whose every frame is in Jupyter's libraries."""
    lines = entry.splitlines()
    frames = [line for line in lines if line.lstrip().startswith('File "')]
    return ("Uncaught exception in ZMQStream callback" in lines[0] and bool(frames)
            and all(KERNEL_PLUMBING.search(frame) for frame in frames))


def build(root: Path, output: Path, timeout: float = 900) -> Build:
    """``jupyter-book build ROOT -W -n --keep-going`` into OUTPUT (what ``make book`` runs)."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jupyter_book), "build", str(root), "--path-output", str(output),
                           "-W", "-n", "--keep-going"], cwd=root, env=_clean_env(),
                          capture_output=True, text=True, timeout=timeout)
    return Build(root, output, proc.returncode, proc.stdout + proc.stderr)


@functools.lru_cache(maxsize=1)
def real_book() -> Build:
    """The repository's own book, built once per session into a temporary folder."""
    output = Path(tempfile.mkdtemp(prefix="book-build-"))
    atexit.register(shutil.rmtree, output, ignore_errors=True)
    return build(REPO, output)


def find_leaks(html_dir: Path) -> list[tuple[str, str]]:
    """(file, forbidden string) for every instructor-only string in any published text file."""
    leaks = []
    for path in sorted(html_dir.rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".html":   # also what a reader sees: markup splits code into many spans
            text += "\n" + visible_text(text)
        leaks += [(str(path.relative_to(html_dir)), s) for s in FORBIDDEN if s in text]
    return leaks


def visible_text(page: str) -> str:
    """The text of an HTML page with tags removed, entities decoded and whitespace collapsed."""
    import html as html_module

    without_tags = re.sub(r"<[^>]+>", "", re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page))
    return re.sub(r"\s+", " ", html_module.unescape(without_tags))


class _NavLinks(html.parser.HTMLParser):
    """hrefs inside the sidebar ``<nav class="... bd-docs-nav">`` of a sphinx-book-theme page."""

    def __init__(self):
        super().__init__()
        self.depth = 0      # >0 while inside the docs nav
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav" and "bd-docs-nav" in (attrs.get("class") or ""):
            self.depth = 1
        elif tag == "nav" and self.depth:
            self.depth += 1
        elif tag == "a" and self.depth and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "nav" and self.depth:
            self.depth -= 1


def nav_pages(html_dir: Path, page: str = "book/intro.html") -> set[str]:
    """Site-relative paths (``labs/01-x/01-x.html``) the navigation of ``page`` links to."""
    parser = _NavLinks()
    parser.feed((html_dir / page).read_text())
    base = (html_dir / page).parent
    pages = set()
    for href in parser.links:
        href = href.split("#", 1)[0]
        if not href or "://" in href:
            continue
        pages.add((base / href).resolve().relative_to(html_dir.resolve()).as_posix())
    return pages


def toc_files(root: Path) -> list[str]:
    """Every file listed in ROOT/_toc.yml (suffix-less, as jupyter-book writes them)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def labs_missing_from_nav(root: Path, html_dir: Path) -> list[str]:
    """Labs present in ROOT/labs/ whose page is not linked from the site navigation."""
    linked = nav_pages(html_dir)
    return [path for path in (f"{p}.html" for p in make_toc.labs(root).values()) if path not in linked]


# --- launch buttons ---------------------------------------------------------------------------------
# Hosts that only ever stood in for a real one: no link in the site may point at them.
PLACEHOLDERS = ("mlaws-labs/mlaws-labs", "example.org", "executablebooks/jupyter-book")
_LAUNCH = re.compile(r'<a href="([^"]+)"[^>]*title="Launch on ([^"]+)"')
_HREF = re.compile(r'href="([^"]+)"')


def launch_links(page: str) -> dict[str, str]:
    """{provider: target} of the launch menu in a built page (sphinx-book-theme markup)."""
    import html as html_module

    return {name: html_module.unescape(url) for url, name in _LAUNCH.findall(page)}


def expected_launch_links(settings: dict[str, str], notebook: str) -> dict[str, str]:
    """What the launch menu must hold for ``notebook`` (a repository path such as
    ``labs/01-x/01-x.ipynb``) under the ``course:`` settings, written from Binder's and nbgitpuller's
    URL schemes (not from the theme's code)."""
    import urllib.parse

    repo, branch = settings["repository"], settings["branch"]
    if not repo:
        return {}
    links = {}
    if settings["binderhub"]:
        host, org, name = repo.rsplit("/", 2)
        spec = (f"gh/{org}/{name}" if host == "https://github.com"
                else f"git/{urllib.parse.quote(repo, safe='')}")
        links["Binder"] = f"{settings['binderhub']}/v2/{spec}/{branch}?urlpath=lab/tree/{notebook}"
    if settings["jupyterhub"]:
        folder = repo.rsplit("/", 1)[1]               # nbgitpuller clones into a folder named so
        query = urllib.parse.urlencode({"repo": repo, "urlpath": f"lab/tree/{folder}/{notebook}",
                                        "branch": branch}, safe="/")
        links["JupyterHub"] = f"{settings['jupyterhub']}/hub/user-redirect/git-pull?{query}"
    return links


def placeholder_links(html_dir: Path) -> list[tuple[str, str]]:
    """(page, href) for every link in the built site that points at a placeholder host."""
    found = []
    for path in sorted(html_dir.rglob("*.html")):
        found += [(str(path.relative_to(html_dir)), href) for href in _HREF.findall(path.read_text())
                  if any(p in href for p in PLACEHOLDERS)]
    return found
