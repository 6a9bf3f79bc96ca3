"""Contract tests for AWS Budgets (API reference: CreateBudget, DescribeBudget, CostTypes)."""

from __future__ import annotations

import uuid

import boto3

DEFAULTS = {"IncludeTax": True, "IncludeSubscription": True, "UseBlended": False, "IncludeRefund": True,
            "IncludeCredit": True, "IncludeUpfront": True, "IncludeRecurring": True,
            "IncludeOtherSubscription": True, "IncludeSupport": True, "IncludeDiscount": True,
            "UseAmortized": False}


def _create(budgets, account, **extra):
    name = f"b-{uuid.uuid4().hex[:8]}"
    budgets.create_budget(AccountId=account, Budget={
        "BudgetName": name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": "10", "Unit": "USD"}, **extra})
    return budgets.describe_budget(AccountId=account, BudgetName=name)["Budget"]


def test_cost_types_omitted_get_aws_defaults(local_aws):
    budget = _create(boto3.client("budgets"), local_aws.account_id)
    assert budget["CostTypes"] == DEFAULTS


def test_partial_cost_types_keep_what_was_sent_and_default_the_rest(local_aws):
    budget = _create(boto3.client("budgets"), local_aws.account_id,
                     CostTypes={"IncludeTax": False, "UseAmortized": True})
    assert budget["CostTypes"] == {**DEFAULTS, "IncludeTax": False, "UseAmortized": True}
