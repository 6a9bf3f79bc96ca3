"""Contract tests for the SageMaker hosting engine (labkit/local/sagemaker_hosting.py), plain boto3."""

from __future__ import annotations

import io
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from botocore.exceptions import ClientError
from sklearn_model import FEATURES, ROLE, SKLEARN_IMAGE, model_archive, tar_gz

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(scope="module")
def data():
    from labkit import datasets

    frame = datasets.add_label(datasets.joined())
    frame = frame[frame.month <= 3][FEATURES + ["delayed"]].dropna().sample(4000, random_state=0)
    return frame[FEATURES].to_numpy(np.float32), frame["delayed"].to_numpy(int)


@pytest.fixture(scope="module")
def artifacts(local_aws, data):
    """A scikit-learn model.tar.gz with code/inference.py and an XGBoost ``xgboost-model`` one."""
    import joblib
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    x, y = data
    sk = LogisticRegression(max_iter=500).fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(sk, buffer)                # the bare model, without code/inference.py
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(x, label=y), 20)
    raw = booster.save_raw("json")
    bucket = f"hosting-test-{uuid.uuid4().hex[:8]}"
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="sk/model.tar.gz",
                  Body=model_archive(sk))
    s3.put_object(Bucket=bucket, Key="sk-nocode/model.tar.gz", Body=tar_gz({"model.joblib": buffer.getvalue()}))
    s3.put_object(Bucket=bucket, Key="xgb/model.tar.gz", Body=tar_gz({"xgboost-model": bytes(raw)}))
    return {"bucket": bucket, "sk": sk, "booster": booster}


def _model(sm, name, url, image=SKLEARN_IMAGE, env=None):
    container = {"Image": image, "ModelDataUrl": url}
    if env:
        container["Environment"] = env
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)


def _endpoint(local_aws, artifacts, *, variants=(("AllTraffic", "sk", 1.0),), capture=None, image=None,
              waiter=None):
    sm = local_aws.client("sagemaker")
    suffix = uuid.uuid4().hex[:8]
    pvs = []
    for variant, key, weight in variants:
        name = f"m-{key}-{suffix}-{variant}".lower()
        _model(sm, name, f"s3://{artifacts['bucket']}/{key}/model.tar.gz",
               image or (XGB_IMAGE if key == "xgb" else SKLEARN_IMAGE))
        pvs.append({"VariantName": variant, "ModelName": name, "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1, "InitialVariantWeight": weight})
    kwargs = {"DataCaptureConfig": capture} if capture else {}
    sm.create_endpoint_config(EndpointConfigName=f"cfg-{suffix}", ProductionVariants=pvs, **kwargs)
    sm.create_endpoint(EndpointName=f"ep-{suffix}", EndpointConfigName=f"cfg-{suffix}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=f"ep-{suffix}",
                                               WaiterConfig=waiter or {"Delay": 1, "MaxAttempts": 30})
    return f"ep-{suffix}"


def _csv(rows) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows)


def test_sklearn_endpoint_predictions_equal_artifact_predict(local_aws, artifacts, data):
    name = _endpoint(local_aws, artifacts)
    x, _ = data
    rows = x[:25]
    rt = local_aws.client("sagemaker-runtime")
    response = rt.invoke_endpoint(EndpointName=name, Body=_csv(rows), ContentType="text/csv",
                                  Accept="text/csv")
    served = np.array([float(v) for v in response["Body"].read().decode().split()])
    np.testing.assert_allclose(served, artifacts["sk"].predict_proba(rows)[:, 1], rtol=1e-5)
    assert response["InvokedProductionVariant"] == "AllTraffic"
    # JSON in, JSON out (the scikit-learn container's default accept)
    response = rt.invoke_endpoint(EndpointName=name, Body=json.dumps(rows[:3].tolist()),
                                  ContentType="application/json")
    assert response["ContentType"] == "application/json"
    np.testing.assert_allclose(json.loads(response["Body"].read()),
                               artifacts["sk"].predict_proba(rows[:3])[:, 1], rtol=1e-5)


def test_xgboost_container_defaults(local_aws, artifacts, data):
    import xgboost as xgb

    name = _endpoint(local_aws, artifacts, variants=(("AllTraffic", "xgb", 1.0),))
    x, _ = data
    rt = local_aws.client("sagemaker-runtime")
    response = rt.invoke_endpoint(EndpointName=name, Body=_csv(x[:10]), ContentType="text/csv")
    served = np.array([float(v) for v in response["Body"].read().decode().split()])
    np.testing.assert_allclose(served, artifacts["booster"].predict(xgb.DMatrix(x[:10])), rtol=1e-5)
    response = rt.invoke_endpoint(EndpointName=name, Body=_csv(x[:2]), ContentType="text/csv",
                                  Accept="application/json")
    assert [p["score"] for p in json.loads(response["Body"].read())["predictions"]] == \
        pytest.approx(artifacts["booster"].predict(xgb.DMatrix(x[:2])).tolist(), rel=1e-5)
    with pytest.raises(ClientError) as err:  # the XGBoost container does not decode JSON
        rt.invoke_endpoint(EndpointName=name, Body="[[1,2]]", ContentType="application/json")
    assert err.value.response["Error"]["Code"] == "ModelError"
    assert err.value.response["OriginalStatusCode"] == 415


def test_unknown_endpoint_is_validation_exception(local_aws):
    rt = local_aws.client("sagemaker-runtime")
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName="no-such-endpoint", Body="1,2", ContentType="text/csv")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"] == \
        "Endpoint no-such-endpoint of account 123456789012 not found."
    sm = local_aws.client("sagemaker")
    with pytest.raises(ClientError) as err:
        sm.describe_endpoint(EndpointName="no-such-endpoint")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_model_error_like_aws(local_aws, artifacts):
    name = _endpoint(local_aws, artifacts)
    rt = local_aws.client("sagemaker-runtime")
    with pytest.raises(ClientError) as err:  # NaN features: the model raises inside predict
        rt.invoke_endpoint(EndpointName=name, Body="a,b,c,d,e,f", ContentType="text/csv")
    error = err.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "Received server error (500) from primary" in error["Error"]["Message"]
    assert error["OriginalStatusCode"] == 500 and "NaN" in error["OriginalMessage"]
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName=name, Body="x", ContentType="text/plain")
    assert "Received client error (415)" in err.value.response["Error"]["Message"]


