"""A small headless-Chromium driver over the DevTools protocol, for tests/test_browser.py.

selenium is not installed and chromedriver is not needed: Chromium is started with
``--remote-debugging-port=0``, writes the port it chose into ``DevToolsActivePort`` in its fresh
profile folder, and we speak the DevTools protocol over a websocket (``websocket-client``). One
browser serves every page, which keeps a whole-site crawl to seconds.
"""

from __future__ import annotations

import base64
import functools
import http.server
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import websocket

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--window-size=1280,900")
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Runs in the page after "load": waits for every image to settle, then reports what a reader sees.
_INSPECT = """
(async () => {
  const images = Array.from(document.images);
  images.forEach(i => { i.loading = 'eager'; });
  await Promise.all(images.map(i => i.complete ? null : new Promise(done => {
    i.addEventListener('load', done); i.addEventListener('error', done); setTimeout(done, 5000);
  })));
  const nav = Array.from(document.querySelectorAll('nav.bd-docs-nav a[href], .prev-next-area a[href]'));
  return {
    title: document.title,
    heading: (document.querySelector('main h1, article h1') || {}).textContent || '',
    textLength: ((document.querySelector('main') || document.body || {}).innerText || '').length,
    links: nav.map(a => a.href),
    contentLinks: Array.from(document.querySelectorAll('main a[href]')).map(a => a.href),
    launchLinks: Array.from(document.querySelectorAll('.dropdown-launch-buttons a[href]')).map(a => a.href),
    brokenImages: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    images: images.length,
    figures: images.filter(i => i.src.includes('/_images/')).length,
  };
})()
"""


def find_binary() -> str | None:
    """The first Chromium-like browser on PATH (Debian's package installs ``chromium``)."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    url: str
    status: int | None = None
    title: str = ""
    heading: str = ""
    text_length: int = 0
    links: list[str] = field(default_factory=list)
    images: int = 0
    figures: int = 0                                            # images from _images/ (executed output)
    broken_images: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)   # same-origin resources >= 400 / failed
    content_links: list[str] = field(default_factory=list)     # every link in the page body
    launch_links: list[str] = field(default_factory=list)      # the launch menu (Binder, JupyterHub)
    broken_links: list[str] = field(default_factory=list)      # same-origin ones that do not load
    js_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    def problems(self) -> list[str]:
        """Why this page counts as broken for a reader (empty when it is fine)."""
        found = []
        if self.status is None or self.status >= 400:
            found.append(f"HTTP status {self.status}")
        rendered = bool(self.heading.strip()) and self.text_length >= 50
        if self.status is not None and self.status < 400 and not rendered:
            found.append("no heading or almost no text: the page did not render")
        found += [f"missing image {src}" for src in self.broken_images]
        found += [f"failed request {r}" for r in self.failed_requests]
        found += [f"broken link {link}" for link in self.broken_links]
        found += [f"JavaScript error: {e}" for e in self.js_errors]
        return found


class Chromium:
    """One headless Chromium with a fresh profile; use as a context manager."""

    def __init__(self, binary: str, timeout: float = 30):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port = self._devtools_port()
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")

    def _devtools_port(self) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited ({self.process.returncode}): "
                                   f"{self.process.stderr.read().decode(errors='replace')[-2000:]}")
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port in time")

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {self.timeout}s")
            self.events.append(json.loads(self.ws.recv()))

    def visit(self, url: str, screenshot: Path | None = None) -> PageReport:
        """Load ``url``, wait for it and its images, and report what went wrong."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self._wait_for("Page.loadEventFired")
        info = self.call("Runtime.evaluate", expression=_INSPECT, awaitPromise=True,
                         returnByValue=True)["result"].get("value") or {}
        report = PageReport(url=url, title=info.get("title", ""), heading=info.get("heading", ""),
                            text_length=info.get("textLength", 0), links=info.get("links", []),
                            content_links=info.get("contentLinks", []),
                            launch_links=info.get("launchLinks", []),
                            images=info.get("images", 0), figures=info.get("figures", 0),
                            broken_images=info.get("brokenImages", []))
        origin = urllib.parse.urlsplit(url)[:2]
        requests = {}
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                requests[params["requestId"]] = params["request"]["url"]
            elif method == "Network.responseReceived":
                response = params["response"]
                if params.get("type") == "Document" and response["url"].split("#")[0] == url.split("#")[0]:
                    report.status = response["status"]
                if response["status"] >= 400 and urllib.parse.urlsplit(response["url"])[:2] == origin:
                    report.failed_requests.append(f"{response['url']} ({response['status']})")
            elif method == "Network.loadingFailed":
                failed = requests.get(params["requestId"], "")
                if urllib.parse.urlsplit(failed)[:2] == origin and not params.get("canceled"):
                    report.failed_requests.append(f"{failed} ({params.get('errorText')})")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                report.js_errors.append((details.get("exception") or {}).get("description")
                                        or details.get("text", "exception"))
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            data = self.call("Page.captureScreenshot", format="png")["data"]
            screenshot.write_bytes(base64.b64decode(data))
            report.screenshot = screenshot
        return report

    # --- driving an application page (tests/test_jupyterlab.py) -----------------------------
    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 60, what: str = "") -> object:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout}s: {what or expression}")
            time.sleep(0.25)

    def click(self, x: float, y: float) -> None:
        """A left mouse click at page coordinates, as a person's."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def press(self, key: str, code: int, modifiers: int = 0) -> None:
        """A key press (``modifiers``: 1 Alt, 2 Ctrl, 4 Meta, 8 Shift)."""
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                      windowsVirtualKeyCode=code, modifiers=modifiers)

    def exceptions(self) -> list[str]:
        """JavaScript exceptions the page threw since the events were last cleared."""
        return [(e["params"]["exceptionDetails"].get("exception") or {}).get("description")
                or e["params"]["exceptionDetails"].get("text", "exception")
                for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SiteServer:
    """A static HTTP server for a built site on 127.0.0.1 (any free port), in a thread."""

    def __init__(self, directory: Path):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "SiteServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """The browser drops connections it no longer needs (navigating on): not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output readable
        pass


def crawl(browser: Chromium, start: str, screenshots: Path | None = None) -> dict[str, PageReport]:
    """Follow the site navigation (sidebar and previous/next links) from ``start``, breadth first,
    visiting every same-origin page once; returns {url: report}."""
    origin = urllib.parse.urlsplit(start)[:2]
    queue, seen, reports, checked = [start], {start}, {}, {}
    while queue:
        url = queue.pop(0)
        shot = None
        if screenshots is not None:
            path = urllib.parse.urlsplit(url).path.strip("/") or "index"
            shot = screenshots / (path.replace("/", "__").removesuffix(".html") + ".png")
        report = browser.visit(url, shot)
        reports[url] = report
        for link in report.content_links:     # links in the text: fetched, not navigated (fast)
            target = link.split("#", 1)[0]
            if urllib.parse.urlsplit(target)[:2] != origin:
                continue
            if target not in checked:
                checked[target] = _loads(target)
            if not checked[target]:
                report.broken_links.append(link)
        for link in report.links:
            link = link.split("#", 1)[0]
            if urllib.parse.urlsplit(link)[:2] == origin and link not in seen:
                seen.add(link)
                queue.append(link)
    return reports


def _loads(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status < 400
    except OSError:
        return False


def screenshot_dir(repo: Path) -> Path:
    """Where screenshots go (``_build/screenshots``; override with BOOK_SCREENSHOTS)."""
    return Path(os.environ.get("BOOK_SCREENSHOTS") or repo / "_build" / "screenshots")
