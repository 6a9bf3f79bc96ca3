"""Contract tests for the Athena engine, written as plain boto3 calls against the local AWS."""

from __future__ import annotations

import gzip
import time
import uuid

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from labkit import datasets

FLIGHT_COLUMNS = """day int, dep_time int, sched_dep_time int, dep_delay int, arr_time int,
  sched_arr_time int, arr_delay int, carrier string, flight int, tailnum string, origin string,
  dest string, air_time int, distance int, hour int, minute int, time_hour timestamp"""
MONTHS = (1, 2, 3)


@pytest.fixture(scope="module")
def env(local_aws):
    """A bucket holding Jan-Mar of the raw flights layout, and a database with the CSV table."""
    s3 = local_aws.client("s3")
    bucket = f"athena-test-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for key, data in datasets.raw_layout():
        if any(f"month={m:02d}/" in key for m in MONTHS) or key.endswith("airlines.csv"):
            s3.put_object(Bucket=bucket, Key=key, Body=data)
    db = f"db_{uuid.uuid4().hex[:8]}"
    env = {"aws": local_aws, "bucket": bucket, "db": db, "out": f"s3://{bucket}/results/"}
    run(env, f"CREATE DATABASE {db}", database="default")
    run(env, f"""CREATE EXTERNAL TABLE flights ({FLIGHT_COLUMNS})
        PARTITIONED BY (year int, month int)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
        LOCATION 's3://{bucket}/raw/flights/'
        TBLPROPERTIES ('skip.header.line.count'='1')""")
    run(env, "MSCK REPAIR TABLE flights")
    return env


def start(env, sql, database=None, **kwargs):
    athena = env["aws"].client("athena")
    kwargs.setdefault("ResultConfiguration", {"OutputLocation": env["out"]})
    return athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": database or env["db"]}, **kwargs
    )["QueryExecutionId"]


def wait(env, qid):
    athena = env["aws"].client("athena")
    for _ in range(600):
        execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            return execution
        time.sleep(0.05)
    raise AssertionError("query did not finish")


def run(env, sql, database=None, expect="SUCCEEDED", **kwargs):
    execution = wait(env, start(env, sql, database, **kwargs))
    assert execution["Status"]["State"] == expect, execution["Status"].get("StateChangeReason")
    return execution


def frame(env, execution):
    athena = env["aws"].client("athena")
    rows, info = [], None
    for page in athena.get_paginator("get_query_results").paginate(
            QueryExecutionId=execution["QueryExecutionId"]):
        info = info or page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
    return pd.DataFrame(rows[1:], columns=rows[0]), info


def expected_flights():
    f = datasets.flights()
    return f[f["month"].isin(MONTHS)]


def test_hook_installed(local_aws):
    from moto.athena.models import AthenaBackend

    from labkit.local import athena

    assert AthenaBackend.start_query_execution is athena.start_query_execution


def test_group_by_over_partitioned_csv_equals_pandas(env):
    execution = run(env, "SELECT carrier, count(*) AS n, avg(dep_delay) AS mean_delay "
                         "FROM flights GROUP BY carrier ORDER BY carrier")
    got, info = frame(env, execution)
    want = expected_flights().groupby("carrier").agg(n=("flight", "size"),
                                                     mean_delay=("dep_delay", "mean")).reset_index()
    assert list(got["carrier"]) == list(want["carrier"])
    assert [int(x) for x in got["n"]] == list(want["n"])
    assert [float(x) for x in got["mean_delay"]] == pytest.approx(list(want["mean_delay"]))
    assert [c["Type"] for c in info] == ["varchar", "bigint", "double"]
    assert execution["Statistics"]["DataScannedInBytes"] > 0
    assert execution["StatementType"] == "DML"


def test_partition_pruning_reads_only_matching_partitions(env):
    full = run(env, "SELECT count(*) FROM flights")
    one = run(env, "SELECT count(*) AS n FROM flights WHERE month = 2")
    got, _ = frame(env, one)
    assert int(got["n"][0]) == int((expected_flights()["month"] == 2).sum())
    s3 = env["aws"].client("s3")
    feb = s3.list_objects_v2(Bucket=env["bucket"], Prefix="raw/flights/year=2013/month=02/")
    assert one["Statistics"]["DataScannedInBytes"] == sum(o["Size"] for o in feb["Contents"])
    assert one["Statistics"]["DataScannedInBytes"] < full["Statistics"]["DataScannedInBytes"] / 2
    between = run(env, "SELECT count(*) FROM flights WHERE month BETWEEN 2 AND 3 AND dep_delay > 0")
    assert feb_bytes_lt(between, one)


