"""Lab 10 (drift): the solution notebook runs twice on one local AWS, the blank version scores zero,
and every hidden check passes on the solved state and names the mistake on wrong states."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_notebook_structure,
                           assert_runs_clean, fails, lab_env, run_blank, run_in_fresh_kernels,
                           solved_in_process)

NOTEBOOK = REPO / "solutions" / "10-drift" / "10-drift.ipynb"


def test_notebook_structure():
    assert_notebook_structure(NOTEBOOK, "lab10")


@pytest.mark.slow
def test_solution_runs_twice_on_one_local_aws(local_aws, tmp_path):
    for nb in run_in_fresh_kernels(NOTEBOOK, tmp_path, env=lab_env(local_aws), timeout=600):
        assert_runs_clean(nb)


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path, env=lab_env(), timeout=600))


@pytest.fixture(scope="module")
def solved(local_aws):
    """The solution's setup and task cells executed in this process (same local AWS as local_aws)."""
    with solved_in_process(NOTEBOOK) as namespace:
        yield namespace


def test_checks_pass_on_solved_state(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    lab10.check_baseline(local_aws, ns["baseline_job_name"])
    lab10.check_streamed(local_aws)
    lab10.check_alarm(local_aws)
    lab10.check_schedule(local_aws, ns["violations"])
    lab10.check_drift_table(local_aws, ns["drift_table"])
    lab10.check_retrained(local_aws, ns["auc_before"], ns["auc_after"])


def _baseline_job(ns, name, frame, header=True, output="lab10/baseline/output"):
    """A baseline job like suggest_baseline's, on other data (plain boto3, same analyzer image)."""
    s3, sm, bucket = ns["s3"], ns["sm"], ns["bucket"]
    s3.put_object(Bucket=bucket, Key=f"lab10/wrong/{name}.csv", Body=frame.to_csv(index=False, header=header))
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ns["ROLE_ARN"],
            AppSpecification={"ImageUri": ns["monitor"].image_uri},
        Environment={"dataset_format": json.dumps({"csv": {"header": header}}),
                     "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
                     "output_path": "/opt/ml/processing/output"},
        ProcessingInputs=[{"InputName": "baseline_dataset_input", "S3Input": {
            "S3Uri": f"s3://{bucket}/lab10/wrong/{name}.csv",
            "LocalPath": "/opt/ml/processing/input/baseline_dataset_input", "S3DataType": "S3Prefix",
            "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": f"s3://{bucket}/{output}", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 20}},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})
    sm.get_waiter("processing_job_completed_or_stopped").wait(ProcessingJobName=name,
                                                              WaiterConfig={"Delay": 1})
    return name


