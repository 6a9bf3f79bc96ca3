"""SageMaker hyper-parameter tuning engine: real HPO over real training jobs.

moto stores a tuning job as 'Completed' with a fake best job. This engine validates the request as
AWS does (strategy, ranges and scaling, objective metric, static vs tuned), then runs the search on
the background pool: each trial is a real training job (``sagemaker_training``) named
``<tuning-job>-NNN-<hex>``, at most min(MaxParallelTrainingJobs, local cores) at a time, until
MaxNumberOfTrainingJobs, the grid, the completion target or a stop. Strategies:

* Random: independent uniform draws in the (scaled) search space;
* Bayesian: a Gaussian process (Matern 5/2 + noise, scikit-learn) on the finished trials, the next
  point maximises expected improvement over random candidates; running trials are imputed with the
  current best ("constant liar") so parallel trials do not collide; the first few trials are random;
* Grid: every combination of the categorical values, in order;
* Hyperband: points sampled like Random; a trial's resource is the number of objective-metric
  reports it has made (one per epoch for a script that reports every epoch). Asynchronous successive
  halving (η = 3) with rungs at MinResource·3^k below MaxResource: a trial reaching a rung is
  stopped unless its objective there is in the top third of the values recorded at that rung so far
  (at least 3 recorded); a trial reaching MaxResource reports is stopped, and reports past it are
  ignored. Decisions are taken as each report is parsed. MaxResource comes from
  ``StrategyConfig.HyperbandStrategyConfig`` or is inferred from the static hyper-parameters
  ``epochs``, ``numepochs``, ``n-epochs``, ``n_epochs``, ``num_epochs`` (else ValidationException);
  MinResource defaults to 1 (a local choice: AWS documents no default).

``TrainingJobEarlyStoppingType='Auto'`` stops running trials by the median stopping rule (not with
Hyperband, which AWS requires to run with 'Off').

Scaling: Linear, Logarithmic, ReverseLogarithmic, Auto (logarithmic when the range spans two or more
orders of magnitude and is positive, else linear). The objective is read from each trial's
FinalMetricDataList; BestTrainingJob, TrainingJobStatusCounters and ObjectiveStatusCounters are real;
``list_training_jobs_for_hyper_parameter_tuning_job`` and ``stop_hyper_parameter_tuning_job`` work.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from labkit.local import clock
from labkit.local import sagemaker_training as training

log = logging.getLogger("labkit.sagemaker_tuning")
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
SORT_KEYS = ("Name", "CreationTime", "Status", "FinalObjectiveMetricValue")
EPOCH_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")  # MaxResource fallback
MAX_RESOURCE_LIMIT = 20000
ETA = 3  # Hyperband's reduction factor: the top 1/ETA of a rung goes on

_state: dict[tuple[str, str, str], "_Tuning"] = {}
_tls = threading.local()  # the endpoint the request came in on
_state_lock = threading.Lock()


class _Tuning:
    """Engine-side state of one tuning job."""

    def __init__(self, job, backend):
        self.job = job
        self.backend = backend
        self.trials: list[dict] = []  # {"name", "params", "run", "objective"}
        self.stop_requested = False
        self.parallel = 1
        self.endpoint = None
        self.lock = threading.Lock()


# ---------------------------------------------------------------------------------------------
# the search space
# ---------------------------------------------------------------------------------------------
class Param:
    """One tuned hyper-parameter, mapped to [0, 1] by its scaling type."""

    def __init__(self, kind: str, spec: dict):
        self.kind = kind
        self.name = spec["Name"]
        if kind == "Categorical":
            self.values = [str(v) for v in spec["Values"]]
            return
        self.low, self.high = float(spec["MinValue"]), float(spec["MaxValue"])
        scaling = spec.get("ScalingType", "Auto")
        if scaling == "Auto":
            scaling = "Logarithmic" if self.low > 0 and self.high / self.low >= 100 else "Linear"
        self.scaling = scaling

    def decode(self, u: float) -> str:
        """A point in [0, 1] → the hyper-parameter value as the string a training job receives."""
        if self.kind == "Categorical":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        lo, hi = self.low, self.high
        if self.scaling == "Logarithmic":
            value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        elif self.scaling == "ReverseLogarithmic":
            value = 1 - math.exp(math.log(1 - lo) + u * (math.log(1 - hi) - math.log(1 - lo)))
        else:
            value = lo + u * (hi - lo)
        value = min(max(value, lo), hi)
        if self.kind == "Integer":
            return str(int(min(max(round(value), math.ceil(lo)), math.floor(hi))))
        return repr(float(value))

    def width(self) -> int:
        return len(self.values) if self.kind == "Categorical" else 1

    def features(self, u: float) -> list[float]:
        """GP features: the scaled value, or a one-hot for a categorical choice."""
        if self.kind != "Categorical":
            return [u]
        index = min(int(u * len(self.values)), len(self.values) - 1)
        return [1.0 if i == index else 0.0 for i in range(len(self.values))]


def parse_space(ranges: dict) -> list[Param]:
    from moto.sagemaker.exceptions import ValidationError

    params = []
    for key, kind in (("IntegerParameterRanges", "Integer"), ("ContinuousParameterRanges", "Continuous"),
                      ("CategoricalParameterRanges", "Categorical")):
        for spec in (ranges or {}).get(key) or []:
            if kind != "Categorical":
                scaling = spec.get("ScalingType", "Auto")
                if scaling not in SCALINGS:
                    raise ValidationError(message=f"Value '{scaling}' at 'scalingType' failed to satisfy "
                                                  f"constraint: Member must satisfy enum value set: "
                                                  f"[{', '.join(SCALINGS)}]")
                try:
                    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
                except (KeyError, ValueError):
                    raise ValidationError(message=f"The {kind.lower()} range for hyperparameter "
                                                  f"'{spec.get('Name')}' needs numeric MinValue and "
                                                  "MaxValue") from None
                if low > high:
                    raise ValidationError(message=f"The MinValue {spec['MinValue']} of hyperparameter "
                                                  f"'{spec['Name']}' is greater than its MaxValue "
                                                  f"{spec['MaxValue']}")
                if scaling == "Logarithmic" and low <= 0:
                    raise ValidationError(message=f"Hyperparameter '{spec['Name']}': logarithmic "
                                                  "scaling requires a MinValue greater than 0")
                if scaling == "ReverseLogarithmic" and not (0 <= low and high < 1):
                    raise ValidationError(message=f"Hyperparameter '{spec['Name']}': reverse "
                                                  "logarithmic scaling requires 0 <= MinValue and "
                                                  "MaxValue < 1")
            elif not spec.get("Values"):
                raise ValidationError(message=f"Categorical hyperparameter '{spec.get('Name')}' has "
                                              "no values")
            params.append(Param(kind, spec))
    names = [p.name for p in params]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ValidationError(message=f"Hyperparameter '{duplicate}' is defined in more than one range")
    return params


# ---------------------------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------------------------
class Sampler:
    def __init__(self, strategy: str, space: list[Param], seed: int, n_initial: int):
        import numpy as np

        self.strategy = strategy
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.n_initial = n_initial
        self.grid = None
        if strategy == "Grid":
            self.grid = iter(itertools.product(*[p.values for p in space]))

    def grid_size(self) -> int:
        return math.prod(len(p.values) for p in self.space)

    def suggest(self, finished: list[tuple[list[float], float]], pending: list[list[float]]):
        """The next point (list of u in [0, 1] per param), or None when a grid is exhausted."""
        if self.grid is not None:
            combo = next(self.grid, None)
            if combo is None:
                return None
            return [(p.values.index(v) + 0.5) / len(p.values) for p, v in zip(self.space, combo)]
        if self.strategy != "Bayesian" or len(finished) < self.n_initial:
            return list(self.rng.random(len(self.space)))
        return self._expected_improvement(finished, pending)

    def _features(self, point):
        return [x for p, u in zip(self.space, point) for x in p.features(u)]

    def _expected_improvement(self, finished, pending):
        import numpy as np
        from scipy.stats import norm
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        x = np.array([self._features(p) for p, _ in finished])
        y = np.array([v for _, v in finished], dtype=float)  # larger is better here
        best = y.max()
        if pending:  # constant liar: pretend running trials return the current best
            x = np.vstack([x, [self._features(p) for p in pending]])
            y = np.concatenate([y, np.full(len(pending), best)])
        kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(x.shape[1], 0.5), nu=2.5,
                                              length_scale_bounds=(1e-2, 1e2)) + WhiteKernel(1e-3)
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=2,
                                      random_state=int(self.rng.integers(1 << 31)))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gp.fit(x, y)
        candidates = self.rng.random((2048, len(self.space)))
        features = np.array([self._features(c) for c in candidates])
        mean, std = gp.predict(features, return_std=True)
        std = np.maximum(std, 1e-9)
        improvement = mean - best - 0.01 * abs(best)
        z = improvement / std
        ei = improvement * norm.cdf(z) + std * norm.pdf(z)
        return list(candidates[int(np.argmax(ei))])


# ---------------------------------------------------------------------------------------------
# moto hooks
# ---------------------------------------------------------------------------------------------
def install() -> None:
    from moto.sagemaker import models, responses

    original_create = models.SageMakerModelBackend.create_hyper_parameter_tuning_job

    def create_hyper_parameter_tuning_job(self, **kwargs):
        definition = kwargs.get("training_job_definition")
        config = kwargs.get("hyper_parameter_tuning_job_config") or {}
        if kwargs.get("training_job_definitions"):
            from moto.sagemaker.exceptions import ValidationError

            raise ValidationError(message="labkit's local AWS runs tuning jobs with one "
                                          "TrainingJobDefinition; TrainingJobDefinitions (several "
                                          "algorithms) are not emulated")
        if kwargs["hyper_parameter_tuning_job_name"] not in self.hyper_parameter_tuning_jobs:
            _validate(autotuned(config, kwargs.get("autotune")), definition)
        arn = original_create(self, **kwargs)
        job = self.hyper_parameter_tuning_jobs[kwargs["hyper_parameter_tuning_job_name"]]
        _prepare(job)
        tuning = _Tuning(job, self)
        tuning.endpoint = getattr(_tls, "endpoint", None) or os.environ.get("AWS_ENDPOINT_URL")
        with _state_lock:
            _state[(self.account_id, self.region_name, job.hyper_parameter_tuning_job_name)] = tuning
        from labkit.local.server import background

        background(_orchestrate, tuning)
        return arn

    original_response_create = responses.SageMakerResponse.create_hyper_parameter_tuning_job

    def response_create_hyper_parameter_tuning_job(self):
        host = self.headers.get("Host") if self.headers else None
        _tls.endpoint = f"http://{host}" if host else None
        try:
            return original_response_create(self)
        finally:
            _tls.endpoint = None

    def list_training_jobs_for_hyper_parameter_tuning_job(self):
        from moto.core.responses import ActionResult

        backend = self.sagemaker_backend
        name = self._get_param("HyperParameterTuningJobName")
        tuning = _get(backend, name)
        summaries = [_summary(tuning, trial) for trial in list(tuning.trials)]
        status = self._get_param("StatusEquals")
        if status:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == status]
        sort_by = self._get_param("SortBy") or "Name"
        order = self._get_param("SortOrder") or "Ascending"
        _validate_enum(sort_by, "sortBy", SORT_KEYS)
        _validate_enum(order, "sortOrder", ("Ascending", "Descending"))
        if sort_by == "FinalObjectiveMetricValue":
            # jobs without an objective value are listed last, whatever the order (as AWS does)
            scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            unscored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" not in s]
            scored.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                        reverse=order == "Descending")
            summaries = scored + unscored
        else:
            key = {"Name": lambda s: s["TrainingJobName"], "CreationTime": lambda s: s["CreationTime"],
                   "Status": lambda s: s["TrainingJobStatus"]}[sort_by]
            summaries.sort(key=key, reverse=order == "Descending")
        max_results = int(self._get_param("MaxResults") or 10)
        start = int(self._get_param("NextToken") or 0)
        page = summaries[start:start + max_results]
        result = {"TrainingJobSummaries": page}
        if start + max_results < len(summaries):
            result["NextToken"] = str(start + max_results)
        return ActionResult(result)

    def stop_hyper_parameter_tuning_job(self):
        from moto.core.responses import EmptyResult
        from moto.sagemaker.exceptions import ValidationError

        tuning = _get(self.sagemaker_backend, self._get_param("HyperParameterTuningJobName"))
        status = tuning.job.hyper_parameter_tuning_job_status
        if status != "InProgress":
            raise ValidationError(message="The request was rejected because the tuning job is in "
                                          f"status {status}.")
        tuning.stop_requested = True
        tuning.job.hyper_parameter_tuning_job_status = "Stopping"
        for trial in list(tuning.trials):
            if trial["run"].job.training_job_status == "InProgress":
                try:
                    training.stop(tuning.backend, trial["name"])
                except Exception:
                    pass
        return EmptyResult()

    models.SageMakerModelBackend.create_hyper_parameter_tuning_job = create_hyper_parameter_tuning_job
    responses.SageMakerResponse.create_hyper_parameter_tuning_job = response_create_hyper_parameter_tuning_job
    responses.SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = (
        list_training_jobs_for_hyper_parameter_tuning_job)
    responses.SageMakerResponse.stop_hyper_parameter_tuning_job = stop_hyper_parameter_tuning_job
    original_describe = models.HyperParameterTuningJob.describe

    def describe(self):
        """Drop the fields AWS leaves out until they exist (moto fills them with placeholders)."""
        return {k: v for k, v in original_describe(self).items() if v is not None}

    models.HyperParameterTuningJob.describe = describe

    from labkit.local.server import on_reset

    on_reset(_reset)


def _reset() -> None:
    with _state_lock:
        for tuning in _state.values():
            tuning.stop_requested = True
        _state.clear()


def _get(backend, name: str) -> _Tuning:
    from moto.sagemaker.exceptions import ResourceNotFound

    with _state_lock:
        tuning = _state.get((backend.account_id, backend.region_name, name))
    if tuning is None or name not in backend.hyper_parameter_tuning_jobs:
        raise ResourceNotFound(message=f"Amazon SageMaker can't find a tuning job with name {name}")
    return tuning


def _validate_enum(value, attribute, allowed):
    from moto.sagemaker.exceptions import ValidationError

    if value not in allowed:
        raise ValidationError(message=f"1 validation error detected: Value '{value}' at '{attribute}' "
                                      f"failed to satisfy constraint: Member must satisfy enum value "
                                      f"set: [{', '.join(allowed)}]")


# What Autotune chooses when the request leaves it open (AWS documents the fields, not its values).
AUTOTUNE_DEFAULTS = {"Strategy": "Bayesian", "TrainingJobEarlyStoppingType": "Off",
                     "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2}}


def autotuned(config: dict, autotune: dict | None) -> dict:
    """The tuning config the search runs: with ``Autotune`` enabled, the fields the request left
    out get Autotune's choices, and each ``AutoParameters`` entry becomes a range around its
    ``ValueHint`` (AWS picks "an optimal hyperparameter range" from the hint)."""
    from moto.sagemaker.exceptions import ValidationError

    config = dict(config or {})
    ranges = dict(config.get("ParameterRanges") or {})
    auto = ranges.pop("AutoParameters", None) or []
    enabled = (autotune or {}).get("Mode") == "Enabled"
    if auto and not enabled:
        raise ValidationError(message="AutoParameters can only be used when Autotune is enabled "
                                      "(set Autotune={'Mode': 'Enabled'})")
    if not enabled:
        return config
    for key, value in AUTOTUNE_DEFAULTS.items():
        if key == "ResourceLimits":
            config[key] = {**value, **(config.get(key) or {})}
        else:
            config.setdefault(key, value)
    for spec in auto:
        key, rng = _range_from_hint(spec["Name"], str(spec.get("ValueHint", "")))
        ranges[key] = [*(ranges.get(key) or []), rng]
    config["ParameterRanges"] = ranges
    return config


def _range_from_hint(name: str, hint: str) -> tuple[str, dict]:
    """A search range around an example value: a decade either side (capped at 1 for a fraction),
    log-scaled; a word hint (e.g. ``true``) becomes a categorical choice."""
    if hint.lower() in {"true", "false"}:
        return "CategoricalParameterRanges", {"Name": name, "Values": ["true", "false"]}
    try:
        value = float(hint)
    except ValueError:
        return "CategoricalParameterRanges", {"Name": name, "Values": [hint]}
    if hint.strip().lstrip("-").isdigit():
        low, high = (max(1, int(value) // 10), max(2, int(value) * 10)) if value > 0 else \
            (int(value), int(value) + 10)
        return "IntegerParameterRanges", {"Name": name, "MinValue": str(low), "MaxValue": str(high),
                                          "ScalingType": "Logarithmic" if value > 0 else "Linear"}
    if value <= 0:
        return "ContinuousParameterRanges", {"Name": name, "MinValue": str(value - 1),
                                             "MaxValue": str(value + 1), "ScalingType": "Linear"}
    high = 1.0 if value < 1 else value * 10
    return "ContinuousParameterRanges", {"Name": name, "MinValue": repr(value / 10), "MaxValue": repr(high),
                                         "ScalingType": "Logarithmic"}


def _validate(config: dict, definition: dict | None) -> None:
    """The checks AWS makes before it accepts a tuning job."""
    from moto.sagemaker.exceptions import ValidationError

    strategy = config.get("Strategy", "Bayesian")
    _validate_enum(strategy, "hyperParameterTuningJobConfig.strategy", STRATEGIES)
    if not definition:
        raise ValidationError(message="TrainingJobDefinition is required")
    if config.get("StrategyConfig") and strategy != "Hyperband":
        raise ValidationError(message="StrategyConfig is only supported with the Hyperband strategy; "
                                      f"remove it or set Strategy to Hyperband (Strategy is {strategy})")
    if strategy == "Hyperband":
        if (config.get("TrainingJobEarlyStoppingType") or "Off") != "Off":
            raise ValidationError(message="TrainingJobEarlyStoppingType must be Off with the Hyperband "
                                          "strategy: Hyperband stops training jobs early by itself")
        hyperband_resources(config, definition)
    space = parse_space(config.get("ParameterRanges") or {})
    limits = config.get("ResourceLimits") or {}
    if strategy != "Grid" and not limits.get("MaxNumberOfTrainingJobs"):
        raise ValidationError(message=f"MaxNumberOfTrainingJobs is required for the {strategy} "
                                      "strategy")
    if not limits.get("MaxParallelTrainingJobs"):
        raise ValidationError(message="ResourceLimits.MaxParallelTrainingJobs is required")
    if strategy == "Grid":
        bad = [p.name for p in space if p.kind != "Categorical"]
        if bad:
            raise ValidationError(message="Grid search supports only categorical parameter ranges; "
                                          f"{', '.join(bad)} is not categorical")
        if not space:
            raise ValidationError(message="Grid search needs at least one categorical parameter range")
    static = set((definition.get("StaticHyperParameters") or {}))
    both = sorted(static & {p.name for p in space})
    if both:
        raise ValidationError(message=f"Hyperparameter: '{both[0]}' is both static and tuned. A "
                                      "hyperparameter can be either static or tuned, not both.")
    objective = config.get("HyperParameterTuningJobObjective") or {}
    _validate_enum(objective.get("Type"), "hyperParameterTuningJobObjective.type",
                   ("Maximize", "Minimize"))
    spec = definition.get("AlgorithmSpecification") or {}
    available = {m["Name"] for m in spec.get("MetricDefinitions") or []}
    match = training._IMAGE_RE.match(spec.get("TrainingImage") or "")
    is_builtin = (match and match.group("repo") in training.XGBOOST_REPOS
                  and "sagemaker_program" not in (definition.get("StaticHyperParameters") or {}))
    if is_builtin:
        available |= {m["Name"] for m in training.BUILTIN_XGBOOST_METRIC_DEFINITIONS}
    if objective.get("MetricName") not in available:
        raise ValidationError(
            message=f"The objective metric for the hyperparameter tuning job, "
                    f"[{objective.get('MetricName')}], isn't valid for the "
                    f"[{spec.get('TrainingImage')}] algorithm. Choose a valid objective metric "
                    f"(defined: {', '.join(sorted(available)) or 'none: add MetricDefinitions'}).")


def hyperband_resources(config: dict, definition: dict) -> tuple[int, int]:
    """(MinResource, MaxResource) of a Hyperband tuning job, or AWS's ValidationException."""
    from moto.sagemaker.exceptions import ValidationError

    hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    max_resource, source = hyperband.get("MaxResource"), "HyperbandStrategyConfig.MaxResource"
    static = definition.get("StaticHyperParameters") or {}
    if max_resource is None:
        key = next((k for k in EPOCH_KEYS if k in static), None)
        try:
            max_resource, source = int(str(static[key]).strip('"')), f"static hyperparameter '{key}'"
        except (KeyError, ValueError):
            raise ValidationError(
                message="HyperbandStrategyConfig.MaxResource is not set and cannot be inferred: set "
                        "StrategyConfig.HyperbandStrategyConfig.MaxResource, or one of the static "
                        f"hyperparameters {', '.join(EPOCH_KEYS)} to an integer") from None
    min_resource = hyperband.get("MinResource", 1)
    for name, value in (("MinResource", min_resource), (source, max_resource)):
        if int(value) < 1:
            raise ValidationError(message=f"Hyperband {name} is {value}; it must be at least 1")
    if int(max_resource) > MAX_RESOURCE_LIMIT:
        raise ValidationError(message=f"Hyperband MaxResource ({source}) is {max_resource}; the maximum "
                                      f"is {MAX_RESOURCE_LIMIT}")
    return int(min_resource), int(max_resource)