def feb_bytes_lt(bigger, smaller):
    return smaller["Statistics"]["DataScannedInBytes"] < bigger["Statistics"]["DataScannedInBytes"]


def test_ctas_parquet_scans_fewer_bytes_with_same_answer(env):
    b = env["bucket"]
    run(env, f"""CREATE TABLE flights_parquet
        WITH (format = 'PARQUET', external_location = 's3://{b}/curated/flights_parquet/',
              partitioned_by = ARRAY['month'])
        AS SELECT carrier, origin, dest, dep_delay, distance, month FROM flights""")
    sql = "SELECT origin, avg(dep_delay) AS d FROM {} GROUP BY origin ORDER BY origin"
    csv_run = run(env, sql.format("flights"))
    pq_run = run(env, sql.format("flights_parquet"))
    assert frame(env, csv_run)[0].equals(frame(env, pq_run)[0])
    assert pq_run["Statistics"]["DataScannedInBytes"] * 5 < csv_run["Statistics"]["DataScannedInBytes"]
    # Parquet: only the referenced columns' chunks count; count(*) reads no column chunk at all
    star = run(env, "SELECT count(*) FROM flights_parquet")
    one_col = run(env, "SELECT avg(distance) FROM flights_parquet")
    two_col = run(env, "SELECT avg(distance), max(carrier) FROM flights_parquet")
    assert star["Statistics"]["DataScannedInBytes"] < one_col["Statistics"]["DataScannedInBytes"] \
        < two_col["Statistics"]["DataScannedInBytes"] < pq_run["Statistics"]["DataScannedInBytes"] * 3
    glue = env["aws"].client("glue")
    table = glue.get_table(DatabaseName=env["db"], Name="flights_parquet")["Table"]
    sd = table["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert sd["InputFormat"].endswith("MapredParquetInputFormat")
    assert [k["Name"] for k in table["PartitionKeys"]] == ["month"]
    parts = glue.get_partitions(DatabaseName=env["db"], TableName="flights_parquet")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["1", "2", "3"]
    keys = env["aws"].client("s3").list_objects_v2(Bucket=b, Prefix="curated/flights_parquet/")
    first = env["aws"].client("s3").get_object(Bucket=b, Key=keys["Contents"][0]["Key"])["Body"].read()
    assert first[:4] == b"PAR1"  # real Parquet files
    # a second CTAS into the same (non-empty) location fails like AWS
    again = run(env, f"CREATE TABLE flights_parquet2 WITH (external_location = "
                     f"'s3://{b}/curated/flights_parquet/') AS SELECT 1 AS x", expect="FAILED")
    assert again["Status"]["StateChangeReason"].startswith("HIVE_PATH_ALREADY_EXISTS")


def test_ctas_partition_columns_must_come_last(env):
    b = env["bucket"]
    bad = run(env, f"CREATE TABLE bad_order WITH (external_location='s3://{b}/curated/bad_order/', "
                   f"partitioned_by=ARRAY['month']) AS SELECT month, carrier FROM flights",
              expect="FAILED")
    assert "HIVE_COLUMN_ORDER_MISMATCH" in bad["Status"]["StateChangeReason"]


@pytest.mark.parametrize("sql, reason", [
    ("SELECT nonexistent_col FROM flights", "COLUMN_NOT_FOUND: line 1:8: Column 'nonexistent_col' cannot be resolved"),
    ("SELECT * FROM no_such_table", "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.{db}.no_such_table' does not exist"),
    ("SELEC 1", "line 1:1: mismatched input 'SELEC'"),
    ("SELECT carrier, count(*) FROM flights", "EXPRESSION_NOT_AGGREGATE"),
    ("SELECT no_such_fn(carrier) FROM flights", "FUNCTION_NOT_FOUND: line 1:8: Function 'no_such_fn' not registered"),
])
def test_bad_sql_fails_with_reason(env, sql, reason):
    execution = run(env, sql, expect="FAILED")
    assert execution["Status"]["StateChangeReason"].startswith(reason.format(db=env["db"]))
    assert execution["Status"]["AthenaError"]["ErrorCategory"] == 2
    assert execution["Statistics"]["DataScannedInBytes"] == 0
    with pytest.raises(ClientError) as err:
        env["aws"].client("athena").get_query_results(QueryExecutionId=execution["QueryExecutionId"])
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "FAILED" in err.value.response["Error"]["Message"]


def test_pagination_header_first_page_only(env):
    execution = run(env, "SELECT carrier, flight, dest FROM flights WHERE month = 1 ORDER BY carrier, flight, dest, day")
    athena = env["aws"].client("athena")
    qid = execution["QueryExecutionId"]
    first = athena.get_query_results(QueryExecutionId=qid, MaxResults=1000)
    assert [d["VarCharValue"] for d in first["ResultSet"]["Rows"][0]["Data"]] == ["carrier", "flight", "dest"]
    assert len(first["ResultSet"]["Rows"]) == 1000 and "NextToken" in first
    second = athena.get_query_results(QueryExecutionId=qid, MaxResults=1000, NextToken=first["NextToken"])
    assert second["ResultSet"]["Rows"][0]["Data"][0]["VarCharValue"] != "carrier"
    total = sum(len(p["ResultSet"]["Rows"]) for p in
                athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid))
    assert total == int((datasets.flights()["month"] == 1).sum()) + 1
    with pytest.raises(ClientError):
        athena.get_query_results(QueryExecutionId=qid, MaxResults=1001)


