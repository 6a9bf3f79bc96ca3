"""Contract tests for the AWS/Firehose metrics (Firehose developer guide, "Data ingestion metrics")."""

from __future__ import annotations

import uuid
from datetime import timedelta

import boto3

ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"


def _sum(cw, stream, metric, start, end):
    points = cw.get_metric_statistics(
        Namespace="AWS/Firehose", MetricName=metric, StartTime=start, EndTime=end, Period=3600,
        Statistics=["Sum"], Dimensions=[{"Name": "DeliveryStreamName", "Value": stream}])["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_put_record_and_put_record_batch_have_their_own_metrics(local_aws):
    s3, fh, cw = boto3.client("s3"), boto3.client("firehose"), boto3.client("cloudwatch")
    bucket, stream = f"fhm-{uuid.uuid4().hex[:10]}", f"st-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    fh.create_delivery_stream(DeliveryStreamName=stream, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration={
                                  "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}"})
    start = local_aws.now() - timedelta(hours=1)
    for _ in range(3):
        fh.put_record(DeliveryStreamName=stream, Record={"Data": b"abcd\n"})
    fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": b"xy\n"}] * 4)
    end = local_aws.now() + timedelta(hours=1)
    assert _sum(cw, stream, "PutRecord.Requests", start, end) == 3
    assert _sum(cw, stream, "PutRecord.Bytes", start, end) == 15
    assert _sum(cw, stream, "PutRecordBatch.Requests", start, end) == 1
    assert _sum(cw, stream, "PutRecordBatch.Records", start, end) == 4
    assert _sum(cw, stream, "PutRecordBatch.Bytes", start, end) == 12
    assert _sum(cw, stream, "IncomingRecords", start, end) == 7
