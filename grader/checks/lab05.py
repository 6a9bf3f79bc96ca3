"""Hidden checks of lab 05 (Glue): raw crawler and catalog, the Python shell ETL job, the curated
Parquet data, the curated catalog with row-count validation, and the clean-up."""

from __future__ import annotations

import io

from botocore.exceptions import ClientError

from grader.checks.common import fail, require, require_prefix_gone, versioned_course_bucket

DATABASE = "flights_lake"
RAW_CRAWLER = "raw-flights"
CURATED_CRAWLER = "curated-flights"
JOB = "flights-weather-etl"
ROLE = "labkit-glue-service"
SCRIPT_KEY = "glue-scripts/etl_flights_weather.py"
CURATED = "curated/"
MAX_WIND_MPH = 100


def prepare(aws) -> None:
    """Grading hook: the course bucket as lab 02 leaves it (versioned)."""
    versioned_course_bucket(aws)


def _expected():
    """Row counts the data set implies (deterministic: labkit.datasets)."""
    from labkit import datasets

    flights = datasets.flights()
    kept = flights[flights["dep_time"].notna()]
    return {"raw": len(flights), "cancelled": len(flights) - len(kept), "curated": len(kept),
            "per_month": kept.groupby("month").size().to_dict(),
            "weather": len(datasets.weather())}


def _crawler(aws, name: str) -> dict:
    try:
        return aws.client("glue").get_crawler(Name=name)["Crawler"]
    except ClientError:
        fail(f"crawler '{name}' does not exist", "create it with glue.create_crawler")
    raise AssertionError("unreachable")


def _table(aws, name: str) -> dict:
    glue = aws.client("glue")
    try:
        glue.get_database(Name=DATABASE)
    except ClientError:
        fail(f"Glue database '{DATABASE}' does not exist", "create it with glue.create_database")
    try:
        return glue.get_table(DatabaseName=DATABASE, Name=name)["Table"]
    except ClientError:
        tables = [t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]]
        fail(f"table '{DATABASE}.{name}' does not exist (the database has {tables})",
             "point the crawler at the folder that holds the data and run it")
    raise AssertionError("unreachable")


def _partitions(aws, table: str) -> list[dict]:
    glue = aws.client("glue")
    out = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=table):
        out += page["Partitions"]
    return out


def check_raw_catalog(aws) -> None:
    """Task 1: crawler over raw/flights/ with a role and a daily schedule, crawled successfully,
    giving table flights partitioned by year and month with 12 partitions and typed columns."""
    crawler = _crawler(aws, RAW_CRAWLER)
    paths = [t["Path"].rstrip("/") for t in crawler.get("Targets", {}).get("S3Targets", [])]
    require(paths == [f"s3://{aws.bucket}/raw/flights"], f"crawler '{RAW_CRAWLER}' crawls {paths}",
            f"target exactly s3://{aws.bucket}/raw/flights/ (one table, the months as partitions)")
    require(crawler.get("DatabaseName") == DATABASE, f"the crawler writes to database "
            f"'{crawler.get('DatabaseName')}'", f"set DatabaseName='{DATABASE}'")
    require(crawler.get("Role", "").rsplit("/", 1)[-1] == ROLE, f"the crawler's role is "
            f"'{crawler.get('Role')}'", f"use the role '{ROLE}' you created")
    require(bool(crawler.get("Schedule", {}).get("ScheduleExpression")),
            f"crawler '{RAW_CRAWLER}' has no schedule",
            "add Schedule='cron(0 6 * * ? *)' so new days are catalogued every morning")
    last = crawler.get("LastCrawl", {})
    require(last.get("Status") == "SUCCEEDED", f"the crawler's last crawl is "
            f"{last.get('Status', 'missing')} {last.get('ErrorMessage', '')}".strip(),
            "start it (glue.start_crawler) and wait until it is READY")
    table = _table(aws, "flights")
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    require(keys == ["year", "month"], f"table flights has partition keys {keys}",
            "let the crawler discover year=/month= folders: crawl raw/flights/, not the files")
    partitions = _partitions(aws, "flights")
    require(len(partitions) == 12, f"table flights has {len(partitions)} partitions",
            "crawl all of raw/flights/ (12 month folders)")
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    require(columns.get("dep_delay") == "bigint" and columns.get("carrier") == "string",
            f"table flights has column types {columns}",
            "the table must come from the crawler's schema inference over the CSV files")


