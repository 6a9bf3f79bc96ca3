"""The embedded local AWS server: moto's WSGI app, engines installed, plus a small control API.

All AWS services answer on one loopback port (routing by the SigV4 credential scope, as moto does).
Paths under ``/_labkit/`` are labkit's own control API (ping, clock, reset, engine extras such as
the e-mail outbox); engines add routes with ``@control_route("name")``.

For grading, the server also listens on Unix sockets (``python -m labkit.local.server``): a
*learner* socket that the sandboxed kernel reaches through a relay, and a *grader* socket that only
the grader can see. Requests that arrive as a learner may use the AWS APIs and the routes a lab
needs (ping, the clock forward, the billing simulator, the outbox, fault injection), never moto's
own ``/moto-api`` back door or ``reset``: nothing a submission sends can forge or wipe the evidence
a check reads.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import logging
import pkgutil
import socket
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from labkit.errors import LabkitError
from labkit.local import clock

__all__ = ["LocalAWS", "control_route", "on_reset", "background", "install_engines", "after_import"]

PING_PATH = "/_labkit/ping"
_routes: dict[str, Callable[[dict], Any]] = {}
# Control routes a learner's code may call while graded (everything else is the grader's).
LEARNER_ROUTES = {"ping", "clock", "billing", "outbox", "firehose-faults"}
_reset_hooks: list[Callable[[], None]] = []
_installed = False
_install_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def control_route(name: str):
    """Register ``fn(payload: dict) -> JSON-able`` at ``/_labkit/<name>``."""

    def register(fn):
        _routes[name] = fn
        return fn

    return register


def on_reset(fn: Callable[[], None]) -> Callable[[], None]:
    """Register an engine's own state wipe, run by ``/_labkit/reset`` after moto's reset."""
    if fn not in _reset_hooks:
        _reset_hooks.append(fn)
    return fn


def background(fn: Callable[..., Any], *args, **kwargs) -> Future:
    """Run long work (training, crawls, job runs) off the request thread, like AWS's async APIs."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="labkit-worker")
    return _pool.submit(_logged, fn, *args, **kwargs)


def _logged(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception:
        logging.getLogger("labkit.worker").exception("background task %r failed", fn)
        raise


_import_hooks: dict[str, list[Callable[[], None]]] = {}
_import_hooks_lock = threading.Lock()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs the hooks registered for a module right after the module is first imported."""

    def find_spec(self, name, path, target=None):
        if name not in _import_hooks:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_hooks(module):
            exec_module(module)
            for hook in _import_hooks.pop(name, []):
                hook()

        spec.loader.exec_module = exec_then_hooks
        return spec


def after_import(module: str, hook: Callable[[], None]) -> None:
    """Call ``hook`` once ``module`` is imported (now, if it already is). For engines that patch a
    moto service whose import is costly and that most labs never call: moto imports a service's
    models on its first request, and the patch is in place before that request is served."""
    if module in sys.modules:
        hook()
        return
    with _import_hooks_lock:
        _import_hooks.setdefault(module, []).append(hook)
        if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterImport())


def _cache_moto_module_list() -> None:
    """moto's dispatcher lists its own package folder (a listdir and a stat per service, some 180)
    on every request to test whether the Host names a service: the folder does not change while
    the server runs, so list it once."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "labkit_cached", False):
        return
    names = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules():
        return names

    list_of_moto_modules.labkit_cached = True
    backends.list_of_moto_modules = list_of_moto_modules


def install_engines() -> list[str]:
    """Import every engine module in labkit.local and call its ``install()`` once per process."""
    global _installed
    with _install_lock:
        import labkit.local as package

        names = []
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name in {"server", "clock"}:
                continue
            module = importlib.import_module(f"labkit.local.{info.name}")
            if callable(getattr(module, "install", None)):
                names.append(info.name)
                if not _installed:
                    module.install()
        _installed = True
        return names


@control_route("ping")
def _ping(_payload):
    from labkit import __version__

    return {"labkit": __version__, "now": clock.now().isoformat()}


@control_route("clock")
def _clock(payload):
    seconds = float(payload.get("seconds", 0))
    if seconds < 0:
        raise ValueError("the virtual clock only moves forward")
    if seconds:
        clock.advance(seconds)
    else:
        clock.tick()
    return {"now": clock.now().isoformat(), "offset_seconds": clock.offset().total_seconds()}


@control_route("reset")
def _reset(_payload):
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    for hook in list(_reset_hooks):
        hook()
    clock.reset()
    return {"reset": True}


class _ControlMiddleware:
    """WSGI wrapper: ``/_labkit/*`` goes to labkit's control routes, everything else to moto."""

    def __init__(self, moto_app, learner: bool = False):
        self.moto_app = moto_app
        self.learner = learner

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if self.learner and path.rstrip("/").startswith("/moto-api"):
            return self._respond(start_response, 403, {"error": "moto's control API is not available "
                                                                "to graded code"})
        if not path.startswith("/_labkit/"):
            return aws_shaped_errors(self.moto_app, environ, start_response)
        name = path[len("/_labkit/"):].strip("/")
        handler = _routes.get(name)
        if handler is None:
            return self._respond(start_response, 404, {"error": f"no labkit route {name!r}"})
        if self.learner and name not in LEARNER_ROUTES:
            return self._respond(start_response, 403, {"error": f"labkit route {name!r} is the grader's"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            payload = json.loads(raw) if raw else {}
            return self._respond(start_response, 200, handler(payload))
        except Exception as exc:  # report, never crash the server
            logging.getLogger("labkit.server").exception("control route %s failed", name)
            return self._respond(start_response, 500, {"error": f"{type(exc).__name__}: {exc}"})

    @staticmethod
    def _respond(start_response, status, body):
        data = json.dumps(body, default=str).encode()
        reason = {200: "OK", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(data)))])
        return [data]


