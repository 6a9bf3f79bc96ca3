"""Contract tests: SageMaker hyper-parameter tuning jobs run a real search over real training jobs."""

from __future__ import annotations

import math
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from sagemaker_helpers import ROLE, TRAIN_PY, XGBOOST_IMAGE, flights_sample, script_job, tar_gz

# A fast synthetic objective (no heavy imports): best at lr = 0.01 and depth = 5.
SYNTHETIC_PY = '''
import argparse, math, time
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--depth", type=int, default=3)
parser.add_argument("--kind", default="a")
parser.add_argument("--sleep", type=float, default=0)
args = parser.parse_args()
time.sleep(args.sleep)
if args.kind == "bad":
    raise ValueError("kind 'bad' is not supported")
score = -(math.log10(args.lr) + 2) ** 2 - 0.1 * (args.depth - 5) ** 2
print(f"objective={score!r}")
'''
OBJECTIVE = [{"Name": "objective", "Regex": r"objective=([-0-9.e]+)"}]


@pytest.fixture(scope="module")
def bucket(local_aws):
    s3 = boto3.client("s3")
    name = f"tune-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    train, validation = flights_sample(2000, 1500)
    s3.put_object(Bucket=name, Key="data/train/train.csv", Body=train.to_csv(index=False).encode())
    s3.put_object(Bucket=name, Key="data/validation/validation.csv",
                  Body=validation.to_csv(index=False).encode())
    for split, frame in (("train", train), ("validation", validation)):
        cols = ["delayed"] + [c for c in frame.columns if c != "delayed"]
        s3.put_object(Bucket=name, Key=f"xgb/{split}/{split}.csv",
                      Body=frame[cols].to_csv(index=False, header=False).encode())
    s3.put_object(Bucket=name, Key="src/flights.tar.gz", Body=tar_gz({"train.py": TRAIN_PY}))
    s3.put_object(Bucket=name, Key="src/synthetic.tar.gz", Body=tar_gz({"train.py": SYNTHETIC_PY}))
    return name


def _definition(bucket, source="src/synthetic.tar.gz", metrics=OBJECTIVE, static=None):
    request = script_job("unused", bucket, source, static, metrics=metrics)
    return {"StaticHyperParameters": request["HyperParameters"],
            "AlgorithmSpecification": request["AlgorithmSpecification"], "RoleArn": ROLE,
            "InputDataConfig": request["InputDataConfig"], "OutputDataConfig": request["OutputDataConfig"],
            "ResourceConfig": request["ResourceConfig"], "StoppingCondition": request["StoppingCondition"]}


def _config(strategy="Bayesian", jobs=4, parallel=2, metric="objective", kind="Maximize", ranges=None,
            **extra):
    config = {"Strategy": strategy,
              "HyperParameterTuningJobObjective": {"Type": kind, "MetricName": metric},
              "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
              "ParameterRanges": ranges if ranges is not None else {
                  "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.0001", "MaxValue": "1",
                                                 "ScalingType": "Logarithmic"}],
                  "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "9",
                                              "ScalingType": "Linear"}]},
              "TrainingJobEarlyStoppingType": "Off"}
    config.update(extra)
    return config


