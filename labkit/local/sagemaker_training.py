"""SageMaker training engine: ``create_training_job`` really trains, under SageMaker's contract.

moto stores a training job and marks it Completed at once without running anything (and overwrites
your MetricDefinitions). This engine keeps moto's API state but runs the job on the background pool:

* channels are downloaded from S3 into a temporary ``/opt/ml``-like tree (``input/data/<channel>``),
  ``input/config/*.json`` is written as the platform writes it;
* script mode (scikit-learn / XGBoost framework images): the entry point comes from the
  ``sagemaker_submit_directory`` tar.gz (SDK v2 / boto3 style) or from the ``code`` + ``sm_drivers``
  channels (SDK v3 ``ModelTrainer``); it runs with this venv's Python in a subprocess with the
  ``SM_*`` environment and the hyper-parameters as ``--name value`` arguments;
* the built-in XGBoost algorithm (``sagemaker-xgboost`` / ``xgboost`` image, no entry point) runs
  ``labkit.local._sm_xgboost_algorithm`` (CSV, label first, no header) on the xgboost package;
* logs go to CloudWatch Logs ``/aws/sagemaker/TrainingJobs`` (stream ``<job>/algo-1-<epoch>``),
  MetricDefinitions regexes are applied to them → ``FinalMetricDataList`` (last value per metric);
* ``model.tar.gz`` (SM_MODEL_DIR, plus the entry point under ``code/``) is uploaded to
  ``{S3OutputPath}/{job}/output/model.tar.gz``;
* states InProgress → Completed, Failed (FailureReason = the script's error) or Stopping → Stopped
  (``stop_training_job``, or MaxRuntimeInSeconds exceeded).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.local import clock, events

log = logging.getLogger("labkit.sagemaker_training")

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_IMAGE_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                       r"(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@.+)?$")
SKLEARN_REPOS = {"sagemaker-scikit-learn"}
XGBOOST_REPOS = {"sagemaker-xgboost", "xgboost"}
TERMINAL = {"Completed", "Failed", "Stopped"}

# The built-in XGBoost algorithm's own metric definitions (what AWS attaches to the algorithm).
_XGB_METRICS = ("auc", "aucpr", "error", "logloss", "rmse", "mae", "mse", "mape", "map", "ndcg",
                "merror", "mlogloss", "accuracy", "f1", "r2", "poisson-nloglik", "gamma-nloglik",
                "cox-nloglik", "gamma-deviance", "tweedie-nloglik", "rmsle")
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
BUILTIN_XGBOOST_METRIC_DEFINITIONS = [
    {"Name": f"{channel}:{metric}", "Regex": rf".*\[[0-9]+\].*#011{channel}-{metric}:{_NUMBER}.*"}
    for channel in ("train", "validation") for metric in _XGB_METRICS
]

_tls = threading.local()  # request-scoped extras moto drops (Environment) and the tuning flag


@dataclass
class _Run:
    """Engine-side state of one job (moto keeps the API-visible state on FakeTrainingJob)."""

    job: Any
    account: str
    region: str
    environment: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    stop_requested: bool = False
    timed_out: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    log_stream: str = ""
    endpoint: str | None = None  # the local AWS the job's code talks to (as a job uses its region)
    metric_series: dict = field(default_factory=dict)
    program: str | None = None  # the script-mode entry point, once known
    output_tail: list = field(default_factory=list)  # the last lines of output (for FailureReason)
    log_group: str = LOG_GROUP  # the processing engine reuses this runner with its own group


_runs: dict[tuple[str, str, str], _Run] = {}
_runs_lock = threading.Lock()


class JobFailure(Exception):
    """A job-level failure: its message becomes the FailureReason."""


# ---------------------------------------------------------------------------------------------
# moto hooks
# ---------------------------------------------------------------------------------------------
def install() -> None:
    from moto.sagemaker import models, responses

    original_create = models.SageMakerModelBackend.create_training_job
    original_response_create = responses.SageMakerResponse.create_training_job

    def create_training_job(self, training_job_name, **kwargs):
        from moto.sagemaker.exceptions import ResourceInUseException

        if training_job_name in self.training_jobs:
            arn = models.FakeTrainingJob.arn_formatter(training_job_name, self.account_id,
                                                       self.region_name)
            raise ResourceInUseException(
                message="Training job names must be unique within an AWS account and region, and "
                        f"a training job with this name already exists ({arn})")
        spec = dict(kwargs.get("algorithm_specification") or {})
        user_metrics = [dict(m) for m in spec.get("MetricDefinitions") or []]
        job = original_create(self, training_job_name=training_job_name, **kwargs)
        _prepare(job, user_metrics)
        run = _Run(job, self.account_id, self.region_name,
                   environment=dict(getattr(_tls, "environment", None) or {}),
                   endpoint=getattr(_tls, "endpoint", None) or os.environ.get("AWS_ENDPOINT_URL"))
        with _runs_lock:
            _runs[(self.account_id, self.region_name, training_job_name)] = run
        if not getattr(_tls, "defer", False):
            from labkit.local.server import background

            background(execute, run)
        return job

    def response_create_training_job(self):
        _tls.environment = self._get_param("Environment") or {}
        host = self.headers.get("Host") if self.headers else None
        _tls.endpoint = f"http://{host}" if host else None
        try:
            return original_response_create(self)
        finally:
            _tls.environment = None

    def stop_training_job(self):
        from moto.core.responses import EmptyResult

        stop(self.sagemaker_backend, self._get_param("TrainingJobName"))
        return EmptyResult()

    from moto.iam import responses as iam_responses

    if not hasattr(iam_responses.IamResponse, "simulate_principal_policy"):
        iam_responses.IamResponse.simulate_principal_policy = _simulate_principal_policy
    original_list = responses.SageMakerResponse.list_training_jobs

    def list_training_jobs(self):
        """moto pages before it filters and never sorts; AWS filters, sorts, then pages."""
        from moto.core.responses import ActionResult
        from moto.sagemaker.exceptions import AWSValidationException

        original_list(self)  # moto's own parameter validation (raises AWS's ValidationException)
        sort_by = self._get_param("SortBy", "CreationTime")
        descending = self._get_param("SortOrder", "Ascending") == "Descending"
        max_results = self._get_int_param("MaxResults") or 10
        try:
            start = int(self._get_param("NextToken") or 0)
        except ValueError:
            raise AWSValidationException('Invalid pagination token because "{0}".') from None
        filters = {"NameContains": lambda j, v: v in j.training_job_name,
                   "StatusEquals": lambda j, v: j.training_job_status == v,
                   "CreationTimeAfter": lambda j, v: j.creation_time > _as_time(v),
                   "CreationTimeBefore": lambda j, v: j.creation_time < _as_time(v),
                   "LastModifiedTimeAfter": lambda j, v: j.last_modified_time > _as_time(v),
                   "LastModifiedTimeBefore": lambda j, v: j.last_modified_time < _as_time(v)}
        jobs = list(self.sagemaker_backend.training_jobs.values())
        for name, keep in filters.items():
            value = self._get_param(name)
            if value is not None:
                jobs = [j for j in jobs if keep(j, value)]
        key = {"Name": lambda j: j.training_job_name, "Status": lambda j: j.training_job_status,
               "CreationTime": lambda j: _as_time(j.creation_time)}[sort_by]
        jobs.sort(key=key, reverse=descending)
        page = jobs[start:start + max_results]
        summaries = []
        for j in page:
            summary = {"TrainingJobName": j.training_job_name, "TrainingJobArn": j.arn,
                       "CreationTime": j.creation_time, "LastModifiedTime": j.last_modified_time,
                       "TrainingJobStatus": j.training_job_status}
            if j.training_end_time:
                summary["TrainingEndTime"] = j.training_end_time
            summaries.append(summary)
        result = {"TrainingJobSummaries": summaries}
        if start + max_results < len(jobs):
            result["NextToken"] = str(start + max_results)
        return ActionResult(result)

    models.SageMakerModelBackend.create_training_job = create_training_job
    responses.SageMakerResponse.create_training_job = response_create_training_job
    responses.SageMakerResponse.list_training_jobs = list_training_jobs
    responses.SageMakerResponse.stop_training_job = stop_training_job

    from labkit.local.server import on_reset

    on_reset(_reset)


def _as_time(value):
    """Timestamps from requests (epoch numbers or datetimes) and from moto (naive = UTC)."""
    from datetime import datetime, timezone

    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), timezone.utc)
        except ValueError:
            value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _simulate_principal_policy(self):
    """iam:SimulatePrincipalPolicy, which ModelTrainer calls before staging code. The local AWS
    enforces no IAM policies, so every action is 'allowed' (the honest local answer)."""
    from moto.core.responses import ActionResult

    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    results = [{"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": "allowed",
                "MatchedStatements": [], "MissingContextValues": []}
               for action in actions for resource in resources]
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def _reset() -> None:
    with _runs_lock:
        runs = list(_runs.values())
        _runs.clear()
    for run in runs:
        run.stop_requested = True
        _kill(run)


def get_run(account: str, region: str, name: str) -> _Run | None:
    with _runs_lock:
        return _runs.get((account, region, name))


def create_deferred(backend, **kwargs):
    """Create a job through moto without scheduling it (the tuning engine runs it itself)."""
    _tls.defer = True
    try:
        job = backend.create_training_job(**kwargs)
    finally:
        _tls.defer = False
    return get_run(backend.account_id, backend.region_name, kwargs["training_job_name"])


def _prepare(job, user_metrics: list[dict]) -> None:
    """Undo moto's canned 'Completed' job: AWS starts every job InProgress / Starting."""
    now = clock.now()
    job.algorithm_specification["MetricDefinitions"] = user_metrics or None
    if not user_metrics:
        job.algorithm_specification.pop("MetricDefinitions", None)
    job.creation_time = job.last_modified_time = now
    job.training_job_status = "InProgress"
    job.secondary_status = "Starting"
    job.training_start_time = None
    job.training_end_time = None
    job.final_metric_data_list = None
    job.failure_reason = None
    job.training_time_in_seconds = None
    job.billable_time_in_seconds = None
    job.secondary_status_transitions = [
        {"Status": "Starting", "StartTime": now, "StatusMessage": "Preparing the instances for training"}]
    events.training_job_state_change(job)