def test_missing_model_fn_fails_endpoint_creation(local_aws, artifacts):
    sm = local_aws.client("sagemaker")
    suffix = uuid.uuid4().hex[:8]
    _model(sm, f"m-{suffix}", f"s3://{artifacts['bucket']}/sk-nocode/model.tar.gz")
    sm.create_endpoint_config(EndpointConfigName=f"cfg-{suffix}", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"m-{suffix}", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=f"ep-{suffix}", EndpointConfigName=f"cfg-{suffix}")
    described = sm.describe_endpoint(EndpointName=f"ep-{suffix}")
    assert described["EndpointStatus"] == "Failed"
    assert "model_fn" in described["FailureReason"]


def test_traffic_split_and_target_variant(local_aws, artifacts, data):
    name = _endpoint(local_aws, artifacts, variants=(("Blue", "sk", 0.8), ("Green", "xgb", 0.2)))
    rt = local_aws.client("sagemaker-runtime")
    row = _csv(data[0][:1])
    seen = [rt.invoke_endpoint(EndpointName=name, Body=row, ContentType="text/csv",
                               Accept="text/csv")["InvokedProductionVariant"] for _ in range(300)]
    share = seen.count("Blue") / len(seen)
    assert 0.7 < share < 0.9, share
    target = rt.invoke_endpoint(EndpointName=name, Body=row, ContentType="text/csv",
                                Accept="text/csv", TargetVariant="Green")
    assert target["InvokedProductionVariant"] == "Green"
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName=name, Body=row, ContentType="text/csv", TargetVariant="Red")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    described = local_aws.client("sagemaker").describe_endpoint(EndpointName=name)
    weights = {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    assert weights == {"Blue": 0.8, "Green": 0.2}


def test_update_endpoint_switches_model(local_aws, artifacts, data):
    import xgboost as xgb

    sm = local_aws.client("sagemaker")
    name = _endpoint(local_aws, artifacts)
    suffix = uuid.uuid4().hex[:8]
    _model(sm, f"m2-{suffix}", f"s3://{artifacts['bucket']}/xgb/model.tar.gz", XGB_IMAGE)
    sm.create_endpoint_config(EndpointConfigName=f"cfg2-{suffix}", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"m2-{suffix}", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sm.update_endpoint(EndpointName=name, EndpointConfigName=f"cfg2-{suffix}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointConfigName"] == f"cfg2-{suffix}"
    rows = data[0][:3]
    body = local_aws.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, Body=_csv(rows), ContentType="text/csv")["Body"].read().decode()
    np.testing.assert_allclose([float(v) for v in body.split()],
                               artifacts["booster"].predict(xgb.DMatrix(rows)), rtol=1e-5)
    with pytest.raises(ClientError) as err:
        sm.update_endpoint(EndpointName=name, EndpointConfigName="no-such-config")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    sm.delete_endpoint(EndpointName=name)
    with pytest.raises(ClientError):
        local_aws.client("sagemaker-runtime").invoke_endpoint(EndpointName=name, Body="1",
                                                              ContentType="text/csv")


def test_data_capture_files_documented_format(local_aws, artifacts, data):
    bucket = artifacts["bucket"]
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100,
               "DestinationS3Uri": f"s3://{bucket}/capture",
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
    name = _endpoint(local_aws, artifacts, capture=capture)
    described = local_aws.client("sagemaker").describe_endpoint(EndpointName=name)["DataCaptureConfig"]
    assert described["CaptureStatus"] == "Started" and described["CurrentSamplingPercentage"] == 100
    rt = local_aws.client("sagemaker-runtime")
    rows = data[0][:2]
    for i in range(3):
        rt.invoke_endpoint(EndpointName=name, Body=_csv(rows), ContentType="text/csv", Accept="text/csv",
                           InferenceId=f"req-{i}")
    s3 = local_aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"capture/{name}/")["Contents"]]
    assert keys
    now = local_aws.now()
    for key in keys:
        parts = key.split("/")
        assert parts[1:3] == [name, "AllTraffic"] and key.endswith(".jsonl")
        year, month, day, hour = map(int, parts[3:7])
        assert abs(datetime(year, month, day, hour, tzinfo=timezone.utc) - now) < timedelta(hours=2)
    lines = [json.loads(line) for key in keys for line in
             s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
    assert len(lines) == 3
    record = lines[0]
    assert record["eventVersion"] == "0"
    assert set(record["captureData"]) == {"endpointInput", "endpointOutput"}
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv", "mode": "INPUT", "data": _csv(rows), "encoding": "CSV"}
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert record["eventMetadata"]["inferenceId"] == "req-0"
    uuid.UUID(record["eventMetadata"]["eventId"])
    datetime.strptime(record["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_capture_sampling_zero_and_input_only(local_aws, artifacts, data):
    bucket = artifacts["bucket"]
    prefix = f"cap0-{uuid.uuid4().hex[:6]}"
    name = _endpoint(local_aws, artifacts, capture={
        "EnableCapture": True, "InitialSamplingPercentage": 0, "DestinationS3Uri": f"s3://{bucket}/{prefix}",
        "CaptureOptions": [{"CaptureMode": "Input"}]})
    rt = local_aws.client("sagemaker-runtime")
    rt.invoke_endpoint(EndpointName=name, Body=_csv(data[0][:1]), ContentType="text/csv")
    assert local_aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] == 0
    name = _endpoint(local_aws, artifacts, capture={
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{bucket}/{prefix}-in", "CaptureOptions": [{"CaptureMode": "Input"}]})
    rt.invoke_endpoint(EndpointName=name, Body=_csv(data[0][:1]), ContentType="text/csv")
    s3 = local_aws.client("s3")
    key = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}-in")["Contents"][0]["Key"]
    record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert list(record["captureData"]) == ["endpointInput"]
    with pytest.raises(ClientError) as err:
        local_aws.client("sagemaker").create_endpoint_config(
            EndpointConfigName=f"bad-{prefix}",
            ProductionVariants=[{"VariantName": "A", "ModelName": "m", "InstanceType": "ml.m5.large",
                                 "InitialInstanceCount": 1}],
            DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 150,
                               "DestinationS3Uri": f"s3://{bucket}/x",
                               "CaptureOptions": [{"CaptureMode": "Input"}]})
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_endpoint_metrics_in_cloudwatch(local_aws, artifacts, data):
    name = _endpoint(local_aws, artifacts)
    rt = local_aws.client("sagemaker-runtime")
    for _ in range(5):
        rt.invoke_endpoint(EndpointName=name, Body=_csv(data[0][:1]), ContentType="text/csv")
    cw = local_aws.client("cloudwatch")
    now = local_aws.now()
    dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]
    stats = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims,
                                     StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
                                     Period=3600, Statistics=["Sum"])["Datapoints"]
    assert sum(p["Sum"] for p in stats) == 5
    latency = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=dims,
                                       StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
                                       Period=3600, Statistics=["Average"])["Datapoints"]
    assert latency and latency[0]["Average"] > 0 and latency[0]["Unit"] == "Microseconds"