def _prepare(job) -> None:
    now = clock.now()
    job.creation_time = job.last_modified_time = now
    job.hyper_parameter_tuning_job_status = "InProgress"
    job.hyper_parameter_tuning_end_time = None
    job.training_job_status_counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0,
                                        "NonRetryableError": 0, "Stopped": 0}
    job.objective_status_counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    job.best_training_job = None
    job.OverallBestTrainingJob = None
    job.failure_reason = None
    job.tuning_job_completion_details = None
    job.consumed_resources = {"RuntimeInSeconds": 0}


# ---------------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------------
def _objective(trial, metric: str):
    run = trial["run"]
    if run.job.training_job_status not in {"Completed", "Stopped"}:
        return None
    series = run.metric_series.get(metric)
    return series[-1][1] if series else None


def _summary(tuning: _Tuning, trial: dict) -> dict:
    job = trial["run"].job
    objective = tuning.job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]
    summary = {
        "TrainingJobName": job.training_job_name, "TrainingJobArn": job.arn,
        "TuningJobName": tuning.job.hyper_parameter_tuning_job_name,
        "CreationTime": job.creation_time, "TrainingJobStatus": job.training_job_status,
        "TunedHyperParameters": dict(trial["params"]),
    }
    if job.training_start_time:
        summary["TrainingStartTime"] = job.training_start_time
    if job.training_end_time:
        summary["TrainingEndTime"] = job.training_end_time
    if job.failure_reason:
        summary["FailureReason"] = job.failure_reason
    value = _objective(trial, objective["MetricName"])
    if value is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"], "MetricName": objective["MetricName"], "Value": value}
    if job.training_job_status in {"InProgress", "Stopping"}:
        summary["ObjectiveStatus"] = "Pending"
    else:
        summary["ObjectiveStatus"] = "Succeeded" if value is not None else "Failed"
    return summary