def test_check_baseline_wrong_states(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    features = ns["FEATURES"]
    tag = pd.Timestamp.now().strftime("%H%M%S%f")
    fails(lab10.check_baseline, local_aws, _baseline_job(ns, f"wrong-out-{tag}", ns["q1"][features],
                                                         output="x/out"),
          match="baseline is written to .*x/out")
    fails(lab10.check_baseline, local_aws, "no-such-job", match="does not exist")
    try:
        _baseline_job(ns, f"q3-{tag}", ns["q3"][features])
        fails(lab10.check_baseline, local_aws, f"q3-{tag}", match="January–March has 78,038 rows")
        _baseline_job(ns, f"nohdr-{tag}", ns["q1"][features], header=False)
        fails(lab10.check_baseline, local_aws, f"nohdr-{tag}", match="features are \\['_c0'")
        _baseline_job(ns, f"all-{tag}", ns["flights"][features])
        fails(lab10.check_baseline, local_aws, f"all-{tag}", match="baseline all of q1")
    finally:  # restore the right baseline files
        _baseline_job(ns, f"restore-{tag}", ns["q1"][features])
    lab10.check_baseline(local_aws, ns["baseline_job_name"])


def test_check_alarm_wrong_states(local_aws, solved):
    from grader.checks import lab10

    cw = local_aws.client("cloudwatch")
    good = dict(AlarmName=lab10.ALARM, Namespace=lab10.NAMESPACE, MetricName="feature_baseline_drift_temp",
                Dimensions=[{"Name": "Endpoint", "Value": lab10.ENDPOINT},
                            {"Name": "MonitoringSchedule", "Value": lab10.SCHEDULE}],
                Statistic="Maximum", Period=3600, EvaluationPeriods=1, Threshold=0.1,
                ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    try:
        for change, match in [({"Namespace": "AWS/SageMaker"}, "watches namespace 'AWS/SageMaker'"),
                              ({"Dimensions": good["Dimensions"][:1]}, "dimensions are \\{'Endpoint'"),
                              ({"Threshold": 0.5}, "GreaterThanThreshold 0.5"),
                              ({"Statistic": "Average"}, "evaluates Average"),
                              ({"MetricName": "feature_baseline_drift_dewp"},
                               "watches 'feature_baseline_drift_dewp'")]:
            cw.put_metric_alarm(**{**good, **change})
            fails(lab10.check_alarm, local_aws, match=match)
        cw.delete_alarms(AlarmNames=[lab10.ALARM])
        fails(lab10.check_alarm, local_aws, match="does not exist")
    finally:
        cw.put_metric_alarm(**good)
    lab10.check_alarm(local_aws)


def test_check_schedule_and_drift_wrong_states(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    violations, table = ns["violations"], ns["drift_table"]
    fails(lab10.check_schedule, local_aws, [], match="is not the list in the execution's")
    fails(lab10.check_schedule, local_aws, violations[:1], match="is not the list")
    sm = local_aws.client("sagemaker")
    config = sm.describe_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE)["MonitoringScheduleConfig"]
    try:
        daily = json.loads(json.dumps(config))
        daily["ScheduleConfig"]["ScheduleExpression"] = "cron(0 0 ? * * *)"
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=daily)
        fails(lab10.check_schedule, local_aws, violations, match="runs on 'cron\\(0 0")
        other = json.loads(json.dumps(config))
        other["MonitoringJobDefinition"]["BaselineConfig"]["StatisticsResource"]["S3Uri"] = "s3://x/statistics.json"
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=other)
        fails(lab10.check_schedule, local_aws, violations, match="statistics baseline is 's3://x")
        # the SDK's DefaultModelMonitor.create_monitoring_schedule: a named data-quality job definition
        inline = config["MonitoringJobDefinition"]
        for name, stats_uri in (("lab10-test-dq-good", inline["BaselineConfig"]["StatisticsResource"]["S3Uri"]),
                                ("lab10-test-dq-bad", "s3://x/statistics.json")):
            sm.create_data_quality_job_definition(
                JobDefinitionName=name, DataQualityBaselineConfig={
                    "ConstraintsResource": inline["BaselineConfig"]["ConstraintsResource"],
                    "StatisticsResource": {"S3Uri": stats_uri}},
                DataQualityAppSpecification=inline["MonitoringAppSpecification"],
                DataQualityJobInput={"EndpointInput": inline["MonitoringInputs"][0]["EndpointInput"]},
                DataQualityJobOutputConfig=inline["MonitoringOutputConfig"],
                JobResources=inline["MonitoringResources"], RoleArn=inline["RoleArn"])
        named = {"ScheduleConfig": config["ScheduleConfig"], "MonitoringType": "DataQuality",
                 "MonitoringJobDefinitionName": "lab10-test-dq-good"}
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=named)
        lab10.check_schedule(local_aws, violations)
        named["MonitoringJobDefinitionName"] = "lab10-test-dq-bad"
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=named)
        fails(lab10.check_schedule, local_aws, violations, match="statistics baseline is 's3://x")
    finally:
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=config)
    lab10.check_schedule(local_aws, violations)
    # task 1's baseline on the drifted months is task 1's mistake: task 4 no longer requires the drift
    s3, key = local_aws.client("s3"), "lab10/baseline/output/statistics.json"
    saved = s3.get_object(Bucket=local_aws.bucket, Key=key)["Body"].read()
    stats = json.loads(saved)
    for feature in stats["features"]:
        if feature["name"] == "temp":
            feature["numerical_statistics"]["mean"] += 30
    try:
        s3.put_object(Bucket=local_aws.bucket, Key=key, Body=json.dumps(stats).encode())
        assert not lab10._baseline_is_q1(local_aws)
        lab10.check_schedule(local_aws, violations)
        fails(lab10.check_schedule, local_aws, violations[:1], match="is not the list")
    finally:
        s3.put_object(Bucket=local_aws.bucket, Key=key, Body=saved)
    assert lab10._baseline_is_q1(local_aws) and lab10._capture_is_q3(local_aws)
    # PSI / KS
    fails(lab10.check_drift_table, local_aws, table.drop(columns="ks"),
          match="lacks the column\\(s\\) \\['ks'\\]")
    fails(lab10.check_drift_table, local_aws, table.iloc[::-1], match="not indexed by FEATURES")
    log10 = table.assign(psi=table["psi"] / 2.302585)
    fails(lab10.check_drift_table, local_aws, log10, match="PSI of distance is .*natural log")
    same = table.assign(ks=0.0)
    fails(lab10.check_drift_table, local_aws, same, match="KS of hour is 0.0000")
    lab10.check_drift_table(local_aws, table)