def _wait(sm, name, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if job["HyperParameterTuningJobStatus"] in {"Completed", "Failed", "Stopped"}:
            return job
        assert time.monotonic() < deadline, f"{name} still {job['HyperParameterTuningJobStatus']}"
        time.sleep(0.3)


def _trials(sm, name):
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, PaginationConfig={"PageSize": 3})
    return [s for page in pages for s in page["TrainingJobSummaries"]]


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_tuning_on_flights_best_job_is_the_argmax_of_its_trials(bucket):
    sm = boto3.client("sagemaker")
    name = _name("flights")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=_config("Random", jobs=4, parallel=2, metric="validation:auc",
                                              RandomSeed=7, ranges={
            "ContinuousParameterRanges": [{"Name": "learning-rate", "MinValue": "0.01",
                                           "MaxValue": "0.5", "ScalingType": "Logarithmic"}],
            "IntegerParameterRanges": [{"Name": "max-depth", "MinValue": "2", "MaxValue": "6"}]}),
        TrainingJobDefinition=_definition(bucket, "src/flights.tar.gz",
                                          metrics=[{"Name": "validation:auc",
                                                    "Regex": r"validation:auc=([0-9.]+)"}],
                                          static={"max-iter": "20"}))
    assert sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name)["HyperParameterTuningJobStatus"] == "InProgress"
    job = _wait(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["TrainingJobStatusCounters"]["Completed"] == 4
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    trials = _trials(sm, name)
    assert len(trials) == 4
    values = {t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials}
    best = job["BestTrainingJob"]
    assert best["TrainingJobName"] == max(values, key=values.get)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values.values())
    for trial in trials:
        lr, depth = float(trial["TunedHyperParameters"]["learning-rate"]), int(trial["TunedHyperParameters"]["max-depth"])
        assert 0.01 <= lr <= 0.5 and 2 <= depth <= 6
        described = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert described["TuningJobArn"] == job["HyperParameterTuningJobArn"]
        assert described["HyperParameters"]["max-iter"] == "20"
        final = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
        assert final["validation:auc"] == values[trial["TrainingJobName"]]
        assert 0.55 < final["validation:auc"] < 0.8


def test_bayesian_search_respects_limits_and_finds_a_good_region(bucket):
    sm = boto3.client("sagemaker")
    name = _name("bayes")
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name,
                                         HyperParameterTuningJobConfig=_config(jobs=10, parallel=2, RandomSeed=3),
                                         TrainingJobDefinition=_definition(bucket))
    job = _wait(sm, name)
    trials = _trials(sm, name)
    assert len(trials) == 10 and job["TrainingJobStatusCounters"]["Completed"] == 10
    # never more than MaxParallelTrainingJobs at once
    events = sorted([(t["TrainingStartTime"], 1) for t in trials] + [(t["TrainingEndTime"], -1) for t in trials],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values)
    # the GP-guided trials (after the 3 random ones) get near the optimum (0 at lr=0.01, depth=5);
    # with 2 trials in parallel the completion order varies, so the bound leaves room (-0.51 seen once)
    assert max(values) > -1.0
    lrs = [float(t["TunedHyperParameters"]["lr"]) for t in trials]
    assert all(1e-4 <= lr <= 1 for lr in lrs)


def test_minimize_picks_the_argmin(bucket):
    sm = boto3.client("sagemaker")
    name = _name("minimize")
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name,
                                         HyperParameterTuningJobConfig=_config("Random", jobs=4, kind="Minimize"),
                                         TrainingJobDefinition=_definition(bucket))
    job = _wait(sm, name)
    values = {t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
              for t in _trials(sm, name)}
    assert job["BestTrainingJob"]["TrainingJobName"] == min(values, key=values.get)
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Type"] == "Minimize"


def test_grid_runs_every_combination_once(bucket):
    sm = boto3.client("sagemaker")
    name = _name("grid")
    ranges = {"CategoricalParameterRanges": [{"Name": "lr", "Values": ["0.001", "0.01", "0.1"]},
                                             {"Name": "depth", "Values": ["3", "5"]}]}
    config = _config("Grid", ranges=ranges)
    config["ResourceLimits"] = {"MaxParallelTrainingJobs": 2}
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config,
                                         TrainingJobDefinition=_definition(bucket))
    job = _wait(sm, name)
    combos = sorted((t["TunedHyperParameters"]["lr"], t["TunedHyperParameters"]["depth"]) for t in _trials(sm, name))
    assert combos == sorted((lr, d) for lr in ("0.001", "0.01", "0.1") for d in ("3", "5"))
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"lr": "0.01", "depth": "5"}


