"""Lab 02 (S3 lifecycle): the solution runs twice, the blank scores zero, and each check passes on
the correct state and fails, naming the mistake, on plausible wrong ones.

The checks read the course bucket ``aws.bucket``; the check tests build its state themselves and
empty it afterwards (no other test in the suite writes raw/ or scratch/ of the course bucket)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import REPO
from grader.checks import lab02
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_runs_clean, fails, run_blank,
                           run_in_fresh_kernels, total_points)

NOTEBOOK = REPO / "solutions" / "02-s3-lifecycle" / "02-s3-lifecycle.ipynb"

RULES = [
    {"ID": "raw-tiering", "Status": "Enabled", "Filter": {"Prefix": "raw/"},
     "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
     "Expiration": {"Days": 365}, "NoncurrentVersionExpiration": {"NoncurrentDays": 30}},
    {"ID": "housekeeping", "Status": "Enabled", "Filter": {"Prefix": ""},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
     "Expiration": {"ExpiredObjectDeleteMarker": True}},
    {"ID": "scratch-expiry", "Status": "Enabled", "Filter": {"Tag": {"Key": "retention", "Value": "scratch"}},
     "Expiration": {"Days": 7}},
]


def _empty_bucket(aws):
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=aws.bucket)
    except ClientError:
        return
    for upload in s3.list_multipart_uploads(Bucket=aws.bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=aws.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    doomed = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=aws.bucket):
        doomed += [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    for begin in range(0, len(doomed), 1000):
        s3.delete_objects(Bucket=aws.bucket, Delete={"Objects": doomed[begin:begin + 1000], "Quiet": True})
    s3.delete_bucket_lifecycle(Bucket=aws.bucket)
    s3.delete_bucket(Bucket=aws.bucket)


@pytest.fixture()
def aws(local_aws):
    _empty_bucket(local_aws)
    yield local_aws
    _empty_bucket(local_aws)


@pytest.fixture(scope="module")
def layout():
    from labkit.datasets import raw_layout

    return list(raw_layout())


def make_bucket(aws, versioning=True, encryption=True, public_block=True):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=aws.bucket)
    if public_block:
        s3.put_public_access_block(Bucket=aws.bucket, PublicAccessBlockConfiguration={
            name: True for name in lab02.PUBLIC_ACCESS_BLOCK})
    else:  # AWS blocks public access on new buckets (since April 2023): the wrong state is a removed block
        s3.delete_public_access_block(Bucket=aws.bucket)
    if versioning:
        s3.put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Enabled"})
    if encryption:
        s3.put_bucket_encryption(Bucket=aws.bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})


def upload(aws, items, transform=lambda key, data: (key, data)):
    s3 = aws.client("s3")
    for key, data in items:
        key, data = transform(key, data)
        s3.put_object(Bucket=aws.bucket, Key=key, Body=data)


def put_rules(aws, rules):
    aws.client("s3").put_bucket_lifecycle_configuration(Bucket=aws.bucket,
                                                        LifecycleConfiguration={"Rules": rules})


def _replace(rule_id, **changes):
    rules = [dict(r) for r in RULES]
    for r in rules:
        if r["ID"] == rule_id:
            r.update(changes)
            for key, value in list(changes.items()):
                if value is None:
                    r.pop(key)
    return rules


# --- checks -------------------------------------------------------------------------------------
def test_check_bucket(aws):
    fails(lab02.check_bucket, aws, match="does not exist")
    make_bucket(aws, versioning=False)
    fails(lab02.check_bucket, aws, match="versioning .* is off")
    aws.client("s3").put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Suspended"})
    fails(lab02.check_bucket, aws, match="versioning .* is Suspended")
    _empty_bucket(aws)
    make_bucket(aws, encryption=False)
    fails(lab02.check_bucket, aws, match="no default encryption")
    aws.client("s3").put_bucket_encryption(Bucket=aws.bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    fails(lab02.check_bucket, aws, match="default encryption .* is \[.aws:kms.\]")
    _empty_bucket(aws)
    make_bucket(aws, public_block=False)
    fails(lab02.check_bucket, aws, match="public access .* is not blocked")
    aws.client("s3").put_public_access_block(Bucket=aws.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True})
    fails(lab02.check_bucket, aws, match="not blocked .RestrictPublicBuckets not set")
    _empty_bucket(aws)
    make_bucket(aws)
    lab02.check_bucket(aws)


def test_check_raw_upload(aws, layout):
    make_bucket(aws)
    fails(lab02.check_raw_upload, aws, match="no objects under raw/")
    upload(aws, layout[:5], lambda key, data: (key.replace("raw/", "data/"), data))
    fails(lab02.check_raw_upload, aws, match="no objects under raw/")
    upload(aws, layout[10:])
    fails(lab02.check_raw_upload, aws, match="10 of 369 raw files are missing")
    import gzip

    upload(aws, layout[:10], lambda key, data: (key, gzip.compress(data)))
    fails(lab02.check_raw_upload, aws, match="flights_2013-01-01.csv has .* bytes, the data set's file has")
    upload(aws, layout[:10])
    lab02.check_raw_upload(aws)


@pytest.mark.parametrize("rules, pattern", [
    (None, "no lifecycle configuration"),
    (_replace("raw-tiering", Status="Disabled"), "no enabled rule .* raw/flights/.*Disabled"),
    (_replace("raw-tiering", Transitions=[{"Days": 60, "StorageClass": "STANDARD_IA"},
                                          {"Days": 90, "StorageClass": "GLACIER"}]),
     "STANDARD_IA after 60 days"),
    (_replace("raw-tiering", Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
     "no rule moves .* to GLACIER"),
    (_replace("raw-tiering", Expiration=None), "no rule expires raw/flights"),
    (_replace("raw-tiering", Filter={"Prefix": "raw/flights/"}), "no enabled rule .* raw/weather/weather.csv"),
    (_replace("raw-tiering", NoncurrentVersionExpiration={"NoncurrentDays": 90}), "expire after 90 days"),
    (_replace("housekeeping", Expiration=None), "expired object delete markers"),
    (_replace("raw-tiering", NoncurrentVersionExpiration=None), "noncurrent versions"),
    (_replace("housekeeping", AbortIncompleteMultipartUpload=None), "incomplete multipart uploads"),
    (_replace("scratch-expiry", Filter={"Prefix": "scratch/"}), "tagged retention=scratch"),
    (_replace("scratch-expiry", Expiration={"Days": 30}), "after 30 days"),
])
def test_check_lifecycle_wrong(aws, rules, pattern):
    make_bucket(aws)
    if rules is not None:
        put_rules(aws, rules)
    fails(lab02.check_lifecycle, aws, match=pattern)


def test_check_lifecycle_and_rejected_rule(aws):
    make_bucket(aws)
    put_rules(aws, RULES)
    lab02.check_lifecycle(aws)
    bad = {"ID": "too-early", "Status": "Enabled", "Filter": {"Prefix": "raw/"},
           "Transitions": [{"Days": 15, "StorageClass": "STANDARD_IA"}]}
    with pytest.raises(ClientError) as err:
        put_rules(aws, RULES + [bad])
    code = err.value.response["Error"]["Code"]
    fails(lab02.check_rejected_rule, aws, None, match="not rejected")
    fails(lab02.check_rejected_rule, aws, "MalformedXML", match="rejected_code is 'MalformedXML'")
    lab02.check_rejected_rule(aws, code)
    put_rules(aws, [RULES[1]])  # a wrong Task 3 configuration costs Task 3 only
    lab02.check_rejected_rule(aws, code)


def _scratch_and_upload(aws):
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.bucket, Key="scratch/a.csv", Body=b"x", Tagging="retention=scratch")
    s3.create_multipart_upload(Bucket=aws.bucket, Key="scratch/big.bin")


def _by_class(aws):
    out = {}
    for page in aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix="raw/"):
        for o in page.get("Contents", []):
            out[o["StorageClass"]] = out.get(o["StorageClass"], 0) + o["Size"]
    return out


def test_check_aged_and_cleanup(aws, layout):
    make_bucket(aws)
    upload(aws, layout)
    put_rules(aws, RULES)
    _scratch_and_upload(aws)
    fails(lab02.check_aged, aws, _by_class(aws), match="only 0.0 day.s. passed")
    aws.fast_forward(days=10)  # scratch expired, upload aborted, nothing transitioned yet
    fails(lab02.check_aged, aws, _by_class(aws), match="only 10.0 day.s. passed")
    aws.fast_forward(days=35)
    wrong = dict(_by_class(aws))
    wrong["STANDARD"] += 1
    fails(lab02.check_aged, aws, wrong, match="by_class says")
    fails(lab02.check_aged, aws, ["STANDARD"], match="not a mapping")
    lab02.check_aged(aws, _by_class(aws))
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.bucket, Key="scratch/b.csv", Body=b"x", Tagging="retention=scratch")
    fails(lab02.check_aged, aws, _by_class(aws), match="1 tagged scratch object")
    put_rules(aws, [RULES[1]])  # Task 3 wrong: its effects are not judged again here
    lab02.check_aged(aws, _by_class(aws))
    put_rules(aws, RULES)
    # clean-up: scratch/ versions and markers left, a new incomplete upload, noncurrent raw/ versions
    fails(lab02.check_cleanup, aws, match="scratch/ still holds 2 version")
    s3 = aws.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=aws.bucket, Prefix="scratch/"):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            s3.delete_objects(Bucket=aws.bucket, Delete={"Objects": doomed})
    lab02.check_cleanup(aws)
    key, data = layout[0]
    s3.put_object(Bucket=aws.bucket, Key=key, Body=data)  # an identical re-upload: a new version
    fails(lab02.check_cleanup, aws, match="raw/ holds 1 noncurrent version")
    old = [v for v in s3.list_object_versions(Bucket=aws.bucket, Prefix=key)["Versions"] if not v["IsLatest"]]
    s3.delete_object(Bucket=aws.bucket, Key=key, VersionId=old[0]["VersionId"])
    s3.create_multipart_upload(Bucket=aws.bucket, Key="scratch/again.bin")
    fails(lab02.check_cleanup, aws, match="1 incomplete multipart upload")


# --- the notebook -------------------------------------------------------------------------------
@pytest.mark.slow
def test_solution_runs_twice_with_full_marks(tmp_path):
    for nb in run_in_fresh_kernels(NOTEBOOK, tmp_path):  # raises on any error, hidden checks included
        assert total_points(nb) == 10
        assert_runs_clean(nb)


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path), cells=6)


# --- the learner helpers ------------------------------------------------------------------------
def test_monthly_cost_small_object_rules():
    import labkit.s3

    gb = 1024 ** 3
    assert labkit.s3.monthly_cost(gb, "STANDARD") == pytest.approx(0.023)
    # STANDARD_IA bills at least 128 KB: a 10 KB object costs as much as a 128 KB one
    ia = "STANDARD_IA"
    assert labkit.s3.monthly_cost(10 * 1024, ia) == labkit.s3.monthly_cost(128 * 1024, ia)
    assert labkit.s3.monthly_cost(10 * 1024, "STANDARD_IA") > labkit.s3.monthly_cost(10 * 1024, "STANDARD")
    # GLACIER adds 40 KB of index per object (32 KB at its rate, 8 KB at STANDARD's)
    overhead = (32 * 1024 * 0.0036 + 8 * 1024 * 0.023) / gb
    assert labkit.s3.monthly_cost(0, "GLACIER") == pytest.approx(overhead)


def test_age_objects_moves_the_clock_day_by_day(local_aws):
    import labkit.s3
    from labkit.errors import LabkitError

    before = local_aws.now()
    assert labkit.s3.age_objects(local_aws, 2) is True
    assert (local_aws.now() - before).days == 2
    with pytest.raises(LabkitError):
        labkit.s3.age_objects(local_aws, -1)
