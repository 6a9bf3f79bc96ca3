"""Contract tests: SageMaker Pipelines, with definitions the SageMaker SDK v3 writes
(``sagemaker.mlops.workflow``) and plain boto3 calls (CreatePipeline, StartPipelineExecution,
DescribePipelineExecution, ListPipelineExecutionSteps, StopPipelineExecution,
RetryPipelineExecution API reference).
"""

from __future__ import annotations

import json
import os
import time
import uuid

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from sagemaker_helpers import ROLE, SKLEARN_IMAGE, TRAIN_PY

PREPROCESS = '''
import argparse, glob, os
import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--start-month", type=int, required=True)
parser.add_argument("--end-month", type=int, required=True)
args = parser.parse_args()
flights = pd.concat(pd.read_csv(f) for f in glob.glob("/opt/ml/processing/input/raw/*.csv"))
window = flights[(flights.month >= args.start_month) & (flights.month <= args.end_month)]
if window.empty:
    raise ValueError(f"no flights between months {args.start_month} and {args.end_month}")
train = window[window.month < args.end_month]
validation = window[window.month == args.end_month]
for name, frame in (("train", train), ("validation", validation)):
    os.makedirs(f"/opt/ml/processing/{name}", exist_ok=True)
    frame.to_csv(f"/opt/ml/processing/{name}/{name}.csv", index=False)
print(f"train {len(train)} rows, validation {len(validation)} rows")
'''

EVALUATE = '''
import json, os, tarfile
import joblib, pandas as pd
from sklearn.metrics import roc_auc_score

with tarfile.open("/opt/ml/processing/model/model.tar.gz") as archive:
    archive.extractall("/opt/ml/processing/model/unpacked", filter="data")
model = joblib.load("/opt/ml/processing/model/unpacked/model.joblib")
validation = pd.read_csv("/opt/ml/processing/validation/validation.csv")
auc = roc_auc_score(validation["delayed"], model.predict_proba(validation.drop(columns="delayed"))[:, 1])
os.makedirs("/opt/ml/processing/evaluation", exist_ok=True)
with open("/opt/ml/processing/evaluation/evaluation.json", "w") as out:
    json.dump({"metrics": {"auc": {"value": auc}}}, out)
print(f"auc={auc}")
'''


