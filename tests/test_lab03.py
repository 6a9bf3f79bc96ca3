"""Lab 03 (Athena): the solution notebook runs twice in one kernel; a blank release scores zero; each
hidden check passes on the solution's state and names the mistake on plausible wrong states."""

from __future__ import annotations

import pytest

from grader.checks import lab03
from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_runs_clean, exec_cells, fails,
                           run_blank, run_twice)

NOTEBOOK = REPO / "solutions" / "03-athena" / "03-athena.ipynb"


TASKS = ("task1-solution", "task2-solution", "task3-solution", "task4-solution", "task5-solution")


@pytest.fixture(scope="module")
def lab(local_aws):
    """The namespace after running the setup and every solution cell of the notebook in-process."""
    return exec_cells(NOTEBOOK, "setup", *TASKS)


def test_solution_state_passes_every_check(local_aws, lab):
    lab03.check_workgroup(local_aws)
    lab03.check_csv_table(local_aws)
    lab03.check_queries(local_aws, lab["carrier_qid"], lab["routes_qid"])
    lab03.check_parquet_table(local_aws)
    lab03.check_scan_comparison(local_aws, lab["csv_qid"], lab["parquet_qid"], lab["scanned"])


def test_workgroup_that_does_not_enforce(local_aws, lab):
    athena = local_aws.client("athena")
    athena.delete_work_group(WorkGroup=lab03.WORKGROUP, RecursiveDeleteOption=True)
    fails(lab03.check_workgroup, local_aws, match="does not exist", explained=True)
    athena.create_work_group(Name=lab03.WORKGROUP, Configuration={
        "ResultConfiguration": {"OutputLocation": lab["RESULTS"]}, "EnforceWorkGroupConfiguration": False})
    fails(lab03.check_workgroup, local_aws, match="does not enforce", explained=True)
    athena.delete_work_group(WorkGroup=lab03.WORKGROUP)
    athena.create_work_group(Name=lab03.WORKGROUP, Configuration={
        "ResultConfiguration": {"OutputLocation": "s3://someone-elses-bucket/"},
        "EnforceWorkGroupConfiguration": True})
    fails(lab03.check_workgroup, local_aws,
          match="writes results to s3://someone-elses-bucket", explained=True)
    athena.delete_work_group(WorkGroup=lab03.WORKGROUP)
    exec_cells(NOTEBOOK, "task1-solution", ns=lab)  # restore
    lab03.check_workgroup(local_aws)


def test_table_without_partitions_or_header_skip(local_aws, lab):
    glue = local_aws.client("glue")
    db, name = lab03.DATABASE, lab03.CSV_TABLE
    parts = glue.get_partitions(DatabaseName=db, TableName=name)["Partitions"]
    glue.batch_delete_partition(DatabaseName=db, TableName=name,
                                PartitionsToDelete=[{"Values": p["Values"]} for p in parts])
    fails(lab03.check_csv_table, local_aws, match="0 partitions loaded.*MSCK REPAIR TABLE", explained=True)
    lab["run"]("MSCK REPAIR TABLE flights_csv")
    table = glue.get_table(DatabaseName=db, Name=name)["Table"]
    keep = {k: table[k] for k in ("Name", "TableType", "Parameters", "PartitionKeys", "StorageDescriptor")}
    no_skip = dict(keep, Parameters={k: v for k, v in keep["Parameters"].items()
                                     if k != "skip.header.line.count"})
    glue.update_table(DatabaseName=db, TableInput=no_skip)
    fails(lab03.check_csv_table, local_aws, match="does not skip the header", explained=True)
    glue.update_table(DatabaseName=db, TableInput=keep)
    lab03.check_csv_table(local_aws)


def test_wrong_queries_are_named(local_aws, lab):
    run = lab["run"]
    wrong_carrier_queries = [  # (task 2's carrier query done wrong, what the check must say)
        ("SELECT a.name, count(*) AS flights, avg(f.arr_delay) AS avg_dep_delay FROM flights_csv f "
         "JOIN airlines a ON f.carrier = a.carrier GROUP BY a.name ORDER BY avg_dep_delay DESC",
         "average dep_delay"),
        ("SELECT carrier AS name, count(*) AS flights, avg(dep_delay) AS avg_dep_delay "
         "FROM flights_csv GROUP BY carrier ORDER BY avg_dep_delay DESC",
         "does not join the airlines"),
        ("SELECT a.name, count(*) AS flights, avg(f.dep_delay) AS avg_dep_delay FROM flights_csv f "
         "JOIN airlines a ON f.carrier = a.carrier WHERE month = 1 GROUP BY a.name "
         "ORDER BY avg_dep_delay DESC",
         "rows, not one per airline|flights, expected"),
    ]
    for sql, match in wrong_carrier_queries:
        fails(lab03.check_queries, local_aws, run(sql)["QueryExecutionId"], lab["routes_qid"],
              match=match, explained=True)
    ascending = run("SELECT origin, dest, count(*) AS flights FROM flights_csv GROUP BY origin, dest "
                    "ORDER BY flights ASC LIMIT 10")
    fails(lab03.check_queries, local_aws, lab["carrier_qid"], ascending["QueryExecutionId"],
          match="not the ten largest", explained=True)
    fails(lab03.check_queries, local_aws, lab["carrier_qid"], None,
          match="no query execution id", explained=True)


