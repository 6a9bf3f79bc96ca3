"""Lab 09 (endpoints): the solution notebook runs twice on one local AWS, the blank version scores
zero, and every hidden check passes on the solved state and names the mistake on wrong states."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_notebook_structure,
                           assert_runs_clean, fails, lab_env, run_blank, run_in_fresh_kernels,
                           solved_in_process)

NOTEBOOK = REPO / "solutions" / "09-endpoints" / "09-endpoints.ipynb"


def test_notebook_structure():
    assert_notebook_structure(NOTEBOOK, "lab09")


@pytest.mark.slow
def test_solution_runs_twice_on_one_local_aws(local_aws, tmp_path):
    """Idempotent: a second run against the same (already used) local AWS also passes."""
    for nb in run_in_fresh_kernels(NOTEBOOK, tmp_path, env=lab_env(local_aws), timeout=300):
        assert_runs_clean(nb)


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path, env=lab_env(), timeout=300))


# --- the checks, directly against the local AWS ----------------------------------------------
@pytest.fixture(scope="module")
def solved(local_aws):
    """Run the solution's setup and task cells in this process (same local AWS as local_aws)."""
    with solved_in_process(NOTEBOOK) as namespace:
        yield namespace


def test_checks_pass_on_solved_state(local_aws, solved):
    from grader.checks import lab09

    ns = solved
    lab09.check_models(local_aws)
    lab09.check_endpoint(local_aws)
    lab09.check_invocations(local_aws, ns["csv_predictions"], ns["json_predictions"])
    lab09.check_latency(local_aws, ns["latencies_ms"], ns["p50"], ns["p95"])
    lab09.check_traffic_split(local_aws, ns["variant_counts"])
    lab09.check_autoscaling(local_aws)
    lab09.check_batch_transform(local_aws, ns["transform_job_name"])


def _recreate_model(sm, name, container):
    sm.delete_model(ModelName=name)
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole",
                    PrimaryContainer=container)


def test_check_models_wrong_states(local_aws, solved):
    from grader.checks import lab09

    sm = local_aws.client("sagemaker")
    ns = solved
    good = {"Image": ns["SKLEARN_IMAGE"], "ModelDataUrl": ns["MODEL_DATA"],
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
    try:
        _recreate_model(sm, ns["MODEL"], {**good, "ModelDataUrl": ns["CHALLENGER_DATA"]})
        fails(lab09.check_models, local_aws, match="points at .*xgb.*ModelDataUrl=MODEL_DATA")
        _recreate_model(sm, ns["MODEL"], {k: v for k, v in good.items() if k != "Environment"})
        fails(lab09.check_models, local_aws, match="does not name its inference script")
        _recreate_model(sm, ns["MODEL"], {**good, "Image": ns["XGBOOST_IMAGE"]})
        fails(lab09.check_models, local_aws, match="runs image .*use SKLEARN_IMAGE")
        sm.delete_model(ModelName=ns["MODEL"])
        fails(lab09.check_models, local_aws, match="model 'flights-delay-hgb' does not exist")
    finally:
        try:
            sm.delete_model(ModelName=ns["MODEL"])
        except ClientError:
            pass
        sm.create_model(ModelName=ns["MODEL"], ExecutionRoleArn=ns["ROLE_ARN"], PrimaryContainer=good)
    lab09.check_models(local_aws)


def _switch(sm, endpoint, config):
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1})


def _config(sm, name, variants, capture):
    try:
        sm.delete_endpoint_config(EndpointConfigName=name)
    except ClientError:
        pass
    kwargs = {"DataCaptureConfig": capture} if capture else {}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": v, "ModelName": m, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": w} for v, m, w in variants], **kwargs)