def test_check_streamed_wrong_states(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    s3, bucket = ns["s3"], ns["bucket"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket,
                                                 Prefix="lab10/capture/flights-drift/")["Contents"]]
    saved = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}
    try:
        for key in keys:
            s3.delete_object(Bucket=bucket, Key=key)
        fails(lab10.check_streamed, local_aws, match="capture holds 0 rows")
        # winter rows instead of the Jul-Sep sample
        runtime, features = ns["runtime"], ns["FEATURES"]
        rows = ns["q1"][features].sample(2000, random_state=1).to_numpy()
        for start in range(0, 2000, 200):
            runtime.invoke_endpoint(EndpointName=lab10.ENDPOINT, ContentType="text/csv",
                                    Body="\n".join(",".join(map(str, r)) for r in rows[start:start + 200]))
        fails(lab10.check_streamed, local_aws, match="mean temperature is .* like the baseline months")
    finally:
        for key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lab10/capture/flights-drift/")
                    .get("Contents", [])]:
            s3.delete_object(Bucket=bucket, Key=key)
        for key, body in saved.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    lab10.check_streamed(local_aws)


def test_check_retrained_wrong_states(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    sm = local_aws.client("sagemaker")
    fails(lab10.check_retrained, local_aws, ns["auc_after"], ns["auc_after"], match="auc_before is")
    fails(lab10.check_retrained, local_aws, ns["auc_before"], ns["auc_before"], match="auc_after is")
    try:
        sm.update_endpoint(EndpointName=lab10.ENDPOINT, EndpointConfigName=ns["CONFIG"])
        sm.get_waiter("endpoint_in_service").wait(EndpointName=lab10.ENDPOINT, WaiterConfig={"Delay": 1})
        fails(lab10.check_retrained, local_aws, ns["auc_before"], ns["auc_after"],
              match="serves 'flights-drift-q1'")
    finally:
        sm.update_endpoint(EndpointName=lab10.ENDPOINT, EndpointConfigName=ns["RETRAINED_CONFIG"])
        sm.get_waiter("endpoint_in_service").wait(EndpointName=lab10.ENDPOINT, WaiterConfig={"Delay": 1})
    lab10.check_retrained(local_aws, ns["auc_before"], ns["auc_after"])


def test_check_cleanup(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    sm, cw = ns["sm"], ns["cloudwatch"]
    fails(lab10.check_cleanup, local_aws, match="schedule\\(s\\) \\['flights-drift-hourly'\\] still exist")
    sm.delete_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE)
    fails(lab10.check_cleanup, local_aws, match="endpoint 'flights-drift' still exists")
    sm.delete_endpoint(EndpointName=lab10.ENDPOINT)
    fails(lab10.check_cleanup, local_aws, match="alarm 'flights-drift-temp' still exists")
    cw.delete_alarms(AlarmNames=[lab10.ALARM])
    fails(lab10.check_cleanup, local_aws, match="model 'flights-drift-q1' still exists")
    for name in (ns["MODEL"], ns["RETRAINED_MODEL"]):
        sm.delete_model(ModelName=name)
    fails(lab10.check_cleanup, local_aws, match="endpoint configuration\\(s\\) .* still exist")
    for name in ("CONFIG", "RETRAINED_CONFIG"):
        sm.delete_endpoint_config(EndpointConfigName=ns[name])
    lab10.check_cleanup(local_aws)