def test_batch_transform_writes_out_files(local_aws, artifacts, data):
    sm = local_aws.client("sagemaker")
    s3 = local_aws.client("s3")
    bucket = artifacts["bucket"]
    suffix = uuid.uuid4().hex[:8]
    rows = data[0][:40]
    s3.put_object(Bucket=bucket, Key=f"bt-{suffix}/in/part-1.csv", Body=_csv(rows[:30]) + "\n")
    s3.put_object(Bucket=bucket, Key=f"bt-{suffix}/in/part-2.csv", Body=_csv(rows[30:]) + "\n")
    _model(sm, f"bt-{suffix}", f"s3://{bucket}/sk/model.tar.gz")
    sm.create_transform_job(
        TransformJobName=f"bt-{suffix}", ModelName=f"bt-{suffix}",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": f"s3://{bucket}/bt-{suffix}/in/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/bt-{suffix}/out", "AssembleWith": "Line",
                         "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=f"bt-{suffix}", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert sm.describe_transform_job(TransformJobName=f"bt-{suffix}")["TransformJobStatus"] == "Completed"
    out = []
    for part in ("part-1.csv.out", "part-2.csv.out"):
        text = s3.get_object(Bucket=bucket, Key=f"bt-{suffix}/out/{part}")["Body"].read().decode()
        out.extend(float(v) for v in text.splitlines())
    np.testing.assert_allclose(out, artifacts["sk"].predict_proba(rows)[:, 1], rtol=1e-5)
    # a missing input prefix fails the job with a reason, like AWS
    sm.create_transform_job(
        TransformJobName=f"bt-bad-{suffix}", ModelName=f"bt-{suffix}",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": f"s3://{bucket}/nothing-{suffix}/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/bt-{suffix}/bad"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    failed = sm.describe_transform_job(TransformJobName=f"bt-bad-{suffix}")
    assert failed["TransformJobStatus"] == "Failed" and "No S3 objects" in failed["FailureReason"]


def test_describe_model_has_no_empty_vpc_config(local_aws, artifacts):
    sm = local_aws.client("sagemaker")
    name = f"vpc-{uuid.uuid4().hex[:8]}"
    _model(sm, name, f"s3://{artifacts['bucket']}/sk/model.tar.gz")
    assert "VpcConfig" not in sm.describe_model(ModelName=name)
    with pytest.raises(ClientError) as err:
        _model(sm, name, f"s3://{artifacts['bucket']}/sk/model.tar.gz")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_autoscaling_policy_stored(local_aws, artifacts):
    name = _endpoint(local_aws, artifacts)
    aas = local_aws.client("application-autoscaling")
    resource = f"endpoint/{name}/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                 MinCapacity=1, MaxCapacity=4)
    aas.put_scaling_policy(
        PolicyName="invocations-target", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                             ResourceId=resource)["ScalingPolicies"]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies] == [70.0]
    with pytest.raises(ClientError) as err:  # no target registered for this variant
        aas.put_scaling_policy(PolicyName="bad", ServiceNamespace="sagemaker",
                               ResourceId=f"endpoint/{name}/variant/Other",
                               ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                               PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration={"TargetValue": 1.0})
    assert err.value.response["Error"]["Code"] == "ObjectNotFoundException"
    with pytest.raises(ClientError) as err:  # the endpoint variant does not exist
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/nope/variant/A",
                                     ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                     MinCapacity=1, MaxCapacity=2)
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_describe_endpoint_does_not_make_waiters_sleep(local_aws, artifacts):
    start = time.perf_counter()
    _endpoint(local_aws, artifacts, waiter={"Delay": 30, "MaxAttempts": 2})  # the default delay
    assert time.perf_counter() - start < 20  # a 30-second waiter delay would exceed this


