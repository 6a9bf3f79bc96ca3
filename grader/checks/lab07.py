"""Hidden checks of lab 07 (SageMaker training): the channels (time split, no leakage), the
script-mode training job and its metric, the learner's evaluation of the artifact, the built-in
XGBoost job and the clean-up. They read state through boto3 on the labkit handle only."""

from __future__ import annotations

import io
import tarfile

from grader.checks.common import fail, number, require, s3_body

PREFIX = "lab07"
SCRIPT_JOB_PREFIX = "lab07-sklearn"
XGBOOST_JOB_PREFIX = "lab07-xgboost"
LEAKAGE = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")
LABEL = "delayed"
MIN_AUC = 0.70
FEATURES = ["month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time", "distance",
            "carrier_code", "origin_code", "temp", "dewp", "humid", "wind_dir", "wind_speed",
            "precip", "pressure", "visib"]
ROWS = {"train": 20_000, "validation": 30_000}


def _csv(aws, key, header="infer"):
    import pandas as pd

    return pd.read_csv(io.BytesIO(s3_body(aws, key, todo=f"upload the channel file to s3://{aws.bucket}/{key}")),
                       header=header)


def check_channels(aws, prefix: str = PREFIX) -> None:
    """Task 1: train = Jan–Jun, validation = Jul–Dec, a 0/1 label, no leakage columns."""
    train = _csv(aws, f"{prefix}/train/train.csv")
    validation = _csv(aws, f"{prefix}/validation/validation.csv")
    for name, frame in (("train", train), ("validation", validation)):
        require(LABEL in frame.columns, f"the {name} channel has no '{LABEL}' column",
                "keep the label column 'delayed' (dep_delay >= 15) in both files")
        leaked = [c for c in LEAKAGE if c in frame.columns]
        require(not leaked, f"the {name} channel contains {', '.join(leaked)}: known only after "
                            "departure (target leakage)",
                "drop the columns measured after the plane left; keep only FEATURES")
        require("month" in frame.columns, f"the {name} channel has no 'month' column",
                "keep the FEATURES list as given (month is one of them)")
        require(set(frame[LABEL].unique()) == {0, 1}, f"the {name} label is not 0/1 with both classes",
                "use datasets.add_label: delayed = 1 when dep_delay >= 15")
        columns = [str(c) for c in frame.columns]
        unnamed = [c for c in columns if c.startswith("Unnamed")]
        require(not unnamed, f"the {name} channel has an unnamed first column: the DataFrame's index was "
                             "written too (train.py would use it as a feature)",
                "write the CSV with frame.to_csv(index=False)")
        if prefix == PREFIX:  # lab 07's task prescribes the columns and sample sizes
            require(columns == [LABEL] + FEATURES, f"the {name} channel's columns are {columns}",
                    "write exactly the columns [LABEL] + FEATURES, in that order, with a header row")
        if prefix != PREFIX and len(frame) < 5000:
            fail(f"the {name} channel has only {len(frame)} rows", "sample 20,000 / 30,000 rows")
    months_train, months_validation = set(train["month"]), set(validation["month"])
    require(months_train <= set(range(1, 7)) and months_validation <= set(range(7, 13)),
            f"train holds months {sorted(months_train)} and validation {sorted(months_validation)}: "
            "that is not a time split",
            "train on Jan–Jun and validate on Jul–Dec (datasets.time_split), never a random split")
    require(len(months_validation) == 6, f"validation covers only months {sorted(months_validation)}",
            "sample the validation rows from all of Jul–Dec")
    if prefix == PREFIX:
        for name, frame in (("train", train), ("validation", validation)):
            require(len(frame) == ROWS[name], f"the {name} channel has {len(frame):,} rows",
                    f"sample {ROWS[name]:,} rows (random_state=0)")


def _latest_job(aws, prefix: str, todo: str) -> dict:
    sm = aws.client("sagemaker")
    summaries = sm.list_training_jobs(NameContains=prefix, SortBy="CreationTime",
                                      SortOrder="Descending", MaxResults=50)["TrainingJobSummaries"]
    summaries = [s for s in summaries if s["TrainingJobName"].startswith(prefix)]
    if not summaries:
        fail(f"no training job named {prefix}*", todo)
    finished = [s for s in summaries if s["TrainingJobStatus"] == "Completed"]
    if not finished:
        latest = sm.describe_training_job(TrainingJobName=summaries[0]["TrainingJobName"])
        fail(f"training job {latest['TrainingJobName']} is {latest['TrainingJobStatus']}"
             + (f" ({latest['FailureReason'].splitlines()[0]})" if latest.get("FailureReason") else ""),
             "fix the error in its logs and train again")
    return sm.describe_training_job(TrainingJobName=finished[0]["TrainingJobName"])


