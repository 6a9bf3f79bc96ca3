"""Hidden checks of lab 09 (endpoints): the models, the endpoint with data capture, real
predictions in CSV and JSON, latency, the 80/20 A/B split, autoscaling, batch transform, clean-up.
They read state through boto3 on the labkit handle only."""

from __future__ import annotations

import json

import numpy as np
from botocore.exceptions import ClientError

from grader.checks.common import fail, require

MODEL, CHALLENGER_MODEL = "flights-delay-hgb", "flights-delay-xgb"
ENDPOINT = "flights-delay"
FEATURES = ["hour", "distance", "temp", "dewp", "humid", "wind_speed", "precip", "visib"]
RESOURCE = f"endpoint/{ENDPOINT}/variant/champion"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def _frames():
    """The lab's deterministic rows: the 50-row sample and all of July (features present)."""
    from labkit import datasets

    flights = datasets.add_label(datasets.joined()).dropna(subset=FEATURES)
    _, validation = datasets.time_split(flights)
    july = validation[validation.month == 7]
    return july.head(50), july


def _model(aws, name: str) -> dict:
    try:
        return aws.client("sagemaker").describe_model(ModelName=name)
    except ClientError:
        fail(f"model '{name}' does not exist", "create it with sm.create_model")
    raise AssertionError("unreachable")  # pragma: no cover


def check_models(aws) -> None:
    champion = _model(aws, MODEL)
    container = champion.get("PrimaryContainer") or {}
    require("scikit-learn" in container.get("Image", ""),
            f"model '{MODEL}' runs image {container.get('Image')!r}",
            "use SKLEARN_IMAGE: the artifact holds a scikit-learn model and an inference script")
    require(container.get("ModelDataUrl") == f"s3://{aws.bucket}/lab09/models/hgb/model.tar.gz",
            f"model '{MODEL}' points at {container.get('ModelDataUrl')!r}",
            "set ModelDataUrl=MODEL_DATA (the champion's model.tar.gz)")
    require((container.get("Environment") or {}).get("SAGEMAKER_PROGRAM") == "inference.py",
            f"model '{MODEL}' does not name its inference script",
            "set Environment={'SAGEMAKER_PROGRAM': 'inference.py'}")
    challenger = _model(aws, CHALLENGER_MODEL).get("PrimaryContainer") or {}
    require("xgboost" in challenger.get("Image", ""),
            f"model '{CHALLENGER_MODEL}' runs image {challenger.get('Image')!r}", "use XGBOOST_IMAGE")
    require(challenger.get("ModelDataUrl") == f"s3://{aws.bucket}/lab09/models/xgb/model.tar.gz",
            f"model '{CHALLENGER_MODEL}' points at {challenger.get('ModelDataUrl')!r}",
            "set ModelDataUrl=CHALLENGER_DATA")


def _endpoint(aws) -> dict:
    try:
        return aws.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    except ClientError:
        fail(f"endpoint '{ENDPOINT}' does not exist", "create it with sm.create_endpoint")
    raise AssertionError("unreachable")  # pragma: no cover


def _check_capture(capture: dict | None, where: str, bucket: str) -> None:
    require(bool(capture) and capture.get("EnableCapture"), f"{where} has no data capture",
            "add DataCaptureConfig with EnableCapture=True")
    require(int(capture.get("InitialSamplingPercentage", capture.get("CurrentSamplingPercentage", 0))) == 100,
            f"{where} samples {capture.get('InitialSamplingPercentage', capture.get('CurrentSamplingPercentage'))}%"
            " of requests", "set InitialSamplingPercentage=100 (lab 10 needs every request)")
    require(capture.get("DestinationS3Uri", "").rstrip("/") == f"s3://{bucket}/lab09/capture",
            f"{where} captures to {capture.get('DestinationS3Uri')!r}", "use DestinationS3Uri=CAPTURE_URI")
    if "CaptureOptions" in capture:
        modes = {o.get("CaptureMode") for o in capture["CaptureOptions"]}
        require(modes == {"Input", "Output"}, f"{where} captures only {sorted(modes)}",
                "capture both Input and Output")


