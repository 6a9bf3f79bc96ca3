"""Wait for a Glue crawler or job run to finish (helpers that only wait; the lab's calls are boto3).

Crawls and job runs are asynchronous on AWS (a crawl takes a minute or more, a Python shell job
at least tens of seconds) and locally (they run on the local AWS's background workers), so labs
poll ``get_crawler`` / ``get_job_run`` until the state is final, with a progress bar.
"""

from __future__ import annotations

import time

from labkit.errors import LabkitError

FINAL_JOB_STATES = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"}


def _poll(aws, fetch, done, describe, timeout: float, label: str):
    from tqdm.auto import tqdm

    interval = 0.25 if aws.is_local else 10
    started = time.monotonic()
    with tqdm(desc=label, bar_format="{desc}: {elapsed} {postfix}") as bar:
        while True:
            item = fetch()
            bar.set_postfix_str(describe(item))
            if done(item):
                return item
            if time.monotonic() - started > timeout:
                raise LabkitError(f"{label}: still {describe(item)} after {timeout:.0f} s")
            time.sleep(interval)


def wait_for_crawler(aws, name: str, timeout: float = 1800) -> dict:
    """Wait until the crawler is READY again after a crawl; return ``get_crawler``'s Crawler.

    Call it right after ``start_crawler`` (the crawler is RUNNING by then)."""
    glue = aws.client("glue")
    return _poll(aws, lambda: glue.get_crawler(Name=name)["Crawler"],
                 lambda c: c["State"] == "READY",
                 lambda c: c["State"] + (f" (last crawl {c['LastCrawl']['Status']})"
                                         if c.get("LastCrawl") and c["State"] == "READY" else ""),
                 timeout, f"crawler {name}")


def wait_for_job_run(aws, job_name: str, run_id: str, timeout: float = 3600) -> dict:
    """Wait until a job run reaches a final state; return ``get_job_run``'s JobRun."""
    glue = aws.client("glue")
    return _poll(aws, lambda: glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"],
                 lambda r: r["JobRunState"] in FINAL_JOB_STATES,
                 lambda r: r["JobRunState"], timeout, f"job {job_name}")