def test_scan_comparison_without_partition_filter(local_aws, lab):
    run = lab["run"]
    sql = "SELECT origin, count(*) AS flights FROM {} GROUP BY origin ORDER BY origin"
    a = run(sql.format("flights_csv"))
    b = run(sql.format("flights_parquet"))
    scanned = {k: e["Statistics"]["DataScannedInBytes"] for k, e in (("csv", a), ("parquet", b))}
    fails(lab03.check_scan_comparison, local_aws, a["QueryExecutionId"], b["QueryExecutionId"],
          scanned, match="every month was read", explained=True)
    fails(lab03.check_scan_comparison, local_aws, lab["csv_qid"], lab["parquet_qid"],
          {"csv": 1, "parquet": 2}, match="does not hold the DataScannedInBytes", explained=True)


def test_ctas_not_parquet_or_not_partitioned(local_aws, lab):
    run, s3, bucket = lab["run"], local_aws.client("s3"), local_aws.bucket

    def redo(with_clause, select="SELECT * FROM flights_csv"):
        run("DROP TABLE IF EXISTS flights_parquet")
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=lab03.PARQUET_PREFIX).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])
        run(f"CREATE TABLE flights_parquet WITH ({with_clause}, external_location = "
            f"'s3://{bucket}/{lab03.PARQUET_PREFIX}') AS {select}")

    redo("format = 'TEXTFILE', partitioned_by = ARRAY['year', 'month']")
    fails(lab03.check_parquet_table, local_aws, match="stored with .*LazySimpleSerDe", explained=True)
    redo("format = 'PARQUET'")
    fails(lab03.check_parquet_table, local_aws, match="partition keys are none", explained=True)
    columns = "day, dep_time, carrier, flight, origin, dest, dep_delay, distance"
    redo("format = 'PARQUET', partitioned_by = ARRAY['month']", f"SELECT {columns}, year, month FROM flights_csv")
    fails(lab03.check_parquet_table, local_aws, match="lacks the column.*sched_dep_time", explained=True)
    redo("format = 'PARQUET', partitioned_by = ARRAY['month']", "SELECT * FROM flights_csv WHERE dep_delay > 0")
    fails(lab03.check_parquet_table, local_aws, match="holds .* rows, flights_csv has .*no WHERE", explained=True)
    exec_cells(NOTEBOOK, "task4-solution", ns=lab)  # restore
    lab03.check_parquet_table(local_aws)


def test_cleanup_check(local_aws, lab):
    fails(lab03.check_cleanup, local_aws, match="workgroup 'mlaws-lab03' still exists", explained=True)
    lab["run"]("DROP TABLE flights_parquet")
    local_aws.client("athena").delete_work_group(WorkGroup=lab03.WORKGROUP)
    fails(lab03.check_cleanup, local_aws, match="database flights_db still exists", explained=True)
    exec_cells(NOTEBOOK, "task1-solution", ns=lab)
    lab["run"]("DROP TABLE flights_csv")
    lab["run"]("DROP TABLE airlines")
    lab["run"]("DROP DATABASE flights_db", database="default")
    local_aws.client("athena").delete_work_group(WorkGroup=lab03.WORKGROUP)
    fails(lab03.check_cleanup, local_aws, match="remain under .*athena-results/", explained=True)
    exec_cells(NOTEBOOK, "task1-solution", ns=lab)
    exec_cells(NOTEBOOK, "cleanup-solution", ns=lab)
    lab03.check_cleanup(local_aws)
    # a versioned course bucket (lab 02): a plain delete leaves a delete marker and the old version
    s3, bucket = local_aws.client("s3"), local_aws.bucket
    before = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    try:
        s3.put_object(Bucket=bucket, Key="athena-results/lab03/old.csv", Body=b"x")
        s3.delete_object(Bucket=bucket, Key="athena-results/lab03/old.csv")
        fails(lab03.check_cleanup, local_aws, match="old version.*delete every version", explained=True)
        exec_cells(NOTEBOOK, "task1-solution", ns=lab)
        exec_cells(NOTEBOOK, "cleanup-solution", ns=lab)
        lab03.check_cleanup(local_aws)
    finally:
        if before != "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


@pytest.mark.slow
def test_solution_notebook_runs_twice_in_one_kernel(tmp_path):
    assert_runs_clean(run_twice(NOTEBOOK, tmp_path))


@pytest.mark.slow
def test_blank_notebook_fails_every_graded_cell(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path), points=10)
