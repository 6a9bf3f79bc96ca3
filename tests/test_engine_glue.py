"""Contract tests for the Glue engine (crawlers, Python shell jobs, triggers) as plain boto3 calls."""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from labkit import datasets

ROLE = "arn:aws:iam::123456789012:role/glue-service"


@pytest.fixture(scope="module")
def raw(local_aws):
    """A bucket with one day per month of the raw flights layout, plus the weather table."""
    s3 = boto3.client("s3")
    bucket = f"glue-raw-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    flights = datasets.flights()
    for month, part in flights[flights["day"] == 1].groupby("month"):  # the raw layout's keys
        s3.put_object(Bucket=bucket, Key=f"raw/flights/year=2013/month={month:02d}/"
                      f"flights_2013-{month:02d}-01.csv",
                      Body=datasets.to_csv_bytes(part.drop(columns=["year", "month"])))
    s3.put_object(Bucket=bucket, Key="raw/weather/weather.csv",
                  Body=datasets.to_csv_bytes(datasets.weather()))
    return bucket


@pytest.fixture()
def glue(local_aws):
    return boto3.client("glue")


def _database(glue):
    name = f"db_{uuid.uuid4().hex[:8]}"
    glue.create_database(DatabaseInput={"Name": name})
    return name


def _crawl(glue, database, path, **extra):
    name = f"crawler-{uuid.uuid4().hex[:8]}"
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName=database,
                        Targets={"S3Targets": [{"Path": path}]}, **extra)
    glue.start_crawler(Name=name)
    states = [glue.get_crawler(Name=name)["Crawler"]["State"]]
    deadline = time.monotonic() + 60
    while states[-1] != "READY" and time.monotonic() < deadline:
        time.sleep(0.05)
        states.append(glue.get_crawler(Name=name)["Crawler"]["State"])
    return name, states


def _columns(table):
    return {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}


def test_crawler_over_partitioned_csv_makes_one_table_with_12_partitions(glue, raw):
    database = _database(glue)
    name, states = _crawl(glue, database, f"s3://{raw}/raw/flights/")
    # AWS's order RUNNING -> STOPPING -> READY; a fast local crawl may be past RUNNING at the first poll
    order = ["RUNNING", "STOPPING", "READY"]
    assert states[0] != "READY" and states[-1] == "READY", states
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states), states
    crawler = glue.get_crawler(Name=name)["Crawler"]
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    tables = glue.get_tables(DatabaseName=database)["TableList"]
    assert [t["Name"] for t in tables] == ["flights"]
    table = tables[0]
    assert table["PartitionKeys"] == [{"Name": "year", "Type": "string"},
                                      {"Name": "month", "Type": "string"}]
    columns = _columns(table)
    assert columns["dep_delay"] == "bigint" and columns["carrier"] == "string"
    assert columns["time_hour"] == "string" and "month" not in columns
    descriptor = table["StorageDescriptor"]
    assert descriptor["Location"] == f"s3://{raw}/raw/flights/"
    assert descriptor["SerdeInfo"]["SerializationLibrary"].endswith("LazySimpleSerDe")
    assert descriptor["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert table["Parameters"]["classification"] == "csv"
    assert table["Parameters"]["skip.header.line.count"] == "1"
    partitions = glue.get_partitions(DatabaseName=database, TableName="flights")["Partitions"]
    assert sorted(p["Values"][1] for p in partitions) == [f"{m:02d}" for m in range(1, 13)]
    january = next(p for p in partitions if p["Values"] == ["2013", "01"])
    assert january["StorageDescriptor"]["Location"] == f"s3://{raw}/raw/flights/year=2013/month=01/"
    metrics = glue.get_crawler_metrics(CrawlerNameList=[name])["CrawlerMetricsList"][0]
    assert metrics["TablesCreated"] == 1
    crawls = glue.list_crawls(CrawlerName=name)["Crawls"]
    assert crawls[0]["State"] == "COMPLETED"
    assert json.loads(crawls[0]["Summary"])["PARTITION"]["ADD"]["Count"] == 12
    events = boto3.client("logs").get_log_events(logGroupName="/aws-glue/crawlers",
                                                 logStreamName=name)["events"]
    assert any("Created table flights" in e["message"] for e in events)


def test_crawler_over_root_splits_tables_by_folder_and_recrawl_adds_partitions(glue, raw):
    database = _database(glue)
    name, _ = _crawl(glue, database, f"s3://{raw}/raw/")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert set(tables) == {"flights", "weather"}
    assert tables["weather"]["PartitionKeys"] == []
    assert _columns(tables["weather"])["wind_speed"] == "double"
    s3 = boto3.client("s3")
    s3.put_object(Bucket=raw, Key="raw/flights/year=2014/month=01/flights_2014-01-01.csv",
                  Body=s3.get_object(Bucket=raw, Key=next(
                      k["Key"] for k in s3.list_objects_v2(Bucket=raw, Prefix="raw/flights/")
                      ["Contents"]))["Body"].read())
    try:
        glue.start_crawler(Name=name)
        while glue.get_crawler(Name=name)["Crawler"]["State"] != "READY":
            time.sleep(0.05)
        partitions = glue.get_partitions(DatabaseName=database, TableName="flights")["Partitions"]
        assert len(partitions) == 13
        assert len(glue.get_tables(DatabaseName=database)["TableList"]) == 2
    finally:
        s3.delete_object(Bucket=raw, Key="raw/flights/year=2014/month=01/flights_2014-01-01.csv")


def test_json_lines_gzip_with_plain_folders_get_partition_n_keys(glue, local_aws):
    s3 = boto3.client("s3")
    bucket = f"glue-json-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    events = datasets.firehose_events().head(200)
    lines = b"".join(datasets.event_records(events))
    for hour in ("05", "06"):
        s3.put_object(Bucket=bucket, Key=f"events/2013/01/01/{hour}/stream-1-x.gz",
                      Body=gzip.compress(lines))
    database = _database(glue)
    _crawl(glue, database, f"s3://{bucket}/events/")
    table = glue.get_table(DatabaseName=database, Name="events")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == [f"partition_{i}" for i in range(4)]
    columns = _columns(table)
    assert columns["flight"] == "int" and columns["event_type"] == "string"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == \
        "org.openx.data.jsonserde.JsonSerDe"
    assert table["Parameters"]["classification"] == "json"
    assert table["Parameters"]["compressionType"] == "gzip"
    assert len(glue.get_partitions(DatabaseName=database, TableName="events")["Partitions"]) == 2


def test_parquet_schema_from_the_file(glue, local_aws):
    s3 = boto3.client("s3")
    bucket = f"glue-pq-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    frame = datasets.weather().head(100)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    s3.put_object(Bucket=bucket, Key="curated/weather/month=1/part-0.parquet", Body=buffer.getvalue())
    database = _database(glue)
    _crawl(glue, database, f"s3://{bucket}/curated/weather/")
    table = glue.get_table(DatabaseName=database, Name="weather")["Table"]
    columns = _columns(table)
    assert columns["temp"] == "double" and columns["origin"] == "string"
    assert columns["time_hour"] == "timestamp"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
        "ParquetHiveSerDe")
    assert table["Parameters"]["recordCount"] == "100"


