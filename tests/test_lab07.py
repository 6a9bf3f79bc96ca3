"""Lab 07 (SageMaker training): the hidden checks on good and wrong states, and the notebook runs."""

from __future__ import annotations

import time
import uuid

import pytest

from grader.checks import lab07
from labkit import datasets
from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_runs_clean, ensure_bucket, fails,
                           run_blank, run_twice)
from sagemaker_helpers import ROLE, SKLEARN_IMAGE, XGBOOST_IMAGE, tar_gz, wait_training

LAB = REPO / "solutions/07-training"
NOTEBOOK = LAB / "07-training.ipynb"
FEATURES = lab07.FEATURES
FAKE_PY = "print('validation:auc=0.7400')\n"
LOW_PY = "print('validation:auc=0.6100')\n"
GOOD_HPS = {"learning-rate": "0.1", "max-iter": "100"}


@pytest.fixture(scope="module")
def aws(local_aws):
    ensure_bucket(local_aws)
    s3 = local_aws.client("s3")
    s3.put_object(Bucket=local_aws.bucket, Key="lab07-tests/train.tar.gz",
                  Body=tar_gz({"train.py": (LAB / "train.py").read_text()}))
    s3.put_object(Bucket=local_aws.bucket, Key="lab07-tests/fake.tar.gz", Body=tar_gz({"train.py": FAKE_PY}))
    s3.put_object(Bucket=local_aws.bucket, Key="lab07-tests/low.tar.gz", Body=tar_gz({"train.py": LOW_PY}))
    return local_aws


def _flights():
    """The lab's modelling table, with the notebook's carrier and origin codes."""
    flights = datasets.add_label(datasets.joined())
    carriers = sorted(flights["carrier"].unique())
    flights["carrier_code"] = flights["carrier"].map({c: i for i, c in enumerate(carriers)})
    flights["origin_code"] = flights["origin"].map({"EWR": 0, "JFK": 1, "LGA": 2})
    return flights


@pytest.fixture(scope="module")
def frames():
    train, validation = datasets.time_split(_flights())
    columns = ["delayed"] + FEATURES
    return (train.sample(20_000, random_state=0)[columns + ["dep_delay"]],
            validation.sample(30_000, random_state=0)[columns + ["dep_delay"]])


def _upload(aws, train, validation, header=True, prefix="lab07", index=False):
    s3 = aws.client("s3")
    for name, frame in (("train", train), ("validation", validation)):
        s3.put_object(Bucket=aws.bucket, Key=f"{prefix}/{name}/{name}.csv",
                      Body=frame.to_csv(index=index, header=header).encode())


def _good_channels(aws, frames):
    train, validation = frames
    _upload(aws, train.drop(columns="dep_delay"), validation.drop(columns="dep_delay"))


