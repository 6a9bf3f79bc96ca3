"""First program inside a submission's kernel sandbox (see grader.sandbox).

Copies the submission into the sandbox's private, size-limited home, starts the relay that gives
the kernel an ordinary ``http://127.0.0.1:PORT`` endpoint for the grading server (whose Unix socket
is bound into the sandbox), then becomes the IPython kernel. Standard library only until the exec.
"""

import os
import shutil
import subprocess
import sys


def drop_to(uid: int, owned: list[str]) -> None:
    """Become ``uid`` (no groups, no capabilities) after handing it its private folders."""
    for top in owned:
        for folder, dirs, files in os.walk(top):
            for name in [folder] + [os.path.join(folder, f) for f in files + dirs]:
                os.lchown(name, uid, uid)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def main(argv: list[str]) -> None:
    source, work, aws_socket, port = argv[:4]
    kernel_args = argv[4:]
    if os.path.isdir(source):
        shutil.copytree(source, work, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    os.makedirs(work, exist_ok=True)
    uid = os.environ.pop("LABKIT_SANDBOX_UID", None)
    relay = subprocess.Popen([sys.executable, "-I", os.path.join(os.path.dirname(__file__), "relay.py"),
                              aws_socket, port], stdout=subprocess.PIPE, text=True, start_new_session=True)
    ready = relay.stdout.readline()
    if not ready.startswith("ready"):
        sys.exit("the sandbox's relay to the local AWS did not start")
    relay.stdout.close()
    # The relay keeps the sandbox's uid of the start (a root grader's: exempt from the process limit),
    # so a learner who exhausts that limit still reaches the local AWS; the kernel then drops.
    if uid is not None:
        drop_to(int(uid), [os.path.dirname(work), work, "/tmp"])
    os.chdir(work)
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{ready.split()[1]}"
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *kernel_args])


if __name__ == "__main__":
    main(sys.argv[1:])
