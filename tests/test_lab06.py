"""Lab 06 (EDA): the solution notebook runs twice in one kernel; a blank release scores zero; each
hidden check passes on the solution's state and names the mistake on plausible wrong states."""

from __future__ import annotations

import io

import pytest

from grader.checks import lab06
from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_runs_clean, exec_cells, fails,
                           run_blank, run_twice)

NOTEBOOK = REPO / "solutions" / "06-eda" / "06-eda.ipynb"


TASKS = ("task1-solution", "task2-solution", "task3-solution", "task4-solution", "task5-solution")


@pytest.fixture(scope="module")
def lab(local_aws):
    """The namespace after the setup and every solution cell of the notebook, run in-process."""
    return exec_cells(NOTEBOOK, "setup", *TASKS)


def test_solution_state_passes_every_check(local_aws, lab):
    lab06.check_loaded(lab["flights"])
    lab06.check_monthly_rates(local_aws, lab["monthly_qid"])
    lab06.check_quality(lab["missing"], lab["no_weather"])
    lab06.check_features(lab["features"], lab["class_balance"])
    lab06.check_split(local_aws)
    lab06.check_split(local_aws, lab["features"])


def test_loading_mistakes(lab):
    flights = lab["flights"]
    fails(lab06.check_loaded, flights[flights["month"] != 12],
          match="rows; the curated data has", explained=True)
    fails(lab06.check_loaded, flights.drop(columns=["month"]), match="no month column", explained=True)
    fails(lab06.check_loaded, flights.assign(month=(flights["month"] % 12) + 1),
          match="does not match the folders", explained=True)


def test_monthly_query_mistakes(local_aws, lab):
    run = lab["run"]
    strict = run("SELECT month, count(*) AS flights, CAST(count_if(dep_delay > 15) AS double) / count(*) "
                 "AS delay_rate FROM flights_weather GROUP BY month ORDER BY month")
    fails(lab06.check_monthly_rates, local_aws, strict["QueryExecutionId"],
          match="delay rate .* expected", explained=True)
    truncated = run("SELECT month, count(*) AS flights, count_if(dep_delay >= 15) / count(*) AS delay_rate "
                    "FROM flights_weather GROUP BY month ORDER BY month")
    fails(lab06.check_monthly_rates, local_aws, truncated["QueryExecutionId"],
          match="delay rate 0.0000", explained=True)
    unnamed = run("SELECT month, count(*), avg(dep_delay) FROM flights_weather GROUP BY month ORDER BY month")
    fails(lab06.check_monthly_rates, local_aws, unnamed["QueryExecutionId"],
          match="the columns are", explained=True)


def test_quality_mistakes(lab):
    flights, missing = lab["flights"], lab["missing"]
    fails(lab06.check_quality, flights.isna().sum().sort_values(ascending=False), lab["no_weather"],
          match="not a count", explained=True)
    fails(lab06.check_quality, missing.sort_index(), lab["no_weather"], match="not sorted", explained=True)
    temp_only = int(flights["temp"].isna().sum())
    fails(lab06.check_quality, missing, temp_only, match="ALL missing", explained=True)


def test_feature_mistakes(lab):
    features, flights = lab["features"], lab["flights"]
    fails(lab06.check_features, features.assign(dep_delay=flights["dep_delay"]), lab["class_balance"],
          match=r"\['dep_delay'\].*target leakage", explained=True)
    fails(lab06.check_features, features.assign(arr_delay=flights["arr_delay"]), lab["class_balance"],
          match="leakage", explained=True)
    strict = features.assign(delayed=(flights["dep_delay"] > 15).astype(int))
    fails(lab06.check_features, strict, float(strict["delayed"].mean()),
          match="labelled delayed", explained=True)
    fails(lab06.check_features, features.dropna(), lab["class_balance"],
          match="rows, expected", explained=True)
    fails(lab06.check_features, features, int(features["delayed"].sum()),
          match="class_balance", explained=True)
    fails(lab06.check_features, features.assign(day_of_week=features["day_of_week"] + 1),
          lab["class_balance"], match="day_of_week", explained=True)
    fails(lab06.check_features, features.drop(columns="dest"), lab["class_balance"],
          match=r"lacks \['dest'\]", explained=True)
    fails(lab06.check_features, features.assign(temp=features["temp"].fillna(0.0) / 100), lab["class_balance"],
          match="does not hold the flights' temp", explained=True)
    fails(lab06.check_features, features.assign(carrier=features["carrier"].str.lower()), lab["class_balance"],
          match="carrier codes", explained=True)


