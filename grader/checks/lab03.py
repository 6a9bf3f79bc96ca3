"""Hidden checks of lab 03 (Athena): workgroup, partitioned CSV table, queries, CTAS to Parquet,
bytes scanned, clean-up. They read state through boto3 only (Athena, Glue, S3) and compare query
results with the answer computed from the data set itself."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from grader.checks.common import fail, require, require_prefix_gone, versioned_course_bucket

WORKGROUP = "mlaws-lab03"
DATABASE = "flights_db"
CSV_TABLE = "flights_csv"
PARQUET_TABLE = "flights_parquet"
AIRLINES_TABLE = "airlines"
RESULTS_PREFIX = "athena-results/"
PARQUET_PREFIX = "curated/flights_parquet/"
N_FLIGHTS = 336_776


def prepare(aws) -> None:
    """Grading hook: the course bucket as lab 02 leaves it (versioned)."""
    versioned_course_bucket(aws)


def _expected_flights():
    from labkit import datasets

    return datasets.flights()


def _execution(aws, qid, what: str) -> dict:
    require(isinstance(qid, str) and qid, f"{what}: no query execution id",
            "keep the QueryExecutionId that start_query_execution returned")
    try:
        execution = aws.client("athena").get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    except ClientError:
        fail(f"{what}: query execution {qid!r} is unknown", "run the query with start_query_execution")
    state = execution["Status"]["State"]
    require(state == "SUCCEEDED", f"{what}: the query ended {state} "
            f"({execution['Status'].get('StateChangeReason', '')})", "fix the SQL and run it again")
    return execution


def _rows(aws, qid) -> tuple[list[str], list[list[str | None]]]:
    """(column names, data rows) of a finished DML query (the header row removed)."""
    rows, names = [], None
    for page in aws.client("athena").get_paginator("get_query_results").paginate(QueryExecutionId=qid):
        names = names or [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
    if rows and rows[0] == names:
        rows = rows[1:]
    return names or [], rows


def _query(aws, sql: str) -> tuple[list[str], list[list[str | None]]]:
    """Run ``sql`` in the learner's database (grader-owned results under athena-results/grader/)."""
    athena = aws.client("athena")
    kwargs = {"QueryString": sql, "QueryExecutionContext": {"Database": DATABASE},
              "ResultConfiguration": {"OutputLocation": f"s3://{aws.bucket}/{RESULTS_PREFIX}grader/"}}
    qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
    for _ in range(1200):
        execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        state = execution["Status"]["State"]
        if state not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.1 if aws.is_local else 1)
    if state != "SUCCEEDED":
        fail(f"the check's query `{sql}` ended {state}: {execution['Status'].get('StateChangeReason', '')}",
             "make sure the table reads its data correctly")
    return _rows(aws, qid)


def _table(aws, name: str) -> dict:
    try:
        return aws.client("glue").get_table(DatabaseName=DATABASE, Name=name)["Table"]
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "EntityNotFoundException":
            fail(f"table {DATABASE}.{name} does not exist in the Glue Data Catalog",
                 f"create the database {DATABASE} and the table with Athena DDL")
        raise


def check_workgroup(aws) -> None:
    """Task 1: a workgroup whose enforced output location is in the course bucket."""
    try:
        wg = aws.client("athena").get_work_group(WorkGroup=WORKGROUP)["WorkGroup"]
    except ClientError:
        wg = None
    require(bool(wg), f"workgroup '{WORKGROUP}' does not exist", "create it with athena.create_work_group")
    config = wg.get("Configuration") or {}
    location = (config.get("ResultConfiguration") or {}).get("OutputLocation", "")
    require(location.startswith(f"s3://{aws.bucket}/{RESULTS_PREFIX}"),
            f"workgroup '{WORKGROUP}' writes results to {location or 'nowhere'}",
            f"set ResultConfiguration.OutputLocation to s3://{aws.bucket}/{RESULTS_PREFIX}...")
    require(config.get("EnforceWorkGroupConfiguration") is True,
            f"workgroup '{WORKGROUP}' does not enforce its configuration",
            "set EnforceWorkGroupConfiguration=True so every query's results land in the course bucket")