def _job(aws) -> dict:
    try:
        return aws.client("glue").get_job(JobName=JOB)["Job"]
    except ClientError:
        fail(f"Glue job '{JOB}' does not exist", "create it with glue.create_job")
    raise AssertionError("unreachable")


def check_job(aws) -> None:
    """Task 2: a Python shell job running the lab's script from S3, last run SUCCEEDED."""
    job = _job(aws)
    command = job.get("Command", {})
    require(command.get("Name") == "pythonshell", f"job '{JOB}' is a {command.get('Name')} job",
            "use Command Name='pythonshell' (a small pandas job does not need Spark)")
    location = command.get("ScriptLocation", "")
    require(location == f"s3://{aws.bucket}/{SCRIPT_KEY}", f"the job runs {location!r}",
            f"upload etl_flights_weather.py to s3://{aws.bucket}/{SCRIPT_KEY} and use that")
    try:
        aws.client("s3").head_object(Bucket=aws.bucket, Key=SCRIPT_KEY)
    except ClientError:
        fail(f"s3://{aws.bucket}/{SCRIPT_KEY} does not exist", "upload the script with s3.upload_file")
    arguments = job.get("DefaultArguments") or {}
    wanted = {"--bucket": aws.bucket, "--raw_prefix": "raw/", "--curated_prefix": CURATED,
              "library-set": "analytics"}
    for name, value in wanted.items():
        require(arguments.get(name) == value,
                f"the job's DefaultArguments[{name!r}] is {arguments.get(name)!r}" if name in arguments
                else f"the job has no DefaultArguments[{name!r}]",
                f"set DefaultArguments {{{name!r}: {value!r}}} (prefixes end with '/')")
    require(job.get("MaxCapacity") == 0.0625, f"the job uses MaxCapacity {job.get('MaxCapacity')}",
            "the task asks for MaxCapacity=0.0625 (1/16 DPU is plenty for 336,776 rows)")
    runs = aws.client("glue").get_job_runs(JobName=JOB)["JobRuns"]
    require(runs, f"job '{JOB}' was never run", "start it with glue.start_job_run")
    last = max(runs, key=lambda r: r["StartedOn"])
    require(last["JobRunState"] == "SUCCEEDED", f"the last run of '{JOB}' is {last['JobRunState']}"
            + (f": {last['ErrorMessage']}" if last.get("ErrorMessage") else ""),
            "read the error (and /aws-glue/python-jobs/error), fix it and run the job again")


def _parquet_objects(aws, prefix: str) -> list[str]:
    s3 = aws.client("s3")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _read_parquet(aws, key: str):
    import pandas as pd

    body = aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    require(body[:4] == b"PAR1", f"s3://{aws.bucket}/{key} is not Parquet",
            "write the curated data with DataFrame.to_parquet")
    return pd.read_parquet(io.BytesIO(body))


def check_curated(aws) -> None:
    """Task 3: curated/flights_weather/month=MM/ Parquet without cancelled flights, joined with
    weather; curated/weather/ Parquet with the impossible wind speed removed."""
    expected = _expected()
    prefix = f"{CURATED}flights_weather/"
    keys = _parquet_objects(aws, prefix)
    if not keys:
        try:
            written = (aws.client("glue").get_job(JobName=JOB)["Job"].get("DefaultArguments") or {}).get(
                "--curated_prefix")
        except ClientError:
            written = None
        fail(f"nothing under s3://{aws.bucket}/{prefix}",
             f"task 2's job writes under --curated_prefix {written!r}, not {CURATED!r}: fix task 2 and run it"
             if written not in (None, CURATED) else "run the ETL job (task 2)")
    months = {}
    for key in keys:
        folder = key[len(prefix):].split("/")[0]
        require(folder.startswith("month=") and key.count("/") == 3,
                f"{key} is not inside a month=MM/ folder",
                "write one Parquet folder per month: curated/flights_weather/month=01/...")
        frame = _read_parquet(aws, key)
        months[int(folder.split("=")[1])] = months.get(int(folder.split("=")[1]), 0) + len(frame)
        for column in ("dep_delay", "origin", "temp", "wind_speed"):
            require(column in frame.columns, f"{key} has no column {column!r}",
                    "join flights with weather on origin and time_hour")
        require(frame["dep_time"].notna().all() if "dep_time" in frame else False,
                f"{key} holds {int(frame['dep_time'].isna().sum()) if 'dep_time' in frame else '?'} "
                "cancelled flights (no dep_time)", "drop rows whose dep_time is missing")
    total = sum(months.values())
    require(len(months) == 12, f"the curated data has {len(months)} month partitions",
            "partition by month: 12 folders month=01 ... month=12")
    require(total == expected["curated"], f"the curated data holds {total:,} flights; "
            f"{expected['raw']:,} raw minus {expected['cancelled']:,} cancelled is "
            f"{expected['curated']:,}", "keep every departed flight exactly once (left join)")
    wrong = [m for m, n in months.items() if n != expected["per_month"].get(m)]
    require(not wrong, f"months {wrong} hold the wrong flights",
            "put each flight in the folder of its own month")
    weather_keys = _parquet_objects(aws, f"{CURATED}weather/")
    require(weather_keys, f"nothing under s3://{aws.bucket}/{CURATED}weather/",
            "write the cleaned weather table too")
    import pandas as pd

    weather = pd.concat([_read_parquet(aws, k) for k in weather_keys], ignore_index=True)
    require(len(weather) == expected["weather"], f"the curated weather has {len(weather):,} rows",
            f"keep all {expected['weather']:,} readings; set impossible values to missing instead")
    top = weather["wind_speed"].max()
    require(top <= MAX_WIND_MPH, f"the curated weather still has a wind_speed of {top:,.0f} mph",
            f"set wind_speed above {MAX_WIND_MPH} mph (a sensor error) to missing")


