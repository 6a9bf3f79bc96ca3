"""Contract tests for the Firehose engine, written as plain boto3 calls against the local AWS."""

from __future__ import annotations

import gzip
import io
import re
import uuid
import zipfile
from datetime import datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from labkit.local.firehose import java_format

ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"


@pytest.fixture()
def env(local_aws):
    s3 = boto3.client("s3")
    bucket = f"fh-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return local_aws, s3, boto3.client("firehose"), bucket


def _stream(fh, bucket, **config):
    name = f"st-{uuid.uuid4().hex[:10]}"
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration={
                                  "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", **config})
    return name


def _keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _lines(s3, bucket, key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    elif key.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            body = b"".join(archive.read(n) for n in archive.namelist())
    return body.splitlines()


def _records(n, start=0):
    return [{"Data": f'{{"seq":{i}}}\n'.encode()} for i in range(start, start + n)]


def test_interval_gzip_and_prefix_deliver_exactly_once_after_interval(env):
    aws, s3, fh, bucket = env
    name = _stream(fh, bucket, Prefix="events/dt=!{timestamp:yyyy-MM-dd}/",
                   ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
                   BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60},
                   CompressionFormat="GZIP")
    sent_at = aws.now()
    for start in range(0, 1200, 400):
        result = fh.put_record_batch(DeliveryStreamName=name, Records=_records(400, start))
        assert result["FailedPutCount"] == 0 and len(result["RequestResponses"]) == 400
    aws.fast_forward(55)
    assert _keys(s3, bucket) == []  # still buffered: neither 1 MiB nor 60 s reached
    aws.fast_forward(10)
    keys = _keys(s3, bucket)
    assert len(keys) == 1
    key = keys[0]
    assert key.startswith(f"events/dt={sent_at:%Y-%m-%d}/{name}-1-") and key.endswith(".gz")
    seqs = [int(line.split(b":")[1].rstrip(b"}")) for line in _lines(s3, bucket, key)]
    assert seqs == list(range(1200))  # every record once, in order


def test_size_hint_flushes_without_waiting(env):
    aws, s3, fh, bucket = env
    name = _stream(fh, bucket, Prefix="big/", BufferingHints={"SizeInMBs": 1,
                                                               "IntervalInSeconds": 900})
    record = {"Data": b"x" * (100 * 1024 - 1) + b"\n"}  # 100 KiB
    for _ in range(3):
        fh.put_record_batch(DeliveryStreamName=name, Records=[record] * 5)
    keys = _keys(s3, bucket)
    assert len(keys) == 1  # 15 records = 1.46 MiB: one full 1 MiB object (10 records) delivered
    assert len(_lines(s3, bucket, keys[0])) == 10
    aws.fast_forward(901)
    keys = _keys(s3, bucket)
    assert sum(len(_lines(s3, bucket, k)) for k in keys) == 15


def test_default_layout_and_plain_prefix_get_hour_folders(env):
    aws, s3, fh, bucket = env
    plain = _stream(fh, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60})
    prefixed = _stream(fh, bucket, Prefix="raw/", BufferingHints={"SizeInMBs": 1,
                                                                   "IntervalInSeconds": 60},
                       CompressionFormat="ZIP")
    fh.put_record(DeliveryStreamName=plain, Record={"Data": b"a\n"})
    fh.put_record(DeliveryStreamName=prefixed, Record={"Data": b"b\n"})
    aws.fast_forward(61)
    keys = _keys(s3, bucket)
    stamp = r"\d{4}/\d{2}/\d{2}/\d{2}/"
    suffix = r"-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}"
    assert any(re.fullmatch(stamp + plain + suffix, k) for k in keys), keys
    zipped = [k for k in keys if re.fullmatch("raw/" + stamp + prefixed + suffix + r"\.zip", k)]
    assert zipped and _lines(s3, bucket, zipped[0]) == [b"b"]


def test_random_string_expression_is_evaluated(env):
    aws, s3, fh, bucket = env
    name = _stream(fh, bucket, Prefix="r/!{firehose:random-string}/!{timestamp:yyyy}/",
                   ErrorOutputPrefix="e/!{firehose:error-output-type}/",
                   BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"z\n"})
    keys = _keys(s3, bucket)
    assert len(keys) == 1 and re.fullmatch(rf"r/[A-Za-z0-9]{{11}}/\d{{4}}/{name}-.*", keys[0])


@pytest.mark.parametrize("config, message", [
    ({"Prefix": "a/!{timestamp:yyyy}/"}, "ErrorOutputPrefix cannot be null or empty"),
    ({"Prefix": "a/!{firehose:error-output-type}/", "ErrorOutputPrefix": "e/"},
     "can only be used in ErrorOutputPrefix"),
    ({"Prefix": "a/!{timestamp:yyyy-QQ}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"},
     "not a valid Java DateTimeFormatter"),
    ({"Prefix": "a/!{weather:today}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"},
     "namespace 'weather'"),
    ({"Prefix": "a/", "ErrorOutputPrefix": "e/!{timestamp:yyyy}/"}, "must contain"),
    ({"Prefix": "a/!{partitionKeyFromQuery:origin}/",
      "ErrorOutputPrefix": "e/!{firehose:error-output-type}"}, "dynamic partitioning"),
])
def test_invalid_destination_rejected_like_aws(env, config, message):
    _aws, _s3, fh, bucket = env
    with pytest.raises(ClientError) as error:
        _stream(fh, bucket, **config)
    assert error.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert message in error.value.response["Error"]["Message"]