def _check_instances(variants: dict, config_name: str) -> None:
    for name, variant in sorted(variants.items()):
        got = (variant.get("InstanceType"), variant.get("InitialInstanceCount"))
        require(got == ("ml.m5.large", 1), f"variant '{name}' of '{config_name}' runs on {got[1]} x {got[0]}",
                "one ml.m5.large instance per variant (InitialInstanceCount=1)")


def check_endpoint(aws) -> None:
    endpoint = _endpoint(aws)
    require(endpoint["EndpointStatus"] == "InService",
            f"endpoint '{ENDPOINT}' is {endpoint['EndpointStatus']}"
            + (f" ({endpoint.get('FailureReason')})" if endpoint.get("FailureReason") else ""),
            "wait with sm.get_waiter('endpoint_in_service')")
    sm = aws.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    require("champion" in variants, f"endpoint '{ENDPOINT}' has no variant named 'champion' "
            f"(it has {sorted(variants)})", "name the variant 'champion'")
    require(variants["champion"]["ModelName"] == MODEL, "variant 'champion' serves "
            f"'{variants['champion']['ModelName']}'", f"serve the model '{MODEL}'")
    _check_instances(variants, config["EndpointConfigName"])
    _check_capture(config.get("DataCaptureConfig"),
                   f"endpoint configuration '{config['EndpointConfigName']}'",
                   aws.bucket)
    require(endpoint.get("DataCaptureConfig", {}).get("CaptureStatus") == "Started",
            f"data capture on '{ENDPOINT}' is not started", "enable capture in the endpoint configuration")


def check_invocations(aws, csv_predictions, json_predictions) -> None:
    sample, _ = _frames()
    rows = sample[FEATURES].to_numpy()
    runtime = aws.client("sagemaker-runtime")
    body = "\n".join(",".join(str(v) for v in row) for row in rows)
    try:
        answer = runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType="text/csv",
                                         Accept="text/csv", TargetVariant="champion")
    except ClientError as exc:
        fail(f"the grader could not call '{ENDPOINT}' ({exc.response['Error']['Code']})",
             "keep the endpoint InService with a 'champion' variant until the clean-up")
    expected = np.array([float(v) for v in answer["Body"].read().decode().split()])
    for name, values in (("csv_predictions", csv_predictions), ("json_predictions", json_predictions)):
        try:
            values = np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError):
            fail(f"{name} is not a list of numbers", "parse the endpoint's answer into floats")
        require(values.shape == expected.shape, f"{name} has {values.size} values, not {expected.size}",
                "send the 50 rows of sample[FEATURES] and keep one prediction per row")
        require(np.allclose(values, expected, atol=1e-4), f"{name} differ from the endpoint's predictions "
                "for sample[FEATURES]", "send exactly sample[FEATURES] (8 columns, no header, same order)")
    _check_captured_types(aws)


def _check_captured_types(aws) -> None:
    """Both content types reached the endpoint (judged from the capture, when task 2 made it capture
    every request: a sampled capture is task 2's mistake, not evidence against task 3)."""
    sm = aws.client("sagemaker")
    config_name = _endpoint(aws)["EndpointConfigName"]
    capture = sm.describe_endpoint_config(EndpointConfigName=config_name).get("DataCaptureConfig") or {}
    if not capture.get("EnableCapture") or int(capture.get("InitialSamplingPercentage", 0)) != 100:
        return
    s3 = aws.client("s3")
    seen = set()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=aws.bucket, Prefix=f"lab09/capture/{ENDPOINT}/"):
        for item in page.get("Contents", []):
            for line in s3.get_object(Bucket=aws.bucket,
                                      Key=item["Key"])["Body"].read().decode().splitlines():
                if line.strip():
                    captured = json.loads(line)["captureData"].get("endpointInput", {})
                    seen.add(captured.get("observedContentType"))
            if {"text/csv", "application/json"} <= seen:
                return
    require("text/csv" in seen, "no CSV request was captured", "invoke with ContentType='text/csv'")
    require("application/json" in seen, "no JSON request was captured",
            "invoke with ContentType='application/json' and a {'instances': [...]} body")


