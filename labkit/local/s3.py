"""S3 lifecycle engine: AWS's validation of lifecycle rules, and rules that really run.

moto stores a lifecycle configuration but never applies it, accepts rules AWS rejects (a
STANDARD_IA transition at 5 days) and drops ``ObjectSizeGreaterThan`` / ``ObjectSizeLessThan``.
This engine (hook points: moto 5.2.5's ``FakeBucket.set_lifecycle`` / ``delete_lifecycle``,
``S3Response._bucket_response_put`` / ``get_bucket_lifecycle`` and ``moto.s3.models.utcnow``):

* validates ``put_bucket_lifecycle_configuration`` as S3 does, with S3's error codes
  (``InvalidArgument``, ``MalformedXML``) and messages;
* keeps the configuration exactly as sent (size filters, tag filters, several transitions,
  ``TransitionDefaultMinimumObjectSize``) and returns it from ``get_bucket_lifecycle_configuration``;
* stamps objects with the virtual clock and, on every clock tick, applies what became due (S3 runs
  lifecycle once a day and rounds each due time up to the next midnight UTC): transitions (visible
  as ``StorageClass`` in ``head_object`` / ``list_objects_v2``), expirations (a delete marker in a
  versioned bucket, a deletion otherwise), noncurrent-version transitions and expirations
  (``NoncurrentDays``, ``NewerNoncurrentVersions``), expired delete markers, and aborting
  incomplete multipart uploads.

It also gives new buckets AWS's defaults since April 2023 (hook points ``S3Backend.create_bucket``,
``put_bucket_policy``, ``S3Response._bucket_response_put`` / ``_key_response_put``): Object
Ownership ``BucketOwnerEnforced`` (ACLs disabled: setting one is ``AccessControlListNotSupported``,
creating a bucket with one ``InvalidBucketAclWithObjectOwnership``) and Block Public Access on; a
bucket policy is checked as S3 checks it (``MalformedPolicy``; a public policy under
``BlockPublicPolicy`` is ``AccessDenied``).
"""

from __future__ import annotations

import contextvars
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from labkit.local import clock

# The order objects may move in ("waterfall"); a transition may only go to a later class.
STORAGE_CLASS_RANK = {"STANDARD": 0, "REDUCED_REDUNDANCY": 0, "STANDARD_IA": 1,
                      "INTELLIGENT_TIERING": 2, "ONEZONE_IA": 3, "GLACIER_IR": 4, "GLACIER": 5,
                      "DEEP_ARCHIVE": 6}
TRANSITION_CLASSES = ("GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE",
                      "GLACIER_IR")
IA_CLASSES = ("STANDARD_IA", "ONEZONE_IA")
SMALL_OBJECT = 128 * 1024
DEFAULT_MIN_SIZE = "all_storage_classes_128K"
_min_size_header: contextvars.ContextVar[str | None] = contextvars.ContextVar("min_size", default=None)
_lock = threading.RLock()


# --- errors -------------------------------------------------------------------------------------
def _invalid(message: str, name: str = "LifecycleConfiguration", value: str = "") -> Exception:
    from moto.s3.exceptions import InvalidArgumentError

    return InvalidArgumentError(message, name, value)


def _malformed() -> Exception:
    from moto.s3.exceptions import MalformedXML

    return MalformedXML()


# --- bucket defaults, ACLs and policies ------------------------------------------------------
OWNER_ONLY_ACLS = {"", "private", "bucket-owner-full-control"}
S3_ACTION_PREFIX = "s3:"


def _s3_error(code: str, message: str) -> Exception:
    from moto.s3.exceptions import S3ClientError

    return S3ClientError(code, message)


def _acls_disabled(backend, bucket_name: str) -> bool:
    bucket = backend.buckets.get(bucket_name)
    return bucket is not None and (bucket.ownership_rule or "BucketOwnerEnforced") == "BucketOwnerEnforced"


