"""Contract tests of the CloudWatch + SNS + Budgets engine, written as plain boto3 calls.

The e-mail outbox and the billing simulator have no AWS API: they are read / driven through the
local control API (``/_labkit/outbox``, ``/_labkit/billing``), as a learner's helper does.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from labkit.backend import control


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _outbox(aws, **query) -> list[dict]:
    return control(aws.endpoint, "outbox", query)["messages"]


def _state(aws, name: str) -> str:
    return aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def _confirmed_topic(aws, email: str) -> str:
    sns = aws.client("sns")
    topic = sns.create_topic(Name=_name("alerts"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
    token = [m for m in _outbox(aws, to=email, kind="confirmation")][-1]["token"]
    sns.confirm_subscription(TopicArn=topic, Token=token)
    return topic


def _away_from_month_end(aws) -> None:
    """The billing metric is month-to-date; keep a test's few simulated days inside one month."""
    now = aws.now()
    if now.day > 20:
        nxt = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=1, minute=0)
        aws.fast_forward((nxt - now).total_seconds())


@pytest.fixture()
def billing(local_aws):
    """Drive the billing simulator; always leave it switched off."""
    yield lambda **payload: control(local_aws.endpoint, "billing", payload)
    control(local_aws.endpoint, "billing", {"usd_per_day": 0})


def test_billing_alarm_insufficient_ok_alarm_and_email(local_aws, billing):
    aws = local_aws
    _away_from_month_end(aws)
    email = f"{_name('learner')}@example.com"
    topic = _confirmed_topic(aws, email)
    name = _name("billing-10usd")
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/Billing", MetricName="EstimatedCharges",
                        Dimensions=[{"Name": "Currency", "Value": "USD"}], Statistic="Maximum",
                        Period=21600, EvaluationPeriods=1, Threshold=10.0,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic])
    assert _state(aws, name) == "INSUFFICIENT_DATA"
    billing(charges=2.0, usd_per_day=0.0)
    assert _state(aws, name) == "OK"
    billing(usd_per_day=3.0)
    aws.fast_forward(hours=12)
    assert _state(aws, name) == "OK"  # 2 + 1.5 USD
    aws.fast_forward(days=3)
    assert _state(aws, name) == "ALARM"  # 2 + 3 * 3.5 > 10 USD
    alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 datapoint [")
    assert json.loads(alarm["StateReasonData"])["statistic"] == "Maximum"
    mails = _outbox(aws, to=email, kind="notification")
    assert len(mails) == 1 and mails[0]["subject"].startswith(f'ALARM: "{name}"')
    body = json.loads(mails[0]["body"].split("\n\n--\n")[0])
    assert body["NewStateValue"] == "ALARM" and body["OldStateValue"] == "OK"
    assert body["Trigger"]["MetricName"] == "EstimatedCharges"
    history = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history] == [
        "Alarm updated from OK to ALARM", "Alarm updated from INSUFFICIENT_DATA to OK"]
    actions = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
    assert topic in actions[0]["HistorySummary"]
    stats = cw.get_metric_statistics(Namespace="AWS/Billing", MetricName="EstimatedCharges",
                                     Dimensions=[{"Name": "Currency", "Value": "USD"}],
                                     StartTime=aws.now() - timedelta(days=4), EndTime=aws.now(),
                                     Period=86400, Statistics=["Maximum"])["Datapoints"]
    assert max(d["Maximum"] for d in stats) > 10
    cw.delete_alarms(AlarmNames=[name])


@pytest.mark.parametrize("statistic, threshold_ok, threshold_alarm", [
    ("Maximum", 10.0, 9.5), ("Minimum", 1.0, 0.5), ("Average", 4.0, 3.9), ("Sum", 16.0, 15.0),
    ("SampleCount", 4.0, 3.0)])
