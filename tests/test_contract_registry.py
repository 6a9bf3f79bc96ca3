"""Contract tests: SageMaker Model Registry, plain boto3 (CreateModelPackageGroup,
CreateModelPackage, ListModelPackages, UpdateModelPackage, DeleteModelPackage[Group] API
reference; the 'SageMaker Model Package State Change' EventBridge event)."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from sklearn_model import ROLE, SKLEARN_IMAGE, model_archive


@pytest.fixture(scope="module")
def artifact(local_aws):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    bucket = f"registry-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model/model.tar.gz", Body=model_archive(model))
    s3.put_object(Bucket=bucket, Key="eval/evaluation.json", Body=b'{"metrics": {"auc": {"value": 0.9}}}')
    return {"bucket": bucket, "model": model, "x": x, "url": f"s3://{bucket}/model/model.tar.gz"}


def spec(url: str) -> dict:
    return {"Containers": [{"Image": SKLEARN_IMAGE, "ModelDataUrl": url}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"]}


def group(sm) -> str:
    name = f"delays-{uuid.uuid4().hex[:8]}"
    sm.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription="flight delays")
    return name


def test_groups_are_created_described_listed_and_deleted(local_aws):
    sm = boto3.client("sagemaker")
    name = group(sm)
    described = sm.describe_model_package_group(ModelPackageGroupName=name)
    assert described["ModelPackageGroupArn"].endswith(f":model-package-group/{name}")
    assert described["ModelPackageGroupStatus"] == "Completed"
    listed = sm.list_model_package_groups(NameContains=name)["ModelPackageGroupSummaryList"]
    assert [g["ModelPackageGroupName"] for g in listed] == [name]
    sm.delete_model_package_group(ModelPackageGroupName=name)
    for call in (sm.describe_model_package_group, sm.delete_model_package_group):
        with pytest.raises(ClientError) as raised:
            call(ModelPackageGroupName=name)
        assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_a_group_with_versions_cannot_be_deleted(artifact):
    sm = boto3.client("sagemaker")
    name = group(sm)
    arn = sm.create_model_package(ModelPackageGroupName=name,
                                  InferenceSpecification=spec(artifact["url"]))["ModelPackageArn"]
    with pytest.raises(ClientError) as raised:
        sm.delete_model_package_group(ModelPackageGroupName=name)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    sm.delete_model_package(ModelPackageName=arn)
    sm.delete_model_package_group(ModelPackageGroupName=name)


def test_versions_are_numbered_and_never_reused(artifact):
    sm = boto3.client("sagemaker")
    name = group(sm)
    metrics = {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                               "S3Uri": f"s3://{artifact['bucket']}/eval/evaluation.json"}}}
    first = sm.create_model_package(ModelPackageGroupName=name, InferenceSpecification=spec(artifact["url"]),
                                    ModelMetrics=metrics)["ModelPackageArn"]
    second = sm.create_model_package(ModelPackageGroupName=name, InferenceSpecification=spec(artifact["url"]),
                                     ModelApprovalStatus="Approved")["ModelPackageArn"]
    assert first.endswith(f"/{name}/1") and second.endswith(f"/{name}/2")
    described = sm.describe_model_package(ModelPackageName=first)
    assert described["ModelPackageVersion"] == 1 and described["ModelPackageGroupName"] == name
    assert described["ModelApprovalStatus"] == "PendingManualApproval"  # AWS's default for a version
    assert described["ModelMetrics"] == metrics
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == artifact["url"]
    sm.delete_model_package(ModelPackageName=second)
    third = sm.create_model_package(ModelPackageGroupName=name,
                                    InferenceSpecification=spec(artifact["url"]))["ModelPackageArn"]
    assert third.endswith(f"/{name}/3")
    with pytest.raises(ClientError) as raised:
        sm.describe_model_package(ModelPackageName=second)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.create_model_package(ModelPackageGroupName=name, InferenceSpecification=spec(artifact["url"]),
                                ModelApprovalStatus="Maybe")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_list_model_packages_filters_and_sorts(artifact):
    sm = boto3.client("sagemaker")
    name = group(sm)
    arns = []
    for status in ("Approved", "Rejected", "Approved"):
        arns.append(sm.create_model_package(ModelPackageGroupName=name,
                                            InferenceSpecification=spec(artifact["url"]),
                                            ModelApprovalStatus=status)["ModelPackageArn"])
        time.sleep(0.01)
    approved = sm.list_model_packages(
        ModelPackageGroupName=name, ModelApprovalStatus="Approved", SortBy="CreationTime",
        SortOrder="Descending")["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in approved] == [arns[2], arns[0]]
    ascending = sm.list_model_packages(ModelPackageGroupName=name, SortBy="CreationTime",
                                       SortOrder="Ascending")["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in ascending] == [1, 2, 3]
    assert {p["ModelPackageGroupName"] for p in ascending} == {name}


def test_approval_keeps_what_the_update_omits_and_puts_a_state_change_event(artifact):
    sm, events, sqs = boto3.client("sagemaker"), boto3.client("events"), boto3.client("sqs")
    name = group(sm)
    queue = sqs.create_queue(QueueName=f"approvals-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    rule = f"approved-{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [name], "ModelApprovalStatus": ["Approved"]}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    arn = sm.create_model_package(ModelPackageGroupName=name, InferenceSpecification=spec(artifact["url"]),
                                  CustomerMetadataProperties={"auc": "0.9"})["ModelPackageArn"]
    sm.update_model_package(ModelPackageArn=arn, ApprovalDescription="checked by hand")
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []  # still pending
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "checked by hand"
    assert described["CustomerMetadataProperties"] == {"auc": "0.9"}
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert event["source"] == "aws.sagemaker"
    assert event["detail-type"] == "SageMaker Model Package State Change"
    assert event["resources"] == [arn]
    assert event["detail"]["ModelPackageArn"] == arn and event["detail"]["ModelPackageVersion"] == 1
    assert event["detail"]["ModelApprovalStatus"] == "Approved"
    events.remove_targets(Rule=rule, Ids=["queue"])
    events.delete_rule(Name=rule)


def test_a_model_created_from_a_package_serves_its_artifact(artifact):
    sm, runtime = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
    name = group(sm)
    arn = sm.create_model_package(ModelPackageGroupName=name, InferenceSpecification=spec(artifact["url"]),
                                  ModelApprovalStatus="Approved")["ModelPackageArn"]
    suffix = uuid.uuid4().hex[:8]
    sm.create_model(ModelName=f"pkg-{suffix}", ExecutionRoleArn=ROLE, Containers=[{"ModelPackageName": arn}])
    assert sm.describe_model(ModelName=f"pkg-{suffix}")["Containers"] == [{"ModelPackageName": arn}]
    sm.create_endpoint_config(EndpointConfigName=f"pkg-{suffix}", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"pkg-{suffix}", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=f"pkg-{suffix}", EndpointConfigName=f"pkg-{suffix}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=f"pkg-{suffix}",
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    rows = artifact["x"][:5]
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows)
    answer = runtime.invoke_endpoint(EndpointName=f"pkg-{suffix}", Body=body, ContentType="text/csv")
    served = json.loads(answer["Body"].read())  # the container answers JSON by default
    assert np.allclose(served, artifact["model"].predict_proba(rows)[:, 1], atol=1e-6)
    with pytest.raises(ClientError) as raised:
        sm.create_model(ModelName=f"pkg-{suffix}-x", ExecutionRoleArn=ROLE,
                        Containers=[{"ModelPackageName": arn + "0"}])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    sm.delete_endpoint(EndpointName=f"pkg-{suffix}")
