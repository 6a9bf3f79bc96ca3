"""Hidden checks of lab 10 (drift): the Jan–Mar baseline, captured Jul–Sep traffic, the drift alarm,
the hourly schedule and its violations, PSI / KS, the retrained endpoint, clean-up. They read state
through boto3 on the labkit handle only (plus the deterministic data set)."""

from __future__ import annotations

import functools
import io
import json
import re
import tarfile

import numpy as np
from botocore.exceptions import ClientError

from grader.checks.common import fail, require

ENDPOINT, SCHEDULE, ALARM = "flights-drift", "flights-drift-hourly", "flights-drift-temp"
MODEL, RETRAINED_MODEL = "flights-drift-q1", "flights-drift-recent"
FEATURES = ["hour", "distance", "temp", "dewp", "humid", "wind_speed", "precip", "visib"]
NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"


@functools.lru_cache(maxsize=1)
def _data():
    """(q1, streamed, september) exactly as the lab's setup builds them."""
    from labkit import datasets

    flights = datasets.add_label(datasets.joined()).dropna(subset=FEATURES)
    q1 = flights[flights.month <= 3]
    streamed = flights[flights.month.between(7, 9)].sample(2000, random_state=10)
    return q1, streamed, flights[flights.month == 9]


def _json(aws, uri: str, what: str) -> dict:
    bucket, _, key = uri[len("s3://"):].partition("/")
    try:
        return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError:
        fail(f"{what} {uri} does not exist", "run the job that writes it and check the S3 path")
    raise AssertionError("unreachable")  # pragma: no cover


def check_baseline(aws, baseline_job_name) -> None:
    sm = aws.client("sagemaker")
    try:
        job = sm.describe_processing_job(ProcessingJobName=str(baseline_job_name))
    except ClientError:
        fail(f"processing job {baseline_job_name!r} does not exist",
             "run monitor.suggest_baseline and keep monitor.latest_baselining_job_name")
    require("model-monitor-analyzer" in job["AppSpecification"]["ImageUri"],
            f"job {baseline_job_name} runs {job['AppSpecification']['ImageUri']}",
            "create the baseline with DefaultModelMonitor.suggest_baseline (the analyzer image)")
    require(job["ProcessingJobStatus"] == "Completed", f"the baseline job is {job['ProcessingJobStatus']}"
            + (f": {job.get('FailureReason')}" if job.get("FailureReason") else ""),
                "fix it and wait for Completed")
    output = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    require(output == f"s3://{aws.bucket}/lab10/baseline/output", f"the baseline is written to {output}",
            "use output_s3_uri=f's3://{bucket}/lab10/baseline/output'")
    stats = _json(aws, f"{output}/statistics.json", "statistics")
    _json(aws, f"{output}/constraints.json", "constraints")
    names = [f["name"] for f in stats["features"]]
    require(names == FEATURES, f"the baseline's features are {names}",
            "upload q1[FEATURES] with a header row and use DatasetFormat.csv(header=True)")
    q1, _, _ = _data()
    count = stats["dataset"]["item_count"]
    temp = next(f for f in stats["features"] if f["name"] == "temp")["numerical_statistics"]["mean"]
    require(count == len(q1) and abs(temp - q1["temp"].mean()) < 0.01,
            f"the baseline has {count:,} rows with a mean temperature of {temp:.1f} °F; January–March has "
            f"{len(q1):,} rows at {q1['temp'].mean():.1f} °F",
                "baseline all of q1 (months 1–3), the training months")


def _captured_rows(aws) -> list[list[float]]:
    s3 = aws.client("s3")
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket,
                                                             Prefix=f"lab10/capture/{ENDPOINT}/"):
        for item in page.get("Contents", []):
            for line in s3.get_object(Bucket=aws.bucket,
                                      Key=item["Key"])["Body"].read().decode().splitlines():
                if not line.strip():
                    continue
                captured = json.loads(line)["captureData"].get("endpointInput", {})
                if captured.get("encoding") == "CSV" and len(captured.get("data", "")) < 200_000:
                    rows.extend([float(v) for v in r.split(",")] for r in captured["data"].splitlines() if r)
    return rows


