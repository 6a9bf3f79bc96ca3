"""Hidden checks of lab 11 (pipelines): the windowed Preprocess step, Train + Evaluate, the AUC gate,
the two executions and their DAG, the drift-triggered retraining, the approval roll-out, clean-up.

They read state through boto3 on the grader's handle only (plus the deterministic data set). No
artifact the learner's code wrote is unpickled here: a model is judged by what the trusted engines
report about it (the training job's metric, the endpoint's predictions)."""

from __future__ import annotations

import functools
import io
import json
import time
from datetime import timedelta

import numpy as np
from botocore.exceptions import ClientError

from grader.checks.common import fail, number, require, s3_body

PIPELINE, GROUP = "flights-retrain", "flights-delay-models"
ENDPOINT, BLUE_CONFIG = "flights-delay", "flights-delay-config"
ALARM, DRIFT_ENDPOINT, SCHEDULE = "flights-drift-temp", "flights-drift", "flights-drift-hourly"
DRIFT_RULE, APPROVAL_RULE, FUNCTION = "flights-drift-retrain", "flights-model-approved", "flights-deploy-approved"
FEATURES = ["hour", "distance", "temp", "dewp", "humid", "wind_speed", "precip", "visib"]
NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"
DEFAULT_WINDOW = ("2013-01-01", "2013-05-01")
DRIFT_WINDOW = ("2013-05-01", "2013-09-01")
MIN_AUC = 0.65
STEPS = ("Preprocess", "Train", "Evaluate", "CheckAuc", "Register", "AucTooLow")
JSON_GET = {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": "metrics.auc.value"}
TRAIN_ARTIFACT = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


@functools.lru_cache(maxsize=1)
def _flights():
    """The curated zone as lab 05 writes it (impossible wind readings missing), labelled, with
    every feature present: what the Preprocess step must select from. Derived from the lab's frame
    (``_lab_flights``) rather than joined again: the same rows, minus the impossible wind readings."""
    flights = _lab_flights()
    return flights[flights["wind_speed"] <= 100].reset_index(drop=True)


def _window(start: str, end: str):
    """(train, validation) rows of the window [start, end): validation = its last month."""
    import pandas as pd

    flights = _flights()
    date = pd.to_datetime(flights[["year", "month", "day"]])
    inside = flights[(date >= pd.Timestamp(start)) & (date < pd.Timestamp(end))]
    last = (pd.Timestamp(end) - pd.Timedelta(days=1)).month
    return inside[inside.month != last], inside[inside.month == last]


def _definition(aws) -> dict:
    try:
        described = aws.client("sagemaker").describe_pipeline(PipelineName=PIPELINE)
    except ClientError:
        fail(f"pipeline '{PIPELINE}' does not exist", "create it with sm.create_pipeline")
    return json.loads(described["PipelineDefinition"])


def _all_steps(steps: list) -> dict:
    """Every step of a definition by name, the branches of Condition steps included."""
    found = {}
    for step in steps:
        found[step.get("Name")] = step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments") or {}
            found.update(_all_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])))
    return found


def _execution(aws, arn, what: str) -> dict:
    sm = aws.client("sagemaker")
    try:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=str(arn))
    except ClientError:
        fail(f"{what} {arn!r} is not a pipeline execution",
             "keep the PipelineExecutionArn that start_pipeline_execution returned")
    require(described.get("PipelineArn", "").endswith(f":pipeline/{PIPELINE}"),
            f"{what} belongs to {described.get('PipelineArn')}", f"run the pipeline {PIPELINE}")
    return described


def _ran_steps(aws, arn) -> dict:
    steps = aws.client("sagemaker").list_pipeline_execution_steps(
        PipelineExecutionArn=str(arn))["PipelineExecutionSteps"]
    return {s["StepName"]: s for s in steps}


