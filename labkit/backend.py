"""``labkit.connect()``: one API, two backends (the embedded local AWS, or the learner's account).

Lab code is plain boto3 / SageMaker SDK code; this module only decides where it goes. In local mode
it points the standard AWS environment variables at the embedded server, so ``boto3.client("s3")``,
the SageMaker SDK and ``!aws ...`` reach it with no extra arguments.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime

import boto3

from labkit.errors import LabkitError

LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_REGION = "us-east-1"
BACKENDS = ("local", "aws")

# Everything through which botocore could find real credentials or a real account.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CREDENTIAL_EXPIRATION",
)

_handle: "Handle | None" = None
_local_server = None  # the in-process LocalAWS, when this process started one


@dataclass
class Handle:
    """What a lab needs to know about where it runs."""

    mode: str
    session: boto3.Session
    region: str
    account_id: str
    bucket: str
    endpoint: str | None = None
    _clients: dict = field(default_factory=dict, repr=False)

    def client(self, name: str):
        """A boto3 client for ``name`` on this backend (cached)."""
        if name not in self._clients:
            self._clients[name] = self.session.client(name, region_name=self.region)
        return self._clients[name]

    @property
    def is_local(self) -> bool:
        return self.mode == "local"

    # --- the virtual clock (local mode only; on AWS real time passes) -------------------------
    def now(self) -> datetime:
        """Current time on this backend: the virtual clock locally, the real clock on AWS."""
        if not self.is_local:
            from datetime import timezone

            return datetime.now(timezone.utc)
        return datetime.fromisoformat(control(self.endpoint, "clock")["now"])

    def fast_forward(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0,
                     days: float = 0) -> datetime:
        """Advance the local virtual clock (alarm periods, lifecycle ages, buffers become due).

        On AWS nothing can fast-forward time: this raises with a note on how long to wait instead.
        """
        total = seconds + 60 * minutes + 3600 * hours + 86400 * days
        if not self.is_local:
            raise LabkitError(f"AWS mode runs on real time: wait {total / 3600:.1f} h for this step, "
                              "or poll with the lab's wait helper")
        return datetime.fromisoformat(control(self.endpoint, "clock", {"seconds": total})["now"])


def control(endpoint: str, route: str, payload: dict | None = None, timeout: float = 600) -> dict:
    """Call the local AWS's control API (``/_labkit/<route>``)."""
    data = json.dumps(payload or {}).encode()
    request = urllib.request.Request(f"{endpoint}/_labkit/{route}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def is_labkit_server(endpoint: str | None) -> bool:
    """True when ``endpoint`` answers labkit's ping (e.g. the server ``make lab`` started)."""
    if not endpoint or not endpoint.startswith("http://127.0.0.1") and "localhost" not in endpoint:
        return False
    try:
        return "labkit" in control(endpoint, "ping", timeout=2)
    except Exception:
        return False


def grading() -> bool:
    return os.environ.get("LABKIT_GRADING", "").strip().lower() in {"1", "true", "yes"}


def scrub_credentials(environ=os.environ) -> None:
    """Remove every way to real AWS credentials from ``environ`` (grading mode)."""
    for name in _CREDENTIAL_VARIABLES:
        environ.pop(name, None)
    environ["AWS_CONFIG_FILE"] = os.devnull
    environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    environ["AWS_EC2_METADATA_DISABLED"] = "true"


def course_bucket(account_id: str, region: str) -> str:
    """The course bucket: globally unique in AWS because it carries the account and region."""
    return f"mlaws-labs-{account_id}-{region}"


def connect(backend: str | None = None, *, quiet: bool = False) -> Handle:
    """Connect this notebook to the local AWS (default) or to AWS (``LABKIT_BACKEND=aws``)."""
    global _handle
    chosen = (backend or os.environ.get("LABKIT_BACKEND") or "local").strip().lower()
    if chosen not in BACKENDS:
        raise LabkitError(f"unknown backend {chosen!r}: use 'local' (the embedded AWS, the default) "
                          "or 'aws' (your own account)")
    if grading():
        if chosen == "aws":
            raise LabkitError("grading runs in local mode only: backend='aws' is refused while "
                              "LABKIT_GRADING=1 (the grader never touches a real AWS account)")
        scrub_credentials()
    if _handle is not None:
        if _handle.mode != chosen:
            raise LabkitError(f"this kernel is already connected in {_handle.mode!r} mode; "
                              "restart the kernel to switch backends")
        return _handle
    _handle = _connect_local() if chosen == "local" else _connect_aws()
    if not quiet:
        print(banner(_handle))
    return _handle


def banner(handle: Handle) -> str:
    if handle.is_local:
        return (f"labkit: LOCAL mode, embedded AWS at {handle.endpoint} (account {handle.account_id}, "
                f"{handle.region}, no cost). To use your own account: LABKIT_BACKEND=aws")
    return (f"labkit: AWS mode, account {handle.account_id} in {handle.region}: real resources, "
            f"real cost; run the clean-up cell. For the free local AWS: LABKIT_BACKEND=local")


def _keep_sts_local(request, **_kwargs) -> None:
    """botocore ``before-send.sts``: in local mode, an STS request addressed to a fixed AWS host
    goes to the local AWS. The SageMaker SDK v3 builds its STS client with an explicit
    ``https://sts.<region>.amazonaws.com`` (``sts_regional_endpoint``), which overrides
    ``AWS_ENDPOINT_URL``; this lets its defaults (account, default bucket) resolve locally."""
    from urllib.parse import urlsplit, urlunsplit

    if _handle is None or not _handle.is_local or not _handle.endpoint:
        return
    url = urlsplit(request.url)
    if (url.hostname or "").endswith((".amazonaws.com", ".amazonaws.com.cn")):
        local = urlsplit(_handle.endpoint)
        request.url = urlunsplit((local.scheme, local.netloc, url.path or "/", url.query, ""))


def _route_sts_locally(session: boto3.Session) -> None:
    """Every botocore session made from now on (the SDK makes its own), and ``session``."""
    from botocore import handlers

    spec = ("before-send.sts", _keep_sts_local)
    if spec not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append(spec)
    for existing in {session, boto3.DEFAULT_SESSION} - {None}:
        existing.events.register(*spec, unique_id="labkit-local-sts")


def _connect_local() -> Handle:
    global _local_server
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not is_labkit_server(endpoint):
        from labkit.local.server import LocalAWS

        _local_server = LocalAWS().start()
        endpoint = _local_server.endpoint
    for name in _CREDENTIAL_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        "SAGEMAKER_VALIDATE_ROLE": "false",
    })
    session = boto3.Session(region_name=LOCAL_REGION)
    _route_sts_locally(session)
    return Handle("local", session, LOCAL_REGION, LOCAL_ACCOUNT_ID,
                  course_bucket(LOCAL_ACCOUNT_ID, LOCAL_REGION), endpoint)


def _connect_aws() -> Handle:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and is_labkit_server(endpoint):
        os.environ.pop("AWS_ENDPOINT_URL")  # a leftover from `make lab` must not capture AWS calls
    session = boto3.Session()
    region = session.region_name or "us-east-1"
    try:
        account = session.client("sts", region_name=region).get_caller_identity()["Account"]
    except Exception as exc:
        raise LabkitError(f"AWS mode needs credentials for your own account ({type(exc).__name__}: "
                          f"{exc}). Configure them with `aws configure`, or use LABKIT_BACKEND=local"
                          ) from None
    return Handle("aws", session, region, account, course_bucket(account, region))


def _forget_for_tests() -> None:
    """Drop the cached handle (tests only); a started in-process server keeps running."""
    global _handle
    _handle = None
