"""Lab 04 (Firehose): the hidden checks on good and wrong states, and the notebook round trips."""

from __future__ import annotations

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from grader.checks import lab04
from labkit import datasets
from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, create_service_role, delete_role,
                           empty_prefix, ensure_bucket, fails, graded_cells, run_blank, run_twice)

NOTEBOOK = REPO / "solutions/04-firehose/04-firehose.ipynb"
GOOD = {"Prefix": "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/",
        "ErrorOutputPrefix": "events-errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}, "CompressionFormat": "GZIP"}


@pytest.fixture()
def aws(local_aws):
    """A clean slate for the lab's fixed names: no stream, no role, empty prefixes."""
    ensure_bucket(local_aws)
    _teardown(local_aws)
    yield local_aws
    _teardown(local_aws)


def _teardown(aws):
    try:
        aws.client("firehose").delete_delivery_stream(DeliveryStreamName=lab04.STREAM)
    except ClientError:
        pass
    delete_role(aws, lab04.ROLE)
    empty_prefix(aws, lab04.PREFIX)
    empty_prefix(aws, lab04.ERROR_PREFIX)


def _role(aws, service="firehose.amazonaws.com"):
    return create_service_role(aws, lab04.ROLE, service)


def _stream(aws, role_arn=None, **overrides):
    config = {"RoleARN": role_arn or _role(aws), "BucketARN": f"arn:aws:s3:::{aws.bucket}",
              **GOOD, **overrides}
    config = {k: v for k, v in config.items() if v is not None}
    aws.client("firehose").create_delivery_stream(
        DeliveryStreamName=lab04.STREAM, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=config)


def _send(aws, records):
    firehose = aws.client("firehose")
    for begin in range(0, len(records), 500):
        result = firehose.put_record_batch(DeliveryStreamName=lab04.STREAM, Records=[
            {"Data": r} for r in records[begin:begin + 500]])
        assert result["FailedPutCount"] == 0
    aws.fast_forward(61)


def _records(events=None):
    return list(datasets.event_records(lab04.expected_events() if events is None else events))


# --- task 1: the stream -------------------------------------------------------------------------
def test_stream_good(aws):
    _stream(aws)
    lab04.check_stream(aws)


@pytest.mark.parametrize("overrides, match", [
    ({"CompressionFormat": "UNCOMPRESSED"}, "UNCOMPRESSED objects"),
    ({"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300}}, "interval is 300 s"),
    ({"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}}, "buffer size is 5 MiB"),
    ({"Prefix": "events/", "ErrorOutputPrefix": None}, "the Prefix is 'events/'"),
    ({"Prefix": "flights/!{timestamp:yyyy}/"}, "use Prefix 'events/year="),
    ({"Prefix": "events/!{timestamp:yyyy}/!{timestamp:MM}/"}, "key=value folders"),
    ({"ErrorOutputPrefix": "events-errors/!{timestamp:yyyy}/"}, "ErrorOutputPrefix|error-output-type"),
])
def test_stream_wrong(aws, overrides, match):
    try:
        _stream(aws, **overrides)
    except ClientError as error:  # AWS itself refuses some wrong configurations
        assert "ErrorOutputPrefix" in str(error)
        fails(lab04.check_stream, aws, match="does not exist")
        return
    fails(lab04.check_stream, aws, match=match)


def test_stream_missing_and_untrusting_role(aws):
    fails(lab04.check_stream, aws, match="'flight-events' does not exist")
    _stream(aws, role_arn=_role(aws, service="glue.amazonaws.com"))
    fails(lab04.check_stream, aws, match="does not trust Firehose")


# --- task 2: delivery ---------------------------------------------------------------------------
def test_delivery_good(aws):
    _stream(aws)
    _send(aws, _records())
    lab04.check_delivery(aws)


def test_delivery_wrong(aws):
    _stream(aws)
    fails(lab04.check_delivery, aws, match="nothing was delivered")
    records = _records()
    _send(aws, records[10:])  # failed records never retried
    fails(lab04.check_delivery, aws, match="10 of 998 events were never delivered")
    _send(aws, records[:60])  # the whole batch resent instead of only the failures
    fails(lab04.check_delivery, aws, match="50 events were delivered more than once")


def test_delivery_other_day_and_uncompressed(aws):
    _stream(aws)
    events = datasets.firehose_events()
    _send(aws, _records() + _records(events.head(3)))
    fails(lab04.check_delivery, aws, match="3 delivered events are not from 2013-06-14")
    _teardown(aws)
    _stream(aws, CompressionFormat="UNCOMPRESSED")
    _send(aws, _records())
    fails(lab04.check_delivery, aws, match="is not gzip")


# --- task 3: windows ----------------------------------------------------------------------------
def _windows(events, freq="min", types=("departed",)):
    chosen = events[events["event_type"].isin(types)]
    return (chosen.assign(window_start=chosen["event_time"].dt.floor(freq))
            .groupby(["origin", "window_start"]).size().rename("departures").reset_index())


def test_windows_judged_on_what_was_delivered(aws):
    events = lab04.expected_events()
    _stream(aws)
    _send(aws, _records(events.iloc[100:]))  # Task 2 lost 100 events: its own mistake
    lab04.check_windows(aws, _windows(events.iloc[100:]))
    fails(lab04.check_windows, aws, _windows(events), match="the delivered events hold")


def test_windows_good_and_wrong(aws):
    local_aws = aws
    events = lab04.expected_events()
    _stream(aws)
    _send(aws, _records())
    lab04.check_windows(local_aws, _windows(events))
    as_text = _windows(events).assign(window_start=lambda d: d["window_start"].astype(str))
    lab04.check_windows(local_aws, as_text)  # strings that parse to the same instants are fine
    fails(lab04.check_windows, local_aws, _windows(events, types=("departed", "cancelled")),
          match="cancelled flights included")
    fails(lab04.check_windows, local_aws, _windows(events, freq="5min"),
          match="1-minute tumbling windows give")
    fails(lab04.check_windows, local_aws, _windows(events).rename(columns={"departures": "n"}),
          match="needs the columns")
    shifted = _windows(events).assign(window_start=lambda d: d["window_start"] + pd.Timedelta("1min"))
    fails(lab04.check_windows, local_aws, shifted, match="windows have the wrong count")
    fails(lab04.check_windows, local_aws, {"EWR": 3}, match="not a pandas DataFrame")


# --- clean-up -----------------------------------------------------------------------------------
def test_cleanup(aws):
    keys = ["events/year=2013/x.gz"]
    lab04.check_cleanup(aws, keys)
    fails(lab04.check_cleanup, aws, [], match="no delivered keys")
    _stream(aws)
    fails(lab04.check_cleanup, aws, keys, match="'flight-events' still exists")
    _send(aws, _records()[:5])
    aws.client("firehose").delete_delivery_stream(DeliveryStreamName=lab04.STREAM)
    fails(lab04.check_cleanup, aws, keys, match="object.s. remain under")
    s3 = aws.client("s3")
    s3.put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Enabled"})
    empty_prefix(aws, lab04.PREFIX)  # current versions only: the versioned bucket keeps the data
    fails(lab04.check_cleanup, aws, keys, match="old version.s. / delete marker")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=aws.bucket, Prefix=lab04.PREFIX):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=aws.bucket, Key=v["Key"], VersionId=v["VersionId"])
    fails(lab04.check_cleanup, aws, keys, match="IAM role 'labkit-firehose-delivery' still exists")


# --- the notebook -------------------------------------------------------------------------------
@pytest.mark.slow
def test_solution_runs_twice_without_error(tmp_path):
    nb = run_twice(NOTEBOOK, tmp_path)  # execute_notebook raises on any cell error
    assert len(graded_cells(nb)) == 8  # 4 graded cells, twice


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path), points=10)