def stop(backend, name: str) -> None:
    """stop_training_job: only an InProgress job can be stopped (AWS's ValidationException)."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeTrainingJob

    job = backend.training_jobs.get(name)
    if job is None:
        arn = FakeTrainingJob.arn_formatter(name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Requested resource not found: {arn}")
    if job.training_job_status != "InProgress":
        raise ValidationError(message="The request was rejected because the training job is in "
                                      f"status {job.training_job_status}.")
    run = get_run(backend.account_id, backend.region_name, name)
    job.training_job_status = "Stopping"
    _transition(job, "Stopping", "Stopping the training job")
    if run is not None:
        run.stop_requested = True
        _kill(run)


def _kill(run: _Run) -> None:
    process = run.process
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def _transition(job, status: str, message: str) -> None:
    now = clock.now()
    transitions = job.secondary_status_transitions
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
    job.secondary_status = status
    job.last_modified_time = now


# ---------------------------------------------------------------------------------------------
# running a job
# ---------------------------------------------------------------------------------------------
def execute(run: _Run) -> str:
    """Run the job to a terminal state; returns that state. Never raises (failures are states)."""
    job = run.job
    root = Path(tempfile.mkdtemp(prefix=f"labkit-train-{job.training_job_name[:40]}-"))
    ml = root / "opt" / "ml"
    job.training_start_time = clock.now()
    run.log_stream = f"{job.training_job_name}/algo-1-{int(time.time())}"
    final, reason = "Failed", None
    try:
        _open_log(run)
        kind = classify(job)
        _transition(job, "Downloading", "Downloading input data")
        _layout(run, ml)
        _transition(job, "Training", "Training image download completed. Training in progress.")
        command, env, cwd = _command(run, kind, ml)
        rc = _run_process(run, command, env, cwd)
        if run.stop_requested and not run.timed_out:
            final = "Stopped"
        elif run.timed_out:
            final = "Stopped"
        elif rc != 0:
            raise JobFailure(_failure_reason(run, ml, rc, command))
        _transition(job, "Uploading", "Uploading generated training model")
        _upload_outputs(run, ml, kind)
        if final != "Stopped":
            final = "Completed"
    except JobFailure as exc:
        final, reason = "Failed", str(exc)
    except Exception as exc:  # an engine bug: report it as the job's failure, never hang InProgress
        log.exception("training job %s failed in the engine", job.training_job_name)
        final, reason = "Failed", f"InternalServerError: labkit training engine: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _finish(run, final, reason)
    return final


def _finish(run: _Run, final: str, reason: str | None) -> None:
    job = run.job
    end = clock.now()
    if final == "Completed":
        _transition(job, "Completed", "Training job completed")
    elif final == "Stopped":
        if run.timed_out:
            _transition(job, "MaxRuntimeExceeded", "Job stopped because max run time exceeded")
        else:
            _transition(job, "Stopped", "Training job stopped")
    else:
        _transition(job, "Failed", reason or "Training job failed")
        job.failure_reason = reason
    job.secondary_status_transitions[-1]["EndTime"] = end
    job.training_end_time = end
    seconds = max(1, math.ceil((end - job.training_start_time).total_seconds()))
    job.training_time_in_seconds = seconds
    job.billable_time_in_seconds = seconds
    if run.metric_series:
        job.final_metric_data_list = [
            {"MetricName": name, "Value": series[-1][1], "Timestamp": series[-1][0]}
            for name, series in run.metric_series.items()]
    if final != "Completed":
        job.model_artifacts = job.model_artifacts if _artifact_exists(job) else None
    _publish_metrics(run)
    job.training_job_status = final
    job.last_modified_time = end
    events.training_job_state_change(job)
    run.done.set()


def _publish_metrics(run: _Run) -> None:
    """The metric time series in CloudWatch, namespace /aws/sagemaker/TrainingJobs, dimension
    Host=<job>/algo-1, as AWS publishes what the metric definitions extract."""
    if not run.metric_series:
        return
    from moto.cloudwatch.models import cloudwatch_backends

    host = f"{run.job.training_job_name}/algo-1"
    from datetime import timezone

    data = [{"MetricName": name, "Value": value, "Unit": "None",
             "Timestamp": stamp.astimezone(timezone.utc).replace(tzinfo=None),  # moto keeps naive UTC
             "Dimensions": [{"Name": "Host", "Value": host}]}
            for name, series in run.metric_series.items() for stamp, value in series]
    try:
        backend = cloudwatch_backends[run.account][run.region]
        for start in range(0, len(data), 1000):
            backend.put_metric_data(LOG_GROUP, data[start:start + 1000])
    except Exception:  # metrics are a by-product: never fail a finished job over them
        log.exception("could not publish the metrics of %s", run.job.training_job_name)


def classify(job) -> str:
    """'script' (framework image + entry point), 'xgboost-algorithm', or fail like AWS cannot."""
    spec = job.algorithm_specification or {}
    image = spec.get("TrainingImage")
    if not image:
        raise JobFailure("ClientError: labkit's local AWS runs training images only: "
                         f"AlgorithmName {spec.get('AlgorithmName')!r} (marketplace / algorithm "
                         "resources) cannot run locally; use the image URI, or run in AWS mode")
    match = _IMAGE_RE.match(image)
    repo = match.group("repo") if match else None
    if repo not in SKLEARN_REPOS | XGBOOST_REPOS:
        raise JobFailure(f"ClientError: labkit's local AWS cannot run the image {image!r}: only the "
                         "SageMaker scikit-learn and XGBoost framework images and the built-in "
                         "XGBoost algorithm image are emulated (e.g. 683313688378.dkr.ecr.us-east-1."
                         "amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3). Run this job in AWS mode.")
    hps = job.hyper_parameters or {}
    channels = {c["ChannelName"] for c in job.input_data_config or []}
    if "sagemaker_program" in hps or "sm_drivers" in channels:
        return "script"
    if repo in XGBOOST_REPOS:
        return "xgboost-algorithm"
    raise JobFailure("AlgorithmError: the scikit-learn image has no built-in algorithm: give an entry "
                     "point (hyper-parameters sagemaker_program + sagemaker_submit_directory, or "
                     "the SDK's SourceCode)")


def _s3():
    from moto.s3.models import s3_backends

    from labkit.backend import LOCAL_ACCOUNT_ID

    return s3_backends[LOCAL_ACCOUNT_ID]["aws"]


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise JobFailure(f"ClientError: {uri!r} is not an S3 URI (s3://bucket/prefix)")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _s3_keys(bucket: str, prefix: str) -> list[str]:
    from moto.s3.exceptions import MissingBucket

    try:
        keys = _s3().get_bucket(bucket).keys
    except MissingBucket:
        return []
    return sorted(k for k in list(keys.keys()) if k.startswith(prefix) and not k.endswith("/"))


def _s3_get(bucket: str, key: str) -> bytes:
    obj = _s3().get_object(bucket, key)
    if obj is None:
        raise JobFailure(f"ClientError: s3://{bucket}/{key} does not exist")
    return obj.value


def _s3_put(bucket: str, key: str, data: bytes) -> None:
    from moto.s3.exceptions import MissingBucket

    try:
        _s3().put_object(bucket, key, data)
    except MissingBucket:
        raise JobFailure(f"ClientError: the output bucket {bucket!r} does not exist: create it, or "
                         "fix OutputDataConfig.S3OutputPath") from None


def _layout(run: _Run, ml: Path) -> None:
    """The /opt/ml tree of a SageMaker training container, channels downloaded from S3."""
    job = run.job
    for sub in ("input/config", "input/data", "model", "output/data", "output/intermediate", "code"):
        (ml / sub).mkdir(parents=True, exist_ok=True)
    input_config = {}
    for channel in job.input_data_config or []:
        name = channel["ChannelName"]
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise JobFailure(f"ClientError: channel {name!r}: only S3DataSource channels run locally")
        bucket, prefix = _split_s3(source["S3Uri"])
        target = ml / "input" / "data" / name
        target.mkdir(parents=True, exist_ok=True)
        if source.get("S3DataType", "S3Prefix") == "ManifestFile":
            keys = _manifest_keys(bucket, prefix)
        else:
            keys = [(bucket, k, _relative(prefix, k)) for k in _s3_keys(bucket, prefix)]
        if not keys:
            role = job.role_arn
            raise JobFailure(
                f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}" given in input '
                f"data source. Please ensure that the bucket exists in the selected region "
                f"({run.region}), that objects exist under that S3 prefix, and that the role "
                f'"{role}" has "s3:ListBucket" permissions on bucket "{bucket}".')
        for key_bucket, key, relative in keys:
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_s3_get(key_bucket, key))
        input_config[name] = {k: v for k, v in channel.items() if k in {
            "ContentType", "CompressionType", "RecordWrapperType", "InputMode"}}
        input_config[name].setdefault("TrainingInputMode", (job.algorithm_specification or {}).get(
            "TrainingInputMode", "File"))
        input_config[name].setdefault("S3DistributionType", source.get("S3DataDistributionType",
                                                                          "FullyReplicated"))
    rc = job.resource_config or {}
    (ml / "input/config/hyperparameters.json").write_text(json.dumps(job.hyper_parameters or {}))
    (ml / "input/config/inputdataconfig.json").write_text(json.dumps(input_config))
    (ml / "input/config/resourceconfig.json").write_text(json.dumps({
        "current_host": "algo-1", "hosts": ["algo-1"], "current_instance_type":
            rc.get("InstanceType", "ml.m5.large"), "current_group_name": "homogeneousCluster",
        "network_interface_name": "eth0"}))


def _relative(prefix: str, key: str) -> str:
    """Where an object lands under the channel directory: its path below the prefix's folder."""
    if prefix.endswith("/") or not prefix:
        return key[len(prefix):]
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    if key.startswith(prefix + "/"):
        return key[len(prefix) + 1:]
    folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return key[len(folder):]


