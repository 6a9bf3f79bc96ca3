"""Contract tests for the Model Monitor engine (labkit/local/model_monitor.py), plain boto3."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError
from sklearn_model import FEATURES, ROLE, SKLEARN_IMAGE, model_archive

ANALYZER = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"


def _csv(frame) -> str:
    return "\n".join(",".join(str(v) for v in row) for row in frame.itertuples(index=False))


@pytest.fixture(scope="module")
def quarters():
    from labkit import datasets

    frame = datasets.add_label(datasets.joined())[["month"] + FEATURES + ["delayed"]].dropna()
    q1 = frame[frame.month <= 3].sample(3000, random_state=0)
    q3 = frame[frame.month.between(7, 9)].sample(800, random_state=0)
    return q1, q3


@pytest.fixture(scope="module")
def setup(local_aws, quarters):
    """A bucket with the Q1 baseline data set and an endpoint with data capture on."""
    from sklearn.linear_model import LogisticRegression

    q1, _ = quarters
    suffix = uuid.uuid4().hex[:8]
    bucket = f"monitor-test-{suffix}"
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="baseline/q1.csv", Body=q1[FEATURES].to_csv(index=False))
    model = LogisticRegression(max_iter=500).fit(q1[FEATURES].to_numpy(), q1["delayed"].to_numpy())
    s3.put_object(Bucket=bucket, Key="model/model.tar.gz", Body=model_archive(model))
    sm = local_aws.client("sagemaker")
    sm.create_model(ModelName=f"mon-{suffix}", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=f"mon-{suffix}", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"mon-{suffix}", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}], DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": f"s3://{bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    sm.create_endpoint(EndpointName=f"mon-{suffix}", EndpointConfigName=f"mon-{suffix}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=f"mon-{suffix}",
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return {"bucket": bucket, "endpoint": f"mon-{suffix}", "suffix": suffix}


def _baseline_job(sm, bucket, name, source, header=True):
    """What DefaultModelMonitor.suggest_baseline sends (SDK 3.27)."""
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE,
        AppSpecification={"ImageUri": ANALYZER},
        Environment={"dataset_format": json.dumps({"csv": {"header": header,
                                                           "output_columns_position": "START"}}),
                     "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
                     "output_path": "/opt/ml/processing/output", "publish_cloudwatch_metrics": "Disabled"},
        ProcessingInputs=[{"InputName": "baseline_dataset_input", "S3Input": {
            "S3Uri": source, "LocalPath": "/opt/ml/processing/input/baseline_dataset_input",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": f"s3://{bucket}/{name}/output", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 20}},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})


def _read_json(local_aws, bucket, key):
    return json.loads(local_aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def baseline(local_aws, setup, quarters):
    sm = local_aws.client("sagemaker")
    name = f"baseline-{setup['suffix']}"
    _baseline_job(sm, setup["bucket"], name, f"s3://{setup['bucket']}/baseline/q1.csv")
    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return f"s3://{setup['bucket']}/{name}/output"


def test_baseline_job_writes_documented_statistics_and_constraints(local_aws, setup, baseline, quarters):
    q1, _ = quarters
    sm = local_aws.client("sagemaker")
    described = sm.describe_processing_job(ProcessingJobName=f"baseline-{setup['suffix']}")
    assert described["ProcessingJobStatus"] == "Completed"
    prefix = baseline.split(setup["bucket"] + "/")[1]
    stats = _read_json(local_aws, setup["bucket"], f"{prefix}/statistics.json")
    cons = _read_json(local_aws, setup["bucket"], f"{prefix}/constraints.json")
    assert stats["dataset"]["item_count"] == len(q1)
    assert [f["name"] for f in stats["features"]] == FEATURES
    temp = next(f for f in stats["features"] if f["name"] == "temp")
    assert temp["inferred_type"] == "Fractional"
    numeric = temp["numerical_statistics"]
    assert numeric["common"] == {"num_present": len(q1), "num_missing": 0}
    assert numeric["mean"] == pytest.approx(q1["temp"].mean())
    assert numeric["std_dev"] == pytest.approx(q1["temp"].std(ddof=0))
    assert numeric["min"] == q1["temp"].min() and numeric["max"] == q1["temp"].max()
    buckets = numeric["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == len(q1)
    assert set(buckets[0]) == {"lower_bound", "upper_bound", "count"}
    assert next(f for f in stats["features"] if f["name"] == "hour")["inferred_type"] == "Integral"
    assert [f["name"] for f in cons["features"]] == FEATURES
    assert all(f["completeness"] == 1.0 for f in cons["features"])
    assert next(f for f in cons["features"] if f["name"] == "distance")["num_constraints"] == {"is_non_negative": True}
    assert cons["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1


def test_baseline_job_with_missing_input_fails(local_aws, setup):
    sm = local_aws.client("sagemaker")
    name = f"baseline-bad-{setup['suffix']}"
    _baseline_job(sm, setup["bucket"], name, f"s3://{setup['bucket']}/no-such-prefix/")
    described = sm.describe_processing_job(ProcessingJobName=name)
    assert described["ProcessingJobStatus"] == "Failed"
    assert "No objects found" in described["FailureReason"]


def _schedule_config(setup, baseline, expression, **extra):
    return {"ScheduleConfig": {"ScheduleExpression": expression, **extra},
            "MonitoringJobDefinition": {
                "BaselineConfig": {"ConstraintsResource": {"S3Uri": f"{baseline}/constraints.json"},
                                   "StatisticsResource": {"S3Uri": f"{baseline}/statistics.json"}},
                "MonitoringInputs": [{"EndpointInput": {"EndpointName": setup["endpoint"],
                                                        "LocalPath": "/opt/ml/processing/input/endpoint"}}],
                "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                    "S3Uri": f"s3://{setup['bucket']}/reports", "LocalPath": "/opt/ml/processing/output"}}]},
                "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                          "VolumeSizeInGB": 20}},
                "MonitoringAppSpecification": {"ImageUri": ANALYZER},
                "RoleArn": ROLE}}


def test_hourly_schedule_flags_seasonal_drift(local_aws, setup, baseline, quarters):
    _, q3 = quarters
    rt = local_aws.client("sagemaker-runtime")
    for start in range(0, len(q3), 100):  # Q3 traffic through the endpoint, captured
        rt.invoke_endpoint(EndpointName=setup["endpoint"], Body=_csv(q3[FEATURES].iloc[start:start + 100]),
                           ContentType="text/csv", Accept="text/csv")
    sm = local_aws.client("sagemaker")
    name = f"hourly-{setup['suffix']}"
    sm.create_monitoring_schedule(MonitoringScheduleName=name,
                                  MonitoringScheduleConfig=_schedule_config(setup, baseline,
                                                                            "cron(0 * ? * * *)"))
    described = sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringScheduleStatus"] == "Scheduled" and described["EndpointName"] == setup["endpoint"]
    assert sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"] == []
    local_aws.fast_forward(hours=1)
    executions = sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"]
    assert [e["MonitoringExecutionStatus"] for e in executions] == ["CompletedWithViolations"]
    job = sm.describe_processing_job(ProcessingJobName=executions[0]["ProcessingJobArn"].split("/")[-1])
    report = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, key = report[5:].split("/", 1)
    found = _read_json(local_aws, bucket, f"{key}/constraint_violations.json")["violations"]
    drift = {v["feature_name"] for v in found if v["constraint_check_type"] == "baseline_drift_check"}
    assert {"temp", "dewp"} <= drift and "distance" not in drift
    assert all(set(v) == {"feature_name", "constraint_check_type", "description"} for v in found)
    current = _read_json(local_aws, bucket, f"{key}/statistics.json")
    assert current["dataset"]["item_count"] == len(q3)
    # the drift metrics in CloudWatch
    cw = local_aws.client("cloudwatch")
    dims = [{"Name": "Endpoint", "Value": setup["endpoint"]}, {"Name": "MonitoringSchedule", "Value": name}]
    now = local_aws.now()
    points = cw.get_metric_statistics(Namespace="/aws/sagemaker/Endpoints/data-metric",
                                      MetricName="feature_baseline_drift_temp", Dimensions=dims,
                                      StartTime=now - timedelta(hours=3), EndTime=now + timedelta(hours=1),
                                      Period=3600, Statistics=["Maximum"])["Datapoints"]
    assert points and points[0]["Maximum"] > 0.5
    points = cw.get_metric_statistics(Namespace="/aws/sagemaker/Endpoints/data-metric",
                                      MetricName="feature_baseline_drift_distance", Dimensions=dims,
                                      StartTime=now - timedelta(hours=3), EndTime=now + timedelta(hours=1),
                                      Period=3600, Statistics=["Maximum"])["Datapoints"]
    assert points and points[0]["Maximum"] < 0.1
    # the next hour has no new traffic: that execution fails with "no data", like AWS
    local_aws.fast_forward(hours=1)
    executions = sm.list_monitoring_executions(MonitoringScheduleName=name, SortBy="ScheduledTime",
                                               SortOrder="Ascending")["MonitoringExecutionSummaries"]
    assert [e["MonitoringExecutionStatus"] for e in executions] == ["CompletedWithViolations", "Failed"]
    # stop: no more executions; start again; delete
    sm.stop_monitoring_schedule(MonitoringScheduleName=name)
    assert sm.describe_monitoring_schedule(MonitoringScheduleName=name)["MonitoringScheduleStatus"] == "Stopped"
    local_aws.fast_forward(hours=1)
    assert len(sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"]) == 2
    sm.start_monitoring_schedule(MonitoringScheduleName=name)
    assert sm.describe_monitoring_schedule(MonitoringScheduleName=name)["MonitoringScheduleStatus"] == "Scheduled"
    assert name in [s["MonitoringScheduleName"] for s in
                    sm.list_monitoring_schedules(EndpointName=setup["endpoint"])["MonitoringScheduleSummaries"]]
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    with pytest.raises(ClientError) as err:
        sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"


def test_one_time_schedule_same_distribution_has_no_drift(local_aws, setup, baseline, quarters):
    q1, _ = quarters
    rt = local_aws.client("sagemaker-runtime")
    sample = q1[FEATURES].sample(600, random_state=7)
    for start in range(0, len(sample), 200):
        rt.invoke_endpoint(EndpointName=setup["endpoint"], Body=_csv(sample.iloc[start:start + 200]),
                           ContentType="text/csv")
    sm = local_aws.client("sagemaker")
    name = f"now-{setup['suffix']}"
    sm.create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig=_schedule_config(
        setup, baseline, "NOW", DataAnalysisStartTime="-PT10M", DataAnalysisEndTime="-PT0M"))
    summary = sm.describe_monitoring_schedule(MonitoringScheduleName=name)["LastMonitoringExecutionSummary"]
    assert summary["MonitoringExecutionStatus"] == "Completed", summary
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)


def test_missing_column_check(local_aws, setup, baseline, quarters):
    """Captured records with one feature fewer than the baseline → missing_column_check."""
    _, q3 = quarters
    local_aws.fast_forward(minutes=30)  # leave the other tests' captures out of the window
    now = local_aws.now()
    record = {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                                "data": _csv(q3[FEATURES[:5]].iloc[:100]),
                                                    "encoding": "CSV"}},
              "eventMetadata": {"eventId": str(uuid.uuid4()),
                                "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
              "eventVersion": "0"}
    key = f"capture/{setup['endpoint']}/AllTraffic/{now:%Y/%m/%d/%H}/manual-{uuid.uuid4()}.jsonl"
    local_aws.client("s3").put_object(Bucket=setup["bucket"], Key=key, Body=json.dumps(record) + "\n")
    sm = local_aws.client("sagemaker")
    name = f"cols-{setup['suffix']}"
    sm.create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig=_schedule_config(
        setup, baseline, "NOW", DataAnalysisStartTime="-PT5M", DataAnalysisEndTime="-PT0M"))
    summary = sm.describe_monitoring_schedule(MonitoringScheduleName=name)["LastMonitoringExecutionSummary"]
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations"
    job = sm.describe_processing_job(ProcessingJobName=summary["ProcessingJobArn"].split("/")[-1])
    report = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, prefix = report[5:].split("/", 1)
    found = _read_json(local_aws, bucket, f"{prefix}/constraint_violations.json")["violations"]
    assert "missing_column_check" in {v["constraint_check_type"] for v in found}


def test_schedule_errors_like_aws(local_aws, setup, baseline):
    sm = local_aws.client("sagemaker")
    with pytest.raises(ClientError) as err:
        sm.create_monitoring_schedule(MonitoringScheduleName=f"bad-{setup['suffix']}",
                                      MonitoringScheduleConfig=_schedule_config(setup, baseline,
                                                                                "rate(1 hour)"))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    config = _schedule_config(setup, baseline, "cron(0 * ? * * *)")
    config["MonitoringJobDefinition"]["MonitoringInputs"][0]["EndpointInput"]["EndpointName"] = "nope"
    with pytest.raises(ClientError) as err:
        sm.create_monitoring_schedule(MonitoringScheduleName=f"bad2-{setup['suffix']}",
                                      MonitoringScheduleConfig=config)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    name = f"dup-{setup['suffix']}"
    sm.create_monitoring_schedule(MonitoringScheduleName=name,
                                  MonitoringScheduleConfig=_schedule_config(setup, baseline,
                                                                            "cron(0 * ? * * *)"))
    with pytest.raises(ClientError) as err:
        sm.create_monitoring_schedule(MonitoringScheduleName=name,
                                      MonitoringScheduleConfig=_schedule_config(setup, baseline,
                                                                                "cron(0 * ? * * *)"))
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    sm.update_monitoring_schedule(MonitoringScheduleName=name,
                                  MonitoringScheduleConfig=_schedule_config(setup, baseline,
                                                                            "cron(0 */6 ? * * *)"))
    assert sm.describe_monitoring_schedule(MonitoringScheduleName=name)["MonitoringScheduleConfig"][
        "ScheduleConfig"]["ScheduleExpression"] == "cron(0 */6 ? * * *)"
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    with pytest.raises(ClientError) as err:
        sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"


def test_data_quality_job_definition_schedule(local_aws, setup, baseline):
    """The v3 SDK's DefaultModelMonitor creates a job definition and a schedule that names it."""
    sm = local_aws.client("sagemaker")
    definition = _schedule_config(setup, baseline, "NOW")["MonitoringJobDefinition"]
    job_def = f"dq-{setup['suffix']}"
    sm.create_data_quality_job_definition(
        JobDefinitionName=job_def,
        DataQualityBaselineConfig={"ConstraintsResource": definition["BaselineConfig"]["ConstraintsResource"],
                                   "StatisticsResource": definition["BaselineConfig"]["StatisticsResource"]},
        DataQualityAppSpecification={"ImageUri": ANALYZER},
        DataQualityJobInput={"EndpointInput": definition["MonitoringInputs"][0]["EndpointInput"]},
        DataQualityJobOutputConfig=definition["MonitoringOutputConfig"],
        JobResources=definition["MonitoringResources"], RoleArn=ROLE)
    name = f"dqs-{setup['suffix']}"
    sm.create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT24H",
                           "DataAnalysisEndTime": "-PT0H"},
        "MonitoringJobDefinitionName": job_def, "MonitoringType": "DataQuality"})
    summary = sm.describe_monitoring_schedule(MonitoringScheduleName=name)["LastMonitoringExecutionSummary"]
    assert summary["MonitoringExecutionStatus"] in ("Completed", "CompletedWithViolations")
    assert summary["MonitoringJobDefinitionName"] == job_def
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)


