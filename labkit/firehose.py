"""Wait for Firehose to deliver what a lab sent (a helper that only waits; the lab's calls are boto3).

Firehose holds records in a buffer until SizeInMBs or IntervalInSeconds is reached. On AWS that
means really waiting (up to 15 minutes); locally the virtual clock is fast-forwarded past the
stream's buffer interval instead.
"""

from __future__ import annotations

import gzip
import time
import zipfile
import io

from labkit.errors import LabkitError


def static_prefix(prefix: str) -> str:
    """The part of a Prefix before its first ``!{...}`` expression (what can be listed in S3)."""
    return prefix.split("!{", 1)[0]


def _destination(aws, stream_name: str) -> dict:
    description = aws.client("firehose").describe_delivery_stream(
        DeliveryStreamName=stream_name)["DeliveryStreamDescription"]
    for destination in description["Destinations"]:
        for name in ("ExtendedS3DestinationDescription", "S3DestinationDescription"):
            if name in destination:
                return destination[name]
    raise LabkitError(f"delivery stream {stream_name!r} has no S3 destination")


def read_object(body: bytes, key: str) -> bytes:
    """The records inside one delivered object (gunzip / unzip by its extension)."""
    if key.endswith(".gz"):
        return gzip.decompress(body)
    if key.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return b"".join(archive.read(name) for name in archive.namelist())
    return body


def delivered_keys(aws, stream_name: str) -> list[str]:
    """Keys of the objects this stream delivered (under its Prefix's static part, named after it)."""
    config = _destination(aws, stream_name)
    bucket = config["BucketARN"].split(":")[-1]
    prefix = static_prefix(config.get("Prefix") or "")
    keys = []
    for page in aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                          Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])
                 if o["Key"].rsplit("/", 1)[-1].startswith(f"{stream_name}-")]
    return sorted(keys)


def count_lines(aws, stream_name: str) -> int:
    config = _destination(aws, stream_name)
    bucket = config["BucketARN"].split(":")[-1]
    s3 = aws.client("s3")
    return sum(read_object(s3.get_object(Bucket=bucket, Key=k)["Body"].read(), k).count(b"\n")
               for k in delivered_keys(aws, stream_name))


def wait_for_delivery(aws, stream_name: str, expected_records: int | None = None,
                      timeout: float = 1200, poll: float = 15) -> list[str]:
    """Wait until the stream's buffer has been delivered; return the delivered object keys.

    Local mode: fast-forward the virtual clock past IntervalInSeconds (instant). AWS mode: poll S3
    every ``poll`` seconds with a progress bar until ``expected_records`` newline-terminated
    records are there (or, without a count, until objects appear), at most ``timeout`` seconds.
    """
    config = _destination(aws, stream_name)
    interval = int((config.get("BufferingHints") or {}).get("IntervalInSeconds", 300))
    if aws.is_local:
        aws.fast_forward(interval + 1)
        return delivered_keys(aws, stream_name)
    from tqdm.auto import tqdm

    deadline = time.monotonic() + timeout
    total = expected_records or 1
    with tqdm(total=total, desc=f"waiting for {stream_name} (buffer {interval} s)",
              unit="rec" if expected_records else "obj") as bar:
        while True:
            keys = delivered_keys(aws, stream_name)
            done = count_lines(aws, stream_name) if expected_records else min(len(keys), 1)
            bar.n = min(done, total)
            bar.refresh()
            if done >= total:
                return keys
            if time.monotonic() > deadline:
                raise LabkitError(f"{stream_name}: {done} of {total} records delivered after "
                                  f"{timeout:.0f} s; check the stream's CloudWatch metrics "
                                  "(DeliveryToS3.Success) and the error output prefix")
            time.sleep(poll)


def simulate_throttling(aws, stream_name: str, rate: float = 0.05, seed: int = 2013) -> None:
    """Local mode: make ``rate`` of the records sent to ``stream_name`` fail the way AWS throttles
    (``ServiceUnavailableException`` entries, ``FailedPutCount`` > 0), so retry code really runs.

    AWS has no such switch: there, throttling happens when a stream exceeds its quota. In AWS mode
    this does nothing. ``rate=0`` switches it off."""
    if not aws.is_local:
        return
    from labkit.backend import control

    control(aws.endpoint, "firehose-faults", {"stream": stream_name, "rate": rate, "seed": seed})