def wait_execution(sm, arn: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if execution["PipelineExecutionStatus"] not in {"Executing", "Stopping"}:
            return execution
        assert time.monotonic() < deadline, f"{arn} still {execution['PipelineExecutionStatus']}"
        time.sleep(0.2)


def resource(step: dict, kind: str) -> str:
    """The name of the job / model a step's Metadata points to (the last part of its ARN)."""
    return step["Metadata"][kind]["Arn"].split("/")[-1]


def steps_of(sm, arn: str) -> dict[str, dict]:
    listed = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return {step["StepName"]: step for step in listed}


@pytest.fixture(scope="module")
def bucket(local_aws):
    import numpy as np
    import pandas as pd

    name = f"pipelines-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    rng = np.random.default_rng(0)
    rows = 600
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    frame = pd.DataFrame({"month": rng.integers(1, 7, size=rows), "x1": x1, "x2": x2,
                          "delayed": (x1 + 0.5 * rng.normal(size=rows) > 0).astype(int)})
    s3.put_object(Bucket=name, Key="raw/flights.csv", Body=frame.to_csv(index=False).encode())
    return name


@pytest.fixture(scope="module")
def sdk_pipeline(bucket, tmp_path_factory):
    """preprocess → train → evaluate → condition (AUC ≥ MinAuc) → register | fail, from the SDK."""
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve import ModelBuilder
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, SourceCode

    code = tmp_path_factory.mktemp("pipeline-code")
    (code / "preprocess.py").write_text(PREPROCESS)
    (code / "evaluate.py").write_text(EVALUATE)
    (code / "train").mkdir()
    (code / "train" / "train.py").write_text(TRAIN_PY)
    session = PipelineSession(boto_session=boto3.Session(), default_bucket=bucket)
    start = ParameterInteger("StartMonth", default_value=1)
    end = ParameterInteger("EndMonth", default_value=6)
    min_auc = ParameterFloat("MinAuc", default_value=0.7)
    group = ParameterString("ModelGroup", default_value="flights-delay")

    def s3_input(name, uri, path):
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=path, s3_data_type="S3Prefix", s3_input_mode="File"))

    def s3_output(name, path, uri=None):
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=uri or Join(on="/", values=[f"s3://{bucket}/runs", name]), local_path=path,
            s3_upload_mode="EndOfJob"))

    processor = ScriptProcessor(role=ROLE, image_uri=SKLEARN_IMAGE, command=["python3"], instance_count=1,
                                instance_type="ml.m5.large", sagemaker_session=session)
    preprocess = ProcessingStep(name="Preprocess", step_args=processor.run(
        code=str(code / "preprocess.py"),
        inputs=[s3_input("raw", f"s3://{bucket}/raw", "/opt/ml/processing/input/raw")],
        outputs=[s3_output("train", "/opt/ml/processing/train"),
                 s3_output("validation", "/opt/ml/processing/validation")],
        arguments=["--start-month", start.to_string(), "--end-month", end.to_string()]))
    outputs = preprocess.properties.ProcessingOutputConfig.Outputs
    trainer = ModelTrainer(training_image=SKLEARN_IMAGE, role=ROLE, sagemaker_session=session,
                           source_code=SourceCode(source_dir=str(code / "train"), entry_script="train.py"),
                           compute=Compute(instance_type="ml.m5.large", instance_count=1),
                           hyperparameters={"max-iter": 20})
    train = TrainingStep(name="Train", step_args=trainer.train(input_data_config=[
        InputData(channel_name="train", data_source=outputs["train"].S3Output.S3Uri),
        InputData(channel_name="validation", data_source=outputs["validation"].S3Output.S3Uri)]))
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(name="Evaluate", property_files=[evaluation], step_args=processor.run(
        code=str(code / "evaluate.py"),
        inputs=[s3_input("model", train.properties.ModelArtifacts.S3ModelArtifacts,
                         "/opt/ml/processing/model"),
                s3_input("validation", outputs["validation"].S3Output.S3Uri,
                         "/opt/ml/processing/validation")],
        outputs=[s3_output("evaluation", "/opt/ml/processing/evaluation")]))
    builder = ModelBuilder(s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
                           image_uri=SKLEARN_IMAGE, role_arn=ROLE, sagemaker_session=session)
    register = ModelStep(name="Register", step_args=builder.register(
        model_package_group_name=group, content_types=["text/csv"], response_types=["text/csv"],
        inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
        approval_status="PendingManualApproval"))
    fail = FailStep(name="AucTooLow", error_message=Join(on=" ", values=[
        "validation AUC is below the threshold", min_auc]))
    check = ConditionStep(name="CheckAuc", conditions=[ConditionGreaterThanOrEqualTo(
        left=JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="metrics.auc.value"),
        right=min_auc)], if_steps=[register], else_steps=[fail])
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline(name=name, parameters=[start, end, min_auc, group],
                        steps=[preprocess, train, evaluate, check], sagemaker_session=session)
    definition = pipeline.definition()
    sm = boto3.client("sagemaker")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=definition, RoleArn=ROLE)
    return {"name": name, "definition": json.loads(definition)}


