"""Contract tests: SageMaker Processing jobs, plain boto3 (CreateProcessingJob API reference).

The script really runs: inputs land under /opt/ml/processing/..., outputs are uploaded at the end,
logs go to /aws/sagemaker/ProcessingJobs, and a script error is the job's FailureReason.
"""

from __future__ import annotations

import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from sagemaker_helpers import ROLE, SKLEARN_IMAGE

SCRIPT = b'''
import argparse, glob, json, os
import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--min-distance", type=float, default=0)
parser.add_argument("--fail", action="store_true")
parser.add_argument("--sleep", type=float, default=0)
args = parser.parse_args()
if args.sleep:
    import time; time.sleep(args.sleep)
if args.fail:
    raise ValueError("no flights in the requested window")
frames = [pd.read_csv(f) for f in sorted(glob.glob("/opt/ml/processing/input/raw/**/*.csv", recursive=True))]
flights = pd.concat(frames)
kept = flights[flights["distance"] >= args.min_distance]
os.makedirs("/opt/ml/processing/train/part", exist_ok=True)
kept.to_csv("/opt/ml/processing/train/part/train.csv", index=False)
with open("/opt/ml/processing/report/report.json", "w") as out:
    json.dump({"rows": len(kept), "label": os.environ["LABEL"]}, out)
print(f"kept {len(kept)} of {len(flights)} rows")
'''


@pytest.fixture(scope="module")
def bucket(local_aws):
    name = f"processing-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="raw/month=1/a.csv", Body=b"distance,delayed\n100,0\n900,1\n")
    s3.put_object(Bucket=name, Key="raw/month=2/b.csv", Body=b"distance,delayed\n1500,1\n")
    s3.put_object(Bucket=name, Key="code/preprocess.py", Body=SCRIPT)
    return name