def _manifest_keys(bucket: str, key: str) -> list[tuple[str, str, str]]:
    manifest = json.loads(_s3_get(bucket, key))
    base = manifest[0]["prefix"]
    b, p = _split_s3(base)
    return [(b, p + rel, rel) for rel in manifest[1:]]


def _hp_value(raw: str) -> Any:
    """The training toolkit json-decodes each hyper-parameter string when it can."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def _cli_args(hps: dict[str, Any]) -> list[str]:
    args = []
    for name, value in hps.items():
        args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    return args


def _command(run: _Run, kind: str, ml: Path) -> tuple[list[str], dict, Path]:
    job = run.job
    raw_hps = job.hyper_parameters or {}
    hps = {k: _hp_value(v) for k, v in raw_hps.items() if not k.startswith("sagemaker_")}
    channels = sorted(c["ChannelName"] for c in job.input_data_config or [])
    user_channels = [c for c in channels if c not in {"code", "sm_drivers"}]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "TRAINING_JOB_NAME": job.training_job_name,
        "TRAINING_JOB_ARN": job.arn,
        "SM_MODEL_DIR": str(ml / "model"),
        "SM_INPUT_DIR": str(ml / "input"),
        "SM_INPUT_CONFIG_DIR": str(ml / "input/config"),
        "SM_OUTPUT_DIR": str(ml / "output"),
        "SM_OUTPUT_DATA_DIR": str(ml / "output/data"),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(ml / "output/intermediate"),
        "SM_CHANNELS": json.dumps(user_channels),
        "SM_HPS": json.dumps(hps),
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_NUM_NEURONS": "0",
        "SM_LOG_LEVEL": "20",
        "SM_RESOURCE_CONFIG": (ml / "input/config/resourceconfig.json").read_text(),
        "SM_INPUT_DATA_CONFIG": (ml / "input/config/inputdataconfig.json").read_text(),
        "SM_USER_ARGS": json.dumps(_cli_args(hps)),
        "SM_CURRENT_INSTANCE_TYPE": (job.resource_config or {}).get("InstanceType", "ml.m5.large"),
    })
    for name in user_channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(ml / "input/data" / name)
    for name, value in hps.items():
        env[f"SM_HP_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    if run.endpoint:
        env.update({"AWS_ENDPOINT_URL": run.endpoint, "AWS_DEFAULT_REGION": run.region,
                    "AWS_REGION": run.region})
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.update({k: str(v) for k, v in run.environment.items()})
    if kind == "xgboost-algorithm":
        command = [sys.executable, "-u", "-m", "labkit.local._sm_xgboost_algorithm"]
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[2])] + [p for p in [env.get("PYTHONPATH")] if p])
        return command, env, ml
    code = ml / "code"
    if "sagemaker_program" not in raw_hps:  # SDK v3 ModelTrainer: code channel + sourcecode.json
        drivers = ml / "input/data/sm_drivers"
        source = json.loads((drivers / "sourcecode.json").read_text() or "{}")
        code_channel = ml / "input/data/code"
        if code_channel.is_dir():
            shutil.copytree(code_channel, code, dirs_exist_ok=True)
        entry = source.get("entry_script")
        if source.get("command"):
            command = ["/bin/bash", "-c", source["command"]]
        elif entry:
            command = [sys.executable, "-u", entry] + _cli_args(hps)
        else:
            raise JobFailure("ClientError: SourceCode has neither entry_script nor command")
        env["SM_ENTRY_SCRIPT"] = entry or ""
        run.program = entry
    else:
        program = raw_hps.get("sagemaker_program", "")
        program = _hp_value(program) if program.startswith('"') else program
        submit = raw_hps.get("sagemaker_submit_directory", "")
        submit = _hp_value(submit) if submit.startswith('"') else submit
        if submit:
            bucket, key = _split_s3(submit)
            try:
                with tarfile.open(fileobj=io.BytesIO(_s3_get(bucket, key)), mode="r:*") as tar:
                    tar.extractall(code, filter="data")
            except tarfile.TarError as exc:
                raise JobFailure(f"ClientError: sagemaker_submit_directory {submit} is not a tar.gz "
                                 f"archive: {exc}") from None
        if not (code / program).is_file():
            raise JobFailure(f'AlgorithmError: ImportError: entry point "{program}" not found in '
                             f"the source directory ({submit or 'no sagemaker_submit_directory'})")
        command = [sys.executable, "-u", program] + _cli_args(hps)
        env["SM_MODULE_NAME"] = program.rsplit(".", 1)[0]
        env["SM_MODULE_DIR"] = submit
        run.program = program
    env["SM_TRAINING_ENV"] = json.dumps({
        "job_name": job.training_job_name, "hyperparameters": hps, "channel_input_dirs": {
            c: env[f"SM_CHANNEL_{c.upper()}"] for c in user_channels},
        "model_dir": env["SM_MODEL_DIR"], "output_data_dir": env["SM_OUTPUT_DATA_DIR"],
        "hosts": ["algo-1"], "current_host": "algo-1", "num_cpus": int(env["SM_NUM_CPUS"]),
        "num_gpus": 0, "user_entry_point": run.program})
    return command, env, code


def _run_process(run: _Run, command: list[str], env: dict, cwd: Path) -> int:
    """Run the container's process; stream its output into CloudWatch Logs and the metric regexes."""
    job = run.job
    max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds") or 86400
    if run.stop_requested:
        return -signal.SIGTERM
    run.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace",
                                   start_new_session=True)
    started = time.monotonic()

    def watchdog():
        while run.process.poll() is None:
            if time.monotonic() - started > float(max_runtime):
                run.timed_out = True
                run.stop_requested = True
                _kill(run)
                return
            time.sleep(0.2)

    threading.Thread(target=watchdog, daemon=True, name="labkit-train-watchdog").start()
    definitions = _metric_definitions(job)
    buffer: list[str] = []
    run.output_tail = []
    last_flush = time.monotonic()
    for line in run.process.stdout:
        line = line.rstrip("\n").replace("\t", "#011")  # CloudWatch shows a tab as #011
        run.output_tail = (run.output_tail + [line])[-200:]
        buffer.append(line)
        _match_metrics(run, definitions, line)
        if len(buffer) >= 100 or time.monotonic() - last_flush > 1.0:
            _write_log(run, buffer)
            buffer, last_flush = [], time.monotonic()
    rc = run.process.wait()
    _write_log(run, buffer)
    return rc


