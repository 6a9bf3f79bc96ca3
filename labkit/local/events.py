"""EventBridge engine: rules match events with AWS's pattern rules, and their targets really fire.

moto stores rules and targets, but its ``put_events`` ignores a rule's state, matches patterns
loosely (arrays of objects, numbers), never delivers to SNS or Lambda, and ``test_event_pattern``
is missing. Hook points: ``EventsBackend.put_events/put_rule/test_event_pattern`` and
``EventsResponse.test_event_pattern``. Here:

* patterns follow AWS's matching rules: exact values (an array is an OR; an array in the event
  matches when any element matches), ``prefix`` / ``suffix`` / ``equals-ignore-case`` /
  ``wildcard``, ``anything-but`` (values, ``prefix``, ``suffix``), ``numeric`` ranges, ``exists``,
  ``cidr``, ``$or``, nested fields; invalid patterns are rejected with InvalidEventPatternException;
* ``put_events`` and AWS's own service events (``put_aws_event``, called by the other engines: the
  CloudWatch alarm state changes, SageMaker training-job / endpoint state changes, ...) go to every
  ENABLED rule of the bus; each target gets the event, or its ``Input`` / ``InputPath`` /
  ``InputTransformer`` result, as AWS applies them;
* targets: SNS topics (published through moto's SNS backend, so subscriptions and the e-mail
  outbox see it), Lambda functions (asynchronous invocation of the Lambda engine), SQS queues,
  CloudWatch Logs groups, other event buses, and any service an engine registers with
  ``register_target`` (the Pipelines engine registers ``sagemaker`` for pipeline targets).

Delivery happens in the thread that put the event, before the call returns, so a caller sees its
effect at once; a target's handler must therefore be quick (start long work with
``labkit.local.server.background``) and must not raise to report a failure that AWS would only
count in the ``FailedInvocations`` metric (errors are logged, never passed back to the caller).

Public interface for the other engines::

    put_aws_event(source, detail_type, detail, *, resources=(), account=..., region=...)
    register_target(service, handler)   # handler(target: dict, payload) -> None

``handler`` receives the rule's target as stored (``Id``, ``Arn``, ``RoleArn``,
``SageMakerPipelineParameters``, ...) and the payload to deliver: the event (a dict) when the
target has no input setting, else the Input / InputPath / InputTransformer result, decoded from
JSON when it is JSON (a plain-text transformer result stays a ``str``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import uuid
from typing import Any, Callable, Iterable

from labkit.backend import LOCAL_ACCOUNT_ID
from labkit.local import clock

__all__ = ["put_aws_event", "register_target", "matches", "validate_pattern", "sagemaker_event",
           "training_job_state_change", "endpoint_state_change"]

_log = logging.getLogger("labkit.events")
_handlers: dict[str, Callable[[dict, Any], None]] = {}
_lock = threading.RLock()
_MISSING = object()


# --- public interface ---------------------------------------------------------------------------
def register_target(service: str, handler: Callable[[dict, Any], None]) -> None:
    """Deliver to targets whose ARN is ``arn:aws:<service>:...`` with ``handler(target, payload)``."""
    _handlers[service] = handler


def put_aws_event(source: str, detail_type: str, detail: dict, *, resources: Iterable[str] = (),
                  account: str = LOCAL_ACCOUNT_ID, region: str = "us-east-1") -> None:
    """Put an AWS service event (e.g. 'aws.cloudwatch' / 'CloudWatch Alarm State Change') on the
    default bus. Never raises: a service's own event must not break the call that caused it."""
    try:
        event = _envelope(source, detail_type, detail, list(resources), account, region)
        _dispatch(account, region, "default", event)
    except Exception:
        _log.exception("could not put the %s event %r", source, detail_type)


# --- SageMaker's own events (one-line calls at the engines' status transitions) -----------------
_TRAINING_FIELDS = ("TrainingJobName", "TrainingJobArn", "TrainingJobStatus", "SecondaryStatus",
                    "FailureReason", "HyperParameters", "AlgorithmSpecification", "RoleArn",
                    "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition",
                    "CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime",
                    "SecondaryStatusTransitions", "FinalMetricDataList", "ModelArtifacts")
