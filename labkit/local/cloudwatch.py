"""CloudWatch + SNS + Budgets engine: alarms that really evaluate, e-mail that really arrives.

moto stores alarms but never evaluates them, starts them in OK, publishes nothing on a state change
and has no alarm history; SNS e-mail subscriptions are auto-confirmed and e-mail delivery is a
no-op; Budgets never sees any spend. This engine fills those gaps (hook points: moto 5.2.5's
``CloudWatchBackend.put_metric_alarm/put_metric_data``, ``Alarm.update_state``,
``SNSBackend.subscribe``, ``Subscription.publish``, ``SNSResponse.confirm_subscription``,
``BudgetsResponse``) so that the same boto3 calls give what AWS gives:

* alarms start in INSUFFICIENT_DATA and are evaluated on every ``put_metric_data`` and on every
  tick of the virtual clock: statistic per period, EvaluationPeriods, DatapointsToAlarm, the four
  threshold comparison operators and TreatMissingData;
* each state change is written to the alarm history (``describe_alarm_history``) and, when actions
  are enabled, published to the SNS topics of the new state's actions in AWS's alarm message format;
* e-mail subscriptions stay ``PendingConfirmation`` until confirmed with the token of the
  confirmation e-mail (``confirm_subscription``), like a person clicking the link; messages to
  ``email`` / ``email-json`` endpoints land in a local outbox (``/_labkit/outbox``);
* a billing simulator (``/_labkit/billing``) publishes ``AWS/Billing EstimatedCharges``
  (Currency=USD, us-east-1) as the virtual clock advances; budgets report that spend as
  ``CalculatedSpend`` and send their notifications when a threshold is crossed.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from labkit.local import clock

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)", "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)",
}
EMAIL_PROTOCOLS = ("email", "email-json")
THRESHOLD_OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_lock = threading.RLock()
_outbox: list[dict] = []
_history: dict[tuple[str, str], list[dict]] = {}  # (account, region) -> items, kept after deletion
_billing = {"usd_per_day": 0.0, "charges": 0.0, "last": None, "month": None, "emitted_hour": None}
_budget_alerts: dict[tuple[str, str, str], bool] = {}  # (account, budget, notification key) -> sent


# --- time ---------------------------------------------------------------------------------------
def _naive_now() -> datetime:
    """moto stores naive UTC datetimes; ours come from the virtual clock."""
    return clock.now().replace(tzinfo=None)


def _aware(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return _aware(value).strftime("%Y-%m-%dT%H:%M:%S.") + f"{_aware(value).microsecond // 1000:03d}+0000"


# --- the outbox ---------------------------------------------------------------------------------
def deliver_email(to: str, subject: str, body: str, *, protocol: str = "email", kind: str,
                  topic_arn: str | None = None, token: str | None = None) -> dict:
    """Append one e-mail to the local outbox (what AWS would have sent to ``to``)."""
    message = {"id": str(uuid.uuid4()), "time": clock.now().isoformat(), "to": to,
               "protocol": protocol, "subject": subject, "body": body, "kind": kind,
               "topic_arn": topic_arn}
    if token:
        message["token"] = token
    with _lock:
        _outbox.append(message)
    return message


# --- CloudWatch: evaluation ---------------------------------------------------------------------
def _matches(datum, alarm) -> bool:
    if datum.namespace != alarm.namespace or datum.name != alarm.metric_name:
        return False
    if alarm.unit and datum.unit and datum.unit != alarm.unit:
        return False
    wanted = sorted((d.name, d.value) for d in alarm.dimensions)
    return sorted((d.name, d.value) for d in datum.dimensions) == wanted


def _statistic(data: list, alarm) -> tuple[float, float]:
    """(value, sample count) of one period's datapoints for the alarm's statistic."""
    singles = [d.value for d in data if hasattr(d, "value")]
    aggs = [d for d in data if not hasattr(d, "value")]
    count = len(singles) + sum(a.sample_count for a in aggs)
    total = sum(singles) + sum(a.sum for a in aggs)
    if alarm.extended_statistic:
        ordered = sorted(singles + [a.sum / a.sample_count for a in aggs if a.sample_count])
        q = float(alarm.extended_statistic[1:]) / 100
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], count
    stat = alarm.statistic
    if stat == "SampleCount":
        return float(count), count
    if stat == "Sum":
        return total, count
    if stat == "Average":
        return total / count, count
    if stat == "Maximum":
        return max(singles + [a.max for a in aggs]), count
    return min(singles + [a.min for a in aggs]), count


def _index(backend, namespace: str | None = None) -> dict[tuple[str, str], list]:
    """The backend's datapoints grouped by (namespace, metric name): one pass for many alarms."""
    series: dict[tuple[str, str], list] = {}
    for datum in list(backend.metric_data):
        if namespace is None or datum.namespace == namespace:
            series.setdefault((datum.namespace, datum.name), []).append(datum)
    return series


