"""SageMaker Pipelines engine: executions really run the pipeline's DAG on the local engines.

moto stores pipelines and marks every execution Succeeded at once. Here
``start_pipeline_execution`` (and an EventBridge rule whose target is a pipeline ARN) runs the
definition the SDK writes (``PipelineDefinition`` JSON, version 2020-12-01) in the background:

* steps start in dependency order (``DependsOn`` plus every ``Get`` / ``Std:JsonGet`` reference to
  another step), in parallel where the DAG allows (``ParallelismConfiguration``);
* Processing, Training, Tuning, Model (CreateModel), RegisterModel and Transform steps call the
  SageMaker API of this local AWS, so the processing / training / tuning / hosting / registry
  engines do the work; the step then has that job's description as its properties;
* Condition steps evaluate AWS's operators (Equals, GreaterThan[OrEqualTo], LessThan[OrEqualTo],
  In, Not, Or) over ``Get`` (Parameters, Execution variables, step properties), ``Std:Join`` and
  ``Std:JsonGet`` on property files, and run their If or Else branch; Fail steps fail the execution
  with their ErrorMessage;
* step statuses, metadata and failure reasons are in ``list_pipeline_execution_steps``; a failed
  step lets running steps finish and starts nothing more; stop and retry work as on AWS.
"""

from __future__ import annotations

import json
import logging
import random
import re
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from labkit.local import clock, events

log = logging.getLogger("labkit.sagemaker_pipelines")

JOB_STEPS = {"Processing", "Training", "Tuning", "Transform"}
TERMINAL = {"Succeeded", "Failed", "Stopped"}
_tls = threading.local()
_endpoints: dict[str, str] = {}  # pipeline ARN -> the local AWS endpoint its requests came through


class StepFailure(Exception):
    """A step's failure: its message becomes the step's FailureReason."""


@dataclass
class _Step:
    name: str
    type: str
    definition: dict
    depends: set = field(default_factory=set)
    branch_of: tuple | None = None  # (condition step name, True/False) for conditional steps
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    failure: str | None = None
    metadata: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)
    attempts: int = 0
    job: tuple | None = None  # (kind, name) of the job it runs, to stop it


@dataclass
class _Execution:
    fake: Any
    pipeline: Any
    account: str
    region: str
    endpoint: str | None
    definition: dict
    parameters: dict
    steps: dict
    max_parallel: int = 50
    status: str = "Executing"
    failure: str | None = None
    stop_requested: bool = False
    lock: threading.Condition = field(default_factory=threading.Condition)
    outcomes: dict = field(default_factory=dict)  # condition step -> bool
    property_files: dict = field(default_factory=dict)  # (step, file name) -> parsed JSON


_executions: dict[str, _Execution] = {}
_lock = threading.Lock()


def _now() -> datetime:
    """The virtual clock as moto keeps its own times (naive UTC), for the objects moto lists."""
    from datetime import timezone

    return clock.now().astimezone(timezone.utc).replace(tzinfo=None)


def _iso(naive_utc: datetime) -> str:
    return naive_utc.isoformat(timespec="milliseconds") + "Z"


# ---------------------------------------------------------------------------------------------
# the definition
# ---------------------------------------------------------------------------------------------
def _validation(message: str):
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def parse_definition(text: str) -> dict:
    """The definition JSON, checked the way CreatePipeline checks it (ValidationException)."""
    try:
        definition = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise _validation(f"Invalid pipeline definition: the definition is not valid JSON ({exc})") from None
    if not isinstance(definition, dict) or not isinstance(definition.get("Steps"), list):
        raise _validation("Invalid pipeline definition: 'Steps' must be a list of steps")
    names = []
    for step in _all_steps(definition["Steps"]):
        if not isinstance(step, dict) or not step.get("Name") or not step.get("Type"):
            raise _validation("Invalid pipeline definition: every step needs a Name and a Type")
        names.append(step["Name"])
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _validation(f"Invalid pipeline definition: duplicate step names {duplicates}")
    for step in _all_steps(definition["Steps"]):
        for ref in _references(step) | set(step.get("DependsOn") or []):
            if ref not in names:
                raise _validation(f"Invalid pipeline definition: step '{step['Name']}' refers to "
                                  f"step '{ref}', which is not in the pipeline")
    return definition