_ENDPOINT_FIELDS = ("EndpointName", "EndpointArn", "EndpointConfigName", "ProductionVariants",
                    "EndpointStatus", "FailureReason", "CreationTime", "LastModifiedTime")


def _epoch_millis(value: Any) -> Any:
    """SageMaker's events carry times as epoch milliseconds (numbers), unlike the API's ISO text."""
    from datetime import datetime, timezone

    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(aware.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _epoch_millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epoch_millis(v) for v in value]
    return value


def sagemaker_event(resource, detail_type: str, fields: tuple | None = None,
                    extra: dict | None = None) -> None:
    """A SageMaker state-change event for a moto resource: its description (only ``fields`` when
    given) with times as epoch milliseconds and Tags as a map, in the account and region of its
    ARN. Never raises: the event is a by-product of the API call."""
    try:
        response = resource.response_object
        detail = {k: _epoch_millis(v) for k, v in response.items()
                  if fields is None or (k in fields and v not in (None, ""))}
        detail["Tags"] = {t["Key"]: t["Value"] for t in getattr(resource, "tags", None) or []}
        detail.update(extra or {})
        arn = resource.arn
        put_aws_event("aws.sagemaker", detail_type, detail, resources=[arn],
                      account=arn.split(":")[4], region=arn.split(":")[3])
    except Exception:
        _log.exception("could not put the %r event", detail_type)


def training_job_state_change(job) -> None:
    """'SageMaker Training Job State Change' for a moto FakeTrainingJob (call after a status change)."""
    sagemaker_event(job, "SageMaker Training Job State Change", _TRAINING_FIELDS)


def endpoint_state_change(endpoint) -> None:
    """'SageMaker Endpoint State Change' for a moto FakeEndpoint (call after a status change)."""
    sagemaker_event(endpoint, "SageMaker Endpoint State Change", _ENDPOINT_FIELDS)


# --- event patterns -----------------------------------------------------------------------------
def _pattern_error(reason: str):
    from moto.events.exceptions import InvalidEventPatternException

    return InvalidEventPatternException(reason=reason)


_NAMED = {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr",
          "wildcard"}
_NUMERIC_OPS = {"<", "<=", "=", ">=", ">"}


def validate_pattern(text: str | None) -> dict:
    """Parse an event pattern, raising InvalidEventPatternException where AWS would."""
    try:
        pattern = json.loads(text) if text else {}
    except ValueError:
        raise _pattern_error("Filter is not an object") from None
    if not isinstance(pattern, dict):
        raise _pattern_error("Filter is not an object")
    _validate_node(pattern)
    return pattern


def _validate_node(node: dict) -> None:
    for key, value in node.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise _pattern_error("$or must be an array of at least two objects")
            for branch in value:
                _validate_node(branch)
        elif isinstance(value, dict):
            _validate_node(value)
        elif isinstance(value, list):
            if not value:
                raise _pattern_error(f"Empty arrays are not allowed ({key})")
            for item in value:
                if isinstance(item, dict):
                    _validate_filter(key, item)
                elif isinstance(item, list):
                    raise _pattern_error(f"Match value must be String, number, true, false, or null "
                                         f"({key})")
        else:
            raise _pattern_error(f"Match value must be an array or an object ({key})")


def _validate_filter(key: str, item: dict) -> None:
    if len(item) != 1:
        raise _pattern_error(f"Only one key allowed in match expression ({key})")
    name, value = next(iter(item.items()))
    if name not in _NAMED:
        raise _pattern_error(f"Unrecognized match type {name}")
    if name in {"prefix", "suffix"}:
        if isinstance(value, dict) and set(value) == {"equals-ignore-case"}:
            value = value["equals-ignore-case"]
        if not isinstance(value, str):
            raise _pattern_error(f"{name} match pattern must be a string")
    elif name in {"equals-ignore-case", "wildcard", "cidr"}:
        if not isinstance(value, str):
            raise _pattern_error(f"{name} match pattern must be a string")
        if name == "cidr":
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise _pattern_error(f"Nonstandard IP address: {value}") from None
    elif name == "exists":
        if not isinstance(value, bool):
            raise _pattern_error("exists match pattern must be either true or false.")
    elif name == "numeric":
        if not isinstance(value, list) or not value or len(value) % 2 or len(value) > 4:
            raise _pattern_error("Value of numeric must be an array.")
        for op, number in zip(value[::2], value[1::2]):
            if op not in _NUMERIC_OPS:
                raise _pattern_error(f"Unrecognized numeric range operator: {op}")
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise _pattern_error(f"Value of {op} must be numeric")
    elif name == "anything-but":
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in {"prefix", "suffix", "equals-ignore-case",
                                                             "wildcard"}:
                raise _pattern_error("Unsupported anything-but pattern: " + ",".join(value))
            _validate_filter(key, value)
        elif isinstance(value, list):
            if not value or any(isinstance(v, (dict, list)) for v in value):
                raise _pattern_error("Inside anything but list, start|null|boolean is not supported.")


