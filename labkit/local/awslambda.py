"""Lambda engine (Python runtimes): handlers really run, in a subprocess, against the local AWS.

moto stores functions but runs them only in Docker (none here, and none in the grading sandbox).
Hook points: ``LambdaFunction.invoke`` (both ``Invoke`` and ``InvokeAsync`` reach it) and
``LambdaBackend.create_function``. Here:

* ``create_function`` checks the code as AWS does (a readable zip, inline or from S3) and rejects
  AWS's reserved environment variable names;
* an invocation unzips the code (once per code hash), starts the server's own Python on a small
  bootstrap that imports ``module.function`` from ``Handler`` and calls it with the event and a
  context object (``function_name``, ``function_version``, ``invoked_function_arn``,
  ``memory_limit_in_mb``, ``aws_request_id``, ``log_group_name``, ``log_stream_name``,
  ``get_remaining_time_in_millis()``), in an environment with Lambda's variables, the function's
  ``Environment`` and the local AWS endpoint with dummy credentials, so boto3 in the handler calls
  back into this local AWS;
* ``Timeout`` is enforced (the process is killed: "Task timed out after N.00 seconds");
* the handler's output and START / END / REPORT lines go to CloudWatch Logs ``/aws/lambda/<name>``
  in a ``YYYY/MM/DD/[$LATEST]<id>`` stream; ``LogType=Tail`` returns the last 4 KB;
* RequestResponse returns the handler's JSON result, or ``FunctionError: Unhandled`` with AWS's
  ``errorMessage`` / ``errorType`` / ``stackTrace`` document; Event returns 202 at once and runs in
  the background; DryRun runs nothing.

``invoke_async(account, region, arn, payload)`` is what EventBridge and SNS targets call; like
AWS it requires the function's resource policy to let the calling service invoke it.
"""

from __future__ import annotations

import atexit
import base64
import io
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from labkit.local import clock

__all__ = ["invoke_async"]

_log = logging.getLogger("labkit.lambda")
_code_dirs: dict[str, Path] = {}
_code_lock = threading.Lock()
_code_root: Path | None = None
_request = threading.local()

RESERVED_VARIABLES = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}

# The runtime inside the subprocess: stdout/stderr are the function's log; the result goes to a file.
BOOTSTRAP = r'''
import importlib, json, os, resource, sys, time, traceback

request_id, timeout, result_path, ready_fd = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
deadline = None
task_root = os.environ["LAMBDA_TASK_ROOT"]
sys.path.insert(0, task_root)


class LambdaContext:
    def __init__(self):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = os.environ["_LABKIT_INVOKED_ARN"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.aws_request_id = request_id
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self):
        return max(0, int((deadline - time.time()) * 1000))


def finish(payload, error=None):
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    with open(result_path, "w") as out:
        json.dump({"payload": payload, "error": error, "max_memory_mb": usage}, out)


def failure(exc, error_type=None, message=None):
    frames = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in frames if not f.filename.endswith("_labkit_bootstrap.py")]
    stack = [line.replace(task_root, "/var/task") for line in traceback.format_list(frames)]
    document = {"errorMessage": message if message is not None else str(exc),
                "errorType": error_type or type(exc).__name__, "requestId": request_id,
                "stackTrace": stack}
    print(f"[ERROR] {document['errorType']}: {document['errorMessage']}\nTraceback (most recent "
          f"call last):\n" + "".join(stack).rstrip("\n"), file=sys.stderr, flush=True)
    return document


def main():
    with open(os.environ["_LABKIT_EVENT_PATH"]) as source:
        event = json.load(source)
    handler = os.environ["_HANDLER"]
    module_name, _, function_name = handler.rpartition(".")
    try:
        if not module_name:
            raise ValueError(f"Bad handler '{handler}': not enough values to unpack "
                             f"(expected 2, got 1)")
        module = importlib.import_module(module_name.replace("/", "."))
    except ValueError as exc:
        return finish(None, failure(exc, "Runtime.MalformedHandlerName", str(exc)))
    except ImportError as exc:
        return finish(None, failure(exc, "Runtime.ImportModuleError",
                                    f"Unable to import module '{module_name}': {exc}"))
    except SyntaxError as exc:
        return finish(None, failure(exc, "Runtime.UserCodeSyntaxError",
                                    f"Syntax error in module '{module_name}': {exc}"))
    except Exception as exc:
        return finish(None, failure(exc))
    function = getattr(module, function_name, None)
    if function is None:
        exc = AttributeError(function_name)
        return finish(None, failure(exc, "Runtime.HandlerNotFound",
                                    f"Handler '{function_name}' missing on module '{module_name}'"))
    global deadline
    os.write(ready_fd, b"i")  # init is over: the function's timeout starts now, as on AWS
    os.close(ready_fd)
    deadline = time.time() + timeout
    try:
        result = function(event, LambdaContext())
    except Exception as exc:
        return finish(None, failure(exc))
    try:
        payload = json.dumps(result)
    except (TypeError, ValueError) as exc:
        return finish(None, failure(exc, "Runtime.MarshalError",
                                    f"Unable to marshal response: {exc}"))
    finish(payload)


sys.stdout.reconfigure(line_buffering=True)
main()
'''