def check_curated_catalog(aws, raw_rows, curated_rows) -> None:
    """Task 4: the curated crawler catalogued flights_weather (Parquet, 12 month partitions) and
    weather, and the learner's row counts reconcile raw, cancelled and curated."""
    crawler = _crawler(aws, CURATED_CRAWLER)
    require(crawler.get("LastCrawl", {}).get("Status") == "SUCCEEDED",
            f"crawler '{CURATED_CRAWLER}' has not crawled successfully",
            "start it and wait until it is READY")
    table = _table(aws, "flights_weather")
    require(table.get("Parameters", {}).get("classification") == "parquet",
            f"table flights_weather is classified {table.get('Parameters', {}).get('classification')}",
            "crawl the Parquet output under curated/")
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    require(keys == ["month"], f"table flights_weather has partition keys {keys}",
            f"crawl s3://{aws.bucket}/{CURATED} so month=MM/ folders become the partition key")
    partitions = _partitions(aws, "flights_weather")
    require(len(partitions) == 12, f"table flights_weather has {len(partitions)} partitions",
            "re-run the crawler after the job wrote all 12 months")
    _table(aws, "weather")
    expected = _expected()
    require(raw_rows == expected["raw"], f"raw_rows is {raw_rows}",
            "count the data rows of every raw flights CSV (without the header lines)")
    require(curated_rows == expected["curated"], f"curated_rows is {curated_rows}",
            "count the rows of the curated Parquet files (their footers: metadata.num_rows)")


def check_cleanup(aws, run_id) -> None:
    """Clean-up: crawlers, job, database, curated data, script and role are gone (``run_id``, the
    ETL run of task 2, shows there was something to clean up)."""
    require(isinstance(run_id, str) and run_id.startswith("jr_"), "there is no job run to clean up",
            "complete tasks 1-3 first (keep start_job_run's JobRunId in `run_id`)")
    glue = aws.client("glue")
    for name in (RAW_CRAWLER, CURATED_CRAWLER):
        try:
            glue.get_crawler(Name=name)
            fail(f"crawler '{name}' still exists", "delete it with glue.delete_crawler")
        except ClientError:
            pass
    try:
        glue.get_job(JobName=JOB)
        fail(f"job '{JOB}' still exists", "delete it with glue.delete_job")
    except ClientError:
        pass
    try:
        glue.get_database(Name=DATABASE)
        fail(f"database '{DATABASE}' still exists", "delete it with glue.delete_database "
             "(its tables and partitions go with it)")
    except ClientError:
        pass
    # "curated" without the slash: output misplaced under curatedflights_weather/ is found too
    for prefix in (CURATED.rstrip("/"), "glue-scripts/"):
        require_prefix_gone(aws, prefix, "delete every version of them (list_object_versions + delete_objects)")
    try:
        aws.client("iam").get_role(RoleName=ROLE)
        fail(f"IAM role '{ROLE}' still exists",
             "delete its inline policy (delete_role_policy), then the role (delete_role)")
    except ClientError:
        pass
