"""Checks of lab 02 (S3 lifecycle): the course bucket (versioning, default encryption), the raw
layout uploaded unchanged, the lifecycle configuration, the rejected invalid rule, the aged
storage report, clean-up."""

from __future__ import annotations

import functools

from botocore.exceptions import ClientError

from grader.checks.common import fail, require

TAG = {"Key": "retention", "Value": "scratch"}
SCRATCH = "scratch/"


SMALL_TABLES = ("weather", "airlines", "airports", "planes")
PUBLIC_ACCESS_BLOCK = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
# One key of every table under raw/: the raw-tiering rule must cover each of them.
RAW_SAMPLES = ("raw/flights/year=2013/month=01/flights_2013-01-01.csv",
               *(f"raw/{name}/{name}.csv" for name in SMALL_TABLES))
SAMPLE_DAYS = ((1, 1), (3, 10), (7, 4), (12, 31))


@functools.lru_cache(maxsize=1)
def expected_raw() -> tuple[frozenset, dict[str, int]]:
    """(every key of the raw layout, exact sizes of a sample of it).

    ``datasets.raw_layout()`` renders 369 CSVs (seconds of work); the keys are cheap to derive and
    a wrong encoding (index column, compression, other separators) changes the size of every
    file, so sizes are compared on a sample: four days across the year and the four tables."""
    from labkit import datasets

    flights = datasets.flights()
    days = flights[["year", "month", "day"]].drop_duplicates()
    keys = {f"raw/flights/year={y}/month={m:02d}/flights_{y}-{m:02d}-{d:02d}.csv"
            for y, m, d in days.itertuples(index=False)}
    keys |= {f"raw/{name}/{name}.csv" for name in SMALL_TABLES}
    sizes = {}
    for month, day in SAMPLE_DAYS:
        part = flights[(flights["month"] == month) & (flights["day"] == day)]
        sizes[f"raw/flights/year=2013/month={month:02d}/flights_2013-{month:02d}-{day:02d}.csv"] = len(
            datasets.to_csv_bytes(part.drop(columns=["year", "month"])))
    for name in SMALL_TABLES:
        sizes[f"raw/{name}/{name}.csv"] = len(datasets.to_csv_bytes(datasets.load(name)))
    return frozenset(keys), sizes


def _listing(aws, prefix: str) -> dict[str, dict]:
    s3 = aws.client("s3")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj
    return out


def _versions(aws, prefix: str) -> tuple[list[dict], list[dict]]:
    s3 = aws.client("s3")
    versions, markers = [], []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=aws.bucket, Prefix=prefix):
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
    return versions, markers


def _require_bucket(aws) -> None:
    try:
        aws.client("s3").head_bucket(Bucket=aws.bucket)
    except ClientError:
        fail(f"bucket '{aws.bucket}' does not exist", "create it with s3.create_bucket(Bucket=aws.bucket)")