def check_streamed(aws) -> None:
    rows = _captured_rows(aws)
    require(len(rows) >= 2000, f"the endpoint's capture holds {len(rows):,} rows",
            "send all 2,000 rows of streamed[FEATURES] through invoke_endpoint")
    temps = np.array([r[2] for r in rows if len(r) == len(FEATURES)])
    require(temps.size >= 2000, "captured rows do not have the 8 FEATURES columns",
            "send streamed[FEATURES] (8 columns, in FEATURES order, no header)")
    q1, streamed, _ = _data()
    require(temps.mean() > q1["temp"].mean() + 20,
            f"the captured traffic's mean temperature is {temps.mean():.1f} °F, like the baseline months",
            "stream the July–September sample `streamed`, not January–March rows")


def check_alarm(aws) -> None:
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    require(bool(alarms), f"alarm '{ALARM}' does not exist", "create it with cloudwatch.put_metric_alarm")
    alarm = alarms[0]
    require(alarm.get("Namespace") == NAMESPACE, f"the alarm watches namespace {alarm.get('Namespace')!r}",
            f"Model Monitor publishes to {NAMESPACE}")
    require(alarm.get("MetricName") == "feature_baseline_drift_temp",
            f"the alarm watches {alarm.get('MetricName')!r}",
            "watch feature_baseline_drift_temp")
    dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    require(dims == {"Endpoint": ENDPOINT, "MonitoringSchedule": SCHEDULE},
            f"the alarm's dimensions are {dims}",
            "use exactly Endpoint=ENDPOINT and MonitoringSchedule=SCHEDULE (a metric is its name plus all "
            "its dimensions)")
    require(alarm.get("ComparisonOperator") == "GreaterThanThreshold" and alarm.get("Threshold") == 0.1,
            f"the alarm fires when {alarm.get('ComparisonOperator')} {alarm.get('Threshold')}",
            "use GreaterThanThreshold 0.1, the baseline's comparison threshold")
    require(alarm.get("Statistic") == "Maximum" and alarm.get("Period") == 3600,
            f"the alarm evaluates {alarm.get('Statistic')} over {alarm.get('Period')} s",
            "use Statistic='Maximum' and Period=3600 (one data point per hourly execution)")


def check_schedule(aws, violations) -> None:
    sm = aws.client("sagemaker")
    try:
        schedule = sm.describe_monitoring_schedule(MonitoringScheduleName=SCHEDULE)
    except ClientError:
        fail(f"monitoring schedule '{SCHEDULE}' does not exist",
             "create it with sm.create_monitoring_schedule")
    config = schedule["MonitoringScheduleConfig"]
    expression = config["ScheduleConfig"]["ScheduleExpression"]
    require(re.fullmatch(r"cron\(0 \* \? \* \* \*\)", expression) is not None,
            f"the schedule runs on {expression!r}", "use the hourly cron(0 * ? * * *)")
    require(schedule.get("EndpointName") == ENDPOINT,
            f"the schedule monitors {schedule.get('EndpointName')!r}",
            "monitor EndpointName=ENDPOINT")
    baseline, output, cluster = _schedule_definition(sm, config)
    require(output.rstrip("/") == f"s3://{aws.bucket}/lab10/reports",
            f"the schedule writes its reports to {output!r}",
            f"use the output s3://{aws.bucket}/lab10/reports")
    got = (cluster.get("InstanceCount"), cluster.get("InstanceType"), cluster.get("VolumeSizeInGB"))
    require(got[:2] == (1, "ml.m5.xlarge") and (got[2] or 0) >= 20,  # the SDK's monitor defaults to 30 GB
            f"the schedule's jobs run on {got[0]} x {got[1]} with {got[2]} GB",
            "one ml.m5.xlarge with VolumeSizeInGB=20")
    expected = f"s3://{aws.bucket}/lab10/baseline/output"
    for kind, resource in (("constraints", "ConstraintsResource"), ("statistics", "StatisticsResource")):
        uri = (baseline.get(resource) or {}).get("S3Uri")
        require(uri == f"{expected}/{kind}.json", f"the schedule's {kind} baseline is {uri!r}",
                f"point {resource} at {expected}/{kind}.json from task 1")
    executions = sm.list_monitoring_executions(MonitoringScheduleName=SCHEDULE)["MonitoringExecutionSummaries"]
    require(bool(executions), "the schedule has not run yet", "wait_for_execution(aws, SCHEDULE)")
    finished = [e for e in executions
                if e["MonitoringExecutionStatus"] in ("Completed", "CompletedWithViolations")]
    require(bool(finished), "no execution of the schedule completed ("
            + ", ".join(f"{e['MonitoringExecutionStatus']}: {e.get('FailureReason', '')}" for e in executions)
            + ")", "fix the job definition (image, inputs, output) and wait for the next execution")
    # Whether the earlier tasks left the state this task's report depends on (judged there, not here).
    drift_expected = _baseline_is_q1(aws) and _capture_is_q3(aws)
    with_violations = [e for e in finished if e["MonitoringExecutionStatus"] == "CompletedWithViolations"]
    if drift_expected:
        require(bool(with_violations), "no execution reported violations ("
                + ", ".join(e["MonitoringExecutionStatus"] for e in executions) + ")",
                "let the execution read the captured Jul–Sep traffic against the Jan–Mar baseline")
    execution = (with_violations or finished)[0]
    job = sm.describe_processing_job(ProcessingJobName=execution["ProcessingJobArn"].split("/")[-1])
    report = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    if execution["MonitoringExecutionStatus"] == "CompletedWithViolations":
        expected_violations = _json(aws, f"{report}/constraint_violations.json", "report")["violations"]
    else:
        expected_violations = _optional_violations(aws, f"{report}/constraint_violations.json")
    require(isinstance(violations, list) and violations == expected_violations,
            "`violations` is not the list in the execution's constraint_violations.json",
            "load the file's 'violations' list from the execution's processing-job output")
    if drift_expected:
        drifted = {v["feature_name"] for v in violations
                   if v["constraint_check_type"] == "baseline_drift_check"}
        require({"temp", "dewp"} <= drifted and "distance" not in drifted,
                f"baseline_drift_check flagged {sorted(drifted)}",
                "keep the comparison threshold of the suggested constraints (0.1): temp and dewp drift, "
                "distance does not")


