"""``python -m labkit serve`` (the embedded local AWS as a process) and ``python -m labkit lab``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

from labkit.errors import LabkitError


def serve(host: str, port: int) -> int:
    from labkit.local.server import LocalAWS

    server = LocalAWS(host, port).start()
    print(f"endpoint: {server.endpoint}", flush=True)
    print("labkit: embedded local AWS is serving; Ctrl-C stops it", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


def lab(port: int, extra: list[str]) -> int:
    """One shared local AWS for every kernel, then JupyterLab on the repository."""
    server = subprocess.Popen([sys.executable, "-m", "labkit", "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    first = server.stdout.readline().strip()
    if not first.startswith("endpoint: "):
        server.wait()
        return server.returncode or 1
    endpoint = first.split(" ", 1)[1]
    print(f"labkit: shared local AWS at {endpoint}; every notebook's labkit.connect() reuses it",
          flush=True)   # before JupyterLab's own log, also when stdout is a pipe (tests, services)
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, LABKIT_BACKEND="local")
    try:
        # CurveZMQ keys for every kernel (the python3 kernelspec declares support): encrypted loopback
        # TCP, so ipykernel has no "running over TCP without encryption" warning to print.
        return subprocess.call([sys.executable, "-m", "jupyterlab",
                                "--KernelManager.transport_encryption=auto", *extra], env=env)
    finally:
        server.terminate()
        server.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the embedded local AWS until stopped")
    serve_parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    lab_parser = commands.add_parser("lab", help="JupyterLab with one shared local AWS")
    lab_parser.add_argument("--port", type=int, default=0)
    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "serve":
            if extra:
                parser.error(f"unknown arguments: {' '.join(extra)}")
            return serve(args.host, args.port)
        return lab(args.port, extra)
    except LabkitError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