def test_statistics(local_aws, statistic, threshold_ok, threshold_alarm):
    """Values 1, 2, 3, 10 in one period: Max 10, Min 1, Avg 4, Sum 16, SampleCount 4."""
    cw = local_aws.client("cloudwatch")
    metric = _name("Stat")
    now = local_aws.now()
    stamp = now.replace(second=0, microsecond=0)
    names = []
    for name, threshold in ((_name("ok"), threshold_ok), (_name("alarm"), threshold_alarm)):
        names.append(name)
        cw.put_metric_alarm(AlarmName=name, Namespace="Labkit/Test", MetricName=metric,
                            Statistic=statistic, Period=60, EvaluationPeriods=1, Threshold=threshold,
                            ComparisonOperator="GreaterThanThreshold")
    cw.put_metric_data(Namespace="Labkit/Test", MetricData=[
        {"MetricName": metric, "Value": v, "Timestamp": stamp} for v in (1, 2, 3, 10)])
    states = {a["Threshold"]: a["StateValue"] for a in cw.describe_alarms(
        AlarmNames=names)["MetricAlarms"]}
    assert states == {threshold_ok: "OK", threshold_alarm: "ALARM"}


@pytest.mark.parametrize("operator, value, expected", [
    ("GreaterThanOrEqualToThreshold", 5, "ALARM"), ("GreaterThanThreshold", 5, "OK"),
    ("LessThanThreshold", 4, "ALARM"), ("LessThanThreshold", 5, "OK"),
    ("LessThanOrEqualToThreshold", 5, "ALARM"), ("LessThanOrEqualToThreshold", 6, "OK")])
def test_comparison_operators(local_aws, operator, value, expected):
    cw = local_aws.client("cloudwatch")
    metric, name = _name("Op"), _name("op")
    cw.put_metric_alarm(AlarmName=name, Namespace="Labkit/Test", MetricName=metric, Statistic="Maximum",
                        Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator=operator)
    cw.put_metric_data(Namespace="Labkit/Test", MetricData=[{"MetricName": metric, "Value": value}])
    assert _state(local_aws, name) == expected


def test_datapoints_to_alarm_m_of_n_and_dimensions(local_aws):
    """2 of 3 one-minute periods must breach; a datum with other dimensions is another metric."""
    cw = local_aws.client("cloudwatch")
    metric, name = _name("Lat"), _name("m-of-n")
    dims = [{"Name": "Endpoint", "Value": "e1"}]
    cw.put_metric_alarm(AlarmName=name, Namespace="Labkit/Test", MetricName=metric, Dimensions=dims,
                        Statistic="Average", Period=60, EvaluationPeriods=3, DatapointsToAlarm=2,
                        Threshold=100, ComparisonOperator="GreaterThanThreshold")
    base = local_aws.now().replace(second=0, microsecond=0)

    def put(minutes_ago, value, dimensions=dims):
        cw.put_metric_data(Namespace="Labkit/Test", MetricData=[{
            "MetricName": metric, "Value": value, "Dimensions": dimensions,
            "Timestamp": base - timedelta(minutes=minutes_ago)}])

    put(2, 50)
    put(1, 500)
    put(0, 500, [{"Name": "Endpoint", "Value": "other"}])
    assert _state(local_aws, name) == "OK"  # 1 of 3 breaching (the 'other' datum does not count)
    put(0, 300)
    assert _state(local_aws, name) == "ALARM"  # 2 of 3


@pytest.mark.parametrize("treat, expected", [
    ("missing", "INSUFFICIENT_DATA"), ("breaching", "ALARM"), ("notBreaching", "OK"),
    ("ignore", "OK")])
def test_treat_missing_data(local_aws, treat, expected):
    """One OK datapoint, then ten minutes without data on a 1-minute, 3-period alarm."""
    cw = local_aws.client("cloudwatch")
    metric, name = _name("Gap"), _name("gap")
    cw.put_metric_alarm(AlarmName=name, Namespace="Labkit/Test", MetricName=metric, Statistic="Maximum",
                        Period=60, EvaluationPeriods=3, Threshold=10, TreatMissingData=treat,
                        ComparisonOperator="GreaterThanThreshold")
    cw.put_metric_data(Namespace="Labkit/Test", MetricData=[{"MetricName": metric, "Value": 1}])
    assert _state(local_aws, name) in {"OK", "ALARM" if treat == "breaching" else "OK"}
    local_aws.fast_forward(minutes=10)
    assert _state(local_aws, name) == expected


