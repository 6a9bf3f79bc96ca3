"""Lab 08 (tuning): the hidden checks on good and wrong states, and the notebook runs."""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest

from grader.checks import lab08
from labkit import datasets
from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_runs_clean, ensure_bucket, fails,
                           run_blank, run_twice)
from sagemaker_helpers import ROLE, SKLEARN_IMAGE, tar_gz, wait_training

NOTEBOOK = REPO / "solutions/08-tuning/08-tuning.ipynb"
# A fast stand-in for train.py: the AUC is a smooth function of the hyper-parameters.
FAKE_PY = '''
import argparse, math
p = argparse.ArgumentParser()
p.add_argument("--learning-rate", type=float, default=0.1)
p.add_argument("--max-depth", type=int, default=0)
p.add_argument("--max-iter", type=int, default=100)
p.add_argument("--min-samples-leaf", type=int, default=20)
a, _ = p.parse_known_args()
auc = 0.70 + 0.03 * math.exp(-(math.log10(a.learning_rate) + 1.3) ** 2) - 0.001 * abs(a.max_depth - 3)
print(f"train:auc={auc + 0.05:.6f}")
print(f"validation:auc={auc:.6f}")
'''
METRICS = [{"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"},
           {"Name": "train:auc", "Regex": r"train:auc=([0-9.]+)"}]
GOOD_RANGES = {
    "ContinuousParameterRanges": [{"Name": "learning-rate", "MinValue": "0.02", "MaxValue": "0.3",
                                   "ScalingType": "Logarithmic"}],
    "IntegerParameterRanges": [{"Name": "max-depth", "MinValue": "2", "MaxValue": "8", "ScalingType": "Auto"},
                               {"Name": "max-iter", "MinValue": "50", "MaxValue": "300", "ScalingType": "Auto"},
                               {"Name": "min-samples-leaf", "MinValue": "10", "MaxValue": "200",
                                "ScalingType": "Auto"}]}


@pytest.fixture(scope="module")
def aws(local_aws):
    ensure_bucket(local_aws)
    s3 = local_aws.client("s3")
    train, validation = datasets.time_split(datasets.add_label(datasets.joined()))
    columns = ["delayed", "month", "day", "hour", "distance", "temp", "dewp"]
    for name, frame in (("train", train), ("validation", validation)):
        s3.put_object(Bucket=local_aws.bucket, Key=f"lab08/{name}/{name}.csv",
                      Body=frame.sample(6000, random_state=0)[columns].to_csv(index=False).encode())
    s3.put_object(Bucket=local_aws.bucket, Key="lab08-tests/fake.tar.gz", Body=tar_gz({"train.py": FAKE_PY}))
    return local_aws


def _definition(aws):
    return {"StaticHyperParameters": {
                "sagemaker_program": "train.py",
                "sagemaker_submit_directory": f"s3://{aws.bucket}/lab08-tests/fake.tar.gz"},
            "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File",
                                       "MetricDefinitions": METRICS},
            "RoleArn": ROLE,
            "InputDataConfig": [{"ChannelName": c, "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{aws.bucket}/lab08/{c}"}}} for c in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{aws.bucket}/lab08/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300}}


def _tune(aws, wait=True, strategy="Bayesian", metric="validation:auc", kind="Maximize", jobs=8, parallel=2,
          ranges=None):
    sm = aws.client("sagemaker")
    name = f"lab08-tune-{uuid.uuid4().hex[:8]}"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=_definition(aws),
        HyperParameterTuningJobConfig={
            "Strategy": strategy, "HyperParameterTuningJobObjective": {"Type": kind, "MetricName": metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": ranges or GOOD_RANGES, "RandomSeed": 42})
    if not wait:  # only the configuration matters: stop it to save the machine's cores
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    deadline = time.monotonic() + 240
    while sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
            "HyperParameterTuningJobStatus"] in {"InProgress", "Stopping"}:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    time.sleep(0.01)
    return name


def _baseline(aws, auc):
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.bucket, Key="lab08-tests/baseline.tar.gz",
                  Body=tar_gz({"train.py": f"print('validation:auc={auc}')\n"}))
    name = f"lab08-baseline-{uuid.uuid4().hex[:8]}"
    definition = _definition(aws)
    aws.client("sagemaker").create_training_job(
        TrainingJobName=name, HyperParameters={
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": f"s3://{aws.bucket}/lab08-tests/baseline.tar.gz"},
        **{k: v for k, v in definition.items() if k != "StaticHyperParameters"})
    wait_training(aws.client("sagemaker"), name)
    time.sleep(0.01)


def _table(aws, name):
    sm = aws.client("sagemaker")
    rows = [s for page in sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name) for s in page["TrainingJobSummaries"]]
    return pd.DataFrame({"name": [r["TrainingJobName"] for r in rows],
                         "auc": [r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for r in rows]})