def test_failed_trials_are_counted_and_all_failed_fails_the_job(bucket):
    sm = boto3.client("sagemaker")
    name = _name("mixed")
    ranges = {"CategoricalParameterRanges": [{"Name": "kind", "Values": ["a", "bad"]}]}
    config = _config("Grid", ranges=ranges)
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config,
                                         TrainingJobDefinition=_definition(bucket))
    job = _wait(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == 1
    assert job["ObjectiveStatusCounters"]["Failed"] == 1
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"kind": "a"}
    failed = [t for t in _trials(sm, name) if t["TrainingJobStatus"] == "Failed"]
    assert "kind 'bad' is not supported" in failed[0]["FailureReason"]
    assert failed[0]["ObjectiveStatus"] == "Failed"
    only_bad = _name("allbad")
    config = _config("Grid", ranges={"CategoricalParameterRanges": [{"Name": "kind", "Values": ["bad"]}]})
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=only_bad, HyperParameterTuningJobConfig=config,
                                         TrainingJobDefinition=_definition(bucket))
    job = _wait(sm, only_bad)
    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("All training jobs failed")
    assert "BestTrainingJob" not in job


def test_listing_sorts_filters_and_pages(bucket):
    sm = boto3.client("sagemaker")
    name = _name("list")
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name,
                                         HyperParameterTuningJobConfig=_config("Random", jobs=5, RandomSeed=1),
                                         TrainingJobDefinition=_definition(bucket))
    _wait(sm, name)
    by_name = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, SortBy="Name",
                                                                   MaxResults=2)
    page = by_name["TrainingJobSummaries"]
    assert len(page) == 2
    assert page[0]["TrainingJobName"].startswith(f"{name}-001-") and page[1]["TrainingJobName"].startswith(f"{name}-002-")
    assert "NextToken" in by_name
    best_first = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in best_first["TrainingJobSummaries"]]
    assert values == sorted(values, reverse=True) and len(values) == 5
    assert sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, StatusEquals="Failed")["TrainingJobSummaries"] == []
    with pytest.raises(ClientError) as err:
        sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="no-such-tuning-job")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.parametrize("change, message", [
    (lambda c, d: c["HyperParameterTuningJobObjective"].update(MetricName="validation:f1"),
     "isn't valid for the"),
    (lambda c, d: c["ParameterRanges"]["ContinuousParameterRanges"][0].update(MinValue="0"),
     "logarithmic scaling requires a MinValue greater than 0"),
    (lambda c, d: d["StaticHyperParameters"].update(lr="0.1"), "is both static and tuned"),
    (lambda c, d: c.update(Strategy="Genetic"), "Member must satisfy enum value set"),
    (lambda c, d: c.update(Strategy="Grid"), "Grid search supports only categorical"),
])
def test_invalid_tuning_requests_are_rejected_like_aws(bucket, change, message):
    sm = boto3.client("sagemaker")
    config, definition = _config(), _definition(bucket)
    change(config, definition)
    with pytest.raises(ClientError) as err:
        sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=_name("invalid"),
                                             HyperParameterTuningJobConfig=config,
                                             TrainingJobDefinition=definition)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]


def test_stop_tuning_job_stops_its_trials(bucket):
    sm = boto3.client("sagemaker")
    name = _name("stop")
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name,
                                         HyperParameterTuningJobConfig=_config("Random", jobs=6),
                                         TrainingJobDefinition=_definition(bucket, static={"sleep": "30"}))
    time.sleep(1.0)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    job = _wait(sm, name, timeout=30)
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    assert job["TrainingJobStatusCounters"]["Stopped"] >= 1
    assert job["TrainingJobStatusCounters"]["Completed"] == 0
    with pytest.raises(ClientError) as err:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_builtin_xgboost_tuning_on_validation_auc(bucket):
    sm = boto3.client("sagemaker")
    name = _name("xgb")
    definition = {
        "StaticHyperParameters": {"objective": "binary:logistic", "num_round": "15", "eval_metric": "auc"},
        "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/xgb/{c}/"}}} for c in ("train", "validation")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/tuning-output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300}}
    ranges = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5",
                                             "ScalingType": "Auto"}],
              "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "6"}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition,
        HyperParameterTuningJobConfig=_config("Random", jobs=2, metric="validation:auc", ranges=ranges))
    job = _wait(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in _trials(sm, name)]
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values)
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:auc"