def _all_steps(steps: list) -> list:
    out = []
    for step in steps:
        out.append(step)
        if isinstance(step, dict) and step.get("Type") == "Condition":
            args = step.get("Arguments") or {}
            out += _all_steps(args.get("IfSteps") or []) + _all_steps(args.get("ElseSteps") or [])
    return out


_STEP_REF = re.compile(r"^Steps\.([^.\[]+)")


def _references(step: dict) -> set:
    """The steps this step's arguments read (Get "Steps.X…" / Std:JsonGet property files)."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            if isinstance(value.get("Get"), str):
                match = _STEP_REF.match(value["Get"])
                if match:
                    found.add(match.group(1))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    args = dict(step.get("Arguments") or {})
    if step.get("Type") == "Condition":
        args.pop("IfSteps", None)
        args.pop("ElseSteps", None)
    walk(args)
    found.discard(step.get("Name"))
    return found


def _plan(definition: dict) -> dict[str, _Step]:
    steps: dict[str, _Step] = {}

    def add(items, branch):
        for item in items:
            step = _Step(item["Name"], item["Type"], item,
                         depends=_references(item) | set(item.get("DependsOn") or []),
                         branch_of=branch)
            if branch:
                step.depends.add(branch[0])
            steps[step.name] = step
            if item["Type"] == "Condition":
                args = item.get("Arguments") or {}
                add(args.get("IfSteps") or [], (item["Name"], True))
                add(args.get("ElseSteps") or [], (item["Name"], False))

    add(definition["Steps"], None)
    return steps


def _parameters(definition: dict, given: list | None) -> dict:
    declared = {p["Name"]: p for p in definition.get("Parameters") or []}
    values = {name: p.get("DefaultValue") for name, p in declared.items()}
    for item in given or []:
        name = item.get("Name")
        if name not in declared:
            raise _validation(f"Parameter '{name}' is not defined in the pipeline definition; "
                              f"defined parameters: {sorted(declared)}")
        values[name] = item.get("Value")
    typed = {}
    for name, value in values.items():
        kind = declared[name].get("Type", "String")
        if value is None:
            raise _validation(f"Parameter '{name}' has no default value and no value was given")
        try:
            if kind == "Integer":
                typed[name] = int(value)
            elif kind == "Float":
                typed[name] = float(value)
            elif kind == "Boolean":
                typed[name] = value if isinstance(value, bool) else str(value).lower() == "true"
            else:
                typed[name] = str(value)
        except (TypeError, ValueError):
            raise _validation(f"Parameter '{name}' value {value!r} is not a valid {kind}") from None
        allowed = (declared[name].get("EnumValues") or [])
        if allowed and str(value) not in [str(v) for v in allowed]:
            raise _validation(f"Parameter '{name}' value {value!r} is not one of {allowed}")
    return typed


# ---------------------------------------------------------------------------------------------
# expressions
# ---------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\.?([A-Za-z0-9_:]+)|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|\[\s*(\d+)\s*\]")


def _path_get(value: Any, path: str, what: str) -> Any:
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match:
            raise StepFailure(f"ClientError: cannot read {what}: bad property path at {path[pos:]!r}")
        pos = match.end()
        name, key1, key2, index = match.groups()
        key = key1 if key1 is not None else key2
        try:
            if name is not None:
                value = value[name]
            elif index is not None:
                value = value[int(index)]
            elif isinstance(value, list):  # a list keyed by its items' names (Outputs['train'])
                value = next(item for item in value if isinstance(item, dict) and key in [
                    v for k, v in item.items() if k.endswith("Name")])
            else:
                value = value[key]
        except (KeyError, IndexError, TypeError, StopIteration):
            raise StepFailure(f"ClientError: cannot resolve {what}: no value at "
                              f"{path[:match.end()]!r}") from None
    return value


def evaluate(execution: _Execution, value: Any) -> Any:
    """Resolve a definition value: Get, Std:Join, Std:JsonGet, recursively."""
    if isinstance(value, list):
        return [evaluate(execution, item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"} and isinstance(value["Get"], str):
        return _get(execution, value["Get"])
    if set(value) == {"Std:Join"}:
        spec = value["Std:Join"]
        return str(spec.get("On", "")).join(_text(evaluate(execution, v)) for v in spec.get("Values") or [])
    if set(value) == {"Std:JsonGet"}:
        return _json_get(execution, value["Std:JsonGet"])
    return {k: evaluate(execution, v) for k, v in value.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _get(execution: _Execution, ref: str) -> Any:
    if ref.startswith("Parameters."):
        name = ref[len("Parameters."):]
        if name not in execution.parameters:
            raise StepFailure(f"ClientError: parameter {name!r} is not defined")
        return execution.parameters[name]
    if ref.startswith("Execution."):
        fake = execution.fake
        variables = {"PipelineExecutionId": fake.arn.rsplit("/", 1)[-1],
                     "PipelineExecutionArn": fake.arn, "PipelineName": execution.pipeline.pipeline_name,
                     "PipelineArn": execution.pipeline.arn,
                     "StartDateTime": _iso(fake.start_time),
                     "CurrentDateTime": _iso(_now())}
        name = ref[len("Execution."):]
        if name not in variables:
            raise StepFailure(f"ClientError: unknown execution variable {name!r}")
        return variables[name]
    match = _STEP_REF.match(ref)
    if match:
        step = execution.steps.get(match.group(1))
        if step is None or step.status != "Succeeded":
            raise StepFailure(f"ClientError: {ref} is not available: step {match.group(1)!r} has not "
                              "succeeded")
        return _path_get(step.properties, ref[match.end():], ref)
    raise StepFailure(f"ClientError: cannot resolve {{'Get': {ref!r}}}")


def _json_get(execution: _Execution, spec: dict) -> Any:
    path = spec.get("Path", "")
    source = spec.get("PropertyFile")
    if isinstance(source, dict) and isinstance(source.get("Get"), str):
        match = re.match(r"^Steps\.([^.]+)\.PropertyFiles\.(.+)$", source["Get"])
        if not match:
            raise StepFailure(f"ClientError: bad property file reference {source['Get']!r}")
        data = _property_file(execution, match.group(1), match.group(2))
    elif spec.get("S3Uri") is not None:
        data = _read_json(evaluate(execution, spec["S3Uri"]))
    else:
        raise StepFailure("ClientError: Std:JsonGet needs a PropertyFile or an S3Uri")
    return _path_get(data, path if path.startswith("[") else "." + path, f"JsonGet {path!r}")


def _property_file(execution: _Execution, step_name: str, file_name: str) -> Any:
    key = (step_name, file_name)
    if key in execution.property_files:
        return execution.property_files[key]
    step = execution.steps.get(step_name)
    if step is None or step.status != "Succeeded":
        raise StepFailure(f"ClientError: property file {file_name!r} of step {step_name!r} is not "
                          "available: the step has not succeeded")
    spec = next((p for p in step.definition.get("PropertyFiles") or []
                 if p.get("PropertyFileName") == file_name), None)
    if spec is None:
        raise StepFailure(f"ClientError: step {step_name!r} declares no property file {file_name!r}")
    outputs = (step.properties.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    output = next((o for o in outputs if o.get("OutputName") == spec.get("OutputName")), None)
    if output is None:
        raise StepFailure(f"ClientError: property file {file_name!r}: step {step_name!r} has no "
                          f"output {spec.get('OutputName')!r}")
    uri = output["S3Output"]["S3Uri"].rstrip("/") + "/" + spec.get("FilePath", "").lstrip("/")
    data = _read_json(uri)
    execution.property_files[key] = data
    return data


def _read_json(uri: str) -> Any:
    from labkit.local import sagemaker_training as training

    try:
        bucket, key = training._split_s3(str(uri))
        return json.loads(training._s3_get(bucket, key))
    except training.JobFailure as exc:
        raise StepFailure(f"ClientError: cannot read the property file: {exc}") from None
    except ValueError as exc:
        raise StepFailure(f"ClientError: the property file {uri} is not valid JSON: {exc}") from None


def condition(execution: _Execution, spec: dict) -> bool:
    kind = spec.get("Type")
    if kind == "Not":
        return not condition(execution, spec["Expression"])
    if kind == "Or":
        return any(condition(execution, c) for c in spec.get("Conditions") or [])
    if kind == "In":
        query = evaluate(execution, spec.get("QueryValue"))
        return any(_equal(query, evaluate(execution, v)) for v in spec.get("Values") or [])
    left, right = evaluate(execution, spec.get("LeftValue")), evaluate(execution, spec.get("RightValue"))
    if kind == "Equals":
        return _equal(left, right)
    compare = {"GreaterThan": lambda a, b: a > b, "GreaterThanOrEqualTo": lambda a, b: a >= b,
               "LessThan": lambda a, b: a < b, "LessThanOrEqualTo": lambda a, b: a <= b}.get(kind)
    if compare is None:
        raise StepFailure(f"ClientError: unknown condition type {kind!r}")
    try:
        return compare(_number(left), _number(right))
    except (TypeError, ValueError):
        raise StepFailure(f"ClientError: condition {kind}: {left!r} and {right!r} are not "
                          "comparable numbers") from None


def _number(value):
    if isinstance(value, bool):
        raise TypeError
    return float(value)


def _equal(a, b) -> bool:
    try:
        return _number(a) == _number(b)
    except (TypeError, ValueError):
        return _text(a) == _text(b)


# ---------------------------------------------------------------------------------------------
# running steps
# ---------------------------------------------------------------------------------------------
def _client(execution: _Execution):
    import boto3

    return boto3.client("sagemaker", region_name=execution.region, endpoint_url=execution.endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _job_name(execution: _Execution, step: _Step) -> str:
    exec_id = execution.fake.arn.rsplit("/", 1)[-1]
    suffix = "".join(random.choices(string.ascii_letters + string.digits, k=10))
    safe = re.sub(r"[^A-Za-z0-9-]", "-", step.name)
    head = f"pipelines-{exec_id}-"
    return head + safe[:63 - len(head) - len(suffix) - 1] + "-" + suffix


def _call(fn, **kwargs):
    from botocore.exceptions import ClientError, ParamValidationError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StepFailure(f"{error.get('Code', 'ClientError')}: {error.get('Message', exc)}") from None
    except ParamValidationError as exc:
        raise StepFailure(f"ValidationException: {exc}") from None


def _wait(execution: _Execution, step: _Step, describe, status_key: str, ok: str) -> dict:
    stop_sent = False
    while True:
        description = describe()
        status = description[status_key]
        if status in {ok, "Failed", "Stopped"}:
            return description
        if execution.stop_requested and not stop_sent:
            stop_sent = True
            step.status = "Stopping"
            try:
                _stop_job(execution, step)
            except Exception:
                log.debug("could not stop %s", step.job, exc_info=True)
        time.sleep(0.1)


def _stop_job(execution: _Execution, step: _Step) -> None:
    if step.job is None:
        return
    kind, name = step.job
    sm = _client(execution)
    {"ProcessingJob": lambda: sm.stop_processing_job(ProcessingJobName=name),
     "TrainingJob": lambda: sm.stop_training_job(TrainingJobName=name),
     "TuningJob": lambda: sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
     "TransformJob": lambda: sm.stop_transform_job(TransformJobName=name)}[kind]()


def _clean(value: Any) -> Any:
    """A description as step properties: without ResponseMetadata."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "ResponseMetadata"}
    return value


