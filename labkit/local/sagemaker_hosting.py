"""SageMaker hosting engine: endpoints that load the model artifact and serve real predictions.

moto stores models, endpoint configs and endpoints but serves canned ``b"body"`` for any endpoint
name and never runs a model (see shared notes: moto-facts). This engine patches moto so that:

- ``create_endpoint`` / ``update_endpoint`` move Creating/Updating → InService on the background
  pool while the ``model.tar.gz`` of every production variant is downloaded, unpacked and loaded
  (the failure of a load → Failed with the container's error as FailureReason);
- ``invoke_endpoint`` runs the SageMaker inference contract (``model_fn`` / ``input_fn`` /
  ``predict_fn`` / ``output_fn`` or ``transform_fn`` from the inference script, else the defaults of
  the scikit-learn or XGBoost serving container), picks a variant by weight (or TargetVariant),
  writes data capture JSONL to S3 and emits the AWS/SageMaker endpoint metrics;
- batch transform jobs really transform their S3 input into ``.out`` files;
- describe responses carry what the v3 SDK's models need (no empty VpcConfig, DataCaptureConfig
  with CaptureStatus / CurrentSamplingPercentage, weights and instance counts).
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import logging
import random
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from labkit.local import clock, events

log = logging.getLogger("labkit.sagemaker_hosting")

ACCOUNT = "123456789012"
_lock = threading.RLock()
# (account, region, endpoint name) -> _EndpointRuntime
_endpoints: dict[tuple[str, str, str], "_EndpointRuntime"] = {}
_pending: dict[tuple[str, str, str], Future] = {}
_workdir: str | None = None
_rng = random.Random()
# How long a describe call waits for a load that is already running before it answers
# "Creating": short loads look instant (no 30-second waiter sleeps), long ones show their state.
DESCRIBE_GRACE_SECONDS = 5.0


class InferenceError(Exception):
    """The model container answered with an error (becomes AWS's ModelError)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------------------------
# S3 access (moto's backend, in process)
# --------------------------------------------------------------------------------------------
def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` or one of the https forms AWS accepts for a model artifact
    (``https://bucket.s3[-.]region.amazonaws.com/key``, ``https://s3[-.]region.amazonaws.com/bucket/key``)."""
    if uri and uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        return bucket, key
    parsed = _https_s3(uri)
    if parsed is None:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return parsed


_S3_HOST = re.compile(r"^(?:(?P<bucket>.+)\.)?s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?"
                      r"\.amazonaws\.com(?:\.cn)?$")


def _https_s3(uri: str | None) -> tuple[str, str] | None:
    from urllib.parse import unquote, urlsplit

    if not uri or not uri.startswith("https://"):
        return None
    parts = urlsplit(uri)
    match = _S3_HOST.match(parts.hostname or "")
    if match is None:
        return None
    path = unquote(parts.path.lstrip("/"))
    if match.group("bucket"):                       # virtual-hosted style
        return match.group("bucket"), path
    bucket, _, key = path.partition("/")            # path style
    return (bucket, key) if bucket else None


def s3_backend(account: str = ACCOUNT):
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"]


def s3_get(uri: str, account: str = ACCOUNT) -> bytes:
    bucket, key = split_s3_uri(uri)
    obj = s3_backend(account).get_object(bucket, key)
    if obj is None:
        raise FileNotFoundError(uri)
    return obj.value


def s3_put(uri: str, data: bytes, account: str = ACCOUNT) -> None:
    bucket, key = split_s3_uri(uri)
    s3_backend(account).put_object(bucket, key, data)


def s3_list(uri: str, account: str = ACCOUNT) -> list[str]:
    """Keys (full s3:// URIs) under a prefix, sorted."""
    bucket, prefix = split_s3_uri(uri)
    keys = s3_backend(account).get_bucket(bucket).keys
    return sorted(f"s3://{bucket}/{k}" for k in list(keys.keys()) if k.startswith(prefix))


def _scratch() -> str:
    global _workdir
    if _workdir is None:
        _workdir = tempfile.mkdtemp(prefix="labkit-hosting-")
    return _workdir


# --------------------------------------------------------------------------------------------
# The inference contract
# --------------------------------------------------------------------------------------------
def _decode_default(body: bytes, content_type: str):
    """The sagemaker-inference toolkit's decoders (scikit-learn container): JSON, CSV, NPY."""
    import numpy as np

    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return np.array(json.loads(body))
    if ctype == "text/csv":
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return np.genfromtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    if ctype == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise InferenceError(415, f"Content type {content_type} is not supported by this framework.\n"
                              "            Please implement input_fn to to deserialize the request data "
                              "or an output_fn to\n            serialize the response. For more "
                              "information, see the SageMaker Python SDK README.")


def _encode_default(prediction, accept: str) -> tuple[bytes, str]:
    import numpy as np

    ctype = (accept or "application/json").split(";")[0].strip().lower()
    if ctype in ("*/*", ""):
        ctype = "application/json"
    array = np.asarray(prediction)
    if ctype == "application/json":
        return json.dumps(array.tolist()).encode(), "application/json"
    if ctype == "text/csv":
        out = io.StringIO()
        np.savetxt(out, array if array.ndim else array.reshape(1), delimiter=",", fmt="%s")
        return out.getvalue().encode(), "text/csv"
    if ctype == "application/x-npy":
        out = io.BytesIO()
        np.save(out, array)
        return out.getvalue(), "application/x-npy"
    raise InferenceError(406, f"Accept type {accept} is not supported by this framework.")


def _xgb_decode_default(body: bytes, content_type: str):
    """The XGBoost container's decoders: CSV (no header, no label) and LIBSVM."""
    import numpy as np
    import xgboost as xgb

    ctype = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if ctype == "text/csv":
        rows = np.genfromtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
        return xgb.DMatrix(rows)
    if ctype == "text/libsvm":
        from sklearn.datasets import load_svmlight_file

        features, _ = load_svmlight_file(io.BytesIO(text.encode()))
        return xgb.DMatrix(features)
    raise InferenceError(415, f"Content type {content_type} is not supported by this framework.")


def _xgb_encode_default(prediction, accept: str) -> tuple[bytes, str]:
    import numpy as np

    ctype = (accept or "text/csv").split(";")[0].strip().lower()
    values = np.asarray(prediction).tolist()
    if ctype in ("text/csv", "*/*", ""):
        lines = [",".join(map(str, v)) if isinstance(v, list) else str(v) for v in values]
        return ("\n".join(lines) + "\n").encode(), "text/csv"
    if ctype == "application/json":
        return json.dumps({"predictions": [{"score": v} for v in values]}).encode(), "application/json"
    raise InferenceError(406, f"Accept type {accept} is not supported by this framework.")


def _xgb_model_fn(model_dir: str):
    import os
    import pickle

    import xgboost as xgb

    path = os.path.join(model_dir, "xgboost-model")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file 'xgboost-model' found in {model_dir} "
                                f"(the XGBoost container loads that name)")
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        return pickle.loads(raw)
    except Exception:
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))  # JSON or UBJSON, detected from the bytes
        return booster


def _xgb_predict_fn(data, model):
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return model.predict(data)
    if hasattr(model, "get_booster"):
        return model.get_booster().predict(data)
    return model.predict(data)


def _sklearn_model_fn(_model_dir: str):
    raise NotImplementedError("Please provide a model_fn implementation.\nSee documentation for "
                              "model_fn at https://github.com/aws/sagemaker-python-sdk")


def _sklearn_predict_fn(data, model):
    return model.predict(data)


@dataclass
class Predictor:
    """A loaded model plus its handler functions: what one serving container holds in memory."""

    model: Any
    input_fn: Callable
    predict_fn: Callable
    output_fn: Callable
    transform_fn: Callable | None = None
    framework: str = "sklearn"
    model_dir: str = ""
    default_accept: str = "application/json"

    @property
    def model_dirs(self) -> list[str]:
        return [self.model_dir]

    def __call__(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        accept = accept or self.default_accept
        if accept == "*/*":
            accept = self.default_accept
        try:
            if self.transform_fn is not None:
                result = self.transform_fn(self.model, body, content_type, accept)
                if isinstance(result, tuple):
                    data, ctype = result[0], result[1]
                else:
                    data, ctype = result, accept
            else:
                data = self.input_fn(body, content_type)
                prediction = self.predict_fn(data, self.model)
                result = self.output_fn(prediction, accept)
                if isinstance(result, tuple):
                    data, ctype = result[0], result[1]
                else:
                    data, ctype = result, accept
        except InferenceError:
            raise
        except Exception as exc:  # the container answers 500 with the exception text
            raise InferenceError(500, f"{type(exc).__name__}: {exc}") from None
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, (bytes, bytearray)):
            data = json.dumps(data).encode() if not hasattr(data, "tolist") else \
                json.dumps(data.tolist()).encode()
        return bytes(data), ctype


def _framework_of(image: str) -> str:
    image = (image or "").lower()
    if "xgboost" in image:
        return "xgboost"
    return "sklearn"


def _load_script(path: str, code_dir: str):
    name = f"labkit_inference_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with _lock:
        sys.path.insert(0, code_dir)
        try:
            spec.loader.exec_module(module)
        finally:
            try:
                sys.path.remove(code_dir)
            except ValueError:
                pass
    return module


def load_predictor(container: dict, account: str = ACCOUNT) -> Predictor:
    """Download and unpack ``ModelDataUrl``, find the inference script, load the model.

    The script is ``SAGEMAKER_PROGRAM`` from ``SAGEMAKER_SUBMIT_DIRECTORY`` (an S3 tar.gz) or from
    the artifact's ``code/`` folder; without it the framework container's defaults apply.
    """
    import os

    env = dict(container.get("Environment") or {})
    image = container.get("Image") or ""
    framework = _framework_of(image)
    model_dir = tempfile.mkdtemp(prefix="model-", dir=_scratch())
    data_url = container.get("ModelDataUrl")
    if data_url:
        raw = s3_get(data_url, account)
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as archive:
                archive.extractall(model_dir, filter="data")
        except tarfile.TarError as exc:
            raise RuntimeError(f"Failed to extract model data archive from URL \"{data_url}\". "
                               f"Please ensure that the object located at the URL is a valid tar.gz "
                               f"archive ({exc}).") from None
    program = env.get("SAGEMAKER_PROGRAM")
    code_dir = os.path.join(model_dir, "code")
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if submit.startswith("s3://"):
        code_dir = tempfile.mkdtemp(prefix="code-", dir=_scratch())
        with tarfile.open(fileobj=io.BytesIO(s3_get(submit, account)), mode="r:*") as archive:
            archive.extractall(code_dir, filter="data")
    script = None
    if program:
        script = os.path.join(code_dir, program)
        if not os.path.exists(script):
            raise FileNotFoundError(f"SAGEMAKER_PROGRAM {program!r} not found in {submit or 'code/'}")
    elif os.path.exists(os.path.join(code_dir, "inference.py")):
        script = os.path.join(code_dir, "inference.py")
    module = _load_script(script, code_dir) if script else None

    def pick(name, default):
        fn = getattr(module, name, None) if module else None
        return fn if callable(fn) else default

    if framework == "xgboost":
        defaults = (_xgb_model_fn, _xgb_decode_default, _xgb_predict_fn, _xgb_encode_default, "text/csv")
    else:
        defaults = (_sklearn_model_fn, _decode_default, _sklearn_predict_fn, _encode_default,
                    "application/json")
    default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", defaults[4])
    model = pick("model_fn", defaults[0])(model_dir)
    input_fn, transform_fn = pick("input_fn", defaults[1]), pick("transform_fn", None)
    if framework == "sklearn":
        input_fn = _text_for_utf8_types(input_fn, body_at=0)
        transform_fn = transform_fn and _text_for_utf8_types(transform_fn, body_at=1)
    return Predictor(model=model, input_fn=input_fn,
                     predict_fn=pick("predict_fn", defaults[2]), output_fn=pick("output_fn", defaults[3]),
                     transform_fn=transform_fn, framework=framework,
                     model_dir=model_dir, default_accept=default_accept)


# The scikit-learn container's request decodes these content types to str before the handlers
# see them (sagemaker-containers' ``Request.content``: UTF8_TYPES); other types stay bytes.
_UTF8_TYPES = ("application/json", "text/csv")


def _text_for_utf8_types(fn: Callable, body_at: int) -> Callable:
    def handler(*args):
        args = list(args)
        ctype = (args[body_at + 1] or "").split(";")[0].strip().lower()
        if ctype in _UTF8_TYPES and isinstance(args[body_at], (bytes, bytearray)):
            args[body_at] = bytes(args[body_at]).decode("utf-8")
        return fn(*args)

    return handler


def _model_containers(backend, model_name: str) -> list[dict]:
    model = backend._models.get(model_name)
    if model is None:
        raise RuntimeError(f"Could not find model \"{model_name}\".")
    containers = [model.primary_container] if model.primary_container else list(model.containers or [])
    if not containers:
        raise RuntimeError(f"model {model_name} has no container")
    return containers


@dataclass
class PipelinePredictor:
    """An inference pipeline (``Containers=[...]``, serial mode): each container's response is the
    next one's request, with its response content type as the next request's; only the last
    container sees the caller's Accept, the others answer in their default Accept."""

    stages: list[Predictor]

    @property
    def default_accept(self) -> str:
        return self.stages[-1].default_accept

    @property
    def model_dirs(self) -> list[str]:
        return [stage.model_dir for stage in self.stages]

    def __call__(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        for stage in self.stages[:-1]:
            body, content_type = stage(body, content_type, None)
        return self.stages[-1](body, content_type, accept)


def load_model_predictor(backend, model_name: str, account: str = ACCOUNT):
    """What the model's containers serve: one Predictor, or a PipelinePredictor for several."""
    stages = [load_predictor(c, account) for c in _model_containers(backend, model_name)]
    return stages[0] if len(stages) == 1 else PipelinePredictor(stages)


# --------------------------------------------------------------------------------------------
# Endpoint runtime state
# --------------------------------------------------------------------------------------------
@dataclass
class _Variant:
    name: str
    model_name: str
    predictor: Predictor
    weight: float


@dataclass
class _CaptureFile:
    uri: str
    hour: str
    lines: list = field(default_factory=list)


@dataclass
class _EndpointRuntime:
    account: str
    region: str
    name: str
    variants: dict[str, _Variant]
    capture: dict | None
    files: dict[str, _CaptureFile] = field(default_factory=dict)


def _load_variants(backend, account: str, production_variants: list[dict]) -> dict[str, _Variant]:
    variants = {}
    for pv in production_variants:
        try:
            predictor = load_model_predictor(backend, pv["ModelName"], account)
        except Exception as exc:
            raise RuntimeError(f"The primary container for production variant {pv['VariantName']} did "
                               f"not pass the ping health check: {type(exc).__name__}: {exc}") from None
        weight = float(pv.get("InitialVariantWeight", 1.0) if pv.get("InitialVariantWeight")
                       is not None else 1.0)
        variants[pv["VariantName"]] = _Variant(pv["VariantName"], pv["ModelName"], predictor, weight)
    return variants


def _capture_config(config: dict | None) -> dict | None:
    if not config or not config.get("EnableCapture"):
        return None
    return config


def _deploy(backend, endpoint, config: dict, previous: "_EndpointRuntime | None") -> None:
    """Background work of create/update: load every variant, then go InService (or Failed)."""
    key = (backend.account_id, backend.region_name, endpoint.endpoint_name)
    try:
        variants = _load_variants(backend, backend.account_id, config["ProductionVariants"])
    except Exception as exc:
        endpoint.failure_reason = str(exc)[:1024]
        if previous is not None:  # a failed update rolls back to the running config
            endpoint.endpoint_status = "InService"
        else:
            endpoint.endpoint_status = "Failed"
        endpoint.last_modified_time = clock.now()
        return
    runtime = _EndpointRuntime(backend.account_id, backend.region_name, endpoint.endpoint_name,
                               variants, _capture_config(config.get("DataCaptureConfig")))
    with _lock:
        _endpoints[key] = runtime
    endpoint.endpoint_config_name = config["EndpointConfigName"]
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.data_capture_config = config.get("DataCaptureConfig") or {}
    endpoint.failure_reason = None
    endpoint.endpoint_status = "InService"
    endpoint.last_modified_time = clock.now()


def _start_deploy(backend, endpoint, config: dict, previous=None) -> None:
    from labkit.local.server import background

    key = (backend.account_id, backend.region_name, endpoint.endpoint_name)
    events.endpoint_state_change(endpoint)  # Creating / Updating
    _pending[key] = future = background(_deploy, backend, endpoint, config, previous)
    future.add_done_callback(lambda _: events.endpoint_state_change(endpoint))


def _await_pending(backend, endpoint_name: str, timeout: float = DESCRIBE_GRACE_SECONDS) -> None:
    future = _pending.get((backend.account_id, backend.region_name, endpoint_name))
    if future is not None:
        try:
            future.result(timeout=timeout)
        except Exception:
            pass


# --------------------------------------------------------------------------------------------
# moto patches: sagemaker control plane
# --------------------------------------------------------------------------------------------
def _patch_control_plane() -> None:
    from moto.sagemaker import models as sm_models
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, Model, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    original_create = SageMakerModelBackend.create_endpoint
    original_delete = SageMakerModelBackend.delete_endpoint
    original_describe = SageMakerModelBackend.describe_endpoint

    def create_endpoint(self, endpoint_name, endpoint_config_name, tags):
        """Validate like AWS, then load the variants on the background pool (Creating)."""
        if endpoint_name in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Cannot create already existing endpoint \"{arn}\".")
        if endpoint_config_name not in self.endpoint_configs:
            arn = sm_models.FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id,
                                                             self.region_name)
            raise ValidationError(message=f"Could not find endpoint configuration \"{arn}\".")
        endpoint = original_create(self, endpoint_name, endpoint_config_name, tags)
        endpoint.endpoint_status = "Creating"
        endpoint.creation_time = endpoint.last_modified_time = clock.now()
        config = self.describe_endpoint_config(endpoint_config_name)
        _start_deploy(self, endpoint, config)
        return endpoint

    def describe_endpoint(self, endpoint_name):
        if endpoint_name in self.endpoints and \
                self.endpoints[endpoint_name].endpoint_status in ("Creating", "Updating"):
            _await_pending(self, endpoint_name)
        response = original_describe(self, endpoint_name)
        endpoint = self.endpoints[endpoint_name]
        runtime = _endpoints.get((self.account_id, self.region_name, endpoint_name))
        variants = []
        for pv in response.get("ProductionVariants", []):
            pv = dict(pv)
            pv.setdefault("CurrentWeight", 1.0)
            pv.setdefault("DesiredWeight", pv["CurrentWeight"])
            pv.setdefault("CurrentInstanceCount", 1)
            pv.setdefault("DesiredInstanceCount", pv["CurrentInstanceCount"])
            if runtime and pv["VariantName"] in runtime.variants:
                containers = _model_containers(self, runtime.variants[pv["VariantName"]].model_name)
                images = [c["Image"] for c in containers if c.get("Image")]
                if images:
                    pv["DeployedImages"] = [{"SpecifiedImage": image, "ResolvedImage": image,
                                             "ResolutionTime": endpoint.creation_time} for image in images]
            variants.append(pv)
        response["ProductionVariants"] = variants
        capture = endpoint.data_capture_config or {}
        if capture:
            response["DataCaptureConfig"] = {
                "EnableCapture": bool(capture.get("EnableCapture")),
                "CaptureStatus": "Started" if capture.get("EnableCapture") else "Stopped",
                "CurrentSamplingPercentage": int(capture.get("InitialSamplingPercentage", 0)),
                "DestinationS3Uri": capture.get("DestinationS3Uri", ""),
                **({"KmsKeyId": capture["KmsKeyId"]} if capture.get("KmsKeyId") else {}),
            }
        else:
            response.pop("DataCaptureConfig", None)
        if not response.get("FailureReason"):
            response.pop("FailureReason", None)
        return response

    def delete_endpoint(self, endpoint_name):
        original_delete(self, endpoint_name)
        with _lock:
            runtime = _endpoints.pop((self.account_id, self.region_name, endpoint_name), None)
            _pending.pop((self.account_id, self.region_name, endpoint_name), None)
        for variant in (runtime.variants.values() if runtime else []):
            for model_dir in variant.predictor.model_dirs:
                shutil.rmtree(model_dir, ignore_errors=True)  # the unpacked artifacts

    def update_endpoint(self, endpoint_name, endpoint_config_name):
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint \"{arn}\".")
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint \"{endpoint.arn}\".")
        if endpoint_config_name not in self.endpoint_configs:
            arn = sm_models.FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id,
                                                             self.region_name)
            raise ValidationError(message=f"Could not find endpoint configuration \"{arn}\".")
        endpoint.endpoint_status = "Updating"
        endpoint.last_modified_time = clock.now()
        previous = _endpoints.get((self.account_id, self.region_name, endpoint_name))
        _start_deploy(self, endpoint, self.describe_endpoint_config(endpoint_config_name), previous)
        return endpoint.arn

    original_weights = SageMakerModelBackend.update_endpoint_weights_and_capacities

    def update_weights(self, endpoint_name, desired_weights_and_capacities):
        arn = original_weights(self, endpoint_name, desired_weights_and_capacities)
        runtime = _endpoints.get((self.account_id, self.region_name, endpoint_name))
        if runtime:
            for item in desired_weights_and_capacities:
                variant = runtime.variants.get(item.get("VariantName"))
                if variant is not None and item.get("DesiredWeight") is not None:
                    variant.weight = float(item["DesiredWeight"])
        return arn

    SageMakerModelBackend.create_endpoint = create_endpoint
    SageMakerModelBackend.describe_endpoint = describe_endpoint
    SageMakerModelBackend.delete_endpoint = delete_endpoint
    SageMakerModelBackend.update_endpoint = update_endpoint
    SageMakerModelBackend.update_endpoint_weights_and_capacities = update_weights

    def response_update_endpoint(self):
        arn = self.sagemaker_backend.update_endpoint(self._get_param("EndpointName"),
                                                     self._get_param("EndpointConfigName"))
        from moto.core.responses import ActionResult

        return ActionResult({"EndpointArn": arn})

    SageMakerResponse.update_endpoint = response_update_endpoint

    # describe_model: moto answers VpcConfig: {} (the v3 SDK's pydantic models reject it) and
    # omits EnableNetworkIsolation's real default; drop empty fields like AWS does.
    original_model_response = Model.response_object

    def model_response(self):
        response = original_model_response.fget(self)
        if not response.get("VpcConfig"):
            response.pop("VpcConfig", None)
        if not response.get("Containers"):
            response.pop("Containers", None)
        if not response.get("PrimaryContainer"):
            response.pop("PrimaryContainer", None)
        if not response.get("Tags"):
            response.pop("Tags", None)
        response.setdefault("CreationTime", self.creation_time)
        return response

    Model.response_object = property(model_response)

    original_create_model = SageMakerModelBackend.create_model

    def create_model(self, **kwargs):
        name = kwargs.get("model_name")
        if name in self._models:
            arn = sm_models.arn_formatter("model", name, self.account_id, self.region_name)
            raise ValidationError(message=f"Cannot create already existing model \"{arn}\".")
        return original_create_model(self, **kwargs)

    SageMakerModelBackend.create_model = create_model

    original_create_config = SageMakerModelBackend.create_endpoint_config

    def create_endpoint_config(self, endpoint_config_name, production_variants, *args, **kwargs):
        if endpoint_config_name in self.endpoint_configs:
            arn = sm_models.FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id,
                                                             self.region_name)
            raise ValidationError(message=f"Cannot create already existing endpoint configuration "
                                          f"\"{arn}\".")
        names = [pv.get("VariantName") for pv in production_variants or []]
        if len(set(names)) != len(names):
            raise ValidationError(message="Production variant names must be unique.")
        capture = kwargs.get("data_capture_config") or (args[0] if args else None)
        if capture and capture.get("EnableCapture"):
            pct = capture.get("InitialSamplingPercentage")
            if pct is None or not 0 <= int(pct) <= 100:
                raise ValidationError(message="InitialSamplingPercentage must be between 0 and 100.")
            if not str(capture.get("DestinationS3Uri", "")).startswith(("s3://", "https://")):
                raise ValidationError(message="DestinationS3Uri must be an S3 URI.")
        return original_create_config(self, endpoint_config_name, production_variants, *args, **kwargs)

    SageMakerModelBackend.create_endpoint_config = create_endpoint_config


# --------------------------------------------------------------------------------------------
# sagemaker-runtime invoke_endpoint
# --------------------------------------------------------------------------------------------
def _error(status: int, code: str, message: str, **extra) -> tuple[int, dict, str]:
    body = {"__type": code, "message": message, **extra}
    # moto takes the status from the "status" header of a returned tuple
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code, "status": status}, \
        json.dumps(body)


def invoke(account: str, region: str, endpoint_name: str, body: bytes, content_type: str,
           accept: str | None, target_variant: str | None = None,
           inference_id: str | None = None) -> tuple[bytes, str, str]:
    """Run one invocation; returns (body, content type, variant) or raises LookupError /
    InferenceError. Also used by the benchmark to measure the emulation overhead."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[account][region]
    endpoint = backend.endpoints.get(endpoint_name)
    runtime = _endpoints.get((account, region, endpoint_name))
    if endpoint is not None and endpoint.endpoint_status == "Creating" and runtime is None:
        _await_pending(backend, endpoint_name, timeout=60)  # (an Updating endpoint keeps serving)
        runtime = _endpoints.get((account, region, endpoint_name))
    if endpoint is None or runtime is None or endpoint.endpoint_status not in ("InService", "Updating"):
        raise LookupError(f"Endpoint {endpoint_name} of account {account} not found.")
    if target_variant:
        variant = runtime.variants.get(target_variant)
        if variant is None:
            raise KeyError(target_variant)
    else:
        variants = list(runtime.variants.values())
        weights = [max(v.weight, 0.0) for v in variants]
        variant = _rng.choices(variants, weights=weights)[0] if sum(weights) > 0 else variants[0]
    started = time.perf_counter()
    error = None
    try:
        out, out_type = variant.predictor(body, content_type, accept)
    except InferenceError as exc:
        error = exc
    latency_us = (time.perf_counter() - started) * 1e6
    _record_metrics(account, region, endpoint_name, variant.name, latency_us, error)
    if error is not None:
        raise error
    _capture(runtime, variant.name, body, content_type, out, out_type, inference_id)
    return out, out_type, variant.name


def _patch_runtime() -> None:
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    def invoke_endpoint(self):
        """Real inference (the endpoint name comes from the path; moto's backend never sees it)."""
        from urllib.parse import unquote

        endpoint_name = unquote(self.path.split("?")[0].split("/")[2])
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
        content_type = headers.get("content-type", "application/octet-stream")
        accept = headers.get("accept")
        target = headers.get("x-amzn-sagemaker-target-variant")
        inference_id = headers.get("x-amzn-sagemaker-inference-id")
        account = self.current_account
        try:
            out, out_type, variant = invoke(account, self.region, endpoint_name, body, content_type,
                                            accept, target, inference_id)
        except LookupError as exc:
            if isinstance(exc, KeyError):
                return _error(400, "ValidationException",
                              f"Variant {target} not found for endpoint {endpoint_name}.")
            return _error(400, "ValidationException", str(exc))
        except InferenceError as exc:
            kind = "client" if 400 <= exc.status < 500 else "server"
            log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
            message = (f"Received {kind} error ({exc.status}) from primary with message "
                       f"\"{exc.message}\". See https://{self.region}.console.aws.amazon.com/cloudwatch/"
                       f"home?region={self.region}#logEventViewer:group={log_group} in account "
                       f"{account} for more information.")
            return _error(424, "ModelError", message, OriginalStatusCode=exc.status,
                          OriginalMessage=exc.message,
                          LogStreamArn=f"arn:aws:logs:{self.region}:{account}:log-group:{log_group}")
        return 200, {"Content-Type": out_type, "x-Amzn-Invoked-Production-Variant": variant}, out

    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
    SageMakerRuntimeResponse.use_raw_body = True


# --------------------------------------------------------------------------------------------
# Data capture
# --------------------------------------------------------------------------------------------
CAPTURE_FILE_RECORDS = 500


def _encoding(content_type: str, config: dict, output: bool) -> str:
    ctype = (content_type or "").split(";")[0].strip().lower()
    header = config.get("CaptureContentTypeHeader") or {}
    csv_types = [t.lower() for t in header.get("CsvContentTypes", ["text/csv"])]
    json_types = [t.lower() for t in header.get("JsonContentTypes", ["application/json"])]
    if ctype in csv_types:
        return "CSV"
    if ctype in json_types:
        return "JSON"
    return "BASE64"


def _payload(data: bytes, content_type: str, mode: str, config: dict) -> dict:
    encoding = _encoding(content_type, config, mode == "OUTPUT")
    text = base64.b64encode(data).decode() if encoding == "BASE64" else data.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def _capture(runtime: _EndpointRuntime, variant: str, body: bytes, content_type: str, out: bytes,
             out_type: str, inference_id: str | None) -> None:
    config = runtime.capture
    if not config:
        return
    pct = float(config.get("InitialSamplingPercentage", 0))
    if pct <= 0 or (pct < 100 and _rng.random() * 100 >= pct):
        return
    modes = {o.get("CaptureMode") for o in config.get("CaptureOptions") or []} or {"Input", "Output"}
    now = clock.now()
    data: dict[str, Any] = {}
    if "Input" in modes:
        data["endpointInput"] = _payload(body, content_type, "INPUT", config)
    if "Output" in modes:
        data["endpointOutput"] = _payload(out, out_type, "OUTPUT", config)
    metadata = {"eventId": str(uuid.uuid4()),
                "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"}
    if inference_id:
        metadata["inferenceId"] = inference_id
    line = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})
    hour = now.strftime("%Y/%m/%d/%H")
    with _lock:
        current = runtime.files.get(variant)
        if current is None or current.hour != hour or len(current.lines) >= CAPTURE_FILE_RECORDS:
            dest = config["DestinationS3Uri"].rstrip("/")
            name = f"{now.strftime('%M-%S')}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
            current = _CaptureFile(f"{dest}/{runtime.name}/{variant}/{hour}/{name}", hour)
            runtime.files[variant] = current
        current.lines.append(line)
        try:
            s3_put(current.uri, ("\n".join(current.lines) + "\n").encode(), runtime.account)
        except Exception as exc:  # a missing bucket loses captures on AWS too, silently
            log.warning("data capture to %s failed: %s", current.uri, exc)


# --------------------------------------------------------------------------------------------
# CloudWatch endpoint metrics
# --------------------------------------------------------------------------------------------
def _record_metrics(account, region, endpoint_name, variant, latency_us, error) -> None:
    try:
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[account][region]
        dims = [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant}]
        now = clock.now().replace(tzinfo=None)  # moto keeps metric timestamps as naive UTC
        status = error.status if error is not None else 200
        data = [
            {"MetricName": "Invocations", "Value": 1.0, "Unit": "None"},
            {"MetricName": "InvocationsPerInstance", "Value": 1.0, "Unit": "None"},
            {"MetricName": "ModelLatency", "Value": round(latency_us, 1), "Unit": "Microseconds"},
            {"MetricName": "OverheadLatency", "Value": 1000.0, "Unit": "Microseconds"},
            {"MetricName": "Invocation4XXErrors", "Value": 1.0 if 400 <= status < 500 else 0.0,
             "Unit": "None"},
            {"MetricName": "Invocation5XXErrors", "Value": 1.0 if status >= 500 else 0.0, "Unit": "None"},
        ]
        for item in data:
            item["Dimensions"] = dims
            item["Timestamp"] = now
        backend.put_metric_data("AWS/SageMaker", data)
    except Exception as exc:
        log.warning("endpoint metrics not recorded: %s", exc)


# --------------------------------------------------------------------------------------------
# Batch transform
# --------------------------------------------------------------------------------------------
def _run_transform(backend, job) -> None:
    try:
        predictor = load_model_predictor(backend, job.model_name, backend.account_id)
        source = job.transform_input["DataSource"]["S3DataSource"]
        uri = source["S3Uri"]
        content_type = job.transform_input.get("ContentType", "text/csv")
        split = job.transform_input.get("SplitType", "None")
        out_cfg = job.transform_output
        accept = out_cfg.get("Accept") or predictor.default_accept
        assemble = out_cfg.get("AssembleWith", "None")
        if source.get("S3DataType", "S3Prefix") == "ManifestFile":
            raise ValueError("ManifestFile inputs are not supported locally")
        inputs = s3_list(uri) if source.get("S3DataType", "S3Prefix") == "S3Prefix" else [uri]
        inputs = [u for u in inputs if not u.endswith("/")]
        if not inputs:
            raise ValueError(f"No S3 objects found under S3 URL \"{uri}\" given in input data source.")
        prefix = uri if uri.endswith("/") else uri.rsplit("/", 1)[0] + "/"
        if source.get("S3DataType", "S3Prefix") == "S3Prefix" and not uri.endswith("/"):
            prefix = uri.rsplit("/", 1)[0] + "/"
        strategy = job.batch_strategy or "MultiRecord"
        for item in inputs:
            data = s3_get(item, backend.account_id)
            if split == "Line":
                records = [r for r in data.split(b"\n") if r.strip()]
                if strategy == "MultiRecord":
                    batches = [b"\n".join(records[i:i + 1000]) + b"\n" for i in range(0, len(records), 1000)]
                else:
                    batches = records
            else:
                batches = [data]
            outputs = [predictor(b, content_type, accept)[0] for b in batches]
            joiner = b"\n" if assemble == "Line" else b""
            if assemble == "Line":
                outputs = [o.rstrip(b"\n") for o in outputs]
            result = joiner.join(outputs) + (b"\n" if assemble == "Line" else b"")
            relative = item[len(prefix):] if item.startswith(prefix) else item.rsplit("/", 1)[-1]
            s3_put(out_cfg["S3OutputPath"].rstrip("/") + "/" + relative + ".out", result,
                   backend.account_id)
        job.transform_job_status = "Completed"
        for model_dir in predictor.model_dirs:
            shutil.rmtree(model_dir, ignore_errors=True)
    except Exception as exc:
        job.transform_job_status = "Failed"
        job.failure_reason = f"{type(exc).__name__}: {exc}"[:1024]
    job.transform_end_time = job.last_modified_time = clock.now()


def _patch_transform() -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from labkit.local.server import background

    original = SageMakerModelBackend.create_transform_job
    original_describe = SageMakerModelBackend.describe_transform_job

    def create_transform_job(self, transform_job_name, model_name, *args, **kwargs):
        if transform_job_name in self.transform_jobs:
            raise ValidationError(message=f"Job name must be unique within an AWS account and region, "
                                          f"and a job with this name already exists "
                                          f"({self.transform_jobs[transform_job_name].arn})")
        if model_name not in self._models:
            raise ValidationError(message=f"Could not find model \"{model_name}\".")
        job = original(self, transform_job_name, model_name, *args, **kwargs)
        job.transform_job_status = "InProgress"
        job.failure_reason = None
        job.creation_time = job.transform_start_time = job.last_modified_time = clock.now()
        job.transform_end_time = None
        _pending[("transform", self.account_id, transform_job_name)] = background(_run_transform, self, job)
        return job

    def describe_transform_job(self, transform_job_name):
        future = _pending.get(("transform", self.account_id, transform_job_name))
        if future is not None:
            try:
                future.result(timeout=DESCRIBE_GRACE_SECONDS)
            except Exception:
                pass
        response = original_describe(self, transform_job_name)
        for key in ("FailureReason", "LabelingJobArn", "AutoMLJobArn"):
            if not response.get(key):
                response.pop(key, None)
        return response

    SageMakerModelBackend.create_transform_job = create_transform_job
    SageMakerModelBackend.describe_transform_job = describe_transform_job


# --------------------------------------------------------------------------------------------
# Application Auto Scaling for endpoint variants
# --------------------------------------------------------------------------------------------
def _patch_autoscaling() -> None:
    """moto stores targets and policies but checks neither: AWS requires the endpoint variant to
    exist (register) and a registered target (put_scaling_policy)."""
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
    from moto.core.exceptions import JsonRESTError

    original_register = ApplicationAutoscalingBackend.register_scalable_target
    original_put = ApplicationAutoscalingBackend.put_scaling_policy

    def register_scalable_target(self, namespace, r_id, dimension, *args, **kwargs):
        if namespace == "sagemaker" and r_id.startswith("endpoint/"):
            from moto.sagemaker.models import sagemaker_backends

            parts = r_id.split("/")
            backend = sagemaker_backends[self.account_id][self.region_name]
            endpoint = backend.endpoints.get(parts[1]) if len(parts) == 4 else None
            if endpoint is None or parts[2] != "variant" or not any(
                    v["VariantName"] == parts[3] for v in endpoint.production_variants):
                raise AWSValidationException(f"The endpoint variant {r_id} does not exist "
                                             "(ResourceId must be endpoint/<endpoint>/variant/<variant>)")
        return original_register(self, namespace, r_id, dimension, *args, **kwargs)

    def put_scaling_policy(self, policy_name, service_namespace, resource_id, scalable_dimension,
                           *args, **kwargs):
        if service_namespace == "sagemaker" and not self._scalable_target_exists(resource_id,
                                                                                  scalable_dimension):
            raise JsonRESTError("ObjectNotFoundException",
                                f"No scalable target registered for service namespace: sagemaker, "
                                f"resource ID: {resource_id}, scalable dimension: {scalable_dimension}")
        return original_put(self, policy_name, service_namespace, resource_id, scalable_dimension,
                            *args, **kwargs)

    original_deregister = ApplicationAutoscalingBackend.deregister_scalable_target

    def deregister_scalable_target(self, namespace, r_id, dimension):
        """AWS deletes the target's scaling policies with it; moto keeps them."""
        original_deregister(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == \
                    (namespace, r_id, dimension):
                del self.policies[key]

    ApplicationAutoscalingBackend.register_scalable_target = register_scalable_target
    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target
    ApplicationAutoscalingBackend.put_scaling_policy = put_scaling_policy


def _reset() -> None:
    with _lock:
        _endpoints.clear()
        _pending.clear()


def install() -> None:
    """Patch moto's SageMaker control plane, sagemaker-runtime and transform jobs."""
    from labkit.local.server import after_import, on_reset

    _patch_control_plane()
    _patch_runtime()
    _patch_transform()
    # moto's autoscaling models import all of EC2 (seconds): patch them when moto first needs them
    after_import("moto.applicationautoscaling.models", _patch_autoscaling)
    on_reset(_reset)