def matches(pattern: dict | str, event: dict) -> bool:
    """Whether ``event`` matches the event ``pattern`` (a dict or its JSON text), as AWS decides."""
    if isinstance(pattern, str):
        pattern = validate_pattern(pattern)
    return _match_node(pattern, event)


def _match_node(node: dict, value: Any) -> bool:
    for key, sub in node.items():
        if key == "$or":
            if not any(_match_node(branch, value) for branch in sub):
                return False
            continue
        children = _children(value, key)
        if isinstance(sub, dict):
            objects = [o for child in children for o in (child if isinstance(child, list) else [child])
                       if isinstance(o, dict)]
            # AWS flattens arrays of objects: ``crew.role`` is every element's role, so fields of
            # one nested pattern may match different elements
            if not (objects and _match_node(sub, objects)):
                # a nested pattern on a missing field still matches if all it asks is absence
                if children or not _only_absence(sub):
                    return False
        elif not _match_leaf(sub, _leaves(children)):
            return False
    return True


def _children(value: Any, key: str) -> list:
    """The values of ``key`` in ``value``, looking through arrays of objects as AWS does."""
    if isinstance(value, dict):
        return [value[key]] if key in value else []
    if isinstance(value, list):
        return [child for item in value for child in _children(item, key)]
    return []


def _leaves(children: list) -> list:
    out = []
    for child in children:
        if isinstance(child, list):
            out.extend(_leaves(child))
        elif not isinstance(child, dict):
            out.append(child)
    return out


def _only_absence(node: dict) -> bool:
    for key, sub in node.items():
        if key == "$or":
            return any(_only_absence(b) for b in sub)
        if isinstance(sub, dict):
            if not _only_absence(sub):
                return False
        elif {"exists": False} not in sub:
            return False
    return True


def _match_leaf(filters: list, values: list) -> bool:
    for f in filters:
        if isinstance(f, dict) and "exists" in f:
            if bool(values) == f["exists"]:
                return True
            continue
        if any(_match_value(f, v) for v in values):  # a missing field has no values: even
            return True                                   # [null] needs an explicit null
    return False


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _match_value(f: Any, v: Any) -> bool:
    if not isinstance(f, dict):
        if _is_number(f) and _is_number(v):
            return float(f) == float(v)
        if isinstance(f, bool) or isinstance(v, bool):
            return type(f) is type(v) and f == v  # true is not 1
        return f == v
    name, arg = next(iter(f.items()))
    if name == "prefix" or name == "suffix":
        if not isinstance(v, str):
            return False
        fold = isinstance(arg, dict)
        arg = arg["equals-ignore-case"] if fold else arg
        text, arg = (v.lower(), arg.lower()) if fold else (v, arg)
        return text.startswith(arg) if name == "prefix" else text.endswith(arg)
    if name == "equals-ignore-case":
        return isinstance(v, str) and v.lower() == arg.lower()
    if name == "wildcard":
        return isinstance(v, str) and re.fullmatch(
            ".*".join(re.escape(part) for part in re.split(r"(?<!\\)\*", arg)).replace(r"\\\*", r"\*"),
            v, re.S) is not None
    if name == "numeric":
        if not _is_number(v):
            return False
        ops = {"<": v.__lt__, "<=": v.__le__, "=": v.__eq__, ">=": v.__ge__, ">": v.__gt__}
        return all(ops[op](number) is True for op, number in zip(arg[::2], arg[1::2]))
    if name == "cidr":
        try:
            return ipaddress.ip_address(v) in ipaddress.ip_network(arg, strict=False)
        except (ValueError, TypeError):
            return False
    if name == "anything-but":
        if isinstance(arg, dict):
            return isinstance(v, str) and not _match_value(arg, v)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_match_value(x, v) for x in excluded)
    return False


