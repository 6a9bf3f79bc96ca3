"""A byte relay from a TCP port on loopback to a Unix socket.

The sandboxed kernel lives in its own network namespace, where TCP cannot reach the grading
server; a Unix socket bound into the sandbox can. Inside the sandbox the relay gives the kernel an
ordinary ``http://127.0.0.1:PORT`` endpoint (what boto3, the SageMaker SDK and ``!aws`` expect);
outside, the grader uses one to reach the server's grader socket. Standard library only: this file
is imported inside the sandbox, where the rest of the grader is invisible.
"""

from __future__ import annotations

import socket
import threading

CHUNK = 1 << 16


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


class Relay:
    """Accept on ``127.0.0.1:port`` (0 = any free port); forward each connection to ``unix_path``."""

    def __init__(self, unix_path: str, port: int = 0):
        self.unix_path = unix_path
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="labkit-relay", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Relay":
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.unix_path)
        except OSError:
            client.close()
            upstream.close()
            return
        for sock in (client,):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        try:
            self.listener.close()
        except OSError:
            pass


def main(argv: list[str]) -> int:
    """``python relay.py UNIX_PATH PORT``: relay while the process that started it (the kernel, once
    the entry point has exec'd) lives; prints ``ready PORT`` once listening.

    Exiting with the parent matters when grading runs without the sandbox's pid namespace: a relay
    in its own session would otherwise outlive grading and keep the grader's output pipes open.
    """
    import os
    import sys
    import time

    parent = os.getppid()
    relay = Relay(argv[0], int(argv[1])).start()
    print(f"ready {relay.port}", flush=True)
    sys.stdout.close()
    while os.getppid() == parent:
        time.sleep(0.5)
    relay.close()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