def _refresh(tuning: _Tuning) -> None:
    """Counters and best job from the trials, as describe_hyper_parameter_tuning_job shows them."""
    job = tuning.job
    objective = job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]
    counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0,
                "Stopped": 0}
    objectives = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    best, best_value = None, None
    sign = 1 if objective["Type"] == "Maximize" else -1
    for trial in list(tuning.trials):
        summary = _summary(tuning, trial)
        status = summary["TrainingJobStatus"]
        counters[{"Failed": "NonRetryableError", "Stopping": "InProgress"}.get(status, status)] += 1
        objectives[summary["ObjectiveStatus"]] += 1
        metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
        if metric and (best_value is None or sign * metric["Value"] > sign * best_value):
            best, best_value = summary, metric["Value"]
    job.training_job_status_counters = counters
    job.objective_status_counters = objectives
    job.best_training_job = best
    job.last_modified_time = clock.now()
    job.consumed_resources = {"RuntimeInSeconds": int((clock.now() - job.creation_time).total_seconds())}


def _orchestrate(tuning: _Tuning) -> None:
    job = tuning.job
    config = autotuned(job.hyper_parameter_tuning_job_config, getattr(job, "autotune", None))
    definition = job.training_job_definition
    objective = config["HyperParameterTuningJobObjective"]
    sign = 1 if objective["Type"] == "Maximize" else -1
    space = parse_space(config.get("ParameterRanges") or {})
    strategy = config.get("Strategy", "Bayesian")
    limits = config.get("ResourceLimits") or {}
    parallel = max(1, min(int(limits.get("MaxParallelTrainingJobs") or 1), os.cpu_count() or 1))
    tuning.parallel = parallel
    seed = int(config.get("RandomSeed") or uuid.uuid4().int % (1 << 31))
    sampler = Sampler(strategy, space, seed, n_initial=max(3, parallel))
    hyperband = None
    if strategy == "Hyperband":
        hyperband = Hyperband(tuning, objective["MetricName"], sign, *hyperband_resources(config, definition))
    max_jobs = int(limits.get("MaxNumberOfTrainingJobs") or (sampler.grid_size() if strategy == "Grid" else 1))
    if strategy == "Grid":
        max_jobs = min(max_jobs, sampler.grid_size())
    max_runtime = limits.get("MaxRuntimeInSeconds")
    target = ((config.get("TuningJobCompletionCriteria") or {}).get("TargetObjectiveMetricValue"))
    started = clock.now()
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="labkit-tuning")
    running: dict = {}
    reason_stopped = None
    try:
        while True:
            while (len(running) < parallel and len(tuning.trials) < max_jobs
                   and not tuning.stop_requested and reason_stopped is None):
                finished = [(t["point"], sign * v) for t in tuning.trials
                            if t["run"].done.is_set()
                            and (v := _objective(t, objective["MetricName"])) is not None]
                pending = [t["point"] for t in tuning.trials if not t["run"].done.is_set()]
                point = sampler.suggest(finished, pending)
                if point is None:
                    break
                trial = _launch(tuning, definition, space, point)
                if hyperband:
                    hyperband.watch(trial)
                running[pool.submit(training.execute, trial["run"])] = trial
                _refresh(tuning)
            if not running:
                break
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                running.pop(future)
            if config.get("TrainingJobEarlyStoppingType") == "Auto":
                _early_stop(tuning, objective["MetricName"], sign)
            _refresh(tuning)
            best = job.best_training_job
            if target is not None and best and sign * best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] >= sign * float(target):
                reason_stopped = "target"
            if max_runtime and (clock.now() - started).total_seconds() > float(max_runtime):
                reason_stopped = "runtime"
                for trial in tuning.trials:
                    if trial["run"].job.training_job_status == "InProgress":
                        try:
                            training.stop(tuning.backend, trial["name"])
                        except Exception:
                            pass
    except Exception as exc:  # an engine bug must end the job, not leave it InProgress forever
        log.exception("tuning job %s failed in the engine", job.hyper_parameter_tuning_job_name)
        job.failure_reason = f"InternalServerError: labkit tuning engine: {type(exc).__name__}: {exc}"
        job.hyper_parameter_tuning_job_status = "Failed"
    finally:
        pool.shutdown(wait=True)
    _refresh(tuning)
    if job.hyper_parameter_tuning_job_status != "Failed":
        counters = job.training_job_status_counters
        if tuning.stop_requested:
            job.hyper_parameter_tuning_job_status = "Stopped"
        elif tuning.trials and counters["NonRetryableError"] == len(tuning.trials):
            job.hyper_parameter_tuning_job_status = "Failed"
            job.failure_reason = ("All training jobs failed. Please take a look at the training jobs "
                                  "failures to get more details.")
        else:
            job.hyper_parameter_tuning_job_status = "Completed"
    job.tuning_job_completion_details = {
        "NumberOfTrainingJobsObjectiveNotImproving": _not_improving(tuning, objective)}
    job.hyper_parameter_tuning_end_time = clock.now()
    job.last_modified_time = job.hyper_parameter_tuning_end_time