def _error(code: str, message: str):
    from moto.awslambda.exceptions import LambdaClientError

    return LambdaClientError(code, message)


# --- code -----------------------------------------------------------------------------------------
def _code_dir(fn) -> Path:
    """The function's code unzipped (cached per code hash), the task root of its runtime."""
    global _code_root
    with _code_lock:
        key = f"{fn.function_name}-{fn.code_digest}"
        if key in _code_dirs and _code_dirs[key].exists():
            return _code_dirs[key]
        if _code_root is None:
            _code_root = Path(tempfile.mkdtemp(prefix="labkit-lambda-"))
            atexit.register(shutil.rmtree, _code_root, True)
            (_code_root / "_labkit_bootstrap.py").write_text(BOOTSTRAP)
        target = _code_root / key
        with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as archive:
            archive.extractall(target)  # extractall drops absolute paths and '..' components
        _code_dirs[key] = target
        return target


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, ValueError):
        raise _error("InvalidParameterValueException",
                     "Could not unzip uploaded file. Please check your file, then try to upload "
                     "again.") from None


def _check_spec(account_id: str, spec: dict) -> None:
    """What AWS checks in CreateFunction / UpdateFunctionCode / UpdateFunctionConfiguration."""
    code = spec.get("Code") or {}
    if "ZipFile" in code:
        raw = code["ZipFile"]
        try:
            data = base64.b64decode(raw)
        except Exception:
            data = b""
        _check_zip(data)
    elif "S3Bucket" in code and "S3Key" in code:
        from moto.s3.models import s3_backends

        s3 = s3_backends[account_id]["aws"]
        if code["S3Bucket"] not in s3.buckets:
            raise _error("InvalidParameterValueException",
                         "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error "
                         "Message: The specified bucket does not exist")
        try:
            value = s3.get_object(code["S3Bucket"], code["S3Key"]).value
        except Exception:
            raise _error("InvalidParameterValueException",
                         "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error "
                         "Message: The specified key does not exist.") from None
        _check_zip(value)
    reserved = sorted(set((spec.get("Environment") or {}).get("Variables") or {}) & RESERVED_VARIABLES)
    if reserved:
        raise _error("InvalidParameterValueException",
                     "Lambda was unable to configure your environment variables because the "
                     "environment variables you have provided contains reserved keys that are "
                     f"currently not supported for modification. Reserved keys used in this "
                     f"request: {','.join(reserved)}")


# --- running ------------------------------------------------------------------------------------
def _endpoint() -> str:
    """The local AWS's own TCP endpoint (the server's listening socket, else the environment)."""
    for thread in threading.enumerate():
        if thread.name == "labkit-server":
            server = getattr(getattr(thread, "_target", None), "__self__", None)
            address = getattr(server, "server_address", None)
            if address:
                return f"http://127.0.0.1:{address[1]}"
    return os.environ.get("AWS_ENDPOINT_URL", "")


def _environment(fn, request_id: str, stream: str, event_path: str, task_root: Path,
                 invoked_arn: str) -> dict[str, str]:
    from labkit.backend import scrub_credentials

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "LABKIT_", "PYTHON", "VIRTUAL_ENV"))}
    scrub_credentials(env)
    env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
    env.update({
        "AWS_ENDPOINT_URL": _endpoint(), "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": fn.region, "AWS_DEFAULT_REGION": fn.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}", "_HANDLER": fn.handler or "",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name, "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "LAMBDA_TASK_ROOT": str(task_root), "LAMBDA_RUNTIME_DIR": str(task_root), "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "_LABKIT_EVENT_PATH": event_path, "_LABKIT_INVOKED_ARN": invoked_arn,
    })
    return env


def _write_logs(fn, stream: str, lines: list[str]) -> None:
    from moto.logs.models import logs_backends

    logs = logs_backends[fn.account_id][fn.region]
    logs.ensure_log_group(fn.logs_group_name)
    logs.ensure_log_stream(fn.logs_group_name, stream)
    stamp = int(clock.now().timestamp() * 1000)
    logs.put_log_events(fn.logs_group_name, stream,
                        [{"timestamp": stamp, "message": line} for line in lines])


