"""Hidden checks of lab 06 (EDA): the curated data loaded, a monthly delay rate from Athena, the
data-quality findings, leakage-free features with the label, the time-based split written to S3,
and the clean-up. Expected values are recomputed from the data set (labkit.datasets)."""

from __future__ import annotations

import functools
import io
import time

from botocore.exceptions import ClientError

from grader.checks.common import fail, require, require_prefix_gone, versioned_course_bucket

DATABASE = "eda_db"
TABLE = "flights_weather"
CURATED_PREFIX = "curated/flights_weather/"
RESULTS_PREFIX = "athena-results/lab06/"
TRAIN_KEY = "features/lab06/train.parquet"
VALIDATION_KEY = "features/lab06/validation.parquet"
LABEL = "delayed"
# Known only after the plane has left (or derived from the label itself): never a feature.
LEAKY = ("dep_delay", "arr_delay", "dep_time", "arr_time", "air_time")
REQUIRED_FEATURES = ("month", "day_of_week", "dep_hour", "carrier", "origin", "dest", "distance", "temp",
                     "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib")
# Columns copied unchanged from the curated table: their totals must match it.
COPIED = ("month", "distance", "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure",
          "visib")
MAX_WIND_MPH = 100
WEATHER_COLUMNS = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")


def prepare(aws) -> None:
    """Grading hook: the course bucket as labs 02-05 leave it (see versioned_course_bucket)."""
    versioned_course_bucket(aws)


@functools.lru_cache(maxsize=1)
def expected_curated():
    """The curated table as lab 05's ETL writes it: departed flights left-joined with the weather
    (impossible wind speeds set to missing)."""
    import numpy as np

    from labkit import datasets

    weather = datasets.weather()
    weather.loc[weather["wind_speed"] > MAX_WIND_MPH, ["wind_speed", "wind_gust"]] = np.nan
    flights = datasets.flights()
    flights = flights[flights["dep_time"].notna()]
    return flights.merge(weather.drop(columns=["year", "month", "day", "hour"]),
                         on=["origin", "time_hour"], how="left").reset_index(drop=True)


def _frame(obj, name: str):
    import pandas as pd

    require(isinstance(obj, pd.DataFrame), f"{name} is {type(obj).__name__}, not a DataFrame",
            f"build {name} as a pandas DataFrame")
    return obj


def check_loaded(flights) -> None:
    """Task 1: every curated row, with month restored from the partition folders."""
    flights = _frame(flights, "flights")
    want = expected_curated()
    require(len(flights) == len(want), f"flights has {len(flights):,} rows; the curated data has "
            f"{len(want):,}", "read every Parquet object under curated/flights_weather/ (all 12 months)")
    require("month" in flights.columns, "flights has no month column",
            "the month lives in the folder name month=MM/: add it as a column while reading")
    counts = flights["month"].astype(int).value_counts().sort_index()
    require(counts.to_dict() == want["month"].value_counts().sort_index().to_dict(),
            "flights' month column does not match the folders the rows came from",
            "set month from each object's month=MM folder")
    for column in ("dep_delay", "temp", "wind_speed", "carrier", "origin"):
        require(column in flights.columns, f"flights lacks the column {column}", "keep every curated column")