def test_results_csv_written_to_output_location(env):
    execution = run(env, "SELECT carrier, CAST(NULL AS varchar) AS nothing FROM flights WHERE month = 1 "
                         "GROUP BY carrier ORDER BY carrier LIMIT 2")
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"{env['out']}{execution['QueryExecutionId']}.csv"
    bucket, key = location[5:].split("/", 1)
    body = env["aws"].client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert body.splitlines() == ['"carrier","nothing"', '"9E",', '"AA",']


def test_workgroup_output_location_and_enforcement(env):
    athena = env["aws"].client("athena")
    name = f"wg-{uuid.uuid4().hex[:6]}"
    wg_out = f"s3://{env['bucket']}/wg-results/"
    athena.create_work_group(Name=name, Configuration={
        "ResultConfiguration": {"OutputLocation": wg_out}, "EnforceWorkGroupConfiguration": True})
    qid = athena.start_query_execution(QueryString="SELECT 1", WorkGroup=name,
                                       ResultConfiguration={"OutputLocation": env["out"]})["QueryExecutionId"]
    execution = wait(env, qid)
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(wg_out)
    assert execution["WorkGroup"] == name
    loose = f"wg-{uuid.uuid4().hex[:6]}"
    athena.create_work_group(Name=loose, Configuration={
        "ResultConfiguration": {"OutputLocation": wg_out}, "EnforceWorkGroupConfiguration": False})
    client_wins = wait(env, athena.start_query_execution(
        QueryString="SELECT 1", WorkGroup=loose,
        ResultConfiguration={"OutputLocation": env["out"]})["QueryExecutionId"])
    assert client_wins["ResultConfiguration"]["OutputLocation"].startswith(env["out"])
    default = wait(env, athena.start_query_execution(QueryString="SELECT 1", WorkGroup=loose)["QueryExecutionId"])
    assert default["ResultConfiguration"]["OutputLocation"].startswith(wg_out)
    with pytest.raises(ClientError) as err:
        athena.start_query_execution(QueryString="SELECT 1")  # primary has no output location
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "No output location provided" in err.value.response["Error"]["Message"]


