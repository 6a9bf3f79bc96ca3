"""Lab 11 (pipelines): the solution notebook runs twice on one local AWS, the blank version scores
zero, and every hidden check passes on the solved state and names the mistake on wrong states."""

from __future__ import annotations

import contextlib
import json

import pytest

from conftest import REPO
from notebook_runs import (assert_blank_fails_every_graded_cell, assert_notebook_structure,
                           assert_runs_clean, fails, lab_env, run_blank, run_in_fresh_kernels,
                           solved_in_process)

NOTEBOOK = REPO / "solutions" / "11-pipelines" / "11-pipelines.ipynb"


def test_notebook_structure():
    assert_notebook_structure(NOTEBOOK, "lab11")


@pytest.mark.slow
def test_solution_runs_twice_on_one_local_aws(local_aws, tmp_path):
    for nb in run_in_fresh_kernels(NOTEBOOK, tmp_path, env=lab_env(local_aws), timeout=900):
        assert_runs_clean(nb)


@pytest.mark.slow
def test_blank_notebook_scores_zero(tmp_path):
    assert_blank_fails_every_graded_cell(run_blank(NOTEBOOK, tmp_path, env=lab_env(), timeout=900))


@pytest.fixture(scope="module")
def solved(local_aws):
    """The solution's setup and task cells executed in this process (the lab's folder as the
    working directory: the setup reads train.py from it), each hidden check where grading runs it:
    every execution overwrites the data and evaluation files, so tasks 1-2 are judged on the state
    their own runs left. A failing check fails this fixture."""
    with contextlib.chdir(NOTEBOOK.parent), solved_in_process(NOTEBOOK, hidden=True) as namespace:
        yield namespace


@pytest.mark.slow
def test_checks_pass_on_solved_state(local_aws, solved):
    """Checks 1-2 passed in place (the fixture); the others pass again on the final state."""
    from grader.checks import lab11

    ns = solved
    lab11.check_condition(local_aws)
    labels = [t.get_text() for t in ns["dag_figure"].axes[0].texts]
    lab11.check_runs(local_aws, ns["passed_arn"], ns["failed_arn"], ns["steps_table"], labels)
    lab11.check_drift_trigger(local_aws, ns["triggered_arn"])
    lab11.check_deployed(local_aws, ns["served"])


@pytest.mark.slow
def test_check_runs_and_executions_wrong_claims(local_aws, solved):
    from grader.checks import lab11

    ns = solved
    labels = [t.get_text() for t in ns["dag_figure"].axes[0].texts]
    table = ns["steps_table"]
    fails(lab11.check_preprocess, local_aws, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/y",
          match="is not a pipeline execution")
    fails(lab11.check_runs, local_aws, ns["passed_arn"], ns["passed_arn"], table, labels,
          match="failed_arn is Succeeded")
    fails(lab11.check_runs, local_aws, ns["passed_arn"], ns["failed_arn"], table.iloc[1:], labels,
          match="steps_table lists")
    fails(lab11.check_runs, local_aws, ns["passed_arn"], ns["failed_arn"], table.assign(seconds=99.0), labels,
          match="seconds = EndTime - StartTime")
    fails(lab11.check_runs, local_aws, ns["passed_arn"], ns["failed_arn"], table,
          [t for t in labels if "AucTooLow" not in t], match="no box for AucTooLow labelled NotRun")
    fails(lab11.check_evaluation, local_aws, ns["preprocess_arn"], match="has no step 'Train'")
    fails(lab11.check_drift_trigger, local_aws, ns["passed_arn"], match="ran with the window 2013-01-01")
    fails(lab11.check_deployed, local_aws, [0.5] * 50, match="`served` is not what the endpoint returns")


@pytest.mark.slow
def test_check_condition_wrong_and_alternative_definitions(local_aws, solved):
    from grader.checks import lab11

    ns, sm = solved, local_aws.client("sagemaker")
    good = sm.describe_pipeline(PipelineName=lab11.PIPELINE)["PipelineDefinition"]

    def with_condition(change):
        definition = json.loads(good)
        condition = next(s for s in definition["Steps"] if s["Type"] == "Condition")
        change(condition["Arguments"])
        sm.update_pipeline(PipelineName=lab11.PIPELINE, PipelineDefinition=json.dumps(definition),
                           RoleArn=ns["ROLE_ARN"])

    def strict(args):
        args["Conditions"][0]["Type"] = "GreaterThan"

    def literal(args):
        args["Conditions"][0]["RightValue"] = 0.65

    def inverted(args):
        args["Conditions"][0]["Type"] = "LessThan"
        args["IfSteps"], args["ElseSteps"] = args["ElseSteps"], args["IfSteps"]

    def approved(args):
        args["IfSteps"][0]["Arguments"]["ModelApprovalStatus"] = "Approved"

    try:
        for change, match in ((strict, "at least MinAuc"), (literal, "compare the evaluated AUC"),
                              (approved, "approval status 'Approved'")):
            with_condition(change)
            fails(lab11.check_condition, local_aws, match=match)
        with_condition(inverted)
        lab11.check_condition(local_aws)  # AUC < MinAuc -> Fail, else Register: the same gate
    finally:
        sm.update_pipeline(PipelineName=lab11.PIPELINE, PipelineDefinition=good, RoleArn=ns["ROLE_ARN"])
    lab11.check_condition(local_aws)


