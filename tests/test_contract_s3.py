"""Contract tests for S3 bucket defaults and policies (API reference: CreateBucket, PutBucketAcl,
PutObject, GetBucketOwnershipControls, GetPublicAccessBlock, PutBucketPolicy; user guide: "Default
settings for new S3 buckets" since April 2023), plain boto3 calls only."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def s3(local_aws):
    return local_aws.client("s3")


@pytest.fixture
def bucket(s3):
    name = f"contract-s3-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


def _code(err) -> tuple[str, int]:
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_new_bucket_has_acls_disabled_and_public_access_blocked(s3, bucket):
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True}


def test_setting_an_acl_on_an_owner_enforced_bucket_is_refused(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert _code(err) == ("AccessControlListNotSupported", 400)
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert _code(err) == ("AccessControlListNotSupported", 400)
    # reading ACLs and the owner-only ACLs still work, as on AWS
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"]


def test_acls_work_once_the_owner_enables_them(s3, bucket):
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.put_bucket_acl(Bucket=bucket, ACL="authenticated-read")


def test_create_bucket_with_a_public_acl_is_refused(s3):
    name = f"contract-s3-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name, ACL="public-read")
    assert _code(err) == ("InvalidBucketAclWithObjectOwnership", 400)
    s3.create_bucket(Bucket=name, ACL="public-read", ObjectOwnership="ObjectWriter")


def _policy(bucket: str, principal, resource: str | None = None, action: str = "s3:GetObject") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": principal, "Action": action,
        "Resource": resource or f"arn:aws:s3:::{bucket}/*"}]})


@pytest.mark.parametrize("document, message", [
    ("not json", "Policies must be valid JSON and the first byte must be '{'"),
    ('{"Version": "2012-10-17"}', "Missing required field Statement"),
    ("PRINCIPAL:arn:aws:iam::123456789012:role/no-such-role", "Invalid principal in policy"),
    ("PRINCIPAL:arn:aws:iam::123456789012:user/no-such-user", "Invalid principal in policy"),
    ("ACTION:ec2:RunInstances", "Policy has invalid action"),
    ("RESOURCE:arn:aws:s3:::some-other-bucket/*", "Policy has resource which is outside bucket"),
])
def test_invalid_bucket_policies_are_malformed_policy(s3, bucket, document, message):
    kind, _, value = document.partition(":")
    if kind == "PRINCIPAL":
        document = _policy(bucket, {"AWS": value})
    elif kind == "ACTION":
        document = _policy(bucket, {"AWS": "arn:aws:iam::123456789012:root"}, action=value)
    elif kind == "RESOURCE":
        document = _policy(bucket, {"AWS": "arn:aws:iam::123456789012:root"}, resource=value)
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert _code(err) == ("MalformedPolicy", 400)
    assert err.value.response["Error"]["Message"] == message


def test_valid_policy_for_an_existing_role_is_stored(s3, bucket, local_aws):
    iam = local_aws.client("iam")
    role = f"reader-{uuid.uuid4().hex[:6]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "glue.amazonaws.com"}}]}
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    document = _policy(bucket, {"AWS": arn})
    s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(document)


def test_public_policy_is_blocked_until_block_public_policy_is_off(s3, bucket):
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, "*"))
    assert _code(err) == ("AccessDenied", 403)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False})
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, "*"))


def test_acl_grants_in_the_body_are_refused_too(s3, bucket):
    """Granting the log-delivery group access with an AccessControlPolicy (the pre-2023 way) fails
    on an owner-enforced bucket; reading the ACL still works."""
    acl = s3.get_bucket_acl(Bucket=bucket)
    log_delivery = {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"}
    grants = acl["Grants"] + [{"Grantee": log_delivery, "Permission": "WRITE"}]
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Grants": grants, "Owner": acl["Owner"]})
    assert _code(err) == ("AccessControlListNotSupported", 400)
    # the owner's full control alone is the XML form of bucket-owner-full-control: accepted
    owner_only = [g for g in acl["Grants"] if g["Permission"] == "FULL_CONTROL"
                  and g["Grantee"].get("ID") == acl["Owner"]["ID"]]
    assert owner_only
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Grants": owner_only, "Owner": acl["Owner"]})


def test_cors_rules_round_trip_and_delete(s3, bucket):
    rules = [{"AllowedOrigins": ["http://www.example.com"], "AllowedMethods": ["PUT", "POST", "DELETE"],
              "AllowedHeaders": ["*"]}]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == rules
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert _code(err) == ("NoSuchCORSConfiguration", 404)


def test_presigned_get_url_serves_the_object(s3, bucket):
    import urllib.request

    s3.put_object(Bucket=bucket, Key="shared/report.txt", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared/report.txt"},
                                    ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"hello"