def test_sdk_v3_resources_deploy_and_invoke(local_aws, artifacts, data):
    """The v3 SDK's sagemaker.core.resources parse our describe responses (no VpcConfig: {} etc.)."""
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import CaptureOption, ContainerDefinition, DataCaptureConfig, ProductionVariant

    suffix = uuid.uuid4().hex[:8]
    model = Model.create(model_name=f"sdk-{suffix}", execution_role_arn=ROLE,
                         primary_container=ContainerDefinition(
        image=SKLEARN_IMAGE, model_data_url=f"s3://{artifacts['bucket']}/sk/model.tar.gz"))
    config = EndpointConfig.create(
        endpoint_config_name=f"sdk-{suffix}",
        production_variants=[ProductionVariant(variant_name="AllTraffic", model_name=f"sdk-{suffix}",
                                               instance_type="ml.m5.large", initial_instance_count=1)],
        data_capture_config=DataCaptureConfig(enable_capture=True, initial_sampling_percentage=100,
                                              destination_s3_uri=f"s3://{artifacts['bucket']}/sdk-capture",
                                              capture_options=[CaptureOption(capture_mode="Input")]))
    endpoint = Endpoint.create(endpoint_name=f"sdk-{suffix}", endpoint_config_name=f"sdk-{suffix}")
    start = time.perf_counter()
    endpoint.wait_for_status("InService")
    assert time.perf_counter() - start < 10
    assert endpoint.data_capture_config.capture_status == "Started"
    rows = data[0][:4]
    answer = endpoint.invoke(body=_csv(rows), content_type="text/csv", accept="application/json")
    np.testing.assert_allclose(json.loads(answer.body.read()), artifacts["sk"].predict_proba(rows)[:, 1],
                               rtol=1e-5)
    endpoint.delete()
    config.delete()
    model.delete()
