"""Firehose engine: DirectPut streams really buffer, compress and deliver to S3 like AWS.

moto writes one S3 object per ``put_record_batch`` call, ignores BufferingHints and compression, and
never evaluates prefix expressions. This engine replaces that delivery path
(hook: ``moto.firehose.models.FirehoseBackend.put_record_batch`` / ``create_delivery_stream`` /
``update_destination``) with per-stream buffers that flush when the buffered bytes reach
``SizeInMBs`` or when the oldest record is ``IntervalInSeconds`` old on the virtual clock (checked
on every put and on every clock tick), so a lab sees nothing in S3 until the buffer is due, exactly
as on AWS. Objects are named ``<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>``
with ``.gz`` / ``.zip`` for GZIP / ZIP compression (real gzip / zip bytes).
"""

from __future__ import annotations

import gzip
import io
import random
import re
import string
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from labkit.local import clock

MIB = 1024 * 1024
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * MIB
MAX_RECORD_BYTES = 1000 * 1024  # 1,000 KiB before base64 encoding
DEFAULT_SIZE_MB = 5
DEFAULT_INTERVAL_S = 300
EXTENSIONS = {"GZIP": ".gz", "ZIP": ".zip", "Snappy": ".snappy", "HADOOP_SNAPPY": ".hsnappy"}
COMPRESSION_FORMATS = ("UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY")
ERROR_OUTPUT_TYPES = ("processing-failed", "splunk-failed", "elasticsearch-failed",
                      "format-conversion-failed", "AmazonOpenSearchService-failed")
_EXPRESSION = re.compile(r"!\{([^{}:]*):([^{}]*)\}")

_lock = threading.RLock()
_buffers: dict[str, "_Buffer"] = {}  # by delivery stream ARN
_faults: dict[str, float] = {}  # stream name ("*" = all) -> fraction of records to fail (control API)
_rng = random.Random(20130101)
_metrics: list[tuple[str, str, str, list[tuple[str, float, str]]]] = []  # emitted outside _lock


@dataclass
class _Buffer:
    account_id: str
    region: str
    stream_name: str
    records: list[tuple[datetime, bytes]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.records)


# --- prefix expressions -------------------------------------------------------------------------
def _invalid(message: str):
    from moto.firehose.exceptions import InvalidArgumentException

    return InvalidArgumentException(message)


_JAVA_FIELDS = {  # Java DateTimeFormatter pattern letters -> strftime (by run length)
    "y": {4: "%Y", 2: "%y"}, "u": {4: "%Y", 2: "%y"}, "M": {2: "%m", 3: "%b", 4: "%B"},
    "d": {2: "%d"}, "H": {2: "%H"}, "h": {2: "%I"}, "m": {2: "%M"}, "s": {2: "%S"},
    "D": {3: "%j"}, "E": {3: "%a", 4: "%A"}, "a": {1: "%p"},
}