def evaluate_alarm(backend, alarm, now: datetime | None = None, series: dict | None = None) -> None:
    """Evaluate one metric alarm at virtual time ``now``, as CloudWatch does every minute.

    Serialised: the clock thread and request threads must not both record the same change."""
    with _lock:
        _evaluate_alarm(backend, alarm, now, series)


def _evaluate_alarm(backend, alarm, now: datetime | None, series: dict | None) -> None:
    if alarm.rule is not None or alarm.metric_data_queries or alarm.comparison_operator not in \
            THRESHOLD_OPERATORS or not alarm.period or not alarm.evaluation_periods:
        return  # composite, metric-math and anomaly-detection alarms are not evaluated
    now = now or clock.now()
    period = int(alarm.period)
    n = int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    threshold = float(alarm.threshold)
    compare, words = THRESHOLD_OPERATORS[alarm.comparison_operator]
    current = int(now.timestamp()) // period
    buckets: dict[int, list] = {}
    candidates = (series.get((alarm.namespace, alarm.metric_name), []) if series is not None
                  else backend.metric_data)
    for datum in list(candidates):
        if _matches(datum, alarm):
            ts = _aware(datum.timestamp)
            if ts <= now:
                buckets.setdefault(int(ts.timestamp()) // period, []).append(datum)
    # the current period counts once it has data; until then the window ends at the last full one
    end = current if current in buckets else current - 1
    window = list(range(end - n + 1, end + 1))
    points = []  # (bucket, value or None, breaching or None)
    for b in window:
        if b in buckets:
            value, count = _statistic(buckets[b], alarm)
            points.append((b, value, count, compare(value, threshold)))
        else:
            points.append((b, None, 0, None))
    missing = alarm.treat_missing_data or "missing"
    present = [p for p in points if p[1] is not None]
    if missing == "breaching":
        flags = [True if p[3] is None else p[3] for p in points]
    elif missing == "notBreaching":
        flags = [False if p[3] is None else p[3] for p in points]
    else:
        flags = [p[3] for p in present]
    if not flags:
        if missing == "ignore":
            return
        new = "INSUFFICIENT_DATA"
        reason = (f"Insufficient Data: {n} datapoint{'s' if n > 1 else ''} were unknown.")
    else:
        breaching = sum(1 for f in flags if f)
        new = "ALARM" if breaching >= m else "OK"
        shown = [p for p in present if (p[3] if new == "ALARM" else not p[3])] or present
        if shown:
            listed = ", ".join(
                f"{p[1]:g} ({datetime.fromtimestamp(p[0] * period, timezone.utc):%d/%m/%y %H:%M:%S})"
                for p in reversed(shown))
            many = len(shown) > 1
            counted = (f"{len(shown)} out of the last {n} datapoints" if n > 1 else "1 datapoint")
            relation = words if new == "ALARM" else f"not {words}"
            reason = (f"Threshold Crossed: {counted} [{listed}] {'were' if many else 'was'} "
                      f"{relation} the threshold ({threshold:g}).")
        else:
            reason = (f"Threshold Crossed: no datapoints were received for {n} period"
                      f"{'s' if n > 1 else ''} and {n} missing datapoint{'s' if n > 1 else ''} "
                      f"{'were' if n > 1 else 'was'} treated as [{missing[0].upper() + missing[1:]}].")
    if new == alarm.state_value:
        return
    stat = alarm.extended_statistic or alarm.statistic
    reason_data = json.dumps({
        "version": "1.0", "queryDate": _iso(now),
        "startDate": _iso(datetime.fromtimestamp(window[0] * period, timezone.utc)),
        "statistic": stat, "period": period,
        "recentDatapoints": [p[1] for p in present],
        "threshold": threshold,
        "evaluatedDatapoints": [{"timestamp": _iso(datetime.fromtimestamp(p[0] * period, timezone.utc)),
                                 "sampleCount": float(p[2]), "value": p[1]} for p in reversed(present)],
    }, separators=(",", ":"))
    alarm.update_state(reason, reason_data, new)


def evaluate_all(now: datetime | None = None, namespace: str | None = None) -> None:
    """Evaluate every metric alarm in every account and region (or those of one namespace)."""
    from moto.cloudwatch.models import cloudwatch_backends

    for _account, regions in list(cloudwatch_backends.items()):
        for _region, backend in list(regions.items()):
            alarms = [a for a in list(backend.alarms.values())
                      if namespace is None or a.namespace == namespace]
            if alarms:
                series = _index(backend, namespace)
                for alarm in alarms:
                    evaluate_alarm(backend, alarm, now, series)


# --- CloudWatch: history and actions ------------------------------------------------------------
def _history_of(alarm) -> list[dict]:
    account = alarm.alarm_arn.split(":")[4]
    return _history.setdefault((account, alarm.region_name), [])


def _add_history(alarm, item_type: str, summary: str, data: dict) -> None:
    with _lock:
        _history_of(alarm).append({
            "AlarmName": alarm.name, "AlarmType": "CompositeAlarm" if alarm.rule else "MetricAlarm",
            "Timestamp": clock.now(), "HistoryItemType": item_type, "HistorySummary": summary,
            "HistoryData": json.dumps(data, default=str),
        })


def _alarm_message(alarm, old: str) -> dict:
    """The JSON CloudWatch sends to SNS on a state change (documented alarm message format)."""
    account = alarm.alarm_arn.split(":")[4]
    return {
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _iso(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason,
        "StateChangeTime": _iso(alarm.state_updated_timestamp),
        "Region": REGION_NAMES.get(alarm.region_name, alarm.region_name), "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old, "OKActions": alarm.ok_actions, "AlarmActions": alarm.alarm_actions,
        "InsufficientDataActions": alarm.insufficient_data_actions,
        "Trigger": {
            "MetricName": alarm.metric_name, "Namespace": alarm.namespace,
            "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
            "Statistic": (alarm.statistic or "").upper(), "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": int(alarm.period or 0), "EvaluationPeriods": int(alarm.evaluation_periods or 0),
            "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods or 0),
            "ComparisonOperator": alarm.comparison_operator, "Threshold": float(alarm.threshold or 0),
            "TreatMissingData": alarm.treat_missing_data or "missing",
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
        },
    }


def _run_actions(alarm, old: str) -> None:
    if not alarm.actions_enabled:
        return
    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
               "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[alarm.state_value]
    from moto.sns.models import sns_backends

    for arn in actions or []:
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            continue  # Auto Scaling / EC2 / SSM actions are not emulated
        try:
            topic_backend = sns_backends[parts[4]][parts[3]]
            where = REGION_NAMES.get(alarm.region_name, alarm.region_name)
            subject = f'{alarm.state_value}: "{alarm.name}" in {where}'
            topic_backend.publish(json.dumps(_alarm_message(alarm, old)), arn, subject=subject[:100])
            _add_history(alarm, "Action", f"Successfully executed action {arn}",
                         {"actionState": "Succeeded",
                          "stateUpdateTimestamp": _iso(alarm.state_updated_timestamp),
                          "notificationResource": arn, "publishedMessage": {}})
        except Exception as exc:  # e.g. the topic was deleted: AWS records a failed action
            _add_history(alarm, "Action", f"Failed to execute action {arn}",
                         {"actionState": "Failed", "error": f"{type(exc).__name__}: {exc}"})


def _update_state(self, reason: str, reason_data: str, state_value: str) -> None:
    """Replaces moto's ``Alarm.update_state``: history item + SNS actions, like CloudWatch."""
    with _lock:
        _apply_state(self, reason, reason_data, state_value)


def _dimensions(dimensions) -> dict:
    return {getattr(d, "name", None) or d["Name"]: getattr(d, "value", None) or d["Value"]
            for d in dimensions or []}


def _alarm_metrics(alarm) -> list[dict]:
    """``configuration.metrics`` of the EventBridge alarm event: one metricStat, or the queries."""
    if alarm.metric_name:
        stat = alarm.statistic or alarm.extended_statistic
        return [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)), "returnData": True,
                 "metricStat": {"metric": {"namespace": alarm.namespace, "name": alarm.metric_name,
                                           "dimensions": _dimensions(alarm.dimensions)},
                                "period": int(alarm.period or 0), "stat": stat}}]
    metrics = []
    for query in alarm.metric_data_queries or []:
        item = {"id": query.id, "returnData": bool(query.return_data)}
        if query.expression:
            item.update(expression=query.expression, label=query.label)
        if query.metric_stat:
            ms = query.metric_stat
            metric = ms.get("Metric", {}) if isinstance(ms, dict) else {}
            item["metricStat"] = {"metric": {"namespace": metric.get("Namespace"),
                                             "name": metric.get("MetricName"),
                                             "dimensions": _dimensions(metric.get("Dimensions"))},
                                  "period": int(ms.get("Period", 0)), "stat": ms.get("Stat")}
        metrics.append(item)
    return metrics