def _put(local_aws, frame, key):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    local_aws.client("s3").put_object(Bucket=local_aws.bucket, Key=key, Body=buffer.getvalue())


def test_split_mistakes(local_aws, lab):
    features, flights = lab["features"], lab["flights"]
    shuffled = features.sample(frac=1.0, random_state=0)
    half = len(shuffled) // 2
    _put(local_aws, shuffled.iloc[:half], lab06.TRAIN_KEY)
    _put(local_aws, shuffled.iloc[half:], lab06.VALIDATION_KEY)
    fails(lab06.check_split, local_aws, match="split by time", explained=True)
    _put(local_aws, lab["train"].assign(dep_time=flights.loc[flights["month"] <= 6, "dep_time"].to_numpy()),
         lab06.TRAIN_KEY)
    _put(local_aws, lab["validation"], lab06.VALIDATION_KEY)
    fails(lab06.check_split, local_aws, match="train still holds .*dep_time", explained=True)
    _put(local_aws, lab["train"].iloc[::2], lab06.TRAIN_KEY)
    fails(lab06.check_split, local_aws, match="rows, expected", explained=True)
    local_aws.client("s3").delete_object(Bucket=local_aws.bucket, Key=lab06.TRAIN_KEY)
    fails(lab06.check_split, local_aws, match="does not exist", explained=True)
    exec_cells(NOTEBOOK, "task5-solution", ns=lab)  # restore
    lab06.check_split(local_aws)
    # a task-4 label mistake (> 15) is task 4's: the split of those features is a correct task 5
    strict = features.assign(delayed=(flights["dep_delay"] > 15).astype(int))
    _put(local_aws, strict[strict["month"] <= 6], lab06.TRAIN_KEY)
    _put(local_aws, strict[strict["month"] >= 7], lab06.VALIDATION_KEY)
    lab06.check_split(local_aws, strict)
    # ... but halves whose labels are not the features' are task 5's mistake
    fails(lab06.check_split, local_aws, features, match="delayed rate is .*rate of these months in features",
          explained=True)
    _put(local_aws, strict[strict["month"] <= 6].drop(columns="dest"), lab06.TRAIN_KEY)
    fails(lab06.check_split, local_aws, strict, match="train has the columns", explained=True)
    exec_cells(NOTEBOOK, "task5-solution", ns=lab)  # restore
    lab06.check_split(local_aws, features)


def test_cleanup_check(local_aws, lab):
    fails(lab06.check_cleanup, local_aws, match="database eda_db still exists", explained=True)
    lab["run"]("DROP TABLE flights_weather")
    lab["run"]("DROP DATABASE eda_db", database="default")
    fails(lab06.check_cleanup, local_aws, match="result object", explained=True)
    lab["run"]("CREATE DATABASE eda_db", database="default")
    exec_cells(NOTEBOOK, "cleanup-solution", ns=lab)
    lab06.check_cleanup(local_aws)
    # graded alone, prepare() leaves the course bucket versioned as labs 02-05 do: a clean-up that deletes
    # only current objects leaves old versions, which the check names
    s3, bucket = local_aws.client("s3"), local_aws.bucket
    before = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    try:
        lab06.prepare(local_aws)
        lab06.prepare(local_aws)  # idempotent
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        s3.put_object(Bucket=bucket, Key="athena-results/lab06/plain.csv", Body=b"x")
        s3.delete_object(Bucket=bucket, Key="athena-results/lab06/plain.csv")
        fails(lab06.check_cleanup, local_aws, match="old version.*delete every version", explained=True)
        exec_cells(NOTEBOOK, "cleanup-solution", ns=lab)
        lab06.check_cleanup(local_aws)
    finally:
        if before != "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def test_prepare_creates_the_course_bucket(local_aws):
    """prepare() on an account without the course bucket creates it, versioned."""
    from dataclasses import dataclass

    @dataclass
    class Other:
        client: object
        bucket: str
        region: str = "us-east-1"

    other = Other(local_aws.client, f"lab06-prepare-{id(local_aws) % 10_000}")
    s3 = local_aws.client("s3")
    lab06.prepare(other)
    assert s3.get_bucket_versioning(Bucket=other.bucket)["Status"] == "Enabled"
    s3.delete_bucket(Bucket=other.bucket)


@pytest.mark.slow
def test_solution_notebook_runs_twice_in_one_kernel(tmp_path):
    assert_runs_clean(run_twice(NOTEBOOK, tmp_path))


@pytest.mark.slow
def test_blank_notebook_fails_every_graded_cell(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path), points=10)