def check_csv_table(aws) -> None:
    """Task 2: the external CSV table over raw/flights/, partitioned, partitions loaded, header skipped."""
    table = _table(aws, CSV_TABLE)
    sd = table.get("StorageDescriptor") or {}
    require(table.get("TableType") == "EXTERNAL_TABLE", f"{CSV_TABLE} is a {table.get('TableType')}",
            "create it with CREATE EXTERNAL TABLE")
    location = sd.get("Location", "").rstrip("/")
    require(location == f"s3://{aws.bucket}/raw/flights",
            f"{CSV_TABLE} reads {location or 'no location'}",
            f"use LOCATION 's3://{aws.bucket}/raw/flights/'")
    keys = [k["Name"] for k in table.get("PartitionKeys") or []]
    require("month" in keys, f"{CSV_TABLE} is not partitioned by month (partition keys: {keys or 'none'})",
            "add PARTITIONED BY (year int, month int): the folders are year=2013/month=MM/")
    parts = aws.client("glue").get_partitions(DatabaseName=DATABASE, TableName=CSV_TABLE)["Partitions"]
    require(len(parts) == 12, f"{CSV_TABLE} has {len(parts)} partitions loaded, not 12",
            "load them with MSCK REPAIR TABLE (or ALTER TABLE ADD PARTITION)")
    params = {**(table.get("Parameters") or {}), **((sd.get("SerdeInfo") or {}).get("Parameters") or {})}
    require(params.get("skip.header.line.count") == "1",
            f"{CSV_TABLE} does not skip the header line of each file",
            "add TBLPROPERTIES ('skip.header.line.count'='1')")
    types = {c["Name"]: c["Type"].lower() for c in sd.get("Columns") or []}
    require(types.get("dep_delay") in ("int", "integer", "bigint", "smallint", "double", "float"),
            f"dep_delay is declared {types.get('dep_delay', 'missing')}",
            "declare dep_delay as a number (int) so AVG works")
    _, rows = _query(aws, f"SELECT count(*), count(DISTINCT carrier) FROM {CSV_TABLE}")
    require(int(rows[0][0]) == N_FLIGHTS, f"{CSV_TABLE} returns {rows[0][0]} rows, the data set has "
            f"{N_FLIGHTS}", "check the column list, delimiter and header skipping")
    require(int(rows[0][1]) == 16, f"{CSV_TABLE} has {rows[0][1]} distinct carriers, not 16",
            "the columns are misaligned: declare them in the file's order (day ... time_hour)")