@pytest.mark.slow
def test_preprocess_train_evaluate_register_succeeds(sdk_pipeline):
    sm = boto3.client("sagemaker")
    group = f"delay-{uuid.uuid4().hex[:6]}"
    arn = sm.start_pipeline_execution(PipelineName=sdk_pipeline["name"], PipelineParameters=[
        {"Name": "ModelGroup", "Value": group}])["PipelineExecutionArn"]
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    execution = wait_execution(sm, arn)
    steps = steps_of(sm, arn)
    assert execution["PipelineExecutionStatus"] == "Succeeded", (execution, steps)
    assert "FailureReason" not in execution
    assert set(steps) == {"Preprocess", "Train", "Evaluate", "CheckAuc", "Register"}  # not AucTooLow
    assert {s["StepStatus"] for s in steps.values()} == {"Succeeded"}
    assert steps["CheckAuc"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    # dependency order: each step started after the one it reads ended
    for before, after in (("Preprocess", "Train"), ("Train", "Evaluate"), ("Evaluate", "CheckAuc"),
                          ("CheckAuc", "Register")):
        assert steps[after]["StartTime"] >= steps[before]["EndTime"]
    training = sm.describe_training_job(TrainingJobName=resource(steps["Train"], "TrainingJob"))
    assert training["TrainingJobStatus"] == "Completed"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in training["InputDataConfig"]}
    processing = sm.describe_processing_job(
        ProcessingJobName=resource(steps["Preprocess"], "ProcessingJob"))
    produced = {o["OutputName"]: o["S3Output"]["S3Uri"]
                for o in processing["ProcessingOutputConfig"]["Outputs"]}
    assert channels["train"] == produced["train"]  # Steps.Preprocess...Outputs['train'].S3Output.S3Uri
    package_arn = steps["Register"]["Metadata"]["RegisterModel"]["Arn"]
    package = sm.describe_model_package(ModelPackageName=package_arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["ModelPackageGroupName"] == group and package["ModelPackageVersion"] == 1
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == training["ModelArtifacts"]["S3ModelArtifacts"]
    listed = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == [package_arn]


@pytest.mark.slow
def test_a_false_condition_runs_only_the_fail_step(sdk_pipeline):
    sm = boto3.client("sagemaker")
    group = f"never-{uuid.uuid4().hex[:6]}"
    arn = sm.start_pipeline_execution(PipelineName=sdk_pipeline["name"], PipelineParameters=[
        {"Name": "MinAuc", "Value": "1.01"}, {"Name": "ModelGroup", "Value": group}])["PipelineExecutionArn"]
    execution = wait_execution(sm, arn)
    steps = steps_of(sm, arn)
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert execution["FailureReason"] == "validation AUC is below the threshold 1.01"
    assert "Register" not in steps
    assert steps["CheckAuc"]["Metadata"] == {"Condition": {"Outcome": "False"}}
    assert steps["AucTooLow"]["StepStatus"] == "Failed"
    assert steps["AucTooLow"]["Metadata"] == {
        "Fail": {"ErrorMessage": "validation AUC is below the threshold 1.01"}}
    with pytest.raises(ClientError):  # nothing was registered: the group was never created
        sm.describe_model_package_group(ModelPackageGroupName=group)


@pytest.mark.slow  # the SDK fixture's first use imports the SDK (~30 s here)
def test_a_processing_script_that_raises_fails_the_execution_and_runs_nothing_after(sdk_pipeline):
    sm = boto3.client("sagemaker")
    arn = sm.start_pipeline_execution(PipelineName=sdk_pipeline["name"], PipelineParameters=[
        {"Name": "StartMonth", "Value": "9"}, {"Name": "EndMonth", "Value": "12"}])["PipelineExecutionArn"]
    execution = wait_execution(sm, arn)
    steps = steps_of(sm, arn)
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert "ValueError: no flights between months 9 and 12" in execution["FailureReason"]
    assert list(steps) == ["Preprocess"]
    assert steps["Preprocess"]["StepStatus"] == "Failed"
    assert "ValueError: no flights between months 9 and 12" in steps["Preprocess"]["FailureReason"]
    job = sm.describe_processing_job(ProcessingJobName=resource(steps["Preprocess"], "ProcessingJob"))
    assert job["ProcessingJobStatus"] == "Failed"
    assert "--start-month" in job["AppSpecification"]["ContainerArguments"]
    assert job["AppSpecification"]["ContainerArguments"][1] == "9"  # the parameter's value


@pytest.mark.slow
def test_the_sdk_definition_is_stored_and_described(sdk_pipeline):
    sm = boto3.client("sagemaker")
    described = sm.describe_pipeline(PipelineName=sdk_pipeline["name"])
    stored = json.loads(described["PipelineDefinition"])
    assert stored == sdk_pipeline["definition"]
    assert described["PipelineStatus"] == "Active"
    types = [s["Type"] for s in stored["Steps"]]
    assert types == ["Processing", "Training", "Processing", "Condition"]


# ---------------------------------------------------------------------------------------------
# small hand-written definitions (the API reference's JSON), fast
# ---------------------------------------------------------------------------------------------
SLEEP_SCRIPT = b"import sys, time, os\ntime.sleep(float(sys.argv[1]))\n" \
               b"os.makedirs('/opt/ml/processing/out', exist_ok=True)\n" \
               b"open('/opt/ml/processing/out/done.txt', 'w').write(sys.argv[1])\n"


def processing_step(bucket: str, name: str, seconds: str | dict = "0", depends=(), code_key="code/sleep.py"):
    step = {"Name": name, "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": [
            "python3", "/opt/ml/processing/input/code/sleep.py"], "ContainerArguments": [seconds]},
        "RoleArn": ROLE,
        "ProcessingInputs": [{"InputName": "code", "S3Input": {
            "S3Uri": f"s3://{bucket}/{code_key}", "LocalPath": "/opt/ml/processing/input/code",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": {"Std:Join": {"On": "/", "Values": [
                f"s3://{bucket}/hand", {"Get": "Execution.PipelineExecutionId"}, name]}},
            "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]}}}
    if depends:
        step["DependsOn"] = list(depends)
    return step


@pytest.fixture(scope="module")
def sleep_code(bucket):
    boto3.client("s3").put_object(Bucket=bucket, Key="code/sleep.py", Body=SLEEP_SCRIPT)
    return bucket


def create(sm, steps, parameters=()) -> str:
    name = f"hand-{uuid.uuid4().hex[:8]}"
    sm.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=json.dumps(
        {"Version": "2020-12-01", "Parameters": list(parameters), "Steps": steps}))
    return name


