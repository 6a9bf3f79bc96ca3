"""Hidden checks of lab 04 (Firehose): the delivery stream, exactly-once delivery, the tumbling
windows and the clean-up. They read state through boto3 on the labkit handle only."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from botocore.exceptions import ClientError

from grader.checks.common import fail, require, require_prefix_gone, versioned_course_bucket

STREAM = "flight-events"
ROLE = "labkit-firehose-delivery"
PREFIX = "events/"
ERROR_PREFIX = "events-errors/"
DATED_PREFIX = "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
DATED_ERROR_PREFIX = "events-errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/"
DAY = "2013-06-14"  # the UTC day of flight events the lab replays


def prepare(aws) -> None:
    """Grading hook: the course bucket as lab 02 leaves it (versioned)."""
    versioned_course_bucket(aws)


def expected_events():
    """The lab's slice of the replayed events (deterministic: labkit.datasets)."""
    import pandas as pd

    from labkit import datasets

    events = datasets.firehose_events()
    start = pd.Timestamp(DAY, tz="UTC")
    end = start + pd.Timedelta(days=1)
    return events[(events["event_time"] >= start) & (events["event_time"] < end)].reset_index(drop=True)


def _destination(aws) -> dict:
    try:
        description = aws.client("firehose").describe_delivery_stream(
            DeliveryStreamName=STREAM)["DeliveryStreamDescription"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            fail(f"delivery stream '{STREAM}' does not exist",
                 "create it with firehose.create_delivery_stream")
        raise
    require(description.get("DeliveryStreamType", "DirectPut") == "DirectPut",
            f"stream '{STREAM}' is of type {description.get('DeliveryStreamType')}",
            "the lab sends records directly: use DeliveryStreamType='DirectPut'")
    for destination in description.get("Destinations", []):
        for name in ("ExtendedS3DestinationDescription", "S3DestinationDescription"):
            if name in destination:
                return destination[name]
    fail(f"stream '{STREAM}' has no S3 destination", "use ExtendedS3DestinationConfiguration")
    raise AssertionError("unreachable")


def check_stream(aws) -> None:
    """Task 1: DirectPut to the course bucket, GZIP, 1 MiB / 60 s buffering, the dated prefix and
    the error prefix the task gives, delivered with a role Firehose can assume."""
    config = _destination(aws)
    bucket = config.get("BucketARN", "").split(":")[-1]
    require(bucket == aws.bucket, f"stream '{STREAM}' delivers to bucket '{bucket}'",
            f"deliver to the course bucket '{aws.bucket}' (BucketARN arn:aws:s3:::{aws.bucket})")
    compression = config.get("CompressionFormat", "UNCOMPRESSED")
    require(compression == "GZIP", f"stream '{STREAM}' delivers {compression} objects",
            "set CompressionFormat='GZIP' (JSON compresses about 10x: less storage, fewer bytes "
            "for Athena to scan)")
    hints = config.get("BufferingHints") or {}
    interval, size = hints.get("IntervalInSeconds", 300), hints.get("SizeInMBs", 5)
    require(interval == 60, f"the buffer interval is {interval} s",
            "use BufferingHints IntervalInSeconds=60 so data lands within a minute")
    require(size == 1, f"the buffer size is {size} MiB", "use BufferingHints SizeInMBs=1")
    prefix = config.get("Prefix") or ""
    require(prefix == DATED_PREFIX, f"the Prefix is {prefix!r}",
            f"use Prefix '{DATED_PREFIX}': the key=value folders become partitions for Glue and Athena")
    error_prefix = config.get("ErrorOutputPrefix") or ""
    require(error_prefix == DATED_ERROR_PREFIX, f"the ErrorOutputPrefix is {error_prefix!r}",
            f"use '{DATED_ERROR_PREFIX}' so failed records are kept apart, by error type")
    role_name = config.get("RoleARN", "").rsplit("/", 1)[-1]
    require(role_name == ROLE, f"the stream uses role '{role_name}'",
            f"create the IAM role '{ROLE}' and pass its ARN as RoleARN")
    try:
        trust = aws.client("iam").get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    except ClientError:
        fail(f"IAM role '{ROLE}' does not exist", "create it with iam.create_role")
    trust = json.loads(trust) if isinstance(trust, str) else trust
    principals = json.dumps(trust)
    require("firehose.amazonaws.com" in principals, f"role '{ROLE}' does not trust Firehose",
            "its trust policy must allow Principal {'Service': 'firehose.amazonaws.com'} "
            "to sts:AssumeRole")


def delivered_event_ids(aws) -> Counter:
    """Every event_id in the objects under events/ (all gzip JSON lines), counted."""
    s3 = aws.client("s3")
    ids: Counter = Counter()
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=PREFIX):
        keys += [o["Key"] for o in page.get("Contents", [])]
    require(keys, f"nothing was delivered under s3://{aws.bucket}/{PREFIX}",
            "send the events with put_record_batch, then wait for delivery "
            "(labkit.firehose.wait_for_delivery)")
    for key in keys:
        body = s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
        require(key.endswith(".gz") and body[:2] == b"\x1f\x8b", f"s3://{aws.bucket}/{key} is not gzip",
                "deliver with CompressionFormat='GZIP'")
        for line in gzip.decompress(body).splitlines():
            if line.strip():
                try:
                    ids[json.loads(line)["event_id"]] += 1
                except (ValueError, KeyError, TypeError):
                    fail(f"{key} holds a line that is not an event JSON object: {line[:60]!r}",
                         "send each event as one JSON line (labkit.datasets.event_records)")
    return ids


