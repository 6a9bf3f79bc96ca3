"""Contract tests for IAM (API reference: AttachRolePolicy, GetPolicy, ListPolicies Scope=AWS)."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
MANAGED = ["service-role/AWSGlueServiceRole", "AmazonSageMakerFullAccess", "AmazonS3FullAccess",
           "AmazonS3ReadOnlyAccess", "CloudWatchFullAccess", "service-role/AWSLambdaBasicExecutionRole",
           "AmazonAthenaFullAccess", "AmazonKinesisFirehoseFullAccess"]


@pytest.mark.parametrize("policy", MANAGED)
def test_aws_managed_policy_exists_and_attaches(local_aws, policy):
    iam = boto3.client("iam")
    arn = f"arn:aws:iam::aws:policy/{policy}"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn
    role = f"r-{uuid.uuid4().hex[:10]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]


def test_aws_scope_lists_managed_policies_and_unknown_one_is_no_such_entity(local_aws):
    iam = boto3.client("iam")
    names = {p["PolicyName"] for page in iam.get_paginator("list_policies").paginate(Scope="AWS")
             for p in page["Policies"]}
    assert {"AWSGlueServiceRole", "AmazonSageMakerFullAccess"} <= names
    with pytest.raises(ClientError) as err:
        iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicyAnywhere")
    assert err.value.response["Error"]["Code"] == "NoSuchEntity"