def test_check_endpoint_and_split_wrong_states(local_aws, solved):
    from grader.checks import lab09

    sm = local_aws.client("sagemaker")
    ns = solved
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": ns["CAPTURE_URI"],
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
    both = [("champion", ns["MODEL"], 0.8), ("challenger", ns["CHALLENGER_MODEL"], 0.2)]
    counts = ns["variant_counts"]
    try:
        _config(sm, "lab09-wrong", both, {**capture, "InitialSamplingPercentage": 20})
        _switch(sm, ns["ENDPOINT"], "lab09-wrong")
        fails(lab09.check_endpoint, local_aws, match="samples 20% of requests")
        _config(sm, "lab09-wrong", both, None)
        _switch(sm, ns["ENDPOINT"], "lab09-wrong")
        fails(lab09.check_endpoint, local_aws, match="has no data capture")
        _config(sm, "lab09-wrong", both, {**capture, "CaptureOptions": [{"CaptureMode": "Input"}]})
        _switch(sm, ns["ENDPOINT"], "lab09-wrong")
        fails(lab09.check_endpoint, local_aws, match="captures only \\['Input'\\]")
        # the A/B step: a 50/50 split, the same model twice, the endpoint not updated
        _config(sm, "lab09-wrong", [("champion", ns["MODEL"], 0.5), ("challenger", ns["CHALLENGER_MODEL"],
                                                                     0.5)],
                capture)
        _switch(sm, ns["ENDPOINT"], "lab09-wrong")
        fails(lab09.check_traffic_split, local_aws, counts, match="weight share is 50%")
        _config(sm, "lab09-wrong", [("champion", ns["MODEL"], 0.8), ("challenger", ns["MODEL"], 0.2)],
                capture)
        _switch(sm, ns["ENDPOINT"], "lab09-wrong")
        fails(lab09.check_traffic_split, local_aws, counts, match="challenger=flights-delay-hgb")
        _switch(sm, ns["ENDPOINT"], ns["CONFIG"])
        fails(lab09.check_traffic_split, local_aws, counts, match="with variants \\['champion'\\]")
    finally:
        _switch(sm, ns["ENDPOINT"], ns["AB_CONFIG"])
        sm.delete_endpoint_config(EndpointConfigName="lab09-wrong")
    lab09.check_endpoint(local_aws)
    fails(lab09.check_traffic_split, local_aws, Counter(champion=250, challenger=250),
          match="champion answered 50%")
    fails(lab09.check_traffic_split, local_aws, Counter(champion=80, challenger=20),
          match="counts 100 requests")
    lab09.check_traffic_split(local_aws, counts)


def test_check_invocations_and_latency_wrong_states(local_aws, solved):
    from grader.checks import lab09

    ns = solved
    good_csv, good_json = ns["csv_predictions"], ns["json_predictions"]
    fails(lab09.check_invocations, local_aws, good_csv[:49], good_json, match="has 49 values, not 50")
    fails(lab09.check_invocations, local_aws, good_csv[::-1], good_json, match="csv_predictions differ")
    shifted = ns["champion"].predict_proba(ns["july"][ns["FEATURES"]].to_numpy()[50:100])[:, 1]
    fails(lab09.check_invocations, local_aws, good_csv, shifted, match="json_predictions differ")
    fails(lab09.check_invocations, local_aws, good_csv, ["x"] * 50, match="not a list of numbers")
    lat = list(ns["latencies_ms"])
    fails(lab09.check_latency, local_aws, lat[:100], ns["p50"], ns["p95"], match="holds 100 timings")
    fails(lab09.check_latency, local_aws, lat, float(np.mean(lat)) + 1.0, ns["p95"],
          match="p50 is not the median")
    fails(lab09.check_latency, local_aws, lat, ns["p50"], float(np.max(lat)) + 1.0, match="p95 is not")
    fails(lab09.check_latency, local_aws, [0.0] * 200, 0.0, 0.0, match="zero or negative")
    lab09.check_invocations(local_aws, good_csv, good_json)
    lab09.check_latency(local_aws, lat, ns["p50"], ns["p95"])