def check_queries(aws, carrier_qid, routes_qid) -> None:
    """Task 3: delay by airline (a join with airlines) and the ten busiest routes, both real results."""
    f = _expected_flights()
    from labkit import datasets

    names = datasets.airlines().set_index("carrier")["name"]
    want = f.groupby("carrier").agg(flights=("flight", "size"), avg_dep_delay=("dep_delay", "mean"))
    want.index = want.index.map(names)
    execution = _execution(aws, carrier_qid, "delay by airline")
    require(AIRLINES_TABLE in execution["Query"].lower() and "join" in execution["Query"].lower(),
            "the delay-by-airline query does not join the airlines table",
            f"JOIN {AIRLINES_TABLE} ON the carrier code to show each airline's name")
    cols, rows = _rows(aws, carrier_qid)
    require(cols[:3] == ["name", "flights", "avg_dep_delay"],
            f"the delay-by-airline columns are {cols}", "select name, flights, avg_dep_delay (in that order)")
    require(len(rows) == len(want), f"the delay-by-airline query returned {len(rows)} rows, "
            f"not one per airline ({len(want)})", "GROUP BY the airline over the whole year")
    got = {r[0]: (int(r[1]), float(r[2])) for r in rows}
    for name, row in want.iterrows():
        require(name in got, f"airline {name!r} is missing from the result", "join every carrier")
        flights, delay = got[name]
        require(flights == row["flights"], f"{name}: {flights} flights, expected {row['flights']}",
                "count every flight of the year (all partitions)")
        require(abs(delay - row["avg_dep_delay"]) < 0.01,
                f"{name}: average delay {delay:.2f}, expected {row['avg_dep_delay']:.2f}",
                "average dep_delay (departure delay), not arr_delay")
    delays = [float(r[2]) for r in rows]
    require(delays == sorted(delays, reverse=True), "the airlines are not ordered by average delay",
            "ORDER BY avg_dep_delay DESC")
    routes = f.groupby(["origin", "dest"]).size().sort_values(ascending=False, kind="mergesort")
    top = routes.head(10)
    _execution(aws, routes_qid, "busiest routes")
    cols, rows = _rows(aws, routes_qid)
    require(cols[:3] == ["origin", "dest", "flights"], f"the busiest-routes columns are {cols}",
            "select origin, dest, flights (in that order)")
    require(len(rows) == 10, f"the busiest-routes query returned {len(rows)} rows", "LIMIT 10")
    got = [(r[0], r[1], int(r[2])) for r in rows]
    require([g[2] for g in got] == list(top.values),
            f"the route counts {[g[2] for g in got]} are not the ten largest {list(top.values)}",
            "ORDER BY flights DESC before LIMIT 10")
    require(all(routes[(o, d)] == n for o, d, n in got), "a route's count does not match the data",
            "GROUP BY origin, dest and count(*)")


def check_parquet_table(aws) -> None:
    """Task 4: CTAS wrote real Parquet, partitioned by month, under curated/flights_parquet/."""
    table = _table(aws, PARQUET_TABLE)
    sd = table.get("StorageDescriptor") or {}
    serde = (sd.get("SerdeInfo") or {}).get("SerializationLibrary", "")
    require("parquet" in serde.lower() or "parquet" in (sd.get("InputFormat") or "").lower(),
            f"{PARQUET_TABLE} is stored with {serde or sd.get('InputFormat')}",
            "use CREATE TABLE ... WITH (format = 'PARQUET', ...) AS SELECT")
    location = sd.get("Location", "").rstrip("/")
    require(location == f"s3://{aws.bucket}/{PARQUET_PREFIX.rstrip('/')}",
            f"{PARQUET_TABLE} lives at {location}",
            f"set external_location = 's3://{aws.bucket}/{PARQUET_PREFIX}'")
    keys = [k["Name"] for k in table.get("PartitionKeys") or []]
    require(keys == ["month"], f"{PARQUET_TABLE} partition keys are {keys or 'none'}",
            "add partitioned_by = ARRAY['month'] (and select month last)")
    listing = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=PARQUET_PREFIX).get("Contents", [])
    require(len(listing) >= 12, f"only {len(listing)} objects under {PARQUET_PREFIX}",
            "the CTAS must write the data (one folder per month)")
    head = aws.client("s3").get_object(Bucket=aws.bucket, Key=listing[0]["Key"], Range="bytes=0-3")["Body"].read()
    require(head == b"PAR1", f"{listing[0]['Key']} is not a Parquet file", "use format = 'PARQUET'")
    csv = _table(aws, CSV_TABLE)
    every = [c["Name"] for c in (csv.get("StorageDescriptor") or {}).get("Columns") or []]
    every += [k["Name"] for k in csv.get("PartitionKeys") or [] if k["Name"] != "month"]
    cols = {c["Name"] for c in sd.get("Columns") or []}
    lacking = [c for c in every if c not in cols]
    require(not lacking, f"{PARQUET_TABLE} lacks the column(s) {lacking} of {CSV_TABLE}",
            "select every column of the CSV table (year included, month last)")
    _, rows = _query(aws, f"SELECT count(*) FROM {CSV_TABLE}")
    source = int(rows[0][0])
    _, rows = _query(aws, f"SELECT count(*) FROM {PARQUET_TABLE}")
    copied = int(rows[0][0])
    require(copied <= source, f"{PARQUET_TABLE} holds {copied} rows, more than the {source} of {CSV_TABLE}",
            "run the CTAS once over a fresh location: drop the table and delete its old files first")
    require(copied == source, f"{PARQUET_TABLE} holds {copied} rows, {CSV_TABLE} has {source}",
            "copy every row (no WHERE, no LIMIT)")