def test_all_string_csv_gets_no_header_like_aws(glue, local_aws):
    s3 = boto3.client("s3")
    bucket = f"glue-str-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="airlines/airlines.csv",
                  Body=datasets.to_csv_bytes(datasets.airlines()))
    database = _database(glue)
    _crawl(glue, database, f"s3://{bucket}/airlines/")
    table = glue.get_table(DatabaseName=database, Name="airlines")["Table"]
    assert list(_columns(table)) == ["col0", "col1"]
    assert "skip.header.line.count" not in table["Parameters"]


def test_crawl_into_missing_database_creates_it(glue, raw):
    """AWS's crawler creates its target database when it does not exist (AWS Glue developer guide)."""
    database = f"missing_{uuid.uuid4().hex[:6]}"
    with pytest.raises(ClientError):
        glue.get_database(Name=database)
    name, _states = _crawl(glue, database, f"s3://{raw}/raw/weather/")
    last = glue.get_crawler(Name=name)["Crawler"]["LastCrawl"]
    assert last["Status"] == "SUCCEEDED", last.get("ErrorMessage")
    assert glue.get_database(Name=database)["Database"]["Name"] == database
    assert glue.get_tables(DatabaseName=database)["TableList"]


def test_schedules_validated_and_update_crawler(glue, raw):
    database = _database(glue)
    name = f"crawler-{uuid.uuid4().hex[:8]}"
    for bad in ("cron(0 2 * * * *)", "rate(1 day)", "cron(61 2 * * ? *)", "cron(0 2 * *)"):
        with pytest.raises(ClientError) as error:
            glue.create_crawler(Name=name, Role=ROLE, DatabaseName=database, Schedule=bad,
                                Targets={"S3Targets": [{"Path": f"s3://{raw}/raw/weather/"}]})
        assert error.value.response["Error"]["Code"] == "InvalidInputException"
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName=database,
                        Schedule="cron(15 2 ? * MON-FRI *)",
                        Targets={"S3Targets": [{"Path": f"s3://{raw}/raw/weather/"}]})
    crawler = glue.get_crawler(Name=name)["Crawler"]
    assert crawler["Schedule"] == {"ScheduleExpression": "cron(15 2 ? * MON-FRI *)",
                                   "State": "SCHEDULED"}
    glue.update_crawler(Name=name, Schedule="cron(0 3 * * ? *)", TablePrefix="raw_")
    crawler = glue.get_crawler(Name=name)["Crawler"]
    assert crawler["Schedule"]["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert crawler["TablePrefix"] == "raw_" and crawler["Version"] == 2
    with pytest.raises(ClientError) as error:
        glue.update_crawler(Name=name, Schedule="cron(0 3 * * * *)")
    assert error.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as error:
        glue.stop_crawler(Name=name)
    assert error.value.response["Error"]["Code"] == "CrawlerNotRunningException"
    glue.start_crawler(Name=name)
    with pytest.raises(ClientError) as error:
        glue.start_crawler(Name=name)
    assert error.value.response["Error"]["Code"] == "CrawlerRunningException"
    with pytest.raises(ClientError) as error:
        glue.update_crawler(Name=name, Description="while running")
    assert error.value.response["Error"]["Code"] == "CrawlerRunningException"
    while glue.get_crawler(Name=name)["Crawler"]["State"] != "READY":
        time.sleep(0.05)
    assert glue.get_table(DatabaseName=database, Name="raw_weather")["Table"]["Name"] == "raw_weather"


@pytest.fixture(scope="module")
def scripts(local_aws):
    s3 = boto3.client("s3")
    bucket = f"glue-jobs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="scripts/count.py", Body=f'''
import sys, io, boto3, pandas as pd
from awsglue.utils import getResolvedOptions
args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
s3 = boto3.client("s3")
frame = pd.read_csv(io.BytesIO(s3.get_object(Bucket="{bucket}", Key=args["source"])["Body"].read()))
s3.put_object(Bucket="{bucket}", Key=args["target"], Body=str(len(frame)).encode())
print(f"{{args['JOB_NAME']}} counted {{len(frame)}} rows")
'''.encode())
    s3.put_object(Bucket=bucket, Key="scripts/sleep.py", Body=b"import time\ntime.sleep(1.5)\n")
    s3.put_object(Bucket=bucket, Key="scripts/fail.py",
                  Body=b'print("starting")\nraise ValueError("the job kept 8255 cancelled flights")\n')
    s3.put_object(Bucket=bucket, Key="data/weather.csv",
                  Body=datasets.to_csv_bytes(datasets.weather().head(250)))
    return bucket


def _job(glue, bucket, script, **extra):
    name = f"job-{uuid.uuid4().hex[:8]}"
    glue.create_job(Name=name, Role=ROLE, Command={
        "Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/scripts/{script}",
        "PythonVersion": "3.9"}, **extra)
    return name


def _wait_run(glue, job, run_id):
    states = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        states.append(run["JobRunState"])
        if run["JobRunState"] not in ("STARTING", "RUNNING"):
            return run, states
        time.sleep(0.1)
    raise AssertionError(f"job run still {states[-1]}")


def test_python_shell_job_really_runs_with_arguments(glue, scripts):
    job = _job(glue, scripts, "count.py", DefaultArguments={"--source": "data/weather.csv"})
    assert glue.get_job(JobName=job)["Job"]["MaxCapacity"] == 0.0625
    run_id = glue.start_job_run(JobName=job, Arguments={"--target": "out/count.txt"})["JobRunId"]
    run, states = _wait_run(glue, job, run_id)
    assert states[0] in ("STARTING", "RUNNING") and run["JobRunState"] == "SUCCEEDED"
    assert isinstance(run["ExecutionTime"], int) and "ErrorMessage" not in run
    assert run["Arguments"] == {"--source": "data/weather.csv", "--target": "out/count.txt"}
    body = boto3.client("s3").get_object(Bucket=scripts, Key="out/count.txt")["Body"].read()
    assert body == b"250"
    events = boto3.client("logs").get_log_events(logGroupName="/aws-glue/python-jobs/output",
                                                 logStreamName=run_id)["events"]
    assert [e["message"] for e in events] == [f"{job} counted 250 rows"]


def test_failing_job_reports_its_exception(glue, scripts):
    job = _job(glue, scripts, "fail.py")
    run, _ = _wait_run(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: the job kept 8255 cancelled flights"
    errors = boto3.client("logs").get_log_events(logGroupName="/aws-glue/python-jobs/error",
                                                 logStreamName=run["Id"])["events"]
    assert "Traceback" in errors[0]["message"]


def test_missing_argument_and_missing_script_fail(glue, scripts):
    job = _job(glue, scripts, "count.py")
    run, _ = _wait_run(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED" and "--source" in run["ErrorMessage"]
    job = _job(glue, scripts, "nowhere.py")
    run, _ = _wait_run(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED" and "does not exist" in run["ErrorMessage"]


def test_update_job_replaces_definition_and_bad_command_rejected(glue, scripts):
    job = _job(glue, scripts, "count.py", DefaultArguments={"--source": "data/weather.csv"},
               Description="first")
    glue.update_job(JobName=job, JobUpdate={"Role": ROLE, "Command": {
        "Name": "pythonshell", "ScriptLocation": f"s3://{scripts}/scripts/fail.py"}})
    definition = glue.get_job(JobName=job)["Job"]
    assert definition["Command"]["ScriptLocation"].endswith("fail.py")
    assert definition["DefaultArguments"] == {} and "Description" not in definition
    with pytest.raises(ClientError) as error:
        glue.create_job(Name=f"job-{uuid.uuid4().hex[:6]}", Role=ROLE,
                        Command={"Name": "python", "ScriptLocation": f"s3://{scripts}/x.py"})
    assert error.value.response["Error"]["Code"] == "InvalidInputException"


def test_triggers_validated_and_stored(glue, scripts):
    job = _job(glue, scripts, "count.py")
    name = f"trigger-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ClientError) as error:
        glue.create_trigger(Name=name, Type="SCHEDULED", Schedule="cron(0 2 * * * *)",
                            Actions=[{"JobName": job}])
    assert error.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as error:
        glue.create_trigger(Name=name, Type="SCHEDULED", Schedule="cron(0 2 * * ? *)",
                            Actions=[{"JobName": "no-such-job"}])
    assert error.value.response["Error"]["Code"] == "EntityNotFoundException"
    glue.create_trigger(Name=name, Type="SCHEDULED", Schedule="cron(0 2 * * ? *)",
                        Actions=[{"JobName": job}], StartOnCreation=True)
    trigger = glue.get_trigger(Name=name)["Trigger"]
    assert trigger["Schedule"] == "cron(0 2 * * ? *)" and trigger["State"] == "ACTIVATED"



def test_max_concurrent_runs_enforced(glue, scripts):
    job = _job(glue, scripts, "sleep.py", ExecutionProperty={"MaxConcurrentRuns": 1})
    first = glue.start_job_run(JobName=job)["JobRunId"]
    with pytest.raises(ClientError) as error:
        glue.start_job_run(JobName=job)
    assert error.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"
    run, _ = _wait_run(glue, job, first)
    assert run["JobRunState"] == "SUCCEEDED" and run["ExecutionTime"] >= 1
    second = glue.start_job_run(JobName=job)["JobRunId"]  # allowed once the first has finished
    assert _wait_run(glue, job, second)[0]["JobRunState"] == "SUCCEEDED"


def test_crawled_table_is_what_athena_queries(glue, raw):
    """The catalog the crawler writes is the one Athena reads: a GROUP BY equals pandas."""
    database = _database(glue)
    _crawl(glue, database, f"s3://{raw}/raw/flights/")
    athena = boto3.client("athena")
    query = athena.start_query_execution(
        QueryString="SELECT month, count(*) AS n FROM flights GROUP BY month ORDER BY month",
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": f"s3://{raw}/athena-results/"})["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]["Status"]
        if state["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.1)
    assert state["State"] == "SUCCEEDED", state
    rows = athena.get_query_results(QueryExecutionId=query)["ResultSet"]["Rows"][1:]
    got = {int(r["Data"][0]["VarCharValue"]): int(r["Data"][1]["VarCharValue"]) for r in rows}
    flights = datasets.flights()
    assert got == flights[flights["day"] == 1].groupby("month").size().to_dict()


def test_logs_accept_events_stamped_on_a_fast_forwarded_clock(local_aws):
    """Engines stamp logs with the virtual clock; after a fast-forward moto must still accept them."""
    logs = local_aws.client("logs")
    group, stream = f"/labkit/test-{uuid.uuid4().hex[:8]}", "s"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = local_aws.fast_forward(days=3)
    stamp = int(now.timestamp() * 1000)
    answer = logs.put_log_events(logGroupName=group, logStreamName=stream,
                                 logEvents=[{"timestamp": stamp, "message": "after the jump"}])
    assert "rejectedLogEventsInfo" not in answer or not answer["rejectedLogEventsInfo"]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
    assert [e["message"] for e in events] == ["after the jump"]
    # AWS's window still holds, relative to the emulated time: 3 hours ahead is too new
    late = logs.put_log_events(logGroupName=group, logStreamName=stream,
                               logEvents=[{"timestamp": stamp + 3 * 3600 * 1000, "message": "x"}])
    assert late["rejectedLogEventsInfo"]["tooNewLogEventStartIndex"] == 0