# --- events and their delivery ------------------------------------------------------------------
def _now_iso() -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(source: str, detail_type: str, detail: dict, resources: list, account: str,
              region: str, time: str | None = None) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "account": account, "time": time or _now_iso(), "region": region,
            "resources": resources, "detail": detail}


def _bus(account: str, region: str, name: str):
    from moto.events.models import events_backends

    return events_backends[account][region].describe_event_bus(name)


def _dispatch(account: str, region: str, bus_name: str, event: dict) -> None:
    with _lock:
        rules = list(_bus(account, region, bus_name).rules.values())
    for rule in rules:
        if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
            continue  # disabled rules and schedule-only rules do not match events
        try:
            if not matches(rule.event_pattern.get_pattern(), event):
                continue
        except Exception:
            continue
        for target in list(rule.targets):
            try:
                _deliver(rule, target, event)
            except Exception:
                _log.exception("rule %s: delivery to %s failed", rule.name, target.get("Arn"))


def _json_path(event: Any, path: str) -> Any:
    """A JSONPath in dot notation (``$.detail.state.value``, ``$.resources[0]``) → value or _MISSING."""
    if not path.startswith("$"):
        raise ValueError(f"Invalid JSON path {path!r}")
    value = event
    for part in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path[1:]):
        key, index = part
        if key:
            if not isinstance(value, dict) or key not in value:
                return _MISSING
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
    return value


def _transform(rule, transformer: dict, event: dict) -> str:
    """AWS's InputTransformer: ``<name>`` placeholders, JSON-quoted outside strings, raw inside."""
    values = {name: _json_path(event, path)
              for name, path in (transformer.get("InputPathsMap") or {}).items()}
    values.update({"aws.events.rule-arn": rule.arn, "aws.events.rule-name": rule.name,
                   "aws.events.event.ingestion-time": _now_iso(), "aws.events.event": event,
                   "aws.events.event.json": event})
    template = transformer.get("InputTemplate") or ""

    def placeholder(name: str) -> bool:
        return name in values

    probe = re.sub(r"<([^<>\s]+)>", lambda m: "null" if placeholder(m.group(1)) else m.group(0),
                   template)
    try:
        json.loads(probe)
        json_template = True
    except ValueError:
        json_template = False
    out, in_string, i = [], False, 0
    while i < len(template):
        ch = template[i]
        m = re.match(r"<([^<>\s]+)>", template[i:]) if ch == "<" else None
        if m and placeholder(m.group(1)):
            value = values[m.group(1)]
            if value is _MISSING:
                value = None
            if json_template and not in_string:
                out.append(json.dumps(value))
            elif isinstance(value, str):
                out.append(json.dumps(value)[1:-1] if in_string else value)
            else:
                out.append("" if value is None and in_string else json.dumps(value))
            i += len(m.group(0))
            continue
        if ch == '"' and (i == 0 or template[i - 1] != "\\"):
            in_string = not in_string
        out.append(ch)
        i += 1
    return "".join(out)