def test_ddl_writes_the_glue_catalog_and_glue_tables_are_queryable(env):
    glue = env["aws"].client("glue")
    table = glue.get_table(DatabaseName=env["db"], Name="flights")["Table"]
    sd = table["StorageDescriptor"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert sd["Location"] == f"s3://{env['bucket']}/raw/flights/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    assert sd["SerdeInfo"]["Parameters"]["field.delim"] == ","
    assert table["Parameters"]["skip.header.line.count"] == "1"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month"]
    assert len(glue.get_partitions(DatabaseName=env["db"], TableName="flights")["Partitions"]) == 3
    # a table created through the Glue API (as a crawler does) is queryable
    glue.create_table(DatabaseName=env["db"], TableInput={
        "Name": "airlines_glue", "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
        "StorageDescriptor": {
            "Columns": [{"Name": "carrier", "Type": "string"}, {"Name": "name", "Type": "string"}],
            "Location": f"s3://{env['bucket']}/raw/airlines/",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                          "Parameters": {"field.delim": ","}}}})
    joined = run(env, "SELECT a.name, count(*) AS n FROM flights f JOIN airlines_glue a "
                      "ON f.carrier = a.carrier WHERE f.month = 1 GROUP BY a.name ORDER BY n DESC LIMIT 1")
    got, _ = frame(env, joined)
    assert got["name"][0] == "United Air Lines Inc."
    shown, _ = frame_no_header(env, run(env, "SHOW TABLES"))
    assert {"flights", "airlines_glue"} <= set(shown)
    run(env, "DROP TABLE airlines_glue")
    with pytest.raises(ClientError):
        glue.get_table(DatabaseName=env["db"], Name="airlines_glue")
    # DROP TABLE leaves the data in S3 (external table)
    assert env["aws"].client("s3").list_objects_v2(Bucket=env["bucket"], Prefix="raw/airlines/")["KeyCount"] == 1


def frame_no_header(env, execution):
    rows = env["aws"].client("athena").get_query_results(
        QueryExecutionId=execution["QueryExecutionId"])["ResultSet"]["Rows"]
    return [r["Data"][0].get("VarCharValue") for r in rows], None


def test_alter_table_add_partition_and_show_partitions(env):
    b = env["bucket"]
    run(env, f"""CREATE EXTERNAL TABLE flights_manual ({FLIGHT_COLUMNS})
        PARTITIONED BY (month int)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
        LOCATION 's3://{b}/raw/flights/year=2013/'
        TBLPROPERTIES ('skip.header.line.count'='1')""")
    empty, _ = frame(env, run(env, "SELECT count(*) AS n FROM flights_manual"))
    assert int(empty["n"][0]) == 0  # no partitions loaded yet: nothing to read
    run(env, f"ALTER TABLE flights_manual ADD PARTITION (month=1) LOCATION 's3://{b}/raw/flights/year=2013/month=01/'")
    run(env, "ALTER TABLE flights_manual ADD IF NOT EXISTS PARTITION (month=1) LOCATION "
             f"'s3://{b}/raw/flights/year=2013/month=01/'")
    parts, _ = frame_no_header(env, run(env, "SHOW PARTITIONS flights_manual"))
    assert parts == ["month=1"]
    got, _ = frame(env, run(env, "SELECT count(*) AS n FROM flights_manual"))
    assert int(got["n"][0]) == int((datasets.flights()["month"] == 1).sum())


def test_views(env):
    run(env, "CREATE OR REPLACE VIEW delays_by_origin AS SELECT origin, avg(dep_delay) AS d "
             "FROM flights GROUP BY origin")
    table = env["aws"].client("glue").get_table(DatabaseName=env["db"], Name="delays_by_origin")["Table"]
    assert table["TableType"] == "VIRTUAL_VIEW"
    assert table["ViewOriginalText"].startswith("/* Presto View: ")
    got, _ = frame(env, run(env, "SELECT * FROM delays_by_origin ORDER BY origin"))
    assert list(got["origin"]) == ["EWR", "JFK", "LGA"]
    run(env, "DROP VIEW delays_by_origin")
    run(env, "SELECT * FROM delays_by_origin", expect="FAILED")