INIT_LIMIT_SECONDS = 10.0  # AWS's limit on the init phase (imports), outside the function timeout


def _execute(argv: list[str], env: dict, cwd: Path, timeout: float):
    """Run the bootstrap: init (imports) may take up to 10 s, then the handler ``timeout`` seconds.
    Returns (output, timed out, exit code, init milliseconds, monotonic time the handler started)."""
    ready_read, ready_write = os.pipe()
    begun = time.monotonic()
    process = subprocess.Popen([*argv, str(ready_write)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                               start_new_session=True, pass_fds=(ready_write,))
    os.close(ready_write)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()), daemon=True)
    reader.start()
    try:  # readable when the handler starts, or at EOF when the process ended during init
        ready = select.select([ready_read], [], [], INIT_LIMIT_SECONDS)[0]
    finally:
        os.close(ready_read)
    started = time.monotonic()
    timed_out = not ready
    if not timed_out:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the handler's own children too: nothing outlives it
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    reader.join(5)
    if not reader.is_alive():
        process.stdout.close()  # the pipe, else it stays open until the Popen is garbage-collected
    return (b"".join(chunks).decode(errors="replace"), timed_out, process.returncode,
            (started - begun) * 1000, started)


def run(fn, event: Any, invoked_arn: str | None = None) -> tuple[bytes, str | None, str]:
    """Run one invocation; returns (payload, function error or None, the invocation's log text)."""
    request_id = str(uuid.uuid4())
    stream = f"{clock.now():%Y/%m/%d}/[{fn.version}]{uuid.uuid4().hex}"
    timeout = float(fn.timeout or 3)
    started = time.monotonic()
    if not str(fn.run_time or "").startswith("python3"):
        document = {"errorMessage": f"labkit's local AWS runs Python runtimes only; {fn.run_time} "
                                    f"functions need real AWS Lambda",
                    "errorType": "Runtime.InvalidRuntime"}
        lines = [f"START RequestId: {request_id} Version: {fn.version}",
                 f"[ERROR] {document['errorType']}: {document['errorMessage']}"]
        output, error, memory, init_ms = "", document, 0, None
        status = "error"
    else:
        task_root = _code_dir(fn)
        with tempfile.TemporaryDirectory(prefix="labkit-invoke-") as work:
            event_path, result_path = f"{work}/event.json", f"{work}/result.json"
            Path(event_path).write_text(json.dumps(event))
            env = _environment(fn, request_id, stream, event_path, task_root,
                               invoked_arn or fn.function_arn)
            argv = [sys.executable, "-I", "-u", str(task_root.parent / "_labkit_bootstrap.py"),
                    request_id, str(timeout), result_path]
            output, timed_out, returncode, init_ms, started = _execute(argv, env, task_root, timeout)
            result = {}
            if not timed_out:
                try:
                    result = json.loads(Path(result_path).read_text())
                except (OSError, ValueError):
                    result = {}
            memory = int(result.get("max_memory_mb") or 0)
        lines = [f"START RequestId: {request_id} Version: {fn.version}"]
        lines += output.splitlines()
        if timed_out:
            message = f"Task timed out after {timeout:.2f} seconds"
            lines.append(f"{clock.now():%Y-%m-%dT%H:%M:%S.%f}"[:-3] + f"Z {request_id} {message}")
            error, status = {"errorType": "Sandbox.Timedout",
                             "errorMessage": f"RequestId: {request_id} Error: {message}"}, "timeout"
        elif result:
            error, status = result.get("error"), "error" if result.get("error") else None
        else:
            error = {"errorType": "Runtime.ExitError",
                     "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                                     f"exit status {returncode}"}
            status = "error"
        payload = None if error else result.get("payload")
    duration = (time.monotonic() - started) * 1000
    lines.append(f"END RequestId: {request_id}")
    report = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: "
              f"{int(duration) + 1} ms\tMemory Size: {fn.memory_size} MB\tMax Memory Used: "
              f"{memory} MB")
    if init_ms is not None:
        report += f"\tInit Duration: {init_ms:.2f} ms"  # every local invocation is a cold start
    if status:
        report += f"\tStatus: {status}"
        if status == "error" and error.get("errorType", "").startswith("Runtime."):
            report += f"\tError Type: {error['errorType']}"
    lines.append(report)
    try:
        _write_logs(fn, stream, lines)
    except Exception:
        _log.exception("could not write the logs of %s", fn.function_name)
    text = "\n".join(lines) + "\n"
    if error:
        return json.dumps(error).encode(), "Unhandled", text
    return (payload if payload is not None else "null").encode(), None, text


