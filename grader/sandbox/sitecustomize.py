"""Network guard for code run by the grader (on PYTHONPATH of the grading workers only).

Every Python process started for grading (the worker, the notebook kernel, a training script the
local AWS runs) imports this at start-up. When ``LABKIT_NET_GUARD=1`` it installs an audit hook
(which cannot be removed later) that refuses name look-ups and connections to anything but the
loopback interface, and appends each attempt to ``LABKIT_NET_LOG`` so the grader can record it as
the reason for lost points. A learner's call to a real AWS endpoint fails at once instead of
hanging on the network or reaching an account.
"""

import os
import sys


def _install():
    import ipaddress

    log_path = os.environ.get("LABKIT_NET_LOG")
    local_names = {"localhost", "localhost.localdomain", "ip6-localhost", ""}

    def is_local(host):
        if host is None:
            return True
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        host = str(host).strip("[]").lower()
        if host in local_names:
            return True
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        return address.is_loopback or address.is_unspecified

    def record(what):
        if log_path:
            try:
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(what + "\n")
            except OSError:
                pass

    def hook(event, args):
        if event == "socket.getaddrinfo":
            host, port = args[0], args[1]
        elif event in ("socket.connect", "socket.sendto"):
            address = args[1]
            if not isinstance(address, tuple):  # AF_UNIX paths and the like stay local
                return
            host, port = address[0], address[1]
        else:
            return
        if is_local(host):
            return
        target = f"{host}:{port}"
        record(target)
        raise PermissionError(f"network access to {target} is blocked while grading "
                              "(graded code may only use the local AWS)")

    sys.addaudithook(hook)
    # The grading environment points the proxy variables at a refusing loopback port for programs
    # this hook cannot see (``!curl``). Python code ignores them and connects directly, so that the
    # hook names the real host in the refusal and in the grader's report.
    import urllib.request

    urllib.request.getproxies = lambda: {}


if os.environ.get("LABKIT_NET_GUARD") == "1":
    _install()