def _acl_request(headers, body: bytes | None = None) -> bool:
    """Whether a request sets an ACL that grants more than the bucket owner's full control."""
    if any(k.lower().startswith("x-amz-grant-") for k in headers.keys()):
        return True
    if (headers.get("x-amz-acl") or "").strip().lower() not in OWNER_ONLY_ACLS:
        return True
    return bool(body) and not _owner_full_control_only(body)


def _owner_full_control_only(body: bytes) -> bool:
    """An AccessControlPolicy whose only grants give the bucket owner FULL_CONTROL (the XML form
    of ``bucket-owner-full-control``, which AWS accepts with ACLs disabled)."""
    import xml.etree.ElementTree as ElementTree

    from moto.s3.models import OWNER

    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return False
    grants = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Grant"]

    def field(grant, name):
        return next((e.text for e in grant.iter() if e.tag.rsplit("}", 1)[-1] == name), None)

    return all(field(g, "Permission") == "FULL_CONTROL" and field(g, "ID") == OWNER for g in grants)


def validate_policy(policy: bytes | str, bucket_name: str, account_id: str) -> dict:
    """S3's checks of a bucket policy document (MalformedPolicy with S3's messages)."""
    try:
        document = json.loads(policy)
    except (ValueError, TypeError):
        document = None
    if not isinstance(document, dict):
        raise _s3_error("MalformedPolicy", "Policies must be valid JSON and the first byte must be '{'")
    statements = document.get("Statement")
    if statements is None:
        raise _s3_error("MalformedPolicy", "Missing required field Statement")
    for statement in _as_list(statements):
        if not isinstance(statement, dict):
            raise _s3_error("MalformedPolicy", "Policies must be valid JSON and the first byte must be '{'")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise _s3_error("MalformedPolicy", f"Invalid effect: {statement.get('Effect')}")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise _s3_error("MalformedPolicy", "Missing required field Principal")
        principal = statement.get("Principal", statement.get("NotPrincipal"))
        if not _principal_exists(principal, account_id):
            raise _s3_error("MalformedPolicy", "Invalid principal in policy")
        actions = _as_list(statement.get("Action", statement.get("NotAction")))
        if not actions:
            raise _s3_error("MalformedPolicy", "Missing required field Action")
        if any(not isinstance(a, str) or not (a == "*" or a.lower().startswith(S3_ACTION_PREFIX))
               for a in actions):
            raise _s3_error("MalformedPolicy", "Policy has invalid action")
        resources = _as_list(statement.get("Resource", statement.get("NotResource")))
        if not resources:
            raise _s3_error("MalformedPolicy", "Missing required field Resource")
        for resource in resources:
            if not isinstance(resource, str) or not (
                    resource == "*" or resource == f"arn:aws:s3:::{bucket_name}"
                    or resource.startswith(f"arn:aws:s3:::{bucket_name}/")):
                raise _s3_error("MalformedPolicy", "Policy has resource which is outside bucket")
    return document


def _principal_exists(principal: Any, account_id: str) -> bool:
    """``*``, services, other accounts' ARNs (they cannot be checked here), and this account's
    root, users and roles that exist in IAM."""
    if principal == "*":
        return True
    if not isinstance(principal, dict) or not principal:
        return False
    from moto.iam.models import iam_backends

    iam = iam_backends[account_id]["global"]
    for kind, values in principal.items():
        if kind not in ("AWS", "Service", "CanonicalUser", "Federated"):
            return False
        for value in _as_list(values):
            if not isinstance(value, str) or not value:
                return False
            if kind != "AWS" or value == "*":
                continue
            if value.isdigit() and len(value) == 12:
                continue
            parts = value.split(":", 5)
            if len(parts) != 6 or parts[:3] != ["arn", "aws", "iam"] or not parts[4].isdigit():
                return False
            if parts[4] != account_id or parts[5] == "root":
                continue
            kind_name, _, name = parts[5].partition("/")
            name = name.rsplit("/", 1)[-1]
            if kind_name == "user" and name not in iam.users:
                return False
            if kind_name == "role" and not any(r.name == name for r in iam.roles.values()):
                return False
            if kind_name not in ("user", "role"):
                return False
    return True


