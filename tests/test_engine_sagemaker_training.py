"""Contract tests: SageMaker training jobs really run locally, under SageMaker's training contract."""

from __future__ import annotations

import io
import time
import uuid

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from sklearn.metrics import roc_auc_score

from sagemaker_helpers import (ROLE, SKLEARN_IMAGE, TRAIN_PY, XGBOOST_IMAGE, flights_sample, script_job,
                               tar_gz, untar, wait_training)


@pytest.fixture(scope="module")
def data(local_aws):
    """A bucket with a small flights time split (CSV with header) and the training script."""
    s3 = boto3.client("s3")
    bucket = f"train-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    train, validation = flights_sample()
    s3.put_object(Bucket=bucket, Key="data/train/train.csv", Body=train.to_csv(index=False).encode())
    s3.put_object(Bucket=bucket, Key="data/validation/validation.csv",
                  Body=validation.to_csv(index=False).encode())
    s3.put_object(Bucket=bucket, Key="src/good.tar.gz", Body=tar_gz({"train.py": TRAIN_PY}))
    s3.put_object(Bucket=bucket, Key="src/raises.tar.gz", Body=tar_gz({"train.py": (
        "import sys\nprint('starting')\nraise ValueError('learning rate must be positive')\n")}))
    s3.put_object(Bucket=bucket, Key="src/sleeps.tar.gz", Body=tar_gz({"train.py": (
        "import time, os\nprint('sleeping', flush=True)\ntime.sleep(60)\n")}))
    # the built-in algorithm's format: label first, no header
    for name, frame in (("train", train), ("validation", validation)):
        cols = ["delayed"] + [c for c in frame.columns if c != "delayed"]
        s3.put_object(Bucket=bucket, Key=f"xgb/{name}/{name}.csv",
                      Body=frame[cols].to_csv(index=False, header=False).encode())
    return {"bucket": bucket, "train": train, "validation": validation}


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_script_mode_job_completes_and_reports_the_models_real_auc(data):
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    name = _name("sklearn")
    sm.create_training_job(**script_job(name, data["bucket"], "src/good.tar.gz",
                                        {"max-iter": "30", "learning-rate": "0.1"}))
    first = sm.describe_training_job(TrainingJobName=name)
    assert first["TrainingJobStatus"] == "InProgress"  # moto alone says Completed at once
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"] == "validation:auc"
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    # the artifact is where AWS puts it, with the model and the entry point under code/
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{data['bucket']}/output/{name}/output/model.tar.gz"
    files = untar(s3.get_object(Bucket=data["bucket"], Key=f"output/{name}/output/model.tar.gz")["Body"].read())
    assert set(files) == {"model.joblib", "code/train.py"}
    import joblib

    model = joblib.load(io.BytesIO(files["model.joblib"]))
    validation = data["validation"]
    auc = roc_auc_score(validation["delayed"], model.predict_proba(validation.drop(columns="delayed"))[:, 1])
    assert metrics["validation:auc"] == pytest.approx(auc, abs=1e-9)
    assert 0.6 < auc < 0.8
    assert model.max_iter == 30  # the hyper-parameter reached the script as --max-iter 30
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert job["TrainingStartTime"] <= job["TrainingEndTime"]
    assert job["BillableTimeInSeconds"] >= 1
    logs = boto3.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=name)["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith(f"{name}/algo-1-")
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"])["events"]
    assert any(e["message"].startswith("validation:auc=") for e in events)


def test_a_script_that_raises_fails_with_its_error(data):
    sm = boto3.client("sagemaker")
    name = _name("raises")
    sm.create_training_job(**script_job(name, data["bucket"], "src/raises.tar.gz"))
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "ValueError: learning rate must be positive" in job["FailureReason"]
    assert job["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError")
    assert "FinalMetricDataList" not in job
    assert job["SecondaryStatusTransitions"][-1]["Status"] == "Failed"


def test_sm_environment_contract(data):
    """SM_* variables, channels and hyper-parameters as the training toolkit passes them."""
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    probe = '''
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
env["ARGV"] = sys.argv[1:]
env["TRAIN_FILES"] = os.listdir(os.environ["SM_CHANNEL_TRAIN"])
env["MY_SETTING"] = os.environ.get("MY_SETTING")
open(os.path.join(os.environ["SM_MODEL_DIR"], "env.json"), "w").write(json.dumps(env))
open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.txt"), "w").write("extra output")
'''
    s3.put_object(Bucket=data["bucket"], Key="src/probe.tar.gz", Body=tar_gz({"probe.py": probe}))
    name = _name("probe")
    request = script_job(name, data["bucket"], "src/probe.tar.gz", {"epochs": "3", "mode": "fast"})
    request["HyperParameters"]["sagemaker_program"] = "probe.py"  # plain, not JSON-quoted
    request["Environment"] = {"MY_SETTING": "on"}
    sm.create_training_job(**request)
    assert wait_training(sm, name)["TrainingJobStatus"] == "Completed"
    files = untar(s3.get_object(Bucket=data["bucket"], Key=f"output/{name}/output/model.tar.gz")["Body"].read())
    import json

    env = json.loads(files["env.json"])
    assert env["ARGV"] == ["--epochs", "3", "--mode", "fast"]
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "mode": "fast"}
    assert env["SM_HP_EPOCHS"] == "3" and env["SM_HP_MODE"] == "fast"
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert env["TRAIN_FILES"] == ["train.csv"]
    assert env["SM_CHANNEL_VALIDATION"].endswith("/opt/ml/input/data/validation")
    assert env["SM_MODEL_DIR"].endswith("/opt/ml/model")
    assert env["SM_NUM_CPUS"].isdigit() and env["SM_CURRENT_HOST"] == "algo-1"
    assert env["MY_SETTING"] == "on"
    out = untar(s3.get_object(Bucket=data["bucket"], Key=f"output/{name}/output/output.tar.gz")["Body"].read())
    assert out == {"report.txt": b"extra output"}