def test_new_alarm_without_data_is_insufficient_and_update_keeps_state(local_aws):
    cw = local_aws.client("cloudwatch")
    metric, name = _name("New"), _name("new")
    kwargs = dict(AlarmName=name, Namespace="Labkit/Test", MetricName=metric, Statistic="Sum",
                  Period=300, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cw.put_metric_alarm(**kwargs)
    assert _state(local_aws, name) == "INSUFFICIENT_DATA"
    cw.put_metric_data(Namespace="Labkit/Test", MetricData=[{"MetricName": metric, "Value": 5}])
    assert _state(local_aws, name) == "ALARM"
    cw.put_metric_alarm(**{**kwargs, "Threshold": 2})
    assert _state(local_aws, name) == "ALARM"
    summaries = [h["HistorySummary"] for h in cw.describe_alarm_history(
        AlarmName=name, HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]]
    assert summaries == [f'Alarm "{name}" updated', f'Alarm "{name}" created']


def test_invalid_alarm_requests_are_rejected(local_aws):
    cw = local_aws.client("cloudwatch")
    base = dict(Namespace="Labkit/Test", MetricName="X", Statistic="Sum", Threshold=1,
                ComparisonOperator="GreaterThanThreshold")
    with pytest.raises(ClientError) as err:
        cw.put_metric_alarm(AlarmName=_name("bad"), Period=45, EvaluationPeriods=1, **base)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as err:
        cw.put_metric_alarm(AlarmName=_name("bad"), Period=60, EvaluationPeriods=1, DatapointsToAlarm=3,
                            **base)
    assert err.value.response["Error"]["Code"] == "ValidationError"


def test_set_alarm_state_publishes_and_disabled_actions_do_not(local_aws):
    email = f"{_name('ops')}@example.com"
    topic = _confirmed_topic(local_aws, email)
    cw = local_aws.client("cloudwatch")
    name = _name("manual")
    cw.put_metric_alarm(AlarmName=name, Namespace="Labkit/Test", MetricName=_name("M"), Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1, OKActions=[topic],
                        AlarmActions=[topic], ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing the notification")
    mails = _outbox(local_aws, to=email, kind="notification")
    assert len(mails) == 1 and "testing the notification" in mails[0]["body"]
    cw.disable_alarm_actions(AlarmNames=[name])
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="quiet")
    assert len(_outbox(local_aws, to=email, kind="notification")) == 1


def test_email_subscription_needs_confirmation(local_aws):
    sns = local_aws.client("sns")
    topic = sns.create_topic(Name=_name("pending"))["TopicArn"]
    email = f"{_name('new')}@example.com"
    response = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
    assert response["SubscriptionArn"] == "pending confirmation"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in subs] == ["PendingConfirmation"]
    sns.publish(TopicArn=topic, Message="nobody reads this", Subject="hello")
    assert _outbox(local_aws, to=email, kind="notification") == []  # unconfirmed: nothing delivered
    with pytest.raises(ClientError) as err:
        sns.confirm_subscription(TopicArn=topic, Token="not-the-token")
    assert err.value.response["Error"]["Code"] == "InvalidParameter"
    confirmation = _outbox(local_aws, to=email, kind="confirmation")
    assert len(confirmation) == 1 and "Subscription Confirmation" in confirmation[0]["subject"]
    arn = sns.confirm_subscription(TopicArn=topic, Token=confirmation[0]["token"])["SubscriptionArn"]
    assert arn.startswith(topic + ":")
    sns.publish(TopicArn=topic, Message="now it arrives", Subject="hello")
    mails = _outbox(local_aws, to=email, kind="notification")
    assert [(m["subject"], m["body"].split("\n")[0]) for m in mails] == [("hello", "now it arrives")]


def test_email_json_and_invalid_address(local_aws):
    sns = local_aws.client("sns")
    topic = sns.create_topic(Name=_name("json"))["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="not-an-address")
    assert err.value.response["Error"]["Code"] == "InvalidParameter"
    email = f"{_name('robot')}@example.com"
    sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint=email)
    token = _outbox(local_aws, to=email, kind="confirmation")[0]["token"]
    sns.confirm_subscription(TopicArn=topic, Token=token)
    sns.publish(TopicArn=topic, Message="payload")
    body = json.loads(_outbox(local_aws, to=email, kind="notification")[0]["body"])
    assert body["Type"] == "Notification" and body["Message"] == "payload" and body["TopicArn"] == topic