def check_latency(aws, latencies_ms, p50, p95) -> None:
    values = np.asarray(latencies_ms, dtype=float)
    require(values.size >= 200, f"latencies_ms holds {values.size} timings", "time 200 calls")
    require(bool(np.all(values > 0)), "latencies_ms holds zero or negative timings",
            "time each call with time.perf_counter() before and after")
    require(abs(float(p50) - np.percentile(values, 50)) < 1e-6, "p50 is not the median of latencies_ms",
            "use np.percentile(latencies_ms, 50)")
    require(abs(float(p95) - np.percentile(values, 95)) < 1e-6,
            "p95 is not the 95th percentile of latencies_ms",
            "use np.percentile(latencies_ms, 95)")
    total = _invocations(aws)
    require(total >= 200, f"CloudWatch counts only {total:.0f} invocations of '{ENDPOINT}'",
            "really call the endpoint 200 times (invoke_endpoint)")


def _invocations(aws) -> float:
    from datetime import timedelta

    cw = aws.client("cloudwatch")
    now = aws.now()
    total = 0.0
    for variant in ("champion", "challenger"):
        points = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations",
            Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName",
                                                                      "Value": variant}],
            StartTime=now - timedelta(days=1), EndTime=now + timedelta(hours=1), Period=86400,
            Statistics=["Sum"])["Datapoints"]
        total += sum(p["Sum"] for p in points)
    return total


def check_traffic_split(aws, variant_counts) -> None:
    endpoint = _endpoint(aws)
    sm = aws.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    require(set(variants) == {"champion", "challenger"},
            f"endpoint '{ENDPOINT}' runs configuration '{endpoint['EndpointConfigName']}' with variants "
            f"{sorted(variants)}", "update_endpoint to AB_CONFIG with variants 'champion' and 'challenger'")
    require(variants["champion"]["ModelName"] == MODEL and variants["challenger"]["ModelName"] == CHALLENGER_MODEL,
            "the variants serve " + ", ".join(f"{k}={v['ModelName']}" for k, v in sorted(variants.items())),
            f"champion serves '{MODEL}', challenger serves '{CHALLENGER_MODEL}'")
    _check_instances(variants, config["EndpointConfigName"])
    weights = {k: float(v.get("InitialVariantWeight", 1.0)) for k, v in variants.items()}
    share = weights["champion"] / sum(weights.values())
    require(abs(share - 0.8) < 1e-6, f"the champion's weight share is {share:.0%}",
            "weights 0.8 (champion) and 0.2 (challenger) give an 80/20 split")
    _check_capture(config.get("DataCaptureConfig"),
                   f"endpoint configuration '{config['EndpointConfigName']}'",
                   aws.bucket)
    counts = dict(variant_counts or {})
    total = sum(counts.values())
    require(total >= 500, f"variant_counts counts {total} requests", "send 500 requests")
    observed = counts.get("champion", 0) / total
    require(0.7 <= observed <= 0.9, f"the champion answered {observed:.0%} of the requests",
            "count answer['InvokedProductionVariant'] of each call; the split should be near 80/20")


def check_autoscaling(aws) -> None:
    client = aws.client("application-autoscaling")
    targets = client.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[RESOURCE],
                                               ScalableDimension=DIMENSION)["ScalableTargets"]
    require(bool(targets), f"'{RESOURCE}' is not registered as a scalable target",
            "register_scalable_target with ScalableDimension='sagemaker:variant:DesiredInstanceCount'")
    target = targets[0]
    require(target["MinCapacity"] == 1 and target["MaxCapacity"] == 4,
            f"the scalable target ranges {target['MinCapacity']}–{target['MaxCapacity']} instances",
            "use MinCapacity=1 and MaxCapacity=4")
    policies = client.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=RESOURCE,
                                                ScalableDimension=DIMENSION)["ScalingPolicies"]
    require(bool(policies), f"no scaling policy on '{RESOURCE}'",
            "put_scaling_policy on the champion variant")
    policy = next((p for p in policies if p["PolicyName"] == "champion-invocations"), policies[0])
    require(policy["PolicyType"] == "TargetTrackingScaling", f"policy '{policy['PolicyName']}' is "
            f"{policy['PolicyType']}", "use PolicyType='TargetTrackingScaling'")
    config = policy.get("TargetTrackingScalingPolicyConfiguration", {})
    metric = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
    require(metric == "SageMakerVariantInvocationsPerInstance", f"the policy tracks {metric!r}",
            "track the predefined metric SageMakerVariantInvocationsPerInstance")
    require(config.get("TargetValue") == 100.0, f"the policy's target value is {config.get('TargetValue')}",
            "use TargetValue=100 invocations per instance per minute")
    require(policy["PolicyName"] == "champion-invocations", f"the policy is named {policy['PolicyName']!r}",
            "name it champion-invocations")
    cooldowns = (config.get("ScaleOutCooldown"), config.get("ScaleInCooldown"))
    require(cooldowns == (60, 300), f"the cool-downs are {cooldowns[0]} s out / {cooldowns[1]} s in",
            "ScaleOutCooldown=60 and ScaleInCooldown=300 (scale in more slowly than out)")


