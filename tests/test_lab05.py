"""Lab 05 (Glue): the hidden checks on good and wrong states, and the notebook round trips."""

from __future__ import annotations

import contextlib
import functools
import io
import time

import pytest
from botocore.exceptions import ClientError

from grader.checks import lab05
from labkit import datasets
from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, create_service_role, delete_role,
                           empty_prefix, ensure_bucket, fails, graded_cells, run_blank, run_twice)

LAB = REPO / "solutions/05-glue"
NOTEBOOK = LAB / "05-glue.ipynb"


def _teardown(aws):
    glue = aws.client("glue")
    for name in (lab05.RAW_CRAWLER, lab05.CURATED_CRAWLER):
        try:
            while glue.get_crawler(Name=name)["Crawler"]["State"] != "READY":
                time.sleep(0.05)
            glue.delete_crawler(Name=name)
        except ClientError:
            pass
    glue.delete_job(JobName=lab05.JOB)
    try:
        glue.delete_database(Name=lab05.DATABASE)
    except ClientError:
        pass
    for prefix in ("curated", "glue-scripts/"):  # what check_cleanup requires gone, every version
        empty_prefix(aws, prefix, versions=True)
    delete_role(aws, lab05.ROLE)


@pytest.fixture(scope="module")
def raw_zone(local_aws):
    """The course bucket with the raw weather table and one day of flights per month (enough
    for a crawl with 12 partitions; other labs' setup cells add the remaining days)."""
    ensure_bucket(local_aws)
    s3 = local_aws.client("s3")
    flights = datasets.flights()
    for month, part in flights[flights["day"] == 1].groupby("month"):  # the raw layout's keys
        s3.put_object(Bucket=local_aws.bucket, Key=f"raw/flights/year=2013/month={month:02d}/"
                      f"flights_2013-{month:02d}-01.csv",
                      Body=datasets.to_csv_bytes(part.drop(columns=["year", "month"])))
    s3.put_object(Bucket=local_aws.bucket, Key="raw/weather/weather.csv",
                  Body=datasets.to_csv_bytes(datasets.weather()))
    return local_aws


@pytest.fixture()
def aws(raw_zone):
    _teardown(raw_zone)
    yield raw_zone
    _teardown(raw_zone)


def _role(aws):
    return create_service_role(aws, lab05.ROLE, "glue.amazonaws.com")


def _crawl(aws, name, path, role_arn, **extra):
    glue = aws.client("glue")
    try:
        glue.create_database(DatabaseInput={"Name": lab05.DATABASE})
    except ClientError:
        pass
    glue.create_crawler(Name=name, Role=role_arn, DatabaseName=lab05.DATABASE,
                        Targets={"S3Targets": [{"Path": path}]}, **extra)
    glue.start_crawler(Name=name)
    while glue.get_crawler(Name=name)["Crawler"]["State"] != "READY":
        time.sleep(0.05)


# --- task 1 -------------------------------------------------------------------------------------
def test_raw_catalog_good_and_wrong(aws):
    glue = aws.client("glue")
    fails(lab05.check_raw_catalog, aws, match="crawler 'raw-flights' does not exist")
    role = _role(aws)
    _crawl(aws, lab05.RAW_CRAWLER, f"s3://{aws.bucket}/raw/flights/year=2013/month=01/", role,
           Schedule="cron(0 6 * * ? *)")
    fails(lab05.check_raw_catalog, aws, match="target exactly")
    glue.delete_crawler(Name=lab05.RAW_CRAWLER)
    _crawl(aws, lab05.RAW_CRAWLER, f"s3://{aws.bucket}/raw/flights/", role)
    fails(lab05.check_raw_catalog, aws, match="has no schedule")
    glue.update_crawler(Name=lab05.RAW_CRAWLER, Schedule="cron(0 6 * * ? *)")
    lab05.check_raw_catalog(aws)
    table = glue.get_table(DatabaseName=lab05.DATABASE, Name="flights")["Table"]
    glue.delete_table(DatabaseName=lab05.DATABASE, Name="flights")
    glue.create_table(DatabaseName=lab05.DATABASE, TableInput={
        "Name": "flights", "StorageDescriptor": table["StorageDescriptor"], "PartitionKeys": []})
    fails(lab05.check_raw_catalog, aws, match=r"partition keys \[\]")


