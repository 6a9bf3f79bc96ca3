"""Helpers every lab's checks share: read state through boto3 on the labkit handle and fail with a
message a learner can act on ("<what is wrong> — <what to do>")."""

from __future__ import annotations

from botocore.exceptions import ClientError


def fail(what: str, todo: str) -> None:
    """Raise the grader's standard learner-facing failure."""
    raise AssertionError(f"{what} — {todo}")


def require(condition: bool, what: str, todo: str) -> None:
    """``fail(what, todo)`` unless ``condition`` holds."""
    if not condition:
        fail(what, todo)


def s3_body(aws, key: str, bucket: str | None = None, *, todo: str = "") -> bytes:
    """The bytes of ``s3://bucket/key`` (course bucket by default), or a learner-facing failure
    naming what is missing (bucket or key) instead of a botocore traceback."""
    bucket = bucket or aws.bucket
    try:
        return aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchBucket"}:
            fail(f"bucket '{bucket}' does not exist", todo or "create it with s3.create_bucket")
        if code in {"NoSuchKey", "404"}:
            fail(f"s3://{bucket}/{key} does not exist", todo or "upload it with s3.put_object")
        fail(f"reading s3://{bucket}/{key} failed with {code}", todo or "check the bucket and key names")
    raise AssertionError("unreachable")  # pragma: no cover
