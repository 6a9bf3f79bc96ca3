"""Contract tests for Athena SQL that AWS's examples use (Trino: JOIN … USING)."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest


@pytest.fixture(scope="module")
def tables(local_aws):
    s3, athena = boto3.client("s3"), boto3.client("athena")
    bucket = f"ath-c-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="counts/a.csv", Body=b"carrier,n\nAA,1\nUA,2\nB6,3\n")
    s3.put_object(Bucket=bucket, Key="names/c.csv", Body=b"carrier,name\nAA,American\nUA,United\n")
    db = f"jdb_{uuid.uuid4().hex[:8]}"
    env = {"athena": athena, "bucket": bucket, "db": db}
    _run(env, f"CREATE DATABASE {db}")
    for table, cols in (("counts", "carrier string, n int"), ("names", "carrier string, name string")):
        _run(env, f"CREATE EXTERNAL TABLE {table} ({cols}) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                  f"LOCATION 's3://{bucket}/{table}/' TBLPROPERTIES ('skip.header.line.count'='1')")
    return env


def _run(env, sql):
    athena = env["athena"]
    qid = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": env["db"]},
        ResultConfiguration={"OutputLocation": f"s3://{env['bucket']}/out/"})["QueryExecutionId"]
    for _ in range(600):
        execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.05)
    if execution["Status"]["State"] != "SUCCEEDED":
        return execution["Status"]
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[d.get("VarCharValue") for d in r["Data"]] for r in rows]


def test_join_using_matches_join_on(tables):
    using = _run(tables, "SELECT carrier, n, name FROM counts JOIN names USING (carrier) ORDER BY carrier")
    assert using == [["carrier", "n", "name"], ["AA", "1", "American"], ["UA", "2", "United"]]
    on = _run(tables, "SELECT c.carrier, n, name FROM counts c JOIN names m ON c.carrier = m.carrier "
                      "ORDER BY 1")
    assert on[1:] == using[1:]


def test_self_join_using_and_left_join_using(tables):
    rows = _run(tables, "SELECT x.carrier, y.n FROM counts x JOIN counts y USING (carrier) ORDER BY 1")
    assert rows[1:] == [["AA", "1"], ["B6", "3"], ["UA", "2"]]
    left = _run(tables, "SELECT carrier, name FROM counts LEFT JOIN names USING (carrier) ORDER BY 1")
    assert left[1:] == [["AA", "American"], ["B6", None], ["UA", "United"]]


def test_using_a_column_one_side_lacks_fails_like_athena(tables):
    status = _run(tables, "SELECT * FROM counts JOIN names USING (name)")
    assert status["State"] == "FAILED" and "name" in status["StateChangeReason"]