def test_raw_catalog_failed_crawl(aws):
    role = _role(aws)
    glue = aws.client("glue")
    glue.create_crawler(Name=lab05.RAW_CRAWLER, Role=role, DatabaseName=lab05.DATABASE,
                        Schedule="cron(0 6 * * ? *)",
                        Targets={"S3Targets": [{"Path": f"s3://{aws.bucket}-typo/raw/flights/"}]})
    glue.start_crawler(Name=lab05.RAW_CRAWLER)  # a bucket that does not exist: the crawl fails
    while glue.get_crawler(Name=lab05.RAW_CRAWLER)["Crawler"]["State"] != "READY":
        time.sleep(0.05)
    # the path fixed afterwards, but never crawled again
    glue.update_crawler(Name=lab05.RAW_CRAWLER,
                        Targets={"S3Targets": [{"Path": f"s3://{aws.bucket}/raw/flights/"}]})
    fails(lab05.check_raw_catalog, aws, match="last crawl is FAILED")


# --- task 2 -------------------------------------------------------------------------------------
def _job(aws, role, command="pythonshell", script=None, **arguments):
    s3, glue = aws.client("s3"), aws.client("glue")
    body = script if script is not None else (LAB / "etl_flights_weather.py").read_bytes()
    s3.put_object(Bucket=aws.bucket, Key=lab05.SCRIPT_KEY, Body=body)
    glue.create_job(Name=lab05.JOB, Role=role, MaxCapacity=0.0625, Command={
        "Name": command, "ScriptLocation": f"s3://{aws.bucket}/{lab05.SCRIPT_KEY}"},
        DefaultArguments={k: v for k, v in {"--bucket": aws.bucket, "--raw_prefix": "raw/",
                                            "--curated_prefix": lab05.CURATED, "library-set": "analytics",
                                            **arguments}.items() if v is not None})
    run_id = glue.start_job_run(JobName=lab05.JOB)["JobRunId"]
    while glue.get_job_run(JobName=lab05.JOB, RunId=run_id)["JobRun"]["JobRunState"] in (
            "STARTING", "RUNNING"):
        time.sleep(0.1)
    return run_id


def test_job_good_and_wrong(aws):
    fails(lab05.check_job, aws, match="job 'flights-weather-etl' does not exist")
    role = _role(aws)
    _job(aws, role, command="glueetl")
    fails(lab05.check_job, aws, match="is a glueetl job")
    aws.client("glue").delete_job(JobName=lab05.JOB)
    _job(aws, role, script=b"raise ValueError('no weather for EWR')\n")
    fails(lab05.check_job, aws, match="FAILED: ValueError: no weather for EWR")
    aws.client("glue").delete_job(JobName=lab05.JOB)
    _job(aws, role, **{"library-set": None})
    fails(lab05.check_job, aws, match=r"no DefaultArguments\['library-set'\]")
    aws.client("glue").delete_job(JobName=lab05.JOB)
    _job(aws, role, **{"--curated_prefix": "curated"})
    fails(lab05.check_job, aws, match=r"DefaultArguments\['--curated_prefix'\] is 'curated'")
    aws.client("glue").delete_job(JobName=lab05.JOB)
    _job(aws, role)
    lab05.check_job(aws)


# --- task 3 -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _frames(keep_cancelled: bool, fix_outlier: bool):
    """What a (right or wrong) ETL job would produce: the joined table and the weather table."""
    weather = datasets.weather()
    if fix_outlier:
        weather.loc[weather["wind_speed"] > 100, "wind_speed"] = float("nan")
    flights = datasets.flights()
    if not keep_cancelled:
        flights = flights[flights["dep_time"].notna()]
    joined = flights.merge(weather.drop(columns=["year", "month", "day", "hour"]),
                           on=["origin", "time_hour"], how="left")
    return joined, weather


def _write_curated(aws, keep_cancelled=False, fix_outlier=True, partitioned=True, fmt="parquet"):
    s3 = aws.client("s3")
    empty_prefix(aws, lab05.CURATED)
    joined, weather = _frames(keep_cancelled, fix_outlier)

    def put(frame, key):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False) if fmt == "parquet" else frame.to_csv(buffer)
        s3.put_object(Bucket=aws.bucket, Key=key, Body=buffer.getvalue())

    if partitioned:
        for month, part in joined.groupby("month"):
            put(part.drop(columns=["month"]),
                f"{lab05.CURATED}flights_weather/month={month:02d}/part-00000.parquet")
    else:
        put(joined, f"{lab05.CURATED}flights_weather/part-00000.parquet")
    put(weather, f"{lab05.CURATED}weather/weather.parquet")


