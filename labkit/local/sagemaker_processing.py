"""SageMaker Processing engine: ``create_processing_job`` really runs the script, under the
processing-container contract.

moto stores a processing job as Completed at once and runs nothing. Here (model-monitor analyzer
jobs stay with ``model_monitor``):

* each ``ProcessingInputs[].S3Input`` (S3Prefix or ManifestFile, File mode) is downloaded to its
  ``LocalPath`` (``/opt/ml/processing/...``) inside a scratch root; ``/opt/ml/config`` holds
  ``processingjobconfig.json`` and ``resourceconfig.json`` as the platform writes them;
* ``AppSpecification.ContainerEntrypoint`` + ``ContainerArguments`` run in a subprocess with this
  venv's Python (for the scikit-learn / XGBoost framework images), the job's ``Environment`` and
  the local AWS's endpoint; the literal ``/opt/ml`` paths a script uses are mapped to the scratch
  root (``labkit.local._processing_paths``);
* logs go to CloudWatch Logs ``/aws/sagemaker/ProcessingJobs`` (stream ``<job>/algo-1-<epoch>``);
* at the end each ``ProcessingOutputConfig.Outputs[].S3Output`` ``LocalPath`` is uploaded under
  its ``S3Uri``; InProgress → Completed, Failed (FailureReason: the script's error) or Stopped
  (``stop_processing_job``, ``StoppingCondition.MaxRuntimeInSeconds``).
The process runner, the log writer and the S3 helpers are the training engine's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from labkit.local import clock
from labkit.local import sagemaker_training as training
from labkit.local.model_monitor import ANALYZER

log = logging.getLogger("labkit.sagemaker_processing")

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
IMAGE_REPOS = training.SKLEARN_REPOS | training.XGBOOST_REPOS
_tls = threading.local()


_jobs: dict[tuple[str, str, str], training._Run] = {}
_lock = threading.Lock()


def install() -> None:
    from moto.sagemaker import models, responses

    from labkit.local.server import background, on_reset

    original_create = models.SageMakerModelBackend.create_processing_job
    original_response_create = responses.SageMakerResponse.create_processing_job
    original_describe = models.SageMakerModelBackend.describe_processing_job

    def create_processing_job(self, *args, **kwargs):
        from moto.sagemaker.exceptions import ResourceInUseException

        name = kwargs.get("processing_job_name")
        if name in self.processing_jobs:
            arn = models.FakeProcessingJob.arn_formatter(name, self.account_id, self.region_name)
            raise ResourceInUseException(
                message="Processing job names must be unique within an AWS account and region, "
                        f"and a processing job with this name already exists ({arn})")
        job = original_create(self, *args, **kwargs)
        image = (kwargs.get("app_specification") or {}).get("ImageUri", "")
        if ANALYZER in image:
            return job  # the model-monitor analyzer (model_monitor runs it)
        environment = dict(getattr(_tls, "environment", None) or {})
        now = clock.now()
        job.processing_job_status = "InProgress"
        job.creation_time = job.last_modified_time = now
        job.processing_start_time = None
        job.processing_end_time = None
        job.failure_reason = None
        job.exit_message = None
        job.environment = environment or None
        job.processing_resources = getattr(_tls, "resources", None)
        run = training._Run(job, self.account_id, self.region_name, environment=environment,
                            endpoint=getattr(_tls, "endpoint", None) or os.environ.get("AWS_ENDPOINT_URL"),
                            log_group=LOG_GROUP)
        with _lock:
            _jobs[(self.account_id, self.region_name, name)] = run
        background(execute, run)
        return job

    def response_create_processing_job(self):
        _tls.environment = self._get_param("Environment") or {}
        _tls.resources = self._get_param("ProcessingResources")
        host = self.headers.get("Host") if self.headers else None
        _tls.endpoint = f"http://{host}" if host else None
        try:
            return original_response_create(self)
        finally:
            _tls.environment = _tls.resources = _tls.endpoint = None

    def describe_processing_job(self, processing_job_name):
        response = original_describe(self, processing_job_name)
        response.pop("LabkitEnvironment", None)
        return response

    def stop_processing_job(self, processing_job_name):
        stop(self, processing_job_name)

    models.SageMakerModelBackend.create_processing_job = create_processing_job
    models.SageMakerModelBackend.describe_processing_job = describe_processing_job
    models.SageMakerModelBackend.stop_processing_job = stop_processing_job
    responses.SageMakerResponse.create_processing_job = response_create_processing_job
    on_reset(_reset)


def _reset() -> None:
    with _lock:
        runs = list(_jobs.values())
        _jobs.clear()
    for run in runs:
        run.stop_requested = True
        training._kill(run)


def get_run(account: str, region: str, name: str) -> training._Run | None:
    with _lock:
        return _jobs.get((account, region, name))


def stop(backend, name: str) -> None:
    """stop_processing_job: only an InProgress job can be stopped (AWS's ValidationException)."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeProcessingJob

    job = backend.processing_jobs.get(name)
    if job is None:
        arn = FakeProcessingJob.arn_formatter(name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Could not find processing job '{arn}'.")
    if job.processing_job_status != "InProgress":
        raise ValidationError(message="The request was rejected because the processing job is in "
                                      f"status {job.processing_job_status}.")
    job.processing_job_status = "Stopping"
    job.last_modified_time = clock.now()
    run = get_run(backend.account_id, backend.region_name, name)
    if run is not None:
        run.stop_requested = True
        training._kill(run)


# ---------------------------------------------------------------------------------------------
# running a job
# ---------------------------------------------------------------------------------------------
def execute(run: training._Run) -> str:
    """Run the job to a terminal state; returns that state. Never raises (failures are states)."""
    job = run.job
    root = Path(tempfile.mkdtemp(prefix=f"labkit-processing-{job.processing_job_name[:40]}-"))
    ml = root / "opt" / "ml"
    job.processing_start_time = clock.now()
    run.log_stream = f"{job.processing_job_name}/algo-1-{int(time.time())}"
    final, reason = "Failed", None
    try:
        training._open_log(run)
        _check_image(job)
        _download_inputs(run, ml)
        command, env = _command(run, ml)
        rc = training._run_process(run, command, env, ml)
        if run.stop_requested:
            final = "Stopped"
            if run.timed_out:
                reason = "Job stopped because max run time exceeded"  # AWS reports it as Stopped
        elif rc != 0:
            raise training.JobFailure(_failure_reason(run, ml, rc))
        else:
            _upload_outputs(job, ml)
            final = "Completed"
    except training.JobFailure as exc:
        final, reason = "Failed", str(exc)
    except Exception as exc:  # an engine bug: report it as the job's failure, never hang InProgress
        log.exception("processing job %s failed in the engine", job.processing_job_name)
        final = "Failed"
        reason = f"InternalServerError: labkit processing engine: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    end = clock.now()
    job.processing_end_time = job.last_modified_time = end
    if final == "Failed":
        job.failure_reason = (reason or "AlgorithmError: the processing job failed")[:1024]
    job.processing_job_status = final
    run.done.set()
    return final


def _check_image(job) -> None:
    image = (job.app_specification or {}).get("ImageUri") or ""
    match = training._IMAGE_RE.match(image)
    if not match or match.group("repo") not in IMAGE_REPOS:
        raise training.JobFailure(
            f"ClientError: labkit's local AWS cannot run the image {image!r}: only the SageMaker "
            "scikit-learn and XGBoost framework images run processing scripts locally (e.g. "
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3). "
            "Run this job in AWS mode.")
    if not (job.app_specification or {}).get("ContainerEntrypoint"):
        raise training.JobFailure(
            "ClientError: the framework image has no default entry point: give "
            "AppSpecification.ContainerEntrypoint (e.g. [\"python3\", "
            "\"/opt/ml/processing/input/code/preprocess.py\"])")


def _local(ml: Path, container_path: str) -> Path:
    if not container_path.startswith("/opt/ml/"):
        raise training.JobFailure(f"ClientError: LocalPath {container_path!r} must be under "
                                  "/opt/ml/processing")
    return ml / container_path[len("/opt/ml/"):]


def _download_inputs(run: training._Run, ml: Path) -> None:
    job = run.job
    for sub in ("config", "output", "processing"):
        (ml / sub).mkdir(parents=True, exist_ok=True)
    for item in job.processing_inputs or []:
        source = item.get("S3Input")
        if not source:
            raise training.JobFailure(f"ClientError: input {item.get('InputName')!r}: only S3Input "
                                      "inputs run locally")
        if source.get("S3InputMode", "File") != "File":
            raise training.JobFailure("ClientError: only S3InputMode File runs locally")
        target = _local(ml, source["LocalPath"])
        target.mkdir(parents=True, exist_ok=True)
        bucket, prefix = training._split_s3(source["S3Uri"])
        if source.get("S3DataType", "S3Prefix") == "ManifestFile":
            keys = training._manifest_keys(bucket, prefix)
        else:
            keys = [(bucket, k, training._relative(prefix, k)) for k in training._s3_keys(bucket, prefix)]
        if not keys:
            raise training.JobFailure(
                f"ClientError: Failed to download data. No S3 objects found under S3 URL "
                f"\"{source['S3Uri']}\" given in input data source. Please ensure that the bucket "
                f"exists in the selected region ({run.region}), that objects exist under that S3 "
                f"prefix, and that the role \"{job.role_arn}\" has \"s3:ListBucket\" permissions "
                f"on bucket \"{bucket}\".")
        for key_bucket, key, relative in keys:
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(training._s3_get(key_bucket, key))
    for output in (job.processing_output_config or {}).get("Outputs") or []:
        if output.get("S3Output"):
            _local(ml, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    resources = (getattr(job, "processing_resources", None) or {}).get("ClusterConfig") or {}
    (ml / "config/resourceconfig.json").write_text(json.dumps({
        "current_host": "algo-1", "hosts": ["algo-1"]}))
    (ml / "config/processingjobconfig.json").write_text(json.dumps({
        "ProcessingJobArn": job.arn, "ProcessingJobName": job.processing_job_name,
        "AppSpecification": job.app_specification, "ProcessingInputs": job.processing_inputs,
        "ProcessingOutputConfig": job.processing_output_config, "Environment": run.environment,
        "ProcessingResources": {"ClusterConfig": resources}, "RoleArn": job.role_arn,
        "StoppingCondition": job.stopping_condition}, default=str))


def _command(run: training._Run, ml: Path) -> tuple[list[str], dict]:
    spec = run.job.app_specification or {}
    entry = [str(part) for part in spec.get("ContainerEntrypoint") or []]
    arguments = [str(part) for part in spec.get("ContainerArguments") or []]
    if Path(entry[0]).name.startswith("python"):
        # the container's python runs the script with /opt/ml mapped to the scratch tree
        command = [sys.executable, "-u", "-m", "labkit.local._processing_paths"] + entry[1:] + arguments
    else:
        command = [str(_local(ml, part)) if part.startswith("/opt/ml/") else part
                   for part in entry + arguments]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.update({"PYTHONUNBUFFERED": "1", "LABKIT_OPT_ML": str(ml),
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2])]
                                               + [p for p in [env.get("PYTHONPATH")] if p])})
    if run.endpoint:
        env.update({"AWS_ENDPOINT_URL": run.endpoint, "AWS_DEFAULT_REGION": run.region,
                    "AWS_REGION": run.region})
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.update({k: str(v) for k, v in run.environment.items()})
    return command, env


def _failure_reason(run: training._Run, ml: Path, rc: int) -> str:
    message = ml / "output" / "message"  # a container's own explanation, as AWS reads it
    if message.is_file() and message.read_text().strip():
        return f"AlgorithmError: {message.read_text().strip()}"
    return (f"AlgorithmError: See job logs for more information. {training._last_error_line(run.output_tail)}"
            f" (exit code {rc})")


def _upload_outputs(job, ml: Path) -> None:
    for output in (job.processing_output_config or {}).get("Outputs") or []:
        target = output.get("S3Output")
        if not target:
            continue
        local = _local(ml, target["LocalPath"])
        bucket, prefix = training._split_s3(target["S3Uri"])
        prefix = prefix.rstrip("/")
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            relative = path.relative_to(local).as_posix()
            training._s3_put(bucket, f"{prefix}/{relative}" if prefix else relative, path.read_bytes())