def _is_public(document: dict) -> bool:
    """A statement that allows everyone (``*``) without a condition makes a policy public."""
    for statement in _as_list(document.get("Statement")):
        principal = statement.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))
        if statement.get("Effect") == "Allow" and everyone and not statement.get("Condition"):
            return True
    return False


def _install_bucket_defaults() -> None:
    from moto.s3 import models, responses

    original_create = models.S3Backend.create_bucket

    def create_bucket(self, bucket_name, region_name, *args, **kwargs):
        bucket = original_create(self, bucket_name, region_name, *args, **kwargs)
        bucket.ownership_rule = "BucketOwnerEnforced"
        bucket.public_access_block = models.PublicAccessBlock(True, True, True, True)
        return bucket

    models.S3Backend.create_bucket = create_bucket

    original_policy = models.S3Backend.put_bucket_policy

    def put_bucket_policy(self, bucket_name, policy):
        bucket = self.get_bucket(bucket_name)
        document = validate_policy(policy, bucket_name, self.account_id)
        block = bucket.public_access_block
        if block is not None and block.block_public_policy and _is_public(document):
            raise _s3_error("AccessDenied", f"User: arn:aws:iam::{self.account_id}:root is not authorized "
                            f"to perform: s3:PutBucketPolicy on resource: \"arn:aws:s3:::{bucket_name}\" "
                            "because public policies are blocked by the BlockPublicPolicy block public "
                            "access setting.")
        return original_policy(self, bucket_name, policy)

    models.S3Backend.put_bucket_policy = put_bucket_policy

    original_bucket_put = responses.S3Response._bucket_response_put

    def bucket_response_put(self, request, bucket_name, querystring):
        ownership = request.headers.get("x-amz-object-ownership") or "BucketOwnerEnforced"
        if not querystring and _acl_request(request.headers) and ownership == "BucketOwnerEnforced":
            raise _s3_error("InvalidBucketAclWithObjectOwnership",
                            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")
        if "acl" in querystring and _acl_request(request.headers, self.body) and \
                _acls_disabled(self.backend, bucket_name):
            raise _s3_error("AccessControlListNotSupported", "The bucket does not allow ACLs")
        return original_bucket_put(self, request, bucket_name, querystring)

    responses.S3Response._bucket_response_put = bucket_response_put

    original_key_put = responses.S3Response._key_response_put

    def key_response_put(self, query, key_name):
        if _acl_request(self.headers, self.body if "acl" in query else None) and \
                _acls_disabled(self.backend, self.bucket_name):
            raise _s3_error("AccessControlListNotSupported", "The bucket does not allow ACLs")
        return original_key_put(self, query, key_name)

    responses.S3Response._key_response_put = key_response_put


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _int(value: Any, *, what: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise _malformed() from None


# --- validation + normalisation -----------------------------------------------------------------
def _filter_text(rule: dict) -> str:
    """How S3 names a rule's filter in its error messages, e.g. ``filter '(prefix=raw/)'``."""
    f = rule.get("Filter")
    if f is None:
        return f"prefix '{rule.get('Prefix', '')}'"
    parts = []
    source = f.get("And", f)
    if "Prefix" in source:
        parts.append(f"prefix={source['Prefix']}")
    for tag in ([source["Tag"]] if "Tag" in source else []) + source.get("Tags", []):
        parts.append(f"tag={tag['Key']}={tag['Value']}")
    for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if key in source:
            parts.append(f"{key[0].lower() + key[1:]}={source[key]}")
    return f"filter '({', '.join(parts)})'"


def _normalise_filter(raw: Any) -> dict:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _malformed()
    keys = [k for k in raw if k in ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And")]
    unknown = [k for k in raw if k not in ("Prefix", "Tag", "ObjectSizeGreaterThan",
                                           "ObjectSizeLessThan", "And")]
    if len(keys) > 1 or unknown:
        raise _malformed()  # one predicate per Filter; combine several with And
    out: dict = {}
    if "Prefix" in raw:
        out["Prefix"] = raw["Prefix"] or ""
    if "Tag" in raw:
        tag = raw["Tag"] or {}
        if "Key" not in tag:
            raise _malformed()
        out["Tag"] = {"Key": tag["Key"], "Value": tag.get("Value") or ""}
    for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if key in raw:
            out[key] = _int(raw[key], what=key)
    if "And" in raw:
        a = raw["And"] or {}
        and_out: dict = {}
        if "Prefix" in a:
            and_out["Prefix"] = a["Prefix"] or ""
        tags = [{"Key": t["Key"], "Value": t.get("Value") or ""} for t in _as_list(a.get("Tag"))]
        if tags:
            and_out["Tags"] = tags
        for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
            if key in a:
                and_out[key] = _int(a[key], what=key)
        if len(and_out) + max(0, len(tags) - 1) < 2:
            raise _malformed()  # And needs at least two predicates
        out["And"] = and_out
    return out


def _check_sizes(f: dict) -> None:
    source = f.get("And", f)
    gt, lt = source.get("ObjectSizeGreaterThan"), source.get("ObjectSizeLessThan")
    for value in (gt, lt):
        if value is not None and value < 0:
            raise _invalid("ObjectSize filters must be non-negative", "ObjectSize", str(value))
    if gt is not None and lt is not None and lt <= gt:
        raise _invalid("ObjectSizeLessThan must be greater than ObjectSizeGreaterThan",
                       "ObjectSizeLessThan", str(lt))


def _has_tags(rule: dict) -> bool:
    f = rule.get("Filter") or {}
    return "Tag" in f or bool(f.get("And", {}).get("Tags"))


def _transitions(raw: dict, rule: dict, *, noncurrent: bool) -> list[dict]:
    element = "NoncurrentVersionTransition" if noncurrent else "Transition"
    day_key = "NoncurrentDays" if noncurrent else "Days"
    out = []
    for t in _as_list(raw.get(element)):
        t = t or {}
        cls = t.get("StorageClass")
        if cls not in TRANSITION_CLASSES:
            raise _malformed()
        item: dict = {"StorageClass": cls}
        if noncurrent:
            if "NoncurrentDays" not in t:
                raise _malformed()
            if "NewerNoncurrentVersions" in t:
                item["NewerNoncurrentVersions"] = _int(t["NewerNoncurrentVersions"], what="n")
        elif ("Days" in t) == ("Date" in t):
            raise _malformed()  # exactly one of Days / Date
        if day_key in t:
            days = _int(t[day_key], what=day_key)
            if days < 0:
                raise _invalid(f"'{day_key}' in {element} action must be nonnegative", day_key, str(days))
            if cls in IA_CLASSES and days < 30:
                raise _invalid(f"'{day_key}' in {element} action must be greater than or equal to 30 "
                               f"for storageClass '{cls}'", day_key, str(days))
            item[day_key] = days
        else:
            item["Date"] = _midnight_date(t["Date"], element)
        out.append(item)
    if any("Date" in t for t in out) and any(day_key in t for t in out):
        raise _invalid(f"Found mixed 'Date' and 'Days' based {element} actions in lifecycle rule for "
                       f"{_filter_text(rule)}", element, "")
    classes = [t["StorageClass"] for t in out]
    if len(set(classes)) != len(classes):
        raise _invalid(f"'StorageClass' must be different for '{element}' actions in same 'Rule' with "
                       f"{_filter_text(rule)}", "StorageClass", classes[0])
    timed = sorted((t for t in out if day_key in t), key=lambda t: t[day_key])
    for earlier, later in zip(timed, timed[1:]):
        e, l = earlier["StorageClass"], later["StorageClass"]
        if STORAGE_CLASS_RANK[l] <= STORAGE_CLASS_RANK[e] or later[day_key] == earlier[day_key]:
            raise _invalid(f"'{day_key}' in the {element} action for StorageClass '{e}' for "
                           f"{_filter_text(rule)} must be less than '{day_key}' in the {element} action "
                           f"for StorageClass '{l}' for {_filter_text(rule)}, and transitions must "
                           f"follow STANDARD -> STANDARD_IA -> INTELLIGENT_TIERING -> ONEZONE_IA -> "
                           f"GLACIER_IR -> GLACIER -> DEEP_ARCHIVE", day_key, str(later[day_key]))
        if e in IA_CLASSES and later[day_key] - earlier[day_key] < 30:
            raise _invalid(f"'{day_key}' in the {element} action for StorageClass '{l}' for "
                           f"{_filter_text(rule)} must be 30 days more than {_filter_text(rule)} in the "
                           f"{element} action for StorageClass '{e}'", day_key, str(later[day_key]))
    return out


def _midnight_date(value: Any, element: str) -> str:
    """A lifecycle ``Date`` must be an ISO 8601 date at midnight UTC (S3 rejects other times)."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _malformed() from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
        raise _invalid(f"'Date' must be at midnight GMT", "Date", str(value))
    return value


def normalise_rule(raw: dict, index: int) -> dict:
    """Validate one rule parsed from the request XML and return it in the API's (boto3) shape."""
    if not isinstance(raw, dict):
        raise _malformed()
    rule: dict = {}
    rule_id = raw.get("ID") or str(uuid.uuid4()).replace("-", "")[:40]  # S3 generates a missing ID
    if len(rule_id) > 255:
        raise _invalid("ID length should not exceed allowed limit of 255", "ID", rule_id[:20])
    rule["ID"] = rule_id
    if "Filter" in raw and "Prefix" in raw:
        raise _malformed()
    if "Filter" in raw:
        rule["Filter"] = _normalise_filter(raw["Filter"])
        _check_sizes(rule["Filter"])
    elif "Prefix" in raw:
        rule["Prefix"] = raw["Prefix"] or ""
    else:
        rule["Filter"] = {}
    status = raw.get("Status")
    if status not in ("Enabled", "Disabled"):
        raise _malformed()
    rule["Status"] = status

    expiration = raw.get("Expiration")
    if expiration is not None:
        expiration = expiration or {}
        given = [k for k in ("Days", "Date", "ExpiredObjectDeleteMarker") if k in expiration]
        if len(given) != 1:
            raise _malformed()
        exp: dict = {}
        if "Days" in expiration:
            days = _int(expiration["Days"], what="Days")
            if days < 1:
                raise _invalid("'Days' for Expiration action must be a positive integer", "Days", str(days))
            exp["Days"] = days
        elif "Date" in expiration:
            exp["Date"] = _midnight_date(expiration["Date"], "Expiration")
        else:
            marker = str(expiration["ExpiredObjectDeleteMarker"]).lower()
            if marker not in ("true", "false"):
                raise _malformed()
            if _has_tags(rule):
                raise _invalid("ExpiredObjectDeleteMarker cannot be specified with object tags",
                               "ExpiredObjectDeleteMarker", marker)
            exp["ExpiredObjectDeleteMarker"] = marker == "true"
        rule["Expiration"] = exp

    transitions = _transitions(raw, rule, noncurrent=False)
    if transitions:
        rule["Transitions"] = transitions
    days = [t["Days"] for t in transitions if "Days" in t]
    if days and "Days" in rule.get("Expiration", {}) and rule["Expiration"]["Days"] <= max(days):
        last = max(transitions, key=lambda t: t.get("Days", -1))["StorageClass"]
        raise _invalid(f"'Days' in the Expiration action for {_filter_text(rule)} must be greater than "
                       f"'Days' in the Transition action for StorageClass '{last}' for "
                       f"{_filter_text(rule)}", "Days", str(rule["Expiration"]["Days"]))

    nv_transitions = _transitions(raw, rule, noncurrent=True)
    if nv_transitions:
        rule["NoncurrentVersionTransitions"] = nv_transitions
    nve = raw.get("NoncurrentVersionExpiration")
    if nve is not None:
        nve = nve or {}
        if "NoncurrentDays" not in nve:
            raise _malformed()
        nd = _int(nve["NoncurrentDays"], what="NoncurrentDays")
        if nd < 1:
            raise _invalid("'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive "
                           "integer", "NoncurrentDays", str(nd))
        item = {"NoncurrentDays": nd}
        if "NewerNoncurrentVersions" in nve:
            newer = _int(nve["NewerNoncurrentVersions"], what="NewerNoncurrentVersions")
            if not 1 <= newer <= 100:
                raise _invalid("NewerNoncurrentVersions must be between 1 and 100",
                               "NewerNoncurrentVersions", str(newer))
            item["NewerNoncurrentVersions"] = newer
        nv_days = [t["NoncurrentDays"] for t in nv_transitions]
        if nv_days and nd <= max(nv_days):
            raise _invalid(f"'NoncurrentDays' in the NoncurrentVersionExpiration action for "
                           f"{_filter_text(rule)} must be greater than 'NoncurrentDays' in the "
                           f"NoncurrentVersionTransition action", "NoncurrentDays", str(nd))
        rule["NoncurrentVersionExpiration"] = item

    aimu = raw.get("AbortIncompleteMultipartUpload")
    if aimu is not None:
        aimu = aimu or {}
        if "DaysAfterInitiation" not in aimu:
            raise _malformed()
        d = _int(aimu["DaysAfterInitiation"], what="DaysAfterInitiation")
        if d < 1:
            raise _invalid("'DaysAfterInitiation' in AbortIncompleteMultipartUpload action must be a "
                           "positive integer", "DaysAfterInitiation", str(d))
        if _has_tags(rule):
            raise _invalid("AbortIncompleteMultipartUpload cannot be specified with Tags.",
                           "AbortIncompleteMultipartUpload", str(d))
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": d}

    if not any(k in rule for k in ("Expiration", "Transitions", "NoncurrentVersionTransitions",
                                   "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")):
        raise _invalid("At least one action needs to be specified in a rule", "Action", "")
    return rule


def validate_configuration(raw_rules: list[dict]) -> list[dict]:
    """All rules of one PutBucketLifecycleConfiguration request, validated and normalised."""
    if len(raw_rules) > 1000:
        raise _invalid("Lifecycle configuration may contain at most 1000 rules", "Rule", str(len(raw_rules)))
    rules = [normalise_rule(r, i) for i, r in enumerate(raw_rules)]
    ids = [r["ID"] for r in rules]
    if len(set(ids)) != len(ids):
        raise _invalid("Rule ID must be unique. Found same ID for more than one rule", "ID",
                       next(i for i in ids if ids.count(i) > 1))
    return rules


# --- ageing -------------------------------------------------------------------------------------
def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def due_time(start: datetime, days: int) -> datetime:
    """S3 applies a Days rule at the first midnight UTC at or after ``start + days``."""
    t = _aware(start) + timedelta(days=days)
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return t if t == midnight else midnight + timedelta(days=1)


def _date(value: str) -> datetime:
    return _aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _rule_matches(rule: dict, key_name: str, size: int, tags: dict) -> bool:
    f = rule.get("Filter")
    if f is None:
        return key_name.startswith(rule.get("Prefix", ""))
    source = f.get("And", f)
    if not key_name.startswith(source.get("Prefix", "")):
        return False
    wanted = ([source["Tag"]] if "Tag" in source else []) + source.get("Tags", [])
    if any(tags.get(t["Key"]) != t["Value"] for t in wanted):
        return False
    if "ObjectSizeGreaterThan" in source and not size > source["ObjectSizeGreaterThan"]:
        return False
    if "ObjectSizeLessThan" in source and not size < source["ObjectSizeLessThan"]:
        return False
    return True


def _size_allows(rule: dict, cls: str, size: int, mode: str) -> bool:
    """AWS's default minimum object size for transitions; a custom size filter overrides it."""
    source = (rule.get("Filter") or {}).get("And", rule.get("Filter") or {})
    if "ObjectSizeGreaterThan" in source or "ObjectSizeLessThan" in source:
        return True
    if size >= SMALL_OBJECT:
        return True
    return mode == "varies_by_storage_class" and cls in ("GLACIER", "DEEP_ARCHIVE")


def _best_transition(rules: list[dict], start: datetime, now: datetime, size: int, mode: str,
                     *, noncurrent: bool, newer_rank: int | None = None) -> str | None:
    """The furthest storage class that a due transition of any rule moves the object to."""
    best = None
    for rule in rules:
        key = "NoncurrentVersionTransitions" if noncurrent else "Transitions"
        for t in rule.get(key, []):
            if noncurrent:
                if "NewerNoncurrentVersions" in t and newer_rank is not None and \
                        newer_rank < t["NewerNoncurrentVersions"]:
                    continue
                when = due_time(start, t["NoncurrentDays"])
            else:
                when = due_time(start, t["Days"]) if "Days" in t else _date(t["Date"])
            if when <= now and _size_allows(rule, t["StorageClass"], size, mode):
                if best is None or STORAGE_CLASS_RANK[t["StorageClass"]] > STORAGE_CLASS_RANK[best]:
                    best = t["StorageClass"]
    return best


def _rank(key) -> int:
    return STORAGE_CLASS_RANK.get(key.storage_class or "STANDARD", 0)


def apply_lifecycle(backend, bucket, now: datetime) -> None:
    """Apply every lifecycle action on ``bucket`` that is due at virtual time ``now``."""
    from moto.s3.models import FakeDeleteMarker

    rules = [r for r in getattr(bucket, "_labkit_lifecycle", []) if r["Status"] == "Enabled"]
    if not rules:
        return
    mode = getattr(bucket, "_labkit_min_size", DEFAULT_MIN_SIZE)
    for name, versions in list(bucket.keys.iterlists()):
        current = versions[-1] if versions else None
        if current is None:
            continue
        if isinstance(current, FakeDeleteMarker):
            tags = {}
            size = 0
        else:
            tags = backend.tagger.get_tag_dict_for_resource(current.arn)
            size = current.size
        matching = [r for r in rules if _rule_matches(r, name, size, tags)]
        if not matching:
            continue
        # current version: transitions, then expiration
        if not isinstance(current, FakeDeleteMarker):
            start = current.last_modified
            target = _best_transition(matching, start, now, size, mode, noncurrent=False)
            if target and STORAGE_CLASS_RANK[target] > _rank(current):
                current.set_storage_class(target)
            expire = False
            for r in matching:
                exp = r.get("Expiration", {})
                if ("Days" in exp and due_time(start, exp["Days"]) <= now) or \
                        ("Date" in exp and _date(exp["Date"]) <= now):
                    expire = True
            if expire:
                backend.delete_object(bucket.name, name)  # a delete marker when versioned
                versions = bucket.keys.getlist(name, [])
                if not versions:
                    continue
        # noncurrent versions (versioned buckets): ageing starts when a newer version appeared
        if bucket.is_versioned and len(versions) > 1:
            noncurrent = versions[:-1]
            successors = versions[1:]
            doomed = []
            for rank, (version, successor) in enumerate(zip(reversed(noncurrent), reversed(successors)), 1):
                if isinstance(version, FakeDeleteMarker):
                    continue
                since = successor.last_modified
                target = _best_transition(matching, since, now, version.size, mode, noncurrent=True,
                                          newer_rank=rank - 1)
                if target and STORAGE_CLASS_RANK[target] > _rank(version):
                    version.set_storage_class(target)
                for r in matching:
                    nve = r.get("NoncurrentVersionExpiration")
                    if nve and due_time(since, nve["NoncurrentDays"]) <= now and \
                            rank > nve.get("NewerNoncurrentVersions", 0):
                        doomed.append(version.version_id)
                        break
            for version_id in doomed:
                backend.delete_object(bucket.name, name, version_id=version_id, bypass=True)
        # an expired object delete marker: the only version left is a delete marker
        versions = bucket.keys.getlist(name, [])
        if len(versions) == 1 and isinstance(versions[0], FakeDeleteMarker) and any(
                r.get("Expiration", {}).get("ExpiredObjectDeleteMarker") for r in matching):
            backend.delete_object(bucket.name, name, version_id=versions[0].version_id)
    # incomplete multipart uploads
    for upload_id, upload in list(bucket.multiparts.items()):
        started = getattr(upload, "_labkit_initiated", None)
        if started is None:
            continue
        for r in rules:
            aimu = r.get("AbortIncompleteMultipartUpload")
            if aimu and _rule_matches(r, upload.key_name, 0, {}) and \
                    due_time(started, aimu["DaysAfterInitiation"]) <= now:
                bucket.multiparts.pop(upload_id, None)
                break


def _tick(now: datetime) -> None:
    from moto.s3.models import s3_backends

    with _lock:
        for _account, partitions in list(s3_backends.items()):
            for backend in list(partitions.values()):
                for bucket in list(backend.buckets.values()):
                    if not getattr(bucket, "_labkit_lifecycle", None):
                        continue
                    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
                    if getattr(bucket, "_labkit_last_run", None) == day:
                        continue  # every due time is a midnight: once per virtual day is exact
                    bucket._labkit_last_run = day
                    apply_lifecycle(backend, bucket, now)


# --- install ------------------------------------------------------------------------------------
def install() -> None:
    """Patch moto's S3 lifecycle handling and age objects on the virtual clock."""
    from moto.core.responses import ActionResult
    from moto.s3 import models, responses
    from moto.s3.exceptions import NoSuchLifecycleConfiguration

    models.utcnow = lambda: clock.now().replace(tzinfo=None)  # object timestamps: virtual time

    original_set = models.FakeBucket.set_lifecycle

    def set_lifecycle(self, rules):
        normalised = validate_configuration(rules)
        original_set(self, rules)
        self._labkit_lifecycle = normalised
        self._labkit_min_size = _min_size_header.get() or DEFAULT_MIN_SIZE
        self._labkit_last_run = None

    models.FakeBucket.set_lifecycle = set_lifecycle

    original_delete = models.FakeBucket.delete_lifecycle

    def delete_lifecycle(self):
        original_delete(self)
        self._labkit_lifecycle = []

    models.FakeBucket.delete_lifecycle = delete_lifecycle

    original_put = responses.S3Response._bucket_response_put

    def bucket_response_put(self, request, bucket_name, querystring):
        if "lifecycle" not in querystring:
            return original_put(self, request, bucket_name, querystring)
        mode = request.headers.get("x-amz-transition-default-minimum-object-size")
        if mode is not None and mode not in (DEFAULT_MIN_SIZE, "varies_by_storage_class"):
            raise _invalid(f"Invalid value for x-amz-transition-default-minimum-object-size: {mode}",
                           "x-amz-transition-default-minimum-object-size", mode)
        token = _min_size_header.set(mode)
        try:
            result = original_put(self, request, bucket_name, querystring)
        finally:
            _min_size_header.reset(token)
        if result == "":
            return 200, {"x-amz-transition-default-minimum-object-size": mode or DEFAULT_MIN_SIZE}, ""
        return result

    responses.S3Response._bucket_response_put = bucket_response_put

    def get_bucket_lifecycle(self):
        """Return the configuration as it was sent (moto drops size filters and extra fields)."""
        self.data["Action"] = "GetBucketLifecycleConfiguration"
        bucket = self.backend.get_bucket(self.bucket_name)
        rules = getattr(bucket, "_labkit_lifecycle", None)
        if not rules:
            raise NoSuchLifecycleConfiguration(bucket_name=self.bucket_name)
        result = {"Rules": rules,
                  "TransitionDefaultMinimumObjectSize": getattr(bucket, "_labkit_min_size", DEFAULT_MIN_SIZE)}
        return self.serialized(ActionResult(result))

    responses.S3Response.get_bucket_lifecycle = get_bucket_lifecycle

    original_mpu_init = models.FakeMultipart.__init__

    def multipart_init(self, *args, **kwargs):
        original_mpu_init(self, *args, **kwargs)
        self._labkit_initiated = clock.now()

    models.FakeMultipart.__init__ = multipart_init
    _install_bucket_defaults()
    clock.on_tick(_tick)