@pytest.mark.slow
def test_check_rules_wrong_patterns(local_aws, solved):
    from grader.checks import lab11

    ns, events = solved, local_aws.client("events")
    drift = events.describe_rule(Name=lab11.DRIFT_RULE)["EventPattern"]
    approval = events.describe_rule(Name=lab11.APPROVAL_RULE)["EventPattern"]

    def without(pattern, *path):
        changed = json.loads(pattern)
        holder = changed
        for key in path[:-1]:
            holder = holder[key]
        del holder[path[-1]]
        return json.dumps(changed)

    try:
        events.put_rule(Name=lab11.DRIFT_RULE, EventPattern=without(drift, "detail"))
        fails(lab11.check_drift_trigger, local_aws, ns["triggered_arn"], match="back to OK")
        events.put_rule(Name=lab11.DRIFT_RULE, EventPattern=without(drift, "resources"))
        fails(lab11.check_drift_trigger, local_aws, ns["triggered_arn"], match="fires for any alarm")
        events.put_rule(Name=lab11.APPROVAL_RULE, EventPattern=without(approval, "detail", "ModelApprovalStatus"))
        fails(lab11.check_deployed, local_aws, ns["served"], match="PendingManualApproval")
        events.put_rule(Name=lab11.APPROVAL_RULE, EventPattern=without(approval, "detail", "ModelPackageGroupName"))
        fails(lab11.check_deployed, local_aws, ns["served"], match="any model package group")
    finally:
        events.put_rule(Name=lab11.DRIFT_RULE, EventPattern=drift, State="ENABLED")
        events.put_rule(Name=lab11.APPROVAL_RULE, EventPattern=approval, State="ENABLED")
    lab11.check_drift_trigger(local_aws, ns["triggered_arn"])
    lab11.check_deployed(local_aws, ns["served"])


@pytest.mark.slow
def test_check_cleanup(local_aws, solved):
    from grader.checks import lab11

    ns = solved
    events, sm = ns["events"], ns["sm"]
    fails(lab11.check_cleanup, local_aws, match="rule\\(s\\) .* still exist")
    for rule in (lab11.DRIFT_RULE, lab11.APPROVAL_RULE):
        ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
        events.remove_targets(Rule=rule, Ids=ids)
        events.delete_rule(Name=rule)
    fails(lab11.check_cleanup, local_aws, match="function flights-deploy-approved still exists")
    ns["awslambda"].delete_function(FunctionName=lab11.FUNCTION)
    fails(lab11.check_cleanup, local_aws, match="pipeline flights-retrain still exists")
    sm.delete_pipeline(PipelineName=lab11.PIPELINE)
    fails(lab11.check_cleanup, local_aws, match="group flights-delay-models still exists with 2 version")
    for package in sm.list_model_packages(ModelPackageGroupName=lab11.GROUP)["ModelPackageSummaryList"]:
        sm.delete_model_package(ModelPackageName=package["ModelPackageArn"])
    sm.delete_model_package_group(ModelPackageGroupName=lab11.GROUP)
    fails(lab11.check_cleanup, local_aws, match="endpoint flights-delay still exists")
    sm.delete_endpoint(EndpointName=lab11.ENDPOINT)
    fails(lab11.check_cleanup, local_aws, match="endpoint configuration\\(s\\)")
    for config in sm.list_endpoint_configs(NameContains="flights-delay")["EndpointConfigs"]:
        sm.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
    fails(lab11.check_cleanup, local_aws, match="model\\(s\\) .* still exist")
    for model in sm.list_models(NameContains="flights-delay")["Models"]:
        sm.delete_model(ModelName=model["ModelName"])
    fails(lab11.check_cleanup, local_aws, match="alarm flights-drift-temp still exists")
    ns["cloudwatch"].delete_alarms(AlarmNames=[lab11.ALARM])
    lab11.check_cleanup(local_aws)