def target_input(rule, target: dict, event: dict) -> str:
    """The text EventBridge sends to ``target`` for ``event`` (Input, InputPath, InputTransformer)."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        value = _json_path(event, target["InputPath"])
        return json.dumps(None if value is _MISSING else value)
    if target.get("InputTransformer"):
        return _transform(rule, target["InputTransformer"], event)
    return json.dumps(event)


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _deliver(rule, target: dict, event: dict) -> None:
    arn = target["Arn"]
    parts = arn.split(":", 5)
    service, region, account = parts[2], parts[3], parts[4]
    resource = parts[5] if len(parts) > 5 else ""
    text = target_input(rule, target, event)
    if service in _handlers:
        _handlers[service](target, _decoded(text))
    elif service == "sns":
        from moto.sns.models import sns_backends

        sns_backends[account][region].publish(text, arn)
    elif service == "lambda":
        from labkit.local import awslambda

        awslambda.invoke_async(account, region, arn, text.encode())
    elif service == "sqs":
        from moto.sqs.models import sqs_backends

        group = (target.get("SqsParameters") or {}).get("MessageGroupId")
        sqs_backends[account][region].send_message(resource, text, group_id=group)
    elif service == "logs":
        from moto.logs.models import logs_backends

        group = resource.split(":", 1)[1] if resource.startswith("log-group:") else resource
        logs = logs_backends[account][region]
        stream = event.get("id", str(uuid.uuid4()))
        logs.ensure_log_stream(group, stream)
        logs.put_log_events(group, stream, [{"timestamp": int(clock.now().timestamp() * 1000),
                                              "message": text}])
    elif service == "events" and resource.startswith("event-bus/"):
        forwarded = dict(event, id=str(uuid.uuid4()), account=account, region=region)
        _dispatch(account, region, resource.split("/", 1)[1], forwarded)
    else:
        _log.warning("rule %s: targets of service %s are not emulated (%s)", rule.name, service, arn)


# --- scheduled rules on the virtual clock --------------------------------------------------------
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_schedules: dict[tuple, dict] = {}  # (account, region, rule name) -> {"expression", "next"}


def validate_schedule(expression: str) -> None:
    """``rate(1 minute)`` / ``rate(5 minutes)`` / ``cron(...)`` as AWS accepts them."""
    from moto.events.exceptions import ValidationException

    match = _RATE.match(expression)
    if match:
        value, unit = int(match.group(1)), match.group(2)
        if value > 0 and (value == 1) == (not unit.endswith("s")):
            return
    elif expression.startswith("cron("):
        from labkit.local.glue import validate_schedule as valid_cron

        try:
            valid_cron(expression)
            return
        except Exception:
            pass
    raise ValidationException("Parameter ScheduleExpression is not valid.")


def _cron_part_matches(part: str, value: int, low: int, names: list[str]) -> bool:
    base, _, step = part.partition("/")
    if base in ("*", "?"):
        start, end = low, None
    else:
        ends = [names.index(e.upper()) + low if e.upper() in names else int(e) for e in base.split("-")]
        start, end = ends[0], ends[-1] if (len(ends) > 1 or step) else ends[0]
        if step and len(ends) == 1:
            end = None
    if value < start or (end is not None and value > end):
        return False
    return (value - start) % int(step or 1) == 0


def _cron_due(expression: str, when) -> bool:
    """Whether the cron expression fires at the minute ``when`` (UTC). L, W and # never fire."""
    fields = expression[5:-1].split()
    values = (when.minute, when.hour, when.day, when.month, (when.isoweekday() % 7) + 1, when.year)
    lows = (0, 0, 1, 1, 1, 1970)
    names = ([], [], [], "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(),
             "SUN MON TUE WED THU FRI SAT".split(), [])
    try:
        return all(field == "?" or any(_cron_part_matches(p, v, low, n) for p in field.split(","))
                   for field, v, low, n in zip(fields, values, lows, names))
    except ValueError:
        return False


def _next_due(expression: str, after):
    from datetime import timedelta

    match = _RATE.match(expression)
    if match:
        return after + timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")])
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(366 * 24 * 60):
        if _cron_due(expression, moment):
            return moment
        moment += timedelta(minutes=1)
    return None


# Scheduled times delivered per rule per clock jump. AWS delivers every one in real time; a virtual
# jump of months over a rate(1 minute) rule would otherwise deliver hundreds of thousands at once.
CATCH_UP_LIMIT = 100


def _fire_schedules(now) -> None:
    """Clock listener: every due scheduled rule sends AWS's "Scheduled Event" to its own targets."""
    from moto.events.models import events_backends

    for key, entry in list(_schedules.items()):
        account, region, name = key
        try:
            rule = events_backends[account][region].describe_event_bus("default").rules.get(name)
        except Exception:
            rule = None
        if rule is None or rule.scheduled_expression != entry["expression"]:
            _schedules.pop(key, None)
            continue
        if entry.get("jump") != clock.jump():
            entry["jump"], entry["fired"] = clock.jump(), 0
        while entry["next"] is not None and entry["next"] <= now:
            if entry["fired"] >= CATCH_UP_LIMIT:  # a long clock jump: skip to the next time after now
                entry["next"] = _next_due(entry["expression"], now)
                break
            entry["fired"] += 1
            due, entry["next"] = entry["next"], _next_due(entry["expression"], entry["next"])
            if rule.state != "ENABLED":
                continue
            event = _envelope("aws.events", "Scheduled Event", {}, [rule.arn], account, region,
                              due.strftime("%Y-%m-%dT%H:%M:%SZ"))
            for target in list(rule.targets):
                try:
                    _deliver(rule, target, event)
                except Exception:
                    _log.exception("rule %s: delivery to %s failed", rule.name, target.get("Arn"))


