"""Athena engine: queries really run (DuckDB) over the Glue catalog and the objects in local S3.

moto stores Athena executions but never runs them (see shared notes: moto-facts). This engine
replaces ``AthenaBackend.start_query_execution``: the statement is parsed, Hive DDL writes moto's
Glue catalog (the one catalog crawlers also write), DML runs in DuckDB over the table's S3 files,
results land as CSV at the output location, and executions move QUEUED -> RUNNING -> SUCCEEDED /
FAILED on the background pool with AWS-like ``StateChangeReason`` and ``DataScannedInBytes``.
What differs from AWS is listed in book/fidelity/athena.md.
"""

from __future__ import annotations

import base64
import bisect
import csv
import fnmatch
import io
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

CATALOG = "awsdatacatalog"
PAGE_MAX = 1000

# --- Hive / Glue vocabulary -------------------------------------------------------------------
LAZY_SIMPLE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
JSON_SERDES = ("org.openx.data.jsonserde.JsonSerDe", "org.apache.hive.hcatalog.data.JsonSerDe")
TEXT_IN = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
ORC_IN = "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat"
ORC_OUT = "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat"
ORC_SERDE = "org.apache.hadoop.hive.ql.io.orc.OrcSerde"

_HIVE_TO_DUCK = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "int": "INTEGER",
    "integer": "INTEGER", "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "TINYINT",
    "double": "DOUBLE", "float": "FLOAT", "real": "FLOAT", "boolean": "BOOLEAN", "date": "DATE",
    "timestamp": "TIMESTAMP", "binary": "BLOB",
}
# DuckDB result type -> (Athena ColumnInfo type, Hive/Glue column type, precision)
_DUCK_TO_ATHENA = {
    "VARCHAR": ("varchar", "string", 2147483647), "INTEGER": ("integer", "int", 10),
    "BIGINT": ("bigint", "bigint", 19), "HUGEINT": ("bigint", "bigint", 19),
    "UBIGINT": ("bigint", "bigint", 19), "UINTEGER": ("bigint", "bigint", 19),
    "SMALLINT": ("smallint", "smallint", 5), "TINYINT": ("tinyint", "tinyint", 3),
    "USMALLINT": ("integer", "int", 10), "UTINYINT": ("smallint", "smallint", 5),
    "DOUBLE": ("double", "double", 17), "FLOAT": ("real", "float", 7),
    "BOOLEAN": ("boolean", "boolean", 0), "DATE": ("date", "date", 0),
    "TIMESTAMP": ("timestamp", "timestamp", 3), "TIMESTAMP WITH TIME ZONE": ("timestamp", "timestamp", 3),
    "TIMESTAMP_NS": ("timestamp", "timestamp", 3), "TIMESTAMP_MS": ("timestamp", "timestamp", 3),
    "BLOB": ("varbinary", "binary", 0), "INTERVAL": ("interval day to second", "string", 0),
}

# Presto/Trino functions the labs may use that DuckDB spells differently (macros in each session).
_TRINO_MACROS = [
    "CREATE TEMP MACRO approx_percentile(x, p) AS quantile_cont(x, p)",
    "CREATE TEMP MACRO approx_distinct(x) AS approx_count_distinct(x)",
    "CREATE TEMP MACRO date_format(ts, fmt) AS strftime(ts, replace(fmt, '%i', '%M'))",
    "CREATE TEMP MACRO from_unixtime(x) AS to_timestamp(x)::TIMESTAMP",
    "CREATE TEMP MACRO to_unixtime(ts) AS epoch(ts)",
    "CREATE TEMP MACRO regexp_like(s, p) AS regexp_matches(s, p)",
    "CREATE TEMP MACRO cardinality(a) AS len(a)",
    "CREATE TEMP MACRO stddev_samp(x) AS stddev(x)",
    "CREATE TEMP MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)",
]


class AthenaQueryError(Exception):
    """A query failure with Athena's reason text (becomes StateChangeReason)."""

    def __init__(self, reason: str, error_type: int = 1006, category: int = 2):
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
        self.category = category


@dataclass
class Outcome:
    """What one statement produced."""

    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)
    rows: list[tuple] = field(default_factory=list)
    header: bool = True  # DML results start with a header row; DDL/utility results do not
    statement_type: str = "DML"
    scanned: int = 0
    text_output: bool = False  # SHOW/DESCRIBE: the output file is .txt
    write_file: bool = True


# --- engine state (per server process) ----------------------------------------------------------
_state_lock = threading.Lock()
_stats: dict[str, dict] = {}
_cache_dir: str | None = None
_cache_index: dict[tuple[str, str, str], str] = {}


def _cache_root() -> str:
    global _cache_dir
    if _cache_dir is None or not os.path.isdir(_cache_dir):
        _cache_dir = tempfile.mkdtemp(prefix="labkit-athena-")
        import atexit

        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def _reset() -> None:
    with _state_lock:
        _stats.clear()
        _cache_index.clear()


# --- S3 and Glue access (moto backends in this process) ------------------------------------------
def _s3(account_id: str):
    from moto.s3.models import s3_backends

    return s3_backends[account_id]["aws"]


def _glue(account_id: str, region: str):
    from moto.glue.models import glue_backends

    return glue_backends[account_id][region]


def split_s3(url: str) -> tuple[str, str]:
    if not url.lower().startswith("s3://"):
        raise AthenaQueryError(f"Invalid S3 location: {url}")
    rest = url[5:]
    bucket, _, key = rest.partition("/")
    return bucket, key


@dataclass
class S3File:
    bucket: str
    key: str
    size: int
    etag: str


def list_files(account_id: str, location: str, listings: dict | None = None) -> list[S3File]:
    """Objects Athena would read under a table/partition LOCATION (recursive, skipping hidden
    ``_``/``.`` names, folder markers, and objects in Glacier classes, which Athena ignores).

    ``listings`` (one query's) keeps each bucket's sorted keys, so a table of many partitions
    lists its bucket once, not once per partition."""
    bucket_name, prefix = split_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    listing = None if listings is None else listings.get(bucket_name)
    if listing is None:
        try:
            bucket = _s3(account_id).get_bucket(bucket_name)
        except Exception:
            raise AthenaQueryError(f"HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split {location}: "
                                   f"The specified bucket does not exist") from None
        listing = sorted(bucket.keys.items(), key=lambda item: item[0])
        if listings is not None:
            listings[bucket_name] = listing
    out = []
    for name, key in listing[bisect.bisect_left(listing, prefix, key=lambda item: item[0]):]:
        if not name.startswith(prefix):
            break
        if name.endswith("/") or not hasattr(key, "value"):
            continue
        rel = name[len(prefix):]
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        if getattr(key, "storage_class", "STANDARD") in ("GLACIER", "DEEP_ARCHIVE"):
            continue
        out.append(S3File(bucket_name, name, key.size, key.etag))
    return out


def _local_copy(account_id: str, f: S3File) -> str:
    """A local file with the object's bytes (DuckDB reads files); cached by etag, so a query
    copies only objects that are new or changed since the last one."""
    ident = (f.bucket, f.key, f.etag)
    root = _cache_root()
    path = _cache_index.get(ident)
    if path and path.startswith(root):  # the cache folder is this engine's own: no stat per file
        return path
    data = _s3(account_id).get_object(f.bucket, f.key).value
    # one flat folder; the object's own name last, so DuckDB sees its extension (.gz, .parquet)
    path = os.path.join(root, uuid.uuid4().hex[:12] + "-" + (os.path.basename(f.key) or "object"))
    with open(path, "wb") as out:
        out.write(data)
    _cache_index[ident] = path
    return path


def _put_s3(account_id: str, url: str, data: bytes) -> None:
    bucket, key = split_s3(url)
    try:
        _s3(account_id).put_object(bucket, key, data)
    except Exception as exc:
        raise AthenaQueryError(f"Unable to verify/create output bucket {bucket}") from exc


# --- small SQL helpers ---------------------------------------------------------------------------
def strip_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    lines = []
    for line in sql.splitlines():
        out, quote = [], False
        i = 0
        while i < len(line):
            ch = line[i]
            if ch == "'":
                quote = not quote
            if not quote and line.startswith("--", i):
                break
            out.append(ch)
            i += 1
        lines.append("".join(out))
    return "\n".join(lines).strip().rstrip(";").strip()


def _mask_strings(sql: str) -> str:
    """The SQL with string-literal contents replaced by spaces (same length), for scanning."""
    return re.sub(r"'(?:[^']|'')*'", lambda m: "'" + " " * (len(m.group(0)) - 2) + "'", sql)


def _balanced(text: str, start: int) -> tuple[str, int]:
    """Content of the parenthesis opening at ``text[start]`` and the index after it closes."""
    assert text[start] == "("
    depth, i, quote = 0, start, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
        i += 1
    raise AthenaQueryError("line 1:1: mismatched input '<EOF>'. Expecting: ')'")


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
        elif ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts]


def _ident(name: str) -> str:
    return name.strip().strip('`"').lower()


def _unescape(value: str) -> str:
    """Hive delimiter literals: '\\t', '\\001', '\\u0001'."""
    if value.startswith("\\u"):
        return chr(int(value[2:], 16))
    if re.fullmatch(r"\\[0-7]{1,3}", value):
        return chr(int(value[1:], 8))
    return {"\\t": "\t", "\\n": "\n", "\\\\": "\\"}.get(value, value)


def _kv_list(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"'([^']*)'\s*=\s*'((?:[^']|'')*)'", text)}


