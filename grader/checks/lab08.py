"""Hidden checks of lab 08 (hyper-parameter tuning): the Bayesian tuning job and its settings, the
learner's table of trials and best job, the improvement over the lab 07 baseline, and the clean-up.
They read state through boto3 on the labkit handle only."""

from __future__ import annotations

from grader.checks import lab07
from grader.checks.common import fail, require

PREFIX = "lab08"
TUNING_PREFIX = "lab08-tune"
BASELINE_PREFIX = "lab08-baseline"
MIN_JOBS = 8
PARALLEL = 2


def _latest_tuning_job(aws) -> dict:
    sm = aws.client("sagemaker")
    summaries = sm.list_hyper_parameter_tuning_jobs(NameContains=TUNING_PREFIX, SortBy="CreationTime",
                                                    SortOrder="Descending", MaxResults=50)
    summaries = [s for s in summaries["HyperParameterTuningJobSummaries"]
                 if s["HyperParameterTuningJobName"].startswith(TUNING_PREFIX)]
    if not summaries:
        fail(f"no tuning job named {TUNING_PREFIX}*",
             "start one with HyperparameterTuner(..., base_tuning_job_name='lab08-tune').tune(...)")
    summaries.sort(key=lambda s: s["CreationTime"], reverse=True)
    return sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=summaries[0]["HyperParameterTuningJobName"])


def _trials(aws, name: str) -> list[dict]:
    pages = aws.client("sagemaker").get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
    return [s for page in pages.paginate(HyperParameterTuningJobName=name)
            for s in page["TrainingJobSummaries"]]


def _value(summary):
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
    return None if metric is None else metric["Value"]


def check_tuning_job(aws) -> None:
    """Task 1: Bayesian, objective validation:auc (Maximize), >= 8 jobs, 2 in parallel, the learning
    rate on a log scale, at least three tuned hyper-parameters, channels with a time split."""
    lab07.check_channels(aws, prefix=PREFIX)
    job = _latest_tuning_job(aws)
    name = job["HyperParameterTuningJobName"]
    config = job["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    require(objective["MetricName"] == "validation:auc",
            f"tuning job {name} optimises {objective['MetricName']}",
            "optimise validation:auc: a training metric rewards overfitting")
    require(objective["Type"] == "Maximize", f"tuning job {name} minimises the AUC",
            "an AUC is better when higher: objective_type='Maximize'")
    require(config["Strategy"] == "Bayesian", f"tuning job {name} uses the {config['Strategy']} strategy",
            "use strategy='Bayesian'")
    limits = config["ResourceLimits"]
    require(limits.get("MaxNumberOfTrainingJobs", 0) >= MIN_JOBS,
            f"tuning job {name} allows {limits.get('MaxNumberOfTrainingJobs')} training jobs",
            f"set max_jobs to at least {MIN_JOBS}")
    require(limits.get("MaxParallelTrainingJobs") == PARALLEL,
            f"tuning job {name} runs {limits.get('MaxParallelTrainingJobs')} jobs in parallel",
            f"set max_parallel_jobs={PARALLEL}")
    ranges = config.get("ParameterRanges", {})
    tuned = {r["Name"]: r for kind in ("ContinuousParameterRanges", "IntegerParameterRanges",
                                        "CategoricalParameterRanges") for r in ranges.get(kind, [])}
    require("learning-rate" in tuned, f"tuning job {name} does not tune learning-rate",
            "add 'learning-rate': ContinuousParameter(...)")
    require(tuned["learning-rate"].get("ScalingType") == "Logarithmic",
            f"learning-rate is searched on a {tuned['learning-rate'].get('ScalingType', 'Auto')} scale",
            "a learning rate spans orders of magnitude: scaling_type='Logarithmic'")
    want = {"learning-rate": (0.02, 0.3), "max-depth": (2, 8), "max-iter": (50, 300),
            "min-samples-leaf": (10, 200)}
    require(set(tuned) == set(want), f"tuning job {name} tunes {', '.join(sorted(tuned))}",
            "tune exactly learning-rate, max-depth, max-iter and min-samples-leaf")
    for key, (low, high) in want.items():
        got = (float(tuned[key]["MinValue"]), float(tuned[key]["MaxValue"]))
        require(got == (low, high), f"{key} is searched over {got[0]:g}–{got[1]:g}",
                f"search {key} over {low:g}–{high:g}")
    integers = {r["Name"] for r in ranges.get("IntegerParameterRanges", [])}
    require(integers == {"max-depth", "max-iter", "min-samples-leaf"},
            f"the integer ranges are {sorted(integers)}",
            "max-depth, max-iter and min-samples-leaf are IntegerParameter ranges")
    require(limits.get("MaxNumberOfTrainingJobs") == MIN_JOBS,
            f"tuning job {name} allows {limits.get('MaxNumberOfTrainingJobs')} training jobs",
            f"max_jobs={MIN_JOBS}")
    require(config.get("RandomSeed") in (None, 42),
            f"tuning job {name} uses random seed {config.get('RandomSeed')}",
            "random_seed=42")
    status = job["HyperParameterTuningJobStatus"]
    require(status == "Completed", f"tuning job {name} is {status}"
            + (f" ({job['FailureReason']})" if job.get("FailureReason") else ""),
            "let it finish (tune() waits) and fix failing trials from their FailureReason")
    succeeded = job["ObjectiveStatusCounters"]["Succeeded"]
    require(succeeded >= MIN_JOBS, f"only {succeeded} trials reported validation:auc",
            "check the metric definition's regex against what train.py prints")


