"""Contract tests for SageMaker as AWS's documentation describes it (CreateModel, InvokeEndpoint,
CreateTransformJob, CreateHyperParameterTuningJob with Autotune; the scikit-learn serving
container's handler contract), plain boto3 calls only."""

from __future__ import annotations

import json
import math
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from sagemaker_helpers import script_job
from sklearn_model import ROLE, SKLEARN_IMAGE, tar_gz

# input_fn reports what it was given: AWS's scikit-learn container decodes text/csv and
# application/json bodies to str before input_fn sees them; other types stay bytes.
ECHO_TYPES = b'''
import json
def model_fn(model_dir):
    return "echo"
def input_fn(body, content_type):
    return {"type": type(body).__name__, "content_type": content_type}
def predict_fn(data, model):
    return data
def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
'''
# A text-parsing script as AWS's samples write them: str methods on the request body.
DOUBLE_CSV = b'''
def model_fn(model_dir):
    return 2.0
def input_fn(body, content_type):
    return [[float(v) for v in line.split(",")] for line in body.strip().splitlines()]
def predict_fn(rows, factor):
    return [[factor * v for v in row] for row in rows]
def output_fn(rows, accept):
    return "\\n".join(",".join(repr(v) for v in row) for row in rows), "text/csv"
'''
ROW_SUMS = b'''
import json
def model_fn(model_dir):
    return None
def input_fn(body, content_type):
    assert content_type == "text/csv", content_type
    return [[float(v) for v in line.split(",")] for line in body.strip().splitlines()]
def predict_fn(rows, model):
    return [sum(row) for row in rows]
def output_fn(sums, accept):
    return json.dumps({"sums": sums, "accept": accept}), "application/json"
'''


# A training script that needs its tuned hyper-parameter (best at lr = 0.01).
TUNED_PY = b'''
import argparse, math
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
args = parser.parse_args()
print(f"objective={-(math.log10(args.lr) + 2) ** 2!r}")
'''


@pytest.fixture(scope="module")
def bucket(local_aws):
    name = f"contract-sm-{uuid.uuid4().hex[:8]}"
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=name)
    for key, script in {"echo": ECHO_TYPES, "double": DOUBLE_CSV, "sums": ROW_SUMS}.items():
        s3.put_object(Bucket=name, Key=f"{key}/model.tar.gz", Body=tar_gz({"code/inference.py": script}))
    s3.put_object(Bucket=name, Key="src/tuned.tar.gz", Body=tar_gz({"train.py": TUNED_PY}))
    s3.put_object(Bucket=name, Key="data/train/rows.csv", Body=b"1\n")
    return name


def _container(url: str) -> dict:
    return {"Image": SKLEARN_IMAGE, "ModelDataUrl": url}


def _serve(local_aws, **model) -> str:
    """Model → endpoint config → endpoint, waited InService; returns the endpoint name."""
    sm = local_aws.client("sagemaker")
    name = f"c-{uuid.uuid4().hex[:10]}"
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, **model)
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def _invoke(local_aws, endpoint: str, body, content_type: str, **extra):
    response = local_aws.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=body, ContentType=content_type, **extra)
    return response["ContentType"], response["Body"].read().decode()


def test_sklearn_input_fn_receives_text_for_csv_and_json(local_aws, bucket):
    endpoint = _serve(local_aws, PrimaryContainer=_container(f"s3://{bucket}/echo/model.tar.gz"))
    for content_type, expected in [("text/csv", "str"), ("application/json", "str"),
                                   ("application/octet-stream", "bytes"), ("application/x-npy", "bytes")]:
        _, body = _invoke(local_aws, endpoint, b"1,2", content_type)
        assert json.loads(body) == {"type": expected, "content_type": content_type}
    # and a script that parses the text with str methods answers, as on AWS
    endpoint = _serve(local_aws, PrimaryContainer=_container(f"s3://{bucket}/double/model.tar.gz"))
    assert _invoke(local_aws, endpoint, "1,2\n3,4", "text/csv") == ("text/csv", "2.0,4.0\n6.0,8.0")


@pytest.mark.parametrize("form", [
    "https://{b}.s3-us-east-1.amazonaws.com/{k}",
    "https://{b}.s3.us-east-1.amazonaws.com/{k}",
    "https://{b}.s3.amazonaws.com/{k}",
    "https://s3.us-east-1.amazonaws.com/{b}/{k}",
    "https://s3-us-east-1.amazonaws.com/{b}/{k}",
])
def test_model_data_url_https_forms(local_aws, bucket, form):
    url = form.format(b=bucket, k="double/model.tar.gz")
    endpoint = _serve(local_aws, PrimaryContainer=_container(url))
    assert _invoke(local_aws, endpoint, "1.5", "text/csv") == ("text/csv", "3.0")


