"""Wait helper for SageMaker Model Monitor executions (lab 10).

An hourly monitoring schedule runs at the top of each hour (plus up to ~20 minutes on AWS). Locally
the virtual clock is fast-forwarded to the next run; on AWS this polls list_monitoring_executions
with a progress bar. It only waits: creating the schedule is the learner's boto3 / SDK code.
"""

from __future__ import annotations

import time

from labkit.errors import LabkitError


def _executions(aws, schedule_name: str) -> list[dict]:
    return aws.client("sagemaker").list_monitoring_executions(
        MonitoringScheduleName=schedule_name, SortBy="ScheduledTime", SortOrder="Descending"
    )["MonitoringExecutionSummaries"]


def wait_for_execution(aws, schedule_name: str, *, timeout_hours: float = 2.0) -> dict:
    """Wait until the schedule has a new finished execution and return its summary."""
    finished = {"Completed", "CompletedWithViolations", "CompletedWithWarnings", "Failed", "Stopped"}
    before = {e["ScheduledTime"] for e in _executions(aws, schedule_name)}
    if aws.is_local:
        aws.fast_forward(hours=1)  # the next hourly run becomes due and executes
        new = [e for e in _executions(aws, schedule_name) if e["ScheduledTime"] not in before]
        if not new:
            raise LabkitError(f"no execution of {schedule_name!r} ran: is the schedule Scheduled and hourly?")
        return new[0]
    from tqdm.auto import tqdm

    deadline = time.time() + timeout_hours * 3600
    with tqdm(total=int(timeout_hours * 60), desc=f"waiting for {schedule_name}", unit="min") as bar:
        while time.time() < deadline:
            new = [e for e in _executions(aws, schedule_name) if e["ScheduledTime"] not in before
                   and e["MonitoringExecutionStatus"] in finished]
            if new:
                return new[0]
            time.sleep(60)
            bar.update(1)
    raise LabkitError(f"no execution of {schedule_name!r} finished within {timeout_hours} h")