def _succeeded(aws, arn, what: str, needed) -> dict:
    described = _execution(aws, arn, what)
    ran = _ran_steps(aws, arn)
    for name in needed:
        step = ran.get(name)
        require(step is not None, f"{what} has no step '{name}' (steps: {sorted(ran)})",
                f"name the step '{name}' as the task says")
        require(step["StepStatus"] == "Succeeded",
                f"step '{name}' of {what} is {step['StepStatus']}: {step.get('FailureReason', '')}",
                "read the step's FailureReason and its job's logs, fix it and run again")
    require(described["PipelineExecutionStatus"] == "Succeeded",
            f"{what} is {described['PipelineExecutionStatus']}: {described.get('FailureReason', '')}",
            "wait for the execution to end, and fix the step that failed")
    return ran


def _job(aws, step: dict, kind: str) -> dict:
    arn = ((step.get("Metadata") or {}).get(f"{kind}Job") or {}).get("Arn", "")
    sm = aws.client("sagemaker")
    name = arn.split("/")[-1]
    return (sm.describe_processing_job(ProcessingJobName=name) if kind == "Processing"
            else sm.describe_training_job(TrainingJobName=name))


def _outputs(job: dict) -> dict:
    return {o["OutputName"]: o["S3Output"]["S3Uri"].rstrip("/")
            for o in (job.get("ProcessingOutputConfig") or {}).get("Outputs", [])}


def _read(aws, uri: str, what: str) -> bytes:
    """``common.s3_body`` on an ``s3://`` URI (its missing-bucket / missing-key messages)."""
    bucket, _, key = uri[len("s3://"):].partition("/")
    return s3_body(aws, key, bucket, todo=f"write {what} there: check the step's output paths and file names")


def _values(value) -> list:
    """A learner's list-like value (list, Series, one-column frame rebuilt by the export) as a list:
    ``value or []`` raises on a Series, so a correct answer given as one would lose its points."""
    if value is None:
        return []
    if hasattr(value, "columns") and len(value.columns) == 1:  # a one-column DataFrame
        value = value.iloc[:, 0]
    return list(value) if hasattr(value, "__iter__") and not isinstance(value, (str, bytes, dict)) else [value]


def _csv(aws, uri: str, what: str):
    import pandas as pd

    return pd.read_csv(io.BytesIO(_read(aws, uri, what)))


def check_preprocess(aws, preprocess_arn) -> None:
    definition = _definition(aws)
    parameters = {p.get("Name"): p for p in definition.get("Parameters", [])}
    for name, default in zip(("WindowStart", "WindowEnd"), DEFAULT_WINDOW):
        got = parameters.get(name, {})
        require(got.get("Type") == "String" and got.get("DefaultValue") == default,
                f"parameter {name} is {got or 'missing'}",
                f"declare {name} as a String parameter with the default {default!r}")
    ran = _succeeded(aws, preprocess_arn, "preprocess_arn", ["Preprocess"])
    job = _job(aws, ran["Preprocess"], "Processing")
    image = job["AppSpecification"]["ImageUri"]
    require("sagemaker-scikit-learn" in image, f"the Preprocess job runs {image}",
            "use the scikit-learn image SKLEARN_IMAGE")
    arguments = job["AppSpecification"].get("ContainerArguments", [])
    require(all(v in arguments for v in DEFAULT_WINDOW),
            f"the Preprocess job ran with the arguments {arguments}",
            "pass --window-start and --window-end from the parameters ({'Get': 'Parameters.WindowStart'})")
    outputs = _outputs(job)
    for name in ("train", "validation"):
        expected = f"s3://{aws.bucket}/lab11/data/{name}"
        require(outputs.get(name) == expected, f"the Preprocess output '{name}' goes to {outputs.get(name)}",
                f"name the output '{name}' and upload it to {expected}")
    expected_train, expected_validation = _window(*DEFAULT_WINDOW)
    for name, expected in (("train", expected_train), ("validation", expected_validation)):
        frame = _csv(aws, f"{outputs[name]}/{name}.csv", f"the {name} set")
        require(list(frame.columns) == ["delayed"] + FEATURES, f"{name}.csv has the columns {list(frame.columns)}",
                "write ['delayed'] + FEATURES with a header row")
        require(len(frame) == len(expected),
                f"{name}.csv has {len(frame):,} rows; the window {DEFAULT_WINDOW[0]}–{DEFAULT_WINDOW[1]} has "
                f"{len(expected):,} {name} rows", "keep every flight of the window with all FEATURES: "
                "dates in [start, end), the last month for validation, the months before for training")
        months = sorted(expected.month.unique())
        require(abs(frame["temp"].mean() - expected["temp"].mean()) < 0.01
                and abs(frame["delayed"].mean() - expected["delayed"].mean()) < 1e-6,
                f"{name}.csv does not hold the flights of month(s) {months}",
                "select by date from the curated files; delayed = dep_delay >= 15")