def test_invalid_definitions_are_validation_errors(local_aws):
    sm = boto3.client("sagemaker")
    for definition in ("{not json", json.dumps({"Version": "2020-12-01"}),
                       json.dumps({"Version": "2020-12-01", "Steps": [
                           {"Name": "A", "Type": "Fail",
                            "Arguments": {"ErrorMessage": {"Get": "Steps.Missing.X"}}}]})):
        name = f"bad-{uuid.uuid4().hex[:8]}"
        with pytest.raises(ClientError) as raised:
            sm.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=definition)
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        with pytest.raises(ClientError):  # nothing was stored
            sm.describe_pipeline(PipelineName=name)


def test_parameters_are_checked_and_typed(local_aws):
    sm = boto3.client("sagemaker")
    name = create(sm, [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
        "On": "|", "Values": [{"Get": "Parameters.Count"}, {"Get": "Parameters.Flag"},
                              {"Get": "Parameters.Label"}]}}}}],
        [{"Name": "Count", "Type": "Integer", "DefaultValue": 3},
         {"Name": "Flag", "Type": "Boolean", "DefaultValue": False},
         {"Name": "Label", "Type": "String", "DefaultValue": "x"}])
    for bad in ([{"Name": "Nope", "Value": "1"}], [{"Name": "Count", "Value": "three"}]):
        with pytest.raises(ClientError) as raised:
            sm.start_pipeline_execution(PipelineName=name, PipelineParameters=bad)
        assert raised.value.response["Error"]["Code"] == "ValidationException"
    arn = sm.start_pipeline_execution(PipelineName=name, PipelineParameters=[
        {"Name": "Count", "Value": "7"}, {"Name": "Flag", "Value": "true"}])["PipelineExecutionArn"]
    assert wait_execution(sm, arn)["FailureReason"] == "7|true|x"
    listed = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in listed} == {"Count": "7", "Flag": "true"}