def test_checks_on_wrong_and_good_states(aws):
    wrong = [
        (dict(metric="train:auc"), "optimises train:auc"),
        (dict(kind="Minimize"), "minimises the AUC"),
        (dict(strategy="Random"), "uses the Random strategy"),
        (dict(jobs=4), "allows 4 training jobs"),
        (dict(parallel=1), "runs 1 jobs in parallel"),
        (dict(ranges={**GOOD_RANGES, "ContinuousParameterRanges": [{
            "Name": "learning-rate", "MinValue": "0.02", "MaxValue": "0.3", "ScalingType": "Linear"}]}),
         "on a Linear scale"),
        (dict(ranges={"ContinuousParameterRanges": GOOD_RANGES["ContinuousParameterRanges"]}),
         "tunes learning-rate —"),
        (dict(ranges={**GOOD_RANGES, "IntegerParameterRanges": [
            {**r, "MaxValue": "10"} if r["Name"] == "max-depth" else r
            for r in GOOD_RANGES["IntegerParameterRanges"]]}), "max-depth is searched over 2–10"),
        (dict(jobs=10), "allows 10 training jobs"),
    ]
    for settings, message in wrong:
        _tune(aws, wait=False, **settings)
        fails(lab08.check_tuning_job, aws, match=message)
    stopped = _tune(aws, wait=False)
    fails(lab08.check_tuning_job, aws, match=f"tuning job {stopped} is Stopped")
    name = _tune(aws)
    lab08.check_tuning_job(aws)

    table = _table(aws, name)
    best_name = table.loc[table["auc"].idxmax(), "name"]
    lab08.check_trials(aws, table, best_name)
    fails(lab08.check_trials, aws, table.head(3), best_name, match="your table has 3 rows")
    fails(lab08.check_trials, aws, table, table.loc[table["auc"].idxmin(), "name"],
          match="highest validation:auc")
    fails(lab08.check_trials, aws, None, best_name, match="your table has no rows")

    _baseline(aws, 0.99)
    fails(lab08.check_improvement, aws, match="the baseline 0.9900")
    _baseline(aws, 0.6)
    lab08.check_improvement(aws)
    best_value = aws.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    lab08.check_improvement(aws, best_value, best_value - 0.6)
    fails(lab08.check_improvement, aws, best_value + 0.05, best_value - 0.55, match="best_auc is")
    fails(lab08.check_improvement, aws, best_value, 0.6 - best_value, match="improvement is")
    fails(lab08.check_improvement, aws, best_value, "n/a", match="improvement is 'n/a', not a number")
    # tuned on train:auc: its best value is not comparable with the baseline's validation:auc
    _tune(aws, metric="train:auc", jobs=2)
    fails(lab08.check_improvement, aws, match="objective value is its train:auc")

    lab08.check_cleanup(aws)
    sm = aws.client("sagemaker")
    running = f"lab08-tune-{uuid.uuid4().hex[:8]}"
    definition = _definition(aws)
    definition["StaticHyperParameters"] = {**definition["StaticHyperParameters"]}
    aws.client("s3").put_object(Bucket=aws.bucket, Key="lab08-tests/sleep.tar.gz",
                                Body=tar_gz({"train.py": "import time\ntime.sleep(60)\n"}))
    definition["StaticHyperParameters"]["sagemaker_submit_directory"] = f"s3://{aws.bucket}/lab08-tests/sleep.tar.gz"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=running, TrainingJobDefinition=definition,
        HyperParameterTuningJobConfig={"Strategy": "Random", "HyperParameterTuningJobObjective": {
            "Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": GOOD_RANGES})
    fails(lab08.check_cleanup, aws, match=f"tuning job\\(s\\) {running} still running")
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=running)
    deadline = time.monotonic() + 30
    while sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=running)[
            "HyperParameterTuningJobStatus"] != "Stopped":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    lab08.check_cleanup(aws)


@pytest.mark.slow
def test_solution_runs_twice_and_blank_scores_zero(tmp_path):
    assert_runs_clean(run_twice(NOTEBOOK, tmp_path / "twice"))
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path / "blank"), cells=4, points=10)
