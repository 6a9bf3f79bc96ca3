"""Checks of lab 01 (billing alarms): SNS topic + e-mail subscription, the billing alarm, the
monthly budget, the tested notification path, the alarm firing on simulated charges, clean-up.

Billing metrics exist only in us-east-1, so every check reads CloudWatch / SNS there.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from grader.checks.common import fail, number, require

TOPIC = "billing-alerts"
ALARM = "billing-10usd"
BUDGET = "monthly-cost"
BUDGET_LIMIT = 20.0  # USD
BUDGET_THRESHOLDS = {"ACTUAL": 80.0, "FORECASTED": 100.0}  # percent of the limit
REGION = "us-east-1"


def _client(aws, name: str):
    return aws.session.client(name, region_name=REGION)


def _topic_arn(aws) -> str | None:
    sns = _client(aws, "sns")
    token = None
    while True:
        page = sns.list_topics(**({"NextToken": token} if token else {}))
        for topic in page.get("Topics", []):
            if topic["TopicArn"].split(":")[-1] == TOPIC:
                return topic["TopicArn"]
        token = page.get("NextToken")
        if not token:
            return None


def _alarm(aws) -> dict | None:
    alarms = _client(aws, "cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    return alarms[0] if alarms else None


def check_topic(aws) -> None:
    """Task 1: topic ``billing-alerts`` with a confirmed e-mail subscription."""
    arn = _topic_arn(aws)
    require(arn is not None, f"there is no SNS topic '{TOPIC}' in {REGION}",
            f"create it with sns.create_topic(Name='{TOPIC}') in us-east-1")
    subs = _client(aws, "sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    emails = [s for s in subs if s["Protocol"] in ("email", "email-json")]
    if not emails:
        kinds = sorted({s["Protocol"] for s in subs}) or ["none"]
        fail(f"topic '{TOPIC}' has no e-mail subscription (protocols: {', '.join(kinds)})",
             "subscribe your address with Protocol='email'")
    confirmed = [s for s in emails if s["SubscriptionArn"] != "PendingConfirmation"]
    require(bool(confirmed), f"the e-mail subscription to '{TOPIC}' is still PendingConfirmation",
            "confirm it (the link in the e-mail; locally labkit.cloudwatch.confirm_email_subscription)")


def check_alarm(aws) -> None:
    """Task 2: the billing alarm watches Maximum EstimatedCharges in USD over 6 h, >= 10 USD."""
    alarm = _alarm(aws)
    require(alarm is not None, f"there is no alarm '{ALARM}' in {REGION}",
            "billing metrics exist only in us-east-1: create the alarm there with put_metric_alarm")
    require(alarm.get("Namespace") == "AWS/Billing" and alarm.get("MetricName") == "EstimatedCharges",
            f"alarm '{ALARM}' watches {alarm.get('Namespace')}/{alarm.get('MetricName')}",
            "watch Namespace='AWS/Billing', MetricName='EstimatedCharges'")
    dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    require(dims == {"Currency": "USD"}, f"alarm '{ALARM}' has dimensions {dims or 'none'}",
            "the total bill is the metric with exactly one dimension, Currency=USD")
    require(alarm.get("Statistic") == "Maximum",
            f"alarm '{ALARM}' uses {alarm.get('Statistic') or alarm.get('ExtendedStatistic')}",
            "the billing metric is a running month-to-date total: use Statistic='Maximum'")
    require(alarm.get("Period") == 21600, f"alarm '{ALARM}' has Period={alarm.get('Period')}",
            "billing data arrives a few times a day: use Period=21600 (6 hours)")
    require(alarm.get("EvaluationPeriods") == 1,
            f"alarm '{ALARM}' has EvaluationPeriods={alarm.get('EvaluationPeriods')}",
            "one period over the threshold is enough: EvaluationPeriods=1")
    require(float(alarm.get("Threshold", -1)) == 10.0,
            f"alarm '{ALARM}' has Threshold={alarm.get('Threshold')}", "the threshold is 10 (USD)")
    require(alarm.get("ComparisonOperator") in ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold"),
            f"alarm '{ALARM}' uses {alarm.get('ComparisonOperator')}",
            "alarm when charges reach the threshold: GreaterThanOrEqualToThreshold")
    arn = _topic_arn(aws)
    require(arn is not None and arn in alarm.get("AlarmActions", []),
            f"alarm '{ALARM}' does not notify topic '{TOPIC}' (AlarmActions={alarm.get('AlarmActions')})",
            "set AlarmActions=[topic_arn]")
    require(alarm.get("ActionsEnabled", True), f"alarm '{ALARM}' has its actions disabled",
            "enable them with ActionsEnabled=True")


def _notification(budgets, account, kind: str) -> dict | None:
    notes = budgets.describe_notifications_for_budget(AccountId=account, BudgetName=BUDGET)["Notifications"]
    for note in notes:
        if note.get("NotificationType") == kind and note.get("ComparisonOperator") == "GREATER_THAN":
            return note
    return None


def check_budget(aws) -> None:
    """Task 3: monthly COST budget in USD with ACTUAL and FORECASTED notifications, each with a
    subscriber."""
    budgets = _client(aws, "budgets")
    try:
        budget = budgets.describe_budget(AccountId=aws.account_id, BudgetName=BUDGET)["Budget"]
    except ClientError:
        fail(f"there is no budget '{BUDGET}'", "create it with budgets.create_budget")
    require(budget.get("BudgetType") == "COST", f"budget '{BUDGET}' is of type {budget.get('BudgetType')}",
            "use BudgetType='COST' (a usage budget counts hours or GB, not dollars)")
    require(budget.get("TimeUnit") == "MONTHLY", f"budget '{BUDGET}' resets {budget.get('TimeUnit')}",
            "use TimeUnit='MONTHLY'")
    limit = budget.get("BudgetLimit", {})
    amount = number(limit.get("Amount"))
    require(limit.get("Unit") == "USD" and amount == BUDGET_LIMIT,
            f"budget '{BUDGET}' has limit {limit.get('Amount')} {limit.get('Unit')}",
            "set BudgetLimit={'Amount': '20', 'Unit': 'USD'}")
    for kind, percent in BUDGET_THRESHOLDS.items():
        note = _notification(budgets, aws.account_id, kind)
        require(note is not None, f"budget '{BUDGET}' has no {kind} GREATER_THAN notification",
                f"add a notification with NotificationType='{kind}'")
        given = number(note.get("Threshold"))
        if note.get("ThresholdType") == "ABSOLUTE_VALUE":  # the same threshold in USD is equally valid
            given = None if given is None else given / BUDGET_LIMIT * 100
        require(given is not None and abs(given - percent) < 1e-6,
                f"the {kind} notification of '{BUDGET}' fires at {note.get('Threshold')} "
                f"({note.get('ThresholdType', 'PERCENTAGE')})",
                f"use Threshold={percent:g} with ThresholdType='PERCENTAGE' ({percent:g} % of the limit)")
        subs = budgets.describe_subscribers_for_notification(
            AccountId=aws.account_id, BudgetName=BUDGET, Notification=note)["Subscribers"]
        require(any(s.get("SubscriptionType") == "EMAIL" for s in subs),
                f"the {kind} notification of '{BUDGET}' has no EMAIL subscriber",
                "add {'SubscriptionType': 'EMAIL', 'Address': EMAIL} to its Subscribers")


def _history_since_creation(aws, alarm: dict) -> list[dict]:
    cw = _client(aws, "cloudwatch")
    items, token = [], None
    while True:
        page = cw.describe_alarm_history(AlarmName=ALARM, ScanBy="TimestampAscending",
                                         **({"NextToken": token} if token else {}))
        items += page.get("AlarmHistoryItems", [])
        token = page.get("NextToken")
        if not token:
            break
    since = alarm.get("AlarmConfigurationUpdatedTimestamp")
    return [i for i in items if since is None or i["Timestamp"] >= since]


def _to_alarm(items: list[dict]) -> list[tuple[dict, str]]:
    """(item, reason) of every StateUpdate into ALARM."""
    out = []
    for item in items:
        if item["HistoryItemType"] == "StateUpdate" and item["HistorySummary"].endswith("to ALARM"):
            reason = json.loads(item.get("HistoryData") or "{}").get("newState", {}).get("stateReason", "")
            out.append((item, reason))
    return out


def check_notification_tested(aws) -> None:
    """Task 4: set_alarm_state drove the alarm to ALARM and CloudWatch published to the topic."""
    alarm = _alarm(aws)
    require(alarm is not None, f"there is no alarm '{ALARM}'", "complete task 2 first")
    items = _history_since_creation(aws, alarm)
    manual = [i for i, reason in _to_alarm(items) if not reason.startswith("Threshold Crossed")]
    require(bool(manual), f"alarm '{ALARM}' was never set to ALARM by hand",
            "test the notification path with cloudwatch.set_alarm_state(StateValue='ALARM', ...)")
    actions = [i for i in items if i["HistoryItemType"] == "Action"
               and i["HistorySummary"].startswith("Successfully executed action")
               and i["Timestamp"] >= manual[0]["Timestamp"]]
    require(bool(actions), f"alarm '{ALARM}' changed state but published nothing",
            "its AlarmActions must name the topic and ActionsEnabled must be true")


def check_alarm_fired(aws) -> None:
    """Task 5: the alarm reached ALARM by evaluating the (simulated) billing metric."""
    alarm = _alarm(aws)
    require(alarm is not None, f"there is no alarm '{ALARM}'", "complete task 2 first")
    items = _history_since_creation(aws, alarm)
    evaluated = [i for i, reason in _to_alarm(items) if reason.startswith("Threshold Crossed")]
    if not evaluated:
        try:
            check_alarm(aws)
        except AssertionError as wrong:  # the cause is task 2's alarm: say so, do not re-judge it here
            fail(f"alarm '{ALARM}' never crossed its threshold, and cannot as task 2 made it ({wrong})",
                 "fix the alarm of task 2; then this task can run")
    require(bool(evaluated), f"alarm '{ALARM}' never crossed its threshold on real metric data",
            "simulate rising charges (labkit.cloudwatch.simulate_charges) and wait for ALARM")
    oks = [i for i in items
           if i["HistoryItemType"] == "StateUpdate" and i["HistorySummary"].endswith("to OK")]
    require(any(o["Timestamp"] <= evaluated[-1]["Timestamp"] for o in oks),
            f"alarm '{ALARM}' went to ALARM without first being OK",
            "start the simulation below the threshold so you can watch OK turn into ALARM")


def check_cleanup(aws) -> None:
    """Clean-up: the alarm (which existed: its history records the deletion), the budget and the
    topic (with its subscriptions) are gone."""
    require(_alarm(aws) is None, f"alarm '{ALARM}' still exists", "delete it with cloudwatch.delete_alarms")
    history = _client(aws, "cloudwatch").describe_alarm_history(
        AlarmName=ALARM, HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]
    require(any(h["HistorySummary"].endswith("deleted") for h in history),
            f"alarm '{ALARM}' was never created, so there was nothing to clean up",
            "complete the tasks first, then delete what they created")
    try:
        _client(aws, "budgets").describe_budget(AccountId=aws.account_id, BudgetName=BUDGET)
        fail(f"budget '{BUDGET}' still exists", "delete it with budgets.delete_budget")
    except ClientError:
        pass
    require(_topic_arn(aws) is None, f"SNS topic '{TOPIC}' still exists",
            "delete it with sns.delete_topic (its subscriptions go with it)")