def _run_job_step(execution: _Execution, step: _Step, args: dict) -> None:
    sm = _client(execution)
    name = _job_name(execution, step)
    if step.type == "Processing":
        step.job = ("ProcessingJob", name)
        arn = _call(sm.create_processing_job, ProcessingJobName=name, **args)["ProcessingJobArn"]
        step.metadata = {"ProcessingJob": {"Arn": arn}}
        described = _wait(execution, step, lambda: sm.describe_processing_job(ProcessingJobName=name),
                          "ProcessingJobStatus", "Completed")
        status, reason = described["ProcessingJobStatus"], described.get("FailureReason")
    elif step.type == "Training":
        step.job = ("TrainingJob", name)
        arn = _call(sm.create_training_job, TrainingJobName=name, **args)["TrainingJobArn"]
        step.metadata = {"TrainingJob": {"Arn": arn}}
        described = _wait(execution, step, lambda: sm.describe_training_job(TrainingJobName=name),
                          "TrainingJobStatus", "Completed")
        status, reason = described["TrainingJobStatus"], described.get("FailureReason")
    elif step.type == "Tuning":
        name = name[:32]  # tuning job names are at most 32 characters
        step.job = ("TuningJob", name)
        arn = _call(sm.create_hyper_parameter_tuning_job, HyperParameterTuningJobName=name,
                    **args)["HyperParameterTuningJobArn"]
        step.metadata = {"TuningJob": {"Arn": arn}}
        described = _wait(execution, step, lambda: sm.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name), "HyperParameterTuningJobStatus", "Completed")
        status, reason = described["HyperParameterTuningJobStatus"], described.get("FailureReason")
        if status == "Completed":  # TrainingJobSummaries: best first, as the step's properties rank them
            objective = described["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
            summaries = sm.list_training_jobs_for_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", MaxResults=100,
                SortOrder="Descending" if objective["Type"] == "Maximize" else "Ascending",
            )["TrainingJobSummaries"]
            described["TrainingJobSummaries"] = summaries
    else:  # Transform
        step.job = ("TransformJob", name)
        arn = _call(sm.create_transform_job, TransformJobName=name, **args)["TransformJobArn"]
        step.metadata = {"TransformJob": {"Arn": arn}}
        described = _wait(execution, step, lambda: sm.describe_transform_job(TransformJobName=name),
                          "TransformJobStatus", "Completed")
        status, reason = described["TransformJobStatus"], described.get("FailureReason")
    step.properties = _clean(described)
    if status == "Stopped":
        raise _Stopped()
    if status != "Completed":
        raise StepFailure(reason or f"{step.type} job {name} {status}")