def test_condition_operators_choose_the_branch(local_aws):
    sm = boto3.client("sagemaker")
    month, label = {"Get": "Parameters.Month"}, {"Get": "Parameters.Label"}
    conditions = [
        {"Type": "Or", "Conditions": [{"Type": "In", "QueryValue": month, "Values": [1, 2, 12]},
                                      {"Type": "Equals", "LeftValue": label, "RightValue": "winter"}]},
        {"Type": "Not", "Expression": {"Type": "LessThan", "LeftValue": month, "RightValue": 2}},
        {"Type": "LessThanOrEqualTo", "LeftValue": month, "RightValue": {"Get": "Parameters.Max"}}]
    name = create(sm, [{"Name": "Season", "Type": "Condition", "Arguments": {
        "Conditions": conditions,
        "IfSteps": [{"Name": "Yes", "Type": "Fail", "Arguments": {"ErrorMessage": "branch if"}}],
        "ElseSteps": [{"Name": "No", "Type": "Fail", "Arguments": {"ErrorMessage": "branch else"}}]}}],
        [{"Name": "Month", "Type": "Integer", "DefaultValue": 2},
         {"Name": "Label", "Type": "String", "DefaultValue": "summer"},
         {"Name": "Max", "Type": "Float", "DefaultValue": 12.0}])
    cases = {(): "branch if", (("Month", "1"),): "branch else", (("Month", "7"),): "branch else",
             (("Month", "7"), ("Label", "winter")): "branch if",
             (("Month", "12"), ("Max", "11.5")): "branch else"}
    for given, expected in cases.items():
        arn = sm.start_pipeline_execution(PipelineName=name, PipelineParameters=[
            {"Name": k, "Value": v} for k, v in given])["PipelineExecutionArn"]
        assert wait_execution(sm, arn)["FailureReason"] == expected, given
        outcome = steps_of(sm, arn)["Season"]["Metadata"]["Condition"]["Outcome"]
        assert outcome == ("True" if expected == "branch if" else "False")


def test_independent_steps_run_in_parallel_and_a_dependent_one_after(sleep_code):
    sm = boto3.client("sagemaker")
    name = create(sm, [processing_step(sleep_code, "A", "1.5"), processing_step(sleep_code, "B", "1.5"),
                       processing_step(sleep_code, "C", "0", depends=["A", "B"])])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    steps = steps_of(sm, arn)
    assert steps["B"]["StartTime"] < steps["A"]["EndTime"] and steps["A"]["StartTime"] < steps["B"]["EndTime"]
    assert steps["C"]["StartTime"] >= max(steps["A"]["EndTime"], steps["B"]["EndTime"])
    listed = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert listed[0]["StepName"] == "C"  # newest first, as AWS sorts by default
    execution_id = arn.rsplit("/", 1)[-1]
    done = boto3.client("s3").list_objects_v2(Bucket=sleep_code, Prefix=f"hand/{execution_id}/")
    assert sorted(o["Key"] for o in done["Contents"]) == [f"hand/{execution_id}/{s}/done.txt" for s in "ABC"]


def test_a_failed_step_lets_running_steps_finish_and_stops_its_dependents(sleep_code):
    sm = boto3.client("sagemaker")
    name = create(sm, [processing_step(sleep_code, "Slow", "2"),
                       processing_step(sleep_code, "Broken", "0", code_key="code/missing.py"),
                       processing_step(sleep_code, "After", "0", depends=["Broken"])])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    execution = wait_execution(sm, arn)
    steps = steps_of(sm, arn)
    assert execution["PipelineExecutionStatus"] == "Failed"
    assert steps["Broken"]["StepStatus"] == "Failed" and "code/missing.py" in execution["FailureReason"]
    assert steps["Slow"]["StepStatus"] == "Succeeded"
    assert "After" not in steps


