"""Contract tests for CloudWatch GetMetricStatistics periods (API reference GetMetricStatistics)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import boto3


def test_get_metric_statistics_timestamps_are_aligned_to_the_period(local_aws):
    cw = boto3.client("cloudwatch")
    metric = f"S{uuid.uuid4().hex[:8]}"
    base = local_aws.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    stamps = [base + timedelta(minutes=5, seconds=37), base + timedelta(minutes=7, seconds=3),
              base + timedelta(minutes=16, seconds=12)]
    cw.put_metric_data(Namespace="Contract/CW", MetricData=[
        {"MetricName": metric, "Value": v, "Timestamp": t} for v, t in zip((1.0, 3.0, 10.0), stamps)])
    points = cw.get_metric_statistics(Namespace="Contract/CW", MetricName=metric, StartTime=base,
                                      EndTime=base + timedelta(hours=1), Period=300,
                                      Statistics=["Sum", "SampleCount"])["Datapoints"]
    got = sorted((p["Timestamp"].replace(tzinfo=None), p["Sum"], p["SampleCount"]) for p in points)
    naive = base.replace(tzinfo=None)
    assert got == [(naive + timedelta(minutes=5), 4.0, 2.0), (naive + timedelta(minutes=15), 10.0, 1.0)]
