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


def number(value) -> float | None:
    """A learner's or the SDK's value as a float (strings too, even JSON-quoted as SageMaker stores
    hyper-parameters), or None: a wrong type is then a learner-facing failure, not a crash."""
    try:
        return float(str(value).strip('"'))
    except (TypeError, ValueError):
        return None


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


def old_versions(aws, prefix: str) -> int:
    """Noncurrent versions and delete markers under ``prefix`` (a versioned bucket keeps them)."""
    count = 0
    for page in aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=aws.bucket, Prefix=prefix):
        count += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    return count


def require_prefix_gone(aws, prefix: str, todo: str, what: str = "object(s)") -> None:
    """Nothing is left under ``prefix`` of the course bucket: no object (else "N ``what`` remain"
    and ``todo``) and, the bucket being versioned since lab 02, no old version or delete marker."""
    try:
        left = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=prefix).get("KeyCount", 0)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return  # the learner deleted the whole bucket: nothing remains (a crash would cost the points)
        raise
    require(left == 0, f"{left} {what} remain under s3://{aws.bucket}/{prefix}", todo)
    old = old_versions(aws, prefix)
    require(old == 0, f"{old} old version(s) / delete marker(s) remain under s3://{aws.bucket}/{prefix} "
            "(the course bucket is versioned: a plain delete keeps the data, billed)",
            "delete every version: list_object_versions, then delete_objects with each VersionId")


def versioned_course_bucket(aws) -> None:
    """Grading hook for the labs after 02 (their ``prepare(aws)``): the course bucket as lab 02 leaves
    it, existing and versioned, so a clean-up check means the same graded alone as in the learner's
    sequence. Idempotent with the labs' setup cells."""
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=aws.bucket)
    except ClientError:
        extra = {} if aws.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": aws.region}}
        s3.create_bucket(Bucket=aws.bucket, **extra)
    s3.put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Enabled"})