def _put_state_change_event(alarm, previous: tuple) -> None:
    """EventBridge's "CloudWatch Alarm State Change" event (sent whether or not actions are on)."""
    from labkit.local.events import put_aws_event

    def state(value, reason, reason_data, timestamp) -> dict:
        out = {"value": value, "reason": reason or "", "timestamp": _iso(timestamp)}
        if reason_data:
            out["reasonData"] = reason_data
        return out

    configuration = {"metrics": _alarm_metrics(alarm)}
    if alarm.description:
        configuration["description"] = alarm.description
    account, region = alarm.alarm_arn.split(":")[4], alarm.region_name
    put_aws_event("aws.cloudwatch", "CloudWatch Alarm State Change", {
        "alarmName": alarm.name,
        "state": state(alarm.state_value, alarm.state_reason, alarm.state_reason_data,
                       alarm.state_updated_timestamp),
        "previousState": state(*previous),
        "configuration": configuration,
    }, resources=[alarm.alarm_arn], account=account, region=region)


def _apply_state(self, reason: str, reason_data: str, state_value: str) -> None:
    old = self.state_value
    old_reason = self.state_reason
    previous = (old, old_reason, self.state_reason_data, self.state_updated_timestamp)
    self.state_reason = reason
    self.state_reason_data = reason_data
    self.state_value = state_value
    self.state_updated_timestamp = _naive_now()
    new_state = {"stateValue": state_value, "stateReason": reason}
    try:
        new_state["stateReasonData"] = json.loads(reason_data) if reason_data else {}
    except ValueError:
        pass
    _add_history(self, "StateUpdate", f"Alarm updated from {old} to {state_value}",
                 {"version": "1.0", "oldState": {"stateValue": old, "stateReason": old_reason},
                  "newState": new_state})
    if old != state_value:
        _run_actions(self, old)
        _put_state_change_event(self, previous)