def _require_hp(hps: dict, name: str, value: str) -> None:
    got = str(hps.get(name, "")).strip('"')
    require(got == value, f"the training job's hyper-parameter {name} is {got or 'missing'!r}",
            f"set {name}={value!r}")


def check_evaluation(aws, evaluate_arn) -> None:
    steps = _all_steps(_definition(aws).get("Steps", []))
    train = steps.get("Train", {}).get("Arguments", {})
    for channel in train.get("InputDataConfig", []):
        uri = channel.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
        name = channel.get("ChannelName")
        require(uri == {"Get": f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"},
                f"the Train channel '{name}' reads {uri!r}",
                "take it from the Preprocess step's output with a Get expression (it also orders the steps)")
    evaluate = steps.get("Evaluate", {})
    inputs = {i.get("InputName"): i.get("S3Input", {}).get("S3Uri")
              for i in evaluate.get("Arguments", {}).get("ProcessingInputs", [])}
    require(TRAIN_ARTIFACT in inputs.values(), f"the Evaluate step's inputs are {inputs}",
            "read the model from {'Get': 'Steps.Train.ModelArtifacts.S3ModelArtifacts'}")
    files = evaluate.get("PropertyFiles", [])
    require({"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
            in files, f"the Evaluate step's property files are {files}",
            "declare PropertyFileName 'EvaluationReport', OutputName 'evaluation', FilePath 'evaluation.json'")
    ran = _succeeded(aws, evaluate_arn, "evaluate_arn", ["Preprocess", "Train", "Evaluate"])
    job = _job(aws, ran["Train"], "Training")
    image = job["AlgorithmSpecification"]["TrainingImage"]
    require("sagemaker-scikit-learn" in image, f"the Train job runs {image}", "use SKLEARN_IMAGE")
    hps = job.get("HyperParameters", {})
    _require_hp(hps, "sagemaker_program", "train.py")
    _require_hp(hps, "max-iter", "50")
    metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    require("validation:auc" in metrics, f"the Train job reported the metrics {sorted(metrics)}",
            "add the metric definition validation:auc with the regex validation:auc=([0-9.]+)")
    outputs = _outputs(_job(aws, ran["Evaluate"], "Processing"))
    expected = f"s3://{aws.bucket}/lab11/evaluation"
    require(outputs.get("evaluation") == expected, f"the Evaluate output 'evaluation' goes to "
            f"{outputs.get('evaluation')}", f"upload it to {expected}")
    try:
        report = json.loads(_read(aws, f"{expected}/evaluation.json", "evaluation.json"))
        auc = float(report["metrics"]["auc"]["value"])
    except (ValueError, KeyError, TypeError):
        fail("evaluation.json has no number at metrics.auc.value",
             'write {"metrics": {"auc": {"value": <auc>}}}')
    require(abs(auc - metrics["validation:auc"]) < 1e-4,
            f"evaluation.json says AUC {auc:.4f}; the model's AUC on the validation set is "
            f"{metrics['validation:auc']:.4f}",
            "compute roc_auc_score on validation.csv with predict_proba(...)[:, 1] of the trained model")


def _registers(condition: dict, auc: float, minimum: float) -> bool | None:
    """Whether the condition step sends an evaluated ``auc`` to its If branch (None: not judgeable)."""
    conditions = condition.get("Arguments", {}).get("Conditions", [])
    if len(conditions) != 1:
        return None
    cond = conditions[0]
    left, right = cond.get("LeftValue"), cond.get("RightValue")
    values = {json.dumps({"Std:JsonGet": JSON_GET}, sort_keys=True): auc,
              json.dumps({"Get": "Parameters.MinAuc"}, sort_keys=True): minimum}
    a, b = (values.get(json.dumps(v, sort_keys=True)) for v in (left, right))
    if a is None or b is None:
        return None
    compare = {"GreaterThanOrEqualTo": a >= b, "GreaterThan": a > b, "LessThan": a < b,
               "LessThanOrEqualTo": a <= b}
    return compare.get(cond.get("Type"))


def check_condition(aws) -> None:
    definition = _definition(aws)
    parameters = {p.get("Name"): p for p in definition.get("Parameters", [])}
    got = parameters.get("MinAuc", {})
    require(got.get("Type") == "Float" and got.get("DefaultValue") == MIN_AUC,
            f"parameter MinAuc is {got or 'missing'}", "declare MinAuc as a Float parameter, default 0.65")
    conditions = [s for s in definition.get("Steps", []) if s.get("Type") == "Condition"]
    require(len(conditions) == 1 and conditions[0].get("Name") == "CheckAuc",
            f"the pipeline's Condition steps are {[s.get('Name') for s in conditions]}",
            "add one Condition step named CheckAuc after Evaluate")
    condition = conditions[0]
    arguments = condition.get("Arguments") or {}  # a step without Arguments fails below, not KeyError
    cond = (arguments.get("Conditions") or [{}])[0]
    decisions = [_registers(condition, MIN_AUC + delta, MIN_AUC) for delta in (-0.01, 0.0, 0.01)]
    require(None not in decisions,
            f"CheckAuc compares {cond.get('LeftValue')!r} with {cond.get('RightValue')!r}",
            "compare the evaluated AUC (Std:JsonGet on Steps.Evaluate.PropertyFiles.EvaluationReport, "
            "Path metrics.auc.value) with {'Get': 'Parameters.MinAuc'}")
    branches = {True: arguments.get("IfSteps", []), False: arguments.get("ElseSteps", [])}
    register_branch = branches[decisions[2]]
    require(decisions[1] == decisions[2] and decisions[0] != decisions[2],
            f"CheckAuc ({cond.get('Type')}) does not send an AUC of at least MinAuc one way and a lower "
            "AUC the other", "register when AUC >= MinAuc (GreaterThanOrEqualTo)")
    registers = [s for s in register_branch if s.get("Type") == "RegisterModel"]
    require(len(registers) == 1, "the branch taken when AUC >= MinAuc holds "
            f"{[s.get('Type') for s in register_branch]}", "put the RegisterModel step there")
    fails_ = [s for s in branches[not decisions[2]] if s.get("Type") == "Fail"]
    require(len(fails_) == 1 and fails_[0].get("Arguments", {}).get("ErrorMessage"),
            "the branch taken when AUC < MinAuc has no Fail step with an ErrorMessage",
            "put the Fail step AucTooLow there, with a message that says why")
    register = registers[0].get("Arguments", {})
    require(register.get("ModelPackageGroupName") == GROUP,
            f"Register puts the model in {register.get('ModelPackageGroupName')!r}", f"use GROUP ({GROUP})")
    require(register.get("ModelApprovalStatus") == "PendingManualApproval",
            f"Register sets the approval status {register.get('ModelApprovalStatus')!r}",
            "register as PendingManualApproval: a person approves the release")
    containers = register.get("InferenceSpecification", {}).get("Containers") or [{}]
    container = containers[0]
    require(container.get("ModelDataUrl") == TRAIN_ARTIFACT,
            f"the registered container serves {container.get('ModelDataUrl')!r}",
            "use the Train step's artifact: {'Get': 'Steps.Train.ModelArtifacts.S3ModelArtifacts'}")
    env = container.get("Environment") or {}
    require(env.get("SAGEMAKER_PROGRAM") == "inference.py"
            and env.get("SAGEMAKER_SUBMIT_DIRECTORY") == f"s3://{aws.bucket}/lab11/code/inference.tar.gz",
            f"the registered container's environment is {env}",
            "set SAGEMAKER_PROGRAM=inference.py and SAGEMAKER_SUBMIT_DIRECTORY=f'{CODE}/inference.tar.gz'")
    statistics = (register.get("ModelMetrics", {}).get("ModelQuality") or {}).get("Statistics") or {}
    require(statistics.get("S3Uri") == f"s3://{aws.bucket}/lab11/evaluation/evaluation.json",
            f"the package's model-quality statistics are {statistics.get('S3Uri')!r}",
            "point ModelMetrics.ModelQuality.Statistics at the evaluation.json of task 2")
    try:
        aws.client("sagemaker").describe_model_package_group(ModelPackageGroupName=GROUP)
    except ClientError:
        fail(f"model package group {GROUP!r} does not exist", "create it with create_model_package_group")


def _parameters(aws, arn) -> dict:
    """The values an execution ran with: its definition's defaults, overridden by the parameters it
    was started with (whether ListPipelineParametersForExecution lists defaults is not documented)."""
    sm = aws.client("sagemaker")
    try:
        definition = json.loads(sm.describe_pipeline_definition_for_execution(
            PipelineExecutionArn=str(arn))["PipelineDefinition"])
        listed = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=str(arn))["PipelineParameters"]
    except (ClientError, ValueError, KeyError):
        return {}
    values = {p.get("Name"): p.get("DefaultValue") for p in definition.get("Parameters") or []
              if isinstance(p, dict)}
    return {**values, **{p["Name"]: p["Value"] for p in listed}}


def _registered_arn(step: dict) -> str:
    return ((step.get("Metadata") or {}).get("RegisterModel") or {}).get("Arn", "")


def check_runs(aws, passed_arn, failed_arn, steps_table, dag_labels) -> None:
    ran = _succeeded(aws, passed_arn, "passed_arn", ["Preprocess", "Train", "Evaluate", "CheckAuc", "Register"])
    package = aws.client("sagemaker").describe_model_package(ModelPackageName=_registered_arn(ran["Register"]))
    require(package.get("ModelPackageGroupName") == GROUP,
            f"passed_arn registered {package.get('ModelPackageArn')} in {package.get('ModelPackageGroupName')}",
            "run the pipeline of task 3 with the default parameters")
    failed = _execution(aws, failed_arn, "failed_arn")
    require(failed["PipelineExecutionStatus"] == "Failed", f"failed_arn is {failed['PipelineExecutionStatus']}",
            "start it with PipelineParameters=[{'Name': 'MinAuc', 'Value': '0.99'}]")
    require(_parameters(aws, failed_arn).get("MinAuc") in ("0.99", "0.990"),
            f"failed_arn ran with MinAuc={_parameters(aws, failed_arn).get('MinAuc')}", "use MinAuc=0.99")
    failed_steps = _ran_steps(aws, failed_arn)
    message = _all_steps(_definition(aws)["Steps"]).get("AucTooLow", {}).get("Arguments", {}).get("ErrorMessage")
    require("Register" not in failed_steps and "AucTooLow" in failed_steps,
            f"failed_arn ran the steps {sorted(failed_steps)}", "let the Condition send it to AucTooLow")
    require(isinstance(message, str) and message in (failed.get("FailureReason") or ""),
            f"failed_arn failed with {failed.get('FailureReason')!r}", "the Fail step's ErrorMessage is the reason")
    require(hasattr(steps_table, "columns") and {"step", "status", "seconds"} <= set(steps_table.columns),
            "steps_table lacks the columns step, status, seconds", "build it from list_pipeline_execution_steps")
    table = {row["step"]: row for row in steps_table.to_dict("records")}
    require(set(table) == set(ran), f"steps_table lists {sorted(table)}; passed_arn ran {sorted(ran)}",
            "one row per step of the passed execution")
    for name, step in ran.items():
        seconds = (step["EndTime"] - step["StartTime"]).total_seconds()
        claimed = number(table[name]["seconds"])  # "1.2 s" or None: a wrong claim, not a crash
        require(table[name]["status"] == step["StepStatus"] and claimed is not None and abs(claimed - seconds) < 0.5,
                f"steps_table says {name} {table[name]['status']} in {table[name]['seconds']} s; it was "
                f"{step['StepStatus']} in {seconds:.1f} s", "seconds = EndTime - StartTime of each step")
    labels = [str(t) for t in _values(dag_labels)]
    for name in STEPS:
        status = ran[name]["StepStatus"] if name in ran else "NotRun"
        require(any(name in t and status in t for t in labels),
                f"the DAG has no box for {name} labelled {status}",
                "draw one box per step (both branches) with ax.text, labelled with its status")


def _alarm_event(alarm: dict, state: str) -> str:
    return json.dumps({
        "version": "0", "id": "0b5d3f8e-lab11", "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": alarm["AlarmArn"].split(":")[4], "time": "2013-07-01T00:00:00Z",
        "region": alarm["AlarmArn"].split(":")[3], "resources": [alarm["AlarmArn"]],
        "detail": {"alarmName": alarm["AlarmName"], "state": {"value": state, "reason": "check"},
                   "previousState": {"value": "OK" if state == "ALARM" else "ALARM"}}})


def _matches(aws, rule: dict, event: str) -> bool:
    return aws.client("events").test_event_pattern(EventPattern=rule["EventPattern"], Event=event)["Result"]


def _rule(aws, name: str) -> dict:
    try:
        rule = aws.client("events").describe_rule(Name=name)
    except ClientError:
        fail(f"EventBridge rule {name!r} does not exist", "create it with events.put_rule")
    require(rule.get("State") == "ENABLED" and rule.get("EventPattern"),
            f"rule {name} is {rule.get('State')} with the pattern {rule.get('EventPattern')}",
            "give it an EventPattern and State='ENABLED'")
    return rule


def check_drift_trigger(aws, triggered_arn) -> None:
    from scipy import stats

    cloudwatch, sm = aws.client("cloudwatch"), aws.client("sagemaker")
    alarms = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    require(bool(alarms), f"alarm {ALARM} does not exist", "keep the alarm the setup created")
    alarm = alarms[0]
    rule = _rule(aws, DRIFT_RULE)
    other = {**alarm, "AlarmArn": alarm["AlarmArn"].replace(ALARM, "some-other-alarm"), "AlarmName": "some-other-alarm"}
    require(_matches(aws, rule, _alarm_event(alarm, "ALARM")),
            f"the pattern of {DRIFT_RULE} does not match {ALARM} going to ALARM",
            "match source aws.cloudwatch, detail-type 'CloudWatch Alarm State Change', the alarm's ARN in "
            "resources and detail.state.value ALARM")
    require(not _matches(aws, rule, _alarm_event(alarm, "OK")),
            f"{DRIFT_RULE} also fires when {ALARM} goes back to OK", "match detail.state.value ['ALARM'] only")
    require(not _matches(aws, rule, _alarm_event(other, "ALARM")),
            f"{DRIFT_RULE} fires for any alarm", f"match only {ALARM} (its ARN in resources, or its name)")
    targets = aws.client("events").list_targets_by_rule(Rule=DRIFT_RULE)["Targets"]
    pipeline_arn = sm.describe_pipeline(PipelineName=PIPELINE)["PipelineArn"]
    require(len(targets) == 1 and targets[0]["Arn"] == pipeline_arn and targets[0].get("RoleArn"),
            f"{DRIFT_RULE} targets {[t['Arn'] for t in targets]}",
            "give it one target: the pipeline's ARN, with RoleArn=EVENTS_ROLE_ARN")
    given = {p["Name"]: p["Value"] for p in
             (targets[0].get("SageMakerPipelineParameters") or {}).get("PipelineParameterList", [])}
    require(given == dict(zip(("WindowStart", "WindowEnd"), DRIFT_WINDOW)),
            f"the target starts the pipeline with {given}",
            "SageMakerPipelineParameters WindowStart=2013-05-01, WindowEnd=2013-09-01")
    labelled = _lab_flights()
    drift = stats.ks_2samp(labelled[labelled.month <= 3]["temp"],
                           labelled[labelled.month.isin([7, 8])]["temp"]).statistic
    now = aws.now()

    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="feature_baseline_drift_temp", Statistics=["Maximum"], Period=3600,
        Dimensions=[{"Name": "Endpoint", "Value": DRIFT_ENDPOINT}, {"Name": "MonitoringSchedule", "Value": SCHEDULE}],
        StartTime=now - timedelta(days=30), EndTime=now + timedelta(hours=1))["Datapoints"]
    values = [p["Maximum"] for p in points]
    require(any(abs(v - drift) < 1e-3 for v in values),
            f"feature_baseline_drift_temp holds {[round(v, 3) for v in values]}; the KS distance of temp between "
            f"January–March and July–August is {drift:.3f}",
            "publish stats.ks_2samp(Jan–Mar temp, Jul–Aug temp).statistic with the alarm's namespace and dimensions")
    require(alarm["StateValue"] == "ALARM", f"{ALARM} is {alarm['StateValue']}", "wait_for_alarm(aws, ALARM)")
    ran = _succeeded(aws, triggered_arn, "triggered_arn", ["Preprocess", "Train", "Evaluate", "Register"])
    params = _parameters(aws, triggered_arn)
    require((params.get("WindowStart"), params.get("WindowEnd")) == DRIFT_WINDOW,
            f"triggered_arn ran with the window {params.get('WindowStart')}–{params.get('WindowEnd')}",
            "keep the execution the rule started (with the target's parameters)")
    require(bool(_registered_arn(ran["Register"])), "triggered_arn registered no model package",
            "let it run to the end")