def _schedule_definition(sm, config: dict) -> tuple[dict, str, dict]:
    """(BaselineConfig, output S3 URI, ClusterConfig) of the schedule's job: inline
    (create_monitoring_schedule with MonitoringJobDefinition) or from the named data-quality job
    definition that the SDK's DefaultModelMonitor.create_monitoring_schedule makes."""
    if config.get("MonitoringJobDefinition"):
        definition = config["MonitoringJobDefinition"]
        outputs = (definition.get("MonitoringOutputConfig") or {}).get("MonitoringOutputs") or [{}]
        return (definition.get("BaselineConfig") or {}, outputs[0].get("S3Output", {}).get("S3Uri", ""),
                (definition.get("MonitoringResources") or {}).get("ClusterConfig") or {})
    name = config.get("MonitoringJobDefinitionName")
    require(bool(name), "the schedule has neither a MonitoringJobDefinition nor a "
            "MonitoringJobDefinitionName",
            "give it the monitoring job definition of task 4")
    try:
        definition = sm.describe_data_quality_job_definition(JobDefinitionName=name)
    except ClientError:
        fail(f"the schedule's job definition {name!r} does not exist",
             "create it (create_data_quality_job_definition) before the schedule")
    outputs = (definition.get("DataQualityJobOutputConfig") or {}).get("MonitoringOutputs") or [{}]
    return (definition.get("DataQualityBaselineConfig") or {},
            outputs[0].get("S3Output", {}).get("S3Uri", ""),
            (definition.get("JobResources") or {}).get("ClusterConfig") or {})


def _optional_violations(aws, uri: str) -> list:
    bucket, _, key = uri[len("s3://"):].partition("/")
    try:
        return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())["violations"]
    except ClientError:
        return []


def _baseline_is_q1(aws) -> bool:
    """Task 1's baseline statistics describe January–March (else task 4 cannot show the drift)."""
    bucket, key = aws.bucket, "lab10/baseline/output/statistics.json"
    try:
        stats = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        temp = next(f for f in stats["features"] if f["name"] == "temp")["numerical_statistics"]["mean"]
    except (ClientError, StopIteration, KeyError, ValueError):
        return False
    q1, _, _ = _data()
    return abs(temp - q1["temp"].mean()) < 1.0


def _capture_is_q3(aws) -> bool:
    """Task 2's captured traffic is the warm July–September sample."""
    temps = np.array([r[2] for r in _captured_rows(aws) if len(r) == len(FEATURES)])
    q1, _, _ = _data()
    return temps.size >= 2000 and temps.mean() > q1["temp"].mean() + 20


def _psi(baseline, current, bins=10) -> float:
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    b = np.maximum(np.histogram(baseline, edges)[0] / len(baseline), 1e-6)
    c = np.maximum(np.histogram(current, edges)[0] / len(current), 1e-6)
    return float(np.sum((c - b) * np.log(c / b)))


