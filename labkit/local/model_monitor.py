"""SageMaker Model Monitor engine: data-quality baselines, monitoring schedules and executions.

The analyzer container (``sagemaker-model-monitor-analyzer``) cannot run here, and moto has no
monitoring-schedule API at all (every call is an HTTP 500). This engine:

- runs processing jobs whose image is the model-monitor analyzer (what the SDK's
  ``DefaultModelMonitor.suggest_baseline`` creates): reads the baseline CSV / JSON lines from S3 and
  writes ``statistics.json`` + ``constraints.json`` in the documented schema;
- adds create / describe / list / update / start / stop / delete monitoring schedule and
  list_monitoring_executions to moto's SageMaker API;
- runs executions when the virtual clock passes the schedule's next hour (``cron(0 * ? * * *)``,
  every N hours, daily) or at once for a one-time ``ScheduleExpression: "NOW"`` schedule: reads the
  endpoint's data capture for the analysis window, compares it with the baseline and writes
  ``statistics.json`` + ``constraint_violations.json`` (baseline_drift_check, missing_column_check,
  extra_column_check, completeness_check, data_type_check) plus the CloudWatch metrics
  ``feature_baseline_drift_<name>`` / ``feature_non_null_<name>``.

Drift distance: the Kolmogorov–Smirnov (L-infinity) distance between the baseline and the
current empirical distributions (numeric features; the baseline keeps a sample sketch), or the
L-infinity distance between category frequencies (string features).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from labkit.local import clock
from labkit.local.sagemaker_hosting import s3_get, s3_list, s3_put

log = logging.getLogger("labkit.model_monitor")
ANALYZER = "sagemaker-model-monitor-analyzer"
SKETCH_SIZE = 2048
_lock = threading.RLock()
# (account, region) -> {name: schedule dict}
_schedules: dict[tuple[str, str], dict[str, dict]] = {}
_pending: dict[str, Any] = {}
_request = threading.local()  # the Environment of the create_processing_job being handled


# --------------------------------------------------------------------------------------------
# Statistics and constraints (the documented schema)
# --------------------------------------------------------------------------------------------
def _as_number(value: str):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _infer(values: list) -> str:
    present = [v for v in values if v not in (None, "")]
    if not present:
        return "Unknown"
    numbers = [_as_number(v) if not isinstance(v, (int, float)) else float(v) for v in present]
    if sum(n is not None for n in numbers) < 0.95 * len(present):  # mostly text → String
        return "String"
    if all(n is None or float(n).is_integer() for n in numbers):
        return "Integral"
    return "Fractional"


def _sketch(numbers: list[float]) -> list[float]:
    """An evenly spaced sample of the sorted values (stands in for the KLL sketch)."""
    ordered = sorted(numbers)
    if len(ordered) <= SKETCH_SIZE:
        return ordered
    step = (len(ordered) - 1) / (SKETCH_SIZE - 1)
    return [ordered[round(i * step)] for i in range(SKETCH_SIZE)]


def _numeric_column(values: list):
    """The column as floats (missing → NaN), or None when any present value is not a number."""
    import numpy as np

    try:
        return np.array(["nan" if v in (None, "") else v for v in values], dtype=float)
    except (TypeError, ValueError):
        return None


def feature_statistics(name: str, values: list, inferred: str | None = None) -> dict:
    """One entry of statistics.json ``features[]``."""
    import numpy as np

    array = _numeric_column(values) if inferred in (None, "Integral", "Fractional") else None
    present = [v for v in values if v not in (None, "")] if array is None else None
    if array is not None:
        finite = array[~np.isnan(array)]
        if inferred is None:
            inferred = "Unknown" if finite.size == 0 else (
                "Integral" if bool(np.all(np.mod(finite, 1) == 0)) else "Fractional")
    else:
        inferred = inferred if inferred == "String" else _infer(values)
    if array is not None and inferred in ("Integral", "Fractional", "Unknown"):
        numbers = finite
        common = {"num_present": int(numbers.size), "num_missing": int(array.size - numbers.size)}
        count = int(numbers.size)
        total = float(numbers.sum()) if count else 0.0
        mean = total / count if count else 0.0
        std = float(numbers.std()) if count else 0.0
        low, high = (float(numbers.min()), float(numbers.max())) if count else (0.0, 0.0)
        width = (high - low) / 10 or 1.0
        edges = [low + i * width for i in range(11)]
        counts = np.histogram(numbers, bins=edges)[0] if count else np.zeros(10)
        buckets = [{"lower_bound": edges[i], "upper_bound": edges[i + 1], "count": float(counts[i])}
                   for i in range(10)]
        return {"name": name, "inferred_type": inferred, "numerical_statistics": {
            "common": common, "mean": mean, "sum": total, "std_dev": std, "min": low, "max": high,
            "distribution": {"kll": {"buckets": buckets, "sketch": {
                "parameters": {"c": 0.64, "k": SKETCH_SIZE}, "data": [_sketch(numbers.tolist())]}}}}}
    present = [v for v in values if v not in (None, "")]
    common = {"num_present": len(present), "num_missing": len(values) - len(present)}
    counts: dict[str, int] = {}
    for v in present:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return {"name": name, "inferred_type": inferred, "string_statistics": {
        "common": common, "distinct_count": float(len(counts)),
        "distribution": {"categorical": {"buckets": [{"value": k, "count": c} for k, c in
                                                      sorted(counts.items(), key=lambda kv: -kv[1])]}}}}


def statistics(columns: list[str], rows: list[list], types: dict[str, str] | None = None) -> dict:
    features = []
    for i, name in enumerate(columns):
        values = [row[i] if i < len(row) else None for row in rows]
        features.append(feature_statistics(name, values, (types or {}).get(name)))
    return {"version": 0.0, "dataset": {"item_count": len(rows)}, "features": features}


def constraints(stats: dict) -> dict:
    features = []
    for feature in stats["features"]:
        numeric = "numerical_statistics" in feature
        body = feature["numerical_statistics" if numeric else "string_statistics"]
        total = body["common"]["num_present"] + body["common"]["num_missing"]
        entry = {"name": feature["name"], "inferred_type": feature["inferred_type"],
                 "completeness": body["common"]["num_present"] / total if total else 0.0}
        if numeric:
            entry["num_constraints"] = {"is_non_negative": body["min"] >= 0}
        else:
            buckets = body["distribution"]["categorical"]["buckets"]
            if len(buckets) <= 20:
                entry["string_constraints"] = {"domains": [b["value"] for b in buckets]}
        features.append(entry)
    return {"version": 0.0, "features": features, "monitoring_config": {
        "evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
        "datatype_check_threshold": 1.0, "domain_content_threshold": 1.0,
        "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                     "comparison_method": "Robust"}}}


def _ecdf_distance(a: list[float], b: list[float]) -> float:
    """Kolmogorov–Smirnov distance: max |F_a(x) − F_b(x)| over all sample points."""
    import bisect

    if not a or not b:
        return 0.0
    a, b = sorted(a), sorted(b)
    worst = 0.0
    for x in set(a) | set(b):
        fa = bisect.bisect_right(a, x) / len(a)
        fb = bisect.bisect_right(b, x) / len(b)
        worst = max(worst, abs(fa - fb))
    return worst


def distance(baseline_feature: dict, current_feature: dict) -> float | None:
    if "numerical_statistics" in baseline_feature and "numerical_statistics" in current_feature:
        a = baseline_feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
        b = current_feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
        return _ecdf_distance([x for part in a for x in part], [x for part in b for x in part])
    if "string_statistics" in baseline_feature and "string_statistics" in current_feature:
        def freq(feature):
            buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
            total = sum(b["count"] for b in buckets) or 1
            return {b["value"]: b["count"] / total for b in buckets}
        fa, fb = freq(baseline_feature), freq(current_feature)
        return max((abs(fa.get(k, 0) - fb.get(k, 0)) for k in set(fa) | set(fb)), default=0.0)
    return None


def violations(baseline_stats: dict, baseline_constraints: dict, current: dict,
               current_columns: int) -> tuple[list[dict], dict[str, float]]:
    """constraint_violations.json ``violations[]`` and the drift distance per feature."""
    config = baseline_constraints.get("monitoring_config", {})
    dist_cfg = config.get("distribution_constraints", {})
    threshold = float(dist_cfg.get("comparison_threshold", 0.1))
    compare = dist_cfg.get("perform_comparison", "Enabled") == "Enabled"
    found: list[dict] = []
    expected = baseline_constraints.get("features", [])
    if current_columns < len(expected):
        found.append({"feature_name": "", "constraint_check_type": "missing_column_check",
                      "description": f"There are missing columns in current dataset. Number of columns "
                                     f"in current dataset: {current_columns}, Number of columns in "
                                     f"baseline constraints: {len(expected)}"})
    elif current_columns > len(expected):
        found.append({"feature_name": "", "constraint_check_type": "extra_column_check",
                      "description": f"There are extra columns in current dataset. Number of columns "
                                     f"in current dataset: {current_columns}, Number of columns in "
                                     f"baseline constraints: {len(expected)}"})
    base_by_name = {f["name"]: f for f in baseline_stats.get("features", [])}
    cur_by_name = {f["name"]: f for f in current.get("features", [])}
    distances: dict[str, float] = {}
    for constraint in expected:
        name = constraint["name"]
        feature = cur_by_name.get(name)
        if feature is None:
            continue
        body = feature.get("numerical_statistics") or feature.get("string_statistics")
        total = body["common"]["num_present"] + body["common"]["num_missing"]
        completeness = body["common"]["num_present"] / total if total else 0.0
        if completeness < float(constraint.get("completeness", 0)) - 1e-9:
            found.append({"feature_name": name, "constraint_check_type": "completeness_check",
                          "description": f"Data completeness is {completeness * 100:.1f}% but the baseline "
                                         f"expects at least {float(constraint['completeness']) * 100:.1f}%"})
        expected_type = constraint.get("inferred_type")
        if expected_type in ("Integral", "Fractional") and feature["inferred_type"] == "String":
            found.append({"feature_name": name, "constraint_check_type": "data_type_check",
                          "description": f"Data type match requirement is not met. Expected data type: "
                                         f"{expected_type}, Expected match: 100.0%. Observed: the data "
                                         f"is String"})
        if compare and name in base_by_name:
            d = distance(base_by_name[name], feature)
            if d is not None:
                distances[name] = d
                if d > threshold:
                    found.append({"feature_name": name, "constraint_check_type": "baseline_drift_check",
                                  "description": f"Baseline drift distance: {d:.4f} exceeds threshold: "
                                                 f"{threshold}"})
    return found, distances


# --------------------------------------------------------------------------------------------
# Reading data sets
# --------------------------------------------------------------------------------------------
def _parse_csv(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text)) if row]


def read_baseline(uri: str, dataset_format: dict) -> tuple[list[str], list[list]]:
    """All objects under ``uri`` as one table; columns from the header or ``_c0``, ``_c1``…"""
    objects = [u for u in (s3_list(uri) if not uri.endswith(".csv") and not uri.endswith(".json")
                           and not uri.endswith(".jsonl") else [uri]) if not u.endswith("/")]
    if not objects:
        raise FileNotFoundError(f"No objects found under baseline dataset {uri}")
    columns: list[str] = []
    rows: list[list] = []
    if "json" in dataset_format:
        for u in objects:
            for line in s3_get(u).decode().splitlines():
                if line.strip():
                    record = json.loads(line)
                    if not columns:
                        columns = list(record)
                    rows.append([record.get(c) for c in columns])
        return columns, rows
    header = bool((dataset_format.get("csv") or {}).get("header"))
    for u in objects:
        parsed = _parse_csv(s3_get(u).decode("utf-8"))
        if header and parsed:
            columns = columns or parsed[0]
            parsed = parsed[1:]
        rows.extend(parsed)
    if not columns:
        columns = [f"_c{i}" for i in range(max((len(r) for r in rows), default=0))]
    return columns, rows


def read_capture(endpoint_uri: str, start: datetime, end: datetime) -> list[list]:
    """Rows of the captured endpoint INPUT with inferenceTime in [start, end)."""
    import base64

    rows: list[list] = []
    for uri in s3_list(endpoint_uri):
        if not uri.endswith(".jsonl"):
            continue
        for line in s3_get(uri).decode("utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            when = datetime.strptime(record["eventMetadata"]["inferenceTime"][:19], "%Y-%m-%dT%H:%M:%S") \
                .replace(tzinfo=timezone.utc)
            if not start <= when < end:
                continue
            payload = record.get("captureData", {}).get("endpointInput")
            if not payload:
                continue
            data = payload["data"]
            if payload.get("encoding") == "BASE64":
                data = base64.b64decode(data).decode("utf-8", "replace")
            if payload.get("encoding") == "JSON":
                value = json.loads(data)
                value = value.get("instances", value) if isinstance(value, dict) else value
                rows.extend(value if value and isinstance(value[0], list) else [value])
            else:
                rows.extend(_parse_csv(data))
    return rows


# --------------------------------------------------------------------------------------------
# Baseline processing jobs
# --------------------------------------------------------------------------------------------
def _run_baseline(job) -> None:
    try:
        env = getattr(job, "_labkit_environment", None) or {}
        dataset_format = json.loads(env.get("dataset_format", '{"csv": {"header": true}}'))
        source = env.get("dataset_source", "")
        inputs = job.processing_inputs or []
        chosen = next((i for i in inputs if i.get("S3Input", {}).get("LocalPath") == source), None) \
            or (inputs[0] if inputs else None)
        if chosen is None:
            raise ValueError("the baseline job has no input")
        outputs = (job.processing_output_config or {}).get("Outputs", [])
        out_path = env.get("output_path", "")
        target = next((o for o in outputs if o.get("S3Output", {}).get("LocalPath") == out_path), None) \
            or (outputs[0] if outputs else None)
        if target is None:
            raise ValueError("the baseline job has no output")
        columns, rows = read_baseline(chosen["S3Input"]["S3Uri"], dataset_format)
        stats = statistics(columns, rows)
        destination = target["S3Output"]["S3Uri"].rstrip("/")
        s3_put(f"{destination}/statistics.json", json.dumps(stats, indent=2).encode())
        s3_put(f"{destination}/constraints.json", json.dumps(constraints(stats), indent=2).encode())
        job.processing_job_status = "Completed"
        job.exit_message = "Completed: Job completed successfully with no violations."
    except Exception as exc:
        job.processing_job_status = "Failed"
        job.failure_reason = f"AlgorithmError: {type(exc).__name__}: {exc}"[:1024]
    job.processing_end_time = job.last_modified_time = clock.now()


def _patch_processing() -> None:
    from moto.sagemaker.models import SageMakerModelBackend

    from labkit.local.server import background

    original = SageMakerModelBackend.create_processing_job
    original_describe = SageMakerModelBackend.describe_processing_job

    def create_processing_job(self, *args, **kwargs):
        job = original(self, *args, **kwargs)
        image = (kwargs.get("app_specification") or {}).get("ImageUri", "")
        if ANALYZER in image:
            job._labkit_environment = dict(getattr(_request, "environment", None) or {})
            job.processing_job_status = "InProgress"
            job.creation_time = job.last_modified_time = job.processing_start_time = clock.now()
            job.processing_end_time = None
            _pending[job.arn] = background(_run_baseline, job)
        return job

    def describe_processing_job(self, processing_job_name):
        job = self.processing_jobs.get(processing_job_name)
        if job is not None and job.arn in _pending:
            try:
                _pending[job.arn].result(timeout=10)
            except Exception:
                pass
        response = original_describe(self, processing_job_name)
        if job is not None and getattr(job, "_labkit_environment", None):
            response["Environment"] = job._labkit_environment
        return response

    SageMakerModelBackend.create_processing_job = create_processing_job
    SageMakerModelBackend.describe_processing_job = describe_processing_job

    # moto drops the request's Environment (the analyzer's dataset_format, dataset_source, …):
    # hand it to the backend call through a thread-local and return it from describe, as AWS does.
    from moto.sagemaker.responses import SageMakerResponse

    original_response = SageMakerResponse.create_processing_job

    def response_create(self):
        _request.environment = self._get_param("Environment") or {}
        try:
            return original_response(self)
        finally:
            _request.environment = None

    SageMakerResponse.create_processing_job = response_create


# --------------------------------------------------------------------------------------------
# Monitoring schedules
# --------------------------------------------------------------------------------------------
_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+)(?: (\S+))?\)$")
_OFFSET = re.compile(r"^-PT(?:(\d+)H)?(?:(\d+)M)?$")


def _every_hours(expression: str) -> tuple[int, int] | None:
    """(period hours, first hour) of an hourly / every-N-hours / daily cron, None when invalid."""
    match = _CRON.match(expression or "")
    if not match or match.group(1) != "0":
        return None
    hour = match.group(2)
    if hour == "*":
        return 1, 0
    if hour.startswith("*/") and hour[2:].isdigit():
        return int(hour[2:]), 0
    if hour.isdigit() and 0 <= int(hour) < 24:
        return 24, int(hour)
    return None


def _offset(value: str) -> timedelta:
    match = _OFFSET.match(value or "")
    if not match:
        raise ValueError(value)
    return timedelta(hours=int(match.group(1) or 0), minutes=int(match.group(2) or 0))


def _next_due(after: datetime, period: int, first: int) -> datetime:
    start = after.replace(minute=0, second=0, microsecond=0)
    candidate = start + timedelta(hours=1)
    while (candidate.hour - first) % period != 0:
        candidate += timedelta(hours=1)
    return candidate


def _arn(kind: str, name: str, account: str, region: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def _job_definition(backend, config: dict) -> dict:
    """The monitoring job as one dict, from an inline definition or a data-quality job definition."""
    if config.get("MonitoringJobDefinition"):
        return config["MonitoringJobDefinition"]
    name = config.get("MonitoringJobDefinitionName")
    definition = backend.data_quality_job_definitions.get(name) if name else None
    if definition is None:
        from moto.sagemaker.exceptions import ValidationError

        raise ValidationError(message=f"Could not find job definition \"{name}\".")
    job_input = definition.data_quality_job_input or {}
    return {"BaselineConfig": definition.data_quality_baseline_config,
            "MonitoringInputs": [{"EndpointInput": job_input.get("EndpointInput", {})}],
            "MonitoringOutputConfig": definition.data_quality_job_output_config,
            "MonitoringAppSpecification": definition.data_quality_app_specification,
            "Environment": definition.environment,
            "RoleArn": definition.role_arn}


def _validate(backend, config: dict) -> dict:
    from moto.sagemaker.exceptions import ValidationError

    definition = _job_definition(backend, config)
    inputs = definition.get("MonitoringInputs") or []
    endpoint = (inputs[0].get("EndpointInput") or {}).get("EndpointName") if inputs else None
    if not endpoint:
        raise ValidationError(message="MonitoringInputs must name an EndpointInput.EndpointName")
    if endpoint not in backend.endpoints:
        raise ValidationError(message=f"Could not find endpoint \"{endpoint}\".")
    if not (backend.endpoints[endpoint].data_capture_config or {}).get("EnableCapture"):
        raise ValidationError(message=f"Endpoint {endpoint} does not have data capture enabled; "
                                      "enable DataCaptureConfig before scheduling monitoring")
    expression = (config.get("ScheduleConfig") or {}).get("ScheduleExpression", "")
    if expression == "NOW":
        schedule = config["ScheduleConfig"]
        try:
            _offset(schedule.get("DataAnalysisStartTime", ""))
            _offset(schedule.get("DataAnalysisEndTime", ""))
        except ValueError:
            raise ValidationError(message="A one-time schedule (NOW) needs DataAnalysisStartTime and "
                                          "DataAnalysisEndTime as negative ISO 8601 offsets, e.g. "
                                          "-PT1H and -PT0H") from None
    elif _every_hours(expression) is None:
        raise ValidationError(message=f"Invalid ScheduleExpression {expression!r}: use an hourly "
                                      "cron such as cron(0 * ? * * *), every N hours cron(0 */N ? * * *) "
                                      "or daily cron(0 H ? * * *)")
    return definition


def _summary(schedule: dict) -> dict:
    return {k: schedule[k] for k in ("MonitoringScheduleName", "MonitoringScheduleArn", "CreationTime",
                                     "LastModifiedTime", "MonitoringScheduleStatus", "EndpointName",
                                     "MonitoringType") if schedule.get(k) is not None} | (
        {"MonitoringJobDefinitionName": schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]}
        if schedule["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName") else {})


def run_execution(backend, schedule: dict, scheduled: datetime, start: datetime, end: datetime) -> dict:
    """One monitoring execution: capture in [start, end) vs the baseline → files, metrics, summary."""
    name = schedule["MonitoringScheduleName"]
    definition = _job_definition(backend, schedule["MonitoringScheduleConfig"])
    endpoint = schedule["EndpointName"]
    job_name = f"model-monitoring-{scheduled.strftime('%Y%m%d%H%M')}-{uuid.uuid4().hex[:8]}"
    execution = {"MonitoringScheduleName": name, "ScheduledTime": scheduled, "CreationTime": clock.now(),
                 "LastModifiedTime": clock.now(), "EndpointName": endpoint,
                 "MonitoringType": schedule.get("MonitoringType", "DataQuality"),
                 "ProcessingJobArn": _arn("processing-job", job_name, backend.account_id,
                                          backend.region_name)}
    if schedule["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName"):
        execution["MonitoringJobDefinitionName"] = \
            schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]
    out_cfg = (definition.get("MonitoringOutputConfig") or {}).get("MonitoringOutputs") or [{}]
    out_uri = (out_cfg[0].get("S3Output") or {}).get("S3Uri", "")
    destination = f"{out_uri.rstrip('/')}/{endpoint}/{name}/{scheduled.strftime('%Y/%m/%d/%H')}"
    try:
        endpoint_obj = backend.endpoints.get(endpoint)
        if endpoint_obj is None:
            raise RuntimeError(f"Endpoint {endpoint} not found")
        capture = endpoint_obj.data_capture_config or {}
        rows = read_capture(f"{capture['DestinationS3Uri'].rstrip('/')}/{endpoint}/", start, end)
        if not rows:
            execution["MonitoringExecutionStatus"] = "Failed"
            execution["FailureReason"] = ("Job inputs had no data: no captured records in the analysis "
                                          f"window {start:%Y-%m-%dT%H:%M}Z – {end:%Y-%m-%dT%H:%M}Z")
        else:
            baseline = definition.get("BaselineConfig") or {}
            base_stats = json.loads(s3_get(baseline["StatisticsResource"]["S3Uri"])) \
                if baseline.get("StatisticsResource") else None
            base_cons = json.loads(s3_get(baseline["ConstraintsResource"]["S3Uri"])) \
                if baseline.get("ConstraintsResource") else None
            width = max(len(r) for r in rows)
            names = [f["name"] for f in (base_cons or base_stats or {}).get("features", [])]
            columns = [names[i] if i < len(names) else f"_c{i}" for i in range(width)]
            types = {f["name"]: f["inferred_type"] for f in (base_cons or {}).get("features", [])}
            current = statistics(columns, rows, {c: t for c, t in types.items()
                                                 if t in ("Integral", "Fractional")})
            s3_put(f"{destination}/statistics.json", json.dumps(current, indent=2).encode())
            found, distances = [], {}
            if base_cons is not None:
                found, distances = violations(base_stats or {"features": []}, base_cons, current, width)
                s3_put(f"{destination}/constraint_violations.json",
                       json.dumps({"violations": found}, indent=2).encode())
            env = definition.get("Environment") or {}
            if env.get("publish_cloudwatch_metrics", "Enabled") != "Disabled":
                _publish(backend, endpoint, name, current, distances, end)
            execution["MonitoringExecutionStatus"] = "CompletedWithViolations" if found else "Completed"
    except Exception as exc:
        execution["MonitoringExecutionStatus"] = "Failed"
        execution["FailureReason"] = f"{type(exc).__name__}: {exc}"[:1024]
    execution["LastModifiedTime"] = clock.now()
    _record_processing_job(backend, job_name, definition, destination, execution)
    schedule.setdefault("_executions", []).append(execution)
    schedule["LastMonitoringExecutionSummary"] = execution
    return execution


def _record_processing_job(backend, job_name, definition, destination, execution) -> None:
    """Executions are processing jobs on AWS: describe_processing_job must find them (the SDK's
    latest_monitoring_constraint_violations reads the output S3 URI there)."""
    from moto.sagemaker.models import FakeProcessingJob

    app = definition.get("MonitoringAppSpecification") or definition.get("DataQualityAppSpecification") or {}
    job = FakeProcessingJob(
        app_specification={"ImageUri": app.get("ImageUri", ANALYZER)}, experiment_config=None,
        network_config=None,
        processing_inputs=[{"InputName": "input_1", "S3Input": {"S3Uri": "", "LocalPath":
                            "/opt/ml/processing/input/endpoint", "S3DataType": "S3Prefix",
                            "S3InputMode": "File"}}],
        processing_job_name=job_name,
        processing_output_config={"Outputs": [{"OutputName": "result", "S3Output": {
            "S3Uri": destination, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
        account_id=backend.account_id, region_name=backend.region_name,
        role_arn=definition.get("RoleArn") or "arn:aws:iam::123456789012:role/monitor", tags=[],
        stopping_condition={"MaxRuntimeInSeconds": 3600})
    failed = execution["MonitoringExecutionStatus"] == "Failed"
    job.processing_job_status = "Failed" if failed else "Completed"
    if failed:
        job.failure_reason = execution.get("FailureReason")
    else:
        job.exit_message = (
            "CompletedWithViolations: Job completed successfully with violations."
            if execution["MonitoringExecutionStatus"] == "CompletedWithViolations"
            else "Completed: Job completed successfully with no violations.")
    job.creation_time = job.last_modified_time = job.processing_end_time = clock.now()
    backend.processing_jobs[job_name] = job
    execution["ProcessingJobArn"] = job.arn


def _publish(backend, endpoint, schedule_name, current, distances, when) -> None:
    try:
        from moto.cloudwatch.models import cloudwatch_backends

        cw = cloudwatch_backends[backend.account_id][backend.region_name]
        dims = [{"Name": "Endpoint", "Value": endpoint},
                {"Name": "MonitoringSchedule", "Value": schedule_name}]
        stamp = when.astimezone(timezone.utc).replace(tzinfo=None)
        data = []
        for feature in current["features"]:
            body = feature.get("numerical_statistics") or feature.get("string_statistics")
            total = body["common"]["num_present"] + body["common"]["num_missing"]
            data.append({"MetricName": f"feature_non_null_{feature['name']}",
                         "Value": body["common"]["num_present"] / total if total else 0.0})
            if feature["name"] in distances:
                data.append({"MetricName": f"feature_baseline_drift_{feature['name']}",
                             "Value": float(distances[feature["name"]])})
        for item in data:
            item.update({"Dimensions": dims, "Timestamp": stamp, "Unit": "None"})
        for i in range(0, len(data), 20):
            cw.put_metric_data("/aws/sagemaker/Endpoints/data-metric", data[i:i + 20])
    except Exception as exc:
        log.warning("monitoring metrics not published: %s", exc)


def _tick(now: datetime) -> None:
    """Run every scheduled execution that became due on the virtual clock."""
    from moto.sagemaker.models import sagemaker_backends

    with _lock:
        for (account, region), schedules in list(_schedules.items()):
            backend = sagemaker_backends[account][region]
            for schedule in list(schedules.values()):
                if schedule["MonitoringScheduleStatus"] != "Scheduled" or "_next" not in schedule:
                    continue
                while schedule["_next"] <= now:
                    due = schedule["_next"]
                    period = schedule["_period"]
                    run_execution(backend, schedule, due, due - timedelta(hours=period), due)
                    schedule["_next"] = _next_due(due, period, schedule["_first"])


def _activate(backend, schedule: dict) -> None:
    expression = schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
    schedule["MonitoringScheduleStatus"] = "Scheduled"
    if expression == "NOW":
        schedule.pop("_next", None)
        config = schedule["MonitoringScheduleConfig"]["ScheduleConfig"]
        now = clock.now()
        run_execution(backend, schedule, now, now - _offset(config["DataAnalysisStartTime"]),
                      now - _offset(config["DataAnalysisEndTime"]))
        return
    period, first = _every_hours(expression)
    schedule["_period"], schedule["_first"] = period, first
    schedule["_next"] = _next_due(clock.now(), period, first)


def _public(schedule: dict) -> dict:
    return {k: v for k, v in schedule.items() if not k.startswith("_")}


def _patch_api() -> None:
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    def store(self):
        return _schedules.setdefault((self.current_account, self.region), {})

    def get(self, name):
        schedule = store(self).get(name)
        if schedule is None:
            from moto.sagemaker.exceptions import ResourceNotFound

            arn = _arn("monitoring-schedule", name or "", self.current_account, self.region)
            raise ResourceNotFound(message=f"Monitoring Schedule '{arn}' does not exist.")
        return schedule

    def create_monitoring_schedule(self):
        name = self._get_param("MonitoringScheduleName")
        config = self._get_param("MonitoringScheduleConfig") or {}
        backend = self.sagemaker_backend
        with _lock:
            if name in store(self):
                raise ResourceInUseException(message=f"Monitoring Schedule with name {name} already exists")
            definition = _validate(backend, config)
            endpoint = definition["MonitoringInputs"][0]["EndpointInput"]["EndpointName"]
            mtype = config.get("MonitoringType", "DataQuality")
            for other in store(self).values():
                if other["EndpointName"] == endpoint and other.get("MonitoringType") == mtype:
                    raise ValidationError(message=f"Endpoint {endpoint} already has a {mtype} monitoring "
                                                  f"schedule ({other['MonitoringScheduleName']}); an "
                                                  "endpoint can have one schedule per monitoring type")
            now = clock.now()
            arn = _arn("monitoring-schedule", name, self.current_account, self.region)
            schedule = {"MonitoringScheduleArn": arn,
                        "MonitoringScheduleName": name, "MonitoringScheduleStatus": "Pending",
                        "MonitoringType": mtype, "CreationTime": now, "LastModifiedTime": now,
                        "MonitoringScheduleConfig": config, "EndpointName": endpoint}
            store(self)[name] = schedule
            _activate(backend, schedule)
        return ActionResult({"MonitoringScheduleArn": schedule["MonitoringScheduleArn"]})

    def describe_monitoring_schedule(self):
        with _lock:
            return ActionResult(_public(get(self, self._get_param("MonitoringScheduleName"))))

    def list_monitoring_schedules(self):
        endpoint = self._get_param("EndpointName")
        contains = (self._get_param("NameContains") or "").lower()
        status = self._get_param("StatusEquals")
        with _lock:
            items = [_summary(s) for s in store(self).values()
                     if (not endpoint or s["EndpointName"] == endpoint)
                     and contains in s["MonitoringScheduleName"].lower()
                     and (not status or s["MonitoringScheduleStatus"] == status)]
        reverse = (self._get_param("SortOrder") or "Descending") == "Descending"
        key = {"Name": "MonitoringScheduleName", "Status": "MonitoringScheduleStatus"}.get(
            self._get_param("SortBy") or "CreationTime", "CreationTime")
        items.sort(key=lambda s: s[key], reverse=reverse)
        return ActionResult({"MonitoringScheduleSummaries": items})

    def update_monitoring_schedule(self):
        name = self._get_param("MonitoringScheduleName")
        config = self._get_param("MonitoringScheduleConfig") or {}
        with _lock:
            schedule = get(self, name)
            _validate(self.sagemaker_backend, config)
            schedule["MonitoringScheduleConfig"] = config
            schedule["LastModifiedTime"] = clock.now()
            if schedule["MonitoringScheduleStatus"] != "Stopped":
                _activate(self.sagemaker_backend, schedule)
        return ActionResult({"MonitoringScheduleArn": schedule["MonitoringScheduleArn"]})

    def stop_monitoring_schedule(self):
        with _lock:
            schedule = get(self, self._get_param("MonitoringScheduleName"))
            schedule["MonitoringScheduleStatus"] = "Stopped"
            schedule["LastModifiedTime"] = clock.now()
        return EmptyResult()

    def start_monitoring_schedule(self):
        with _lock:
            schedule = get(self, self._get_param("MonitoringScheduleName"))
            if schedule["MonitoringScheduleStatus"] == "Stopped":
                schedule["LastModifiedTime"] = clock.now()
                expression = schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
                if expression == "NOW":
                    schedule["MonitoringScheduleStatus"] = "Scheduled"
                else:
                    _activate(self.sagemaker_backend, schedule)
        return EmptyResult()

    def delete_monitoring_schedule(self):
        name = self._get_param("MonitoringScheduleName")
        with _lock:
            get(self, name)
            del store(self)[name]
        return EmptyResult()

    def list_monitoring_executions(self):
        name = self._get_param("MonitoringScheduleName")
        endpoint = self._get_param("EndpointName")
        status = self._get_param("StatusEquals")
        with _lock:
            items = [_public(e) for s in store(self).values() for e in s.get("_executions", [])
                     if (not name or s["MonitoringScheduleName"] == name)
                     and (not endpoint or s["EndpointName"] == endpoint)
                     and (not status or e["MonitoringExecutionStatus"] == status)]
        key = {"Status": "MonitoringExecutionStatus", "CreationTime": "CreationTime"}.get(
            self._get_param("SortBy") or "ScheduledTime", "ScheduledTime")
        descending = (self._get_param("SortOrder") or "Descending") == "Descending"
        items.sort(key=lambda e: e[key], reverse=descending)
        limit = self._get_param("MaxResults")
        if limit:
            items = items[:int(limit)]
        return ActionResult({"MonitoringExecutionSummaries": items})

    for fn in (create_monitoring_schedule, describe_monitoring_schedule, list_monitoring_schedules,
               update_monitoring_schedule, stop_monitoring_schedule, start_monitoring_schedule,
               delete_monitoring_schedule, list_monitoring_executions):
        setattr(SageMakerResponse, fn.__name__, fn)


def _reset() -> None:
    with _lock:
        _schedules.clear()
        _pending.clear()


def install() -> None:
    """Add the monitoring-schedule API, the analyzer processing jobs and the clock trigger."""
    from labkit.local.server import on_reset

    _patch_processing()
    _patch_api()
    clock.on_tick(_tick)
    on_reset(_reset)