def _metric_definitions(job) -> list[tuple[str, re.Pattern]]:
    spec = getattr(job, "algorithm_specification", None) or {}  # processing jobs have none
    definitions = list(spec.get("MetricDefinitions") or [])
    image = spec.get("TrainingImage") or ""
    match = _IMAGE_RE.match(image)
    if match and match.group("repo") in XGBOOST_REPOS and "sagemaker_program" not in (
            getattr(job, "hyper_parameters", None) or {}):
        names = {d["Name"] for d in definitions}
        definitions += [d for d in BUILTIN_XGBOOST_METRIC_DEFINITIONS if d["Name"] not in names]
    compiled = []
    for definition in definitions:
        try:
            compiled.append((definition["Name"], re.compile(definition["Regex"])))
        except re.error:
            continue
    return compiled


def _match_metrics(run: _Run, definitions, line: str) -> None:
    for name, pattern in definitions:
        found = pattern.search(line)
        if not found or not found.groups():
            continue
        try:
            value = float(found.group(1))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            run.metric_series.setdefault(name, []).append((clock.now(), value))


def _open_log(run: _Run) -> None:
    from moto.logs.models import logs_backends

    backend = logs_backends[run.account][run.region]
    if run.log_group not in backend.groups:
        try:
            backend.create_log_group(run.log_group, {})
        except Exception:  # created concurrently by a parallel job
            pass
    backend.create_log_stream(run.log_group, run.log_stream)