def test_builtin_xgboost_algorithm_trains_and_emits_validation_auc(data):
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    name = _name("xgb-algo")
    bucket = data["bucket"]
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        HyperParameters={"objective": "binary:logistic", "num_round": "20", "max_depth": "4",
                         "eta": "0.3", "eval_metric": "auc"},
        InputDataConfig=[{"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/xgb/{c}/"}}} for c in ("train", "validation")],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert {"train:auc", "validation:auc"} <= set(metrics)
    files = untar(s3.get_object(Bucket=bucket, Key=f"output/{name}/output/model.tar.gz")["Body"].read())
    assert set(files) == {"xgboost-model"}
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(files["xgboost-model"]))
    validation = data["validation"]
    features = validation.drop(columns="delayed").to_numpy(dtype="float64")
    auc = roc_auc_score(validation["delayed"], booster.predict(xgb.DMatrix(features)))
    assert metrics["validation:auc"] == pytest.approx(auc, abs=1e-4)  # the log line is rounded
    logs = boto3.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                       logStreamNamePrefix=name)["logStreams"][0]["logStreamName"]
    messages = [e["message"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)["events"]]
    assert any(m.startswith("[19]#011train-auc:") and "#011validation-auc:" in m for m in messages)


def test_builtin_xgboost_rejects_a_csv_with_a_header(data):
    sm = boto3.client("sagemaker")
    name = _name("xgb-header")
    bucket = data["bucket"]
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        HyperParameters={"objective": "binary:logistic", "num_round": "5"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/train"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: Non-numeric value 'month'")


def test_duplicate_name_is_resource_in_use(data):
    sm = boto3.client("sagemaker")
    name = _name("dup")
    sm.create_training_job(**script_job(name, data["bucket"], "src/good.tar.gz"))
    with pytest.raises(ClientError) as err:
        sm.create_training_job(**script_job(name, data["bucket"], "src/good.tar.gz"))
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    assert "must be unique" in err.value.response["Error"]["Message"]
    wait_training(sm, name)