def check_delivery(aws) -> None:
    """Task 2: every event of the day delivered exactly once (failed puts retried, not resent)."""
    ids = delivered_event_ids(aws)
    expected = set(expected_events()["event_id"])
    missing = expected - set(ids)
    duplicated = sum(n - 1 for n in ids.values() if n > 1)
    extra = set(ids) - expected
    require(not missing, f"{len(missing)} of {len(expected)} events were never delivered",
            "retry the records whose RequestResponses entry has an ErrorCode until FailedPutCount "
            "is 0")
    require(not duplicated, f"{duplicated} events were delivered more than once",
            "retry only the failed records, not the whole batch")
    require(not extra, f"{len(extra)} delivered events are not from {DAY}",
            f"send exactly the events of {DAY} (the lab's `day_events`)")


def check_windows(aws, per_minute) -> None:
    """Task 3: departures per 1-minute tumbling window per origin airport."""
    import pandas as pd

    require(isinstance(per_minute, pd.DataFrame), "per_minute is not a pandas DataFrame",
            "build it with groupby(['origin', 'window_start']).size()")
    needed = {"origin", "window_start", "departures"}
    require(needed <= set(per_minute.columns),
            f"per_minute has columns {sorted(per_minute.columns)}",
            "it needs the columns origin, window_start and departures (reset_index after groupby)")
    # Judged on the events that reached S3: events lost in delivery are Task 2's mistake.
    events = expected_events()
    events = events[events["event_id"].isin(set(delivered_event_ids(aws)))]
    departed = events[events["event_type"] == "departed"]
    truth = (departed.assign(window_start=departed["event_time"].dt.floor("min"))
             .groupby(["origin", "window_start"]).size().rename("departures"))
    got = per_minute[list(needed)].copy()
    got["window_start"] = pd.to_datetime(got["window_start"], utc=True)
    got = got[got["departures"] > 0].set_index(["origin", "window_start"])["departures"]
    require(got.index.is_unique, "per_minute has the same (origin, window_start) more than once",
            "each window must appear once per airport: group by origin and the window start")
    total = int(got.sum())
    if total == len(events) != len(departed):
        fail(f"the windows count {total} events, cancelled flights included",
             "count only event_type == 'departed'")
    require(total == len(departed), f"the windows count {total} departures; the delivered events hold "
            f"{len(departed)}", "count every delivered departed event exactly once")
    require(got.index.get_level_values("window_start").second.max() == 0 and len(got) == len(truth),
            f"per_minute has {len(got)} windows; 1-minute tumbling windows give {len(truth)}",
            "floor event_time to the minute (dt.floor('min')): tumbling windows do not overlap")
    diff = (got.reindex(truth.index).fillna(-1) != truth).sum()
    require(diff == 0, f"{diff} windows have the wrong count",
            "window on event_time (when the flight departed), not on arrival in S3")


def check_cleanup(aws, delivered_keys) -> None:
    """Clean-up: the stream, the delivered objects (``delivered_keys``, the keys task 2 received;
    nothing delivered means nothing was cleaned up) and the delivery role are gone."""
    require(isinstance(delivered_keys, (list, tuple)) and len(delivered_keys) > 0,
            "there are no delivered keys to clean up",
            "complete tasks 1-2 first (keep wait_for_delivery's result in `keys`)")
    try:
        status = aws.client("firehose").describe_delivery_stream(
            DeliveryStreamName=STREAM)["DeliveryStreamDescription"]["DeliveryStreamStatus"]
    except ClientError:
        status = None
    require(status in (None, "DELETING"), f"delivery stream '{STREAM}' still exists ({status})",
            "delete it with firehose.delete_delivery_stream")
    for prefix in (PREFIX, ERROR_PREFIX):
        require_prefix_gone(aws, prefix, "delete them, every version (list_object_versions + delete_objects)")
    try:
        aws.client("iam").get_role(RoleName=ROLE)
        exists = True
    except ClientError:
        exists = False
    require(not exists, f"IAM role '{ROLE}' still exists",
            "delete its inline policy (delete_role_policy), then the role (delete_role)")