def check_trials(aws, trials, best_name) -> None:
    """Task 2: the learner's table holds every trial and best_name is the real best job."""
    job = _latest_tuning_job(aws)
    listed = _trials(aws, job["HyperParameterTuningJobName"])
    require(hasattr(trials, "__len__") and len(trials) == len(listed),
            f"your table has {len(trials) if hasattr(trials, '__len__') else 'no'} rows, the tuning "
            f"job ran {len(listed)} training jobs",
            "page through list_training_jobs_for_hyper_parameter_tuning_job (NextToken / paginator)")
    scored = [s for s in listed if _value(s) is not None]
    best = max(scored, key=_value)
    require(best_name == best["TrainingJobName"],
            f"best_name is {best_name!r}, but the highest validation:auc is "
            f"{_value(best):.4f} from {best['TrainingJobName']}",
            "pick the trial with the largest FinalHyperParameterTuningJobObjectiveMetric value")
    require(job.get("BestTrainingJob", {}).get("TrainingJobName") == best_name,
            f"{best_name} is not the tuning job's BestTrainingJob", "read BestTrainingJob to confirm")


def check_improvement(aws, best_auc=None, improvement=None) -> None:
    """Task 3: the best trial's validation AUC (read from BestTrainingJob) beats the lab 07 configuration
    trained on the same channels, and the learner's best_auc / improvement are those numbers."""
    job = _latest_tuning_job(aws)
    best = job.get("BestTrainingJob")
    require(best is not None, f"tuning job {job['HyperParameterTuningJobName']} has no best training job "
            "(task 1 did not finish)", "complete task 1 first")
    objective = job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    require(objective == "validation:auc",
            f"the best trial's objective value is its {objective}, the baseline's "
            "number is validation:auc: the two cannot be compared",
            "compare validation AUCs: tune on validation:auc (task 1)")
    baseline = lab07._latest_job(aws, BASELINE_PREFIX, "run the setup cell that trains the baseline")
    baseline_auc = lab07._metric(baseline, "validation:auc")
    require(baseline_auc is not None, f"baseline job {baseline['TrainingJobName']} has no validation:auc",
            "re-run the setup cell")
    value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    if best_auc is not None or improvement is not None:
        claims = (("best_auc", best_auc, value), ("improvement", improvement, value - baseline_auc))
        for name, got, want in claims:
            try:
                number = float(got)
            except (TypeError, ValueError):
                fail(f"{name} is {got!r}, not a number", "best_auc = the BestTrainingJob's "
                     "FinalHyperParameterTuningJobObjectiveMetric value; "
                     "improvement = best_auc - baseline_auc")
            require(abs(number - want) < 1e-6, f"{name} is {number:.4f}, expected {want:.4f}",
                    "best_auc = the BestTrainingJob's FinalHyperParameterTuningJobObjectiveMetric['Value']; "
                    "improvement = best_auc - baseline_auc")
    require(value > baseline_auc,
            f"the best trial scores {value:.4f}, the baseline {baseline_auc:.4f}",
            "widen the ranges (more iterations, deeper trees) or allow more jobs")


def check_cleanup(aws) -> None:
    """Clean-up: no lab 08 tuning or training job left running (and the lab's tuning job exists)."""
    sm = aws.client("sagemaker")
    _latest_tuning_job(aws)
    running = [s["HyperParameterTuningJobName"] for s in sm.list_hyper_parameter_tuning_jobs(
        NameContains="lab08", MaxResults=100)["HyperParameterTuningJobSummaries"]
        if s["HyperParameterTuningJobStatus"] in {"InProgress", "Stopping"}]
    require(not running, f"tuning job(s) {', '.join(running)} still running",
            "stop them with sm.stop_hyper_parameter_tuning_job(...)")
    for status in ("InProgress", "Stopping"):
        jobs = [s["TrainingJobName"] for s in sm.list_training_jobs(
            NameContains="lab08", StatusEquals=status, MaxResults=100)["TrainingJobSummaries"]]
        require(not jobs, f"training job(s) {', '.join(jobs)} still {status}",
                "stop them with sm.stop_training_job(...)")
