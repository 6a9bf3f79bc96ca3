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


def test_values_and_counts_are_weighted_in_the_statistics(local_aws):
    """PutMetricData with Values / Counts (a pre-aggregated set): each value counts Counts[i] times."""
    cw = boto3.client("cloudwatch")
    metric = f"V{uuid.uuid4().hex[:8]}"
    stamp = local_aws.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    cw.put_metric_data(Namespace="Contract/CW", MetricData=[
        {"MetricName": metric, "Timestamp": stamp, "Values": [1.0, 2.0, 3.0], "Counts": [1.0, 1.0, 2.0],
         "Unit": "Count"}])
    (point,) = cw.get_metric_statistics(
        Namespace="Contract/CW", MetricName=metric, StartTime=stamp - timedelta(minutes=1),
        EndTime=stamp + timedelta(minutes=1), Period=60,
        Statistics=["Sum", "SampleCount", "Average", "Maximum", "Minimum"])["Datapoints"]
    assert (point["Sum"], point["SampleCount"], point["Average"], point["Maximum"], point["Minimum"]) == \
        (9.0, 4.0, 2.25, 3.0, 1.0)
    assert point["Unit"] == "Count"


def test_alarms_for_a_metric_and_their_actions_switch(local_aws):
    cw = boto3.client("cloudwatch")
    metric, name = f"A{uuid.uuid4().hex[:8]}", f"alarm-{uuid.uuid4().hex[:8]}"
    cw.put_metric_alarm(AlarmName=name, Namespace="Contract/CW", MetricName=metric, Statistic="Maximum",
                        Period=60, EvaluationPeriods=2, Threshold=100,
                        ComparisonOperator="GreaterThanThreshold")
    found = cw.describe_alarms_for_metric(Namespace="Contract/CW", MetricName=metric)["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == [name]
    cw.disable_alarm_actions(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.enable_alarm_actions(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["ActionsEnabled"] is True
    cw.delete_alarms(AlarmNames=[name])