# --- engine errors answer as AWS does -------------------------------------------------------------
def aws_shaped_errors(app, environ, start_response):
    """Run moto's app; an error that escapes moto or an engine (werkzeug would answer an HTML 500
    page) becomes the error AWS answers when it fails internally: HTTP 500 ``InternalFailure``
    (S3: ``InternalError``) in the request's own protocol, so SDKs parse it, retry it and name it."""
    try:
        return app(environ, start_response)
    except Exception as exc:
        logging.getLogger("labkit.server").exception("internal error on %s %s",
                                                     environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        content_type, data = _error_body(environ, f" ({type(exc).__name__}: {exc})")
        start_response("500 Internal Server Error", [("Content-Type", content_type),
                                                     ("Content-Length", str(len(data))),
                                                     ("x-amzn-ErrorType", _error_code(environ))],
                       sys.exc_info())
        return [data]


def _service(environ) -> str:
    credential = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2].split(",")[0]
    parts = credential.split("/")
    return parts[3] if len(parts) > 3 else ""


def _error_code(environ) -> str:
    return "InternalError" if _service(environ) == "s3" else "InternalFailure"


def _error_body(environ, detail: str) -> tuple[str, bytes]:
    """AWS's internal-failure error in the protocol the request used (JSON, CBOR, query, S3 XML)."""
    from uuid import uuid4
    from xml.sax.saxutils import escape

    code, request_id = _error_code(environ), str(uuid4())
    if code == "InternalError":
        return "application/xml", (f"<Error><Code>InternalError</Code><Message>We encountered an internal "
                                   f"error. Please try again.{escape(detail)}</Message><RequestId>"
                                   f"{request_id}</RequestId></Error>").encode()
    message = "The request processing has failed because of an unknown error, exception or failure." + detail
    if environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        return "application/cbor", _cbor_text_map({"__type": code, "message": message})
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in environ.get("CONTENT_TYPE", "") \
            or environ.get("PATH_INFO", "").endswith("/invocations"):
        return "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode()
    return "text/xml", (f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>"
                        f"{escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
                        f"</ErrorResponse>").encode()


def _cbor_text_map(values: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949 major types 5 and 3): all the error body needs."""
    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for info, size in ((24, 1), (25, 2), (26, 4)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
        raise ValueError("text too long")

    out = bytearray(head(5, len(values)))
    for key, value in values.items():
        for text in (key, value):
            raw = text.encode()
            out += head(3, len(raw)) + raw
    return bytes(out)


class LocalAWS:
    """One embedded local AWS on 127.0.0.1 (loopback only, by design)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, learner: bool = False,
                 sockets: dict[str, bool] | None = None):
        """``learner``: the TCP port serves graded code (restricted control API); ``sockets``:
        extra Unix socket paths to listen on, each mapped to whether it is a learner's."""
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise LabkitError(f"labkit serves on loopback only; {host!r} is not a loopback address")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.learner = learner
        self.sockets = dict(sockets or {})
        self._server = None
        self._extra: list = []
        self._thread: threading.Thread | None = None
        self._ticker_stop = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "LocalAWS":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        install_engines()
        _cache_moto_module_list()

        class RequestHandler(MotoRequestHandler):
            # werkzeug sends a response's headers and body in two writes: without TCP_NODELAY the
            # body can wait for the client's ACK of the headers (as urllib3 does on its side)
            disable_nagle_algorithm = True

        moto_app = DomainDispatcherApplication(create_backend_app)
        app = _ControlMiddleware(moto_app, learner=self.learner)
        for path, learner in self.sockets.items():
            server = make_server(f"unix://{path}", 0, _ControlMiddleware(moto_app, learner=learner),
                                 threaded=True, request_handler=MotoRequestHandler)
            self._extra.append(server)
            threading.Thread(target=server.serve_forever, name=f"labkit-unix-{len(self._extra)}",
                             daemon=True).start()
        try:
            self._server = make_server(self.host, self.port, app, threaded=True,
                                       request_handler=RequestHandler)
        except (OSError, SystemExit) as exc:
            if self.port and _port_in_use(self.host, self.port):
                raise LabkitError(f"port {self.port} on {self.host} is already in use; choose another "
                                  f"with --port N, or --port 0 for any free port") from None
            raise LabkitError(f"cannot start the local AWS on {self.host}:{self.port}: {exc}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="labkit-server",
                                        daemon=True)
        self._thread.start()
        threading.Thread(target=self._tick_forever, name="labkit-clock", daemon=True).start()
        return self

    def _tick_forever(self, every: float = 2.0) -> None:
        while not self._ticker_stop.wait(every):
            clock.tick()

    def stop(self) -> None:
        self._ticker_stop.set()
        for server in self._extra:
            server.shutdown()
            server.server_close()
        self._extra = []
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((host, port)) == 0


def main(argv: list[str] | None = None) -> int:
    """The grading server: ``python -m labkit.local.server --port P --learner-socket A
    --grader-socket B``. Serves until stdin closes or SIGTERM (the grader owns its lifetime); the
    TCP port, for the processes the engines start (Glue jobs), is a learner's."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="python -m labkit.local.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--learner-socket", required=True)
    parser.add_argument("--grader-socket", required=True)
    args = parser.parse_args(argv)
    server = LocalAWS("127.0.0.1", args.port, learner=True,
                      sockets={args.learner_socket: True, args.grader_socket: False}).start()
    print(f"endpoint: {server.endpoint}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: engines register their control routes
    # in ``labkit.local.server``.
    from labkit.local.server import main as _main

    raise SystemExit(_main())