def java_format(pattern: str, when: datetime) -> str:
    """Format ``when`` with a Java DateTimeFormatter pattern (the subset prefixes use)."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":  # quoted literal; '' is a single quote
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated quote")
            out.append(pattern[i + 1:end] or "'")
            i = end + 1
            continue
        if char.isalpha():
            run = len(pattern) - i - len(pattern[i:].lstrip(char))
            token = pattern[i:i + run]
            widths = _JAVA_FIELDS.get(char)
            if widths is None:
                raise ValueError(f"unsupported pattern letter {char!r}")
            if run in widths:
                out.append(when.strftime(widths[run]))
            elif run == 1 and char in "MdHhms":  # unpadded numbers
                out.append(str(int(when.strftime(widths[2]))))
            elif char in "yu" and run not in widths:
                out.append(when.strftime("%Y").zfill(run))
            else:
                raise ValueError(f"unsupported pattern {token!r}")
            i += run
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _check_expressions(value: str, field_name: str) -> list[tuple[str, str]]:
    found = _EXPRESSION.findall(value)
    stripped = _EXPRESSION.sub("", value)
    if "!{" in stripped:
        raise _invalid(f"The expression in {field_name} is malformed: every '!{{' needs a "
                       f"'namespace:value' and a closing '}}'.")
    if len(found) > 50:
        raise _invalid(f"{field_name} can contain at most 50 expressions.")
    for namespace, arg in found:
        if namespace == "timestamp":
            try:
                java_format(arg, datetime(2018, 1, 2, 3, 4, 5))
            except ValueError:
                raise _invalid(f"The timestamp expression '!{{timestamp:{arg}}}' in {field_name} is "
                               "not a valid Java DateTimeFormatter pattern.") from None
        elif namespace == "firehose":
            if arg not in ("random-string", "error-output-type"):
                raise _invalid(f"The expression '!{{firehose:{arg}}}' in {field_name} is not valid: "
                               "the firehose namespace supports random-string and error-output-type.")
        elif namespace in ("partitionKeyFromQuery", "partitionKeyFromLambda"):
            raise _invalid(f"{field_name} uses '!{{{namespace}:{arg}}}', which requires dynamic "
                           "partitioning to be enabled (DynamicPartitioningConfiguration).")
        else:
            raise _invalid(f"The expression namespace '{namespace}' in {field_name} is not valid: use "
                           "firehose, timestamp, partitionKeyFromQuery or partitionKeyFromLambda.")
    return found


def validate_s3_config(config: dict[str, Any], path: str = "extendedS3DestinationConfiguration"
                       ) -> None:
    """AWS's rules for an S3 / ExtendedS3 destination: buffering ranges, compression, prefixes."""
    hints = config.get("BufferingHints") or {}
    for name, low, high in (("SizeInMBs", 1, 128), ("IntervalInSeconds", 0, 900)):
        value = hints.get(name)
        if value is None or low <= int(value) <= high:
            continue
        bound = f"greater than or equal to {low}" if int(value) < low else f"less than or equal to {high}"
        raise _validation(f"1 validation error detected: Value '{value}' at "
                          f"'{path}.bufferingHints.{name[0].lower() + name[1:]}' failed to satisfy "
                          f"constraint: Member must have value {bound}")
    compression = config.get("CompressionFormat", "UNCOMPRESSED")
    if compression not in COMPRESSION_FORMATS:
        raise _validation(
            f"1 validation error detected: Value '{compression}' at '{path}.compressionFormat' failed to "
            f"satisfy constraint: Member must satisfy enum value set: [{', '.join(COMPRESSION_FORMATS)}]")
    prefix = config.get("Prefix") or ""
    error_prefix = config.get("ErrorOutputPrefix") or ""
    prefix_expr = _check_expressions(prefix, "Prefix")
    error_expr = _check_expressions(error_prefix, "ErrorOutputPrefix")
    if ("firehose", "error-output-type") in prefix_expr:
        raise _invalid("The '!{firehose:error-output-type}' expression can only be used in "
                       "ErrorOutputPrefix, not in Prefix.")
    if prefix_expr and not error_prefix:
        raise _invalid("ErrorOutputPrefix cannot be null or empty when Prefix contains expressions")
    if error_expr and ("firehose", "error-output-type") not in error_expr:
        raise _invalid("ErrorOutputPrefix must contain '!{firehose:error-output-type}' when it "
                       "contains expressions.")
    if prefix.startswith("/") or error_prefix.startswith("/"):
        raise _invalid("Prefix and ErrorOutputPrefix cannot start with '/'.")


def evaluate_prefix(prefix: str, when: datetime, error_output_type: str | None = None) -> str:
    """The evaluated prefix: expressions replaced; AWS's ``YYYY/MM/dd/HH/`` appended when the
    prefix has no expression (that is also the whole prefix when none is given)."""
    if not _EXPRESSION.search(prefix):
        if error_output_type and prefix == "":
            prefix = f"{error_output_type}/"
        return f"{prefix}{when:%Y/%m/%d/%H}/"

    def replace(match: re.Match) -> str:
        namespace, arg = match.groups()
        if namespace == "timestamp":
            return java_format(arg, when)
        if arg == "random-string":
            return "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(11))
        return error_output_type or "processing-failed"

    return _EXPRESSION.sub(replace, prefix)


