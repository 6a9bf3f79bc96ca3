"""Where a grading batch runs: a Dask ``LocalCluster`` of N worker processes on this machine, or an
existing Dask cluster (``--scheduler ADDRESS`` or ``DASK_SCHEDULER_ADDRESS``).

Assumption for an existing cluster: its workers run this repository's grader with the same Python
environment, and see the course folder at the same absolute path as the client (the same machine,
or a shared file system): a task reads ``submitted/<student>/<LAB>/`` and the gradebook snapshot
there, and returns everything it produced to the client, which alone writes the course's files.

A worker lost mid-batch (killed, out of memory, its machine gone) loses no submission: the scheduler
runs its tasks again elsewhere. A submission that takes ``ALLOWED_FAILURES`` workers down with it is
not retried again; it gets zero with that reason (the scheduler's ``allowed-failures``; an existing
cluster uses its own scheduler's setting).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid

ALLOWED_FAILURES = 2


@contextlib.contextmanager
def grading_client(jobs: int, scheduler: str | None = None, quiet: bool = False):
    """A ``distributed.Client`` on the chosen cluster; a local cluster is closed (and every process
    it started killed) on exit."""
    import dask
    from distributed import Client, LocalCluster

    from grader.course import grading_env, kill_marked

    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if scheduler:
        with Client(scheduler, timeout=60) as client:
            if not quiet:
                print(f"grading on the Dask cluster at {scheduler} "
                      f"({len(client.scheduler_info()['workers'])} worker(s)); dashboard: {client.dashboard_link}",
                      flush=True)
            yield client
        return
    token = uuid.uuid4().hex
    from grader import autograde

    autograde.STARTED_TOKENS.append(token)
    scratch = tempfile.mkdtemp(prefix="grader-dask-")
    saved = dict(os.environ)
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "distributed.worker.daemon": False,  # workers start kernels and servers
                          "distributed.logging.distributed": "error"}):
        try:
            # The workers start from the grading environment (they inherit this one): no credentials,
            # the network guard on (loopback, where their scheduler is, stays open), the token.
            os.environ.clear()
            os.environ.update(grading_env(token, saved))
            try:
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                       dashboard_address="127.0.0.1:0", host="127.0.0.1",
                                       local_directory=scratch, silence_logs=40)
            finally:
                os.environ.clear()
                os.environ.update(saved)
            try:
                with Client(cluster) as client:
                    if not quiet:
                        print(f"grading on a local Dask cluster of {jobs} process(es); "
                              f"dashboard: {client.dashboard_link}", flush=True)
                    yield client
            finally:
                cluster.close(timeout=60)
        finally:
            kill_marked(token)
            shutil.rmtree(scratch, ignore_errors=True)