def check_drift_table(aws, drift_table) -> None:
    from scipy import stats

    require(hasattr(drift_table, "index") and list(drift_table.index) == FEATURES,
            "drift_table is not indexed by FEATURES", "build it with index=FEATURES")
    missing = {"psi", "ks"} - set(drift_table.columns)
    require(not missing, f"drift_table lacks the column(s) {sorted(missing)}", "add columns psi and ks")
    q1, streamed, _ = _data()
    for feature in FEATURES:
        expected_psi = _psi(q1[feature].to_numpy(), streamed[feature].to_numpy())
        expected_ks = stats.ks_2samp(q1[feature], streamed[feature]).statistic
        got_psi, got_ks = float(drift_table.loc[feature, "psi"]), float(drift_table.loc[feature, "ks"])
        require(abs(got_psi - expected_psi) <= max(0.01, 0.02 * expected_psi),
                f"PSI of {feature} is {got_psi:.4f}, expected {expected_psi:.4f}",
                "bins at the baseline (q1) deciles with open outer edges, shares floored at 1e-6, natural log, "
                "current = streamed")
        require(abs(got_ks - expected_ks) <= 1e-3,
                f"KS of {feature} is {got_ks:.4f}, expected {expected_ks:.4f}",
                "use stats.ks_2samp(q1[feature], streamed[feature]).statistic")


def _download_model(aws, uri: str):
    import joblib

    bucket, _, key = uri[len("s3://"):].partition("/")
    raw = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
        return joblib.load(archive.extractfile("model.joblib"))


def check_retrained(aws, auc_before, auc_after) -> None:
    from sklearn.metrics import roc_auc_score

    sm = aws.client("sagemaker")
    try:
        endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    except ClientError:
        fail(f"endpoint '{ENDPOINT}' does not exist", "keep it until the clean-up")
    require(endpoint["EndpointStatus"] == "InService", f"the endpoint is {endpoint['EndpointStatus']}",
            "wait for InService after update_endpoint")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    served = config["ProductionVariants"][0]["ModelName"]
    require(served == RETRAINED_MODEL, f"the endpoint serves '{served}'",
            f"update_endpoint to a configuration serving '{RETRAINED_MODEL}'")
    data_url = sm.describe_model(ModelName=RETRAINED_MODEL)["PrimaryContainer"]["ModelDataUrl"]
    require(data_url == f"s3://{aws.bucket}/lab10/models/recent/model.tar.gz",
            f"'{RETRAINED_MODEL}' loads {data_url}",
            "package the retrained model to lab10/models/recent/model.tar.gz")
    _, _, september = _data()
    retrained = _download_model(aws, data_url)
    expected_after = roc_auc_score(september["delayed"],
                                   retrained.predict_proba(september[FEATURES].to_numpy())[:, 1])
    original = _download_model(aws, f"s3://{aws.bucket}/lab10/models/q1/model.tar.gz")
    expected_before = roc_auc_score(september["delayed"],
                                    original.predict_proba(september[FEATURES].to_numpy())[:, 1])
    require(abs(float(auc_before) - expected_before) < 1e-3,
            f"auc_before is {float(auc_before):.4f}; the original model scores {expected_before:.4f} on September",
            "score the original model on september[FEATURES] against september['delayed']")
    require(abs(float(auc_after) - expected_after) < 1e-3,
            f"auc_after is {float(auc_after):.4f}; the deployed retrained model scores {expected_after:.4f} on September",
            "score the endpoint's predictions for all September flights")


def check_cleanup(aws) -> None:
    sm = aws.client("sagemaker")
    schedules = [s["MonitoringScheduleName"] for s in sm.list_monitoring_schedules()["MonitoringScheduleSummaries"]
                 if s.get("EndpointName") == ENDPOINT]
    require(not schedules, f"monitoring schedule(s) {schedules} still exist and start a job every hour",
            "delete them with sm.delete_monitoring_schedule")
    left = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"] == ENDPOINT]
    require(not left, f"endpoint '{ENDPOINT}' still exists and bills every hour",
            "delete it with sm.delete_endpoint")
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    require(not alarms, f"alarm '{ALARM}' still exists", "delete it with cloudwatch.delete_alarms")
    for name in (MODEL, RETRAINED_MODEL):
        try:
            sm.describe_model(ModelName=name)
        except ClientError:
            continue
        fail(f"model '{name}' still exists", "delete it with sm.delete_model")
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs(
        NameContains="flights-drift", MaxResults=100)["EndpointConfigs"]]
    require(not configs, f"endpoint configuration(s) {configs} still exist",
            "delete both with sm.delete_endpoint_config (CONFIG and RETRAINED_CONFIG)")