@pytest.mark.parametrize("hints, message", [
    ({"SizeInMBs": 129, "IntervalInSeconds": 60},
     "bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value less than "
     "or equal to 128"),
    ({"SizeInMBs": 5, "IntervalInSeconds": 901}, "less than or equal to 900"),
])
def test_buffering_hints_out_of_range(env, hints, message):
    _aws, _s3, fh, bucket = env
    with pytest.raises(ClientError) as error:
        _stream(fh, bucket, BufferingHints=hints)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert message in error.value.response["Error"]["Message"]


def test_batch_limits(env):
    _aws, _s3, fh, bucket = env
    name = _stream(fh, bucket, BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 900})
    assert fh.put_record_batch(DeliveryStreamName=name, Records=_records(500))["FailedPutCount"] == 0
    with pytest.raises(ClientError) as error:
        fh.put_record_batch(DeliveryStreamName=name, Records=_records(501))
    assert error.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as error:
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x" * (1000 * 1024 + 1)}])
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "records.1.member.data" in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:  # 5 x 900 KiB = 4.4 MiB > 4 MiB
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x" * 900 * 1024}] * 5)
    assert error.value.response["Error"]["Code"] == "InvalidArgumentException"
    with pytest.raises(ClientError) as error:
        fh.put_record_batch(DeliveryStreamName="no-such-stream", Records=_records(1))
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_failed_put_count_and_retry_delivers_exactly_once(env):
    from labkit.backend import control

    aws, s3, fh, bucket = env
    name = _stream(fh, bucket, Prefix="retry/", BufferingHints={"SizeInMBs": 1,
                                                                 "IntervalInSeconds": 60})
    control(aws.endpoint, "firehose-faults", {"stream": name, "rate": 0.3, "seed": 7})
    pending, attempts = _records(300), 0
    try:
        while pending:
            attempts += 1
            result = fh.put_record_batch(DeliveryStreamName=name, Records=pending)
            failed = [r for r, resp in zip(pending, result["RequestResponses"]) if "ErrorCode" in resp]
            assert result["FailedPutCount"] == len(failed)
            assert all(resp["ErrorCode"] == "ServiceUnavailableException"
                       for resp in result["RequestResponses"] if "ErrorCode" in resp)
            if attempts == 1:
                assert 0 < len(failed) < 300
            pending = failed
    finally:
        control(aws.endpoint, "firehose-faults", {"stream": name, "rate": 0})
    aws.fast_forward(61)
    lines = [line for k in _keys(s3, bucket) for line in _lines(s3, bucket, k)]
    assert sorted(lines) == sorted(r["Data"].rstrip(b"\n") for r in _records(300))


def test_missing_bucket_keeps_data_until_it_exists(local_aws):
    s3, fh = boto3.client("s3"), boto3.client("firehose")
    bucket = f"fh-late-{uuid.uuid4().hex[:8]}"
    name = _stream(fh, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60})
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"kept\n"})
    local_aws.fast_forward(61)
    s3.create_bucket(Bucket=bucket)
    local_aws.fast_forward(1)
    keys = _keys(s3, bucket)
    assert len(keys) == 1 and _lines(s3, bucket, keys[0]) == [b"kept"]


def test_describe_shows_aws_defaults_and_update_flushes_old_config(env):
    aws, s3, fh, bucket = env
    name = _stream(fh, bucket)
    description = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"old\n"})
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                          DestinationId=description["Destinations"][0]["DestinationId"],
                          ExtendedS3DestinationUpdate={"CompressionFormat": "GZIP"})
    keys = _keys(s3, bucket)
    assert len(keys) == 1 and not keys[0].endswith(".gz")  # old records, old format, version 1
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"new\n"})
    aws.fast_forward(301)
    new = [k for k in _keys(s3, bucket) if k not in keys]
    assert len(new) == 1 and new[0].endswith(".gz") and f"{name}-2-" in new[0]


def test_java_timestamp_patterns():
    when = datetime(2013, 1, 2, 3, 4, 5)
    assert java_format("yyyy/MM/dd/HH", when) == "2013/01/02/03"
    assert java_format("'year='yyyy'/month='M", when) == "year=2013/month=1"
    with pytest.raises(ValueError):
        java_format("yyyy-QQ", when)


def test_deleted_stream_drops_its_buffer(env):
    aws, s3, fh, bucket = env
    name = _stream(fh, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60})
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"lost\n"})
    fh.delete_delivery_stream(DeliveryStreamName=name)
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration={
                                  "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}",
                                  "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}})
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"kept\n"})
    aws.fast_forward(61)
    keys = _keys(s3, bucket)
    assert len(keys) == 1 and _lines(s3, bucket, keys[0]) == [b"kept"]


def test_cloudwatch_metrics_published(env):
    aws, s3, fh, bucket = env
    name = _stream(fh, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60})
    fh.put_record_batch(DeliveryStreamName=name, Records=_records(25))
    aws.fast_forward(61)
    cloudwatch = boto3.client("cloudwatch")
    end = aws.now()

    def total(metric):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Firehose", MetricName=metric, StartTime=end.replace(year=end.year - 1),
            EndTime=end.replace(year=end.year + 1), Period=86400, Statistics=["Sum"],
            Dimensions=[{"Name": "DeliveryStreamName", "Value": name}])["Datapoints"]
        return sum(p["Sum"] for p in points)

    assert total("IncomingRecords") == 25
    assert total("DeliveryToS3.Records") == 25
    assert total("DeliveryToS3.Success") == 1
