"""Helpers for the monitoring labs that only wait or display (the graded calls are boto3).

* ``outbox`` / ``show_outbox``: the e-mails SNS and Budgets sent. Locally they land in the embedded
  AWS's outbox; on AWS they are in your real mailbox, which no API can read.
* ``confirm_email_subscription``: what clicking the link in the confirmation e-mail does. Locally it
  takes the token from the confirmation e-mail in the outbox and calls the real
  ``sns.confirm_subscription`` API; on AWS it waits (polling) until you have clicked the link.
* ``simulate_charges``: local billing simulator (AWS/Billing EstimatedCharges rises as the virtual
  clock advances). On AWS, charges come from real usage only.
* ``wait_for_alarm``: until an alarm reaches a state. Locally the virtual clock is fast-forwarded
  step by step; on AWS the alarm is polled in real time.
"""

from __future__ import annotations

import time
from datetime import timedelta

from labkit.backend import control
from labkit.errors import LabkitError


def _local_only(aws, what: str, instead: str) -> None:
    if not aws.is_local:
        raise LabkitError(f"{what} exists only in local mode; {instead}")


def outbox(aws, to: str | None = None, kind: str | None = None) -> list[dict]:
    """E-mails delivered locally (oldest first): dicts with to, subject, body, time, kind
    ("confirmation", "notification" or "budget")."""
    _local_only(aws, "the e-mail outbox", "on AWS read your real mailbox")
    payload = {k: v for k, v in (("to", to), ("kind", kind)) if v}
    return control(aws.endpoint, "outbox", payload)["messages"]


def show_outbox(aws, to: str | None = None, last: int = 5, body_chars: int = 600) -> None:
    """Print the last ``last`` e-mails (subject, recipient, time and the start of the body)."""
    if not aws.is_local:
        print("AWS mode: the e-mails went to your real mailbox (check spam folders too).")
        return
    messages = outbox(aws, to)[-last:]
    if not messages:
        print("outbox is empty")
    for m in messages:
        print(f"--- {m['time'][:19]}  to {m['to']}  [{m['kind']}]\nSubject: {m['subject']}\n")
        body = m["body"]
        print(body[:body_chars] + (" …" if len(body) > body_chars else ""))


def confirm_email_subscription(aws, topic_arn: str, email: str, timeout: float = 900) -> str:
    """Confirm the e-mail subscription of ``email`` to ``topic_arn``; returns its SubscriptionArn.

    Local: read the token from the confirmation e-mail and call ``sns.confirm_subscription`` (the
    API call the link in the e-mail makes). AWS: wait until you have clicked the link yourself.
    """
    sns = aws.client("sns")
    if aws.is_local:
        mails = [m for m in outbox(aws, email, "confirmation") if m["topic_arn"] == topic_arn]
        if not mails:
            for sub in _subscriptions(sns, topic_arn):
                if sub["Endpoint"] == email and sub["SubscriptionArn"] != "PendingConfirmation":
                    return sub["SubscriptionArn"]
            raise LabkitError(f"no confirmation e-mail to {email} for {topic_arn}: subscribe it first "
                              "with sns.subscribe(Protocol='email', ...)")
        try:
            return sns.confirm_subscription(TopicArn=topic_arn, Token=mails[-1]["token"])["SubscriptionArn"]
        except Exception as exc:  # an old token of a re-created topic: look for a newer one
            raise LabkitError(f"confirming {email} failed: {exc}") from None
    from tqdm.auto import tqdm

    print(f"Open the e-mail 'AWS Notification - Subscription Confirmation' sent to {email} and click "
          "'Confirm subscription'. Waiting …")
    deadline = time.monotonic() + timeout
    with tqdm(total=int(timeout), unit="s", desc="waiting for the click") as bar:
        while time.monotonic() < deadline:
            for sub in _subscriptions(sns, topic_arn):
                if sub["Endpoint"] == email and sub["SubscriptionArn"] != "PendingConfirmation":
                    return sub["SubscriptionArn"]
            time.sleep(10)
            bar.update(10)
    raise LabkitError(f"{email} did not confirm within {timeout / 60:.0f} min; the subscription stays "
                      "PendingConfirmation (AWS deletes it after 3 days)")


def _subscriptions(sns, topic_arn: str) -> list[dict]:
    subs, token = [], None
    while True:
        page = sns.list_subscriptions_by_topic(TopicArn=topic_arn, **({"NextToken": token} if token else {}))
        subs += page.get("Subscriptions", [])
        token = page.get("NextToken")
        if not token:
            return subs


def simulate_charges(aws, usd_per_day: float, charges: float | None = None) -> dict:
    """Local billing simulator: month-to-date charges grow by ``usd_per_day`` as virtual time passes
    (``charges`` sets the current total). EstimatedCharges is published every virtual hour."""
    _local_only(aws, "the billing simulator", "on AWS EstimatedCharges reflects your real usage "
                "(enable 'Receive Billing Alerts' in the Billing console first)")
    payload: dict = {"usd_per_day": usd_per_day}
    if charges is not None:
        payload["charges"] = charges
    return control(aws.endpoint, "billing", payload)


def wait_for_alarm(aws, alarm_name: str, state: str = "ALARM", *, max_hours: float = 24 * 14,
                   step_hours: float = 1.0, poll_seconds: float = 60) -> dict:
    """Wait until ``alarm_name`` is in ``state``; returns the alarm description.

    Local: fast-forward the virtual clock ``step_hours`` at a time (up to ``max_hours``).
    AWS: poll every ``poll_seconds`` for up to ``max_hours`` of real time.
    """
    from tqdm.auto import tqdm

    cw = aws.client("cloudwatch")

    def describe():
        alarms = cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        if not alarms:
            raise LabkitError(f"there is no alarm named {alarm_name!r} in {aws.region}")
        return alarms[0]

    alarm = describe()
    if alarm["StateValue"] == state:
        return alarm
    steps = int(max_hours / step_hours) if aws.is_local else int(max_hours * 3600 / poll_seconds)
    with tqdm(total=steps, desc=f"{alarm_name} → {state}", unit="h" if aws.is_local else "poll") as bar:
        for _ in range(steps):
            if aws.is_local:
                aws.fast_forward(hours=step_hours)
            else:
                time.sleep(poll_seconds)
            bar.update(1)
            alarm = describe()
            bar.set_postfix(state=alarm["StateValue"], at=str(aws.now())[:16])
            if alarm["StateValue"] == state:
                return alarm
    waited = timedelta(hours=max_hours)
    raise LabkitError(f"{alarm_name} is still {alarm['StateValue']} after {waited}: check its metric, "
                      "statistic, threshold and period")