def _install_cloudwatch() -> None:
    from moto.cloudwatch import models, responses
    from moto.cloudwatch.exceptions import ValidationError
    from moto.core.responses import ActionResult

    models.utcnow = _naive_now  # alarm and metric timestamps on the virtual clock
    original_init = models.Alarm.__init__

    def alarm_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.state_value = "INSUFFICIENT_DATA"  # AWS: every new alarm starts here
        self.state_reason = "Unchecked: Initial alarm creation"

    models.Alarm.__init__ = alarm_init
    models.Alarm.update_state = _update_state

    original_put_alarm = models.CloudWatchBackend.put_metric_alarm

    def put_metric_alarm(self, name, namespace, metric_name, comparison_operator, evaluation_periods,
                         period, threshold, statistic, *args, **kwargs):
        if period is not None and not kwargs.get("metric_data_queries"):
            p = int(period)
            if p not in (10, 20, 30) and (p <= 0 or p % 60):
                raise ValidationError("Period must be 10, 20, 30, or a multiple of 60.")
        dpa = kwargs.get("datapoints_to_alarm")
        if dpa is not None and evaluation_periods is not None and int(dpa) > int(evaluation_periods):
            raise ValidationError("DatapointsToAlarm must be less than or equal to EvaluationPeriods")
        old = self.alarms.get(name)
        alarm = original_put_alarm(self, name, namespace, metric_name, comparison_operator,
                                   evaluation_periods, period, threshold, statistic, *args, **kwargs)
        if old is not None:  # AWS: an update keeps the state and overwrites the configuration
            for attr in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
                setattr(alarm, attr, getattr(old, attr))
            _add_history(alarm, "ConfigurationUpdate", f'Alarm "{name}" updated',
                         {"type": "Update", "version": "1.0"})
        else:
            _add_history(alarm, "ConfigurationUpdate", f'Alarm "{name}" created',
                         {"type": "Create", "version": "1.0"})
        # Documented deviation: AWS evaluates asynchronously (about once a minute), never inside
        # PutMetricAlarm; lab 01's checks and tests expect the new state at once, so we evaluate here.
        evaluate_alarm(self, alarm)
        return alarm

    models.CloudWatchBackend.put_metric_alarm = put_metric_alarm

    original_delete = models.CloudWatchBackend.delete_alarms

    def delete_alarms(self, alarm_names):
        for name in alarm_names:
            if name in self.alarms:
                _add_history(self.alarms[name], "ConfigurationUpdate", f'Alarm "{name}" deleted',
                             {"type": "Delete", "version": "1.0"})
        return original_delete(self, alarm_names)

    models.CloudWatchBackend.delete_alarms = delete_alarms

    original_put_data = models.CloudWatchBackend.put_metric_data

    def put_metric_data(self, namespace, metric_data):
        original_put_data(self, namespace, metric_data)
        alarms = [a for a in list(self.alarms.values()) if a.namespace == namespace]
        if alarms:
            series = _index(self, namespace)
            for alarm in alarms:
                evaluate_alarm(self, alarm, series=series)

    models.CloudWatchBackend.put_metric_data = put_metric_data

    original_stats = models.CloudWatchBackend.get_metric_statistics

    def get_metric_statistics(self, namespace, metric_name, start_time, end_time, period, stats,
                              dimensions, unit=None):
        """AWS aligns each datapoint's Timestamp to the period boundary (moto starts the first
        period at the first datum's own time)."""
        raw = original_stats(self, namespace, metric_name, start_time, end_time, period, stats,
                             dimensions, unit)
        p = int(period)
        grouped: dict[int, Any] = {}
        for item in raw:
            for datum in item.metric_data:
                ts = datum.timestamp.replace(tzinfo=timezone.utc) if datum.timestamp.tzinfo is None \
                    else datum.timestamp
                key = int(ts.timestamp()) // p * p
                if key not in grouped:
                    aligned = datetime.fromtimestamp(key, timezone.utc).replace(tzinfo=None)
                    grouped[key] = models.Statistics(stats, aligned, datum.unit)
                grouped[key].metric_data.append(datum)
                grouped[key].unit = datum.unit
        return [grouped[k] for k in sorted(grouped)]

    models.CloudWatchBackend.get_metric_statistics = get_metric_statistics

    def describe_alarm_history(self):
        """moto has no DescribeAlarmHistory; answer it from the history the engine records."""
        name = self._get_param("AlarmName")
        item_type = self._get_param("HistoryItemType")
        types = self._get_param("AlarmTypes") or ["MetricAlarm"]  # AWS: metric alarms by default
        start = self._get_param("StartDate")
        end = self._get_param("EndDate")
        limit = int(self._get_param("MaxRecords") or 100)
        token = int(self._get_param("NextToken") or 0)
        items = list(_history.get((self.current_account, self.region), []))
        items = [i for i in items if (not name or i["AlarmName"] == name)
                 and (not item_type or i["HistoryItemType"] == item_type)
                 and i["AlarmType"] in types
                 and (not start or i["Timestamp"] >= _aware(start))
                 and (not end or i["Timestamp"] <= _aware(end))]
        if (self._get_param("ScanBy") or "TimestampDescending") == "TimestampDescending":
            items.reverse()
        page = items[token:token + limit]
        result: dict[str, Any] = {"AlarmHistoryItems": page}
        if token + limit < len(items):
            result["NextToken"] = str(token + limit)
        return ActionResult(result)

    responses.CloudWatchResponse.describe_alarm_history = describe_alarm_history


