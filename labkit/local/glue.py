"""Glue engine: crawlers really infer schemas and partitions, Python shell jobs really run.

moto stores crawlers and jobs but a crawl creates nothing and a job run "succeeds" at once without
running. This engine (hooks on ``moto.glue.models.GlueBackend`` / ``FakeCrawler`` and
``moto.glue.responses.GlueResponse``) makes them work:

- ``start_crawler`` lists the S3 targets, groups objects into tables the way AWS's crawler does
  (one table per folder whose files share a schema; ``key=value/`` folders become partition keys,
  other sub-folders ``partition_0``, ``partition_1`` ...), infers CSV (header detection, bigint /
  double / boolean / string), JSON lines and Parquet schemas and writes AWS-shaped tables and
  partitions into moto's catalog (which the Athena engine reads), in the background, through
  READY -> RUNNING -> STOPPING -> READY with LastCrawl SUCCEEDED or FAILED and a log in
  ``/aws-glue/crawlers``.
- ``start_job_run`` of a ``pythonshell`` job downloads the script from S3 and runs it in a
  subprocess against this local AWS (``AWS_ENDPOINT_URL`` + dummy credentials) with AWS's
  ``--key value`` arguments and an ``awsglue.utils.getResolvedOptions`` shim; stdout / stderr go to
  ``/aws-glue/python-jobs/output`` / ``error``; the run ends SUCCEEDED, FAILED (ErrorMessage = the
  exception) or TIMEOUT with its real ExecutionTime.
- Schedules (crawlers, triggers) are validated as AWS cron expressions; ``update_crawler``,
  ``update_job`` and ``get_crawler_metrics`` (HTTP 500 in moto) are implemented.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from labkit.local import clock

SAMPLE_BYTES = 1024 * 1024
SAMPLE_FILES = 24
CSV_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
JOB_COMMANDS = ("glueetl", "pythonshell", "gluestreaming", "glueray")
RUNTIME_DIR = Path(__file__).with_name("glue_runtime")  # the awsglue shim for Python shell jobs

_request = threading.local()  # the Host header of the request that started a job run
_crawler_lock = threading.RLock()  # as_dict briefly hides crawls from moto; starts must not race it
_ORIGINAL: dict[str, Any] = {}


# --- errors -------------------------------------------------------------------------------------
def _error(code: str, message: str):
    from moto.glue.exceptions import GlueClientError

    return GlueClientError(code, message)


# --- cron schedules -----------------------------------------------------------------------------
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
_CRON_FIELDS = (("minutes", 0, 59, ()), ("hours", 0, 23, ()), ("day-of-month", 1, 31, ()),
                ("month", 1, 12, _MONTHS), ("day-of-week", 1, 7, _DAYS), ("year", 1970, 2199, ()))


def _cron_value(token: str, low: int, high: int, names) -> bool:
    if token.upper() in names:
        return True
    return token.isdigit() and low <= int(token) <= high


def _cron_field(value: str, index: int) -> bool:
    name, low, high, names = _CRON_FIELDS[index]
    if value in ("*", "?"):
        return value == "*" or index in (2, 4)
    if index == 2 and re.fullmatch(r"L|LW|\d{1,2}W|L-\d{1,2}", value):
        return True
    if index == 4 and re.fullmatch(r"[1-7A-Za-z]{1,3}(#[1-5]|L)", value):
        return True
    for part in value.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            return False
        if base == "*":
            continue
        ends = base.split("-")
        if len(ends) > 2 or not all(_cron_value(e, low, high, names) for e in ends):
            return False
    return True


def validate_schedule(expression: str) -> None:
    """AWS Glue's schedule syntax: ``cron(min hour day-of-month month day-of-week year)`` with
    exactly one of day-of-month / day-of-week given as ``?``."""
    match = re.fullmatch(r"\s*cron\((.*)\)\s*", expression or "")
    fields = match.group(1).split() if match else []
    problem = None
    if len(fields) != 6:
        problem = "a schedule is cron() with 6 fields: minutes hours day-of-month month day-of-week year"
    elif (fields[2] == "?") == (fields[4] == "?"):
        problem = "exactly one of day-of-month and day-of-week must be '?'"
    else:
        for index, value in enumerate(fields):
            if not _cron_field(value, index):
                problem = f"the {_CRON_FIELDS[index][0]} field {value!r} is not valid"
                break
    if problem:
        raise _error("InvalidInputException", f"Invalid schedule expression: {expression} ({problem})")


# --- S3 access (moto's backend, in process) ------------------------------------------------------
def _s3(account_id: str):
    from moto.s3.models import s3_backends

    return s3_backends[account_id]["aws"]


def _split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3:// path")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def _read(account_id: str, bucket: str, key: str, limit: int | None = None) -> bytes:
    value = _s3(account_id).get_object(bucket, key).value
    if key.endswith(".gz"):
        value = gzip.decompress(value) if limit is None else _gunzip_head(value, limit)
    return value if limit is None else value[:limit]


def _gunzip_head(value: bytes, limit: int) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(value)) as handle:
        return handle.read(limit)


# --- schema inference ---------------------------------------------------------------------------
def _scalar_type(text: str) -> str:
    if re.fullmatch(r"[+-]?\d+", text):
        return "bigint"
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", text) or text in ("NaN",):
        return "double"
    if text.lower() in ("true", "false"):
        return "boolean"
    return "string"


def _merge(a: str | None, b: str | None) -> str | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    numeric = ("int", "bigint", "double")
    if a in numeric and b in numeric:
        return max(a, b, key=numeric.index)
    return "string"


def _infer_csv(sample: bytes) -> dict[str, Any]:
    text = sample.decode("utf-8", errors="replace")
    if len(sample) >= SAMPLE_BYTES:  # drop the cut-off last line
        text = text[:text.rfind("\n") + 1]
    dialect_delimiter = max(",\t|;", key=lambda d: text.split("\n", 1)[0].count(d))
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=dialect_delimiter) if r]
    if not rows:
        return {"columns": [], "header": False}
    first, data = rows[0], rows[1:]
    width = max(len(r) for r in rows)
    types: list[str | None] = [None] * width
    for row in data:
        for i, value in enumerate(row):
            if value.strip() != "":
                types[i] = _merge(types[i], _scalar_type(value.strip()))
    # AWS: the first row is a header when every value is a non-numeric string, they are distinct,
    # and the data below has at least one column that is not STRING.
    header = (bool(data) and all(v.strip() and _scalar_type(v.strip()) == "string" for v in first)
              and len(set(first)) == len(first) and any(t not in (None, "string") for t in types))
    if not header:
        for i, value in enumerate(first):
            if value.strip() != "":
                types[i] = _merge(types[i], _scalar_type(value.strip()))
    names = ([_column_name(v) for v in first] + [f"col{i}" for i in range(len(first), width)]
             if header else [f"col{i}" for i in range(width)])
    quoted = '"' in text
    return {"columns": [(n, t or "string") for n, t in zip(names, types)], "header": header,
            "delimiter": dialect_delimiter, "quoted": quoted,
            "records": len(data) if header else len(rows), "bytes": len(text.encode())}


def _column_name(value: str) -> str:
    return value.strip().lower()


def _json_type(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int" if -2**31 <= value < 2**31 else "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        inner = [f"{k.lower()}:{_json_type(v) or 'string'}" for k, v in value.items()]
        return f"struct<{','.join(inner)}>"
    if isinstance(value, list):
        element = None
        for item in value:
            element = _merge(element, _json_type(item))
        return f"array<{element or 'string'}>"
    return "string"


def _infer_json(sample: bytes) -> dict[str, Any] | None:
    text = sample.decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(sample) >= SAMPLE_BYTES:
        lines = lines[:-1]
    columns: dict[str, str | None] = {}
    count = 0
    for line in lines[:2000]:
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        count += 1
        for key, value in record.items():
            name = key.lower()
            columns[name] = _merge(columns.get(name), _json_type(value))
    if not count:
        return None
    return {"columns": [(k, v or "string") for k, v in columns.items()],
            "records": len(lines), "bytes": len(text.encode())}


_ARROW = {"int8": "tinyint", "int16": "smallint", "int32": "int", "int64": "bigint",
          "uint8": "smallint", "uint16": "int", "uint32": "bigint", "uint64": "bigint",
          "float": "float", "halffloat": "float", "double": "double", "bool": "boolean",
          "string": "string", "large_string": "string", "binary": "binary", "date32[day]": "date"}


def _arrow_type(arrow_type) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_dictionary(arrow_type):
        return _arrow_type(arrow_type.value_type)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"array<{_arrow_type(arrow_type.value_type)}>"
    if pa.types.is_struct(arrow_type):
        fields = ",".join(f"{f.name}:{_arrow_type(f.type)}" for f in arrow_type)
        return f"struct<{fields}>"
    return _ARROW.get(str(arrow_type), "string")


def _infer_parquet(account_id: str, bucket: str, key: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(io.BytesIO(_read(account_id, bucket, key)))
    columns = [(f.name.lower(), _arrow_type(f.type)) for f in handle.schema_arrow]
    return {"columns": columns, "records": handle.metadata.num_rows}


def _classify(account_id: str, bucket: str, key: str) -> dict[str, Any] | None:
    """Classification and schema of one object, or None when no built-in classifier matches."""
    name = key.rsplit("/", 1)[-1].lower()
    compression = "gzip" if name.endswith(".gz") else "none"
    if name.endswith(".parquet") or _s3(account_id).get_object(bucket, key).value[:4] == b"PAR1":
        result = _infer_parquet(account_id, bucket, key)
        result.update(classification="parquet", compression="none")
        return result
    sample = _read(account_id, bucket, key, SAMPLE_BYTES)
    if sample.lstrip()[:1] in (b"{",):
        result = _infer_json(sample)
        if result is not None:
            result.update(classification="json", compression=compression)
            return result
    result = _infer_csv(sample)
    if len(result["columns"]) < 2:  # AWS's CSV classifier needs two or more columns
        return None
    result.update(classification="csv", compression=compression)
    return result


def _compatible(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same classification and (for CSV: the same) column names, or >= 70 % shared for JSON."""
    if a["classification"] != b["classification"]:
        return False
    names_a, names_b = [c[0] for c in a["columns"]], [c[0] for c in b["columns"]]
    if a["classification"] == "csv":
        return names_a == names_b
    union = set(names_a) | set(names_b)
    return bool(union) and len(set(names_a) & set(names_b)) / len(union) >= 0.7