def _package_event(aws, status: str, group: str = GROUP) -> str:
    return json.dumps({
        "version": "0", "id": "1c7e0a2b-lab11", "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker", "account": "123456789012", "time": "2013-09-01T00:00:00Z",
        "region": aws.region, "resources": [f"arn:aws:sagemaker:{aws.region}:123456789012:model-package/{group}/2"],
        "detail": {"ModelPackageGroupName": group, "ModelPackageVersion": 2, "ModelApprovalStatus": status,
                   "ModelPackageArn": f"arn:aws:sagemaker:{aws.region}:123456789012:model-package/{group}/2"}})


def check_deployed(aws, served) -> None:
    sm, lam = aws.client("sagemaker"), aws.client("lambda")
    rule = _rule(aws, APPROVAL_RULE)
    require(_matches(aws, rule, _package_event(aws, "Approved")),
            f"the pattern of {APPROVAL_RULE} does not match a package of {GROUP} becoming Approved",
            "match source aws.sagemaker, detail-type 'SageMaker Model Package State Change', "
            "detail.ModelPackageGroupName and detail.ModelApprovalStatus ['Approved']")
    require(not _matches(aws, rule, _package_event(aws, "PendingManualApproval")),
            f"{APPROVAL_RULE} also fires for PendingManualApproval (every new version would be deployed)",
            "match ModelApprovalStatus ['Approved'] only")
    require(not _matches(aws, rule, _package_event(aws, "Approved", "another-group")),
            f"{APPROVAL_RULE} fires for any model package group", f"match ModelPackageGroupName [{GROUP!r}]")
    try:
        function = lam.get_function(FunctionName=FUNCTION)["Configuration"]
    except ClientError:
        fail(f"Lambda function {FUNCTION!r} does not exist", "create it with awslambda.create_function")
    targets = aws.client("events").list_targets_by_rule(Rule=APPROVAL_RULE)["Targets"]
    require([t["Arn"] for t in targets] == [function["FunctionArn"]],
            f"{APPROVAL_RULE} targets {[t['Arn'] for t in targets]}", "target the function's ARN")
    env = (function.get("Environment") or {}).get("Variables", {})
    require(env.get("ENDPOINT") == ENDPOINT and env.get("ROLE_ARN"), f"the function's environment is {env}",
            "set ENDPOINT and ROLE_ARN in Environment.Variables")
    approved = [p for p in sm.list_model_packages(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved")
                ["ModelPackageSummaryList"]]
    require(len(approved) == 1, f"{len(approved)} version(s) of {GROUP} are Approved",
            "approve exactly the version the drift-triggered execution registered")
    package = sm.describe_model_package(ModelPackageName=approved[0]["ModelPackageArn"])
    require(package.get("ModelPackageVersion", 0) >= 2,
            f"the approved version is {package.get('ModelPackageVersion')} (the January–March model)",
            "approve the version registered by triggered_arn (May–July)")
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    require(endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] != BLUE_CONFIG,
            f"{ENDPOINT} is {endpoint['EndpointStatus']} on {endpoint['EndpointConfigName']}",
            "let the function call update_endpoint with a new configuration, and wait for InService")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
    source = containers[0]
    data_url = package["InferenceSpecification"]["Containers"][0].get("ModelDataUrl")
    require(source.get("ModelPackageName") == package["ModelPackageArn"]
            or (source.get("ModelDataUrl") and source.get("ModelDataUrl") == data_url),
            f"{ENDPOINT} serves {source.get('ModelPackageName') or source.get('ModelDataUrl')}",
            "create the model from the approved package (Containers=[{'ModelPackageName': arn}])")
    # The function's logs are written as its process ends, which can be just after the endpoint it
    # updated is back InService: give them a few seconds before judging that it never ran.
    for _ in range(40):
        streams = aws.client("logs").describe_log_streams(
            logGroupName=f"/aws/lambda/{FUNCTION}").get("logStreams", []) if _log_group_exists(aws) else []
        if streams:
            break
        time.sleep(0.5)
    require(bool(streams), f"{FUNCTION} never ran (no logs in /aws/lambda/{FUNCTION})",
            "let the approval rule invoke the function: add_permission for events.amazonaws.com")
    august = _flights_august()
    answer = aws.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="text/csv", Body=august[FEATURES].to_csv(index=False, header=False))
    expected = np.array([float(v) for v in answer["Body"].read().decode().split()])
    got = np.array([number(v) for v in _values(served)], dtype=float)  # a non-number: NaN, so not close
    require(got.shape == expected.shape and np.allclose(got, expected, atol=1e-5),
            "`served` is not what the endpoint returns for the first 50 August flights",
            "send flights[flights.month == 8].head(50)[FEATURES] after the roll-out")