# --- delivery -----------------------------------------------------------------------------------
def _destination(stream) -> dict[str, Any] | None:
    for destination in stream.destinations:
        for name in ("ExtendedS3", "S3"):
            if name in destination:
                return destination[name]
    return None


def _compress(data: bytes, compression: str, inner_name: str) -> bytes:
    if compression == "GZIP":
        return gzip.compress(data, mtime=0)
    if compression == "ZIP":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(inner_name, data)
        return out.getvalue()
    return data  # UNCOMPRESSED (Snappy variants: not emulated, see the fidelity chapter)


def _write(buffer: _Buffer, stream, records: list[tuple[datetime, bytes]]) -> bool:
    """Write one S3 object with ``records``; False when the bucket is missing (AWS retries)."""
    from moto.s3.models import s3_backends

    config = _destination(stream)
    if config is None:
        return True  # non-S3 destinations: moto's own behaviour (data dropped)
    bucket = config["BucketARN"].split(":")[-1]
    oldest = records[0][0]
    compression = config.get("CompressionFormat", "UNCOMPRESSED")
    name = (f"{buffer.stream_name}-{stream.version_id}-{oldest:%Y-%m-%d-%H-%M-%S}-"
            f"{uuid.uuid4()}")
    key = evaluate_prefix(config.get("Prefix") or "", oldest) + name + EXTENSIONS.get(compression, "")
    body = _compress(b"".join(data for _, data in records), compression, name)
    backend = s3_backends[buffer.account_id]["aws"]
    try:
        backend.get_bucket(bucket)
    except Exception:
        return False
    backend.put_object(bucket, key, body)
    freshness = (clock.now() - oldest).total_seconds()
    _metrics.append((buffer.account_id, buffer.region, buffer.stream_name, [
        ("DeliveryToS3.Records", len(records), "Count"),
        ("DeliveryToS3.Bytes", sum(len(d) for _, d in records), "Bytes"),
        ("DeliveryToS3.Success", 1, "None"),
        ("DeliveryToS3.DataFreshness", max(freshness, 0.0), "Seconds")]))
    return True


def _emit_metrics() -> None:
    """Publish the AWS/Firehose metrics gathered under the lock (CloudWatch alarms may fire)."""
    with _lock:
        pending = list(_metrics)
        _metrics.clear()
    if not pending:
        return
    from moto.cloudwatch.models import cloudwatch_backends

    stamp = clock.now().replace(tzinfo=None)
    for account, region, stream, values in pending:
        try:
            cloudwatch_backends[account][region].put_metric_data("AWS/Firehose", [
                {"MetricName": name, "Value": float(value), "Unit": unit, "Timestamp": stamp,
                 "Dimensions": [{"Name": "DeliveryStreamName", "Value": stream}]}
                for name, value, unit in values])
        except Exception:  # metrics must never break delivery
            import logging

            logging.getLogger("labkit.firehose").exception("could not publish Firehose metrics")


def _hints(stream) -> tuple[int, int]:
    config = _destination(stream) or {}
    hints = config.get("BufferingHints") or {}
    return (int(hints.get("SizeInMBs", DEFAULT_SIZE_MB)) * MIB,
            int(hints.get("IntervalInSeconds", DEFAULT_INTERVAL_S)))


def _stream_for(buffer: _Buffer):
    from moto.firehose.models import firehose_backends

    return firehose_backends[buffer.account_id][buffer.region].delivery_streams.get(buffer.stream_name)


def _flush(arn: str, now: datetime, force: bool = False) -> None:
    """Deliver what is due in one buffer: full-size chunks at once, the rest once its oldest record
    is IntervalInSeconds old (or always when ``force``)."""
    buffer = _buffers.get(arn)
    if buffer is None or not buffer.records:
        return
    stream = _stream_for(buffer)
    if stream is None or stream.delivery_stream_arn != arn:
        _buffers.pop(arn, None)  # stream deleted: AWS drops what it had not delivered
        return
    size_limit, interval = _hints(stream)
    while buffer.records:
        chunk, total = [], 0
        for arrival, data in buffer.records:
            if chunk and total + len(data) > size_limit:
                break
            chunk.append((arrival, data))
            total += len(data)
        full = total >= size_limit or len(chunk) < len(buffer.records)
        due = (now - buffer.records[0][0]).total_seconds() >= interval
        if not (full or due or force):
            return
        if not _write(buffer, stream, chunk):
            return  # bucket missing: keep the data and retry on the next tick, as AWS retries
        del buffer.records[:len(chunk)]


