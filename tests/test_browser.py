"""The built course site in a real browser: headless Chromium follows the navigation from the home
page to every page and every lab, saves a screenshot of each (``_build/screenshots``), and fails on
a page that does not render, a failed request or a missing image.

Without Chromium the tests skip with a message — except under CI=true, where they fail (.ci/run
installs Debian's chromium package).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from bookbuild import REPO, build, course, expected_launch_links, make_toc, real_book, toc_files
from chromium import Chromium, SiteServer, crawl, find_binary, screenshot_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    binary = find_binary()
    if binary is None:
        message = ("headless Chromium is not installed (Debian: apt-get install chromium "
                   "chromium-driver); the browser test cannot run")
        if os.environ.get("CI") == "true":
            pytest.fail(message + " — and under CI=true it must run")
        pytest.skip(message)
    with Chromium(binary) as chromium:
        yield chromium


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


PAGE = ("<!doctype html><html><head><title>{title}</title><link rel='icon' href='data:,'></head><body>"
        "<nav class='bd-docs-nav'>{nav}</nav><main><h1>{title}</h1>"
        "<p>Enough text for a reader to see that this page rendered properly.</p>{body}</main></body></html>")
# A 1x1 transparent PNG.
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def test_crawl_reports_broken_pages_and_missing_images(browser, tmp_path):
    """A deliberately broken little site: the crawler must find every defect, and only those."""
    nav = "<a href='good.html'>good</a><a href='noimage.html'>no image</a><a href='gone.html'>gone</a>"
    _write(tmp_path / "index.html", PAGE.format(title="Home", nav=nav, body=""))
    _write(tmp_path / "good.html", PAGE.format(title="Good", nav=nav, body="<img src='pixel.png'>"))
    (tmp_path / "pixel.png").write_bytes(PIXEL)
    _write(tmp_path / "noimage.html", PAGE.format(
        title="No image", nav=nav,
        body="<img src='lost.png'><a href='good.html#x'>ok</a><a href='nowhere.html'>bad</a>"))
    with SiteServer(tmp_path) as site:
        reports = crawl(browser, site.url + "index.html", tmp_path / "shots")
        problems = {url.removeprefix(site.url): r.problems() for url, r in reports.items()}
    assert set(problems) == {"index.html", "good.html", "noimage.html", "gone.html"}
    assert problems["index.html"] == [] and problems["good.html"] == []
    assert any("missing image" in p and "lost.png" in p for p in problems["noimage.html"])
    assert any("HTTP status 404" in p for p in problems["gone.html"])
    assert [p for p in problems["noimage.html"] if "broken link" in p] == [
        f"broken link {site.url}nowhere.html"]
    assert (tmp_path / "shots" / "good.png").stat().st_size > 1000


def test_every_page_and_lab_renders_in_chromium(browser):
    build = real_book()
    assert build.returncode == 0, "the book did not build; see tests/test_book.py"
    shots = screenshot_dir(REPO)
    for stale in shots.glob("*.png") if shots.is_dir() else []:   # only this run's pages remain
        stale.unlink()
    started = time.monotonic()
    with SiteServer(build.html) as site:
        assert _final_url(browser, site.url + "index.html") == site.url + "book/intro.html"
        reports = crawl(browser, site.url + "book/intro.html", shots)
    elapsed = time.monotonic() - started
    visited = {url.removeprefix(site.url) for url in reports}
    expected = {f"{f}.html" for f in toc_files(REPO)}
    assert expected <= visited, f"not reachable through the navigation: {sorted(expected - visited)}"
    labs = {f"{p}.html" for p in make_toc.labs(REPO).values()}
    assert labs <= visited
    broken = {url: r.problems() for url, r in reports.items() if r.problems()}
    assert not broken, f"broken pages: {broken}"
    settings = course.course_settings(REPO)
    for path in make_toc.labs(REPO).values():     # the launch menu opens the configured places only
        report = reports[site.url + f"{path}.html"]
        assert sorted(report.launch_links) == sorted(
            expected_launch_links(settings, f"{path}.ipynb").values()), report.url
    figures = sum(r.figures for r in reports.values())
    assert figures >= 5, "the reading chapters should show their figures"
    for report in reports.values():
        assert report.screenshot and report.screenshot.stat().st_size > 10_000, report.url
    print(f"\n{len(reports)} pages ({len(labs)} labs), {figures} figures, "
          f"{elapsed:.1f}s in Chromium; screenshots in {shots}")


def _final_url(browser: Chromium, url: str, wait: float = 5) -> str:
    """Where ``url`` ends up after client-side redirects (the home page is a meta refresh)."""
    browser.visit(url)
    deadline = time.monotonic() + wait
    while True:
        state = browser.call("Runtime.evaluate", expression="[location.href, document.readyState]",
                             returnByValue=True)["result"]["value"]
        if (state[0] != url and state[1] == "complete") or time.monotonic() > deadline:
            return state[0]
        time.sleep(0.1)


def test_launch_menu_opens_the_configured_places(browser, tmp_path):
    """A book whose ``course:`` block names a repository, a branch and a hub: in the browser, the
    lab page's launch menu holds exactly Binder and JupyterHub, pointing there."""
    from test_book import CONFIGURED, mini_book

    root = mini_book(tmp_path / "src", CONFIGURED)
    result = build(root, tmp_path / "out")
    assert result.returncode == 0, result.log
    page = "labs/01-billing-alarms/01-billing-alarms"
    with SiteServer(result.html) as site:
        report = browser.visit(site.url + f"{page}.html", tmp_path / "launch.png")
    expected = expected_launch_links(course.course_settings(root), f"{page}.ipynb")
    assert set(expected) == {"Binder", "JupyterHub"}
    assert sorted(report.launch_links) == sorted(expected.values())
    assert expected["Binder"].startswith("https://mybinder.org/v2/gh/test-org/test-course/fall-2026?")
    assert report.problems() == []