def test_sdk_default_model_monitor(local_aws, setup, quarters):
    """sagemaker.core.model_monitor.DefaultModelMonitor: baseline, schedule, executions, violations."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.model_monitor import CronExpressionGenerator, DefaultModelMonitor
    from sagemaker.core.model_monitor.dataset_format import DatasetFormat

    q1, q3 = quarters
    local_aws.fast_forward(hours=1)  # earlier tests' captures fall out of the next hourly window
    sm = local_aws.client("sagemaker")
    for existing in sm.list_monitoring_schedules(EndpointName=setup["endpoint"])["MonitoringScheduleSummaries"]:
        sm.delete_monitoring_schedule(MonitoringScheduleName=existing["MonitoringScheduleName"])
    monitor = DefaultModelMonitor(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                                  sagemaker_session=Session(boto_session=local_aws.session,
                                                            default_bucket=setup["bucket"]))
    monitor.suggest_baseline(baseline_dataset=f"s3://{setup['bucket']}/baseline/q1.csv",
                             dataset_format=DatasetFormat.csv(header=True),
                             output_s3_uri=f"s3://{setup['bucket']}/sdk-baseline", wait=False, logs=False)
    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=monitor.latest_baselining_job_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert [f["name"] for f in monitor.baseline_statistics().body_dict["features"]] == FEATURES
    rt = local_aws.client("sagemaker-runtime")
    for start in range(0, 400, 100):
        rt.invoke_endpoint(EndpointName=setup["endpoint"], Body=_csv(q3[FEATURES].iloc[start:start + 100]),
                           ContentType="text/csv")
    monitor.create_monitoring_schedule(endpoint_input=setup["endpoint"],
                                       output_s3_uri=f"s3://{setup['bucket']}/sdk-reports",
                                       statistics=monitor.baseline_statistics(),
                                       constraints=monitor.suggested_constraints(),
                                       monitor_schedule_name=f"sdk-{setup['suffix']}",
                                       schedule_cron_expression=CronExpressionGenerator.hourly())
    assert monitor.describe_schedule()["MonitoringScheduleStatus"] == "Scheduled"
    local_aws.fast_forward(hours=1)
    assert len(monitor.list_executions()) == 1
    drift = {v["feature_name"] for v in monitor.latest_monitoring_constraint_violations().body_dict["violations"]
             if v["constraint_check_type"] == "baseline_drift_check"}
    assert {"temp", "dewp"} <= drift and "distance" not in drift
    monitor.delete_monitoring_schedule()
