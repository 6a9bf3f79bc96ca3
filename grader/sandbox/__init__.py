"""The per-submission sandbox: bubblewrap command lines for the learner's kernel and for the
submission's own local AWS, and the limits they run under.

Why bubblewrap (Debian's ``bubblewrap``, the sandbox Flatpak is built on): one unprivileged
command gives mount, pid, network, IPC and UTS namespaces with explicit bind mounts, a size-limited
tmpfs, a cleared environment and ``--die-with-parent``; util-linux ``unshare`` would need the same
mounts scripted by hand as root. What a sandboxed process sees:

- the operating system, the Python installation and the course venv, read-only, plus ``labkit``
  and ``datasets`` of the course (never ``grader/``, ``solutions/``, ``submitted/``, the gradebook,
  ``nbgrader_config.py`` or the instructor's home);
- a private, size-limited ``/tmp`` and ``HOME`` (the submission is copied into ``HOME``);
- only a loopback network of its own; the grading server only through a Unix socket;
- rlimits on address space, CPU time, file size, processes and core dumps (``prlimit``); when the
  grader runs as root, the kernel drops to an unused uid of its own first (root ignores the
  process limit, and a root-owned file is writable by root even without capabilities);
- an allow-listed environment.
The pid namespace ends with its first process, so nothing a submission starts outlives it.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INSIDE_TOOLS = "/opt/labkit-sandbox"  # where this folder appears inside a sandbox
AWS_PORT = 4566  # the same port inside the kernel's and the server's namespaces (Host headers match)
HOME = "/home/learner"

# System paths a Python kernel needs, bound read-only when present. /etc only in part: its other
# files (shadow, the instructor's configuration) stay invisible.
SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
ETC_PATHS = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
             "/etc/ssl", "/etc/ca-certificates", "/etc/fonts", "/etc/localtime", "/etc/mime.types",
             "/etc/nsswitch.conf", "/etc/hosts"]


@dataclass
class Limits:
    """Per-submission limits (set from nbgrader_config.py through ``SandboxedExecute``)."""

    memory_mb: int = 8192        # address space per process (RLIMIT_AS)
    processes: int = 512         # RLIMIT_NPROC (counted per user; see the instructor guide)
    file_size_mb: int = 2048     # largest file a process may write (RLIMIT_FSIZE)
    cpu_seconds: int = 3600      # CPU time per process (RLIMIT_CPU)
    tmp_mb: int = 2048           # size of the private /tmp and of HOME (tmpfs each)

    def prlimit(self) -> list[str]:
        mb = 1024 * 1024
        return ["prlimit", f"--as={self.memory_mb * mb}", f"--nproc={self.processes}",
                f"--fsize={self.file_size_mb * mb}", f"--cpu={self.cpu_seconds}", "--core=0", "--"]


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why no sandbox can be made on this machine (None when bubblewrap works)."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return ("bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf "
                "install bubblewrap); on macOS grade in a Linux VM or container")
    if not shutil.which("prlimit"):
        return "prlimit (util-linux) is not installed"
    probe = subprocess.run([bwrap, *_system_binds(), "--unshare-all", "--die-with-parent", "--",
                            sys.executable, "-c", "print('ok')"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "ok":
        return ("bubblewrap cannot create namespaces here (" + (probe.stderr.strip() or "no output")
                + "); unprivileged user namespaces may be disabled")
    return None


def _system_binds() -> list[str]:
    args = []
    for path in SYSTEM_PATHS + ETC_PATHS:
        if os.path.lexists(path):
            args += ["--ro-bind", path, path]
    for prefix in sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}):
        if not any(prefix.startswith(p + "/") for p in SYSTEM_PATHS):
            args += ["--ro-bind", prefix, prefix]
    return args


def _course_binds() -> list[str]:
    """The parts of the course a learner's code may read: the labkit runtime and the data set."""
    args = []
    for name in ("labkit", "datasets"):
        path = REPO / name
        if path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args + ["--ro-bind", str(HERE), INSIDE_TOOLS]