def request(bucket: str, name: str, arguments=(), image: str = SKLEARN_IMAGE, raw: str = "raw") -> dict:
    return {
        "ProcessingJobName": name, "RoleArn": ROLE,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": [
            "python3", "/opt/ml/processing/input/code/preprocess.py"],
            **({"ContainerArguments": list(arguments)} if arguments else {})},
        "Environment": {"LABEL": "delayed"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "ProcessingInputs": [
            {"InputName": "raw", "S3Input": {"S3Uri": f"s3://{bucket}/{raw}",
                                             "LocalPath": "/opt/ml/processing/input/raw",
                                             "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "code", "S3Input": {"S3Uri": f"s3://{bucket}/code/preprocess.py",
                                              "LocalPath": "/opt/ml/processing/input/code",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [
            {"OutputName": "train", "S3Output": {"S3Uri": f"s3://{bucket}/out/{name}/train",
                                                 "LocalPath": "/opt/ml/processing/train",
                                                 "S3UploadMode": "EndOfJob"}},
            {"OutputName": "report", "S3Output": {"S3Uri": f"s3://{bucket}/out/{name}/report",
                                                  "LocalPath": "/opt/ml/processing/report",
                                                  "S3UploadMode": "EndOfJob"}}]},
    }


def wait(sm, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = sm.describe_processing_job(ProcessingJobName=name)
        if job["ProcessingJobStatus"] in {"Completed", "Failed", "Stopped"}:
            return job
        assert time.monotonic() < deadline, f"{name} still {job['ProcessingJobStatus']}"
        time.sleep(0.2)


def keys(bucket: str, prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_script_runs_on_its_inputs_and_outputs_are_uploaded(bucket):
    import json

    sm = boto3.client("sagemaker")
    name = f"proc-ok-{uuid.uuid4().hex[:6]}"
    arn = sm.create_processing_job(**request(bucket, name, ["--min-distance", "500"]))["ProcessingJobArn"]
    assert arn.endswith(f":processing-job/{name}")
    assert sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress"
    job = wait(sm, name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert "FailureReason" not in job
    assert job["Environment"] == {"LABEL": "delayed"}
    assert job["ProcessingEndTime"] >= job["ProcessingStartTime"]
    assert keys(bucket, f"out/{name}/") == [f"out/{name}/report/report.json",
                                            f"out/{name}/train/part/train.csv"]
    s3 = boto3.client("s3")
    train = s3.get_object(Bucket=bucket, Key=f"out/{name}/train/part/train.csv")["Body"].read().decode()
    assert train.splitlines() == ["distance,delayed", "900,1", "1500,1"]  # both partitions, filtered
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"out/{name}/report/report.json")["Body"].read())
    assert report == {"rows": 2, "label": "delayed"}
    logs = boto3.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs",
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    assert [s["logStreamName"].startswith(f"{name}/algo-1-") for s in streams] == [True]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs",
                                 logStreamName=streams[0]["logStreamName"])["events"]
    assert "kept 2 of 3 rows" in [e["message"] for e in events]


def test_a_script_error_fails_the_job_with_that_error(bucket):
    sm = boto3.client("sagemaker")
    name = f"proc-fail-{uuid.uuid4().hex[:6]}"
    sm.create_processing_job(**request(bucket, name, ["--fail"]))
    job = wait(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError")
    assert "ValueError: no flights in the requested window" in job["FailureReason"]
    assert keys(bucket, f"out/{name}/") == []  # nothing uploaded from a failed job
    logs = boto3.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs",
                                       logStreamNamePrefix=f"{name}/")["logStreams"][0]["logStreamName"]
    lines = [e["message"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/ProcessingJobs", logStreamName=stream)["events"]]
    assert lines[0] == "Traceback (most recent call last):"  # the script's own frames, at their
    assert lines[1].startswith('  File "/opt/ml/processing/input/code/preprocess.py", line ')  # path


def test_a_missing_input_fails_with_clienterror(bucket):
    sm = boto3.client("sagemaker")
    name = f"proc-noinput-{uuid.uuid4().hex[:6]}"
    sm.create_processing_job(**request(bucket, name, raw="nothing-here"))
    job = wait(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError") and "nothing-here" in job["FailureReason"]


def test_an_image_that_cannot_run_locally_fails_the_job(bucket):
    sm = boto3.client("sagemaker")
    name = f"proc-image-{uuid.uuid4().hex[:6]}"
    own_image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1"
    sm.create_processing_job(**request(bucket, name, image=own_image))
    job = wait(sm, name)
    assert job["ProcessingJobStatus"] == "Failed" and "mine:1" in job["FailureReason"]


def test_names_are_unique_and_unknown_jobs_are_validation_errors(bucket):
    sm = boto3.client("sagemaker")
    name = f"proc-dup-{uuid.uuid4().hex[:6]}"
    sm.create_processing_job(**request(bucket, name))
    with pytest.raises(ClientError) as raised:
        sm.create_processing_job(**request(bucket, name))
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    wait(sm, name)
    with pytest.raises(ClientError) as raised:
        sm.describe_processing_job(ProcessingJobName=f"{name}-missing")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_stop_processing_job_stops_a_running_script(bucket):
    sm = boto3.client("sagemaker")
    name = f"proc-stop-{uuid.uuid4().hex[:6]}"
    sm.create_processing_job(**request(bucket, name, ["--sleep", "60"]))
    time.sleep(1.0)
    started = time.monotonic()
    sm.stop_processing_job(ProcessingJobName=name)
    job = wait(sm, name, timeout=30)
    assert job["ProcessingJobStatus"] == "Stopped"
    assert time.monotonic() - started < 20
    with pytest.raises(ClientError) as raised:  # only an InProgress job can be stopped
        sm.stop_processing_job(ProcessingJobName=name)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_list_processing_jobs_filters_by_status_and_name(bucket):
    sm = boto3.client("sagemaker")
    tag = uuid.uuid4().hex[:6]
    sm.create_processing_job(**request(bucket, f"proc-list-{tag}-ok"))
    sm.create_processing_job(**request(bucket, f"proc-list-{tag}-bad", ["--fail"]))
    wait(sm, f"proc-list-{tag}-ok")
    wait(sm, f"proc-list-{tag}-bad")
    failed = sm.list_processing_jobs(NameContains=f"proc-list-{tag}", StatusEquals="Failed")
    assert [j["ProcessingJobName"] for j in failed["ProcessingJobSummaries"]] == [f"proc-list-{tag}-bad"]
    both = sm.list_processing_jobs(NameContains=f"proc-list-{tag}")["ProcessingJobSummaries"]
    assert {j["ProcessingJobStatus"] for j in both} == {"Completed", "Failed"}


PARQUET_SCRIPT = b'''
import pandas as pd
frame = pd.read_parquet("/opt/ml/processing/input/raw")  # a folder of Parquet parts, by its path
frame.assign(km=frame["distance"] * 1.609).to_parquet("/opt/ml/processing/train/flights.parquet")
print(f"converted {len(frame)} rows")
'''


def test_pandas_reads_and_writes_parquet_by_container_path(bucket):
    """pd.read_parquet / to_parquet on /opt/ml paths, as in AWS's processing examples: pyarrow opens
    files in native code, so the engine maps its paths too."""
    import io

    import pandas as pd

    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    name = f"proc-parquet-{uuid.uuid4().hex[:6]}"
    for part, distances in (("a", [100, 900]), ("b", [1500])):
        buffer = io.BytesIO()
        pd.DataFrame({"distance": distances}).to_parquet(buffer)
        s3.put_object(Bucket=bucket, Key=f"parquet-in/{part}.parquet", Body=buffer.getvalue())
    s3.put_object(Bucket=bucket, Key=f"code-{name}/preprocess.py", Body=PARQUET_SCRIPT)
    job = request(bucket, name, raw="parquet-in")
    job["ProcessingInputs"][1]["S3Input"]["S3Uri"] = f"s3://{bucket}/code-{name}/preprocess.py"
    sm.create_processing_job(**job)
    described = wait(sm, name)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    body = s3.get_object(Bucket=bucket, Key=f"out/{name}/train/flights.parquet")["Body"].read()
    out = pd.read_parquet(io.BytesIO(body))
    assert sorted(out["distance"]) == [100, 900, 1500] and round(out["km"].max(), 1) == 2413.5