# --- SNS: confirmation and e-mail delivery ------------------------------------------------------
def _install_sns() -> None:
    from moto.core.responses import ActionResult
    from moto.sns import models, responses
    from moto.sns.exceptions import SNSInvalidParameter

    original_subscribe = models.SNSBackend.subscribe

    def subscribe(self, topic_arn, endpoint, protocol):
        if protocol in EMAIL_PROTOCOLS and not _EMAIL.match(endpoint or ""):
            raise SNSInvalidParameter("Invalid parameter: Email address")
        existing = self._find_subscription(topic_arn, endpoint, protocol)
        subscription = original_subscribe(self, topic_arn, endpoint, protocol)
        if protocol in EMAIL_PROTOCOLS and (existing is None or getattr(subscription, "_labkit_token", None)):
            if existing is None:
                subscription._labkit_token = secrets.token_hex(64)
                subscription.subscription_arn = "PendingConfirmation"  # what list_subscriptions shows
                subscription.attributes.update({"PendingConfirmation": "true",
                                                "ConfirmationWasAuthenticated": "false"})
            _send_confirmation(self, subscription)
        return subscription

    models.SNSBackend.subscribe = subscribe

    original_publish = models.Subscription.publish

    def publish(self, message, message_id, subject=None, message_attributes=None, group_id=None,
                deduplication_id=None, message_structure=None):
        if self.protocol not in EMAIL_PROTOCOLS:
            return original_publish(self, message, message_id, subject=subject,
                                    message_attributes=message_attributes, group_id=group_id,
                                    deduplication_id=deduplication_id,
                                    message_structure=message_structure)
        if getattr(self, "_labkit_token", None):
            return None  # AWS delivers nothing to an unconfirmed subscription
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
                message_attributes, message):
            return None
        if message_structure == "json":
            message = self._parse_message_structure(message, self.protocol)
        if self.protocol == "email-json":
            body = json.dumps(self.get_post_data(message, message_id, subject), indent=2)
        else:
            region = self.topic.arn.split(":")[3]
            body = (f"{message}\n\n--\nIf you wish to stop receiving notifications from this topic, "
                    f"please click or visit the link below to unsubscribe:\n"
                    f"https://sns.{region}.amazonaws.com/unsubscribe.html?SubscriptionArn={self.arn}"
                    f"&Endpoint={self.endpoint}\n")
        deliver_email(self.endpoint, subject or "AWS Notification Message", body,
                      protocol=self.protocol, kind="notification", topic_arn=self.topic.arn)
        return None

    models.Subscription.publish = publish

    original_subscribe_response = responses.SNSResponse.subscribe

    def subscribe_response(self):
        result = original_subscribe_response(self)
        arn = result.result.get("SubscriptionArn") if isinstance(result, ActionResult) else None
        subscription = self.backend.subscriptions.get(arn) if arn else None
        return_arn = str(self._get_param("ReturnSubscriptionArn") or "").lower() == "true"
        if subscription is not None and getattr(subscription, "_labkit_token", None) and not return_arn:
            return ActionResult({"SubscriptionArn": "pending confirmation"})
        return result

    responses.SNSResponse.subscribe = subscribe_response

    def confirm_subscription(self):
        """Confirm the subscription whose confirmation e-mail carried ``Token`` (AWS semantics)."""
        topic_arn = self._get_param("TopicArn")
        token = self._get_param("Token")
        if topic_arn not in self.backend.topics:
            from moto.sns.exceptions import SNSNotFoundError

            raise SNSNotFoundError("Topic does not exist")
        for subscription in self.backend.subscriptions.values():
            if subscription.topic.arn == topic_arn and getattr(subscription, "_labkit_token", None) == token:
                _confirm(subscription)
                return ActionResult({"SubscriptionArn": subscription.arn})
            used = getattr(subscription, "_labkit_used_token", None)
            if subscription.topic.arn == topic_arn and used == token:
                return ActionResult({"SubscriptionArn": subscription.arn})
        raise SNSInvalidParameter("Invalid token")

    responses.SNSResponse.confirm_subscription = confirm_subscription