class _Stopped(Exception):
    pass


def _run_step(execution: _Execution, step: _Step) -> None:
    try:
        if step.type == "Condition":
            args = step.definition.get("Arguments") or {}
            outcome = all(condition(execution, c) for c in args.get("Conditions") or [])
            execution.outcomes[step.name] = outcome
            step.metadata = {"Condition": {"Outcome": "True" if outcome else "False"}}
            step.properties = {"Outcome": outcome}
        elif step.type == "Fail":
            message = _text(evaluate(execution, (step.definition.get("Arguments") or {}).get(
                "ErrorMessage", "")))
            step.metadata = {"Fail": {"ErrorMessage": message}}
            raise StepFailure(message)
        else:
            args = evaluate(execution, step.definition.get("Arguments") or {})
            if step.type in JOB_STEPS:
                _run_job_step(execution, step, args)
            elif step.type == "Model":
                sm = _client(execution)
                name = args.pop("ModelName", None) or _job_name(execution, step)
                arn = _call(sm.create_model, ModelName=name, **args)["ModelArn"]
                step.metadata = {"Model": {"Arn": arn}}
                step.properties = {"ModelName": name, "ModelArn": arn}
            elif step.type == "RegisterModel":
                sm = _client(execution)
                group = args.get("ModelPackageGroupName")
                if group and not group.startswith("arn:"):  # the step creates a missing group
                    try:
                        sm.describe_model_package_group(ModelPackageGroupName=group)
                    except sm.exceptions.ClientError:
                        _call(sm.create_model_package_group, ModelPackageGroupName=group)
                arn = _call(sm.create_model_package, **args)["ModelPackageArn"]
                step.metadata = {"RegisterModel": {"Arn": arn}}
                step.properties = _clean(sm.describe_model_package(ModelPackageName=arn))
            else:
                raise StepFailure(f"ClientError: labkit's local AWS cannot run {step.type} steps; "
                                  "run this pipeline in AWS mode")
        final, reason = "Succeeded", None
    except _Stopped:
        final, reason = "Stopped", None
    except StepFailure as exc:
        final, reason = "Failed", str(exc)[:1024]
    except Exception as exc:  # an engine bug: the step fails with it, the execution never hangs
        log.exception("pipeline step %s failed in the engine", step.name)
        final, reason = "Failed", f"InternalServerError: labkit pipelines engine: {type(exc).__name__}: {exc}"
    with execution.lock:
        step.end = clock.now()
        step.status = final
        step.failure = reason
        execution.lock.notify_all()