def test_stop_pipeline_execution_stops_the_running_job(sleep_code):
    sm = boto3.client("sagemaker")
    name = create(sm, [processing_step(sleep_code, "Long", "60"),
                       processing_step(sleep_code, "Next", "0", depends=["Long"])])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    time.sleep(1.0)
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    execution = wait_execution(sm, arn, timeout=30)
    steps = steps_of(sm, arn)
    assert execution["PipelineExecutionStatus"] == "Stopped"
    assert steps["Long"]["StepStatus"] == "Stopped" and "Next" not in steps
    job = sm.describe_processing_job(ProcessingJobName=resource(steps["Long"], "ProcessingJob"))
    assert job["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as raised:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_retry_reruns_the_failed_steps_and_keeps_the_succeeded_ones(sleep_code):
    sm = boto3.client("sagemaker")
    key = f"code/later-{uuid.uuid4().hex[:6]}/sleep.py"
    name = create(sm, [processing_step(sleep_code, "First", "0"),
                       processing_step(sleep_code, "Second", "0", depends=["First"], code_key=key)])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Failed"
    first = steps_of(sm, arn)["First"]
    boto3.client("s3").put_object(Bucket=sleep_code, Key=key, Body=SLEEP_SCRIPT)  # fix the cause
    sm.retry_pipeline_execution(PipelineExecutionArn=arn)
    execution = wait_execution(sm, arn)
    steps = steps_of(sm, arn)
    assert execution["PipelineExecutionStatus"] == "Succeeded" and "FailureReason" not in execution
    assert steps["First"] == first  # not run again
    assert steps["Second"]["StepStatus"] == "Succeeded" and steps["Second"]["AttemptCount"] == 2
    with pytest.raises(ClientError) as raised:  # only a failed execution can be retried
        sm.retry_pipeline_execution(PipelineExecutionArn=arn)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_update_delete_and_unknown_executions(local_aws):
    sm = boto3.client("sagemaker")
    name = create(sm, [{"Name": "F", "Type": "Fail", "Arguments": {"ErrorMessage": "one"}}])
    sm.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(
        {"Version": "2020-12-01",
         "Steps": [{"Name": "F", "Type": "Fail", "Arguments": {"ErrorMessage": "two"}}]}))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_execution(sm, arn)["FailureReason"] == "two"
    summaries = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [(s["PipelineExecutionArn"], s["PipelineExecutionStatus"]) for s in summaries] == [(arn, "Failed")]
    with pytest.raises(ClientError) as raised:
        sm.list_pipeline_execution_steps(PipelineExecutionArn=arn + "x")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFound"
    from datetime import datetime, timezone

    listed = sm.list_pipelines(PipelineNamePrefix=name, SortBy="CreationTime",
                               CreatedAfter=datetime(2020, 1, 1, tzinfo=timezone.utc))["PipelineSummaries"]
    assert [p["PipelineName"] for p in listed] == [name]
    assert sm.describe_pipeline(PipelineName=name)["LastRunTime"] <= summaries[0]["StartTime"]
    sm.delete_pipeline(PipelineName=name, ClientRequestToken=uuid.uuid4().hex)
    with pytest.raises(ClientError) as raised:
        sm.start_pipeline_execution(PipelineName=name)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFound"


def test_an_eventbridge_rule_starts_the_pipeline_with_its_parameters(local_aws):
    sm, events = boto3.client("sagemaker"), boto3.client("events")
    name = create(sm, [{"Name": "Echo", "Type": "Fail",
                        "Arguments": {"ErrorMessage": {"Get": "Parameters.Reason"}}}],
                  [{"Name": "Reason", "Type": "String", "DefaultValue": "manual"}])
    pipeline_arn = sm.describe_pipeline(PipelineName=name)["PipelineArn"]
    rule = f"retrain-{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["labkit.tests"], "detail-type": [rule]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "pipeline", "Arn": pipeline_arn, "RoleArn": ROLE,
                                            "SageMakerPipelineParameters": {"PipelineParameterList": [
                                                {"Name": "Reason", "Value": "drift"}]}}])
    events.put_events(Entries=[{"Source": "labkit.tests", "DetailType": "other", "Detail": "{}"}])
    time.sleep(0.5)
    assert sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"] == []
    events.put_events(Entries=[{"Source": "labkit.tests", "DetailType": rule, "Detail": "{}"}])
    deadline = time.monotonic() + 10
    while not (summaries := sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]):
        assert time.monotonic() < deadline, "the rule did not start the pipeline"
        time.sleep(0.1)
    assert wait_execution(sm, summaries[0]["PipelineExecutionArn"])["FailureReason"] == "drift"
    events.remove_targets(Rule=rule, Ids=["pipeline"])
    events.delete_rule(Name=rule)