def _early_stop(tuning: _Tuning, metric: str, sign: int) -> None:
    """Median stopping rule (what TrainingJobEarlyStoppingType='Auto' does): stop a running trial
    whose best objective after k reports is worse than the median, over the finished trials, of
    their running average over their first k reports. Needs scripts that report every epoch."""
    import statistics

    finished = [t["run"].metric_series.get(metric, []) for t in tuning.trials
                if t["run"].job.training_job_status == "Completed"]
    finished = [[v for _, v in series] for series in finished if series]
    if len(finished) < 2:
        return
    for trial in tuning.trials:
        run = trial["run"]
        series = [v for _, v in run.metric_series.get(metric, [])]
        if run.job.training_job_status != "InProgress" or not series:
            continue
        k = len(series)
        references = [sum(s[:k]) / len(s[:k]) for s in finished if len(s) >= k]
        if len(references) < 2:
            continue
        best = max(series) if sign > 0 else min(series)
        if sign * best < sign * statistics.median(references):
            try:
                training.stop(tuning.backend, trial["name"])
                trial["early_stopped"] = True
            except Exception:
                pass


class Hyperband:
    """Asynchronous successive halving (Hyperband's rungs): each objective report of a trial is one
    unit of resource; at a rung (MinResource·ETA^k reports, below MaxResource) a trial goes on only if
    its objective is in the top 1/ETA of the values recorded at that rung so far (once ETA values are
    there); at MaxResource reports it is stopped. Decided as each report is parsed, so a trial never
    uses more than MaxResource reports."""

    def __init__(self, tuning: _Tuning, metric: str, sign: int, min_resource: int, max_resource: int):
        self.tuning, self.metric, self.sign, self.max_resource = tuning, metric, sign, max_resource
        self.rungs: dict[int, list[float]] = {}  # rung -> sign * objective of the trials that got there
        rung = min_resource
        while rung < max_resource:
            self.rungs[rung] = []
            rung *= ETA
        self.lock = threading.Lock()

    def watch(self, trial: dict) -> None:
        # the training engine appends each parsed value to run.metric_series[metric]
        trial["run"].metric_series[self.metric] = _Reports(self, trial)

    def report(self, trial: dict, count: int, value: float) -> None:
        with self.lock:
            stop = count >= self.max_resource
            recorded = self.rungs.get(count)
            if recorded is not None:
                recorded.append(self.sign * value)
                cutoff = sorted(recorded, reverse=True)[max(1, len(recorded) // ETA) - 1]
                stop = stop or (len(recorded) >= ETA and self.sign * value < cutoff)
        if stop and trial["run"].job.training_job_status == "InProgress":
            try:
                training.stop(self.tuning.backend, trial["name"])
                trial["early_stopped"] = True
            except Exception:
                pass


class _Reports(list):
    """A trial's objective series that tells Hyperband of each report and ignores those past
    MaxResource."""

    def __init__(self, hyperband: Hyperband, trial: dict):
        super().__init__()
        self.hyperband, self.trial = hyperband, trial

    def append(self, item) -> None:
        if len(self) >= self.hyperband.max_resource:
            return
        super().append(item)
        self.hyperband.report(self.trial, len(self), item[1])


def _not_improving(tuning: _Tuning, objective: dict) -> int:
    sign = 1 if objective["Type"] == "Maximize" else -1
    best, since = None, 0
    for trial in tuning.trials:
        value = _objective(trial, objective["MetricName"])
        if value is not None and (best is None or sign * value > sign * best):
            best, since = value, 0
        else:
            since += 1
    return since


def _launch(tuning: _Tuning, definition: dict, space: list[Param], point: list[float]) -> dict:
    job = tuning.job
    index = len(tuning.trials) + 1
    base = job.hyper_parameter_tuning_job_name[:32].rstrip("-")
    name = f"{base}-{index:03d}-{uuid.uuid4().hex[:8]}"
    tuned = {p.name: p.decode(u) for p, u in zip(space, point)}
    hps = dict(definition.get("StaticHyperParameters") or {})
    hps.update(tuned)
    spec = dict(definition.get("AlgorithmSpecification") or {})
    spec.pop("AlgorithmName", None) if spec.get("TrainingImage") else None
    environment = dict(definition.get("Environment") or {})
    # parallel trials share this machine's cores (on AWS each trial has its own instance)
    environment.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // tuning.parallel)))
    training._tls.environment = environment
    training._tls.endpoint = tuning.endpoint
    try:
        run = training.create_deferred(
            tuning.backend, training_job_name=name, hyper_parameters=hps,
            algorithm_specification=spec, role_arn=definition.get("RoleArn"),
            input_data_config=definition.get("InputDataConfig") or [],
            output_data_config=definition.get("OutputDataConfig") or {},
            resource_config=definition.get("ResourceConfig") or {},
            vpc_config=definition.get("VpcConfig"),
            stopping_condition=definition.get("StoppingCondition") or {},
            tags=None, enable_network_isolation=bool(definition.get("EnableNetworkIsolation")),
            enable_inter_container_traffic_encryption=bool(
                definition.get("EnableInterContainerTrafficEncryption")),
            enable_managed_spot_training=bool(definition.get("EnableManagedSpotTraining")),
            checkpoint_config=definition.get("CheckpointConfig"), debug_hook_config=None,
            debug_rule_configurations=None, tensor_board_output_config=None, experiment_config=None)
    finally:
        training._tls.environment = None
        training._tls.endpoint = None
    run.job.tuning_job_arn = job.arn
    trial = {"name": name, "params": tuned, "run": run, "point": point}
    with tuning.lock:
        tuning.trials.append(trial)
    return trial