def _ready(execution: _Execution, step: _Step) -> bool:
    if step.status is not None:
        return False
    if step.branch_of is not None:
        condition_step, branch = step.branch_of
        if execution.outcomes.get(condition_step) is not branch:
            return False
    return all(execution.steps[d].status == "Succeeded" for d in step.depends)


def run(execution: _Execution) -> None:
    """Drive the DAG to a terminal state."""
    with execution.lock:
        while True:
            running = [s for s in execution.steps.values() if s.status in {"Executing", "Stopping"}]
            failed = [s for s in execution.steps.values() if s.status == "Failed"]
            if not execution.stop_requested and not failed:
                for step in execution.steps.values():
                    if len(running) >= execution.max_parallel:
                        break
                    if _ready(execution, step):
                        step.status = "Executing"
                        step.start = clock.now()
                        step.attempts += 1
                        running.append(step)
                        threading.Thread(target=_run_step, args=(execution, step), daemon=True,
                                         name=f"labkit-pipeline-step-{step.name}").start()
            if not running:
                break
            execution.lock.wait(1.0)
        failed = [s for s in execution.steps.values() if s.status == "Failed"]
        if failed:
            first = min(failed, key=lambda s: s.end)
            final, reason = "Failed", first.failure
        elif execution.stop_requested:
            final, reason = "Stopped", None
        else:
            final, reason = "Succeeded", None
        execution.status, execution.failure = final, reason
        fake = execution.fake
        fake.pipeline_execution_status = final
        fake.pipeline_execution_failure_reason = reason
        fake.last_modified_time = _now()
        execution.lock.notify_all()
    _put_status_event(execution)