def _repo(job) -> str:
    image = job["AlgorithmSpecification"].get("TrainingImage", "")
    return image.split("/", 1)[-1].split(":")[0]


def _metric(job, name: str):
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}.get(name)



def _channel_uris(job) -> dict:
    return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"].rstrip("/")
            for c in job.get("InputDataConfig", []) if "S3DataSource" in c.get("DataSource", {})}


def check_training_job(aws, prefix: str = PREFIX) -> None:
    """Task 2: a Completed scikit-learn script-mode job with a validation:auc metric >= 0.70."""
    job = _latest_job(aws, SCRIPT_JOB_PREFIX, "train with ModelTrainer(base_job_name='lab07-sklearn', ...)")
    require(_repo(job) == "sagemaker-scikit-learn", f"job {job['TrainingJobName']} uses image "
            f"{job['AlgorithmSpecification'].get('TrainingImage')}",
            "use the SageMaker scikit-learn framework image (image_uris.retrieve('sklearn', ...))")
    names = [m["Name"] for m in job["AlgorithmSpecification"].get("MetricDefinitions", [])]
    require("validation:auc" in names, f"job {job['TrainingJobName']} defines metrics {', '.join(names) or 'none'}",
            "add MetricDefinition(name='validation:auc', regex=r'validation:auc=([0-9.]+)')")
    auc = _metric(job, "validation:auc")
    require(auc is not None, f"job {job['TrainingJobName']} reported no validation:auc",
            "make the regex match the line train.py prints: validation:auc=0.71...")
    hps = job.get("HyperParameters", {})
    for key, value in (("learning-rate", 0.1), ("max-iter", 100)):
        got = hps.get(key)
        require(number(got) == value, f"job {job['TrainingJobName']} has hyper-parameter {key}={got!r}",
                'use hyperparameters={"learning-rate": 0.1, "max-iter": 100}')
    resources = job.get("ResourceConfig", {})
    require(resources.get("InstanceType") == "ml.m5.large" and resources.get("InstanceCount") == 1,
            f"job {job['TrainingJobName']} runs on {resources.get('InstanceCount')} x "
            f"{resources.get('InstanceType')}",
            'compute=Compute(instance_type="ml.m5.large", instance_count=1)')
    uris = _channel_uris(job)
    for channel in ("train", "validation"):
        expected = f"s3://{aws.bucket}/{prefix}/{channel}"
        require(uris.get(channel) == expected, f"channel '{channel}' reads {uris.get(channel)}",
                f"point the {channel} channel at {expected}")
    require(auc >= MIN_AUC, f"validation:auc is {auc:.3f}", f"reach at least {MIN_AUC} "
            "(keep the weather and schedule features; check the hyper-parameters)")


def _artifact_model(aws, job):
    import joblib

    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = uri[5:].split("/", 1)
    data = s3_body(aws, key, bucket, todo="the training job's model.tar.gz is missing: train again")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("model.joblib")), None)
        if member is None:
            fail(f"{uri} holds no model.joblib", "save the model with joblib.dump to SM_MODEL_DIR")
        return joblib.load(io.BytesIO(tar.extractfile(member).read()))


def check_evaluation(aws, auc, prefix: str = PREFIX) -> None:
    """Task 3: the learner's AUC is the artifact's real AUC on the validation channel."""
    from sklearn.metrics import roc_auc_score

    require(isinstance(auc, float) or hasattr(auc, "__float__"), "auc is not a number",
            "compute auc = roc_auc_score(y_validation, probabilities)")
    job = _latest_job(aws, SCRIPT_JOB_PREFIX, "run task 2 first")
    model = _artifact_model(aws, job)
    validation = _csv(aws, f"{prefix}/validation/validation.csv")
    features = [c for c in validation.columns if c != LABEL]
    expected = roc_auc_score(validation[LABEL], model.predict_proba(validation[features])[:, 1])
    require(abs(float(auc) - expected) < 1e-3,
            f"your auc {float(auc):.4f} is not the model's AUC on the validation channel ({expected:.4f})",
            "score the downloaded model on the validation rows with predict_proba(...)[:, 1] "
            "(probabilities, not 0/1 predictions)")
    job_auc = _metric(job, "validation:auc")
    if job_auc is not None:  # task 2's metric definition may not have matched: that is task 2's point
        require(abs(job_auc - expected) < 1e-3,
                f"the job logged validation:auc {job_auc:.4f} but its artifact scores {expected:.4f}",
                "evaluate the artifact of the latest completed lab07-sklearn job")