def _write_log(run: _Run, lines: list[str]) -> None:
    if not lines:
        return
    from moto.logs.models import logs_backends

    stamp = int(clock.now().timestamp() * 1000)
    events = [{"timestamp": stamp, "message": line} for line in lines]
    try:
        logs_backends[run.account][run.region].put_log_events(run.log_group, run.log_stream, events)
    except Exception:
        log.exception("could not write training logs for %s", run.job.training_job_name)


def _failure_reason(run: _Run, ml: Path, rc: int, command: list[str]) -> str:
    failure = ml / "output" / "failure"
    if failure.is_file() and failure.read_text().strip():  # the container's own explanation
        text = failure.read_text().strip()
        return (text if text.startswith(("ClientError", "AlgorithmError")) else f"AlgorithmError: {text}")[:1024]
    message = _last_error_line(run.output_tail)
    shown = " ".join(Path(part).name if part == sys.executable else part for part in command)
    return (f"AlgorithmError: ExecuteUserScriptError:\nExitCode {rc}\nErrorMessage \"{message}\"\n"
            f"Command \"{shown}\", exit code: {rc}")[:1024]


def _last_error_line(lines: list[str]) -> str:
    """The exception line that ends the last traceback (else the last line of output)."""
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")),
                default=None)
    candidates = lines[start + 1:] if start is not None else lines
    for line in reversed(candidates):
        if line.strip() and not line.startswith((" ", "#011")):
            return line.strip()
    return lines[-1].strip() if lines else "the process exited without output"