def test_check_autoscaling_wrong_states(local_aws, solved):
    from grader.checks import lab09

    aas = local_aws.client("application-autoscaling")
    resource, dim = lab09.RESOURCE, lab09.DIMENSION

    def register(low, high):
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dim,
                                     MinCapacity=low, MaxCapacity=high)

    def policy(kind="TargetTrackingScaling", metric="SageMakerVariantInvocationsPerInstance", target=100.0,
               scale_in=300):
        config = {"TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": target, "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
            "ScaleOutCooldown": 60, "ScaleInCooldown": scale_in}} \
            if kind == "TargetTrackingScaling" else {"StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity", "StepAdjustments": [{"MetricIntervalLowerBound": 0,
                                                                           "ScalingAdjustment": 1}]}}
        aas.put_scaling_policy(PolicyName="champion-invocations", ServiceNamespace="sagemaker",
                               ResourceId=resource, ScalableDimension=dim, PolicyType=kind, **config)

    try:
        aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                       ScalableDimension=dim)
        fails(lab09.check_autoscaling, local_aws, match="is not registered as a scalable target")
        register(1, 1)
        fails(lab09.check_autoscaling, local_aws, match="ranges 1–1 instances")
        register(1, 4)
        fails(lab09.check_autoscaling, local_aws, match="no scaling policy")
        policy(kind="StepScaling")
        fails(lab09.check_autoscaling, local_aws, match="is StepScaling")
        aas.delete_scaling_policy(PolicyName="champion-invocations", ServiceNamespace="sagemaker",
                                  ResourceId=resource, ScalableDimension=dim)
        policy(metric="SageMakerVariantCPUUtilization")
        fails(lab09.check_autoscaling, local_aws, match="tracks 'SageMakerVariantCPUUtilization'")
        policy(scale_in=60)
        fails(lab09.check_autoscaling, local_aws, match="cool-downs are 60 s out / 60 s in")
    finally:
        register(1, 4)
        policy()
    lab09.check_autoscaling(local_aws)


def test_check_batch_transform_wrong_states(local_aws, solved):
    from grader.checks import lab09

    sm = local_aws.client("sagemaker")
    s3 = local_aws.client("s3")
    ns = solved
    bucket = local_aws.bucket

    def job(name, *, model=None, split="Line", assemble="Line", header=False, month=7, out="wrong-out"):
        frame = ns["validation"][ns["validation"].month == month][ns["FEATURES"]]
        s3.put_object(Bucket=bucket, Key=f"lab09/{name}/in/2013-07.csv", Body=frame.to_csv(index=False,
                                                                                           header=header))
        sm.create_transform_job(
            TransformJobName=name, ModelName=model or ns["MODEL"],
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": f"s3://{bucket}/lab09/{name}/in/"}},
                            "ContentType": "text/csv", "SplitType": split},
            TransformOutput={"S3OutputPath": f"s3://{bucket}/lab09/{name}/{out}/", "AssembleWith": assemble,
                             "Accept": "text/csv"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
        try:
            sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName=name,
                                                                     WaiterConfig={"Delay": 1})
        except WaiterError:  # a Failed job ends the waiter with an error, as on AWS
            pass
        return name

    fails(lab09.check_batch_transform, local_aws, job("flights-delay-batch-hdr", header=True),
          match="is Failed: .*could not convert")
    fails(lab09.check_batch_transform, local_aws, job("flights-delay-batch-aug", month=8),
          match="July has 28,406 flights")
    fails(lab09.check_batch_transform, local_aws, job("flights-delay-batch-none", split="None"),
          match="does not split the input by line")
    fails(lab09.check_batch_transform, local_aws,
          job("flights-delay-batch-xgb", model=ns["CHALLENGER_MODEL"]),
          match="ran model 'flights-delay-xgb'")
    fails(lab09.check_batch_transform, local_aws, "my-batch-job", match="does not start with")
    fails(lab09.check_batch_transform, local_aws, "flights-delay-batch-nope", match="does not exist")
    lab09.check_batch_transform(local_aws, ns["transform_job_name"])


def test_check_cleanup(local_aws, solved):
    from grader.checks import lab09

    ns = solved
    fails(lab09.check_cleanup, local_aws, match="endpoint\\(s\\) \\['flights-delay'\\] still exist")
    sm = local_aws.client("sagemaker")
    sm.delete_endpoint(EndpointName=ns["ENDPOINT"])
    fails(lab09.check_cleanup, local_aws, match="still a registered scalable target")
    local_aws.client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=lab09.RESOURCE, ScalableDimension=lab09.DIMENSION)
    fails(lab09.check_cleanup, local_aws, match="model 'flights-delay-hgb' still exists")
    for name in (ns["MODEL"], ns["CHALLENGER_MODEL"]):
        sm.delete_model(ModelName=name)
    fails(lab09.check_cleanup, local_aws, match="endpoint configuration\\(s\\) .* still exist")
    for name in ("CONFIG", "AB_CONFIG"):
        sm.delete_endpoint_config(EndpointConfigName=ns[name])
    lab09.check_cleanup(local_aws)