def _event_of(body: Any) -> Any:
    if body in (None, b"", ""):
        return {}
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise _error("InvalidRequestContentException",
                     f"Could not parse request body into json: Could not parse payload into json: "
                     f"{exc}") from None


def _invoke(self, body, request_headers, response_headers):
    """Replaces moto's ``LambdaFunction.invoke`` (Docker) with a real run of the handler."""
    event = _event_of(body)
    kind = request_headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if getattr(_request, "invoke_async", False):
        kind = "Event"
    if kind == "DryRun":
        return b""
    if kind == "Event":
        from labkit.local.server import background

        background(run, self, event)
        response_headers["x-amz-executed-version"] = str(self.version)
        return b""
    payload, function_error, text = run(self, event)
    if function_error:
        response_headers["x-amz-function-error"] = function_error
    response_headers["x-amz-executed-version"] = str(self.version)
    response_headers["x-amz-log-result"] = base64.b64encode(text.encode()[-4096:]).decode()
    return payload


def _function(account: str, region: str, arn: str):
    from moto.awslambda.models import lambda_backends

    match = re.match(r"arn:[^:]+:lambda:[^:]+:\d+:function:([^:]+)(?::(.+))?$", arn)
    if not match:
        raise ValueError(f"not a Lambda function ARN: {arn}")
    return lambda_backends[account][region].get_function(match.group(1), match.group(2))


def allows(fn, principal: str) -> bool:
    """Whether the function's resource policy lets ``principal`` (a service) invoke it."""
    for statement in getattr(fn.policy, "statements", []):
        who = statement.get("Principal")
        who = who.get("Service", who.get("AWS")) if isinstance(who, dict) else who
        who = who if isinstance(who, list) else [who]
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect", "Allow") == "Allow" and (principal in who or "*" in who) \
                and any(a in {"lambda:InvokeFunction", "lambda:*", "*"} for a in actions):
            return True
    return False


def invoke_async(account: str, region: str, arn: str, payload: bytes,
                 principal: str = "events.amazonaws.com") -> None:
    """An asynchronous invocation by an AWS service (EventBridge, SNS), in the background."""
    fn = _function(account, region, arn)
    if not allows(fn, principal):
        _log.warning("%s may not invoke %s: its resource policy has no statement for it "
                     "(add_permission)", principal, arn)
        return
    from labkit.local.server import background

    background(run, fn, _event_of(payload), arn)


# --- install --------------------------------------------------------------------------------------
_ORIGINAL: dict[str, Any] = {}


def _create_function(self, spec):
    _check_spec(self.account_id, spec)
    return _ORIGINAL["create_function"](self, spec)


def _response_invoke_async(self):
    _request.invoke_async = True
    try:
        return _ORIGINAL["invoke_async"](self)
    finally:
        _request.invoke_async = False


def _send_sns_message(self, function_name, message, subject=None, qualifier=None):
    """SNS invokes a subscribed function asynchronously (moto's call would block the publish),
    with the SNS event record (moto does not pass the topic ARN down to here)."""
    from labkit.local.server import background

    fn = self._lambdas.get_function_by_name_or_arn_with_qualifier(function_name, qualifier)
    stamp = f"{clock.now():%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"
    event = {"Records": [{"EventVersion": "1.0", "EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": str(uuid.uuid4()), "Subject": subject,
        "Message": message, "Timestamp": stamp, "SignatureVersion": "1", "MessageAttributes": {}}}]}
    background(run, fn, event)


def _update_function_code(self, function_name, qualifier, body):
    _check_spec(self.account_id, {"Code": body})
    return _ORIGINAL["update_function_code"](self, function_name, qualifier, body)


def _update_function_configuration(self, function_name, qualifier, body):
    _check_spec(self.account_id, {"Environment": body.get("Environment")})
    return _ORIGINAL["update_function_configuration"](self, function_name, qualifier, body)


def install() -> None:
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda.responses import LambdaResponse

    for name, replacement in (("create_function", _create_function),
                              ("update_function_code", _update_function_code),
                              ("update_function_configuration", _update_function_configuration)):
        _ORIGINAL.setdefault(name, getattr(LambdaBackend, name))
        setattr(LambdaBackend, name, replacement)
    LambdaFunction.invoke = _invoke
    LambdaBackend.send_sns_message = _send_sns_message
    _ORIGINAL.setdefault("invoke_async", LambdaResponse.invoke_async)
    LambdaResponse.invoke_async = _response_invoke_async