def _send_confirmation(backend, subscription) -> None:
    region = subscription.topic.arn.split(":")[3]
    token = subscription._labkit_token
    link = (f"https://sns.{region}.amazonaws.com/confirmation.html?TopicArn={subscription.topic.arn}"
            f"&Token={token}&Endpoint={subscription.endpoint}")
    name = subscription.topic.display_name or subscription.topic.name
    body = (f"You have chosen to subscribe to the topic:\n{subscription.topic.arn}\n\n"
            f"To confirm this subscription, click or visit the link below (If this was in error no "
            f"action is necessary):\nConfirm subscription\n{link}\n")
    if subscription.protocol == "email-json":
        body = json.dumps({"Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()),
                           "Token": token, "TopicArn": subscription.topic.arn,
                           "Message": f"You have chosen to subscribe to the topic {subscription.topic.arn}.\n"
                                      "To confirm the subscription, visit the SubscribeURL included in "
                                      "this message.",
                           "SubscribeURL": link, "Timestamp": _iso(clock.now())}, indent=2)
    deliver_email(subscription.endpoint, f"{name} - AWS Notification - Subscription Confirmation"
                  if subscription.topic.display_name else "AWS Notification - Subscription Confirmation",
                  body, protocol=subscription.protocol, kind="confirmation",
                  topic_arn=subscription.topic.arn, token=token)


def _confirm(subscription) -> None:
    subscription._labkit_used_token = subscription._labkit_token
    subscription._labkit_token = None
    subscription.__dict__.pop("subscription_arn", None)
    subscription.confirmed = True
    subscription.attributes.update({"PendingConfirmation": "false",
                                    "ConfirmationWasAuthenticated": "true"})


# --- Billing simulator and Budgets --------------------------------------------------------------
def _emit_billing(now: datetime) -> None:
    """Accrue simulated charges up to ``now`` and publish EstimatedCharges once per virtual hour."""
    from moto.cloudwatch.models import cloudwatch_backends

    from labkit.backend import LOCAL_ACCOUNT_ID

    with _lock:
        state = _billing
        if state["last"] is None:
            state["last"] = now
        month = (now.year, now.month)
        if state["month"] is not None and state["month"] != month:
            state["charges"] = 0.0  # the billing metric is month-to-date
            _budget_alerts.clear()
        state["month"] = month
        elapsed = max(0.0, (now - state["last"]).total_seconds())
        state["charges"] += state["usd_per_day"] * elapsed / 86400
        state["last"] = now
        hour = now.replace(minute=0, second=0, microsecond=0)
        if state["usd_per_day"] <= 0 and state["charges"] <= 0:
            return
        if state["emitted_hour"] == hour:
            return
        state["emitted_hour"] = hour
        charges = round(state["charges"], 2)
    backend = cloudwatch_backends[LOCAL_ACCOUNT_ID]["us-east-1"]
    backend.put_metric_data("AWS/Billing", [{
        "MetricName": "EstimatedCharges", "Value": charges, "Unit": "None",
        "Timestamp": hour.replace(tzinfo=None),
        "Dimensions": [{"Name": "Currency", "Value": "USD"}]}])
    _check_budgets(now)