def test_curated_good_and_wrong(aws):
    fails(lab05.check_curated, aws, match="nothing under")
    _write_curated(aws)
    lab05.check_curated(aws)
    _write_curated(aws, keep_cancelled=True)
    fails(lab05.check_curated, aws, match="cancelled flights")
    _write_curated(aws, fix_outlier=False)
    fails(lab05.check_curated, aws, match="wind_speed of 1,048 mph")
    _write_curated(aws, partitioned=False)
    fails(lab05.check_curated, aws, match="is not inside a month=MM/ folder")
    _write_curated(aws, fmt="csv")
    fails(lab05.check_curated, aws, match="is not Parquet")


def test_curated_missing_names_task_2s_prefix(aws):
    """Task 2's prefix without its slash leaves task 3 with nothing: the reason says task 2 is why."""
    glue = aws.client("glue")
    empty_prefix(aws, lab05.CURATED)
    with contextlib.suppress(ClientError):
        glue.delete_job(JobName=lab05.JOB)
    command = {"Name": "pythonshell", "ScriptLocation": f"s3://{aws.bucket}/{lab05.SCRIPT_KEY}"}
    glue.create_job(Name=lab05.JOB, Role=_role(aws), Command=command,
                    DefaultArguments={"--curated_prefix": "curated"})
    fails(lab05.check_curated, aws, match=r"task 2's job writes under --curated_prefix 'curated', not 'curated/'")
    glue.delete_job(JobName=lab05.JOB)
    fails(lab05.check_curated, aws, match=r"nothing under .* run the ETL job \(task 2\)")


# --- task 4 -------------------------------------------------------------------------------------
def test_curated_catalog_good_and_wrong(aws):
    expected = lab05._expected()
    role = _role(aws)
    _write_curated(aws)
    fails(lab05.check_curated_catalog, aws, 0, 0, match="crawler 'curated-flights' does not exist")
    _crawl(aws, lab05.CURATED_CRAWLER, f"s3://{aws.bucket}/curated/", role)
    lab05.check_curated_catalog(aws, expected["raw"], expected["curated"])
    fails(lab05.check_curated_catalog, aws, expected["raw"] - 365, expected["curated"],
          match="raw_rows is")
    fails(lab05.check_curated_catalog, aws, expected["raw"], expected["raw"],
          match="curated_rows is")
    aws.client("glue").delete_crawler(Name=lab05.CURATED_CRAWLER)
    aws.client("glue").delete_database(Name=lab05.DATABASE)
    _write_curated(aws, partitioned=False)
    _crawl(aws, lab05.CURATED_CRAWLER, f"s3://{aws.bucket}/curated/", role)
    fails(lab05.check_curated_catalog, aws, expected["raw"], expected["curated"],
          match=r"partition keys \[\]")


# --- clean-up -----------------------------------------------------------------------------------
def test_cleanup(aws):
    run_id = "jr_" + "0" * 64
    lab05.check_cleanup(aws, run_id)
    fails(lab05.check_cleanup, aws, None, match="no job run to clean up")
    role = _role(aws)
    _crawl(aws, lab05.RAW_CRAWLER, f"s3://{aws.bucket}/raw/weather/", role)
    fails(lab05.check_cleanup, aws, run_id, match="crawler 'raw-flights' still exists")
    aws.client("glue").delete_crawler(Name=lab05.RAW_CRAWLER)
    fails(lab05.check_cleanup, aws, run_id, match="database 'flights_lake' still exists")
    aws.client("glue").delete_database(Name=lab05.DATABASE)
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.bucket, Key="curatedflights_weather/x.parquet", Body=b"PAR1")  # a misplaced output
    fails(lab05.check_cleanup, aws, run_id, match="object.s. remain under .*/curated —")
    s3.put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Enabled"})
    empty_prefix(aws, "curated")  # current versions only: the versioned bucket keeps the data
    fails(lab05.check_cleanup, aws, run_id, match="old version.s. / delete marker")
    for v in s3.list_object_versions(Bucket=aws.bucket, Prefix="curated").get("Versions", []) + \
            s3.list_object_versions(Bucket=aws.bucket, Prefix="curated").get("DeleteMarkers", []):
        s3.delete_object(Bucket=aws.bucket, Key=v["Key"], VersionId=v["VersionId"])
    fails(lab05.check_cleanup, aws, run_id, match="IAM role 'labkit-glue-service' still exists")


# --- the notebook -------------------------------------------------------------------------------
@pytest.mark.slow
def test_solution_runs_twice_without_error(tmp_path):
    nb = run_twice(NOTEBOOK, tmp_path)
    assert len(graded_cells(nb)) == 10


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path), points=10)