def check_monthly_rates(aws, monthly_qid) -> None:
    """Task 2: Athena's delay rate per month over the Parquet table."""
    require(isinstance(monthly_qid, str), "monthly_qid is not a query execution id",
            "keep the QueryExecutionId of the monthly query")
    athena = aws.client("athena")
    try:
        execution = athena.get_query_execution(QueryExecutionId=monthly_qid)["QueryExecution"]
    except ClientError:
        fail(f"query {monthly_qid!r} is unknown", "run it with athena.start_query_execution")
    state = execution["Status"]["State"]
    require(state == "SUCCEEDED", f"the monthly query ended {state}: "
            f"{execution['Status'].get('StateChangeReason', '')}", "fix the SQL")
    rows, names = [], None
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=monthly_qid):
        names = names or [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
    rows = rows[1:] if rows and rows[0] == names else rows
    require(names[:3] == ["month", "flights", "delay_rate"], f"the columns are {names}",
            "select month, flights, delay_rate")
    want = expected_curated().assign(d=lambda f: (f["dep_delay"] >= 15).astype(float)).groupby("month")
    rates, sizes = want["d"].mean(), want.size()
    require(len(rows) == 12, f"the query returned {len(rows)} months", "GROUP BY month over all partitions")
    for month, flights, rate in ((int(r[0]), int(r[1]), float(r[2])) for r in rows):
        require(flights == sizes[month], f"month {month}: {flights} flights, expected {sizes[month]}",
                "count every departed flight")
        require(abs(rate - rates[month]) < 1e-6, f"month {month}: delay rate {rate:.4f}, expected "
                f"{rates[month]:.4f}", "delayed means dep_delay >= 15; average 1.0/0.0 (not integer division)")
    require([int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows), "months are not in order",
            "ORDER BY month")


def check_quality(missing, no_weather) -> None:
    """Task 3: share of missing values per column, and flights without a weather row."""
    import pandas as pd

    want = expected_curated()
    require(isinstance(missing, pd.Series), f"missing is {type(missing).__name__}, not a Series",
            "missing = flights.isna().mean()")
    share = want.isna().mean()
    for column in ("wind_gust", "pressure", "temp", "wind_speed"):
        require(column in missing.index, f"missing has no entry for {column}", "cover every column")
        require(abs(float(missing[column]) - share[column]) < 1e-6,
                f"missing[{column!r}] = {float(missing[column]):.4f}, expected {share[column]:.4f}",
                "use the share of missing values (isna().mean()), not a count")
    require(list(missing.index[:1]) == ["wind_gust"], "missing is not sorted, most-missing first",
            "sort_values(ascending=False)")
    expected = int(want[list(WEATHER_COLUMNS)].isna().all(axis=1).sum())
    require(no_weather == expected, f"no_weather = {no_weather}, expected {expected}",
            "count flights whose weather columns are ALL missing after the left join (no weather row)")


def _check_features_frame(frame, name: str, total: int | None) -> None:
    leaky = [c for c in LEAKY if c in frame.columns]
    require(not leaky, f"{name} still holds {leaky}: known only after departure (target leakage)",
            "drop dep_delay, arr_delay, dep_time, arr_time and air_time from the features")
    missing = [c for c in REQUIRED_FEATURES + (LABEL,) if c not in frame.columns]
    require(not missing, f"{name} lacks {missing}", f"keep the label and the features {list(REQUIRED_FEATURES)}")
    if total is not None:
        require(len(frame) == total, f"{name} has {len(frame):,} rows, expected {total:,}",
                "keep every departed flight (a model must handle missing weather)")
    require(set(frame[LABEL].astype(int).unique()) <= {0, 1}, f"{name}.{LABEL} is not 0/1",
            "delayed = (dep_delay >= 15).astype(int)")


def check_features(features, class_balance) -> None:
    """Task 4: engineered, leakage-free features with the label; class balance measured."""
    features = _frame(features, "features")
    want = expected_curated()
    _check_features_frame(features, "features", len(want))
    rate = float((want["dep_delay"] >= 15).mean())
    got = float(features[LABEL].astype(int).mean())
    require(abs(got - rate) < 1e-9, f"{got:.4f} of the flights are labelled delayed, expected {rate:.4f}",
            "delayed = dep_delay >= 15 minutes (not > 15, not arr_delay)")
    require(isinstance(class_balance, float) and abs(class_balance - rate) < 1e-9,
            f"class_balance = {class_balance!r}", "class_balance = features['delayed'].mean() (a float)")
    import pandas as pd

    dow = pd.to_datetime(want[["year", "month", "day"]]).dt.day_of_week.value_counts().sort_index()
    got_dow = features["day_of_week"].astype(int).value_counts().sort_index()
    require(got_dow.to_dict() == dow.to_dict(), "day_of_week does not match the flights' local dates",
            "day_of_week = pd.to_datetime(year/month/day).dt.day_of_week (Monday = 0)")
    for column in COPIED:
        got_total, want_total = float(features[column].astype(float).sum()), float(want[column].sum())
        require(abs(got_total - want_total) <= 1e-6 * max(1.0, abs(want_total)),
                f"features[{column!r}] does not hold the flights' {column} values",
                f"copy {column} unchanged from flights (no scaling, no filling of missing values)")
    for column in ("carrier", "origin", "dest"):
        require(features[column].astype(str).value_counts().to_dict()
                == want[column].astype(str).value_counts().to_dict(),
                f"features[{column!r}] does not hold the flights' {column} codes",
                f"copy {column} from flights")
    hours = (want["sched_dep_time"] // 100).value_counts().sort_index()
    require(features["dep_hour"].astype(int).value_counts().sort_index().to_dict() == hours.to_dict(),
            "dep_hour is not the scheduled departure hour", "dep_hour = sched_dep_time // 100")


def _read(aws, key):
    import pandas as pd

    try:
        body = aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    except ClientError:
        fail(f"s3://{aws.bucket}/{key} does not exist", "write the split with DataFrame.to_parquet + put_object")
    try:
        return pd.read_parquet(io.BytesIO(body))
    except Exception:
        fail(f"s3://{aws.bucket}/{key} is not Parquet", "write it with DataFrame.to_parquet")


def check_split(aws, features=None) -> None:
    """Task 5: a time-based split (train Jan-Jun, validation Jul-Dec) written to S3. When the learner's
    ``features`` (task 4) is given, the halves are judged against it, so a task-4 mistake (a wrong label,
    a missing column) costs task 4 only; otherwise against the data set."""
    import pandas as pd

    train, validation = _read(aws, TRAIN_KEY), _read(aws, VALIDATION_KEY)
    usable = isinstance(features, pd.DataFrame) and {"month", LABEL} <= set(features.columns)
    source = features if usable else None
    if source is None:
        source = expected_curated().assign(**{LABEL: lambda f: (f["dep_delay"] >= 15).astype(int)})
        for frame, name in ((train, "train"), (validation, "validation")):
            _check_features_frame(frame, name, None)
    else:
        for frame, name in ((train, "train"), (validation, "validation")):
            columns = sorted(map(str, frame.columns))
            require(columns == sorted(map(str, features.columns)),
                    f"{name} has the columns {columns}, features has {sorted(map(str, features.columns))}",
                    "split `features` itself: keep every column, add none")
    train_months, val_months = set(train["month"].astype(int)), set(validation["month"].astype(int))
    require(train_months == set(range(1, 7)) and val_months == set(range(7, 13)),
            f"train holds months {sorted(train_months)} and validation {sorted(val_months)}",
            "split by time: train on January-June, validate on July-December (no random split: "
            "the model will predict future flights)")
    first_half = source["month"].astype(int).le(6)
    sizes = first_half.value_counts()
    require(len(train) == sizes[True] and len(validation) == sizes[False],
            f"train/validation have {len(train):,}/{len(validation):,} rows, expected "
            f"{sizes[True]:,}/{sizes[False]:,}", "keep every flight of each half-year exactly once")
    for frame, half, name in ((train, first_half, "train"), (validation, ~first_half, "validation")):
        rate = float(source.loc[half, LABEL].astype(float).mean())
        got = float(frame[LABEL].astype(float).mean())
        require(abs(got - rate) < 1e-9, f"{name}'s delayed rate is {got:.4f}, expected {rate:.4f} "
                f"(the rate of these months in features)", "keep each row's own label")


def check_cleanup(aws) -> None:
    """Clean-up: the Athena table and database are dropped and the query results deleted."""
    glue = aws.client("glue")
    try:
        glue.get_database(Name=DATABASE)
        fail(f"Glue database {DATABASE} still exists", "DROP TABLE flights_weather, then DROP DATABASE eda_db")
    except ClientError as exc:
        require(exc.response["Error"]["Code"] == "EntityNotFoundException", "cannot read the Glue catalog",
                "check your permissions")
    require_prefix_gone(aws, RESULTS_PREFIX, "delete the objects under the query results prefix",
                        what="Athena result object(s)")


def wait(aws, qid: str, timeout: float = 120) -> str:
    """Poll until the query leaves QUEUED/RUNNING (used by tests)."""
    athena = aws.client("athena")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
        if state not in ("QUEUED", "RUNNING"):
            return state
        time.sleep(0.1)
    return "TIMEOUT"