def test_scaling_types_map_the_unit_interval_as_documented():
    from labkit.local.sagemaker_tuning import Param

    log = Param("Continuous", {"Name": "lr", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Logarithmic"})
    assert [float(log.decode(u)) for u in (0, 0.5, 1)] == pytest.approx([0.001, 0.01, 0.1])
    reverse = Param("Continuous", {"Name": "m", "MinValue": "0.9", "MaxValue": "0.999",
                                   "ScalingType": "ReverseLogarithmic"})
    assert [float(reverse.decode(u)) for u in (0, 0.5, 1)] == pytest.approx([0.9, 0.99, 0.999])
    linear = Param("Integer", {"Name": "d", "MinValue": "2", "MaxValue": "10", "ScalingType": "Linear"})
    assert [linear.decode(u) for u in (0, 0.5, 1)] == ["2", "6", "10"]
    assert Param("Continuous", {"Name": "a", "MinValue": "1e-5", "MaxValue": "1"}).scaling == "Logarithmic"
    assert Param("Continuous", {"Name": "a", "MinValue": "0", "MaxValue": "1"}).scaling == "Linear"
    assert math.isclose(float(Param("Continuous", {"Name": "a", "MinValue": "1e-5", "MaxValue": "1"}).decode(0.5)),
                        10 ** -2.5)


def test_sdk_hyperparameter_tuner_tune(bucket, local_aws, tmp_path):
    """sagemaker.train.tuner.HyperparameterTuner (SDK 3.x) runs against the local AWS."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, SourceCode
    from sagemaker.train.tuner import HyperparameterTuner

    from sagemaker_helpers import SKLEARN_IMAGE

    (tmp_path / "train.py").write_text(SYNTHETIC_PY)
    session = Session(boto_session=local_aws.session, default_bucket=bucket)
    trainer = ModelTrainer(training_image=SKLEARN_IMAGE, role=ROLE, sagemaker_session=session,
                           source_code=SourceCode(source_dir=str(tmp_path), entry_script="train.py"),
                           compute=Compute(instance_type="ml.m5.large", instance_count=1),
                           base_job_name="sdk-tune")
    tuner = HyperparameterTuner(
        model_trainer=trainer, objective_metric_name="objective", metric_definitions=OBJECTIVE,
        hyperparameter_ranges={"lr": ContinuousParameter(0.0001, 1, scaling_type="Logarithmic"),
                               "depth": IntegerParameter(1, 9)},
        strategy="Bayesian", max_jobs=4, max_parallel_jobs=2)
    tuner.tune(inputs=[InputData(channel_name="train", data_source=f"s3://{bucket}/data/train")])
    job = tuner.latest_tuning_job
    assert job.hyper_parameter_tuning_job_status == "Completed"
    sm = boto3.client("sagemaker")
    values = {t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
              for t in _trials(sm, job.hyper_parameter_tuning_job_name)}
    assert len(values) == 4
    assert tuner.best_training_job() == max(values, key=values.get)


EPOCHS_PY = '''
import argparse, time
parser = argparse.ArgumentParser()
parser.add_argument("--quality", type=float)
args = parser.parse_args()
for epoch in range(8):
    print(f"objective={args.quality * (epoch + 1) / 8!r}", flush=True)
    time.sleep(0.4)
'''


def test_early_stopping_auto_stops_trials_below_the_median(bucket):
    """Median stopping: with per-epoch reports, a clearly worse trial is stopped early."""
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    s3.put_object(Bucket=bucket, Key="src/epochs.tar.gz", Body=tar_gz({"train.py": EPOCHS_PY}))
    name = _name("early")
    ranges = {"CategoricalParameterRanges": [{"Name": "quality", "Values": ["1.0", "0.9", "0.1"]}]}
    config = _config("Grid", ranges=ranges, TrainingJobEarlyStoppingType="Auto")
    config["ResourceLimits"] = {"MaxParallelTrainingJobs": 2}
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config,
                                         TrainingJobDefinition=_definition(bucket, "src/epochs.tar.gz"))
    job = _wait(sm, name)
    trials = {t["TunedHyperParameters"]["quality"]: t for t in _trials(sm, name)}
    assert trials["1.0"]["TrainingJobStatus"] == trials["0.9"]["TrainingJobStatus"] == "Completed"
    assert trials["0.1"]["TrainingJobStatus"] == "Stopped"
    assert trials["0.1"]["ObjectiveStatus"] == "Succeeded"  # its last reported value still counts
    assert trials["0.1"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] < 0.1
    assert job["TrainingJobStatusCounters"]["Stopped"] == 1
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"quality": "1.0"}


# Reports `epoch=N objective=quality*N/9` every epoch for longer than MaxResource (9) allows.
HYPERBAND_PY = '''
import argparse, time
parser = argparse.ArgumentParser()
parser.add_argument("--quality", type=float)
args, _ = parser.parse_known_args()
for epoch in range(1, 13):
    print(f"epoch={epoch} objective={args.quality * epoch / 9!r}", flush=True)
    time.sleep(0.12)
'''
HYPERBAND_METRICS = OBJECTIVE + [{"Name": "epoch", "Regex": r"epoch=([0-9]+)"}]
QUALITY = {"ContinuousParameterRanges": [{"Name": "quality", "MinValue": "0.1", "MaxValue": "1.0",
                                          "ScalingType": "Linear"}]}


def _hyperband(bucket, name, seed, **hyperband):
    sm = boto3.client("sagemaker")
    config = _config("Hyperband", jobs=9, parallel=2, ranges=QUALITY, RandomSeed=seed,
                     StrategyConfig={"HyperbandStrategyConfig": hyperband})
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config,
        TrainingJobDefinition=_definition(bucket, "src/hyperband.tar.gz", metrics=HYPERBAND_METRICS))
    job = _wait(sm, name)
    trials = sorted(_trials(sm, name), key=lambda t: t["TrainingJobName"])
    epochs = {}
    for trial in trials:
        final = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])["FinalMetricDataList"]
        epochs[trial["TrainingJobName"]] = int({m["MetricName"]: m["Value"] for m in final}["epoch"])
    return job, trials, epochs


def test_hyperband_stops_poor_trials_at_a_rung_and_every_trial_at_max_resource(bucket):
    """Rungs at 1 and 3 reports (MinResource 1, η = 3), MaxResource 9: the script would report 12."""
    boto3.client("s3").put_object(Bucket=bucket, Key="src/hyperband.tar.gz",
                                  Body=tar_gz({"train.py": HYPERBAND_PY}))
    job, trials, epochs = _hyperband(bucket, _name("hyperband"), 11, MinResource=1, MaxResource=9)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert len(trials) == 9
    assert max(epochs.values()) == 9  # nobody trains past MaxResource
    assert all(t["TrainingJobStatus"] == "Stopped" and t["ObjectiveStatus"] == "Succeeded" for t in trials)
    cut = [t for t in trials if epochs[t["TrainingJobName"]] < 9]
    assert cut and all(epochs[t["TrainingJobName"]] in (1, 3) for t in cut)  # stopped at a rung
    full = [t for t in trials if epochs[t["TrainingJobName"]] == 9]
    quality = {t["TrainingJobName"]: float(t["TunedHyperParameters"]["quality"]) for t in trials}
    assert max(quality[t["TrainingJobName"]] for t in cut) < max(quality.values())
    best = job["BestTrainingJob"]
    assert epochs[best["TrainingJobName"]] == 9
    assert best["TrainingJobName"] == max(quality, key=quality.get)  # the best never falls below a rung
    assert math.isclose(best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                        quality[best["TrainingJobName"]])
    assert job["TrainingJobStatusCounters"]["Stopped"] == 9 and len(full) >= 2
    # the same RandomSeed draws the same configurations, and the same best one
    again, trials_again, _ = _hyperband(bucket, _name("hyperband"), 11, MinResource=1, MaxResource=9)
    assert [t["TunedHyperParameters"] for t in trials_again] == [t["TunedHyperParameters"] for t in trials]
    assert again["BestTrainingJob"]["TunedHyperParameters"] == best["TunedHyperParameters"]


def test_hyperband_infers_max_resource_from_the_epochs_hyperparameter(bucket):
    sm = boto3.client("sagemaker")
    boto3.client("s3").put_object(Bucket=bucket, Key="src/hyperband.tar.gz",
                                  Body=tar_gz({"train.py": HYPERBAND_PY}))
    name = _name("hb-epochs")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=_config("Hyperband", jobs=2, ranges=QUALITY, RandomSeed=2),
        TrainingJobDefinition=_definition(bucket, "src/hyperband.tar.gz", metrics=HYPERBAND_METRICS,
                                          static={"epochs": "4"}))
    job = _wait(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    for trial in _trials(sm, name):
        final = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])["FinalMetricDataList"]
        assert {m["MetricName"]: m["Value"] for m in final}["epoch"] == 4
        assert trial["TrainingJobStatus"] == "Stopped"


def _hyperband_request(change):
    config = _config("Hyperband", StrategyConfig={"HyperbandStrategyConfig": {"MinResource": 1,
                                                                             "MaxResource": 9}})
    static = {}
    change(config, static)
    return config, static


@pytest.mark.parametrize("change, message", [
    (lambda c, s: c.pop("StrategyConfig"), "MaxResource is not set and cannot be inferred"),
    (lambda c, s: c["StrategyConfig"]["HyperbandStrategyConfig"].pop("MaxResource"),
     "MaxResource is not set and cannot be inferred"),
    (lambda c, s: (c.pop("StrategyConfig"), s.update(num_epochs="many")), "cannot be inferred"),
    (lambda c, s: c["StrategyConfig"]["HyperbandStrategyConfig"].update(MaxResource=20001),
     "the maximum is 20000"),
    (lambda c, s: (c.pop("StrategyConfig"), s.update(epochs="30000")), "the maximum is 20000"),
    (lambda c, s: c.update(TrainingJobEarlyStoppingType="Auto"), "must be Off with the Hyperband"),
    (lambda c, s: c.update(Strategy="Random"), "StrategyConfig is only supported with the Hyperband"),
    (lambda c, s: c["StrategyConfig"]["HyperbandStrategyConfig"].update(MinResource=0),
     "MinResource is 0; it must be at least 1"),
])
def test_invalid_hyperband_requests_are_rejected(bucket, change, message):
    from botocore.config import Config

    # parameter_validation off: the server's own check of MinResource >= 1 is what is tested
    sm = boto3.client("sagemaker", config=Config(parameter_validation=False))
    config, static = _hyperband_request(change)
    with pytest.raises(ClientError) as err:
        sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=_name("hb-invalid"),
                                             HyperParameterTuningJobConfig=config,
                                             TrainingJobDefinition=_definition(bucket, static=static))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]


@pytest.mark.parametrize("change", [
    lambda c, s: None,  # MaxResource given
    lambda c, s: (c.pop("StrategyConfig"), s.update({"n-epochs": "20000"})),  # inferred, at the limit
    lambda c, s: c.update(TrainingJobEarlyStoppingType="Off"),
    lambda c, s: c["StrategyConfig"]["HyperbandStrategyConfig"].pop("MinResource"),
    lambda c, s: (c.update(Strategy="Random"), c.pop("StrategyConfig")),  # Random without StrategyConfig
])
def test_valid_hyperband_requests_are_accepted(bucket, change):
    sm = boto3.client("sagemaker")
    config, static = _hyperband_request(change)
    name = _name("hb-valid")
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config,
                                         TrainingJobDefinition=_definition(bucket, static=static))
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert _wait(sm, name, timeout=30)["HyperParameterTuningJobStatus"] == "Stopped"