def _put_status_event(execution: _Execution) -> None:
    fake = execution.fake
    detail = {"pipelineExecutionDisplayName": fake.pipeline_execution_display_name,
              "currentPipelineExecutionStatus": execution.status,
              "previousPipelineExecutionStatus": "Executing",
              "executionStartTime": _iso(fake.start_time),
              "executionEndTime": _iso(_now()),  # ISO text, as this event carries them
              "pipelineExecutionDescription": fake.pipeline_execution_description,
              "pipelineArn": execution.pipeline.arn}
    events.put_aws_event("aws.sagemaker", "SageMaker Model Building Pipeline Execution Status Change",
                         detail, resources=[execution.pipeline.arn, fake.arn],
                         account=execution.account, region=execution.region)  # never raises


# ---------------------------------------------------------------------------------------------
# moto hooks
# ---------------------------------------------------------------------------------------------
def _pipeline(backend, name_or_arn: str):
    from moto.sagemaker.exceptions import ResourceNotFound

    name = name_or_arn.split("/")[-1] if name_or_arn.startswith("arn:") else name_or_arn
    pipeline = backend.pipelines.get(name)
    if pipeline is None:
        arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:pipeline/{name}"
        raise ResourceNotFound(message=f"Pipeline '{arn}' does not exist.")
    return pipeline


def _execution(backend, arn: str) -> _Execution:
    from moto.sagemaker.exceptions import ResourceNotFound

    execution = _executions.get(arn)
    if execution is None or execution.account != backend.account_id:
        raise ResourceNotFound(message=f"Pipeline execution '{arn}' does not exist.")
    return execution


def start_execution(backend, pipeline_name: str, parameters: list | None = None,
                    display_name: str | None = None, description: str | None = None,
                    parallelism: dict | None = None, endpoint: str | None = None) -> str:
    """Start an execution (the API call and EventBridge targets); returns its ARN."""
    import os

    from labkit.local.server import background

    pipeline = _pipeline(backend, pipeline_name)
    definition = parse_definition(pipeline.pipeline_definition)
    typed = _parameters(definition, parameters)
    response = _original_start(backend, pipeline.pipeline_name, display_name, parameters or [],
                               description, parallelism, None)
    arn = response["PipelineExecutionArn"]
    fake = pipeline.pipeline_executions[arn]
    now = _now()
    fake.creation_time = fake.last_modified_time = fake.start_time = now
    pipeline.last_execution_time = now
    fake.pipeline_execution_status = "Executing"
    fake.pipeline_execution_display_name = display_name or arn.rsplit("/", 1)[-1]
    fake.pipeline_parameters = parameters or []
    config = parallelism or pipeline.parallelism_configuration or {}
    parallel = config.get("MaxParallelExecutionSteps") or 50
    execution = _Execution(fake, pipeline, backend.account_id, backend.region_name,
                           endpoint or _endpoints.get(pipeline.arn) or os.environ.get("AWS_ENDPOINT_URL"),
                           definition, typed, _plan(definition), max_parallel=int(parallel))
    with _lock:
        _executions[arn] = execution
    background(run, execution)
    return arn