def _on_tick(now: datetime) -> None:
    with _lock:
        for arn in list(_buffers):
            _flush(arn, now)
    _emit_metrics()


# --- moto patches -------------------------------------------------------------------------------
def _validation(message: str):
    from moto.firehose.exceptions import ValidationException

    return ValidationException(message)


def _put_record_batch(self, delivery_stream_name, records, _op="PutRecordBatch"):
    """AWS's PutRecordBatch: limits checked, records appended to the stream's buffer in order.

    ``_op`` names the API for the AWS/Firehose metrics (``PutRecord.*`` or ``PutRecordBatch.*``)."""
    from moto.firehose.exceptions import ResourceNotFoundException

    stream = self.delivery_streams.get(delivery_stream_name)
    if not stream:
        raise ResourceNotFoundException(
            f"Firehose {delivery_stream_name} under account {self.account_id} not found.")
    records = records or []
    if len(records) > MAX_BATCH_RECORDS:
        raise _validation(
            "1 validation error detected: Value at 'records' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_BATCH_RECORDS}")
    if not records:
        raise _validation("1 validation error detected: Value at 'records' failed to satisfy "
                          "constraint: Member must have length greater than or equal to 1")
    payloads = []
    for index, record in enumerate(records, start=1):
        data = record.get("Data", b"")
        if isinstance(data, str):
            data = data.encode()
        if len(data) > MAX_RECORD_BYTES:
            raise _validation(
                f"1 validation error detected: Value at 'records.{index}.member.data' failed to "
                f"satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}")
        payloads.append(bytes(data))
    if sum(len(p) for p in payloads) > MAX_BATCH_BYTES:
        raise _invalid("Records size exceeds 4 MB limit")
    if _destination(stream) is None:
        return _ORIGINAL["put_record_batch"](self, delivery_stream_name, records)
    now = clock.now()
    fail_rate = _faults.get(delivery_stream_name, _faults.get("*", 0.0))
    responses, failed = [], 0
    with _lock:
        buffer = _buffers.setdefault(stream.delivery_stream_arn,
                                     _Buffer(self.account_id, self.region_name, delivery_stream_name))
        for data in payloads:
            if fail_rate and _rng.random() < fail_rate:
                failed += 1
                responses.append({"ErrorCode": "ServiceUnavailableException",
                                  "ErrorMessage": "Slow down."})
                continue
            buffer.records.append((now, data))
            responses.append({"RecordId": uuid.uuid4().hex + uuid.uuid4().hex})
        accepted = [p for p, r in zip(payloads, responses) if "RecordId" in r]
        _metrics.append((self.account_id, self.region_name, delivery_stream_name, [
            ("IncomingRecords", len(accepted), "Count"),
            ("IncomingBytes", sum(len(p) for p in accepted), "Bytes"),
            ("IncomingPutRequests", 1, "Count"),
            (f"{_op}.Requests", 1, "Count"),
            (f"{_op}.Bytes", sum(len(p) for p in payloads), "Bytes"),
            *([("PutRecordBatch.Records", len(payloads), "Count")] if _op == "PutRecordBatch" else []),
            ("ThrottledRecords", failed, "Count")]))
        _flush(stream.delivery_stream_arn, now)
    _emit_metrics()
    return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}


def _put_record(self, delivery_stream_name, record):
    result = _put_record_batch(self, delivery_stream_name, [record], _op="PutRecord")
    response = result["RequestResponses"][0]
    if "ErrorCode" in response:
        from moto.firehose.exceptions import FirehoseException

        raise FirehoseException("ServiceUnavailableException", response["ErrorMessage"])
    return {"RecordId": response["RecordId"], "Encrypted": False}