def _combine(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(schemas[0])
    columns: dict[str, str | None] = {}
    for schema in schemas:
        for name, kind in schema["columns"]:
            columns[name] = _merge(columns.get(name), kind)
    merged["columns"] = [(n, t or "string") for n, t in columns.items()]
    merged["quoted"] = any(s.get("quoted") for s in schemas)
    return merged


# --- grouping objects into tables ---------------------------------------------------------------
def _excluded(relative: str, patterns: list[str]) -> bool:
    for pattern in patterns or []:
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if re.match(regex, relative) or fnmatch.fnmatch(relative, pattern):
            return True
    return False


def _plan(root: str, files: list[tuple[list[str], dict]], out: list) -> None:
    """Decide table roots: ``files`` are (path parts below ``root``, object info)."""
    depths = {len(parts) for parts, _ in files}
    if len(depths) == 1:
        schemas = [info["schema"] for _, info in files]
        if all(_compatible(schemas[0], s) for s in schemas[1:]):
            out.append((root, files))
            return
    groups: dict[str, list] = {}
    for parts, info in files:
        if len(parts) == 1:
            groups.setdefault("", []).append((parts, info))
        else:
            groups.setdefault(parts[0], []).append((parts[1:], info))
    if list(groups) == [""]:  # files side by side with different schemas: one table per file
        for parts, info in files:
            out.append((root + parts[0], [([parts[0]], info)]))
        return
    for folder, members in groups.items():
        if folder == "":
            for parts, info in members:
                out.append((root + parts[0], [([parts[0]], info)]))
        else:
            _plan(f"{root}{folder}/", members, out)


def _table_name(root: str, prefix: str | None) -> str:
    base = root.rstrip("/").rsplit("/", 1)[-1] or root.strip("/")
    base = re.sub(r"\.(csv|json|parquet|gz|txt)$", "", base.lower())
    return (prefix or "") + re.sub(r"[^a-z0-9_]", "_", base)


def _serde(schema: dict[str, Any]) -> tuple[dict, str, str, dict]:
    kind = schema["classification"]
    if kind == "parquet":
        return ({"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
                PARQUET_INPUT, PARQUET_OUTPUT, {})
    if kind == "json":
        paths = ",".join(name for name, _ in schema["columns"])
        return ({"SerializationLibrary": JSON_SERDE, "Parameters": {"paths": paths}},
                TEXT_INPUT, TEXT_OUTPUT, {})
    delimiter = schema.get("delimiter", ",")
    extra = {"delimiter": delimiter, "columnsOrdered": "true",
             "areColumnsQuoted": "true" if schema.get("quoted") else "false"}
    if schema.get("header"):
        extra["skip.header.line.count"] = "1"
    if schema.get("quoted"):
        serde = {"SerializationLibrary": OPEN_CSV_SERDE,
                 "Parameters": {"separatorChar": delimiter, "quoteChar": '"'}}
    else:
        serde = {"SerializationLibrary": CSV_SERDE, "Parameters": {"field.delim": delimiter}}
    return serde, TEXT_INPUT, TEXT_OUTPUT, extra


def _table_input(name: str, bucket: str, root: str, schema: dict, files: list, crawler: str,
                 partition_keys: list[str]) -> dict[str, Any]:
    serde, input_format, output_format, extra = _serde(schema)
    size = sum(info["size"] for _, info in files)
    sampled = [info["schema"] for _, info in files if "records" in info["schema"]]
    records_per_byte = None
    if sampled and schema["classification"] != "parquet":
        sample_bytes = sum(s.get("bytes", 0) for s in sampled) or 1
        records_per_byte = sum(s["records"] for s in sampled) / sample_bytes
    record_count = (sum(info["schema"].get("records", 0) for _, info in files)
                    if schema["classification"] == "parquet"
                    else round(size * (records_per_byte or 0)))
    parameters = {
        "CrawlerSchemaDeserializerVersion": "1.0", "CrawlerSchemaSerializerVersion": "1.0",
        "UPDATED_BY_CRAWLER": crawler, "classification": schema["classification"],
        "compressionType": schema.get("compression", "none"), "typeOfData": "file",
        "objectCount": str(len(files)), "sizeKey": str(size), "recordCount": str(record_count),
        "averageRecordSize": str(round(size / record_count) if record_count else 0), **extra}
    location = f"s3://{bucket}/{root}" if root.endswith("/") or not root else f"s3://{bucket}/{root}"
    return {
        "Name": name, "Owner": "owner", "Retention": 0, "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [{"Name": key, "Type": "string"} for key in partition_keys],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in schema["columns"]],
            "Location": location, "InputFormat": input_format, "OutputFormat": output_format,
            "Compressed": schema.get("compression", "none") != "none", "NumberOfBuckets": -1,
            "SerdeInfo": serde, "BucketColumns": [], "SortColumns": [],
            "Parameters": dict(parameters), "StoredAsSubDirectories": False},
    }


# --- crawls -------------------------------------------------------------------------------------
class LocalCrawl:
    """One crawl (``list_crawls`` entry); its status drives the crawler's State."""

    def __init__(self, crawler_name: str):
        self.crawl_id = str(uuid.uuid4())
        self.status = "RUNNING"  # RUNNING | STOPPING (crawler cleaning up) | COMPLETED | FAILED | STOPPED
        self.start_time = clock.now()
        self.end_time = None
        self.error_message = None
        self.cancel_requested = False
        self.log_group = "/aws-glue/crawlers"
        self.log_stream = crawler_name
        self.message_prefix = self.crawl_id
        self.summary = {"TABLE": {}, "PARTITION": {}}
        self.dpu_hour = 0.0

    def advance(self) -> None:  # moto calls this from list_crawls; state moves in the worker
        pass

    def count(self, kind: str, action: str, n: int = 1) -> None:
        self.summary[kind].setdefault(action, {"Count": 0})["Count"] += n

    def as_dict(self) -> dict[str, Any]:
        state = "RUNNING" if self.status in ("RUNNING", "STOPPING") else self.status
        out = {"CrawlId": self.crawl_id, "State": state, "StartTime": self.start_time,
               "LogGroup": self.log_group, "LogStream": self.log_stream,
               "MessagePrefix": self.message_prefix, "DPUHour": self.dpu_hour,
               "Summary": json.dumps({k: v for k, v in self.summary.items() if v})}
        if self.end_time:
            out["EndTime"] = self.end_time
        if self.error_message:
            out["ErrorMessage"] = self.error_message
        return out


def _log(account_id: str, region: str, group: str, stream: str, lines: list[str]) -> None:
    from moto.logs.models import logs_backends

    lines = [line for line in lines if line]
    if not lines:
        return
    logs = logs_backends[account_id][region]
    logs.ensure_log_group(group)
    logs.ensure_log_stream(group, stream)
    stamp = int(clock.now().timestamp() * 1000)
    logs.put_log_events(group, stream, [{"timestamp": stamp, "message": line} for line in lines])


def _crawl(backend, crawler, crawl: LocalCrawl) -> None:
    """The crawl itself (background worker)."""
    started = time.monotonic()
    prefix = f"[{crawl.crawl_id}]"
    messages = [f"{prefix} BENCHMARK : Running Start Crawl for Crawler {crawler.name}"]
    try:
        _crawl_targets(backend, crawler, crawl, messages)
        if crawl.cancel_requested:
            crawl.status = "STOPPED"
        else:
            crawl.status = "STOPPING"  # AWS passes through STOPPING while it finishes up
            time.sleep(0.3)
            crawl.status = "COMPLETED"
        messages.append(f"{prefix} BENCHMARK : Crawler has finished running and is in state READY")
    except Exception as exc:  # the crawl fails, the server does not
        crawl.error_message = str(exc) if not hasattr(exc, "message") else exc.message
        messages.append(f"{prefix} ERROR : {crawl.error_message}")
        crawl.status = "FAILED"
    finally:
        crawl.end_time = clock.now()
        elapsed = time.monotonic() - started
        crawl.dpu_hour = round(elapsed / 3600 * 2, 6)
        crawler.crawl_elapsed_time = 0
        crawler.last_runtime_seconds = elapsed
        try:
            _log(backend.account_id, backend.region_name, "/aws-glue/crawlers", crawler.name,
                 messages)
        except Exception:
            pass


def _crawl_targets(backend, crawler, crawl: LocalCrawl, messages: list[str]) -> None:
    database = crawler.database_name
    if not database:
        raise _error("InvalidInputException", "The crawler has no DatabaseName to write tables to")
    if database not in backend.databases:  # AWS's crawler creates its target database
        backend.create_database(database, {"Name": database})
        messages.append(f"[{crawl.crawl_id}] INFO : Created database {database}")
    targets = (crawler.targets or {}).get("S3Targets") or []
    if not targets:
        raise _error("InvalidInputException", "The crawler has no S3 targets")
    prefix = f"[{crawl.crawl_id}]"
    policy = crawler.schema_change_policy or {}
    for target in targets:
        bucket, root = _split_s3(target["Path"])
        try:
            keys = _s3(backend.account_id).get_bucket(bucket).keys
        except Exception:
            raise _error("EntityNotFoundException",
                         f"Error Access Denied or bucket not found: {target['Path']}") from None
        is_folder = root == "" or root.endswith("/") or any(
            k.startswith(root.rstrip("/") + "/") for k in keys.keys())
        base = (root.rstrip("/") + "/") if is_folder and root else root
        files = []
        for key in sorted(keys.keys()):
            if crawl.cancel_requested:
                return
            if not key.startswith(base) or key.endswith("/"):
                continue
            relative = key[len(base):] if is_folder else key.rsplit("/", 1)[-1]
            name = relative.rsplit("/", 1)[-1]
            if name.startswith(("_", ".")) or _excluded(relative, target.get("Exclusions")):
                continue
            size = len(keys[key].value) if hasattr(keys[key], "value") else 0
            if size == 0:
                continue
            files.append((relative.split("/") if is_folder else [relative],
                          {"key": key, "size": size}))
        # classify a sample: every file of a small folder, else one per leaf folder (+ first files)
        seen_dirs: set[str] = set()
        for index, (parts, info) in enumerate(files):
            folder = "/".join(parts[:-1])
            if index < SAMPLE_FILES or folder not in seen_dirs:
                info["schema"] = _classify(backend.account_id, bucket, info["key"])
                seen_dirs.add(folder)
        by_dir: dict[str, dict] = {}
        for parts, info in files:
            if info.get("schema"):
                by_dir.setdefault("/".join(parts[:-1]), info["schema"])
        for parts, info in files:
            if "schema" not in info:
                info["schema"] = by_dir.get("/".join(parts[:-1]))
        files = [(p, i) for p, i in files if i.get("schema")]
        plan: list = []
        if files:
            _plan(base if is_folder else root, files, plan)
        for table_root, members in plan:
            _write_table(backend, crawler, crawl, database, bucket, table_root, members, policy,
                         messages, prefix)


def _write_table(backend, crawler, crawl, database, bucket, table_root, members, policy,
                 messages, prefix) -> None:
    from moto.glue.exceptions import TableNotFoundException

    depth = len(members[0][0]) - 1
    keys = []
    for level in range(depth):
        values = {parts[level] for parts, _ in members}
        if all("=" in v for v in values) and len({v.split("=", 1)[0] for v in values}) == 1:
            keys.append(next(iter(values)).split("=", 1)[0].lower())
        else:
            keys.append(f"partition_{level}")
    schema = _combine([info["schema"] for _, info in members])
    partition_names = {k for k in keys}
    schema["columns"] = [c for c in schema["columns"] if c[0] not in partition_names]
    name = _table_name(table_root, crawler.table_prefix)
    table_input = _table_input(name, bucket, table_root, schema, members, crawler.name, keys)
    try:
        existing = backend.get_table(database, name)
    except TableNotFoundException:
        existing = None
    if existing is None:
        backend.create_table(database, name, table_input)
        crawl.count("TABLE", "ADD")
        messages.append(f"{prefix} INFO : Created table {name} in database {database}")
    elif policy.get("UpdateBehavior", "UPDATE_IN_DATABASE") == "UPDATE_IN_DATABASE":
        current = existing.get_version(str(existing._current_version))
        if (current.get("StorageDescriptor", {}).get("Columns") != table_input["StorageDescriptor"]["Columns"]
                or current.get("PartitionKeys") != table_input["PartitionKeys"]):
            backend.update_table(database, name, table_input)
            crawl.count("TABLE", "UPDATE")
            messages.append(f"{prefix} INFO : Updated table {name} in database {database}")
    if not keys:
        return
    table = backend.get_table(database, name)
    descriptor = table_input["StorageDescriptor"]
    added = 0
    for folder in sorted({"/".join(parts[:-1]) for parts, _ in members}):
        values = [p.split("=", 1)[1] if "=" in p else p for p in folder.split("/")]
        if str(values) in table.partitions:
            continue
        files_here = [info for parts, info in members if "/".join(parts[:-1]) == folder]
        partition_descriptor = dict(descriptor, Location=f"s3://{bucket}/{table_root}{folder}/",
                                    Parameters=dict(descriptor["Parameters"],
                                                    objectCount=str(len(files_here)),
                                                    sizeKey=str(sum(i["size"] for i in files_here))))
        backend.create_partition(database, name, {
            "Values": values, "StorageDescriptor": partition_descriptor,
            "Parameters": {}, "LastAccessTime": clock.now()})
        added += 1
    if added:
        crawl.count("PARTITION", "ADD", added)
        messages.append(f"{prefix} INFO : Added {added} partitions to table {name}")


def _start_crawler(self, name):
    with _crawler_lock:
        _start_crawler_locked(self, name)


def _start_crawler_locked(self, name):
    crawler = self.get_crawler(name)
    if crawler.crawls and crawler.crawls[-1].status in ("RUNNING", "STOPPING"):
        from moto.glue.exceptions import CrawlerRunningException

        raise CrawlerRunningException(f"Crawler with name {name} has already started")
    crawl = LocalCrawl(name)
    crawler.crawls.append(crawl)
    crawler.crawl_started = time.monotonic()
    from labkit.local.server import background

    background(_crawl, self, crawler, crawl)


def _stop_crawler(self, name):
    crawler = self.get_crawler(name)
    if not crawler.crawls or crawler.crawls[-1].status != "RUNNING":
        from moto.glue.exceptions import CrawlerNotRunningException

        raise CrawlerNotRunningException(f"Crawler with name {name} isn't running")
    crawler.crawls[-1].cancel_requested = True
    crawler.crawls[-1].status = "STOPPING"


_LAST_CRAWL_STATUS = {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}


def _crawler_as_dict(self) -> dict[str, Any]:
    with _crawler_lock:
        crawls = self.crawls
        self.crawls = []  # let moto build everything but LastCrawl
        try:
            data = _ORIGINAL["crawler_as_dict"](self)
        finally:
            self.crawls = crawls
    finished = [c for c in crawls if c.status in _LAST_CRAWL_STATUS]
    if finished:
        last = finished[-1]
        data["LastCrawl"] = {"Status": _LAST_CRAWL_STATUS[last.status], "LogGroup": last.log_group,
                             "LogStream": last.log_stream, "MessagePrefix": last.message_prefix,
                             "StartTime": last.start_time}
        if last.error_message:
            data["LastCrawl"]["ErrorMessage"] = last.error_message
    running = crawls and crawls[-1].status in ("RUNNING", "STOPPING")
    data["State"] = "READY" if not crawls else {"RUNNING": "RUNNING", "STOPPING": "STOPPING"}.get(
        crawls[-1].status, "READY")
    data["CrawlElapsedTime"] = (int((time.monotonic() - getattr(self, "crawl_started", 0)) * 1000)
                                if running else 0)
    if self.schedule:
        data["Schedule"] = {"ScheduleExpression": self.schedule,
                            "State": getattr(self, "schedule_state", "SCHEDULED")}
    return {k: v for k, v in data.items() if v is not None}


def _crawler_status(self) -> str:
    if not self.crawls:
        return "READY"
    return {"RUNNING": "RUNNING", "STOPPING": "STOPPING"}.get(self.crawls[-1].status, "READY")


def _create_crawler(self, name, role, database_name, description, targets, schedule, *args,
                    **kwargs):
    if schedule:
        validate_schedule(schedule)
    return _ORIGINAL["create_crawler"](self, name, role, database_name, description, targets,
                                       schedule, *args, **kwargs)


_CRAWLER_FIELDS = {"Role": "role", "DatabaseName": "database_name", "Description": "description",
                   "Targets": "targets", "Schedule": "schedule", "Classifiers": "classifiers",
                   "TablePrefix": "table_prefix", "SchemaChangePolicy": "schema_change_policy",
                   "RecrawlPolicy": "recrawl_policy", "LineageConfiguration": "lineage_configuration",
                   "Configuration": "configuration",
                   "CrawlerSecurityConfiguration": "crawler_security_configuration"}


def update_crawler(backend, name: str, changes: dict[str, Any]) -> None:
    """UpdateCrawler: only the given fields change; refused while the crawler runs."""
    crawler = backend.get_crawler(name)
    if crawler.crawls and crawler.crawls[-1].status in ("RUNNING", "STOPPING"):
        from moto.glue.exceptions import CrawlerRunningException

        raise CrawlerRunningException(f"Crawler with name {name} is running; "
                                      "it cannot be updated until it is READY")
    if changes.get("Schedule"):
        validate_schedule(changes["Schedule"])
    for field, attribute in _CRAWLER_FIELDS.items():
        if field in changes:
            setattr(crawler, attribute, changes[field])
    crawler.version += 1
    crawler.last_updated = clock.now()


def _response_update_crawler(self):
    from moto.core.responses import EmptyResult

    params = self.parameters
    update_crawler(self.glue_backend, params["Name"], {k: v for k, v in params.items() if k != "Name"})
    return EmptyResult()


def _response_update_crawler_schedule(self):
    from moto.core.responses import EmptyResult

    params = self.parameters
    update_crawler(self.glue_backend, params["CrawlerName"],
                   {"Schedule": params.get("Schedule")})
    return EmptyResult()


def _response_get_crawler_metrics(self):
    from moto.core.responses import ActionResult

    names = self.parameters.get("CrawlerNameList") or list(self.glue_backend.crawlers)
    metrics = []
    for name in names:
        crawler = self.glue_backend.crawlers.get(name)
        if crawler is None:
            continue
        done = [c for c in crawler.crawls if c.status in _LAST_CRAWL_STATUS]
        last = done[-1] if done else None
        runtimes = sorted((c.end_time - c.start_time).total_seconds() for c in done if c.end_time)
        table = last.summary.get("TABLE", {}) if last else {}
        metrics.append({
            "CrawlerName": name, "TimeLeftSeconds": 0.0, "StillEstimating": False,
            "LastRuntimeSeconds": round(getattr(crawler, "last_runtime_seconds", 0.0), 3),
            "MedianRuntimeSeconds": runtimes[len(runtimes) // 2] if runtimes else 0.0,
            "TablesCreated": table.get("ADD", {}).get("Count", 0),
            "TablesUpdated": table.get("UPDATE", {}).get("Count", 0),
            "TablesDeleted": table.get("DELETE", {}).get("Count", 0)})
    return ActionResult({"CrawlerMetricsList": metrics})


# --- jobs ---------------------------------------------------------------------------------------
def _create_job(self, name, role, command, *args, **kwargs):
    _validate_command(command)
    if name in self.jobs:
        raise _error("IdempotentParameterMismatchException",
                     f"Job {name} already exists with a different definition")
    result = _ORIGINAL["create_job"](self, name, role, command, *args, **kwargs)
    _job_defaults(self.jobs[name])
    return result


def _validate_command(command: dict | None) -> None:
    kind = (command or {}).get("Name")
    if kind not in JOB_COMMANDS:
        raise _error("InvalidInputException",
                     f"Command name should be one of {', '.join(JOB_COMMANDS)}; got {kind!r}")
    if kind == "pythonshell" and str(command.get("PythonVersion", "3.9")) not in ("3", "3.9"):
        raise _error("InvalidInputException", "Python shell jobs support PythonVersion 3 or 3.9")
    if not (command.get("ScriptLocation") or "").startswith("s3://"):
        raise _error("InvalidInputException", "Command.ScriptLocation must be an s3:// path")


def _job_defaults(job) -> None:
    """What AWS fills in for a Python shell job: 0.0625 DPU, Glue 1.0 (3 for 3.9), 48 h timeout."""
    if job.command.get("Name") == "pythonshell":
        job.command.setdefault("PythonVersion", "3.9")
        if job.max_capacity is None:
            job.max_capacity = 0.0625
        job.glue_version = job.glue_version or ("3.0" if job.command["PythonVersion"] == "3.9"
                                                else "1.0")
    job.timeout = job.timeout or 2880
    job.max_retries = job.max_retries or 0


def update_job(backend, name: str, update: dict[str, Any]) -> str:
    """UpdateJob replaces the definition: unspecified settings are reset to their defaults."""
    job = backend.get_job(name)
    _validate_command(update.get("Command"))
    job.role = update.get("Role")
    job.command = update.get("Command")
    job.description = update.get("Description")
    job.log_uri = update.get("LogUri")
    job.execution_property = update.get("ExecutionProperty") or {}
    job.default_arguments = update.get("DefaultArguments") or {}
    job.non_overridable_arguments = update.get("NonOverridableArguments")
    job.connections = update.get("Connections")
    job.max_retries = update.get("MaxRetries")
    job.allocated_capacity = update.get("AllocatedCapacity")
    job.timeout = update.get("Timeout")
    job.max_capacity = update.get("MaxCapacity")
    job.worker_type = update.get("WorkerType")
    job.number_of_workers = update.get("NumberOfWorkers")
    job.security_configuration = update.get("SecurityConfiguration")
    job.notification_property = update.get("NotificationProperty")
    job.glue_version = update.get("GlueVersion")
    job.execution_class = update.get("ExecutionClass") or "STANDARD"
    job.last_modified_on = clock.now()
    _job_defaults(job)
    return name


def _response_update_job(self):
    from moto.core.responses import ActionResult

    params = self.parameters
    if not params.get("JobUpdate", {}).get("Role"):
        raise _error("InvalidInputException", "JobUpdate.Role is required")
    return ActionResult({"JobName": update_job(self.glue_backend, params["JobName"],
                                               params["JobUpdate"])})


def _local_job_run_class():
    from moto.glue.models import FakeJobRun

    class LocalJobRun(FakeJobRun):
        """A job run whose state is the real process's, not moto's state manager."""

        @property
        def status(self):
            return self._status

        @status.setter
        def status(self, value):
            self._status = value

        def advance(self) -> None:
            pass

        def as_dict(self) -> dict[str, Any]:
            data = FakeJobRun.as_dict(self)
            data["ExecutionTime"] = int(round(self.execution_time))
            data["LogGroupName"] = "/aws-glue/python-jobs"
            data["GlueVersion"] = self.glue_version
            data["MaxCapacity"] = self.max_capacity
            for key in ("WorkerType", "NumberOfWorkers", "AllocatedCapacity"):
                data.pop(key, None)
            if self._status in ("STARTING", "RUNNING"):
                data.pop("CompletedOn", None)
            if self.error_message:
                data["ErrorMessage"] = self.error_message
            return {k: v for k, v in data.items() if v is not None}

    return LocalJobRun


def _response_start_job_run(self):
    _request.host = self.headers.get("Host")
    try:
        return _ORIGINAL["response_start_job_run"](self)
    finally:
        _request.host = None


def _start_job_run(self, name, *args, **kwargs):
    job = self.get_job(name)
    run_id = _ORIGINAL["start_job_run"](self, name, *args, **kwargs)
    run = job.get_job_run(run_id)
    run.__class__ = _LOCAL_RUN_CLASS
    run._status = "STARTING"
    run.execution_time = 0.0
    run.error_message = None
    run.glue_version = job.glue_version
    run.started_on = run.modified_on = clock.now()
    run.timeout = run.timeout or job.timeout or 2880
    host = getattr(_request, "host", None) or os.environ.get("AWS_ENDPOINT_URL", "").split("//")[-1]
    from labkit.local.server import background

    background(_run_job, self, job, run, f"http://{host}")
    return run_id


def job_argv(script: str, job, run) -> list[str]:
    """sys.argv as AWS builds it for a Python shell job: the script, the run's identity, then every
    argument as ``--key value``."""
    argv = [script, "--JOB_ID", f"j_{uuid.uuid5(uuid.NAMESPACE_URL, job.arn).hex}",
            "--JOB_RUN_ID", run.job_run_id, "--JOB_NAME", job.name]
    for key, value in (run.arguments or {}).items():
        if key.startswith("--"):  # other keys (e.g. library-set) are settings Glue consumes
            argv += [key, str(value)]
    return argv


def _text(output) -> str:
    """Captured output of a killed process: bytes, text or None."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _exception_line(stderr: str) -> str | None:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)?(:|$)", line) \
                and not line.startswith((" ", "\t", "File ")):
            return line.strip()
    return lines[-1].strip() if lines else None


def _run_job(backend, job, run, endpoint: str) -> None:
    """Run one Python shell job in a subprocess and record its outcome (background worker)."""
    started = time.monotonic()
    stdout = stderr = ""
    try:
        if job.command.get("Name") != "pythonshell":
            raise RuntimeError(f"labkit's local AWS runs Python shell jobs only; "
                               f"{job.command.get('Name')} (Spark / Ray) jobs need real AWS Glue")
        bucket, key = _split_s3(job.command["ScriptLocation"])
        try:
            script = _s3(backend.account_id).get_object(bucket, key).value
        except Exception:
            raise RuntimeError(f"Failed to download the script from "
                               f"{job.command['ScriptLocation']}: the object does not exist") from None
        with tempfile.TemporaryDirectory(prefix="glue-python-scripts-") as work:
            path = Path(work) / key.rsplit("/", 1)[-1]
            path.write_bytes(script)
            env = _job_environment(backend, endpoint)
            run.status = "RUNNING"
            run.modified_on = clock.now()
            try:
                completed = subprocess.run([sys.executable, *job_argv(str(path), job, run)],
                                           capture_output=True, text=True, env=env, cwd=work,
                                           timeout=float(run.timeout) * 60)
            except subprocess.TimeoutExpired as expired:
                stdout, stderr = _text(expired.stdout), _text(expired.stderr)
                run.error_message = f"Job run timed out after {run.timeout} minutes"
                run.status = "TIMEOUT"
                return
            stdout, stderr = completed.stdout, completed.stderr
            if completed.returncode == 0:
                run.status = "SUCCEEDED"
            else:
                run.error_message = _exception_line(stderr) or f"exit code {completed.returncode}"
                run.status = "FAILED"
    except Exception as exc:
        run.error_message = str(exc)
        run.status = "FAILED"
    finally:
        run.execution_time = time.monotonic() - started
        run.completed_on = run.modified_on = clock.now()
        try:
            _log(backend.account_id, backend.region_name, "/aws-glue/python-jobs/output",
                 run.job_run_id, stdout.splitlines())
            _log(backend.account_id, backend.region_name, "/aws-glue/python-jobs/error",
                 run.job_run_id, stderr.splitlines())
        except Exception:
            pass


def _job_environment(backend, endpoint: str) -> dict[str, str]:
    from labkit.backend import scrub_credentials

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABKIT_"))}
    scrub_credentials(env)
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": backend.region_name,
                "AWS_REGION": backend.region_name, "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(RUNTIME_DIR), env.get("PYTHONPATH", "")]).rstrip(
                    os.pathsep)})
    return env


# --- triggers -----------------------------------------------------------------------------------
def _create_trigger(self, name, workflow_name, trigger_type, schedule, predicate, actions, *args,
                    **kwargs):
    if name in self.triggers:
        raise _error("AlreadyExistsException", f"Trigger with name {name} already exists")
    if trigger_type == "SCHEDULED":
        validate_schedule(schedule)
    elif trigger_type == "CONDITIONAL" and not predicate:
        raise _error("InvalidInputException", "A CONDITIONAL trigger needs a Predicate")
    for action in actions or []:
        job = getattr(action, "job_name", None) or (
            action.get("JobName") if isinstance(action, dict) else None)
        crawler = getattr(action, "crawler_name", None) or (
            action.get("CrawlerName") if isinstance(action, dict) else None)
        if job and job not in self.jobs:
            raise _error("EntityNotFoundException", f"Job {job} not found")
        if crawler and crawler not in self.crawlers:
            raise _error("EntityNotFoundException", f"Crawler {crawler} not found")
    return _ORIGINAL["create_trigger"](self, name, workflow_name, trigger_type, schedule, predicate,
                                       actions, *args, **kwargs)


_LOCAL_RUN_CLASS = None


def install() -> None:
    """Patch moto's Glue backend, crawler model and response class (class level)."""
    global _LOCAL_RUN_CLASS
    from moto.glue.models import FakeCrawler, GlueBackend
    from moto.glue.responses import GlueResponse

    _LOCAL_RUN_CLASS = _local_job_run_class()
    for name, replacement in (("start_crawler", _start_crawler), ("stop_crawler", _stop_crawler),
                              ("create_crawler", _create_crawler), ("create_job", _create_job),
                              ("start_job_run", _start_job_run), ("create_trigger", _create_trigger)):
        _ORIGINAL.setdefault(name, getattr(GlueBackend, name))
        setattr(GlueBackend, name, replacement)
    _ORIGINAL.setdefault("crawler_as_dict", FakeCrawler.as_dict)
    FakeCrawler.as_dict = _crawler_as_dict
    FakeCrawler.status = property(_crawler_status)
    _ORIGINAL.setdefault("response_start_job_run", GlueResponse.start_job_run)
    GlueResponse.start_job_run = _response_start_job_run
    GlueResponse.update_crawler = _response_update_crawler
    GlueResponse.update_crawler_schedule = _response_update_crawler_schedule
    GlueResponse.get_crawler_metrics = _response_get_crawler_metrics
    GlueResponse.update_job = _response_update_job