def _tar_dir(directory: Path, extra: dict[str, Path] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
        for arcname, path in (extra or {}).items():
            tar.add(path, arcname=arcname)
    return buffer.getvalue()


def _artifact_exists(job) -> bool:
    uri = (job.model_artifacts or {}).get("S3ModelArtifacts")
    if not uri:
        return False
    bucket, key = _split_s3(uri)
    return bool(_s3_keys(bucket, key))


def _upload_outputs(run: _Run, ml: Path, kind: str) -> None:
    """model.tar.gz (+ code/ for script mode) and output.tar.gz, where AWS puts them."""
    job = run.job
    extra = {}
    program = run.program
    if kind == "script" and program and (ml / "code").is_dir():
        extra["code"] = ml / "code"
    bucket, key = _split_s3(job.model_artifacts["S3ModelArtifacts"])
    _s3_put(bucket, key, _tar_dir(ml / "model", extra))
    output_data = ml / "output" / "data"
    if any(output_data.iterdir()):
        _s3_put(bucket, key.rsplit("/", 1)[0] + "/output.tar.gz", _tar_dir(output_data))


def wait(account: str, region: str, name: str, timeout: float | None = None) -> bool:
    """Block until the job's run finished (for engines and tests in the same process)."""
    run = get_run(account, region, name)
    return True if run is None else run.done.wait(timeout)