def _log_group_exists(aws) -> bool:
    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{FUNCTION}")["logGroups"]
    return any(g["logGroupName"] == f"/aws/lambda/{FUNCTION}" for g in groups)


@functools.lru_cache(maxsize=1)
def _lab_flights():
    """The lab's ``flights`` (the setup's frame: labelled, every feature present)."""
    from labkit import datasets

    return datasets.add_label(datasets.joined()).dropna(subset=FEATURES)


def _flights_august():
    flights = _lab_flights()
    return flights[flights.month == 8].head(50)


def check_cleanup(aws) -> None:
    sm, events = aws.client("sagemaker"), aws.client("events")
    rules = [r["Name"] for r in events.list_rules(NamePrefix="flights-")["Rules"]
             if r["Name"] in (DRIFT_RULE, APPROVAL_RULE)]
    require(not rules, f"rule(s) {rules} still exist", "remove_targets, then delete_rule")
    names = [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]]
    require(FUNCTION not in names, f"function {FUNCTION} still exists", "awslambda.delete_function")
    pipelines = [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
    require(PIPELINE not in pipelines, f"pipeline {PIPELINE} still exists", "sm.delete_pipeline")
    groups = [g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]]
    if GROUP in groups:
        left = sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
        fail(f"model package group {GROUP} still exists with {len(left)} version(s)",
             "delete every version (delete_model_package), then the group")
    endpoints = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    require(ENDPOINT not in endpoints, f"endpoint {ENDPOINT} still exists (it bills by the hour)",
            "sm.delete_endpoint")
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs(NameContains="flights-delay")["EndpointConfigs"]]
    require(not configs, f"endpoint configuration(s) {configs} still exist", "delete them")
    models = [m["ModelName"] for m in sm.list_models(NameContains="flights-delay")["Models"]]
    require(not models, f"model(s) {models} still exist", "delete them (the blue one and those the function made)")
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    require(not alarms, f"alarm {ALARM} still exists", "cloudwatch.delete_alarms")
