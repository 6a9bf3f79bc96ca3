"""One submission's grading world: its own local AWS (sandboxed, outside the kernel), the grader's
trusted handle on it, and the kernel manager that starts the learner's kernel in its sandbox.

The server listens on two Unix sockets: the learner's (bound into the kernel sandbox, restricted
control API) and the grader's (never visible to graded code). Hidden checks use the grader's one
through a loopback relay in this process. Everything lives in one private scratch folder that is
removed when the submission ends; the server's process group is killed with it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from grader import sandbox
from grader.outside import grader_handle
from grader.sandbox.relay import Relay


class SubmissionWorld:
    """Start with ``start()``, stop with ``close()`` (idempotent)."""

    def __init__(self, limits: sandbox.Limits, sandboxed: bool = True, start_timeout: float = 120):
        self.limits = limits
        self.sandboxed = sandboxed
        self.start_timeout = start_timeout
        self.server: subprocess.Popen | None = None
        self.relay: Relay | None = None
        self.aws = None
        self.folder: Path | None = None
        self.uid: int | None = None

    def start(self) -> "SubmissionWorld":
        self.folder = Path(tempfile.mkdtemp(prefix="grader-submission-"))
        os.chmod(self.folder, 0o700)
        for name in ("aws", "run", "server-tmp", "home"):
            (self.folder / name).mkdir()
        aws_dir, tmp_dir = str(self.folder / "aws"), str(self.folder / "server-tmp")
        if self.sandboxed:
            command = sandbox.server_command(aws_dir=aws_dir, tmp_dir=tmp_dir)
            env = None
        else:
            command = [sys.executable, "-m", "labkit.local.server", "--port", "0",
                       "--learner-socket", f"{aws_dir}/learner.sock",
                       "--grader-socket", f"{aws_dir}/grader.sock"]
            env = sandbox.base_env(tmp_dir) | {"PYTHONPATH": str(sandbox.HERE), "TMPDIR": tmp_dir,
                                               "PATH": os.environ.get("PATH", "")}
        self.server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True, env=env, cwd=tmp_dir,
                                       start_new_session=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.server.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        if not line or not line[0].startswith("endpoint: "):
            self.close()
            raise RuntimeError("the submission's local AWS did not start")
        self.uid = sandbox.sandbox_uid() if self.sandboxed and sandbox.as_root() else None
        if self.uid is not None:  # the kernel's own uid creates its ipc sockets and reaches the server
            os.chown(self.run_dir, self.uid, self.uid)
            os.chmod(self.learner_socket, 0o666)
        self.relay = Relay(f"{aws_dir}/grader.sock").start()
        self.aws = grader_handle(self.relay.endpoint)
        return self

    @property
    def learner_socket(self) -> str:
        return str(self.folder / "aws" / "learner.sock")

    @property
    def run_dir(self) -> str:
        return str(self.folder / "run")

    def prepare(self, lab: str | None) -> None:
        """Give the lab the state the earlier labs leave (``prepare(aws)`` of its checks module)."""
        number = (lab or "").split("-")[0]
        if not number.isdigit():
            return
        try:
            module = importlib.import_module(f"grader.checks.lab{number}")
        except ModuleNotFoundError:
            return
        if callable(getattr(module, "prepare", None)):
            module.prepare(self.aws)

    def network_attempts(self) -> list[str]:
        log = Path(self.run_dir) / "network.log"
        try:
            return sorted(set(log.read_text(errors="replace").split()))[:20]
        except OSError:
            return []

    def kernel_manager_class(self) -> type:
        world = self

        class SubmissionKernelManager(SandboxedKernelManager):
            pass

        SubmissionKernelManager.world = world
        return SubmissionKernelManager

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        if self.server is not None:
            try:
                os.killpg(self.server.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.server.wait()
            self.server = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class SandboxedKernelManager(AsyncKernelManager):
    """Starts ipykernel inside the submission's sandbox, over ipc sockets in the run folder (TCP
    cannot cross the sandbox's network namespace; ipc also needs no port and no encryption
    warning). Interrupts travel as messages, since a signal to bubblewrap would not reach it."""

    world: SubmissionWorld

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = os.path.join(self.world.run_dir, "kernel")
        self.connection_file = os.path.join(self.world.run_dir, "kernel.json")

    def format_kernel_cmd(self, extra_arguments=None):
        command = super().format_kernel_cmd(extra_arguments)
        kernel_args = command[command.index("ipykernel_launcher") + 1:] if "ipykernel_launcher" in command \
            else ["-f", self.connection_file]
        source = str(self._launch_args.get("cwd") or os.getcwd())
        world = self.world
        if world.sandboxed:
            return sandbox.kernel_command(run_dir=world.run_dir, source_dir=source,
                                          aws_socket=world.learner_socket, limits=world.limits,
                                          kernel_args=kernel_args, uid=world.uid)
        work = str(world.folder / "home" / (Path(source).name or "work"))
        return [sys.executable, str(sandbox.HERE / "kernel_entry.py"), source, work, world.learner_socket,
                "0", *kernel_args]

    async def _async_pre_start_kernel(self, **kw):
        command, kw = await super()._async_pre_start_kernel(**kw)
        if not self.world.sandboxed:  # a trusted class: still no credentials, still the guard
            home = str(self.world.folder / "home")
            kw["env"] = sandbox.base_env(home) | {"PYTHONPATH": str(sandbox.HERE), "TMPDIR": home,
                                                  "PATH": os.environ.get("PATH", ""),
                                                  "LABKIT_NET_LOG": f"{self.world.run_dir}/network.log"}
        return command, kw

    async def interrupt_kernel(self) -> None:
        if not self.has_kernel:
            raise RuntimeError("Cannot interrupt kernel. No kernel is running!")
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        self.session.send(self._control_socket, msg)