def test_budget_notifications_and_spend(local_aws, billing):
    aws = local_aws
    _away_from_month_end(aws)
    budgets = aws.client("budgets")
    name, email = _name("monthly"), f"{_name('owner')}@example.com"
    actual = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0,
              "ThresholdType": "PERCENTAGE"}
    forecast = {**actual, "NotificationType": "FORECASTED", "Threshold": 100.0}
    billing(charges=1.0, usd_per_day=0.0)
    budgets.create_budget(
        AccountId=aws.account_id,
        Budget={"BudgetName": name, "BudgetLimit": {"Amount": "10", "Unit": "USD"},
                "TimeUnit": "MONTHLY", "BudgetType": "COST"},
        NotificationsWithSubscribers=[
            {"Notification": n, "Subscribers": [{"SubscriptionType": "EMAIL", "Address": email}]}
            for n in (actual, forecast)])
    subs = budgets.describe_subscribers_for_notification(AccountId=aws.account_id, BudgetName=name,
                                                         Notification=actual)["Subscribers"]
    assert subs == [{"SubscriptionType": "EMAIL", "Address": email}]
    with pytest.raises(ClientError) as err:
        budgets.describe_subscribers_for_notification(
            AccountId=aws.account_id, BudgetName=name, Notification={**actual, "Threshold": 50.0})
    assert err.value.response["Error"]["Code"] == "NotFoundException"
    assert _outbox(aws, to=email, kind="budget") == [] or all(
        "Forecasted" in m["body"] for m in _outbox(aws, to=email, kind="budget"))
    billing(charges=9.0)
    spend = budgets.describe_budget(AccountId=aws.account_id, BudgetName=name)["Budget"]["CalculatedSpend"]
    assert float(spend["ActualSpend"]["Amount"]) == pytest.approx(9.0)
    mails = _outbox(aws, to=email, kind="budget")
    assert any("Actual Cost" in m["body"] for m in mails)
    notes = budgets.describe_notifications_for_budget(AccountId=aws.account_id, BudgetName=name)
    states = {n["NotificationType"]: n["NotificationState"] for n in notes["Notifications"]}
    assert states["ACTUAL"] == "ALARM"
    with pytest.raises(ClientError) as err:
        budgets.create_budget(AccountId=aws.account_id, Budget={
            "BudgetName": _name("bad"), "BudgetLimit": {"Amount": "1", "Unit": "USD"},
            "TimeUnit": "MONTHLY", "BudgetType": "COST"}, NotificationsWithSubscribers=[
            {"Notification": actual, "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "nope"}]}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    budgets.delete_budget(AccountId=aws.account_id, BudgetName=name)


def test_alarm_history_paging_filters_and_survives_deletion(local_aws):
    cw = local_aws.client("cloudwatch")
    name = _name("paged")
    cw.put_metric_alarm(AlarmName=name, Namespace="Labkit/Test", MetricName=_name("P"), Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1,
                        ComparisonOperator="GreaterThanThreshold")
    start = local_aws.now()
    for state in ("OK", "ALARM", "OK"):
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="paging test")
    pages, token = [], None
    while True:
        more = {"NextToken": token} if token else {}
        page = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate", MaxRecords=2,
                                         ScanBy="TimestampAscending", **more)
        pages.append([i["HistorySummary"] for i in page["AlarmHistoryItems"]])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [["Alarm updated from INSUFFICIENT_DATA to OK", "Alarm updated from OK to ALARM"],
                     ["Alarm updated from ALARM to OK"]]
    assert cw.describe_alarm_history(AlarmName=name, AlarmTypes=["CompositeAlarm"])["AlarmHistoryItems"] == []
    later = cw.describe_alarm_history(AlarmName=name, StartDate=start + timedelta(hours=1))
    assert later["AlarmHistoryItems"] == []
    cw.delete_alarms(AlarmNames=[name])
    summaries = [i["HistorySummary"] for i in cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]]
    assert summaries[0] == f'Alarm "{name}" deleted' and len(summaries) == 5