OBJECTIVE_PY = '''
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, default=1)
args = parser.parse_args()
print(f"objective={-(args.depth - 3) ** 2}")
'''


def test_tuning_model_and_transform_steps_run_on_the_engines(bucket):
    """Tuning (best job first in TrainingJobSummaries), Model (CreateModel) and Transform steps."""
    from sklearn.linear_model import LogisticRegression

    from sagemaker_helpers import tar_gz
    from sklearn_model import model_archive

    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    tag = uuid.uuid4().hex[:6]
    s3.put_object(Bucket=bucket, Key=f"{tag}/model/model.tar.gz", Body=model_archive(model))
    s3.put_object(Bucket=bucket, Key=f"{tag}/batch/rows.csv",
                  Body="\n".join(",".join(repr(float(v)) for v in row) for row in x[:20]).encode())
    s3.put_object(Bucket=bucket, Key=f"{tag}/src/objective.tar.gz", Body=tar_gz({"train.py": OBJECTIVE_PY}))
    s3.put_object(Bucket=bucket, Key=f"{tag}/data/train/train.csv", Body=b"a\n1\n")
    tuning = {"HyperParameterTuningJobConfig": {
        "Strategy": "Grid",
        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "objective"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "depth", "Values": ["2", "3", "4"]}]},
        "TrainingJobEarlyStoppingType": "Off"},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sagemaker_program": '"train.py"',
                                      "sagemaker_submit_directory":
                                          f'"s3://{bucket}/{tag}/src/objective.tar.gz"'},
            "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "objective",
                                                              "Regex": r"objective=([-0-9.]+)"}]},
            "RoleArn": ROLE,
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{tag}/data/train"}}}],
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{tag}/tuning"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300}}}
    best_url = {"Std:Join": {"On": "/", "Values": [f"s3://{bucket}/{tag}/tuning", {
        "Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}, "output/model.tar.gz"]}}
    steps = [
        {"Name": "Tune", "Type": "Tuning", "Arguments": tuning},
        {"Name": "BestModel", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE, "PrimaryContainer": {
            "Image": SKLEARN_IMAGE, "ModelDataUrl": best_url}}},
        {"Name": "Serve", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE, "PrimaryContainer": {
            "Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/{tag}/model/model.tar.gz"}}},
        {"Name": "Score", "Type": "Transform", "Arguments": {
            "ModelName": {"Get": "Steps.Serve.ModelName"},
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                               "S3Uri": f"s3://{bucket}/{tag}/batch/"}},
                               "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": f"s3://{bucket}/{tag}/scored", "Accept": "text/csv",
                                "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}}]
    arn = sm.start_pipeline_execution(PipelineName=create(sm, steps))["PipelineExecutionArn"]
    execution = wait_execution(sm, arn)
    listed = steps_of(sm, arn)
    reasons = {n: s.get("FailureReason") for n, s in listed.items()}
    assert execution["PipelineExecutionStatus"] == "Succeeded", reasons
    tuning_job = sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=resource(listed["Tune"], "TuningJob"))
    best = tuning_job["BestTrainingJob"]["TrainingJobName"]
    assert tuning_job["BestTrainingJob"]["TunedHyperParameters"] == {"depth": "3"}
    best_model = sm.describe_model(ModelName=resource(listed["BestModel"], "Model"))
    expected = f"s3://{bucket}/{tag}/tuning/{best}/output/model.tar.gz"
    assert best_model["PrimaryContainer"]["ModelDataUrl"] == expected
    assert listed["Score"]["StartTime"] >= listed["Serve"]["EndTime"]
    transform = sm.describe_transform_job(TransformJobName=resource(listed["Score"], "TransformJob"))
    assert transform["ModelName"] == resource(listed["Serve"], "Model")
    scored = s3.get_object(Bucket=bucket, Key=f"{tag}/scored/rows.csv.out")["Body"].read().decode()
    assert np.allclose([float(v) for v in scored.split()], model.predict_proba(x[:20])[:, 1], atol=1e-6)
