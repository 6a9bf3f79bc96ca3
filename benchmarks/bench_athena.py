"""Emulation overhead of the local Athena: the same query through boto3 -> local Athena (parse, Glue
catalog, S3 objects, DuckDB, CSV results, polling, get_query_results) vs DuckDB alone on the same
files on local disk. Measured as ratios in one run.

    .venv/bin/python benchmarks/bench_athena.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = """day int, dep_time int, sched_dep_time int, dep_delay int, arr_time int,
  sched_arr_time int, arr_delay int, carrier string, flight int, tailnum string, origin string,
  dest string, air_time int, distance int, hour int, minute int, time_hour timestamp"""
DUCK_COLUMNS = {c.split()[0]: {"int": "INTEGER", "string": "VARCHAR", "timestamp": "TIMESTAMP"}[c.split()[1]]
                for c in (x.strip() for x in COLUMNS.split(","))}
QUERIES = {
    "GROUP BY carrier, full year (CSV)":
        "SELECT carrier, count(*) AS n, avg(dep_delay) AS d FROM {t} GROUP BY carrier ORDER BY carrier",
    "one month, partition-pruned (CSV)":
        "SELECT origin, avg(dep_delay) AS d FROM {t} WHERE month = 7 GROUP BY origin ORDER BY origin",
    "top routes, full year (CSV)":
        "SELECT origin, dest, count(*) AS n FROM {t} GROUP BY origin, dest ORDER BY n DESC LIMIT 10",
}


def paired_times(local, direct, repeat: int) -> tuple[float, float, float]:
    """Median time of each side and the median of the per-pair ratios, the two run in turn
    (local, direct, local, direct, ...) so that a machine whose speed drifts (shared cores)
    slows both sides of a pair alike. A warm-up of each first (the local Athena copies the S3
    objects into its file cache once)."""
    local(), direct()
    t_local, t_direct, ratios = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        local()
        t_local.append(time.perf_counter() - start)
        start = time.perf_counter()
        direct()
        t_direct.append(time.perf_counter() - start)
        ratios.append(t_local[-1] / t_direct[-1])
    return statistics.median(t_local), statistics.median(t_direct), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import duckdb

    import labkit
    from labkit import datasets

    aws = labkit.connect(quiet=True)
    s3, athena = aws.client("s3"), aws.client("athena")
    bucket = "bench-athena"
    s3.create_bucket(Bucket=bucket)
    tmp = Path(tempfile.mkdtemp(prefix="bench-athena-"))
    layout = list(datasets.raw_layout())
    for key, body in layout:
        if key.startswith("raw/flights/"):
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            (tmp / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp / key).write_bytes(body)

    def run(sql: str) -> list:
        qid = athena.start_query_execution(
            QueryString=sql, QueryExecutionContext={"Database": "bench"},
            ResultConfiguration={"OutputLocation": f"s3://{bucket}/results/"})["QueryExecutionId"]
        while True:
            state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
            if state not in ("QUEUED", "RUNNING"):
                break
            time.sleep(0.005)
        assert state == "SUCCEEDED", athena.get_query_execution(QueryExecutionId=qid)
        rows = []
        for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
            rows += page["ResultSet"]["Rows"]
        return rows

    run("CREATE DATABASE IF NOT EXISTS bench")
    run(f"""CREATE EXTERNAL TABLE IF NOT EXISTS flights ({COLUMNS}) PARTITIONED BY (year int, month int)
            ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{bucket}/raw/flights/'
            TBLPROPERTIES ('skip.header.line.count'='1')""")
    run("MSCK REPAIR TABLE flights")

    con = duckdb.connect(config={"threads": 2})
    con.execute("SET integer_division = true")
    # the same reader settings the engine uses (explicit columns, no sniffing), so the ratio is the
    # emulation overhead alone: catalog, S3 objects, pruning, result formatting, HTTP round trips
    con.execute(f"""CREATE VIEW flights AS SELECT * FROM read_csv('{tmp}/raw/flights/*/*/*.csv',
        hive_partitioning = true, header = true, auto_detect = false, delim = ',', quote = '',
        escape = '', columns = {DUCK_COLUMNS!r}, hive_types = {{'year': 'INTEGER', 'month': 'INTEGER'}})""")

    rows = []
    for label, sql in QUERIES.items():
        query = sql.format(t="flights")
        local = run(query)
        direct = con.execute(query).fetchall()
        assert len(local) - 1 == len(direct), (label, len(local), len(direct))
        rows.append((label, *paired_times(lambda q=query: run(q), lambda q=query: con.execute(q).fetchall(),
                                          args.repeat)))

    print(f"local Athena vs DuckDB alone, same {sum(1 for k, _ in layout if k.startswith('raw/flights/'))} "
          f"CSV files, {args.repeat} pairs run in turn; ratio = median of the per-pair ratios")
    print(f"{'query':<38} {'local Athena':>13} {'DuckDB':>9} {'ratio':>7}")
    for label, a, d, ratio in rows:
        print(f"{label:<38} {a * 1000:>10.0f} ms {d * 1000:>6.0f} ms {ratio:>6.2f}x")
    total_a, total_d = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'all queries (sum of medians)':<38} {total_a * 1000:>10.0f} ms {total_d * 1000:>6.0f} ms "
          f"{total_a / total_d:>6.2f}x")


if __name__ == "__main__":
    main()