def test_unknown_image_fails_with_a_clear_reason(data):
    sm = boto3.client("sagemaker")
    name = _name("byoc")
    sm.create_training_job(**script_job(
        name, data["bucket"], "src/good.tar.gz",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-container:latest"))
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "cannot run the image" in job["FailureReason"] and "my-own-container" in job["FailureReason"]


def test_empty_channel_fails_like_aws(data):
    sm = boto3.client("sagemaker")
    name = _name("nodata")
    request = script_job(name, data["bucket"], "src/good.tar.gz")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{data['bucket']}/nothing/"
    sm.create_training_job(**request)
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith('ClientError: No S3 objects found under S3 URL')


def test_stop_training_job_and_max_runtime(data):
    sm = boto3.client("sagemaker")
    name = _name("stop")
    sm.create_training_job(**script_job(name, data["bucket"], "src/sleeps.tar.gz"))
    time.sleep(0.5)
    sm.stop_training_job(TrainingJobName=name)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in {"Stopping", "Stopped"}
    job = wait_training(sm, name, timeout=20)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    with pytest.raises(ClientError) as err:
        sm.stop_training_job(TrainingJobName=name)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        sm.stop_training_job(TrainingJobName="no-such-job-" + uuid.uuid4().hex[:6])
    assert err.value.response["Error"]["Code"] == "ValidationException"
    timed = _name("maxrt")
    sm.create_training_job(**script_job(timed, data["bucket"], "src/sleeps.tar.gz", max_runtime=1))
    job = wait_training(sm, timed, timeout=20)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_metric_definitions_last_value_wins(data):
    """FinalMetricDataList holds the last value each regex matched, like AWS."""
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    s3.put_object(Bucket=data["bucket"], Key="src/epochs.tar.gz", Body=tar_gz({"train.py": (
        "for i, loss in enumerate([0.9, 0.5, 0.3]):\n    print(f'epoch {i} loss={loss}')\n")}))
    name = _name("epochs")
    sm.create_training_job(**script_job(name, data["bucket"], "src/epochs.tar.gz",
                                        metrics=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"},
                                                 {"Name": "never", "Regex": r"nothing=([0-9.]+)"}]))
    job = wait_training(sm, name)
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [("train:loss", 0.3)]
    assert np.isclose(job["FinalMetricDataList"][0]["Value"], 0.3)


def test_sdk_model_trainer_train_runs_the_job_locally(data, local_aws, tmp_path):
    """sagemaker.train.ModelTrainer (SDK 3.x) with a Session(default_bucket=...) and nothing else."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, MetricDefinition, SourceCode

    (tmp_path / "train.py").write_text(TRAIN_PY)
    session = Session(boto_session=local_aws.session, default_bucket=data["bucket"])
    trainer = ModelTrainer(
        training_image=SKLEARN_IMAGE, role=ROLE, sagemaker_session=session, base_job_name="sdk-train",
        source_code=SourceCode(source_dir=str(tmp_path), entry_script="train.py"),
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        hyperparameters={"max-iter": 25},
    ).with_metric_definitions([MetricDefinition(name="validation:auc", regex=r"validation:auc=([0-9.]+)")])
    trainer.train(input_data_config=[
        InputData(channel_name="train", data_source=f"s3://{data['bucket']}/data/train"),
        InputData(channel_name="validation", data_source=f"s3://{data['bucket']}/data/validation")], logs=False)
    job = trainer._latest_training_job
    assert job.training_job_status == "Completed"
    auc = {m.metric_name: m.value for m in job.final_metric_data_list}["validation:auc"]
    bucket, key = job.model_artifacts.s3_model_artifacts[5:].split("/", 1)
    files = untar(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    import joblib

    model = joblib.load(io.BytesIO(files["model.joblib"]))
    assert model.max_iter == 25
    validation = data["validation"]
    expected = roc_auc_score(validation["delayed"], model.predict_proba(validation.drop(columns="delayed"))[:, 1])
    assert auc == pytest.approx(expected, abs=1e-9)


def test_list_training_jobs_filters_sorts_then_pages(data):
    """moto pages before filtering and ignores SortBy; the engine answers as AWS does."""
    sm = boto3.client("sagemaker")
    tag = uuid.uuid4().hex[:6]
    names = [f"listing-{tag}-{i}" for i in range(3)]
    for name in names:
        sm.create_training_job(**script_job(name, data["bucket"], "src/raises.tar.gz"))
        time.sleep(0.01)
    for name in names:
        wait_training(sm, name)
    newest_first = sm.list_training_jobs(NameContains=f"listing-{tag}", SortBy="CreationTime",
                                         SortOrder="Descending", MaxResults=2)
    assert [s["TrainingJobName"] for s in newest_first["TrainingJobSummaries"]] == names[::-1][:2]
    rest = sm.list_training_jobs(NameContains=f"listing-{tag}", SortBy="CreationTime", SortOrder="Descending",
                                 MaxResults=2, NextToken=newest_first["NextToken"])
    assert [s["TrainingJobName"] for s in rest["TrainingJobSummaries"]] == [names[0]]
    assert "NextToken" not in rest
    failed = sm.list_training_jobs(NameContains=f"listing-{tag}", StatusEquals="Failed", SortBy="Name")
    assert [s["TrainingJobName"] for s in failed["TrainingJobSummaries"]] == names
    assert sm.list_training_jobs(NameContains=f"listing-{tag}", StatusEquals="Completed")["TrainingJobSummaries"] == []
    with pytest.raises(ClientError) as err:
        sm.list_training_jobs(SortBy="Size")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_the_job_can_call_the_local_aws(data):
    """Inside a job, boto3 reaches the same local AWS (as a job on AWS reaches its region)."""
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    script = ("import boto3, os\nboto3.client('s3').put_object(Bucket=os.environ['BUCKET'], "
              "Key='from-the-job.txt', Body=os.environ['TRAINING_JOB_NAME'].encode())\n")
    s3.put_object(Bucket=data["bucket"], Key="src/calls.tar.gz", Body=tar_gz({"train.py": script}))
    name = _name("calls")
    request = script_job(name, data["bucket"], "src/calls.tar.gz")
    request["Environment"] = {"BUCKET": data["bucket"]}
    sm.create_training_job(**request)
    assert wait_training(sm, name)["TrainingJobStatus"] == "Completed"
    assert s3.get_object(Bucket=data["bucket"], Key="from-the-job.txt")["Body"].read() == name.encode()


def test_metric_series_are_published_to_cloudwatch(data):
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    s3.put_object(Bucket=data["bucket"], Key="src/series.tar.gz", Body=tar_gz({"train.py": (
        "for loss in [0.9, 0.5, 0.3]:\n    print(f'loss={loss}')\n")}))
    name = _name("series")
    sm.create_training_job(**script_job(name, data["bucket"], "src/series.tar.gz",
                                        metrics=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}]))
    job = wait_training(sm, name)
    cw = boto3.client("cloudwatch")
    listed = cw.list_metrics(Namespace="/aws/sagemaker/TrainingJobs",
                             Dimensions=[{"Name": "Host", "Value": f"{name}/algo-1"}])["Metrics"]
    assert [m["MetricName"] for m in listed] == ["train:loss"]
    stats = cw.get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs", MetricName="train:loss",
        Dimensions=[{"Name": "Host", "Value": f"{name}/algo-1"}], StartTime=job["TrainingStartTime"],
        EndTime=job["TrainingEndTime"] + __import__("datetime").timedelta(minutes=1), Period=60,
        Statistics=["SampleCount", "Minimum", "Maximum"])["Datapoints"]
    assert sum(p["SampleCount"] for p in stats) == 3
    assert min(p["Minimum"] for p in stats) == 0.3 and max(p["Maximum"] for p in stats) == 0.9


def test_failure_file_becomes_the_failure_reason(data):
    """A container that explains itself in /opt/ml/output/failure (SM_OUTPUT_DIR/failure)."""
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    script = ("import os, sys\nopen(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w')"
              ".write('the train channel has no label column')\nsys.exit(2)\n")
    s3.put_object(Bucket=data["bucket"], Key="src/explains.tar.gz", Body=tar_gz({"train.py": script}))
    name = _name("explains")
    sm.create_training_job(**script_job(name, data["bucket"], "src/explains.tar.gz"))
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: the train channel has no label column"