def test_opencsv_quoted_fields_json_lines_and_gzip(env):
    s3 = env["aws"].client("s3")
    b = env["bucket"]
    s3.put_object(Bucket=b, Key="misc/quoted/a.csv",
                  Body=b'id,name,score\n1,"Smith, Jane",3.5\n2,"O""Neil",\n')
    s3.put_object(Bucket=b, Key="misc/jsonl/part-0.json.gz", Body=gzip.compress(
        b'{"id": 1, "name": "a", "score": 1.5}\n{"id": 2, "name": "b"}\n'))
    s3.put_object(Bucket=b, Key="misc/jsonl/_SUCCESS", Body=b"")
    run(env, f"""CREATE EXTERNAL TABLE quoted (id int, name string, score double)
        ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
        WITH SERDEPROPERTIES ('separatorChar'=',', 'quoteChar'='"')
        LOCATION 's3://{b}/misc/quoted/' TBLPROPERTIES ('skip.header.line.count'='1')""")
    got, _ = frame(env, run(env, "SELECT * FROM quoted ORDER BY id"))
    assert list(got["name"]) == ["Smith, Jane", "O\"Neil"]
    assert got["score"][0] == "3.5" and pd.isna(got["score"][1])
    # LazySimpleSerDe does not understand quotes: the same file splits inside the quotes
    run(env, f"""CREATE EXTERNAL TABLE quoted_lazy (id int, name string, score string)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
        LOCATION 's3://{b}/misc/quoted/' TBLPROPERTIES ('skip.header.line.count'='1')""")
    lazy, _ = frame(env, run(env, "SELECT name FROM quoted_lazy ORDER BY id"))
    assert lazy["name"][0] == '"Smith'
    run(env, f"""CREATE EXTERNAL TABLE events_json (id int, name string, score double)
        ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
        LOCATION 's3://{b}/misc/jsonl/'""")
    execution = run(env, "SELECT id, name, score FROM events_json ORDER BY id")
    got, info = frame(env, execution)
    assert got.fillna("NULL").values.tolist() == [["1", "a", "1.5"], ["2", "b", "NULL"]]
    assert [c["Type"] for c in info] == ["integer", "varchar", "double"]
    compressed = s3.head_object(Bucket=b, Key="misc/jsonl/part-0.json.gz")["ContentLength"]
    assert execution["Statistics"]["DataScannedInBytes"] == compressed


def test_show_databases_and_drop_database(env):
    db = f"tmp_{uuid.uuid4().hex[:6]}"
    run(env, f"CREATE DATABASE {db}")
    run(env, f"CREATE DATABASE {db}", expect="FAILED")
    run(env, f"CREATE DATABASE IF NOT EXISTS {db}")
    names, _ = frame_no_header(env, run(env, "SHOW DATABASES"))
    assert db in names and env["db"] in names
    assert db in [d["Name"] for d in env["aws"].client("athena").list_databases(
        CatalogName="AwsDataCatalog")["DatabaseList"]]
    run(env, f"CREATE EXTERNAL TABLE {db}.t (x int) LOCATION 's3://{env['bucket']}/nothing/'")
    failed = run(env, f"DROP DATABASE {db}", expect="FAILED")
    assert "is not empty" in failed["Status"]["StateChangeReason"]
    run(env, f"DROP DATABASE {db} CASCADE")
    with pytest.raises(ClientError):
        env["aws"].client("glue").get_database(Name=db)


def test_trino_dialect_integer_division_and_column_names(env):
    got, info = frame(env, run(env, "SELECT 7 / 2 AS q, count(*), approx_distinct(carrier) AS c "
                                    "FROM flights WHERE month = 1"))
    assert got["q"][0] == "3"  # integer division as in Trino
    assert list(got.columns) == ["q", "_col1", "c"]


def test_learner_helper_returns_typed_dataframe(env):
    from labkit import athena

    df = athena.query(env["aws"], "SELECT origin, count(*) AS n FROM flights GROUP BY origin ORDER BY origin",
                      database=env["db"], output=env["out"])
    assert list(df["origin"]) == ["EWR", "JFK", "LGA"]
    assert str(df["n"].dtype) == "Int64"
    assert int(df["n"].sum()) == len(expected_flights())
    with pytest.raises(Exception, match="COLUMN_NOT_FOUND"):
        athena.query(env["aws"], "SELECT nope FROM flights", database=env["db"], output=env["out"])


def test_unknown_workgroup_is_an_error(local_aws):
    with pytest.raises(ClientError) as err:
        local_aws.client("athena").get_work_group(WorkGroup="no-such-workgroup")
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