def check_builtin_xgboost(aws, prefix: str = PREFIX) -> None:
    """Task 4: the built-in XGBoost algorithm (no script) with a validation channel and AUC."""
    for channel in ("train", "validation"):
        first = _csv(aws, f"{prefix}/xgb/{channel}/{channel}.csv", header=None).iloc[0]
        require(not any(isinstance(v, str) for v in first),
                f"the first line of {prefix}/xgb/{channel}/{channel}.csv is a header row",
                "the built-in algorithm reads every line as data: to_csv(index=False, header=False)")
        require(len(first) == 1 + len(FEATURES) and set(
            _csv(aws, f"{prefix}/xgb/{channel}/{channel}.csv", header=None)[0].unique()) <= {0, 1},
                f"{prefix}/xgb/{channel}/{channel}.csv does not hold the label first and the "
                f"{len(FEATURES)} FEATURES",
                "upload the frame as [LABEL] + FEATURES, index=False, header=False")
    job = _latest_job(aws, XGBOOST_JOB_PREFIX, "create_training_job(TrainingJobName='lab07-xgboost-...', ...)")
    require(_repo(job) in {"sagemaker-xgboost", "xgboost"},
            f"job {job['TrainingJobName']} uses image {job['AlgorithmSpecification'].get('TrainingImage')}",
            "use the built-in XGBoost image (image_uris.retrieve('xgboost', region, '3.0-5'))")
    hps = job.get("HyperParameters", {})
    require("sagemaker_program" not in hps, f"job {job['TrainingJobName']} runs a script",
            "this task uses the built-in algorithm: no entry point, only hyper-parameters")
    require(hps.get("objective") == "binary:logistic", f"objective is {hps.get('objective')!r}",
            "delayed is a yes/no label: objective='binary:logistic'")
    require("auc" in hps.get("eval_metric", ""), f"eval_metric is {hps.get('eval_metric')!r}",
            "set eval_metric='auc' so the job reports validation:auc")
    for key, value in (("num_round", 100), ("max_depth", 5), ("eta", 0.1)):
        require(number(hps.get(key)) == value, f"hyper-parameter {key} is {hps.get(key)!r}",
                'use num_round="100", max_depth="5", eta="0.1"')
    uris = _channel_uris(job)
    require("validation" in uris, "the job has no validation channel",
            "add a 'validation' channel so the algorithm reports validation:auc")
    for channel in ("train", "validation"):
        expected = f"s3://{aws.bucket}/{prefix}/xgb/{channel}"
        require(uris.get(channel) == expected, f"channel '{channel}' reads {uris.get(channel)}",
                f"point the {channel} channel at {expected}/")
    types = {c["ChannelName"]: c.get("ContentType") for c in job.get("InputDataConfig", [])}
    require(all(types.get(c) == "text/csv" for c in ("train", "validation")),
            f"the channels' content types are {types}", 'give both channels ContentType="text/csv"')
    output = job.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
    require(output == f"s3://{aws.bucket}/{prefix}/output", f"the job writes its model to {output}",
            f"OutputDataConfig={{'S3OutputPath': 's3://{aws.bucket}/{prefix}/output'}}")
    resources = job.get("ResourceConfig", {})
    require((resources.get("InstanceType"), resources.get("InstanceCount"), resources.get("VolumeSizeInGB"))
            == ("ml.m5.large", 1, 5), f"the job runs on {resources.get('InstanceCount')} x "
            f"{resources.get('InstanceType')} with {resources.get('VolumeSizeInGB')} GB",
            "one ml.m5.large with VolumeSizeInGB=5")
    runtime = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    require(runtime == 900, f"MaxRuntimeInSeconds is {runtime}",
            'StoppingCondition={"MaxRuntimeInSeconds": 900}')
    auc = _metric(job, "validation:auc")
    require(auc is not None and auc >= 0.65, f"validation:auc is {auc}",
            "the built-in job should reach at least 0.65: label first, no header, text/csv")


def check_cleanup(aws) -> None:
    """Clean-up: no lab 07 training job left running (a running job bills per second). Only a lab
    that was started can be cleaned up: at least one lab07 training job must exist (a job that failed
    in task 2 or 4 costs that task, not this one)."""
    sm = aws.client("sagemaker")
    started = sm.list_training_jobs(NameContains="lab07", MaxResults=1)["TrainingJobSummaries"]
    require(bool(started), "no lab07 training job exists: nothing was trained, nothing to clean up",
            "do tasks 2 and 4 before cleaning up")
    for status in ("InProgress", "Stopping"):
        running = [s["TrainingJobName"] for s in sm.list_training_jobs(
            NameContains="lab07", StatusEquals=status, MaxResults=100)["TrainingJobSummaries"]]
        require(not running, f"training job(s) {', '.join(running)} still {status}",
                "wait for them or stop them with sm.stop_training_job(TrainingJobName=...)")
