"""Athena display / wait helpers: wait for a query you started, and show its result as a DataFrame.

Graded tasks call ``start_query_execution`` themselves; these helpers only save the polling and
paging boilerplate when a lab just wants to *look* at a result. They work the same on AWS and on
the local AWS (both answer the same API).
"""

from __future__ import annotations

import time

import pandas as pd

from labkit.errors import LabkitError

_NUMERIC = {"tinyint": "Int64", "smallint": "Int64", "integer": "Int64", "bigint": "Int64",
            "double": "float64", "real": "float64", "float": "float64"}


def wait(aws, query_execution_id: str, timeout: float = 300, poll: float = 0.2) -> dict:
    """Poll ``get_query_execution`` until the query leaves QUEUED/RUNNING; return QueryExecution.

    Raises LabkitError with Athena's StateChangeReason when the query FAILED or was CANCELLED."""
    athena = aws.client("athena")
    deadline = time.monotonic() + timeout
    delay = poll
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_execution_id)["QueryExecution"]
        state = execution["Status"]["State"]
        if state == "SUCCEEDED":
            return execution
        if state in ("FAILED", "CANCELLED"):
            reason = execution["Status"].get("StateChangeReason", "no reason given")
            raise LabkitError(f"Athena query {state}: {reason}")
        if time.monotonic() > deadline:
            raise LabkitError(f"Athena query {query_execution_id} still {state} after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)  # on AWS a query takes seconds: back off


def results(aws, query_execution_id: str) -> pd.DataFrame:
    """All result rows (every page) as a DataFrame typed from ResultSetMetadata.ColumnInfo."""
    athena = aws.client("athena")
    pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_execution_id)
    rows, info = [], None
    for page in pages:
        info = info or page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        rows.extend([d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"])
    columns = [c["Name"] for c in info or []]
    execution = athena.get_query_execution(QueryExecutionId=query_execution_id)["QueryExecution"]
    if execution.get("StatementType") == "DML" and rows and rows[0] == columns:
        rows = rows[1:]  # the first row of a SELECT result is the header
    frame = pd.DataFrame(rows, columns=columns)
    for col in info or []:
        kind = col["Type"]
        if kind in _NUMERIC:
            frame[col["Name"]] = pd.to_numeric(frame[col["Name"]]).astype(_NUMERIC[kind])
        elif kind == "decimal":
            frame[col["Name"]] = pd.to_numeric(frame[col["Name"]])
        elif kind == "boolean":
            frame[col["Name"]] = frame[col["Name"]].map({"true": True, "false": False})
        elif kind in ("date", "timestamp"):
            frame[col["Name"]] = pd.to_datetime(frame[col["Name"]])
    return frame


def query(aws, sql: str, *, database: str = "default", workgroup: str | None = None,
          output: str | None = None, timeout: float = 300) -> pd.DataFrame:
    """Start ``sql``, wait, and return the result as a DataFrame (for looking, not for grading).

    ``output`` defaults to ``s3://<course bucket>/athena-results/`` unless a workgroup is given."""
    athena = aws.client("athena")
    kwargs = {"QueryString": sql, "QueryExecutionContext": {"Database": database}}
    if workgroup:
        kwargs["WorkGroup"] = workgroup
    if output or not workgroup:
        kwargs["ResultConfiguration"] = {"OutputLocation": output or f"s3://{aws.bucket}/athena-results/"}
    qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
    wait(aws, qid, timeout=timeout)
    return results(aws, qid)


def scanned(aws, query_execution_id: str) -> int:
    """DataScannedInBytes of a finished query (what Athena bills: $5 per TB, 10 MB minimum)."""
    execution = aws.client("athena").get_query_execution(QueryExecutionId=query_execution_id)
    return int(execution["QueryExecution"]["Statistics"].get("DataScannedInBytes", 0))