def _create_delivery_stream(self, region, delivery_stream_name, delivery_stream_type,
                            kinesis_stream_source_configuration,
                            delivery_stream_encryption_configuration_input,
                            s3_destination_configuration, extended_s3_destination_configuration,
                            *args, **kwargs):
    for config, path in ((s3_destination_configuration, "s3DestinationConfiguration"),
                         (extended_s3_destination_configuration, "extendedS3DestinationConfiguration")):
        if config:
            validate_s3_config(config, path)
            # describe_delivery_stream shows AWS's defaults for what was left out
            config.setdefault("BufferingHints", {})
            config["BufferingHints"].setdefault("SizeInMBs", DEFAULT_SIZE_MB)
            config["BufferingHints"].setdefault("IntervalInSeconds", DEFAULT_INTERVAL_S)
            config.setdefault("CompressionFormat", "UNCOMPRESSED")
    return _ORIGINAL["create_delivery_stream"](
        self, region, delivery_stream_name, delivery_stream_type, kinesis_stream_source_configuration,
        delivery_stream_encryption_configuration_input, s3_destination_configuration,
        extended_s3_destination_configuration, *args, **kwargs)


def _update_destination(self, delivery_stream_name, current_delivery_stream_version_id,
                        destination_id, s3_destination_update, extended_s3_destination_update,
                        *args, **kwargs):
    stream = self.delivery_streams.get(delivery_stream_name)
    if stream is not None:
        merged = dict(_destination(stream) or {})
        merged.update(extended_s3_destination_update or s3_destination_update or {})
        if s3_destination_update or extended_s3_destination_update:
            validate_s3_config(merged, "extendedS3DestinationUpdate" if extended_s3_destination_update
                               else "s3DestinationUpdate")
        with _lock:  # AWS delivers what was buffered under the old configuration first
            _flush(stream.delivery_stream_arn, clock.now(), force=True)
        _emit_metrics()
    return _ORIGINAL["update_destination"](
        self, delivery_stream_name, current_delivery_stream_version_id, destination_id,
        s3_destination_update, extended_s3_destination_update, *args, **kwargs)


def _delete_delivery_stream(self, delivery_stream_name, *args, **kwargs):
    stream = self.delivery_streams.get(delivery_stream_name)
    result = _ORIGINAL["delete_delivery_stream"](self, delivery_stream_name, *args, **kwargs)
    if stream is not None:
        with _lock:
            _buffers.pop(stream.delivery_stream_arn, None)
    return result


_ORIGINAL: dict[str, Any] = {}


def install() -> None:
    """Patch moto's Firehose backend (class level, so the HTTP server sees it) and subscribe to
    the virtual clock."""
    from moto.firehose.models import FirehoseBackend

    from labkit.local.server import control_route, on_reset

    for name, replacement in (("put_record_batch", _put_record_batch), ("put_record", _put_record),
                              ("create_delivery_stream", _create_delivery_stream),
                              ("update_destination", _update_destination),
                              ("delete_delivery_stream", _delete_delivery_stream)):
        _ORIGINAL.setdefault(name, getattr(FirehoseBackend, name))
        setattr(FirehoseBackend, name, replacement)
    clock.on_tick(_on_tick)
    on_reset(_reset)
    control_route("firehose-faults")(_faults_route)


def _reset() -> None:
    with _lock:
        _buffers.clear()
        _faults.clear()
        _metrics.clear()


def _faults_route(payload: dict) -> dict:
    """Throttling AWS applies under load, on demand: ``{"stream": name or "*", "rate": 0..1}``
    makes that share of records fail with ServiceUnavailableException (FailedPutCount > 0), so a
    lab's retry loop is exercised locally. ``rate`` 0 switches it off."""
    rate = float(payload.get("rate", 0))
    if not 0 <= rate <= 1:
        raise ValueError("rate must be between 0 and 1")
    with _lock:
        stream = payload.get("stream", "*")
        if rate:
            _faults[stream] = rate
        else:
            _faults.pop(stream, None)
        if "seed" in payload:
            _rng.seed(payload["seed"])
        return {"faults": dict(_faults)}


def buffered(stream_arn: str) -> int:
    """Bytes waiting in a stream's buffer (tests and the wait helper's local mode)."""
    with _lock:
        buffer = _buffers.get(stream_arn)
        return buffer.size if buffer else 0