_original_start = None


def _step_summary(step: _Step) -> dict:
    summary = {"StepName": step.name, "StepDisplayName": step.definition.get("DisplayName", step.name),
               "StepStatus": step.status, "StartTime": step.start, "AttemptCount": step.attempts,
               "Metadata": step.metadata}
    if step.definition.get("Description"):
        summary["StepDescription"] = step.definition["Description"]
    if step.end is not None and step.status in TERMINAL:
        summary["EndTime"] = step.end
    if step.failure:
        summary["FailureReason"] = step.failure
    return summary


def install() -> None:
    global _original_start
    from moto.core.responses import ActionResult
    from moto.sagemaker import models, responses

    from labkit.local.server import on_reset

    backend_cls = models.SageMakerModelBackend
    response_cls = responses.SageMakerResponse
    _original_start = backend_cls.start_pipeline_execution
    original_create = backend_cls.create_pipeline
    original_update = backend_cls.update_pipeline
    original_describe_execution = backend_cls.describe_pipeline_execution
    original_response_create = response_cls.create_pipeline
    original_response_update = response_cls.update_pipeline

    def remember_endpoint(self, original):
        host = self.headers.get("Host") if self.headers else None
        _tls.endpoint = f"http://{host}" if host else None
        try:
            return original(self)
        finally:
            _tls.endpoint = None

    def create_pipeline(self, pipeline_name, pipeline_display_name, pipeline_definition,
                        pipeline_definition_s3_location, *args, **kwargs):
        pipeline = original_create(self, pipeline_name, pipeline_display_name, pipeline_definition,
                                   pipeline_definition_s3_location, *args, **kwargs)
        try:
            parse_definition(pipeline.pipeline_definition)
        except Exception:
            del self.pipelines[pipeline_name]
            raise
        pipeline.creation_time = pipeline.last_modified_time = _now()
        if getattr(_tls, "endpoint", None):
            _endpoints[pipeline.arn] = _tls.endpoint
        return pipeline

    def update_pipeline(self, pipeline_name, **kwargs):
        if kwargs.get("pipeline_definition"):
            parse_definition(kwargs["pipeline_definition"])
        arn = original_update(self, _pipeline(self, pipeline_name).pipeline_name, **kwargs)
        pipeline = _pipeline(self, pipeline_name)
        pipeline.last_modified_time = _now()
        if getattr(_tls, "endpoint", None):
            _endpoints[pipeline.arn] = _tls.endpoint
        return arn

    def delete_pipeline(self, pipeline_name):
        pipeline = _pipeline(self, pipeline_name)
        del self.pipelines[pipeline.pipeline_name]
        _endpoints.pop(pipeline.arn, None)
        return pipeline.arn

    def start_pipeline_execution(self, pipeline_name, display_name, parameters, description,
                                 parallelism, client_request_token):
        arn = start_execution(self, pipeline_name, parameters, display_name, description,
                              parallelism, getattr(_tls, "endpoint", None))
        return {"PipelineExecutionArn": arn}

    def describe_pipeline_execution(self, arn):
        response = original_describe_execution(self, arn)
        execution = _executions.get(arn)
        response.pop("FailureReason", None)
        response.pop("PipelineExperimentConfig", None)
        if execution is not None:
            fake = execution.fake
            response["PipelineExecutionStatus"] = execution.status
            response["PipelineExecutionDisplayName"] = fake.pipeline_execution_display_name
            response["CreationTime"] = fake.creation_time
            response["LastModifiedTime"] = fake.last_modified_time
            if execution.failure:
                response["FailureReason"] = execution.failure
        return {k: v for k, v in response.items() if v is not None}

    def list_pipeline_executions(self):
        pipeline = _pipeline(self.sagemaker_backend, self._get_param("PipelineName"))
        summaries = []
        for arn, fake in pipeline.pipeline_executions.items():
            execution = _executions.get(arn)
            summary = {"PipelineExecutionArn": arn, "StartTime": fake.start_time,
                       "PipelineExecutionStatus": execution.status if execution else
                       fake.pipeline_execution_status,
                       "PipelineExecutionDisplayName": fake.pipeline_execution_display_name}
            if fake.pipeline_execution_description:
                summary["PipelineExecutionDescription"] = fake.pipeline_execution_description
            if execution is not None and execution.failure:
                summary["PipelineExecutionFailureReason"] = execution.failure
            summaries.append(summary)
        descending = self._get_param("SortOrder", "Descending") == "Descending"
        summaries.sort(key=lambda s: s["StartTime"], reverse=descending)
        return ActionResult({"PipelineExecutionSummaries": summaries})

    def list_pipeline_execution_steps(self):
        execution = _execution(self.sagemaker_backend, self._get_param("PipelineExecutionArn"))
        with execution.lock:
            steps = [_step_summary(s) for s in execution.steps.values() if s.status is not None]
        descending = self._get_param("SortOrder", "Descending") == "Descending"
        steps.sort(key=lambda s: s["StartTime"], reverse=descending)
        max_results = self._get_int_param("MaxResults") or 20
        start = int(self._get_param("NextToken") or 0)
        result = {"PipelineExecutionSteps": steps[start:start + max_results]}
        if start + max_results < len(steps):
            result["NextToken"] = str(start + max_results)
        return ActionResult(result)

    def stop_pipeline_execution(self):
        execution = _execution(self.sagemaker_backend, self._get_param("PipelineExecutionArn"))
        with execution.lock:
            if execution.status != "Executing":
                raise _validation(f"Pipeline execution is in {execution.status} status and cannot "
                                  "be stopped.")
            execution.stop_requested = True
            execution.status = "Stopping"
            execution.fake.pipeline_execution_status = "Stopping"
            execution.lock.notify_all()
        return ActionResult({"PipelineExecutionArn": execution.fake.arn})

    def retry_pipeline_execution(self):
        from labkit.local.server import background

        execution = _execution(self.sagemaker_backend, self._get_param("PipelineExecutionArn"))
        with execution.lock:
            if execution.status != "Failed":
                raise _validation(f"Pipeline execution is in {execution.status} status; only a "
                                  "Failed execution can be retried.")
            for step in execution.steps.values():
                if step.status in {"Failed", "Stopped"}:
                    step.status, step.failure, step.end = None, None, None
            execution.status, execution.failure = "Executing", None
            execution.fake.pipeline_execution_status = "Executing"
            execution.fake.last_modified_time = _now()
        background(run, execution)
        return ActionResult({"PipelineExecutionArn": execution.fake.arn})

    backend_cls.create_pipeline = create_pipeline
    backend_cls.update_pipeline = update_pipeline
    backend_cls.delete_pipeline = delete_pipeline
    backend_cls.start_pipeline_execution = start_pipeline_execution
    backend_cls.describe_pipeline_execution = describe_pipeline_execution
    response_cls.create_pipeline = lambda self: remember_endpoint(self, original_response_create)
    response_cls.update_pipeline = lambda self: remember_endpoint(self, original_response_update)
    original_response_start = response_cls.start_pipeline_execution
    response_cls.start_pipeline_execution = lambda self: remember_endpoint(self, original_response_start)
    response_cls.list_pipeline_executions = list_pipeline_executions
    response_cls.list_pipeline_execution_steps = list_pipeline_execution_steps
    response_cls.stop_pipeline_execution = stop_pipeline_execution
    response_cls.retry_pipeline_execution = retry_pipeline_execution
    _register_event_target()
    on_reset(_reset)


def _reset() -> None:
    with _lock:
        executions = list(_executions.values())
        _executions.clear()
        _endpoints.clear()
    for execution in executions:
        execution.stop_requested = True


def _register_event_target() -> None:
    """EventBridge rules whose target is a pipeline ARN start an execution with the target's
    SageMakerPipelineParameters."""
    def handler(target: dict, _payload) -> None:
        from moto.sagemaker.models import sagemaker_backends

        _, _, _, region, account, _ = target["Arn"].split(":", 5)
        parameters = (target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList")
        start_execution(sagemaker_backends[account][region], target["Arn"], parameters or [])

    events.register_target("sagemaker", handler)