def _job(aws, prefix="lab07-sklearn", source="train.tar.gz", image=SKLEARN_IMAGE, metrics=None,
         channel_prefix="lab07", hps=None, wait=True):
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    hyper = {"sagemaker_program": "train.py",
             "sagemaker_submit_directory": f"s3://{aws.bucket}/lab07-tests/{source}"}
    hyper.update(GOOD_HPS if hps is None else hps)
    aws.client("sagemaker").create_training_job(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters=hyper,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File", "MetricDefinitions": metrics or [
            {"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"}]},
        InputDataConfig=[{"ChannelName": c, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{aws.bucket}/{channel_prefix}/{c}"}}}
            for c in ("train", "validation")],
        OutputDataConfig={"S3OutputPath": f"s3://{aws.bucket}/lab07/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    if wait:
        wait_training(aws.client("sagemaker"), name)
    time.sleep(0.01)  # distinct creation times: the checks read the latest job
    return name


def test_check_channels(aws, frames):
    train, validation = frames
    clean_train, clean_validation = train.drop(columns="dep_delay"), validation.drop(columns="dep_delay")
    # a random split instead of a time split
    everything = _flights()[["delayed"] + FEATURES].sample(50_000, random_state=3)
    _upload(aws, everything.iloc[:20_000], everything.iloc[20_000:])
    fails(lab07.check_channels, aws, match="not a time split")
    # leakage kept
    _upload(aws, train, validation)
    fails(lab07.check_channels, aws, match="dep_delay.*target leakage")
    # the label dropped (features only)
    _upload(aws, clean_train.drop(columns="delayed"), clean_validation.drop(columns="delayed"))
    fails(lab07.check_channels, aws, match="no 'delayed' column")
    # validation from one month only
    _upload(aws, clean_train, clean_validation[clean_validation["month"] == 7])
    fails(lab07.check_channels, aws, match="validation covers only months")
    # the pandas index written as an extra first column (train.py would use it as a feature)
    _upload(aws, clean_train, clean_validation, index=True)
    fails(lab07.check_channels, aws, match="unnamed first column.*index")
    # other columns or another sample size than the task prescribes
    _upload(aws, clean_train[FEATURES + ["delayed"]], clean_validation[FEATURES + ["delayed"]])
    fails(lab07.check_channels, aws, match="channel's columns are \\['month'")
    _upload(aws, clean_train.head(10_000), clean_validation)
    fails(lab07.check_channels, aws, match="train channel has 10,000 rows")
    _good_channels(aws, frames)
    lab07.check_channels(aws)


def test_check_training_job_evaluation_and_cleanup(aws, frames):
    _good_channels(aws, frames)
    sm = aws.client("sagemaker")
    _job(aws, source="missing.tar.gz")  # fails: no such source archive
    fails(lab07.check_training_job, aws, match="is Failed")
    _job(aws, source="fake.tar.gz", image=XGBOOST_IMAGE)
    fails(lab07.check_training_job, aws, match="scikit-learn framework image")
    _job(aws, source="fake.tar.gz", metrics=[{"Name": "auc", "Regex": r"auc=([0-9.]+)"}])
    fails(lab07.check_training_job, aws, match="defines metrics auc")
    _job(aws, source="fake.tar.gz", metrics=[{"Name": "validation:auc", "Regex": r"AUC: ([0-9.]+)"}])
    fails(lab07.check_training_job, aws, match="reported no validation:auc")
    train, validation = frames
    _upload(aws, train, validation, prefix="lab07-old")
    _job(aws, source="fake.tar.gz", channel_prefix="lab07-old")
    fails(lab07.check_training_job, aws, match="channel 'train' reads")
    _job(aws, source="fake.tar.gz", hps={"max-iter": "50", "learning-rate": "0.1"})
    fails(lab07.check_training_job, aws, match="hyper-parameter max-iter='50'")
    _job(aws, source="low.tar.gz")  # a model below the target
    fails(lab07.check_training_job, aws, match=r"validation:auc is 0\.610")
    name = _job(aws)
    lab07.check_training_job(aws)
    # the evaluation: the model's real AUC, not predictions or another number
    job = sm.describe_training_job(TrainingJobName=name)
    auc = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["validation:auc"]
    lab07.check_evaluation(aws, auc)
    fails(lab07.check_evaluation, aws, 0.81, match="is not the model's AUC")
    fails(lab07.check_evaluation, aws, "high", match="not a number")


def test_check_builtin_xgboost(aws, frames):
    train, validation = frames
    columns = ["delayed"] + FEATURES
    _upload(aws, train[columns], validation[columns], header=False, prefix="lab07/xgb")
    sm = aws.client("sagemaker")

    def xgb(hps, channels=("train", "validation"), volume=5):
        name = f"lab07-xgboost-{uuid.uuid4().hex[:8]}"
        sm.create_training_job(
            TrainingJobName=name, RoleArn=ROLE, HyperParameters=hps,
            AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
            InputDataConfig=[{"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{aws.bucket}/lab07/xgb/{c}/"}}} for c in channels],
            OutputDataConfig={"S3OutputPath": f"s3://{aws.bucket}/lab07/output"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": volume},
            StoppingCondition={"MaxRuntimeInSeconds": 900})
        wait_training(sm, name)
        time.sleep(0.01)

    base = {"objective": "binary:logistic", "eval_metric": "auc", "num_round": "100", "max_depth": "5",
            "eta": "0.1"}
    xgb({**base, "objective": "reg:squarederror"})
    fails(lab07.check_builtin_xgboost, aws, match="objective is 'reg:squarederror'")
    xgb({k: v for k, v in base.items() if k != "eval_metric"})
    fails(lab07.check_builtin_xgboost, aws, match="eval_metric")
    xgb(base, channels=("train",))
    fails(lab07.check_builtin_xgboost, aws, match="no validation channel")
    xgb({**base, "num_round": "10"})
    fails(lab07.check_builtin_xgboost, aws, match="hyper-parameter num_round is '10'")
    xgb(base, volume=30)
    fails(lab07.check_builtin_xgboost, aws, match="with 30 GB")
    xgb(base)
    lab07.check_builtin_xgboost(aws)
    # a header row in the built-in algorithm's CSV (the job may still complete on the local engine)
    _upload(aws, train[columns], validation[columns], header=True, prefix="lab07/xgb")
    fails(lab07.check_builtin_xgboost, aws, match="header row|is Failed")
    _upload(aws, train[columns], validation[columns], header=False, prefix="lab07/xgb")


def test_check_cleanup(aws):
    """Runs after the tests above, which left completed lab07-sklearn and lab07-xgboost jobs."""
    sm = aws.client("sagemaker")
    aws.client("s3").put_object(Bucket=aws.bucket, Key="lab07-tests/sleep.tar.gz",
                                Body=tar_gz({"train.py": "import time\ntime.sleep(60)\n"}))
    _job(aws, prefix="lab07-sleep", source="sleep.tar.gz", wait=False)
    fails(lab07.check_cleanup, aws, match="still InProgress")
    for s in sm.list_training_jobs(NameContains="lab07-sleep", StatusEquals="InProgress")["TrainingJobSummaries"]:
        sm.stop_training_job(TrainingJobName=s["TrainingJobName"])
        wait_training(sm, s["TrainingJobName"])
    lab07.check_cleanup(aws)
    # a failed built-in job costs task 4, not the clean-up
    name = f"lab07-xgboost-{uuid.uuid4().hex[:8]}"
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters={"objective": "binary:logistic"},
        AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{aws.bucket}/lab07/nothing-here/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{aws.bucket}/lab07/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 900})
    wait_training(sm, name)
    lab07.check_cleanup(aws)


@pytest.mark.slow
def test_solution_runs_twice_and_blank_scores_zero(tmp_path):
    assert_runs_clean(run_twice(NOTEBOOK, tmp_path / "twice"))
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path / "blank"), cells=5, points=10)