def check_bucket(aws) -> None:
    """Task 1: the course bucket exists, versioning is Enabled, default encryption is set."""
    s3 = aws.client("s3")
    _require_bucket(aws)
    status = s3.get_bucket_versioning(Bucket=aws.bucket).get("Status")
    require(status == "Enabled", f"versioning on '{aws.bucket}' is {status or 'off'}",
            "enable it with put_bucket_versioning(VersioningConfiguration={'Status': 'Enabled'})")
    try:
        rules = s3.get_bucket_encryption(Bucket=aws.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError:
        rules = []
    algorithms = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
    require(bool(algorithms), f"'{aws.bucket}' has no default encryption",
            "set it with put_bucket_encryption (SSEAlgorithm 'AES256')")
    require("AES256" in algorithms, f"the default encryption of '{aws.bucket}' is {algorithms}",
            "the task asks for SSE-S3: SSEAlgorithm 'AES256'")
    try:
        block = s3.get_public_access_block(Bucket=aws.bucket)["PublicAccessBlockConfiguration"]
    except ClientError:
        block = {}
    open_settings = [name for name in PUBLIC_ACCESS_BLOCK if not block.get(name)]
    require(not open_settings, f"public access to '{aws.bucket}' is not blocked ({', '.join(open_settings)} "
            "not set)", "put_public_access_block with all four settings True")


def check_raw_upload(aws) -> None:
    """Task 2: every file of the raw layout is under raw/ with its exact size."""
    keys, sizes = expected_raw()
    _require_bucket(aws)
    actual = _listing(aws, "raw/")
    require(bool(actual), f"there are no objects under raw/ in '{aws.bucket}'",
            "upload every (key, bytes) of labkit.datasets.raw_layout() with the key unchanged")
    missing = sorted(keys - set(actual))
    example = missing[0] if missing else ""
    require(not missing, f"{len(missing)} of {len(keys)} raw files are missing, e.g. {example}",
            "upload every (key, bytes) pair of raw_layout()")
    wrong = [k for k, size in sizes.items() if actual[k]["Size"] != size]
    require(not wrong, f"{wrong[0] if wrong else ''} has {actual[wrong[0]]['Size'] if wrong else 0} bytes, "
            f"the data set's file has {sizes[wrong[0]] if wrong else 0}",
            "upload the bytes from raw_layout() unchanged (no re-encoding, no compression)")


def _covers(rule: dict, key: str) -> bool:
    """Whether ``rule``'s filter (prefix part) applies to ``key`` and it has no tag / size filter."""
    if rule.get("Status") != "Enabled":
        return False
    f = rule.get("Filter")
    if f is None:
        return key.startswith(rule.get("Prefix", ""))
    if "Tag" in f or "ObjectSizeGreaterThan" in f or "ObjectSizeLessThan" in f or "And" in f:
        return False
    return key.startswith(f.get("Prefix", ""))


def _rules(aws) -> list[dict]:
    _require_bucket(aws)
    try:
        return aws.client("s3").get_bucket_lifecycle_configuration(Bucket=aws.bucket)["Rules"]
    except ClientError:
        fail(f"'{aws.bucket}' has no lifecycle configuration",
             "set one with put_bucket_lifecycle_configuration")
    return []


def check_lifecycle(aws) -> None:
    """Task 3: every table under raw/ → STANDARD_IA 30 d → GLACIER 90 d → expire 365 d, noncurrent
    versions expire after 30 d; the whole bucket aborts incomplete multipart uploads after 7 d and
    removes expired delete markers; objects tagged retention=scratch expire after 7 days."""
    rules = _rules(aws)
    disabled = [r["ID"] for r in rules if r.get("Status") != "Enabled"]
    for key in RAW_SAMPLES:
        _require_raw_tiering(rules, key, disabled)
    whole = [r for r in rules if _covers(r, "any/key")]
    aimu = [r["AbortIncompleteMultipartUpload"].get("DaysAfterInitiation") for r in whole
            if r.get("AbortIncompleteMultipartUpload")]
    require(bool(aimu), "no enabled whole-bucket rule aborts incomplete multipart uploads",
            "add a rule with Filter={'Prefix': ''} and "
            "AbortIncompleteMultipartUpload={'DaysAfterInitiation': 7}")
    require(7 in aimu, f"incomplete multipart uploads are aborted after {aimu[0]} days", "use 7 days")
    require(any(r.get("Expiration", {}).get("ExpiredObjectDeleteMarker") for r in whole),
            "no enabled whole-bucket rule removes expired object delete markers",
            "add Expiration={'ExpiredObjectDeleteMarker': True} to the housekeeping rule")
    tagged = []
    for r in rules:
        f = r.get("Filter") or {}
        tags = [f["Tag"]] if "Tag" in f else f.get("And", {}).get("Tags", [])
        if r.get("Status") == "Enabled" and TAG in tags and "Days" in r.get("Expiration", {}):
            tagged.append(r)
    require(bool(tagged), "no enabled rule expires objects tagged retention=scratch",
            "add a rule with Filter={'Tag': {'Key': 'retention', 'Value': 'scratch'}} "
            "and Expiration={'Days': 7}")
    require(tagged[0]["Expiration"]["Days"] == 7,
            f"objects tagged retention=scratch expire after {tagged[0]['Expiration']['Days']} days",
            "use 7 days")


def _require_raw_tiering(rules: list[dict], key: str, disabled: list[str]) -> None:
    """The enabled rules covering ``key`` tier it 30 → 90 → 365 days and expire its old versions."""
    raw_rules = [r for r in rules if _covers(r, key)
                 and (r.get("Transitions") or "Days" in r.get("Expiration", {}))]
    require(bool(raw_rules), f"no enabled rule transitions or expires {key}"
            + (f" (rule(s) {disabled} are Disabled)" if disabled else ""),
            "add a rule with Filter={'Prefix': 'raw/'} and Status='Enabled': it covers every table")
    transitions = {t["StorageClass"]: t.get("Days") for r in raw_rules for t in r.get("Transitions", [])}
    require("STANDARD_IA" in transitions, f"no rule moves {key} to STANDARD_IA",
            "add {'Days': 30, 'StorageClass': 'STANDARD_IA'} to the raw/ rule")
    require(transitions["STANDARD_IA"] == 30,
            f"the raw/ rule moves objects to STANDARD_IA after {transitions['STANDARD_IA']} days",
            "the lab asks for 30 days (the minimum S3 accepts)")
    require("GLACIER" in transitions, f"no rule moves {key} to GLACIER",
            "add {'Days': 90, 'StorageClass': 'GLACIER'} (Glacier Flexible Retrieval)")
    require(transitions["GLACIER"] == 90,
            f"the raw/ rule moves objects to GLACIER after {transitions['GLACIER']} days", "use 90 days")
    expirations = [r["Expiration"].get("Days") for r in raw_rules if "Days" in r.get("Expiration", {})]
    require(bool(expirations), f"no rule expires {key}", "add Expiration={'Days': 365} to the raw/ rule")
    require(365 in expirations, f"the raw/ rule expires objects after {expirations[0]} days", "use 365 days")
    nve = [r["NoncurrentVersionExpiration"].get("NoncurrentDays") for r in rules
           if _covers(r, key) and r.get("NoncurrentVersionExpiration")]
    require(bool(nve), f"no enabled rule expires noncurrent versions of {key}",
            "add NoncurrentVersionExpiration={'NoncurrentDays': 30} (versioning keeps every overwrite)")
    require(30 in nve, f"noncurrent versions of {key} expire after {nve[0]} days", "use NoncurrentDays=30")


def lifecycle_in_place(aws) -> bool:
    """Whether Task 3's configuration is right (later tasks judge its effects only then)."""
    try:
        check_lifecycle(aws)
    except AssertionError:
        return False
    return True


def check_rejected_rule(aws, rejected_code) -> None:
    """Task 4: the STANDARD_IA-at-15-days rule was rejected with InvalidArgument (S3 rejects the
    whole call, so Task 3's configuration stays; Task 3's check judges it, not this one)."""
    require(rejected_code is not None, "the invalid rule was not rejected (rejected_code is None)",
            "send a rule with a STANDARD_IA transition at 15 days and catch the ClientError")
    require(rejected_code == "InvalidArgument", f"rejected_code is {rejected_code!r}",
            "keep error.response['Error']['Code'] of the rejected request")


def check_aged(aws, by_class) -> None:
    """Task 5: 45 days passed since the upload, ``by_class`` (storage class -> bytes under raw/)
    matches the bucket; with Task 3's rules in place (judged there), their effects show: something
    reached STANDARD_IA, the tagged scratch objects expired, the upload was aborted."""
    _require_bucket(aws)
    listing = _listing(aws, "raw/")
    require(bool(listing), "there are no objects under raw/", "Task 2 uploads them: run it first")
    newest = max(obj["LastModified"] for obj in listing.values())
    days = (aws.now() - newest).total_seconds() / 86400
    require(days >= 45 - 1e-6, f"only {days:.1f} day(s) passed since the raw files were uploaded",
            "let 45 days pass: aged = labkit.s3.age_objects(aws, 45)")
    actual: dict[str, int] = {}
    for obj in listing.values():
        cls = obj.get("StorageClass", "STANDARD")
        actual[cls] = actual.get(cls, 0) + obj["Size"]
    try:
        given = {str(k): int(v) for k, v in dict(by_class).items()}
    except (TypeError, ValueError):
        fail("by_class is not a mapping of storage class to bytes", "build a dict {StorageClass: total Size}")
    require(given == actual, f"by_class says {given} but the bucket holds {actual}",
            "sum Size per StorageClass over every page of list_objects_v2(Prefix='raw/')")
    if not lifecycle_in_place(aws):
        return  # the rules of Task 3 are wrong: their effects cannot be judged here
    require(actual.get("STANDARD_IA", 0) > 0, "no object under raw/ has reached STANDARD_IA",
            "age the objects past 30 days (labkit.s3.age_objects) with the lifecycle rules in place")
    left = _listing(aws, SCRATCH)
    require(not left, f"{len(left)} tagged scratch object(s) are still current",
            "they expire 7 days after creation: age the objects, and tag them retention=scratch")
    uploads = aws.client("s3").list_multipart_uploads(Bucket=aws.bucket).get("Uploads", [])
    require(not uploads, f"{len(uploads)} incomplete multipart upload(s) survived the ageing",
            "the whole-bucket rule must abort them after 7 days")


def check_cleanup(aws) -> None:
    """Clean-up: no incomplete uploads, nothing left under scratch/ (all versions and delete
    markers), no noncurrent versions or delete markers under raw/ (they are billed too)."""
    uploads = aws.client("s3").list_multipart_uploads(Bucket=aws.bucket).get("Uploads", [])
    require(not uploads, f"{len(uploads)} incomplete multipart upload(s) remain",
            "abort them with s3.abort_multipart_upload (their parts are billed)")
    versions, markers = _versions(aws, SCRATCH)
    require(not versions and not markers,
            f"scratch/ still holds {len(versions)} version(s) and {len(markers)} delete marker(s)",
            "delete every version (delete_object with VersionId) — in a versioned bucket a plain "
            "delete only adds a marker")
    versions, markers = _versions(aws, "raw/")
    old = [v for v in versions if not v.get("IsLatest")]
    require(not old and not markers,
            f"raw/ holds {len(old)} noncurrent version(s) and {len(markers)} delete marker(s)",
            "delete the noncurrent versions (VersionId) so only the current raw files remain")
