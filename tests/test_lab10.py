"""Lab 10 (drift): the solution notebook runs twice on one local AWS, the blank version scores zero,
and every hidden check passes on the solved state and names the mistake on wrong states."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from conftest import clean_env, execute_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "solutions" / "10-drift" / "10-drift.ipynb"
REPO = NOTEBOOK.parents[2]


def _graded(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _fails(fn, *args, match: str):
    with pytest.raises(AssertionError, match=match):
        fn(*args)


def test_notebook_structure():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert sum(c.metadata["nbgrader"]["points"] for c in _graded(nb)) == 10
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)) and "setup" in ids and "cleanup-check" in ids
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    for cell in _graded(nb):
        hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1]
        assert "lab10." in hidden and len(hidden.strip().splitlines()) <= 4


@pytest.mark.slow
def test_solution_runs_twice_on_one_local_aws(local_aws):
    env = clean_env(AWS_ENDPOINT_URL=local_aws.endpoint, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    for _ in range(2):
        nb = execute_notebook(NOTEBOOK, env=env, timeout=600)
        assert not [c.id for c in nb.cells if _errors(c)]


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            cell.source = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "raise NotImplementedError()",
                                 cell.source, flags=re.S)
    blank = tmp_path / "10-drift.ipynb"
    nbformat.write(nb, blank)
    executed = execute_notebook(blank, env=clean_env(PYTHONPATH=str(REPO), MPLBACKEND="Agg"), timeout=600,
                                allow_errors=True)
    graded = _graded(executed)
    assert graded and all(_errors(c) for c in graded), [c.id for c in graded if not _errors(c)]


@pytest.fixture(scope="module")
def solved(local_aws):
    """The solution's setup and task cells executed in this process (same local AWS as local_aws)."""
    import matplotlib

    matplotlib.use("Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.id.startswith("cleanup"):
            exec(compile(cell.source.split("### BEGIN HIDDEN TESTS")[0], cell.id, "exec"), namespace)
    yield namespace
    cleanup = next(c for c in nb.cells if c.id == "cleanup-solution").source
    try:
        exec(compile(cleanup, "cleanup", "exec"), namespace)
    except ClientError:
        pass


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
    _fails(lab10.check_baseline, local_aws, _baseline_job(ns, f"wrong-out-{tag}", ns["q1"][features],
                                                          output="x/out"),
           match="baseline is written to .*x/out")
    _fails(lab10.check_baseline, local_aws, "no-such-job", match="does not exist")
    try:
        _baseline_job(ns, f"q3-{tag}", ns["q3"][features])
        _fails(lab10.check_baseline, local_aws, f"q3-{tag}", match="January–March has 78,038 rows")
        _baseline_job(ns, f"nohdr-{tag}", ns["q1"][features], header=False)
        _fails(lab10.check_baseline, local_aws, f"nohdr-{tag}", match="features are \\['_c0'")
        _baseline_job(ns, f"all-{tag}", ns["flights"][features])
        _fails(lab10.check_baseline, local_aws, f"all-{tag}", match="baseline all of q1")
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
            _fails(lab10.check_alarm, local_aws, match=match)
        cw.delete_alarms(AlarmNames=[lab10.ALARM])
        _fails(lab10.check_alarm, local_aws, match="does not exist")
    finally:
        cw.put_metric_alarm(**good)
    lab10.check_alarm(local_aws)


def test_check_schedule_and_drift_wrong_states(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    violations, table = ns["violations"], ns["drift_table"]
    _fails(lab10.check_schedule, local_aws, [], match="is not the list in the execution's")
    _fails(lab10.check_schedule, local_aws, violations[:1], match="is not the list")
    sm = local_aws.client("sagemaker")
    config = sm.describe_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE)["MonitoringScheduleConfig"]
    try:
        daily = json.loads(json.dumps(config))
        daily["ScheduleConfig"]["ScheduleExpression"] = "cron(0 0 ? * * *)"
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=daily)
        _fails(lab10.check_schedule, local_aws, violations, match="runs on 'cron\\(0 0")
        other = json.loads(json.dumps(config))
        other["MonitoringJobDefinition"]["BaselineConfig"]["StatisticsResource"]["S3Uri"] = "s3://x/statistics.json"
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=other)
        _fails(lab10.check_schedule, local_aws, violations, match="statistics baseline is 's3://x")
    finally:
        sm.update_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE, MonitoringScheduleConfig=config)
    lab10.check_schedule(local_aws, violations)
    # PSI / KS
    _fails(lab10.check_drift_table, local_aws, table.drop(columns="ks"),
           match="lacks the column\\(s\\) \\['ks'\\]")
    _fails(lab10.check_drift_table, local_aws, table.iloc[::-1], match="not indexed by FEATURES")
    log10 = table.assign(psi=table["psi"] / 2.302585)
    _fails(lab10.check_drift_table, local_aws, log10, match="PSI of distance is .*natural log")
    same = table.assign(ks=0.0)
    _fails(lab10.check_drift_table, local_aws, same, match="KS of hour is 0.0000")
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
        _fails(lab10.check_streamed, local_aws, match="capture holds 0 rows")
        # winter rows instead of the Jul-Sep sample
        runtime, features = ns["runtime"], ns["FEATURES"]
        rows = ns["q1"][features].sample(2000, random_state=1).to_numpy()
        for start in range(0, 2000, 200):
            runtime.invoke_endpoint(EndpointName=lab10.ENDPOINT, ContentType="text/csv",
                                    Body="\n".join(",".join(map(str, r)) for r in rows[start:start + 200]))
        _fails(lab10.check_streamed, local_aws, match="mean temperature is .* like the baseline months")
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
    _fails(lab10.check_retrained, local_aws, ns["auc_after"], ns["auc_after"], match="auc_before is")
    _fails(lab10.check_retrained, local_aws, ns["auc_before"], ns["auc_before"], match="auc_after is")
    try:
        sm.update_endpoint(EndpointName=lab10.ENDPOINT, EndpointConfigName=ns["CONFIG"])
        sm.get_waiter("endpoint_in_service").wait(EndpointName=lab10.ENDPOINT, WaiterConfig={"Delay": 1})
        _fails(lab10.check_retrained, local_aws, ns["auc_before"], ns["auc_after"],
               match="serves 'flights-drift-q1'")
    finally:
        sm.update_endpoint(EndpointName=lab10.ENDPOINT, EndpointConfigName=ns["RETRAINED_CONFIG"])
        sm.get_waiter("endpoint_in_service").wait(EndpointName=lab10.ENDPOINT, WaiterConfig={"Delay": 1})
    lab10.check_retrained(local_aws, ns["auc_before"], ns["auc_after"])


def test_check_cleanup(local_aws, solved):
    from grader.checks import lab10

    ns = solved
    sm, cw = ns["sm"], ns["cloudwatch"]
    _fails(lab10.check_cleanup, local_aws, match="schedule\\(s\\) \\['flights-drift-hourly'\\] still exist")
    sm.delete_monitoring_schedule(MonitoringScheduleName=lab10.SCHEDULE)
    _fails(lab10.check_cleanup, local_aws, match="endpoint 'flights-drift' still exists")
    sm.delete_endpoint(EndpointName=lab10.ENDPOINT)
    _fails(lab10.check_cleanup, local_aws, match="alarm 'flights-drift-temp' still exists")
    cw.delete_alarms(AlarmNames=[lab10.ALARM])
    _fails(lab10.check_cleanup, local_aws, match="model 'flights-drift-q1' still exists")
    for name in (ns["MODEL"], ns["RETRAINED_MODEL"]):
        sm.delete_model(ModelName=name)
    lab10.check_cleanup(local_aws)