# --- moto hooks ---------------------------------------------------------------------------------
def _time_text(value: Any) -> str | None:
    from datetime import datetime, timezone

    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _put_events(self, entries: list[dict]) -> list[dict]:
    """Replaces moto's: AWS's entry validation, then matching and delivery for every entry."""
    from moto.events.exceptions import ValidationException

    if len(entries) > 10:
        raise ValidationException("1 validation error detected: Value '[PutEventsRequestEntry]' at "
                                  "'entries' failed to satisfy constraint: Member must have length "
                                  "less than or equal to 10")
    results, accepted = [], []
    for entry in entries:
        problem = None
        for field in ("Source", "DetailType", "Detail"):
            if not entry.get(field):
                problem = ("InvalidArgument", f"Parameter {field} is not valid. Reason: {field} is a "
                                              f"required argument.")
                break
        detail = None
        if problem is None:
            try:
                detail = json.loads(entry["Detail"])
                if not isinstance(detail, dict):
                    raise ValueError
            except ValueError:
                problem = ("MalformedDetail", "Detail is malformed.")
        if problem is None and entry["Source"].startswith("aws."):
            problem = ("NotAuthorizedForSourceException", "Not authorized for the source.")
        if problem:
            results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
            continue
        bus = (entry.get("EventBusName") or "default").split("/")[-1]
        self.describe_event_bus(bus)  # ResourceNotFoundException as AWS
        event = _envelope(entry["Source"], entry["DetailType"], detail,
                          list(entry.get("Resources") or []), self.account_id, self.region_name,
                          _time_text(entry.get("Time")))
        results.append({"EventId": event["id"]})
        accepted.append((bus, event))
    for bus, event in accepted:
        _dispatch(self.account_id, self.region_name, bus, event)
    return results


_ORIGINAL: dict[str, Any] = {}


def _put_rule(self, name, *args, **kwargs):
    if kwargs.get("event_pattern"):
        validate_pattern(kwargs["event_pattern"])
    expression = kwargs.get("scheduled_expression")
    if expression:
        validate_schedule(expression)
    rule = _ORIGINAL["put_rule"](self, name, *args, **kwargs)
    key = (self.account_id, self.region_name, name)
    if expression and rule.event_bus_name == "default":
        if _schedules.get(key, {}).get("expression") != expression:
            _schedules[key] = {"expression": expression, "next": _next_due(expression, clock.now())}
    else:
        _schedules.pop(key, None)
    return rule


_REQUIRED_EVENT_FIELDS = ("id", "account", "source", "time", "region", "detail-type")


def _response_test_event_pattern(self):
    from moto.events.exceptions import InvalidEventPatternException

    pattern = validate_pattern(self._get_param("EventPattern"))
    try:
        event = json.loads(self._get_param("Event") or "")
    except ValueError:
        raise InvalidEventPatternException(reason="Event is not valid JSON") from None
    if not isinstance(event, dict):
        raise InvalidEventPatternException(reason="Event is not a JSON object")
    missing = [field for field in _REQUIRED_EVENT_FIELDS if field not in event]
    if missing:
        raise InvalidEventPatternException(
            reason=f"Parameter Event is not valid: the event is missing {', '.join(missing)}")
    return json.dumps({"Result": matches(pattern, event)})


def install() -> None:
    from moto.events.models import EventsBackend
    from moto.events.responses import EventsHandler

    from labkit.local.server import on_reset

    clock.on_tick(_fire_schedules)
    on_reset(_schedules.clear)

    _ORIGINAL.setdefault("put_rule", EventsBackend.put_rule)
    EventsBackend.put_rule = _put_rule
    EventsBackend.put_events = _put_events
    EventsHandler.test_event_pattern = _response_test_event_pattern
