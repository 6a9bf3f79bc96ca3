"""Contract tests of the S3 lifecycle engine, written as plain boto3 calls."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

KB = 1024


def _bucket(aws, versioned: bool = False) -> str:
    name = f"lc-{uuid.uuid4().hex[:12]}"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _put_rules(aws, bucket, rules, **kwargs):
    return aws.client("s3").put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}, **kwargs)


def _error(aws, bucket, rules) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        _put_rules(aws, bucket, rules)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def _classes(aws, bucket) -> dict[str, str]:
    listing = aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["StorageClass"] for o in listing}


def _rule(**extra):
    return {"ID": extra.pop("ID", "r"), "Status": "Enabled",
            "Filter": extra.pop("Filter", {"Prefix": "raw/"}), **extra}


# --- validation ---------------------------------------------------------------------------------
def test_standard_ia_at_5_days_rejected_with_aws_error(local_aws):
    bucket = _bucket(local_aws)
    code, message = _error(local_aws, bucket,
                           [_rule(Transitions=[{"Days": 5, "StorageClass": "STANDARD_IA"}])])
    assert code == "InvalidArgument"
    assert message == ("'Days' in Transition action must be greater than or equal to 30 "
                       "for storageClass 'STANDARD_IA'")
    code, _ = _error(local_aws, bucket, [_rule(Transitions=[{"Days": 29, "StorageClass": "ONEZONE_IA"}])])
    assert code == "InvalidArgument"
    # the good state: 30 days for IA, 0 days is allowed for the Glacier classes
    _put_rules(local_aws, bucket, [_rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
                                   _rule(ID="ir", Filter={"Prefix": "x/"},
                                         Transitions=[{"Days": 0, "StorageClass": "GLACIER_IR"}])])


@pytest.mark.parametrize("rule, code, fragment", [
    (_rule(Transitions=[{"Days": 90, "StorageClass": "GLACIER"}], Expiration={"Days": 60}),
     "InvalidArgument", "'Days' in the Expiration action"),
    (_rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER"},
                        {"Days": 60, "StorageClass": "STANDARD_IA"}]),
     "InvalidArgument", "STANDARD -> STANDARD_IA"),
    (_rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"},
                        {"Days": 45, "StorageClass": "GLACIER"}]),
     "InvalidArgument", "must be 30 days more than"),
    (_rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER"}, {"Days": 60, "StorageClass": "GLACIER"}]),
     "InvalidArgument", "'StorageClass' must be different"),
    (_rule(Expiration={"Days": 0}), "InvalidArgument", "must be a positive integer"),
    (_rule(NoncurrentVersionTransitions=[{"NoncurrentDays": 10, "StorageClass": "STANDARD_IA"}]),
     "InvalidArgument",
     "'NoncurrentDays' in NoncurrentVersionTransition action must be greater than or equal to 30"),
    (_rule(Filter={"Tag": {"Key": "k", "Value": "v"}},
           AbortIncompleteMultipartUpload={"DaysAfterInitiation": 7}),
     "InvalidArgument", "AbortIncompleteMultipartUpload cannot be specified with Tags"),
    (_rule(Filter={"Prefix": "raw/", "Tag": {"Key": "k", "Value": "v"}}, Expiration={"Days": 1}),
     "MalformedXML", "not well-formed"),
    (_rule(Filter={"And": {"Prefix": "raw/", "ObjectSizeGreaterThan": 500, "ObjectSizeLessThan": 100}},
           Expiration={"Days": 1}), "InvalidArgument", "ObjectSizeLessThan must be greater"),
    (_rule(Transitions=[{"StorageClass": "GLACIER"}]), "MalformedXML", "not well-formed"),
    (_rule(), "InvalidArgument", "At least one action"),
])
def test_invalid_rules_rejected(local_aws, rule, code, fragment):
    got_code, message = _error(local_aws, _bucket(local_aws), [rule])
    assert got_code == code and fragment in message, message


def test_duplicate_rule_ids_rejected(local_aws):
    code, message = _error(local_aws, _bucket(local_aws), [_rule(Expiration={"Days": 1}),
                                                          _rule(Expiration={"Days": 2})])
    assert code == "InvalidArgument" and "unique" in message


def test_configuration_round_trip_keeps_size_and_tag_filters(local_aws):
    bucket = _bucket(local_aws)
    rules = [
        _rule(ID="raw", Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"},
                                     {"Days": 90, "StorageClass": "GLACIER"}],
              Expiration={"Days": 365}, NoncurrentVersionExpiration={"NoncurrentDays": 30},
              AbortIncompleteMultipartUpload={"DaysAfterInitiation": 7}),
        _rule(ID="big", Filter={"And": {"Prefix": "big/", "ObjectSizeGreaterThan": 1000,
                                        "Tags": [{"Key": "tier", "Value": "cold"}]}},
              Transitions=[{"Days": 0, "StorageClass": "DEEP_ARCHIVE"}]),
        _rule(ID="size", Filter={"ObjectSizeLessThan": 2048}, Expiration={"Days": 10}),
    ]
    response = _put_rules(local_aws, bucket, rules,
                          TransitionDefaultMinimumObjectSize="varies_by_storage_class")
    assert response["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    got = local_aws.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    assert got["Rules"] == rules
    local_aws.client("s3").delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        local_aws.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"


# --- ageing -------------------------------------------------------------------------------------
def test_transitions_and_expiration_on_the_virtual_clock(local_aws):
    aws, bucket = local_aws, _bucket(local_aws)
    s3 = aws.client("s3")
    _put_rules(aws, bucket, [_rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"},
                                                {"Days": 90, "StorageClass": "GLACIER"}],
                                   Expiration={"Days": 365})])
    s3.put_object(Bucket=bucket, Key="raw/big.csv", Body=b"x" * (200 * KB))
    s3.put_object(Bucket=bucket, Key="raw/small.csv", Body=b"x" * (10 * KB))
    s3.put_object(Bucket=bucket, Key="other/big.csv", Body=b"x" * (200 * KB))
    aws.fast_forward(days=29)
    assert _classes(aws, bucket) == {"raw/big.csv": "STANDARD", "raw/small.csv": "STANDARD",
                                     "other/big.csv": "STANDARD"}
    aws.fast_forward(days=2)  # past day 30 and its midnight
    assert s3.head_object(Bucket=bucket, Key="raw/big.csv")["StorageClass"] == "STANDARD_IA"
    # objects under 128 KB do not transition by default (all_storage_classes_128K)
    assert _classes(aws, bucket)["raw/small.csv"] == "STANDARD"
    aws.fast_forward(days=60)
    assert _classes(aws, bucket)["raw/big.csv"] == "GLACIER"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="raw/big.csv")
    assert err.value.response["Error"]["Code"] == "InvalidObjectState"
    aws.fast_forward(days=280)
    assert _classes(aws, bucket) == {"other/big.csv": "STANDARD"}


def test_small_objects_glacier_with_varies_by_storage_class_and_size_filter(local_aws):
    aws, bucket = local_aws, _bucket(local_aws)
    s3 = aws.client("s3")
    _put_rules(aws, bucket, [_rule(Transitions=[{"Days": 1, "StorageClass": "GLACIER"}]),
                             _rule(ID="ia", Filter={"And": {"Prefix": "ia/", "ObjectSizeGreaterThan": 0}},
                                   Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}])],
               TransitionDefaultMinimumObjectSize="varies_by_storage_class")
    s3.put_object(Bucket=bucket, Key="raw/small.csv", Body=b"x" * KB)
    s3.put_object(Bucket=bucket, Key="ia/small.csv", Body=b"x" * KB)
    s3.put_object(Bucket=bucket, Key="ia/empty.csv", Body=b"")
    aws.fast_forward(days=32)
    assert _classes(aws, bucket) == {"raw/small.csv": "GLACIER", "ia/small.csv": "STANDARD_IA",
                                     "ia/empty.csv": "STANDARD"}


def test_tag_filter_and_disabled_rule(local_aws):
    aws, bucket = local_aws, _bucket(local_aws)
    s3 = aws.client("s3")
    _put_rules(aws, bucket, [
        _rule(ID="scratch", Filter={"Tag": {"Key": "lifecycle", "Value": "scratch"}}, Expiration={"Days": 7}),
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}}])
    s3.put_object(Bucket=bucket, Key="tmp/a.csv", Body=b"a", Tagging="lifecycle=scratch")
    s3.put_object(Bucket=bucket, Key="tmp/b.csv", Body=b"b", Tagging="lifecycle=keep")
    s3.put_object(Bucket=bucket, Key="keep/c.csv", Body=b"c")
    aws.fast_forward(days=9)
    assert sorted(_classes(aws, bucket)) == ["keep/c.csv", "tmp/b.csv"]


def test_versioned_expiration_noncurrent_versions_and_delete_markers(local_aws):
    aws, bucket = local_aws, _bucket(local_aws, versioned=True)
    s3 = aws.client("s3")
    _put_rules(aws, bucket, [
        _rule(Expiration={"Days": 10}, NoncurrentVersionExpiration={"NoncurrentDays": 5}),
        _rule(ID="nv", Filter={"Prefix": "hist/"},
              NoncurrentVersionExpiration={"NoncurrentDays": 3, "NewerNoncurrentVersions": 1})])
    s3.put_object(Bucket=bucket, Key="raw/a.csv", Body=b"v1")
    for body in (b"h1", b"h2", b"h3", b"h4"):
        s3.put_object(Bucket=bucket, Key="hist/h.csv", Body=body)
    aws.fast_forward(days=2)
    versions = s3.list_object_versions(Bucket=bucket, Prefix="hist/")["Versions"]
    assert len(versions) == 4  # noncurrent for less than 3 days: all kept
    aws.fast_forward(days=3)
    versions = s3.list_object_versions(Bucket=bucket, Prefix="hist/")["Versions"]
    assert len(versions) == 2  # the current one + the newest noncurrent one (NewerNoncurrentVersions=1)
    aws.fast_forward(days=7)  # raw/a.csv past 10 days: a delete marker, the data becomes noncurrent
    listing = s3.list_object_versions(Bucket=bucket, Prefix="raw/")
    assert len(listing.get("DeleteMarkers", [])) == 1 and len(listing.get("Versions", [])) == 1
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="raw/")
    aws.fast_forward(days=6)  # noncurrent for 5+ days: permanently deleted
    assert "Versions" not in s3.list_object_versions(Bucket=bucket, Prefix="raw/")


def test_expired_object_delete_marker_removed(local_aws):
    aws, bucket = local_aws, _bucket(local_aws, versioned=True)
    s3 = aws.client("s3")
    _put_rules(aws, bucket, [_rule(Expiration={"ExpiredObjectDeleteMarker": True},
                                   NoncurrentVersionExpiration={"NoncurrentDays": 1})])
    s3.put_object(Bucket=bucket, Key="raw/a.csv", Body=b"v1")
    s3.delete_object(Bucket=bucket, Key="raw/a.csv")
    aws.fast_forward(days=3)
    listing = s3.list_object_versions(Bucket=bucket, Prefix="raw/")
    assert "Versions" not in listing and "DeleteMarkers" not in listing


def test_abort_incomplete_multipart_upload(local_aws):
    aws, bucket = local_aws, _bucket(local_aws)
    s3 = aws.client("s3")
    _put_rules(aws, bucket, [_rule(Filter={"Prefix": "up/"},
                                   AbortIncompleteMultipartUpload={"DaysAfterInitiation": 3})])
    s3.create_multipart_upload(Bucket=bucket, Key="up/big.bin")
    s3.create_multipart_upload(Bucket=bucket, Key="elsewhere/big.bin")
    aws.fast_forward(days=2)
    assert len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 2
    aws.fast_forward(days=2)
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["elsewhere/big.bin"]


def test_dates_must_be_midnight_and_not_mixed_with_days(local_aws):
    from datetime import datetime, timezone

    bucket = _bucket(local_aws)
    noon = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)
    midnight = datetime(2030, 1, 1, tzinfo=timezone.utc)
    code, message = _error(local_aws, bucket, [_rule(Expiration={"Date": noon})])
    assert code == "InvalidArgument" and "midnight" in message
    code, message = _error(local_aws, bucket, [_rule(Transitions=[
        {"Date": midnight, "StorageClass": "GLACIER"}, {"Days": 400, "StorageClass": "DEEP_ARCHIVE"}])])
    assert code == "InvalidArgument" and "mixed 'Date' and 'Days'" in message
    _put_rules(local_aws, bucket, [_rule(Expiration={"Date": midnight},
                                         Transitions=[{"Date": midnight, "StorageClass": "GLACIER"}])])
    rule = local_aws.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert rule["Expiration"]["Date"] == midnight and rule["Transitions"][0]["Date"] == midnight


def test_date_based_expiration_applies_on_that_date(local_aws):
    from datetime import timedelta

    aws, bucket = local_aws, _bucket(local_aws)
    s3 = aws.client("s3")
    day = (aws.now() + timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    _put_rules(aws, bucket, [_rule(Expiration={"Date": day})])
    s3.put_object(Bucket=bucket, Key="raw/a.csv", Body=b"a")
    aws.fast_forward(days=2)
    assert "raw/a.csv" in _classes(aws, bucket)
    aws.fast_forward(days=2)
    assert _classes(aws, bucket) == {}