def _forecast(now: datetime) -> float:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + timedelta(days=32)).replace(day=1)
    done = max((now - start).total_seconds(), 3600.0)
    return _billing["charges"] * (nxt - start).total_seconds() / done


def _check_budgets(now: datetime) -> None:
    """Fill CalculatedSpend and send budget notifications whose threshold was crossed."""
    from moto.budgets.models import budgets_backends
    from moto.sns.models import sns_backends

    actual = _billing["charges"]
    forecast = _forecast(now)
    for _account, partitions in list(budgets_backends.items()):
        for backend in list(partitions.values()):
            for account_id, budgets in list(backend.budgets.items()):
                for name, budget in list(budgets.items()):
                    spec = budget.budget
                    if spec.get("BudgetType") != "COST":
                        continue
                    spec["CalculatedSpend"] = {
                        "ActualSpend": {"Amount": f"{actual:.2f}", "Unit": "USD"},
                        "ForecastedSpend": {"Amount": f"{forecast:.2f}", "Unit": "USD"}}
                    limit = float(spec.get("BudgetLimit", {}).get("Amount", 0) or 0)
                    for note in budget.notifications:
                        d = note.details
                        threshold = float(d.get("Threshold", 0))
                        if d.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE":
                            threshold = limit * threshold / 100
                        spend = actual if d.get("NotificationType") == "ACTUAL" else forecast
                        op = d.get("ComparisonOperator", "GREATER_THAN")
                        crossed = {"GREATER_THAN": spend > threshold, "LESS_THAN": spend < threshold,
                                   "EQUAL_TO": abs(spend - threshold) < 0.005}.get(op, False)
                        key = (account_id, name, json.dumps(d, sort_keys=True))
                        d["NotificationState"] = "ALARM" if crossed else "OK"
                        if not crossed or _budget_alerts.get(key):
                            continue
                        _budget_alerts[key] = True
                        kind = "Actual" if d.get("NotificationType") == "ACTUAL" else "Forecasted"
                        subject = f"AWS Budgets: {name} has exceeded your alert threshold"
                        body = (f"AWS Budget Notification {now:%B %d, %Y}\nAWS Account {account_id}\n\n"
                                f"Dear AWS Customer,\n\nYou requested that we alert you when the "
                                f"{kind} Cost associated with your {name} budget is "
                                f"{op.replace('_', ' ').lower()} {d.get('Threshold')}"
                                f"{'%' if d.get('ThresholdType', 'PERCENTAGE') == 'PERCENTAGE' else ' USD'}"
                                f" of your budgeted amount (${limit:.2f}).\nThe {kind} Cost associated "
                                f"with this budget is ${spend:.2f}.\n")
                        for sub in note.subscribers:
                            if sub.get("SubscriptionType") == "EMAIL":
                                deliver_email(sub["Address"], subject, body, kind="budget")
                            elif sub.get("SubscriptionType") == "SNS":
                                arn = sub["Address"].split(":")
                                try:
                                    sns_backends[arn[4]][arn[3]].publish(body, sub["Address"],
                                                                         subject=subject[:100])
                                except Exception:
                                    pass


# Budgets API reference, CostTypes: the defaults AWS applies to a COST budget
COST_TYPE_DEFAULTS = {"IncludeTax": True, "IncludeSubscription": True, "UseBlended": False,
                      "IncludeRefund": True, "IncludeCredit": True, "IncludeUpfront": True,
                      "IncludeRecurring": True, "IncludeOtherSubscription": True,
                      "IncludeSupport": True, "IncludeDiscount": True, "UseAmortized": False}


