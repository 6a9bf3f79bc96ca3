"""Checks of the grader's fixture lab (tests/fixtures/course, lab 00-sample).

Not a course lab: it exists so the grader pipeline (release, autograde, selfcheck, feedback) is
tested end to end on a tiny notebook whose hidden checks read real S3 state.
"""

from __future__ import annotations

import json

from grader.checks.common import require, s3_body


def check_hello(aws) -> None:
    """Task 1: ``hello.txt`` in the course bucket holds exactly ``hello labs``."""
    body = s3_body(aws, "hello.txt", todo="put the text 'hello labs' under the key hello.txt")
    require(body.strip() == b"hello labs", f"hello.txt contains {body[:40]!r}",
            "its content must be the text 'hello labs'")


def check_summary(aws) -> None:
    """Task 2: ``summary.json`` is JSON whose ``n`` is the number of other objects in the bucket."""
    body = s3_body(aws, "summary.json", todo="store json.dumps(summary) under the key summary.json")
    try:
        summary = json.loads(body)
    except ValueError:
        summary = None
    require(isinstance(summary, dict) and isinstance(summary.get("n"), int),
            "summary.json is not a JSON object with an integer 'n'", "store json.dumps({'n': <count>})")
    listing = aws.client("s3").list_objects_v2(Bucket=aws.bucket).get("Contents", [])
    others = sum(1 for o in listing if o["Key"] != "summary.json")
    require(summary["n"] == others, f"summary.json says n={summary['n']} but the bucket holds {others} "
            "other object(s)", "count the objects with list_objects_v2 before writing summary.json")