def _normalised(sql: str) -> str:
    return " ".join(sql.split()).lower()


def _same(a: list, b: list) -> bool:
    """Equal result rows, numbers compared with a relative tolerance (sums may be ordered differently)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if len(ra) != len(rb):
            return False
        for x, y in zip(ra, rb):
            if x == y:
                continue
            try:
                if abs(float(x) - float(y)) > 1e-9 * max(1.0, abs(float(x))):
                    return False
            except (TypeError, ValueError):
                return False
    return True


def check_scan_comparison(aws, csv_qid, parquet_qid, scanned) -> None:
    """Task 5: the same July query on both tables; Parquet scans far less; partition pruning used."""
    a = _execution(aws, csv_qid, "the CSV query")
    b = _execution(aws, parquet_qid, "the Parquet query")
    require(CSV_TABLE in a["Query"] and PARQUET_TABLE in b["Query"],
            "the two queries do not read flights_csv and flights_parquet respectively",
            "run the same SQL once FROM flights_csv and once FROM flights_parquet")
    # The same SQL (judged from the text: a wrong Parquet table is Task 4's mistake, not this one's),
    # or the same result however it is written.
    same_sql = _normalised(a["Query"]).replace(CSV_TABLE, PARQUET_TABLE) == _normalised(b["Query"])
    require(same_sql or _same(_rows(aws, csv_qid)[1], _rows(aws, parquet_qid)[1]),
            "the CSV and Parquet queries are not the same question (different SQL and results)",
            "run the same SQL on both tables, only the table name changing")
    csv_bytes = a["Statistics"]["DataScannedInBytes"]
    pq_bytes = b["Statistics"]["DataScannedInBytes"]
    require(isinstance(scanned, dict) and scanned.get("csv") == csv_bytes and scanned.get("parquet") == pq_bytes,
            f"scanned = {scanned!r} does not hold the DataScannedInBytes of the two queries "
            f"({csv_bytes}, {pq_bytes})", "read Statistics.DataScannedInBytes from get_query_execution")
    total = sum(o["Size"] for o in aws.client("s3").list_objects_v2(
        Bucket=aws.bucket, Prefix="raw/flights/").get("Contents", []))
    require(csv_bytes < total / 6, f"the CSV query scanned {csv_bytes:,} bytes of {total:,}: every month "
            "was read", "filter on the partition column (WHERE month = 7) so Athena prunes the others")
    require(pq_bytes * 3 < csv_bytes, f"the Parquet query scanned {pq_bytes:,} bytes, not much less than "
            f"CSV's {csv_bytes:,}", "select only the columns you need from the Parquet table")


def check_cleanup(aws) -> None:
    """Clean-up: workgroup, tables, database, query results and the Parquet copy are gone."""
    try:
        exists = bool(aws.client("athena").get_work_group(WorkGroup=WORKGROUP).get("WorkGroup"))
    except ClientError:
        exists = False
    require(not exists, f"workgroup '{WORKGROUP}' still exists",
            "delete it with athena.delete_work_group(..., RecursiveDeleteOption=True)")
    try:
        tables = aws.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]
        fail(f"database {DATABASE} still exists (tables: {[t['Name'] for t in tables]})",
             "DROP TABLE each table, then DROP DATABASE")
    except ClientError as exc:
        require(exc.response["Error"]["Code"] == "EntityNotFoundException", "cannot read the catalog",
                "check your permissions")
    for prefix in (RESULTS_PREFIX, PARQUET_PREFIX):
        require_prefix_gone(aws, prefix, "DROP TABLE does not delete data: delete the objects under that prefix")