def as_root() -> bool:
    return os.geteuid() == 0


def sandbox_uid() -> int:
    """A uid no account uses, one per submission, for kernels started by a root grader."""
    return 200000 + secrets.randbelow(100000)


def _parents(targets: list[str]) -> list[str]:
    """Create every ancestor of the mount points world-readable (bubblewrap makes them 0700, which a
    kernel that dropped to its own uid could not traverse)."""
    ancestors = sorted({str(parent) for target in targets for parent in Path(target).parents
                        if str(parent) != "/"}, key=lambda p: p.count("/"))
    args = []
    for folder in ancestors:
        args += ["--perms", "0755", "--dir", folder]
    return args


def _common(env: dict[str, str], *, drop_later: bool = False, mounts: tuple[str, ...] = ()) -> list[str]:
    # A root grader's kernel starts as root without a user namespace (so that it can drop to its own
    # uid, see kernel_entry); everything else gets every namespace and no capabilities at once.
    isolation = (["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
                 if drop_later else ["--unshare-all", "--cap-drop", "ALL"])
    binds = _system_binds() + _course_binds()
    args = ["bwrap", *_parents(binds[2::3] + [HOME, *mounts]), *binds, "--proc", "/proc", "--dev", "/dev",
            *isolation, "--die-with-parent", "--new-session", "--hostname", "grading", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def base_env(home: str) -> dict[str, str]:
    """The allow-listed environment of every sandboxed process."""
    return {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONPATH": INSIDE_TOOLS, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "agg",
        "LABKIT_GRADING": "1", "LABKIT_BACKEND": "local", "LABKIT_NET_GUARD": "1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
    }


def kernel_command(*, run_dir: str, source_dir: str, aws_socket: str, limits: Limits,
                   kernel_args: list[str], uid: int | None = None) -> list[str]:
    """The learner's kernel: private copy of ``source_dir`` in HOME, ipc sockets in ``run_dir``;
    ``uid``: the uid it drops to (a root grader)."""
    lab = Path(source_dir).name or "work"
    env = base_env(HOME) | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{AWS_PORT}",
                            "LABKIT_NET_LOG": f"{run_dir}/network.log"}
    if uid is not None:
        env["LABKIT_SANDBOX_UID"] = str(uid)
    mb = 1024 * 1024
    return [*limits.prlimit(), *_common(env, drop_later=uid is not None, mounts=(run_dir, "/run/labkit-aws.sock")),
            "--size", str(limits.tmp_mb * mb), "--tmpfs", "/tmp",
            "--size", str(limits.tmp_mb * mb), "--tmpfs", HOME,
            "--ro-bind", source_dir, "/submission",
            "--bind", run_dir, run_dir,
            "--ro-bind", aws_socket, "/run/labkit-aws.sock",
            "--chdir", HOME, "--",
            sys.executable, f"{INSIDE_TOOLS}/kernel_entry.py", "/submission", f"{HOME}/{lab}",
            "/run/labkit-aws.sock", str(AWS_PORT), *kernel_args]


def server_command(*, aws_dir: str, tmp_dir: str) -> list[str]:
    """The submission's own local AWS: sockets in ``aws_dir``, scratch files in ``tmp_dir``. It runs
    code the learner wrote (training scripts, Glue jobs), so it is sandboxed like the kernel."""
    env = base_env("/tmp") | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{AWS_PORT}"}
    return [*_common(env), "--bind", tmp_dir, "/tmp", "--bind", aws_dir, aws_dir, "--chdir", "/tmp", "--",
            sys.executable, "-m", "labkit.local.server", "--port", str(AWS_PORT),
            "--learner-socket", f"{aws_dir}/learner.sock", "--grader-socket", f"{aws_dir}/grader.sock"]
