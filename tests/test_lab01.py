"""Lab 01 (billing alarms): the solution runs twice, the blank scores zero, and each check passes on
the correct state and fails, naming the mistake, on plausible wrong ones."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from grader.checks import lab01
from labkit.backend import control
from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_runs_clean, fails, run_blank,
                           run_in_fresh_kernels, total_points)

NOTEBOOK = REPO / "solutions" / "01-billing-alarms" / "01-billing-alarms.ipynb"
EMAIL = "checker@example.com"


# --- state builders (plain boto3, as the solution does) -----------------------------------------
def _clients(aws):
    return (aws.session.client("sns", region_name="us-east-1"),
            aws.session.client("cloudwatch", region_name="us-east-1"),
            aws.session.client("budgets", region_name="us-east-1"))


def _wipe(aws):
    sns, cw, budgets = _clients(aws)
    cw.delete_alarms(AlarmNames=[lab01.ALARM])
    try:
        budgets.delete_budget(AccountId=aws.account_id, BudgetName=lab01.BUDGET)
    except ClientError:
        pass
    for topic in sns.list_topics()["Topics"]:
        if topic["TopicArn"].endswith(":" + lab01.TOPIC):
            sns.delete_topic(TopicArn=topic["TopicArn"])
    control(aws.endpoint, "billing", {"usd_per_day": 0, "charges": 0})


@pytest.fixture()
def aws(local_aws):
    _wipe(local_aws)
    yield local_aws
    _wipe(local_aws)


def make_topic(aws, protocol="email", confirm=True) -> str:
    sns = _clients(aws)[0]
    arn = sns.create_topic(Name=lab01.TOPIC)["TopicArn"]
    endpoint = EMAIL if protocol.startswith("email") else "+15555550100"
    sns.subscribe(TopicArn=arn, Protocol=protocol, Endpoint=endpoint)
    if confirm and protocol.startswith("email"):
        import labkit.cloudwatch

        labkit.cloudwatch.confirm_email_subscription(aws, arn, EMAIL)
    return arn


def make_alarm(aws, topic_arn, **overrides) -> None:
    kwargs = dict(AlarmName=lab01.ALARM, Namespace="AWS/Billing", MetricName="EstimatedCharges",
                  Dimensions=[{"Name": "Currency", "Value": "USD"}], Statistic="Maximum", Period=21600,
                  EvaluationPeriods=1, Threshold=10.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
                  AlarmActions=[topic_arn])
    kwargs.update(overrides)
    _clients(aws)[1].put_metric_alarm(**{k: v for k, v in kwargs.items() if v is not None})


def make_budget(aws, kinds=("ACTUAL", "FORECASTED"), budget_type="COST", amount="20",
                thresholds=None, threshold_type="PERCENTAGE") -> None:
    thresholds = thresholds or {"ACTUAL": 80.0, "FORECASTED": 100.0}
    _clients(aws)[2].create_budget(
        AccountId=aws.account_id,
        Budget={"BudgetName": lab01.BUDGET, "BudgetType": budget_type, "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": amount, "Unit": "USD"}},
        NotificationsWithSubscribers=[
            {"Notification": {"NotificationType": kind, "ComparisonOperator": "GREATER_THAN",
                              "Threshold": thresholds[kind], "ThresholdType": threshold_type},
             "Subscribers": [{"SubscriptionType": "EMAIL", "Address": EMAIL}]} for kind in kinds])


# --- checks -------------------------------------------------------------------------------------
def test_check_topic(aws):
    fails(lab01.check_topic, aws, match="no SNS topic 'billing-alerts'")
    make_topic(aws, protocol="sms")
    fails(lab01.check_topic, aws, match="no e-mail subscription .*sms")
    make_topic(aws, confirm=False)
    fails(lab01.check_topic, aws, match="PendingConfirmation")
    make_topic(aws)
    lab01.check_topic(aws)


@pytest.mark.parametrize("overrides, pattern", [
    ({"Statistic": "Average"}, "uses Average — .*Maximum"),
    ({"Dimensions": None}, "dimensions none"),
    ({"Period": 300}, "Period=300"),
    ({"Threshold": 100.0}, "Threshold=100"),
    ({"AlarmActions": None}, "does not notify topic"),
    ({"Namespace": "AWS/EC2"}, "watches AWS/EC2"),
])
def test_check_alarm_wrong(aws, overrides, pattern):
    make_alarm(aws, make_topic(aws), **overrides)
    fails(lab01.check_alarm, aws, match=pattern)


def test_check_alarm_good_and_missing(aws):
    fails(lab01.check_alarm, aws, match="no alarm 'billing-10usd'")
    make_alarm(aws, make_topic(aws))
    lab01.check_alarm(aws)


def test_check_budget(aws):
    fails(lab01.check_budget, aws, match="no budget 'monthly-cost'")
    make_budget(aws, kinds=("ACTUAL",))
    fails(lab01.check_budget, aws, match="no FORECASTED")
    _wipe(aws)
    make_budget(aws, budget_type="USAGE")
    fails(lab01.check_budget, aws, match="type USAGE")
    _wipe(aws)
    make_budget(aws, amount="200")
    fails(lab01.check_budget, aws, match="limit 200")
    _wipe(aws)
    make_budget(aws, thresholds={"ACTUAL": 80.0, "FORECASTED": 80.0})
    fails(lab01.check_budget, aws, match="FORECASTED notification .* fires at 80")
    _wipe(aws)
    make_budget(aws, thresholds={"ACTUAL": 16.0, "FORECASTED": 20.0}, threshold_type="ABSOLUTE_VALUE")
    lab01.check_budget(aws)  # the same thresholds in USD
    _wipe(aws)
    make_budget(aws)
    lab01.check_budget(aws)


def test_check_notification_tested(aws):
    topic = make_topic(aws)
    make_alarm(aws, topic)
    fails(lab01.check_notification_tested, aws, match="never set to ALARM by hand")
    cw = _clients(aws)[1]
    cw.disable_alarm_actions(AlarmNames=[lab01.ALARM])
    cw.set_alarm_state(AlarmName=lab01.ALARM, StateValue="ALARM", StateReason="test")
    fails(lab01.check_notification_tested, aws, match="published nothing")
    make_alarm(aws, topic)  # re-created: history before the new configuration no longer counts
    fails(lab01.check_notification_tested, aws, match="never set to ALARM by hand")
    cw.set_alarm_state(AlarmName=lab01.ALARM, StateValue="ALARM", StateReason="test")
    lab01.check_notification_tested(aws)


def test_check_alarm_fired(aws):
    import labkit.cloudwatch

    cw = _clients(aws)[1]
    topic = make_topic(aws)
    make_alarm(aws, topic)
    cw.set_alarm_state(AlarmName=lab01.ALARM, StateValue="ALARM", StateReason="by hand")
    fails(lab01.check_alarm_fired, aws, match="never crossed its threshold on real metric data")
    make_alarm(aws, topic, Threshold=1000.0)  # task 2 wrong: task 5 names that cause
    fails(lab01.check_alarm_fired, aws, match=r"cannot as task 2 made it .*Threshold=1000")
    cw.delete_alarms(AlarmNames=[lab01.ALARM])
    labkit.cloudwatch.simulate_charges(aws, usd_per_day=0, charges=50.0)  # straight over the line
    make_alarm(aws, topic)
    assert cw.describe_alarms(AlarmNames=[lab01.ALARM])["MetricAlarms"][0]["StateValue"] == "ALARM"
    fails(lab01.check_alarm_fired, aws, match="without first being OK")
    cw.delete_alarms(AlarmNames=[lab01.ALARM])
    labkit.cloudwatch.simulate_charges(aws, usd_per_day=0, charges=1.0)
    aws.fast_forward(hours=7)  # leave the 6-hour period that saw 50 USD behind
    make_alarm(aws, topic)
    labkit.cloudwatch.simulate_charges(aws, usd_per_day=12.0)
    labkit.cloudwatch.wait_for_alarm(aws, lab01.ALARM, "OK", max_hours=12)
    labkit.cloudwatch.wait_for_alarm(aws, lab01.ALARM, "ALARM", max_hours=24 * 40, step_hours=6)
    lab01.check_alarm_fired(aws)


def test_check_cleanup(aws):
    make_alarm(aws, make_topic(aws))
    make_budget(aws)
    fails(lab01.check_cleanup, aws, match="alarm 'billing-10usd' still exists")
    _clients(aws)[1].delete_alarms(AlarmNames=[lab01.ALARM])
    fails(lab01.check_cleanup, aws, match="budget 'monthly-cost' still exists")
    _clients(aws)[2].delete_budget(AccountId=aws.account_id, BudgetName=lab01.BUDGET)
    fails(lab01.check_cleanup, aws, match="topic 'billing-alerts' still exists")
    _wipe(aws)
    lab01.check_cleanup(aws)


# --- the notebook -------------------------------------------------------------------------------
@pytest.mark.slow
def test_solution_runs_twice_with_full_marks(tmp_path):
    for nb in run_in_fresh_kernels(NOTEBOOK, tmp_path):  # raises on any error, hidden checks included
        assert total_points(nb) == 10
        assert_runs_clean(nb)


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path), cells=6)


# --- the learner helpers ------------------------------------------------------------------------
def test_helpers_wait_and_confirm_fail_with_a_clear_message(aws):
    import labkit.cloudwatch
    from labkit.errors import LabkitError

    topic = make_topic(aws)
    make_alarm(aws, topic, Namespace="Labkit/Test", MetricName="NeverPublished")  # no data, ever
    with pytest.raises(LabkitError, match="still INSUFFICIENT_DATA after"):
        labkit.cloudwatch.wait_for_alarm(aws, lab01.ALARM, "ALARM", max_hours=2)
    with pytest.raises(LabkitError, match="no alarm named"):
        labkit.cloudwatch.wait_for_alarm(aws, "no-such-alarm", "ALARM", max_hours=1)
    with pytest.raises(LabkitError, match="no confirmation e-mail to nobody@example.com"):
        labkit.cloudwatch.confirm_email_subscription(aws, topic, "nobody@example.com")
    # confirming twice returns the confirmed subscription instead of failing
    arn = labkit.cloudwatch.confirm_email_subscription(aws, topic, EMAIL)
    assert arn.startswith(topic + ":")
    assert labkit.cloudwatch.outbox(aws, to=EMAIL, kind="confirmation")