def test_ctas_with_two_partition_columns_and_textfile(env):
    b = env["bucket"]
    execution = run(env, f"CREATE TABLE flights_text WITH (format='TEXTFILE', field_delimiter=',', "
                         f"external_location='s3://{b}/curated/flights_text/', "
                         f"partitioned_by=ARRAY['year', 'month']) "
                         f"AS SELECT carrier, dep_delay, year, month FROM flights WHERE month = 1")
    assert frame_no_header(env, execution)[0] == [str(int((datasets.flights()["month"] == 1).sum()))]
    table = env["aws"].client("glue").get_table(DatabaseName=env["db"], Name="flights_text")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("LazySimpleSerDe")
    keys = [o["Key"] for o in env["aws"].client("s3").list_objects_v2(
        Bucket=b, Prefix="curated/flights_text/")["Contents"]]
    assert all(k.startswith("curated/flights_text/year=2013/month=1/") and k.endswith(".gz") for k in keys)
    got, _ = frame(env, run(env, "SELECT count(*) AS n, sum(dep_delay) AS s FROM flights_text"))
    jan = datasets.flights()[datasets.flights()["month"] == 1]
    assert int(got["n"][0]) == len(jan) and int(got["s"][0]) == int(jan["dep_delay"].sum())


def test_table_metadata_apis_read_the_glue_catalog(env):
    athena = env["aws"].client("athena")
    meta = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=env["db"],
                                     TableName="flights")["TableMetadata"]
    assert meta["TableType"] == "EXTERNAL_TABLE"
    assert [c["Name"] for c in meta["PartitionKeys"]] == ["year", "month"]
    assert meta["Columns"][3] == {"Name": "dep_delay", "Type": "int"}
    assert meta["Parameters"]["location"] == f"s3://{env['bucket']}/raw/flights/"
    listed = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=env["db"],
                                        Expression="flights*", MaxResults=1)
    assert listed["TableMetadataList"][0]["Name"] == "flights" and "NextToken" in listed
    with pytest.raises(ClientError) as err:
        athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=env["db"], TableName="nope")
    assert err.value.response["Error"]["Code"] == "MetadataException"


def test_table_created_by_a_glue_crawler_is_queryable(env):
    glue = env["aws"].client("glue")
    db = f"crawled_{uuid.uuid4().hex[:6]}"
    glue.create_database(DatabaseInput={"Name": db})
    name = f"crawler-{uuid.uuid4().hex[:6]}"
    glue.create_crawler(Name=name, Role="arn:aws:iam::123456789012:role/glue", DatabaseName=db,
                        Targets={"S3Targets": [{"Path": f"s3://{env['bucket']}/raw/flights/"}]})
    glue.start_crawler(Name=name)
    for _ in range(600):
        if glue.get_crawler(Name=name)["Crawler"]["State"] == "READY":
            break
        time.sleep(0.05)
    assert glue.get_crawler(Name=name)["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"
    execution = run(env, "SELECT month, count(*) AS n, avg(dep_delay) AS d FROM flights "
                         "WHERE month = '02' GROUP BY month", database=db)
    got, info = frame(env, execution)
    feb = expected_flights()[expected_flights()["month"] == 2]
    assert got.values.tolist()[0][:2] == ["02", str(len(feb))]
    assert float(got["d"][0]) == pytest.approx(feb["dep_delay"].mean())
    assert [c["Type"] for c in info] == ["varchar", "bigint", "double"]
    mismatch = run(env, "SELECT count(*) FROM flights WHERE month = 2", database=db, expect="FAILED")
    assert mismatch["Status"]["StateChangeReason"] == \
        "TYPE_MISMATCH: line 1:36: Cannot apply operator: varchar = integer"
    full = run(env, "SELECT count(*) FROM flights", database=db)
    assert execution["Statistics"]["DataScannedInBytes"] < full["Statistics"]["DataScannedInBytes"] / 2


def test_stop_query_execution_keeps_a_finished_state(env):
    athena = env["aws"].client("athena")
    done = run(env, "SELECT 1 AS x")
    athena.stop_query_execution(QueryExecutionId=done["QueryExecutionId"])
    assert wait(env, done["QueryExecutionId"])["Status"]["State"] == "SUCCEEDED"
    qid = start(env, "SELECT carrier, count(*) FROM flights GROUP BY carrier")
    athena.stop_query_execution(QueryExecutionId=qid)
    final = wait(env, qid)["Status"]["State"]
    assert final in ("CANCELLED", "SUCCEEDED")  # it may have finished before the stop arrived
    if final == "CANCELLED":
        with pytest.raises(ClientError, match="CANCELLED"):
            athena.get_query_results(QueryExecutionId=qid)