def _position(sql: str, needle: str) -> str:
    """``line:col`` (1-based) of the first whole-word occurrence of ``needle`` in ``sql``."""
    m = re.search(r"(?<![\w.])" + re.escape(needle) + r"(?!\w)", sql, flags=re.I) or \
        re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", sql, flags=re.I)
    index = m.start() if m else 0
    line = sql.count("\n", 0, index) + 1
    col = index - (sql.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{col}"


# --- catalog model ---------------------------------------------------------------------------
def _duck_type(hive_type: str) -> str:
    t = hive_type.strip().lower()
    if t.startswith("decimal"):
        return t.upper()
    base = re.split(r"[(<]", t)[0]
    return _HIVE_TO_DUCK.get(base, "VARCHAR")


def _is_complex(hive_type: str) -> bool:
    return hive_type.strip().lower().startswith(("array", "map", "struct"))


def _storage_kind(table: dict, sd: dict | None = None) -> str:
    sd = sd or table.get("StorageDescriptor") or {}
    lib = ((sd.get("SerdeInfo") or {}).get("SerializationLibrary") or "")
    fmt = (sd.get("InputFormat") or "").lower()
    cls = ((table.get("Parameters") or {}).get("classification") or "").lower()
    if "parquet" in lib.lower() or "parquet" in fmt or cls == "parquet":
        return "parquet"
    if "orc" in lib.lower() or "orc" in fmt or cls == "orc":
        return "orc"
    if "json" in lib.lower() or cls == "json":
        return "json"
    if lib == OPEN_CSV:
        return "opencsv"
    return "text"


@dataclass
class Ctx:
    """One execution: where it runs and what it read."""

    account_id: str
    region: str
    database: str
    query_id: str
    output_location: str | None
    scanned: int = 0
    con: Any = None
    listings: dict = field(default_factory=dict)  # bucket -> sorted keys, listed once per query
    column_types: dict = field(default_factory=dict)  # column name -> set of Hive types seen


def _ensure_default_db(ctx: Ctx) -> None:
    glue = _glue(ctx.account_id, ctx.region)
    if "default" not in glue.databases:
        glue.create_database("default", {"Name": "default", "Description": "Default Hive database"})


def _get_table(ctx: Ctx, db: str, name: str, sql: str = "") -> dict:
    from moto.glue.exceptions import DatabaseNotFoundException, TableNotFoundException

    glue = _glue(ctx.account_id, ctx.region)
    try:
        glue.get_database(db)
    except DatabaseNotFoundException:
        raise AthenaQueryError(f"SCHEMA_NOT_FOUND: line {_position(sql, name)}: Schema '{db}' does "
                               f"not exist", 1006) from None
    try:
        return glue.get_table(db, name).as_dict()
    except TableNotFoundException:
        raise AthenaQueryError(f"TABLE_NOT_FOUND: line {_position(sql, name)}: Table "
                               f"'{CATALOG}.{db}.{name}' does not exist", 1006) from None


def _partitions(ctx: Ctx, db: str, name: str) -> list[dict]:
    glue = _glue(ctx.account_id, ctx.region)
    return [p.as_dict() for p in glue.get_table(db, name).partitions.values()]


# --- building DuckDB relations for catalog tables ---------------------------------------------------
def _path_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _scan_sql(ctx: Ctx, table: dict, sd: dict, files: list[S3File], columns: list[dict],
              referenced: set[str] | None, file_column: bool = False) -> str:
    """A DuckDB SELECT producing the table's data columns from ``files`` (Athena semantics);
    ``file_column`` (text tables) adds ``__labkit_file``, the local file each row came from."""
    kind = _storage_kind(table, sd)
    names = [c["Name"].lower() for c in columns]
    if not files:
        return "SELECT " + ", ".join(f"CAST(NULL AS {_duck_type(c['Type'])}) AS \"{c['Name'].lower()}\""
                                     for c in columns) + " WHERE false"
    paths = [_local_copy(ctx.account_id, f) for f in files]
    plist = _path_list(paths)
    if kind == "orc":
        raise AthenaQueryError("NOT_SUPPORTED: ORC tables are not supported by the local Athena; "
                               "use Parquet (CTAS WITH (format='PARQUET'))", 1006)
    if kind == "parquet":
        ctx.scanned += _parquet_bytes(paths, names if referenced is None else
                                      [n for n in names if n in referenced])
        available = {r[0].lower() for r in ctx.con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({plist}, union_by_name=true)").fetchall()}
        cols = []
        for c in columns:
            n = c["Name"].lower()
            typ = c["Type"]
            if n not in available:
                cols.append(f"CAST(NULL AS {_duck_type(typ)}) AS \"{n}\"")
            elif _is_complex(typ):
                cols.append(f"\"{n}\"")
            else:
                cols.append(f"TRY_CAST(\"{n}\" AS {_duck_type(typ)}) AS \"{n}\"")
        return f"SELECT {', '.join(cols)} FROM read_parquet({plist}, union_by_name=true)"
    ctx.scanned += sum(f.size for f in files)
    params = ((sd.get("SerdeInfo") or {}).get("Parameters") or {})
    tparams = table.get("Parameters") or {}
    if kind == "json":
        spec = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
        src = (f"read_json({plist}, format='newline_delimited', columns={spec}, "
               f"ignore_errors=true)")
        raw = {n: f"\"{n}\"" for n in names}
    else:
        skip = int(tparams.get("skip.header.line.count") or params.get("skip.header.line.count") or 0)
        if kind == "opencsv":
            delim = params.get("separatorChar", ",")
            quote = params.get("quoteChar", '"')
            escape = params.get("escapeChar", '"') if "escapeChar" in params else '"'
            nullstr = "\\N\\N\\N"  # OpenCSVSerde has no null marker: empty stays ''
        else:
            delim = _unescape(params.get("field.delim") or params.get("serialization.format") or "\x01")
            if delim in ("1",):
                delim = "\x01"
            quote, escape = "", _unescape(params.get("escape.delim", "")) if params.get("escape.delim") else ""
            nullstr = params.get("serialization.null.format", "\\N")
        width = max(len(names), _field_count(paths[0], delim, quote, skip))
        spec = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
        src = (f"read_csv({plist}, delim={_lit(delim)}, quote={_lit(quote)}, escape={_lit(escape)}, "
               f"header=false, skip={skip}, columns={spec}, null_padding=true, auto_detect=false, "
               f"nullstr={_lit(nullstr)}, strict_mode=false, max_line_size=10000000"
               f"{', filename=true' if file_column else ''})")
        raw = {n: f"c{i}" for i, n in enumerate(names)}
    cols = []
    for c in columns:
        n, typ = c["Name"].lower(), c["Type"]
        dt = _duck_type(typ)
        if dt == "VARCHAR":
            cols.append(f"{raw[n]} AS \"{n}\"")
        elif dt == "TIMESTAMP" and kind == "opencsv":
            cols.append(f"COALESCE(TRY_CAST({raw[n]} AS TIMESTAMP), "
                        f"TRY_CAST(make_timestamp(TRY_CAST({raw[n]} AS BIGINT) * 1000) AS TIMESTAMP)) AS \"{n}\"")
        else:
            cols.append(f"TRY_CAST(trim({raw[n]}) AS {dt}) AS \"{n}\"")
    if file_column and kind in ("text", "opencsv"):
        cols.append("filename AS __labkit_file")
    return f"SELECT {', '.join(cols)} FROM {src}"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _field_count(path: str, delim: str, quote: str, skip: int) -> int:
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            line = ""
            for _ in range(skip + 1):
                line = fh.readline()
    except OSError:
        return 0
    line = line.rstrip("\r\n")
    if not line:
        return 0
    if quote:
        return len(next(csv.reader([line], delimiter=delim, quotechar=quote)))
    return len(line.split(delim))


def _parquet_bytes(paths: list[str], columns: list[str]) -> int:
    """Bytes Athena reads from Parquet: the referenced columns' chunks plus each footer."""
    import pyarrow.parquet as pq

    total = 0
    wanted = set(columns)
    for path in paths:
        meta = pq.ParquetFile(path).metadata
        size = os.path.getsize(path)
        chunks = 0
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                chunks += col.total_compressed_size
                if col.path_in_schema.split(".")[0].lower() in wanted:
                    total += col.total_compressed_size
        total += max(size - chunks, 0)  # footer and magic bytes
    return total


def _table_relation(ctx: Ctx, db: str, name: str, table: dict, predicates: list[str],
                    referenced: set[str] | None) -> str:
    """DuckDB SELECT for one external table, reading only partitions the predicates keep."""
    sd = table.get("StorageDescriptor") or {}
    columns = sd.get("Columns") or []
    pkeys = table.get("PartitionKeys") or []
    if not pkeys:
        if not sd.get("Location"):
            raise AthenaQueryError(f"HIVE_METASTORE_ERROR: Table {db}.{name} has no LOCATION")
        return _scan_sql(ctx, table, sd, list_files(ctx.account_id, sd["Location"], ctx.listings),
                        columns, referenced)
    parts = _partitions(ctx, db, name)
    keep = _prune(ctx, pkeys, parts, predicates)
    branches = []
    # Text partitions read the same way are read by one read_csv over all their files (one scan,
    # parallel across files, instead of a UNION of one scan per partition); each row gets its
    # partition's values through the file it came from.
    merged: dict[str, list[tuple[list[str], list[str]]]] = {}
    for i in keep:
        part = parts[i]
        psd = part.get("StorageDescriptor") or {}
        files = list_files(ctx.account_id, psd.get("Location") or "", ctx.listings)
        if not files:
            continue
        values = [f"TRY_CAST({_lit(v)} AS {_duck_type(k['Type'])})"
                  for k, v in zip(pkeys, part.get("Values") or [])]
        psd = {**sd, **{k: v for k, v in psd.items() if v}}
        if _storage_kind(table, psd) in ("text", "opencsv"):
            body = _scan_sql(ctx, table, psd, files, columns, referenced, file_column=True)
            paths = [_local_copy(ctx.account_id, f) for f in files]
            merged.setdefault(body.replace(_path_list(paths), "{files}", 1), []).append((paths, values))
            continue
        body = _scan_sql(ctx, table, psd, files, columns, referenced)
        consts = ", ".join(f"{v} AS \"{k['Name'].lower()}\"" for k, v in zip(pkeys, values))
        branches.append(f"SELECT *, {consts} FROM ({body})")
    pnames = ", ".join(f"\"{k['Name'].lower()}\"" for k in pkeys)
    for template, members in merged.items():
        paths = list(dict.fromkeys(p for member_paths, _ in members for p in member_paths))
        mapping = ", ".join(f"({_lit(p)}, {', '.join(values)})" for member_paths, values in members
                            for p in member_paths)
        branches.append(f"SELECT s.* EXCLUDE (__labkit_file), p.* EXCLUDE (__labkit_file) FROM "
                        f"({template.replace('{files}', _path_list(paths), 1)}) s JOIN "
                        f"(VALUES {mapping}) p(__labkit_file, {pnames}) ON s.__labkit_file = p.__labkit_file")
    if not branches:
        allcols = columns + pkeys
        return "SELECT " + ", ".join(f"CAST(NULL AS {_duck_type(c['Type'])}) AS \"{c['Name'].lower()}\""
                                     for c in allcols) + " WHERE false"
    return " UNION ALL BY NAME ".join(branches) if len(branches) > 1 else branches[0]


def _prune(ctx: Ctx, pkeys: list[dict], parts: list[dict], predicates: list[str]) -> list[int]:
    """Indexes of the partitions every applicable predicate keeps (evaluated by DuckDB)."""
    if not predicates or not parts:
        return list(range(len(parts)))
    con = ctx.con  # the query's own connection: a temporary table, dropped again
    try:
        cols = ", ".join(f"\"{k['Name'].lower()}\" {_duck_type(k['Type'])}" for k in pkeys)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __labkit_parts(__i INTEGER, {cols})")
        rows = []
        for i, p in enumerate(parts):
            values = ", ".join(f"TRY_CAST({_lit(v)} AS {_duck_type(k['Type'])})"
                               for k, v in zip(pkeys, p.get("Values") or []))
            rows.append(f"({i}, {values})")
        con.execute("INSERT INTO __labkit_parts VALUES " + ", ".join(rows))
        keep = set(range(len(parts)))
        for pred in predicates:
            try:
                keep &= {r[0] for r in con.execute(f"SELECT __i FROM __labkit_parts WHERE {pred}").fetchall()}
            except Exception:
                continue  # not evaluable on partition values alone: no pruning from it
        return sorted(keep)
    finally:
        con.execute("DROP TABLE IF EXISTS temp.__labkit_parts")


_CLAUSE_END = re.compile(r"\b(GROUP\s+BY|ORDER\s+BY|LIMIT|HAVING|UNION|INTERSECT|EXCEPT|WINDOW|OFFSET|FETCH)\b",
                         re.I)


def _first_top_level(pattern: str, masked: str):
    """The first match of ``pattern`` outside any parentheses of ``masked`` SQL, or None."""
    depth = 0
    for m in re.finditer(r"[()]|" + pattern, masked, flags=re.I):
        if m.group(0) == "(":
            depth += 1
        elif m.group(0) == ")":
            depth -= 1
        elif depth == 0:
            return m
    return None


def _partition_predicates(sql: str, table_ref: str, alias: str | None, pcols: set[str]) -> list[str]:
    """Top-level WHERE conjuncts that only mention this table's partition columns."""
    masked = _mask_strings(sql)
    where = _first_top_level(r"\bWHERE\b", masked)
    if where is None:
        return []
    where_at = where.end()
    rest_masked = masked[where_at:]
    clause_end = _first_top_level(_CLAUSE_END.pattern, rest_masked)
    end = clause_end.start() if clause_end else len(rest_masked)
    clause = sql[where_at:where_at + end]
    clause_masked = rest_masked[:end]
    # split on AND at depth 0, keeping BETWEEN x AND y together
    pieces, start, depth, between = [], 0, 0, False
    for m in re.finditer(r"[()]|\bBETWEEN\b|\bAND\b", clause_masked, flags=re.I):
        tok = m.group(0).upper()
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif depth == 0 and tok == "BETWEEN":
            between = True
        elif depth == 0 and tok == "AND":
            if between:
                between = False
                continue
            pieces.append((clause[start:m.start()], clause_masked[start:m.start()]))
            start = m.end()
    pieces.append((clause[start:], clause_masked[start:]))
    qualifiers = {q.lower() for q in (alias, table_ref.split(".")[-1]) if q}
    keywords = {"and", "or", "not", "in", "between", "like", "is", "null", "true", "false", "cast",
                "as", "integer", "int", "bigint", "varchar", "date", "timestamp", "double", "lower",
                "upper", "trim", "substr", "substring"}
    out = []
    for text, mtext in pieces:
        if re.search(r"\bIS\s+(NOT\s+)?NULL\b|coalesce|ifnull|\bSELECT\b", mtext, flags=re.I):
            continue
        ok, saw = True, False
        for m in re.finditer(r"(?:\"?(\w+)\"?\s*\.\s*)?\"?([A-Za-z_]\w*)\"?", mtext.replace("'", " ")):
            qual, name = m.group(1), m.group(2).lower()
            if name in keywords or re.fullmatch(r"\d+", name):
                continue
            if qual and qual.lower() not in qualifiers:
                ok = False
                break
            if name not in pcols:
                ok = False
                break
            saw = True
        if ok and saw:
            out.append(re.sub(r"\"?\w+\"?\s*\.\s*(?=\"?[A-Za-z_])", "", text).strip())
    return out


def _alias_of(sql: str, ref: str) -> tuple[int, str | None]:
    """How often ``ref`` follows FROM/JOIN/','; and its alias when it appears once."""
    parts = [re.escape(p) for p in ref.split(".")]
    pattern = r"(?:\bFROM|\bJOIN|,)\s+" + r"\s*\.\s*".join(r"\"?" + p + r"\"?" for p in parts) + \
        r"(?:\s+(?:AS\s+)?(?!(?:WHERE|JOIN|LEFT|RIGHT|INNER|FULL|CROSS|ON|GROUP|ORDER|LIMIT|UNION|USING)\b)(\w+))?(?![\w.])"
    found = list(re.finditer(pattern, _mask_strings(sql), flags=re.I))
    return len(found), (found[0].group(1) if len(found) == 1 else None)


def _referenced_columns(sql: str) -> set[str] | None:
    """Identifiers a query mentions (None when it selects ``*``: every column is read)."""
    masked = _mask_strings(sql)
    # SELECT *, SELECT t.*, ", *" read every column; count(*) and a * b do not
    if re.search(r"(?:\bSELECT\s+(?:DISTINCT\s+|ALL\s+)?|,\s*)(?:\"?\w+\"?\.)?\*", masked, flags=re.I):
        return None
    return {m.group(1).lower() for m in re.finditer(r"\"?([A-Za-z_]\w*)\"?", masked)}


def _using_as_on(sql: str) -> str:
    masked = _mask_strings(sql)
    out, last = [], 0
    for m in re.finditer(r"\bUSING\s*\([^()]*\)", masked, flags=re.I):
        out.append(sql[last:m.start()] + "ON TRUE")
        last = m.end()
    return "".join(out) + sql[last:]


def _prepare(ctx: Ctx, sql: str, seen: set | None = None) -> None:
    """Create a DuckDB view for every catalog table / view the statement references."""
    seen = set() if seen is None else seen
    try:
        names = ctx.con.get_table_names(sql, qualified=True)
    except Exception as exc:
        # DuckDB's table-name extraction binds ``JOIN … USING (col)`` against tables that do not
        # exist yet; the same statement with ``ON TRUE`` names the same tables
        try:
            names = ctx.con.get_table_names(_using_as_on(sql), qualified=True)
        except Exception:
            raise _translate(exc, sql) from None
    for ref in sorted(names):
        ref = re.sub(r"\s+AS\s+(\"[^\"]*\"|\S+)$", "", ref, flags=re.I)  # some duckdb versions append the alias
        parts = [_ident(p) for p in re.findall(r'"[^"]*"|[^.]+', ref)]
        if len(parts) == 3 and parts[0] == CATALOG:
            parts = parts[1:]
        if len(parts) == 1:
            db, name = ctx.database, parts[0]
        elif len(parts) == 2:
            db, name = parts
        else:
            raise AthenaQueryError(f"CATALOG_NOT_FOUND: line {_position(sql, ref.split('.')[0])}: "
                                   f"Catalog '{parts[0]}' does not exist")
        if (db, name) in seen:
            continue
        if name in _cte_names(sql) and len(ref.split(".")) == 1:
            continue
        seen.add((db, name))
        table = _get_table(ctx, db, name, sql)
        ctx.con.execute(f'CREATE SCHEMA IF NOT EXISTS {CATALOG}."{db}"')
        if table.get("TableType") == "VIRTUAL_VIEW":
            view_sql = _view_sql(table)
            inner = Ctx(ctx.account_id, ctx.region, db, ctx.query_id, None, con=ctx.con)
            _prepare(inner, view_sql, seen)
            ctx.scanned += inner.scanned
            ctx.con.execute(f'USE {CATALOG}."{db}"')
            ctx.con.execute(f'CREATE OR REPLACE VIEW {CATALOG}."{db}"."{name}" AS {view_sql}')
            ctx.con.execute(f'USE {CATALOG}."{ctx.database}"')
            continue
        count, alias = _alias_of(sql, ref)
        pcols = {k["Name"].lower() for k in table.get("PartitionKeys") or []}
        preds = _partition_predicates(sql, ref, alias, pcols) if pcols and count == 1 else []
        for col in ((table.get("StorageDescriptor") or {}).get("Columns") or []) + (table.get("PartitionKeys") or []):
            ctx.column_types.setdefault(col["Name"].lower(), set()).add(_duck_type(col["Type"]))
        relation = _table_relation(ctx, db, name, table, preds, _referenced_columns(sql))
        ctx.con.execute(f'CREATE OR REPLACE VIEW {CATALOG}."{db}"."{name}" AS {relation}')


def _cte_names(sql: str) -> set[str]:
    masked = _mask_strings(sql)
    if not re.match(r"\s*WITH\b", masked, flags=re.I):
        return set()
    return {m.group(1).lower() for m in re.finditer(r"(?:\bWITH|,)\s+\"?(\w+)\"?\s+AS\s*\(", masked, flags=re.I)}


def _view_sql(table: dict) -> str:
    text = table.get("ViewOriginalText") or ""
    m = re.search(r"/\*\s*Presto View:\s*(\S+)\s*\*/", text)
    if m:
        return json.loads(base64.b64decode(m.group(1)))["originalSql"]
    return text


_idle_connections: list = []  # DuckDB connections with the Trino macros, ready for a query


def _close_idle() -> None:
    with _state_lock:
        while _idle_connections:
            _idle_connections.pop().close()


def _connect(ctx: Ctx):
    """A DuckDB connection for one query: a fresh, empty catalog on a reused connection (opening
    one and creating the macros costs more than a small query)."""
    import duckdb

    with _state_lock:
        con = _idle_connections.pop() if _idle_connections else None
    if con is None:
        if not _idle_connections:
            import atexit

            atexit.unregister(_close_idle)
            atexit.register(_close_idle)
        con = duckdb.connect(config={"threads": 2})
        for macro in _TRINO_MACROS:
            con.execute(macro)
        con.execute("SET integer_division = true")  # Trino: 5 / 2 = 2 for integers
    con.execute(f"ATTACH ':memory:' AS {CATALOG}")
    con.execute(f'CREATE SCHEMA IF NOT EXISTS {CATALOG}."{ctx.database}"')
    con.execute(f'USE {CATALOG}."{ctx.database}"')
    return con


def _release(con, reusable: bool) -> None:
    """Give a query's connection back: its catalog (the views of that query) is dropped; a
    connection a failed query used is closed instead, whatever state it was left in."""
    if reusable:
        try:
            con.execute("USE memory")
            con.execute(f"DETACH {CATALOG}")
        except Exception:
            reusable = False
    if not reusable:
        con.close()
        return
    with _state_lock:
        if len(_idle_connections) < 4:
            _idle_connections.append(con)
            return
    con.close()


def _translate(exc: Exception, sql: str) -> AthenaQueryError:
    """DuckDB's error -> the reason Athena (Trino) gives for the same mistake."""
    if isinstance(exc, AthenaQueryError):
        return exc
    msg = str(exc)
    m = re.search(r'Referenced column "([^"]+)" not found', msg)
    if m:
        col = m.group(1)
        return AthenaQueryError(f"COLUMN_NOT_FOUND: line {_position(sql, col)}: Column '{col}' cannot "
                                f"be resolved or requester is not authorized to access requested "
                                f"resources", 1006)
    m = re.search(r"(?:Scalar|Aggregate|Table) Function with name (\w+) does not exist", msg)
    if m:
        fn = m.group(1)
        return AthenaQueryError(f"FUNCTION_NOT_FOUND: line {_position(sql, fn)}: Function '{fn}' not "
                                f"registered", 1006)
    m = re.search(r'syntax error at or near "([^"]*)"', msg)
    if m:
        tok = m.group(1)
        return AthenaQueryError(f"line {_position(sql, tok)}: mismatched input '{tok}'. Expecting: "
                                f"<expression>", 1004)
    if "syntax error at end of input" in msg:
        lines = sql.splitlines() or [""]
        return AthenaQueryError(f"line {len(lines)}:{len(lines[-1]) + 1}: mismatched input '<EOF>'",
                                1004)
    m = re.search(r'must appear in the GROUP BY clause.*?"([^"]+)"', msg, flags=re.S) or \
        re.search(r'column "([^"]+)" must appear in the GROUP BY', msg)
    if m:
        col = m.group(1).split(".")[-1]
        return AthenaQueryError(f"EXPRESSION_NOT_AGGREGATE: line {_position(sql, col)}: '{col}' must be "
                                f"an aggregate expression or appear in GROUP BY clause", 1006)
    if "Ambiguous reference" in msg:
        m = re.search(r'"([^"]+)"', msg)
        col = m.group(1) if m else "?"
        return AthenaQueryError(f"AMBIGUOUS_NAME: line {_position(sql, col)}: Column '{col}' is "
                                f"ambiguous", 1006)
    if "Conversion Error" in msg or "Could not convert" in msg:
        return AthenaQueryError(f"INVALID_CAST_ARGUMENT: {msg.split(':', 1)[-1].strip().splitlines()[0]}",
                                1006)
    if "No function matches" in msg or "Binder Error" in msg:
        first = msg.split(":", 1)[-1].strip().splitlines()[0]
        return AthenaQueryError(f"TYPE_MISMATCH: line 1:1: {first}", 1006)
    return AthenaQueryError(f"GENERIC_INTERNAL_ERROR: {msg.splitlines()[0]}", 1001, 1)


# --- statements --------------------------------------------------------------------------------
def _athena_type(duck: str) -> tuple[str, str, int, int]:
    d = duck.upper()
    m = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", d)
    if m:
        return "decimal", f"decimal({m.group(1)},{m.group(2)})", int(m.group(1)), int(m.group(2))
    if d.endswith("[]"):
        return "array", "array<" + _athena_type(d[:-2])[1] + ">", 0, 0
    if d.startswith("STRUCT"):
        return "row", "string", 0, 0
    if d.startswith("MAP"):
        return "map", "string", 0, 0
    a, h, p = _DUCK_TO_ATHENA.get(d, ("varchar", "string", 2147483647))
    return a, h, p, 0


_OPS = r"(=|<>|!=|<=|>=|<|>)"


def _check_string_vs_number(ctx: Ctx, sql: str) -> None:
    """Trino never compares varchar with a number (DuckDB would cast): fail like Athena does."""
    text = _mask_strings(sql)
    strings = {n for n, types in ctx.column_types.items() if types == {"VARCHAR"}}
    if not strings:
        return
    number = r"-?\d+(?:\.\d+)?(?![\w.'])"
    col = r"(?<![\w.'])(?:\w+\.)?\"?(\w+)\"?"
    patterns = [(col + r"\s*" + _OPS + r"\s*(" + number + ")", 1, 2, 3),
                (r"(?<![\w.'])(" + number[:-len("(?![\\w.'])")] + r")\s*" + _OPS + r"\s*(?:\w+\.)?\"?(\w+)\"?(?![\w(])", 3, 2, 1),
                (col + r"\s+(?:NOT\s+)?IN\s*\(\s*(" + number + ")", 1, None, 2),
                (col + r"\s+(?:NOT\s+)?BETWEEN\s+(" + number + ")", 1, None, 2)]
    for pattern, ci, oi, ni in patterns:
        for m in re.finditer(pattern, text, flags=re.I):
            name = m.group(ci).lower()
            if name in strings:
                op = m.group(oi) if oi else ("IN" if "IN" in m.group(0).upper() and "BETWEEN" not in m.group(0).upper() else "BETWEEN")
                kind = "integer" if "." not in m.group(ni) else "decimal"
                if op in ("IN",):
                    msg = "IN value and list items must be the same type: varchar"
                elif op == "BETWEEN":
                    msg = f"Cannot check if varchar is BETWEEN {kind} and {kind}"
                else:
                    msg = f"Cannot apply operator: varchar {'<>' if op == '!=' else op} {kind}"
                raise AthenaQueryError(f"TYPE_MISMATCH: line {_position(sql, m.group(ci))}: {msg}", 1006)


def run_select(ctx: Ctx, sql: str) -> Outcome:
    _prepare(ctx, sql)
    _check_string_vs_number(ctx, sql)
    try:
        cur = ctx.con.execute(sql)
        rows = cur.fetchall()
        desc = cur.description
    except Exception as exc:
        raise _translate(exc, sql) from None
    # Trino names an unaliased expression _col<position>; DuckDB names it after its text
    columns = [(d[0] if re.fullmatch(r"[A-Za-z_]\w*", d[0]) else f"_col{i}", str(d[1]))
               for i, d in enumerate(desc)]
    return Outcome(columns, rows, True, "DML", ctx.scanned)


_CREATE_DB = re.compile(r"^CREATE\s+(?:DATABASE|SCHEMA)\s+(IF\s+NOT\s+EXISTS\s+)?([`\"\w]+)(.*)$", re.I | re.S)
_DROP_DB = re.compile(r"^DROP\s+(?:DATABASE|SCHEMA)\s+(IF\s+EXISTS\s+)?([`\"\w]+)\s*(CASCADE|RESTRICT)?\s*$", re.I)
_CREATE_EXT = re.compile(r"^CREATE\s+(EXTERNAL\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([`\"\w.]+)\s*\(", re.I)
_CTAS = re.compile(r"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([`\"\w.]+)\s*(WITH\s*\(.*?\))?\s*AS\s+(.*)$",
                   re.I | re.S)
_VIEW = re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+([`\"\w.]+)\s+AS\s+(.*)$", re.I | re.S)
_DROP_TABLE = re.compile(r"^DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?([`\"\w.]+)\s*$", re.I)
_MSCK = re.compile(r"^MSCK\s+REPAIR\s+TABLE\s+([`\"\w.]+)\s*$", re.I)
_ADD_PART = re.compile(r"^ALTER\s+TABLE\s+([`\"\w.]+)\s+ADD\s+(IF\s+NOT\s+EXISTS\s+)?(PARTITION.*)$", re.I | re.S)
_DROP_PART = re.compile(r"^ALTER\s+TABLE\s+([`\"\w.]+)\s+DROP\s+(IF\s+EXISTS\s+)?(PARTITION.*)$", re.I | re.S)


def _qualified(ctx: Ctx, ref: str) -> tuple[str, str]:
    parts = [_ident(p) for p in ref.split(".")]
    if len(parts) == 3 and parts[0] == CATALOG:
        parts = parts[1:]
    return (ctx.database, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def execute(ctx: Ctx, raw_sql: str) -> Outcome:
    """Run one statement; raise AthenaQueryError with Athena's reason on failure."""
    sql = strip_comments(raw_sql)
    if not sql:
        raise AthenaQueryError("line 1:1: mismatched input '<EOF>'. Expecting: 'ALTER', 'ANALYZE', "
                               "'CALL', 'COMMIT', 'CREATE', 'DEALLOCATE', 'DELETE', 'DESC', 'DESCRIBE', "
                               "'DROP', 'EXECUTE', 'EXPLAIN', 'GRANT', 'INSERT', 'MERGE', 'PREPARE', "
                               "'REFRESH', 'RESET', 'REVOKE', 'ROLLBACK', 'SELECT', 'SET', 'SHOW', "
                               "'START', 'TABLE', 'UPDATE', 'USE', 'VALUES', 'WITH', <query>", 1004)
    glue = _glue(ctx.account_id, ctx.region)
    from moto.glue.exceptions import (DatabaseNotFoundException, TableNotFoundException)

    if m := _CREATE_DB.match(sql):
        name = _ident(m.group(2))
        if name in glue.databases:
            if not m.group(1):
                raise AthenaQueryError(f"FAILED: AlreadyExistsException Database {name} already exists",
                                       1006)
        else:
            comment = re.search(r"COMMENT\s+'([^']*)'", m.group(3), flags=re.I)
            loc = re.search(r"LOCATION\s+'([^']*)'", m.group(3), flags=re.I)
            dbi = {"Name": name}
            if comment:
                dbi["Description"] = comment.group(1)
            if loc:
                dbi["LocationUri"] = loc.group(1)
            glue.create_database(name, dbi)
        return Outcome(statement_type="DDL", header=False, write_file=False)
    if m := _DROP_DB.match(sql):
        name = _ident(m.group(2))
        if name not in glue.databases:
            if m.group(1):
                return Outcome(statement_type="DDL", header=False, write_file=False)
            raise AthenaQueryError(f"FAILED: SemanticException [Error 10072]: Database does not exist: "
                                   f"{name}", 1006)
        if glue.databases[name].tables and not (m.group(3) or "").upper() == "CASCADE":
            raise AthenaQueryError(f"FAILED: InvalidOperationException(message:Database {name} is not "
                                   f"empty. One or more tables exist.)", 1006)
        glue.delete_database(name)
        return Outcome(statement_type="DDL", header=False, write_file=False)
    if m := _CREATE_EXT.match(sql):
        return _create_external(ctx, sql, m)
    if m := _CTAS.match(sql):
        return _ctas(ctx, sql, m)
    if m := _VIEW.match(sql):
        return _create_view(ctx, sql, m)
    if m := _DROP_TABLE.match(sql):
        db, name = _qualified(ctx, m.group(3))
        try:
            table = glue.get_table(db, name).as_dict()
        except (DatabaseNotFoundException, TableNotFoundException):
            if m.group(2):
                return Outcome(statement_type="DDL", header=False, write_file=False)
            raise AthenaQueryError(f"FAILED: SemanticException [Error 10001]: Table not found {db}.{name}"
                                   if m.group(1).upper() == "TABLE" else
                                   f"line 1:1: View '{CATALOG}.{db}.{name}' does not exist", 1006) from None
        is_view = table.get("TableType") == "VIRTUAL_VIEW"
        if m.group(1).upper() == "VIEW" and not is_view:
            raise AthenaQueryError(f"line 1:1: View '{CATALOG}.{db}.{name}' does not exist", 1006)
        if m.group(1).upper() == "TABLE" and is_view:
            raise AthenaQueryError(f"FAILED: SemanticException [Error 10137]: Cannot drop a view with "
                                   f"DROP TABLE", 1006)
        glue.delete_table(db, name)  # external data stays in S3, as on AWS
        return Outcome(statement_type="DDL", header=False, write_file=False)
    if m := _MSCK.match(sql):
        return _msck(ctx, sql, m)
    if m := _ADD_PART.match(sql):
        return _add_partitions(ctx, sql, m)
    if m := _DROP_PART.match(sql):
        return _drop_partitions(ctx, sql, m)
    if re.match(r"^SHOW\b", sql, flags=re.I):
        return _show(ctx, sql)
    if m := re.match(r"^(?:DESCRIBE|DESC)\s+(?:FORMATTED\s+|EXTENDED\s+)?([`\"\w.]+)\s*$", sql, flags=re.I):
        return _describe(ctx, sql, m.group(1))
    if re.match(r"^(SELECT|WITH|VALUES|\()", sql, flags=re.I):
        return run_select(ctx, sql)
    if re.match(r"^CREATE\s+TABLE\b", sql, flags=re.I):
        raise AthenaQueryError("FAILED: SemanticException Only external table creation is supported in "
                               "Athena. Use CREATE EXTERNAL TABLE, or CREATE TABLE AS SELECT.", 1006)
    word = sql.split()[0]
    raise AthenaQueryError(f"line 1:1: mismatched input '{word}'. Expecting: 'ALTER', 'ANALYZE', 'CALL', "
                           f"'CREATE', 'DESCRIBE', 'DROP', 'EXPLAIN', 'INSERT', 'MSCK', 'SELECT', 'SHOW', "
                           f"'WITH', <query>", 1004)


def _parse_columns(text: str) -> list[dict]:
    out = []
    for piece in _split_top(text):
        m = re.match(r"^([`\"]?[\w]+[`\"]?)\s+(.+?)(?:\s+COMMENT\s+'((?:[^']|'')*)')?\s*$", piece, flags=re.I | re.S)
        if not m:
            raise AthenaQueryError(f"line 1:1: mismatched input '{piece.split()[0] if piece.split() else ''}'. "
                                   f"Expecting: column definition", 1004)
        col = {"Name": _ident(m.group(1)), "Type": re.sub(r"\s+", "", m.group(2)).lower()}
        base = re.split(r"[(<]", col["Type"])[0]
        if base not in _HIVE_TO_DUCK and base not in ("decimal", "array", "map", "struct"):
            raise AthenaQueryError(f"FAILED: ParseException line 1:1 cannot recognize input near "
                                   f"'{m.group(2)}': unknown type {m.group(2)}", 1006)
        if base == "integer":
            col["Type"] = "int"
        if m.group(3):
            col["Comment"] = m.group(3)
        out.append(col)
    return out


def _create_external(ctx: Ctx, sql: str, m: re.Match) -> Outcome:
    glue = _glue(ctx.account_id, ctx.region)
    db, name = _qualified(ctx, m.group(3))
    if not m.group(1):
        raise AthenaQueryError("FAILED: SemanticException Only external table creation is supported in "
                               "Athena (CREATE EXTERNAL TABLE ...)", 1006)
    if db not in glue.databases:
        if db == "default":
            _ensure_default_db(ctx)
        else:
            raise AthenaQueryError(f"FAILED: SemanticException [Error 10072]: Database does not exist: {db}",
                                   1006)
    body, after = _balanced(sql, m.end() - 1)
    columns = _parse_columns(body)
    rest = sql[after:]
    pkeys = []
    pm = re.search(r"PARTITIONED\s+BY\s*\(", rest, flags=re.I)
    if pm:
        pbody, _ = _balanced(rest, pm.end() - 1)
        pkeys = _parse_columns(pbody)
        clash = {c["Name"] for c in columns} & {k["Name"] for k in pkeys}
        if clash:
            raise AthenaQueryError(f"FAILED: SemanticException [Error 10035]: Column repeated in "
                                   f"partitioning columns", 1006)
    serde_lib, serde_params = LAZY_SIMPLE, {}
    in_fmt, out_fmt = TEXT_IN, TEXT_OUT
    sm = re.search(r"ROW\s+FORMAT\s+SERDE\s+'([^']+)'", rest, flags=re.I)
    if sm:
        serde_lib = sm.group(1)
        wm = re.search(r"WITH\s+SERDEPROPERTIES\s*\(", rest, flags=re.I)
        if wm:
            serde_params = _kv_list(_balanced(rest, wm.end() - 1)[0])
    elif re.search(r"ROW\s+FORMAT\s+DELIMITED", rest, flags=re.I):
        fm = re.search(r"FIELDS\s+TERMINATED\s+BY\s+'((?:[^']|\\')*)'", rest, flags=re.I)
        delim = fm.group(1) if fm else "\\001"
        serde_params = {"field.delim": _unescape(delim), "serialization.format": _unescape(delim)}
        em = re.search(r"ESCAPED\s+BY\s+'([^']*)'", rest, flags=re.I)
        if em:
            serde_params["escape.delim"] = _unescape(em.group(1))
        cm = re.search(r"COLLECTION\s+ITEMS\s+TERMINATED\s+BY\s+'([^']*)'", rest, flags=re.I)
        if cm:
            serde_params["collection.delim"] = _unescape(cm.group(1))
    else:
        serde_params = {"serialization.format": "1"}
    st = re.search(r"STORED\s+AS\s+(INPUTFORMAT\s+'([^']+)'\s+OUTPUTFORMAT\s+'([^']+)'|(\w+))", rest, flags=re.I)
    if st:
        if st.group(2):
            in_fmt, out_fmt = st.group(2), st.group(3)
        else:
            kind = st.group(4).upper()
            if kind == "PARQUET":
                in_fmt, out_fmt = PARQUET_IN, PARQUET_OUT
                if not sm:
                    serde_lib, serde_params = PARQUET_SERDE, {"serialization.format": "1"}
            elif kind == "ORC":
                in_fmt, out_fmt = ORC_IN, ORC_OUT
                if not sm:
                    serde_lib, serde_params = ORC_SERDE, {"serialization.format": "1"}
            elif kind != "TEXTFILE":
                raise AthenaQueryError(f"FAILED: SemanticException Unrecognized file format in STORED AS "
                                       f"clause: '{kind}'", 1006)
    loc = re.search(r"LOCATION\s+'([^']+)'", rest, flags=re.I)
    if not loc:
        raise AthenaQueryError("FAILED: SemanticException Athena requires a LOCATION for external "
                               "tables (an s3:// prefix)", 1006)
    location = loc.group(1)
    if not location.lower().startswith("s3://"):
        raise AthenaQueryError(f"FAILED: IllegalArgumentException Invalid S3 location: {location}", 1006)
    params = {"EXTERNAL": "TRUE", "transient_lastDdlTime": str(int(time.time()))}
    tm = re.search(r"TBLPROPERTIES\s*\(", rest, flags=re.I)
    if tm:
        params.update(_kv_list(_balanced(rest, tm.end() - 1)[0]))
    if name in glue.databases[db].tables:
        if m.group(2):
            return Outcome(statement_type="DDL", header=False, write_file=False)
        raise AthenaQueryError(f"FAILED: AlreadyExistsException Table {name} already exists", 1006)
    glue.create_table(db, name, _external_table_input(name, params, pkeys, columns, location, in_fmt,
                                                      out_fmt, serde_lib, serde_params))
    return Outcome(statement_type="DDL", header=False, write_file=False)


def _external_table_input(name, params, pkeys, columns, location, in_fmt, out_fmt, serde_lib,
                          serde_params) -> dict:
    """The Glue TableInput Athena writes for CREATE EXTERNAL TABLE and CTAS (its field defaults)."""
    return {
        "Name": name, "Owner": "hadoop", "Retention": 0, "TableType": "EXTERNAL_TABLE",
        "Parameters": params, "PartitionKeys": pkeys,
        "StorageDescriptor": {
            "Columns": columns, "Location": location, "InputFormat": in_fmt, "OutputFormat": out_fmt,
            "Compressed": False, "NumberOfBuckets": -1,
            "SerdeInfo": {"SerializationLibrary": serde_lib, "Parameters": serde_params},
            "BucketColumns": [], "SortColumns": [], "Parameters": {}, "StoredAsSubDirectories": False,
        },
    }


def _partition_input(table: dict, values: list[str], location: str) -> dict:
    sd = json.loads(json.dumps(table.get("StorageDescriptor") or {}, default=str))
    sd["Location"] = location
    return {"Values": values, "StorageDescriptor": sd, "Parameters": {}}


def _msck(ctx: Ctx, sql: str, m: re.Match) -> Outcome:
    db, name = _qualified(ctx, m.group(1))
    table = _get_table(ctx, db, name, sql)
    pkeys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
    if not pkeys:
        raise AthenaQueryError(f"FAILED: SemanticException [Error 10241]: Table is not partitioned but "
                               f"partition spec exists: {db}.{name}", 1006)
    location = table["StorageDescriptor"]["Location"]
    if not location.endswith("/"):
        location += "/"
    bucket, prefix = split_s3(location)
    found: dict[tuple, str] = {}
    for f in list_files(ctx.account_id, location):
        dirs = f.key[len(prefix):].split("/")[:-1]
        if len(dirs) < len(pkeys):
            continue
        values = []
        for want, d in zip(pkeys, dirs):
            k, sep, v = d.partition("=")
            if not sep or k.lower() != want:
                break
            values.append(v)
        else:
            found.setdefault(tuple(values), location + "/".join(dirs[:len(pkeys)]) + "/")
    glue = _glue(ctx.account_id, ctx.region)
    existing = {tuple(p.values) for p in glue.get_table(db, name).partitions.values()}
    lines = []
    missing = [v for v in sorted(found) if v not in existing]
    if missing:
        lines.append("Partitions not in metastore:\t" + "\t".join(
            f"{name}:" + "/".join(f"{k}={v}" for k, v in zip(pkeys, vals)) for vals in missing))
    for vals in missing:
        glue.create_partition(db, name, _partition_input(table, list(vals), found[vals]))
        lines.append("Repair: Added partition to metastore " + f"{name}:" +
                     "/".join(f"{k}={v}" for k, v in zip(pkeys, vals)))
    return Outcome([("result", "VARCHAR")], [(line,) for line in lines], False, "DDL",
                   text_output=True)


def _partition_specs(text: str) -> list[tuple[dict[str, str], str | None]]:
    specs = []
    for pm in re.finditer(r"PARTITION\s*\(", text, flags=re.I):
        body, after = _balanced(text, pm.end() - 1)
        values = {}
        for piece in _split_top(body):
            k, _, v = piece.partition("=")
            values[_ident(k)] = v.strip().strip("'\"")
        lm = re.match(r"\s*LOCATION\s+'([^']+)'", text[after:], flags=re.I)
        specs.append((values, lm.group(1) if lm else None))
    return specs


def _add_partitions(ctx: Ctx, sql: str, m: re.Match) -> Outcome:
    from moto.glue.exceptions import PartitionAlreadyExistsException

    db, name = _qualified(ctx, m.group(1))
    table = _get_table(ctx, db, name, sql)
    pkeys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
    glue = _glue(ctx.account_id, ctx.region)
    for spec, loc in _partition_specs(m.group(3)):
        if set(spec) != set(pkeys):
            raise AthenaQueryError(f"FAILED: ValidationException Partition spec {spec} does not match "
                                   f"the partition columns {pkeys} of {db}.{name}", 1006)
        values = [spec[k] for k in pkeys]
        base = table["StorageDescriptor"]["Location"].rstrip("/") + "/"
        location = loc or base + "/".join(f"{k}={v}" for k, v in zip(pkeys, values)) + "/"
        try:
            glue.create_partition(db, name, _partition_input(table, values, location))
        except PartitionAlreadyExistsException:
            if not m.group(2):
                raise AthenaQueryError("FAILED: AlreadyExistsException Partition already exists", 1006) from None
    return Outcome(statement_type="DDL", header=False, write_file=False)


def _drop_partitions(ctx: Ctx, sql: str, m: re.Match) -> Outcome:
    from moto.glue.exceptions import PartitionNotFoundException

    db, name = _qualified(ctx, m.group(1))
    table = _get_table(ctx, db, name, sql)
    pkeys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
    glue = _glue(ctx.account_id, ctx.region)
    for spec, _ in _partition_specs(m.group(3)):
        try:
            glue.delete_partition(db, name, [spec.get(k) for k in pkeys])
        except PartitionNotFoundException:
            if not m.group(2):
                raise AthenaQueryError("FAILED: SemanticException [Error 10006]: Partition not found", 1006) from None
    return Outcome(statement_type="DDL", header=False, write_file=False)


def _show(ctx: Ctx, sql: str) -> Outcome:
    glue = _glue(ctx.account_id, ctx.region)
    _ensure_default_db(ctx)
    if m := re.match(r"^SHOW\s+(?:DATABASES|SCHEMAS)(?:\s+(?:LIKE\s+)?'([^']*)')?\s*$", sql, flags=re.I):
        names = sorted(glue.databases)
        if m.group(1):
            names = [n for n in names if fnmatch.fnmatch(n, m.group(1).replace("|", "*"))]
        return Outcome([("database_name", "VARCHAR")], [(n,) for n in names], False, "UTILITY",
                       text_output=True)
    if m := re.match(r"^SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+([`\"\w]+))?(?:\s+(?:LIKE\s+)?'([^']*)')?\s*$", sql, flags=re.I):
        db = _ident(m.group(1)) if m.group(1) else ctx.database
        if db not in glue.databases:
            raise AthenaQueryError(f"FAILED: SemanticException [Error 10072]: Database does not exist: {db}", 1006)
        names = sorted(glue.databases[db].tables)
        if m.group(2):
            pats = m.group(2).split("|")
            names = [n for n in names if any(fnmatch.fnmatch(n, p.strip()) for p in pats)]
        return Outcome([("tab_name", "VARCHAR")], [(n,) for n in names], False, "UTILITY", text_output=True)
    if m := re.match(r"^SHOW\s+PARTITIONS\s+([`\"\w.]+)\s*$", sql, flags=re.I):
        db, name = _qualified(ctx, m.group(1))
        table = _get_table(ctx, db, name, sql)
        pkeys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
        if not pkeys:
            raise AthenaQueryError(f"FAILED: SemanticException [Error 10241]: Table {name} is not a "
                                   f"partitioned table", 1006)
        rows = sorted("/".join(f"{k}={v}" for k, v in zip(pkeys, p["Values"]))
                      for p in _partitions(ctx, db, name))
        return Outcome([("partition", "VARCHAR")], [(r,) for r in rows], False, "UTILITY", text_output=True)
    if m := re.match(r"^SHOW\s+COLUMNS\s+(?:IN|FROM)\s+([`\"\w.]+)\s*$", sql, flags=re.I):
        db, name = _qualified(ctx, m.group(1))
        table = _get_table(ctx, db, name, sql)
        cols = (table.get("StorageDescriptor") or {}).get("Columns", []) + (table.get("PartitionKeys") or [])
        return Outcome([("field", "VARCHAR")], [(c["Name"],) for c in cols], False, "UTILITY", text_output=True)
    raise AthenaQueryError(f"line 1:6: mismatched input '{sql.split()[1] if len(sql.split()) > 1 else '<EOF>'}'. "
                           f"Expecting: 'COLUMNS', 'CREATE', 'DATABASES', 'PARTITIONS', 'SCHEMAS', "
                           f"'TABLES', 'VIEWS'", 1004)


def _describe(ctx: Ctx, sql: str, ref: str) -> Outcome:
    db, name = _qualified(ctx, ref)
    table = _get_table(ctx, db, name, sql)
    cols = (table.get("StorageDescriptor") or {}).get("Columns", [])
    pkeys = table.get("PartitionKeys") or []
    lines = [f"{c['Name']:<25}\t{c['Type']:<25}\t{c.get('Comment', '')}" for c in cols + pkeys]
    if pkeys:
        lines += ["", "# Partition Information", f"{'# col_name':<25}\t{'data_type':<25}\tcomment", ""]
        lines += [f"{c['Name']:<25}\t{c['Type']:<25}\t{c.get('Comment', '')}" for c in pkeys]
    return Outcome([("col_name", "VARCHAR")], [(line,) for line in lines], False, "UTILITY", text_output=True)


def _with_props(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    body = text[text.index("(") + 1:text.rindex(")")]
    props = {}
    for piece in _split_top(body):
        k, _, v = piece.partition("=")
        v = v.strip()
        am = re.match(r"^ARRAY\s*\[(.*)\]$", v, flags=re.I | re.S)
        if am:
            props[k.strip().lower()] = [x.strip().strip("'\"").lower() for x in am.group(1).split(",") if x.strip()]
        else:
            props[k.strip().lower()] = v.strip("'")
    return props


def _ctas(ctx: Ctx, sql: str, m: re.Match) -> Outcome:
    glue = _glue(ctx.account_id, ctx.region)
    db, name = _qualified(ctx, m.group(2))
    props = _with_props(m.group(3))
    query = m.group(4).strip()
    no_data = False
    if re.search(r"\bWITH\s+NO\s+DATA\s*$", query, flags=re.I):
        query, no_data = re.sub(r"\bWITH\s+NO\s+DATA\s*$", "", query, flags=re.I).strip(), True
    if db not in glue.databases:
        raise AthenaQueryError(f"SCHEMA_NOT_FOUND: line 1:14: Schema '{db}' does not exist", 1006)
    if name in glue.databases[db].tables:
        if m.group(1):
            return Outcome(statement_type="DDL", header=False, write_file=False)
        raise AthenaQueryError(f"TABLE_ALREADY_EXISTS: line 1:1: Table '{CATALOG}.{db}.{name}' already "
                               f"exists", 1006)
    fmt = str(props.get("format", "PARQUET")).upper()
    if fmt not in ("PARQUET", "TEXTFILE", "JSON"):
        raise AthenaQueryError(f"NOT_SUPPORTED: format '{fmt}' is not supported by the local Athena "
                               f"(PARQUET, TEXTFILE, JSON are)", 1006)
    location = props.get("external_location")
    if not location:
        if not ctx.output_location:
            raise AthenaQueryError("No output location provided for the table data", 1006)
        location = ctx.output_location.rsplit("/", 1)[0] + f"/tables/{ctx.query_id}/"
    if not location.endswith("/"):
        location += "/"
    if list_files(ctx.account_id, location):
        raise AthenaQueryError(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{db}.{name}' "
                               f"already exists: {location}. You may need to manually clean the data "
                               f"at location '{ctx.output_location or location}' before retrying. "
                               f"Athena will not delete data in your account.", 1006)
    partitioned_by = props.get("partitioned_by") or []
    _prepare(ctx, query)
    _check_string_vs_number(ctx, query)
    try:
        desc = ctx.con.execute(f"SELECT * FROM ({query}) LIMIT 0").description
    except Exception as exc:
        raise _translate(exc, query) from None
    colnames = [d[0].lower() for d in desc]
    if partitioned_by and colnames[-len(partitioned_by):] != list(partitioned_by):
        raise AthenaQueryError(f"HIVE_COLUMN_ORDER_MISMATCH: Partition keys must be the last columns in "
                               f"the table and in the same order as the table properties: "
                               f"{list(partitioned_by)}", 1006)
    if len(set(colnames)) != len(colnames):
        raise AthenaQueryError("DUPLICATE_COLUMN_NAME: line 1:1: Column name specified more than once", 1006)
    types = {d[0].lower(): _athena_type(str(d[1]))[1] for d in desc}
    out_dir = tempfile.mkdtemp(prefix="ctas-", dir=_cache_root())
    rows = 0
    try:
        if not no_data:
            rows = ctx.con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
            compression = str(props.get("write_compression", "SNAPPY" if fmt == "PARQUET" else "GZIP")).upper()
            options = {"PARQUET": f"FORMAT parquet, COMPRESSION {compression if compression != 'NONE' else 'uncompressed'}",
                       "TEXTFILE": "FORMAT csv, HEADER false, DELIMITER '\\x01'",
                       "JSON": "FORMAT json"}[fmt]
            if fmt == "TEXTFILE":
                delim = props.get("field_delimiter", "\x01")
                options = f"FORMAT csv, HEADER false, DELIMITER {_lit(delim)}, QUOTE ''"
            if fmt != "PARQUET" and compression == "GZIP":
                options += ", COMPRESSION gzip"
            cols_sql = ", ".join(f'"{c}"' for c in colnames)
            target = os.path.join(out_dir, "data")
            if partitioned_by:
                options += ", PARTITION_BY (" + ", ".join(f'"{p}"' for p in partitioned_by) + ")"
                ctx.con.execute(f"COPY (SELECT {cols_sql} FROM ({query})) TO {_lit(target)} ({options})")
            else:
                os.makedirs(target, exist_ok=True)
                ctx.con.execute(f"COPY (SELECT {cols_sql} FROM ({query})) TO "
                                f"{_lit(os.path.join(target, 'part'))} ({options})")
            suffix = ".gz" if fmt != "PARQUET" and compression == "GZIP" else ""
            for root, _, files in os.walk(target):
                for i, fname in enumerate(sorted(files)):
                    rel = os.path.relpath(root, target)
                    rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
                    with open(os.path.join(root, fname), "rb") as fh:
                        data = fh.read()
                    if data:
                        _put_s3(ctx.account_id, f"{location}{rel}{ctx.query_id}_{i:05d}{suffix}", data)
    except AthenaQueryError:
        raise
    except Exception as exc:
        raise _translate(exc, query) from None
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    data_cols = [{"Name": c, "Type": types[c]} for c in colnames if c not in partitioned_by]
    pkeys = [{"Name": c, "Type": types[c]} for c in partitioned_by]
    if fmt == "PARQUET":
        in_fmt, out_fmt, lib, sparams = PARQUET_IN, PARQUET_OUT, PARQUET_SERDE, {"serialization.format": "1"}
        params = {"EXTERNAL": "TRUE", "has_encrypted_data": "false", "classification": "parquet",
                  "parquet.compression": str(props.get("write_compression", "SNAPPY")).upper()}
    elif fmt == "JSON":
        in_fmt, out_fmt, lib, sparams = TEXT_IN, TEXT_OUT, JSON_SERDES[1], {}
        params = {"EXTERNAL": "TRUE", "has_encrypted_data": "false", "classification": "json"}
    else:
        d = props.get("field_delimiter", "\x01")
        in_fmt, out_fmt, lib, sparams = TEXT_IN, TEXT_OUT, LAZY_SIMPLE, {"field.delim": d, "serialization.format": d}
        params = {"EXTERNAL": "TRUE", "has_encrypted_data": "false", "classification": "csv"}
    glue.create_table(db, name, _external_table_input(name, params, pkeys, data_cols, location, in_fmt,
                                                      out_fmt, lib, sparams))
    if pkeys:
        table = glue.get_table(db, name).as_dict()
        bucket, prefix = split_s3(location)
        seen = set()
        for f in list_files(ctx.account_id, location):
            dirs = f.key[len(prefix):].split("/")[:-1]
            vals = tuple(d.partition("=")[2] for d in dirs[:len(pkeys)])
            if len(vals) == len(pkeys) and vals not in seen:
                seen.add(vals)
                glue.create_partition(db, name, _partition_input(table, list(vals),
                                                                 location + "/".join(dirs[:len(pkeys)]) + "/"))
    return Outcome([("rows", "BIGINT")], [(rows,)], False, "DDL", ctx.scanned)


def _create_view(ctx: Ctx, sql: str, m: re.Match) -> Outcome:
    glue = _glue(ctx.account_id, ctx.region)
    db, name = _qualified(ctx, m.group(2))
    query = m.group(3).strip()
    if db not in glue.databases:
        raise AthenaQueryError(f"SCHEMA_NOT_FOUND: line 1:13: Schema '{db}' does not exist", 1006)
    existing = glue.databases[db].tables.get(name)
    if existing is not None:
        if existing.as_dict().get("TableType") != "VIRTUAL_VIEW":
            raise AthenaQueryError(f"line 1:1: Table '{CATALOG}.{db}.{name}' already exists as a table, "
                                   f"not a view", 1006)
        if not m.group(1):
            raise AthenaQueryError(f"line 1:1: View '{CATALOG}.{db}.{name}' already exists", 1006)
    _prepare(ctx, query)
    _check_string_vs_number(ctx, query)
    try:
        desc = ctx.con.execute(f"SELECT * FROM ({query}) LIMIT 0").description
    except Exception as exc:
        raise _translate(exc, query) from None
    ctx.scanned = 0  # binding a view reads no data
    presto_cols = [{"name": d[0].lower(), "type": _athena_type(str(d[1]))[0]} for d in desc]
    payload = {"originalSql": query, "catalog": CATALOG, "schema": db, "columns": presto_cols}
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    table_input = {
        "Name": name, "TableType": "VIRTUAL_VIEW", "Owner": "hadoop", "Retention": 0,
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": f"/* Presto View: {encoded} */", "ViewExpandedText": "/* Presto View */",
        "PartitionKeys": [],
        "StorageDescriptor": {
            "Columns": [{"Name": c["name"], "Type": _athena_type(str(d[1]))[1]} for c, d in zip(presto_cols, desc)],
            "Location": "", "InputFormat": "", "OutputFormat": "", "Compressed": False, "NumberOfBuckets": 0,
            "SerdeInfo": {}, "BucketColumns": [], "SortColumns": [], "StoredAsSubDirectories": False,
        },
    }
    if existing is not None:
        glue.update_table(db, name, table_input)
    else:
        glue.create_table(db, name, table_input)
    return Outcome(statement_type="DDL", header=False, write_file=False)


# --- result formatting ----------------------------------------------------------------------
def _java_double(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0 or 1e-3 <= abs(x) < 1e7:
        return repr(float(x))
    mant, exp = f"{x:.16E}".split("E")
    mant = repr(float(mant))
    return f"{mant}E{int(exp)}"


def format_value(value: Any, athena_type: str) -> str | None:
    """Athena's text for one value (what VarCharValue and the CSV hold); None for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if athena_type == "real":
            return _java_double(float(f"{value:.7g}"))
        return _java_double(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join("null" if v is None else format_value(v, "") for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={format_value(v, '')}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return value.hex(" ")
    return str(value)


def build_results(outcome: Outcome) -> tuple[list[dict], list[dict], bytes]:
    """(Rows, ColumnInfo, output file bytes) in Athena's shapes."""
    info, types = [], []
    for name, duck in outcome.columns:
        a, _, precision, scale = _athena_type(duck)
        types.append(a)
        info.append({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name,
                     "Label": name, "Type": a, "Precision": precision, "Scale": scale,
                     "Nullable": "UNKNOWN", "CaseSensitive": a == "varchar"})
    rows = []
    buf = io.StringIO()
    if outcome.header:
        rows.append({"Data": [{"VarCharValue": n} for n, _ in outcome.columns]})
        buf.write(",".join('"' + n.replace('"', '""') + '"' for n, _ in outcome.columns) + "\n")
    for row in outcome.rows:
        texts = [format_value(v, t) for v, t in zip(row, types)]
        rows.append({"Data": [{} if t is None else {"VarCharValue": t} for t in texts]})
        if outcome.text_output:
            buf.write("\t".join(t or "" for t in texts) + "\n")
        else:
            buf.write(",".join("" if t is None else '"' + t.replace('"', '""') + '"' for t in texts) + "\n")
    return rows, info, buf.getvalue().encode()


# --- the moto hooks ----------------------------------------------------------------------------
_original: dict[str, Any] = {}


def _effective_output(backend, workgroup_name: str | None, config: dict | None) -> str | None:
    wg = backend.work_groups.get(workgroup_name or "primary")
    client_loc = (config or {}).get("OutputLocation")
    wg_conf = (wg.configuration if wg else {}) or {}
    wg_loc = (wg_conf.get("ResultConfiguration") or {}).get("OutputLocation")
    if wg_loc and (wg_conf.get("EnforceWorkGroupConfiguration", True) or not client_loc):
        return wg_loc
    return client_loc


def _statement_type(sql: str) -> str:
    s = strip_comments(sql).upper()
    if s.startswith(("SHOW", "DESCRIBE", "DESC ", "EXPLAIN")):
        return "UTILITY"
    if s.startswith(("CREATE", "DROP", "ALTER", "MSCK")):
        return "DDL"
    return "DML"


def start_query_execution(self, query: str, context: Any, config: Any, workgroup: str,
                          execution_parameters: Any) -> str:
    """Replacement for AthenaBackend.start_query_execution: validate, then run on the pool."""
    from moto.athena.exceptions import InvalidArgumentException
    from moto.athena.models import Execution

    from labkit.local.server import background

    if not query or not str(query).strip():
        raise InvalidArgumentException("Query string cannot be empty")
    output = _effective_output(self, workgroup, config)
    if not output:
        from moto.core.exceptions import JsonRESTError

        raise JsonRESTError("InvalidRequestException",
                            "No output location provided. An output location is required either "
                            "through the Workgroup result configuration setting or as an API input.")
    cfg = dict(config or {})
    cfg["OutputLocation"] = output
    wg = self.work_groups.get(workgroup or "primary")
    execution = Execution(query=query, context=context, config=cfg, workgroup=wg,
                          execution_parameters=execution_parameters)
    execution._transitions = []  # this engine drives the state, not moto's state manager
    execution.status = "QUEUED"
    kind = _statement_type(query)
    if kind != "DML":
        execution.config["OutputLocation"] = execution.config["OutputLocation"][:-4] + ".txt"
    self.executions[execution.id] = execution
    database = ((context or {}).get("Database") or "default").lower()
    with _state_lock:
        _stats[execution.id] = {"scanned": 0, "reason": None, "statement_type": kind,
                                "submitted": time.time(), "engine_ms": 0, "error": None}
    background(_run, self, execution, database)
    return execution.id


def _run(backend, execution, database: str) -> None:
    from moto.athena.models import QueryResults

    stats = _stats.get(execution.id, {})
    if execution.status == "CANCELLED":
        return
    execution.status = "RUNNING"
    started = time.time()
    ctx = Ctx(backend.account_id, backend.region_name, database, execution.id,
              execution.config.get("OutputLocation"))
    try:
        _ensure_default_db(ctx)
        ctx.con = _connect(ctx)
        clean = False
        try:
            params = execution.execution_parameters or []
            sql = execution.query
            for p in params:  # positional ? parameters, substituted as Athena does
                sql = sql.replace("?", str(p), 1)
            outcome = execute(ctx, sql)
            clean = ";" not in _mask_strings(strip_comments(sql))  # one statement left no state
        finally:
            _release(ctx.con, clean)
        rows, info, data = build_results(outcome)
        if outcome.write_file or outcome.text_output:
            _put_s3(backend.account_id, execution.config["OutputLocation"], data)
        backend.query_results[execution.id] = QueryResults(rows, info)
        stats.update(scanned=outcome.scanned or ctx.scanned, statement_type=outcome.statement_type)
        final = "SUCCEEDED"
    except AthenaQueryError as exc:
        stats.update(reason=exc.reason, error=(exc.category, exc.error_type), scanned=0)
        final = "FAILED"
    except Exception as exc:  # an engine bug is reported as Athena's internal error, never a 500
        import logging

        logging.getLogger("labkit.athena").exception("query %s failed", execution.id)
        stats.update(reason=f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}", error=(1, 1001))
        final = "FAILED"
    stats["engine_ms"] = int((time.time() - started) * 1000)
    execution.end_time = time.time()
    if execution.status != "CANCELLED":
        execution.status = final


def _get_query_execution_response(self):
    body = _original["get_query_execution_response"](self)
    result = json.loads(body)
    qe = result["QueryExecution"]
    stats = _stats.get(qe["QueryExecutionId"])
    if stats is None:
        return body
    execution = self.athena_backend.executions[qe["QueryExecutionId"]]
    qe["StatementType"] = stats["statement_type"]
    status = qe["Status"]
    if status["State"] in ("QUEUED", "RUNNING"):
        status.pop("CompletionDateTime", None)
    if stats.get("reason") and status["State"] == "FAILED":
        status["StateChangeReason"] = stats["reason"]
        category, etype = stats["error"]
        status["AthenaError"] = {"ErrorCategory": category, "ErrorType": etype, "Retryable": False,
                                 "ErrorMessage": stats["reason"]}
    total = int(((execution.end_time if status["State"] not in ("QUEUED", "RUNNING") else time.time())
                 - execution.start_time) * 1000)
    qe["Statistics"].update({
        "DataScannedInBytes": stats["scanned"] if status["State"] in ("SUCCEEDED", "FAILED") else 0,
        "EngineExecutionTimeInMillis": stats["engine_ms"],
        "TotalExecutionTimeInMillis": max(total, stats["engine_ms"]),
    })
    qe["EngineVersion"] = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
    if qe.get("QueryExecutionContext") is None:
        qe["QueryExecutionContext"] = {}
    if not qe.get("WorkGroup"):
        qe["WorkGroup"] = "primary"
    return json.dumps(result)


def _get_query_results_response(self):
    from moto.core.exceptions import JsonRESTError

    exec_id = self._get_param("QueryExecutionId")
    backend = self.athena_backend
    execution = backend.executions.get(exec_id)
    if execution is None or exec_id not in _stats:
        if execution is None:
            raise JsonRESTError("InvalidRequestException", f"QueryExecution {exec_id} was not found")
        return _original["get_query_results_response"](self)
    state = execution.status
    if state in ("QUEUED", "RUNNING"):
        raise JsonRESTError("InvalidRequestException", f"Query has not yet finished. Current state: {state}")
    if state != "SUCCEEDED":
        raise JsonRESTError("InvalidRequestException",
                            f"Query did not finish successfully. Final query state: {state}")
    max_results = int(self._get_param("MaxResults") or PAGE_MAX)
    if not 1 <= max_results <= PAGE_MAX:
        raise JsonRESTError("InvalidRequestException",
                            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed "
                            f"to satisfy constraint: Member must have value less than or equal to 1000")
    token = self._get_param("NextToken")
    start = 0
    if token:
        try:
            tid, start = base64.urlsafe_b64decode(token.encode()).decode().rsplit(":", 1)
            start = int(start)
            assert tid == exec_id
        except Exception:
            raise JsonRESTError("InvalidRequestException", "Invalid NextToken") from None
    results = backend.query_results.get(exec_id)
    rows = results.rows if results else []
    info = results.column_info if results else []
    page = rows[start:start + max_results]
    out = {"ResultSet": {"Rows": page, "ResultSetMetadata": {"ColumnInfo": info}},
           "UpdateCount": 0}
    if start + max_results < len(rows):
        out["NextToken"] = base64.urlsafe_b64encode(f"{exec_id}:{start + max_results}".encode()).decode()
    return json.dumps(out)


def _stop_query_execution(self, exec_id: str) -> None:
    """Cancel a queued or running query; a finished query keeps its final state (as on AWS)."""
    execution = self.executions.get(exec_id)
    if execution is None:
        from moto.core.exceptions import JsonRESTError

        raise JsonRESTError("InvalidRequestException", f"QueryExecution {exec_id} was not found")
    if execution.status in ("QUEUED", "RUNNING"):
        execution.status = "CANCELLED"
        execution.end_time = time.time()


def _get_work_group_response(self):
    """AWS answers an unknown workgroup with InvalidRequestException (moto returns null)."""
    from moto.core.exceptions import JsonRESTError

    name = self._get_param("WorkGroup")
    if self.athena_backend.get_work_group(name) is None:
        raise JsonRESTError("InvalidRequestException", f"WorkGroup {name} is not found.")
    return _original["get_work_group_response"](self)


def _table_metadata(table: dict) -> dict:
    sd = table.get("StorageDescriptor") or {}
    out = {"Name": table["Name"], "CreateTime": table.get("CreateTime"),
           "TableType": table.get("TableType", "EXTERNAL_TABLE"),
           "Columns": [{k: c[k] for k in ("Name", "Type", "Comment") if k in c} for c in sd.get("Columns") or []],
           "PartitionKeys": [{k: c[k] for k in ("Name", "Type", "Comment") if k in c}
                             for c in table.get("PartitionKeys") or []],
           "Parameters": dict(table.get("Parameters") or {})}
    if sd.get("Location"):
        out["Parameters"].setdefault("location", sd["Location"])
    if sd.get("InputFormat"):
        out["Parameters"].setdefault("inputformat", sd["InputFormat"])
        out["Parameters"].setdefault("outputformat", sd.get("OutputFormat", ""))
    lib = (sd.get("SerdeInfo") or {}).get("SerializationLibrary")
    if lib:
        out["Parameters"].setdefault("serde.serialization.lib", lib)
        for k, v in ((sd.get("SerdeInfo") or {}).get("Parameters") or {}).items():
            out["Parameters"].setdefault(f"serde.param.{k}", v)
    return out


def _metadata_tables(self, database: str) -> dict:
    """Glue tables of ``database`` (MetadataException as AWS when the catalog or database is unknown)."""
    from moto.core.exceptions import JsonRESTError

    catalog = self._get_param("CatalogName")
    if catalog != "AwsDataCatalog":
        raise JsonRESTError("MetadataException", f"Catalog {catalog} not found.")
    glue = _glue(self.athena_backend.account_id, self.athena_backend.region_name)
    _sync_databases(self.athena_backend)
    if database not in glue.databases:
        raise JsonRESTError("MetadataException", f"Database {database} not found.")
    return glue.databases[database].tables


def _json_default(value):
    return value.timestamp() if isinstance(value, datetime) else str(value)


def _get_table_metadata_response(self):
    """Athena GetTableMetadata over the Glue catalog (moto answers 500)."""
    from moto.core.exceptions import JsonRESTError

    database, name = self._get_param("DatabaseName"), self._get_param("TableName")
    tables = _metadata_tables(self, database)
    if name not in tables:
        raise JsonRESTError("MetadataException", f"Table {name} not found in database {database}.")
    return json.dumps({"TableMetadata": _table_metadata(tables[name].as_dict())}, default=_json_default)


def _list_table_metadata_response(self):
    """Athena ListTableMetadata (Expression is a regex-like filter, * wildcard; paginated)."""
    from moto.core.exceptions import JsonRESTError

    tables = _metadata_tables(self, self._get_param("DatabaseName"))
    expression = self._get_param("Expression")
    names = sorted(tables)
    if expression:
        pattern = re.compile(expression.replace("*", ".*") + "$")
        names = [n for n in names if pattern.match(n)]
    max_results = int(self._get_param("MaxResults") or 50)
    if not 1 <= max_results <= 50:
        raise JsonRESTError("InvalidRequestException", "MaxResults must be between 1 and 50")
    start = int(self._get_param("NextToken") or 0)
    page = names[start:start + max_results]
    out = {"TableMetadataList": [_table_metadata(tables[n].as_dict()) for n in page]}
    if start + max_results < len(names):
        out["NextToken"] = str(start + max_results)
    return json.dumps(out, default=_json_default)


def _sync_databases(backend) -> None:
    """Athena's catalog view of databases is Glue's (AWS: AwsDataCatalog is the Glue catalog)."""
    from moto.athena.models import Database

    glue = _glue(backend.account_id, backend.region_name)
    if "default" not in glue.databases:
        glue.create_database("default", {"Name": "default", "Description": "Default Hive database"})
    keep = {k: v for k, v in backend.databases.items() if k[0] != "AwsDataCatalog"}
    for name, db in glue.databases.items():
        keep[("AwsDataCatalog", name)] = Database("AwsDataCatalog", name,
                                                  db.input.get("Description") or "",
                                                  db.input.get("Parameters") or {})
    backend.databases = keep


def install() -> None:
    """Patch moto's Athena: run queries for real; results, statistics and states like AWS."""
    from moto.athena import responses
    from moto.athena.models import AthenaBackend

    from labkit.local.server import on_reset

    if "start" in _original:
        return
    _original["start"] = AthenaBackend.start_query_execution
    AthenaBackend.start_query_execution = start_query_execution
    AthenaBackend.stop_query_execution = _stop_query_execution
    _original["get_query_execution_response"] = responses.AthenaResponse.get_query_execution
    responses.AthenaResponse.get_query_execution = _get_query_execution_response
    _original["get_query_results_response"] = responses.AthenaResponse.get_query_results
    responses.AthenaResponse.get_query_results = _get_query_results_response

    responses.AthenaResponse.get_table_metadata = _get_table_metadata_response
    responses.AthenaResponse.list_table_metadata = _list_table_metadata_response
    _original["get_work_group_response"] = responses.AthenaResponse.get_work_group
    responses.AthenaResponse.get_work_group = _get_work_group_response
    for meth in ("list_databases", "get_database"):
        orig = getattr(AthenaBackend, meth)
        _original[meth] = orig

        def wrapped(self, *a, __orig=orig, **kw):
            _sync_databases(self)
            return __orig(self, *a, **kw)

        setattr(AthenaBackend, meth, wrapped)
    on_reset(_reset)