def check_batch_transform(aws, transform_job_name) -> None:
    sm = aws.client("sagemaker")
    require(str(transform_job_name).startswith("flights-delay-batch"),
            f"transform job name {transform_job_name!r} does not start with 'flights-delay-batch'",
            "name the job flights-delay-batch-<timestamp>")
    try:
        job = sm.describe_transform_job(TransformJobName=transform_job_name)
    except ClientError:
        fail(f"transform job '{transform_job_name}' does not exist", "create it with sm.create_transform_job")
    require(job["TransformJobStatus"] == "Completed",
            f"transform job '{transform_job_name}' is {job['TransformJobStatus']}"
            + (f": {job.get('FailureReason')}" if job.get("FailureReason") else ""),
            "wait with the transform_job_completed_or_stopped waiter and fix the reason above")
    require(job["ModelName"] == MODEL, f"the job ran model '{job['ModelName']}'",
            f"use ModelName=MODEL ('{MODEL}')")
    require(job["TransformInput"].get("SplitType") == "Line", "the job does not split the input by line",
            "set SplitType='Line'")
    require(job["TransformOutput"].get("AssembleWith") == "Line",
            "the job does not assemble the output by line",
            "set AssembleWith='Line' so output line n belongs to input line n")
    output = job["TransformOutput"]["S3OutputPath"].rstrip("/")
    bucket, _, prefix = output[5:].partition("/")
    key = f"{prefix}/2013-07.csv.out"
    try:
        text = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except ClientError:
        fail(f"s3://{bucket}/{key} does not exist",
             "transform the input object lab09/batch/input/2013-07.csv")
    _, july = _frames()
    lines = [line for line in text.splitlines() if line.strip()]
    require(len(lines) == len(july),
            f"the output has {len(lines):,} predictions, July has {len(july):,} flights",
            "write july[FEATURES] without a header row, one flight per line")
    scores = np.array([float(v) for v in lines])
    require(bool(np.all((scores >= 0) & (scores <= 1))), "the output holds values outside [0, 1]",
            "use the champion model (probabilities)")


def check_cleanup(aws) -> None:
    sm = aws.client("sagemaker")
    # The point is for removing what the lab made: an untouched notebook has nothing to clean up.
    captured = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=f"lab09/capture/{ENDPOINT}/",
                                                MaxKeys=1) if _bucket_exists(aws) else {}
    require(captured.get("KeyCount", 0) > 0, f"nothing to clean up: '{ENDPOINT}' never served traffic",
            "do the lab's tasks first (the clean-up point is for deleting what they created)")
    left = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith(ENDPOINT)]
    require(not left, f"endpoint(s) {left} still exist and bill every hour",
            "delete them with sm.delete_endpoint")
    targets = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[RESOURCE], ScalableDimension=DIMENSION)["ScalableTargets"]
    require(not targets, f"'{RESOURCE}' is still a registered scalable target",
            "deregister_scalable_target (it removes the policies too)")
    for name in (MODEL, CHALLENGER_MODEL):
        try:
            sm.describe_model(ModelName=name)
        except ClientError:
            continue
        fail(f"model '{name}' still exists", "delete it with sm.delete_model")
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs(
        NameContains=ENDPOINT, MaxResults=100)["EndpointConfigs"]]
    require(not configs, f"endpoint configuration(s) {configs} still exist",
            "delete both with sm.delete_endpoint_config (CONFIG and AB_CONFIG)")


def _bucket_exists(aws) -> bool:
    try:
        aws.client("s3").head_bucket(Bucket=aws.bucket)
        return True
    except ClientError:
        return False
