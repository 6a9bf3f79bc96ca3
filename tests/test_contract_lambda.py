"""Contract tests for the Lambda engine (labkit/local/awslambda.py), plain boto3, written from the
Lambda API reference (CreateFunction, Invoke) and the developer guide (Python handler, context
object, logging, timeouts, reserved environment variables)."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "lambda.amazonaws.com"}}]}

HANDLER = '''
import json, os, time
import boto3

def handler(event, context):
    print("got", json.dumps(event, sort_keys=True))
    if event.get("raise"):
        raise KeyError(event["raise"])
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("none"):
        return None
    if event.get("bucket"):
        boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"],
                                      Body=context.aws_request_id.encode())
    return {"function_name": context.function_name, "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn, "request_id": context.aws_request_id,
            "group": context.log_group_name, "stream": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(), "version": context.function_version,
            "colour": os.environ.get("COLOUR"), "region": os.environ.get("AWS_REGION"),
            "buckets": len(boto3.client("s3").list_buckets()["Buckets"])}
'''


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def role(local_aws):
    iam = local_aws.client("iam")
    name = f"lambda-exec-{uuid.uuid4().hex[:8]}"
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]


@pytest.fixture(scope="module")
def function(local_aws, role):
    name = f"fn-{uuid.uuid4().hex[:8]}"
    local_aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Timeout=20,
        MemorySize=256, Code={"ZipFile": _zip({"app.py": HANDLER})},
        Environment={"Variables": {"COLOUR": "teal"}})
    return name


def _invoke(local_aws, name, event, **kwargs):
    response = local_aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def _log_events(local_aws, name, stream=None) -> list[str]:
    logs = local_aws.client("logs")
    group = f"/aws/lambda/{name}"
    streams = [stream] if stream else [s["logStreamName"] for s in
                                       logs.describe_log_streams(logGroupName=group)["logStreams"]]
    return [e["message"] for s in streams
            for e in logs.get_log_events(logGroupName=group, logStreamName=s)["events"]]


def test_request_response_runs_the_handler_with_context_and_environment(local_aws, function):
    local_aws.client("s3").create_bucket(Bucket=f"lambda-sees-{uuid.uuid4().hex[:8]}")
    response, payload = _invoke(local_aws, function, {"hello": 1})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert payload["function_name"] == function and payload["memory"] == "256"
    assert payload["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
    assert payload["group"] == f"/aws/lambda/{function}"
    assert payload["colour"] == "teal" and payload["region"] == "us-east-1"
    assert 15000 < payload["remaining"] <= 20000  # the timeout counts from the handler's start
    assert payload["version"] == "$LATEST"
    assert payload["buckets"] >= 1  # boto3 inside the handler reached the local AWS (its buckets)
    uuid.UUID(payload["request_id"])


def test_logs_start_end_report_and_prints(local_aws, function):
    response, payload = _invoke(local_aws, function, {"logme": "yes"}, LogType="Tail")
    lines = _log_events(local_aws, function, payload["stream"])
    request = payload["request_id"]
    assert lines[0] == f"START RequestId: {request} Version: $LATEST"
    assert 'got {"logme": "yes"}' in lines
    assert lines[-2] == f"END RequestId: {request}"
    assert lines[-1].startswith(f"REPORT RequestId: {request}\tDuration: ")
    assert "\tBilled Duration: " in lines[-1] and "\tMemory Size: 256 MB\t" in lines[-1]
    assert "\tInit Duration: " in lines[-1]
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"END RequestId: {request}" in tail
    assert "/" in payload["stream"] and "[$LATEST]" in payload["stream"]


def test_handler_exception_is_an_unhandled_function_error(local_aws, function):
    response, payload = _invoke(local_aws, function, {"raise": "missing-key"})
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "KeyError"
    assert payload["errorMessage"] == "'missing-key'"
    assert any("/var/task/app.py" in frame and "in handler" in frame for frame in payload["stackTrace"])
    lines = _log_events(local_aws, function)
    assert any(line.startswith("[ERROR] KeyError: 'missing-key'") for line in lines)


def test_timeout_is_enforced_with_aws_message(local_aws, role):
    name = f"fn-slow-{uuid.uuid4().hex[:8]}"
    local_aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="slow.handler", Timeout=1,
        Code={"ZipFile": _zip({"slow.py": "import time\ndef handler(event, context):\n"
                                          "    print('sleeping')\n    time.sleep(30)\n"})})
    started = time.monotonic()
    response, payload = _invoke(local_aws, name, {})
    assert time.monotonic() - started < 15
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    lines = _log_events(local_aws, name)
    assert "sleeping" in lines
    assert any(line.endswith("Task timed out after 1.00 seconds") for line in lines)
    assert lines[-1].endswith("\tStatus: timeout")


def test_none_result_is_null(local_aws, function):
    response, payload = _invoke(local_aws, function, {"none": True})
    assert "FunctionError" not in response and payload is None


def test_event_invocation_returns_202_and_runs_in_background(local_aws, function):
    s3 = local_aws.client("s3")
    bucket = f"lambda-async-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    response = local_aws.client("lambda").invoke(
        FunctionName=function, InvocationType="Event",
        Payload=json.dumps({"bucket": bucket, "key": "done.txt"}))
    assert response["StatusCode"] == 202 and response["Payload"].read() == b""
    deadline = time.monotonic() + 20
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        if keys:
            break
        assert time.monotonic() < deadline, "the asynchronous invocation never ran"
        time.sleep(0.2)
    assert keys == ["done.txt"]


def test_dry_run_runs_nothing(local_aws, role):
    name = f"fn-dry-{uuid.uuid4().hex[:8]}"
    lam = local_aws.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": _zip({"app.py": HANDLER})})
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    logs = local_aws.client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert not groups or not logs.describe_log_streams(logGroupName=groups[0]["logGroupName"])["logStreams"]


def test_code_from_s3(local_aws, role):
    s3, lam = local_aws.client("s3"), local_aws.client("lambda")
    bucket, name = f"lambda-code-{uuid.uuid4().hex[:8]}", f"fn-s3-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="pkg/code.zip",
                  Body=_zip({"pkg/handlers.py": "def run(event, context):\n    return event['x'] * 2\n",
                             "pkg/__init__.py": ""}))
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="pkg.handlers.run",
                        Code={"S3Bucket": bucket, "S3Key": "pkg/code.zip"})
    _, payload = _invoke(local_aws, name, {"x": 21})
    assert payload == 42


@pytest.mark.parametrize("code, variables, message", [
    ({"ZipFile": b"this is not a zip"}, None, "Could not unzip uploaded file"),
    ({"S3Bucket": "no-such-bucket-lambda", "S3Key": "x.zip"}, None, "NoSuchBucket"),
    ("missing-key", None, "NoSuchKey"),
    ("ok", {"AWS_REGION": "eu-west-1"}, "Reserved keys used in this request: AWS_REGION"),
])
def test_create_function_rejects_what_aws_rejects(local_aws, role, code, variables, message):
    s3, lam = local_aws.client("s3"), local_aws.client("lambda")
    if code == "missing-key":
        bucket = f"lambda-empty-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        code = {"S3Bucket": bucket, "S3Key": "absent.zip"}
    elif code == "ok":
        code = {"ZipFile": _zip({"app.py": HANDLER})}
    kwargs = {"Environment": {"Variables": variables}} if variables else {}
    with pytest.raises(ClientError) as error:
        lam.create_function(FunctionName=f"fn-bad-{uuid.uuid4().hex[:8]}", Runtime="python3.12",
                            Role=role, Handler="app.handler", Code=code, **kwargs)
    assert error.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert message in error.value.response["Error"]["Message"]


@pytest.mark.parametrize("handler, error_type, message", [
    ("nomodule.handler", "Runtime.ImportModuleError", "Unable to import module 'nomodule'"),
    ("app.absent", "Runtime.HandlerNotFound", "Handler 'absent' missing on module 'app'"),
])
def test_bad_handler_is_reported_as_aws_does(local_aws, role, handler, error_type, message):
    name = f"fn-h-{uuid.uuid4().hex[:8]}"
    local_aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler=handler,
        Code={"ZipFile": _zip({"app.py": HANDLER})})
    response, payload = _invoke(local_aws, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == error_type and message in payload["errorMessage"]


def test_invalid_payload_and_unknown_function(local_aws, function):
    lam = local_aws.client("lambda")
    with pytest.raises(ClientError) as error:
        lam.invoke(FunctionName=function, Payload=b"{not json")
    assert error.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as error:
        lam.invoke(FunctionName=f"absent-{uuid.uuid4().hex[:6]}", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_updates_change_what_runs_and_are_checked_like_create(local_aws, role):
    lam = local_aws.client("lambda")
    name = f"fn-up-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="m.h",
                        Code={"ZipFile": _zip({"m.py": "def h(e, c):\n    return 1\n"})})
    assert _invoke(local_aws, name, {})[1] == 1
    lam.update_function_code(FunctionName=name,
                             ZipFile=_zip({"m.py": "import os\ndef h(e, c):\n    return os.environ.get('N')\n"}))
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"N": "two"}})
    assert _invoke(local_aws, name, {})[1] == "two"
    for call in (lambda: lam.update_function_code(FunctionName=name, ZipFile=b"not a zip"),
                 lambda: lam.update_function_configuration(
                     FunctionName=name, Environment={"Variables": {"_HANDLER": "x"}})):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "InvalidParameterValueException"
