"""Contract tests for CloudFormation (API reference: CreateStack, DescribeStacks,
DescribeStackEvents; user guide: stack status codes, template format errors), plain boto3 calls.

A stack either creates every resource of its template or fails and rolls back with a reason
(a resource must never vanish); an invalid template is a 400 ValidationError, never a 500."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

WAIT = {"Delay": 1, "MaxAttempts": 10}


@pytest.fixture
def cfn(local_aws):
    return local_aws.client("cloudformation")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_supported_resources_are_created(cfn, local_aws):
    bucket, stack = _name("cfn-bucket"), _name("ok")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {
        "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}},
        "Outputs": {"BucketName": {"Value": {"Ref": "Data"}}}}))
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig=WAIT)
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["Outputs"][0]["OutputValue"] == bucket
    local_aws.client("s3").head_bucket(Bucket=bucket)


def test_a_resource_no_engine_creates_fails_the_stack_with_a_reason(cfn, local_aws):
    bucket, stack = _name("cfn-bucket"), _name("workgroup")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {
        "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
        "Queries": {"Type": "AWS::Athena::WorkGroup", "Properties": {"Name": stack}}}}))
    with pytest.raises(Exception, match="ROLLBACK_COMPLETE"):  # the create waiter's failure state
        cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig=WAIT)
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    assert described["StackStatusReason"] == \
        "The following resource(s) failed to create: [Queries]. Rollback requested by user."
    failed = [e for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]
              if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [(e["LogicalResourceId"], e["ResourceType"]) for e in failed] == [
        ("Queries", "AWS::Athena::WorkGroup")]
    assert "AWS::Athena::WorkGroup" in failed[0]["ResourceStatusReason"]
    # nothing was left half-made, and the failed stack can be deleted as on AWS
    with pytest.raises(ClientError):
        local_aws.client("s3").head_bucket(Bucket=bucket)
    assert stack not in [w["Name"] for w in local_aws.client("athena").list_work_groups()["WorkGroups"]]
    cfn.delete_stack(StackName=stack)


def test_firehose_delivery_stream_is_created_and_deleted_with_its_stack(cfn, local_aws):
    bucket, stack = _name("cfn-bucket"), _name("firehose")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {
        "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
        "Stream": {"Type": "AWS::KinesisFirehose::DeliveryStream", "Properties": {
            "DeliveryStreamName": stack, "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "BucketARN": {"Fn::GetAtt": ["Data", "Arn"]}, "Prefix": "events/",
                "RoleARN": "arn:aws:iam::123456789012:role/firehose"}}}},
        "Outputs": {"StreamArn": {"Value": {"Fn::GetAtt": ["Stream", "Arn"]}},
                    "StreamName": {"Value": {"Ref": "Stream"}}}}))
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig=WAIT)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in
               cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    firehose = local_aws.client("firehose")
    description = firehose.describe_delivery_stream(DeliveryStreamName=stack)["DeliveryStreamDescription"]
    assert outputs == {"StreamArn": description["DeliveryStreamARN"], "StreamName": stack}
    destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert (destination["BucketARN"], destination["Prefix"]) == (f"arn:aws:s3:::{bucket}", "events/")
    cfn.delete_stack(StackName=stack)
    assert stack not in firehose.list_delivery_streams()["DeliveryStreamNames"]


@pytest.mark.parametrize("template, message", [
    ({"Resources": {}}, "Template format error: At least one Resources member must be defined."),
    ({"Resources": {"X": "AWS::S3::Bucket"}},
     "Template format error: [/Resources/X] Every Resources object must contain a Type member."),
    ([{"Type": "AWS::S3::Bucket"}], "Template format error: JSON not well-formed."),
    ({"Resources": {"X": {"Type": "AWS::S3::Bucket"}}, "Outputs": {"O": {"Value": {"Ref": "Missing"}}}},
     "Template format error: Unresolved resource dependencies [Missing] in the Resources block of the "
     "template"),
])
def test_invalid_templates_are_validation_errors(cfn, template, message):
    stack = _name("bad")
    with pytest.raises(ClientError) as err:
        cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Message"] == message
    with pytest.raises(ClientError) as err:  # and no stack was made
        cfn.describe_stacks(StackName=stack)
    assert err.value.response["Error"]["Code"] == "ValidationError"