def test_transform_job_accepts_https_model_data_url(local_aws, bucket):
    sm, s3 = local_aws.client("sagemaker"), local_aws.client("s3")
    name = f"t-{uuid.uuid4().hex[:10]}"
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=_container(
        f"https://{bucket}.s3-us-east-1.amazonaws.com/double/model.tar.gz"))
    s3.put_object(Bucket=bucket, Key=f"{name}/in/rows.csv", Body=b"1,2\n3,4\n")
    sm.create_transform_job(
        TransformJobName=name, ModelName=name,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": f"s3://{bucket}/{name}/in/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/{name}/out/", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    job = sm.describe_transform_job(TransformJobName=name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    out = s3.get_object(Bucket=bucket, Key=f"{name}/out/rows.csv.out")["Body"].read()
    assert out == b"2.0,4.0\n6.0,8.0\n"


def test_inference_pipeline_feeds_each_container_to_the_next(local_aws, bucket):
    endpoint = _serve(local_aws, Containers=[_container(f"s3://{bucket}/double/model.tar.gz"),
                                             _container(f"s3://{bucket}/sums/model.tar.gz")])
    content_type, body = _invoke(local_aws, endpoint, "1,2\n3,4", "text/csv", Accept="application/json")
    assert content_type == "application/json"
    # doubled by the first container, summed by the second; the caller's Accept reaches the last
    assert json.loads(body) == {"sums": [6.0, 14.0], "accept": "application/json"}
    images = local_aws.client("sagemaker").describe_endpoint(EndpointName=endpoint)[
        "ProductionVariants"][0]["DeployedImages"]
    assert len(images) == 2


def _tuning_request(bucket: str, name: str, autotune: bool, **limits) -> dict:
    job = script_job("unused", bucket, "src/tuned.tar.gz", channels=("train",),
                     metrics=[{"Name": "objective", "Regex": r"objective=([-0-9.e]+)"}])
    request = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "objective"},
            "ParameterRanges": {"AutoParameters": [{"Name": "lr", "ValueHint": "0.01"}]},
            **({"ResourceLimits": limits} if limits else {})},
        "TrainingJobDefinition": {key: job[key] for key in (
            "RoleArn", "AlgorithmSpecification", "InputDataConfig", "OutputDataConfig",
            "ResourceConfig", "StoppingCondition")} | {"StaticHyperParameters": job["HyperParameters"]}}
    if autotune:
        request["Autotune"] = {"Mode": "Enabled"}
    return request


def test_autotune_chooses_ranges_for_auto_parameters(local_aws, bucket):
    sm = local_aws.client("sagemaker")
    name = f"auto-{uuid.uuid4().hex[:8]}"
    sm.create_hyper_parameter_tuning_job(**_tuning_request(bucket, name, True, MaxNumberOfTrainingJobs=3,
                                                           MaxParallelTrainingJobs=1))
    deadline = time.monotonic() + 180
    while (job := sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))[
            "HyperParameterTuningJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["Autotune"] == {"Mode": "Enabled"}
    trials = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "TrainingJobSummaries"]
    assert len(trials) == 3 and all(t["TrainingJobStatus"] == "Completed" for t in trials)
    values = [float(t["TunedHyperParameters"]["lr"]) for t in trials]
    assert all(0.001 <= v <= 1 for v in values) and len(set(values)) == 3
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == \
        pytest.approx(max(-(math.log10(v) + 2) ** 2 for v in values), rel=1e-6)


def test_auto_parameters_without_autotune_are_rejected(local_aws, bucket):
    sm = local_aws.client("sagemaker")
    with pytest.raises(ClientError) as err:
        sm.create_hyper_parameter_tuning_job(**_tuning_request(
            bucket, f"auto-{uuid.uuid4().hex[:8]}", False, MaxNumberOfTrainingJobs=2,
            MaxParallelTrainingJobs=1))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "Autotune" in err.value.response["Error"]["Message"]


STS_AT_AWS = """
import boto3, labkit
labkit.connect(quiet=True)
# what the SageMaker SDK v3 does for its default bucket and account (sts_regional_endpoint)
sts = boto3.Session().client("sts", region_name="us-east-1",
                             endpoint_url="https://sts.us-east-1.amazonaws.com")
print(sts.get_caller_identity()["Account"])
"""


def test_sdk_sts_client_at_the_aws_host_resolves_locally():
    from conftest import clean_env, run_python

    # no credentials, no network: without the fix the call leaves the machine and fails
    result = run_python(STS_AT_AWS, env=clean_env(AWS_MAX_ATTEMPTS="1"), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "123456789012"