def _install_budgets() -> None:
    from moto.budgets import models, responses
    from moto.budgets.exceptions import NotFoundException
    from moto.core.exceptions import JsonRESTError

    original_create = models.BudgetsBackend.create_budget

    def create_budget(self, account_id, budget, notifications):
        for item in notifications or []:
            subs = item.get("Subscribers") or []
            if not 1 <= len(subs) <= 11:
                raise JsonRESTError("InvalidParameterException",
                                    "A notification must have between 1 and 11 subscribers")
            for sub in subs:
                if sub.get("SubscriptionType") == "EMAIL" and not _EMAIL.match(sub.get("Address", "")):
                    raise JsonRESTError("InvalidParameterException",
                                        f"Invalid email address: {sub.get('Address')}")
        if len(notifications or []) > 10:
            raise JsonRESTError("InvalidParameterException", "A budget can have at most 10 notifications")
        if budget.get("BudgetType") == "COST" and isinstance(budget.get("CostTypes"), dict):
            # AWS fills every CostTypes flag the request leaves out with its default
            budget = {**budget, "CostTypes": {**COST_TYPE_DEFAULTS, **budget["CostTypes"]}}
        original_create(self, account_id, budget, notifications)
        _check_budgets(clock.now())

    models.BudgetsBackend.create_budget = create_budget

    def describe_notifications_for_budget(self):
        account_id = self._get_param("AccountId")
        name = self._get_param("BudgetName")
        if name not in self.backend.budgets[account_id]:
            raise NotFoundException(f"Unable to get budget: {name} - the budget doesn't exist.")
        notes = self.backend.describe_notifications_for_budget(account_id=account_id, budget_name=name)
        return json.dumps({"Notifications": list(notes)})

    def describe_subscribers_for_notification(self):
        """moto lacks this Budgets call; answer it from the stored notification subscribers."""
        account_id = self._get_param("AccountId")
        name = self._get_param("BudgetName")
        wanted = self._get_param("Notification") or {}
        budget = self.backend.budgets[account_id].get(name)
        if budget is None:
            raise NotFoundException(f"Unable to get budget: {name} - the budget doesn't exist.")
        keys = ("NotificationType", "ComparisonOperator", "Threshold", "ThresholdType")
        for note in budget.notifications:
            if all(str(note.details.get(k, "PERCENTAGE" if k == "ThresholdType" else None)) ==
                   str(wanted.get(k, "PERCENTAGE" if k == "ThresholdType" else None)) for k in keys
                   if k != "Threshold") and float(note.details.get("Threshold", 0)) == float(
                    wanted.get("Threshold", 0)):
                return json.dumps({"Subscribers": note.subscribers})
        raise NotFoundException("Unable to get subscribers - the notification doesn't exist.")

    responses.BudgetsResponse.describe_notifications_for_budget = describe_notifications_for_budget
    responses.BudgetsResponse.describe_subscribers_for_notification = describe_subscribers_for_notification


# --- control routes, reset, install -------------------------------------------------------------
def _outbox_route(payload: dict) -> dict:
    """List (and optionally clear) the local e-mail outbox: ``{"to": addr, "kind": ..., "clear": bool}``."""
    with _lock:
        messages = [m for m in _outbox if (not payload.get("to") or m["to"] == payload["to"])
                    and (not payload.get("kind") or m["kind"] == payload["kind"])]
        if payload.get("clear"):
            _outbox[:] = [m for m in _outbox if m not in messages]
    return {"messages": messages}


def _billing_route(payload: dict) -> dict:
    """Set the simulated spend rate (``usd_per_day``) and/or month-to-date ``charges``; returns state."""
    now = clock.now()
    _emit_billing(now)  # accrue at the old rate first
    with _lock:
        if "usd_per_day" in payload:
            rate = float(payload["usd_per_day"])
            if rate < 0:
                raise ValueError("usd_per_day must be >= 0")
            _billing["usd_per_day"] = rate
        if "charges" in payload:
            _billing["charges"] = max(0.0, float(payload["charges"]))
            _billing["emitted_hour"] = None  # publish the new value at once
    _emit_billing(now)
    return {"usd_per_day": _billing["usd_per_day"], "charges": round(_billing["charges"], 2),
            "now": now.isoformat()}


def _reset() -> None:
    with _lock:
        _outbox.clear()
        _history.clear()
        _budget_alerts.clear()
        _billing.update({"usd_per_day": 0.0, "charges": 0.0, "last": None, "month": None,
                         "emitted_hour": None})


def _tick(now: datetime) -> None:
    _emit_billing(now)
    evaluate_all(now)


def install() -> None:
    """Patch moto's CloudWatch, SNS and Budgets and register the outbox / billing routes."""
    from labkit.local.server import control_route, on_reset

    _install_cloudwatch()
    _install_sns()
    _install_budgets()
    control_route("outbox")(_outbox_route)
    control_route("billing")(_billing_route)
    on_reset(_reset)
    clock.on_tick(_tick)
