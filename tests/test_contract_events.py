"""Contract tests for the EventBridge engine (labkit/local/events.py), plain boto3, written from the
EventBridge API reference (PutRule, PutTargets, PutEvents, TestEventPattern, InputTransformer) and
the user guide (event patterns, content filtering, AWS service events: CloudWatch alarm and SageMaker
state changes)."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

EVENT = {"id": "7bf73129-1428-4cd3-a780-95db273d1602", "account": "123456789012",
         "source": "com.flights", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
         "resources": ["arn:aws:s3:::bucket/key"], "detail-type": "Flight Departed",
         "detail": {"carrier": "UA", "origin": "EWR", "delay": 42, "distance": 1400.0,
                    "tail": "N14228", "gate": None, "codes": ["a1", "b2"],
                    "crew": [{"role": "pilot", "name": "Ada"}, {"role": "attendant", "name": "Bo"}],
                    "weather": {"temp": 39.02, "wind": {"speed": 10.4}}, "ip": "10.0.3.7"}}

PATTERNS = [
    ({"source": ["com.flights"]}, True),
    ({"source": ["com.other"]}, False),
    ({"source": ["com.other", "com.flights"]}, True),                       # an array is an OR
    ({"detail": {"codes": ["b2"]}}, True),                                  # event array: any element
    ({"detail": {"codes": ["c3"]}}, False),
    ({"detail": {"delay": [42.0]}}, True),                                  # numbers compare as numbers
    ({"detail": {"delay": ["42"]}}, False),                                 # a string is not a number
    ({"detail": {"gate": [None]}}, True),
    ({"detail": {"absent": [None]}}, False),                               # null ≠ missing
    ({"detail": {"carrier": [{"prefix": "U"}]}}, True),
    ({"detail": {"carrier": [{"prefix": "A"}]}}, False),
    ({"detail": {"tail": [{"suffix": "228"}]}}, True),
    ({"detail": {"tail": [{"suffix": "229"}]}}, False),
    ({"detail": {"carrier": [{"equals-ignore-case": "ua"}]}}, True),
    ({"detail": {"origin": [{"prefix": {"equals-ignore-case": "ew"}}]}}, True),
    ({"detail": {"carrier": [{"anything-but": "AA"}]}}, True),
    ({"detail": {"carrier": [{"anything-but": ["UA", "AA"]}]}}, False),
    ({"detail": {"origin": [{"anything-but": {"prefix": "EW"}}]}}, False),
    ({"detail": {"origin": [{"anything-but": {"prefix": "JF"}}]}}, True),
    ({"detail": {"tail": [{"anything-but": {"suffix": "28"}}]}}, False),
    ({"detail": {"absent": [{"anything-but": "x"}]}}, False),               # needs the field
    ({"detail": {"delay": [{"numeric": [">", 15]}]}}, True),
    ({"detail": {"delay": [{"numeric": [">", 15, "<=", 30]}]}}, False),
    ({"detail": {"distance": [{"numeric": [">=", 1400, "<", 1500]}]}}, True),
    ({"detail": {"carrier": [{"numeric": [">", 0]}]}}, False),              # numeric needs a number
    ({"detail": {"weather": {"wind": {"speed": [{"numeric": ["<", 20]}]}}}}, True),
    ({"detail": {"weather": {"wind": {"speed": [{"numeric": ["=", 10.4]}]}}}}, True),
    ({"detail": {"tail": [{"exists": True}]}}, True),
    ({"detail": {"tail": [{"exists": False}]}}, False),
    ({"detail": {"absent": [{"exists": False}]}}, True),
    ({"detail": {"absent": [{"exists": True}]}}, False),
    ({"detail": {"weather": [{"exists": True}]}}, False),                   # exists matches leaves
    ({"detail": {"crew": {"role": ["pilot"]}}}, True),                      # arrays of objects
    ({"detail": {"crew": {"role": ["engineer"]}}}, False),
    ({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}, True),
    ({"detail": {"ip": [{"cidr": "10.1.0.0/16"}]}}, False),
    ({"detail": {"tail": [{"wildcard": "N*28"}]}}, True),
    ({"detail": {"tail": [{"wildcard": "N*29"}]}}, False),
    ({"source": ["com.flights"], "detail": {"carrier": ["AA"]}}, False),    # fields are ANDed
    ({"$or": [{"detail": {"carrier": ["AA"]}}, {"detail": {"delay": [{"numeric": [">", 40]}]}}]}, True),
    ({"$or": [{"detail": {"carrier": ["AA"]}}, {"detail": {"delay": [{"numeric": [">", 50]}]}}]}, False),
    ({"resources": [{"prefix": "arn:aws:s3:::bucket/"}]}, True),
    ({"detail-type": ["Flight Departed"], "detail": {"origin": ["EWR", "JFK"]}}, True),
]


@pytest.mark.parametrize("pattern, expected", PATTERNS)
def test_test_event_pattern_follows_aws_matching_rules(local_aws, pattern, expected):
    events = local_aws.client("events")
    result = events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(EVENT))
    assert result["Result"] is expected


@pytest.mark.parametrize("pattern", [
    {"source": "com.flights"},                            # a leaf must be an array
    {"source": []},
    {"detail": {"delay": [{"numeric": ["!", 3]}]}},
    {"detail": {"delay": [{"numeric": [">", "3"]}]}},
    {"detail": {"tail": [{"exists": "yes"}]}},
    {"detail": {"tail": [{"bogus": "x"}]}},
    {"detail": {"tail": [{"prefix": 3}]}},
    ["not", "an", "object"],
])
def test_invalid_patterns_are_rejected(local_aws, pattern):
    events = local_aws.client("events")
    for call in (lambda: events.put_rule(Name=f"bad-{uuid.uuid4().hex[:6]}", EventPattern=json.dumps(pattern)),
                 lambda: events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(EVENT))):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "InvalidEventPatternException"
        assert error.value.response["Error"]["Message"].startswith("Event pattern is not valid.")


def test_test_event_pattern_needs_the_event_envelope(local_aws):
    event = {k: v for k, v in EVENT.items() if k != "account"}
    with pytest.raises(ClientError) as error:
        local_aws.client("events").test_event_pattern(EventPattern=json.dumps({"source": ["x"]}),
                                                      Event=json.dumps(event))
    assert error.value.response["Error"]["Code"] == "InvalidEventPatternException"


# --- delivery -------------------------------------------------------------------------------------
@pytest.fixture()
def queue(local_aws):
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def received(wait: float = 0) -> list[str]:
        deadline = time.monotonic() + wait
        bodies: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            bodies += [m["Body"] for m in messages]
            if bodies or time.monotonic() >= deadline:
                return bodies
            time.sleep(0.2)

    received.arn = arn
    return received


def _rule(local_aws, pattern, targets, **kwargs) -> str:
    events = local_aws.client("events")
    name = f"rule-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), **kwargs)
    events.put_targets(Rule=name, Targets=targets)
    return name


def _put(local_aws, detail, source="com.flights", detail_type="Flight Departed", **extra):
    response = local_aws.client("events").put_events(Entries=[{
        "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), **extra}])
    assert response["FailedEntryCount"] == 0, response
    return response["Entries"][0]["EventId"]


def test_put_events_delivers_the_aws_event_envelope(local_aws, queue):
    tag = uuid.uuid4().hex
    _rule(local_aws, {"source": ["com.flights"], "detail": {"tag": [tag]}},
          [{"Id": "q", "Arn": queue.arn}])
    event_id = _put(local_aws, {"tag": tag, "delay": 5}, Resources=["arn:aws:s3:::b/k"])
    [body] = queue()
    event = json.loads(body)
    assert event["id"] == event_id and event["version"] == "0"
    assert event["source"] == "com.flights" and event["detail-type"] == "Flight Departed"
    assert event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert event["resources"] == ["arn:aws:s3:::b/k"] and event["detail"] == {"tag": tag, "delay": 5}
    assert len(event["time"]) == 20 and event["time"].endswith("Z")


def test_non_matching_and_disabled_rules_do_not_fire(local_aws, queue):
    tag = uuid.uuid4().hex
    name = _rule(local_aws, {"detail": {"tag": [tag], "delay": [{"numeric": [">", 15]}]}},
                 [{"Id": "q", "Arn": queue.arn}])
    _put(local_aws, {"tag": tag, "delay": 3})
    assert queue() == []
    events = local_aws.client("events")
    events.disable_rule(Name=name)
    _put(local_aws, {"tag": tag, "delay": 30})
    assert queue() == []
    events.enable_rule(Name=name)
    _put(local_aws, {"tag": tag, "delay": 31})
    assert [json.loads(b)["detail"]["delay"] for b in queue()] == [31]


def test_input_input_path_and_input_transformer(local_aws, queue):
    tag = uuid.uuid4().hex
    _rule(local_aws, {"detail": {"tag": [tag]}}, [
        {"Id": "constant", "Arn": queue.arn, "Input": json.dumps({"fixed": True})},
        {"Id": "path", "Arn": queue.arn, "InputPath": "$.detail.flight"},
        {"Id": "json", "Arn": queue.arn, "InputTransformer": {
            "InputPathsMap": {"carrier": "$.detail.flight.carrier", "delay": "$.detail.flight.delay"},
            "InputTemplate": '{"who": <carrier>, "late": <delay>, "text": "<carrier> is <delay> min late"}'}},
        {"Id": "text", "Arn": queue.arn, "InputTransformer": {
            "InputPathsMap": {"carrier": "$.detail.flight.carrier"},
            "InputTemplate": '"Carrier <carrier> on rule <aws.events.rule-name>"'}},
    ])
    _put(local_aws, {"tag": tag, "flight": {"carrier": "UA", "delay": 42}})
    bodies = sorted(queue(wait=2))
    while len(bodies) < 4:
        more = queue(wait=2)
        assert more, f"only {bodies} arrived"
        bodies = sorted(bodies + more)
    decoded = [json.loads(b) for b in bodies]
    assert {"fixed": True} in decoded
    assert {"carrier": "UA", "delay": 42} in decoded
    assert {"who": "UA", "late": 42, "text": "UA is 42 min late"} in decoded
    assert any(isinstance(d, str) and d.startswith("Carrier UA on rule rule-") for d in decoded)


@pytest.mark.parametrize("entry, code", [
    ({"DetailType": "t", "Detail": "{}"}, "InvalidArgument"),
    ({"Source": "s", "Detail": "{}"}, "InvalidArgument"),
    ({"Source": "s", "DetailType": "t", "Detail": "{not json"}, "MalformedDetail"),
    ({"Source": "s", "DetailType": "t", "Detail": "[1, 2]"}, "MalformedDetail"),
    ({"Source": "aws.sagemaker", "DetailType": "t", "Detail": "{}"}, "NotAuthorizedForSourceException"),
])
def test_put_events_reports_bad_entries_per_entry(local_aws, entry, code):
    good = {"Source": "com.flights", "DetailType": "t", "Detail": "{}"}
    response = local_aws.client("events").put_events(Entries=[good, entry])
    assert response["FailedEntryCount"] == 1
    assert "EventId" in response["Entries"][0]
    assert response["Entries"][1]["ErrorCode"] == code


def test_put_events_takes_at_most_ten_entries(local_aws):
    with pytest.raises(ClientError) as error:
        local_aws.client("events").put_events(
            Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}"}] * 11)
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_sns_target_publishes_through_the_topic(local_aws, queue):
    sns = local_aws.client("sns")
    topic = sns.create_topic(Name=f"events-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue.arn)
    tag = uuid.uuid4().hex
    _rule(local_aws, {"detail": {"tag": [tag]}}, [{"Id": "topic", "Arn": topic}])
    event_id = _put(local_aws, {"tag": tag})
    [body] = queue(wait=2)
    envelope = json.loads(body)
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == topic
    assert json.loads(envelope["Message"])["id"] == event_id


ECHO = '''
import json, boto3
def handler(event, context):
    boto3.client("s3").put_object(Bucket=event["detail"]["bucket"], Key="event.json",
                                  Body=json.dumps(event).encode())
    return "ok"
'''


def _function(local_aws, code) -> str:
    iam, lam = local_aws.client("iam"), local_aws.client("lambda")
    name = f"ev-fn-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", code)
    return lam.create_function(FunctionName=name, Runtime="python3.12", Role=role,
                               Handler="index.handler", Code={"ZipFile": buffer.getvalue()},
                               Timeout=30)["FunctionArn"]


def _wait_key(s3, bucket, key, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"):
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        time.sleep(0.3)
    return None


def test_lambda_target_runs_only_with_the_resource_policy(local_aws):
    s3, lam = local_aws.client("s3"), local_aws.client("lambda")
    arn = _function(local_aws, ECHO)
    denied, allowed = (f"ev-lambda-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for bucket in (denied, allowed):
        s3.create_bucket(Bucket=bucket)
    tag = uuid.uuid4().hex
    rule = _rule(local_aws, {"detail": {"tag": [tag]}}, [{"Id": "fn", "Arn": arn}])
    _put(local_aws, {"tag": tag, "bucket": denied})       # no permission: EventBridge cannot invoke
    rule_arn = local_aws.client("events").describe_rule(Name=rule)["Arn"]
    lam.add_permission(FunctionName=arn, StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn)
    event_id = _put(local_aws, {"tag": tag, "bucket": allowed})
    delivered = _wait_key(s3, allowed, "event.json")
    assert delivered is not None and delivered["id"] == event_id
    assert _wait_key(s3, denied, "event.json", timeout=1) is None


def test_registered_target_receives_target_and_payload(local_aws):
    from labkit.local import events as engine

    seen = []
    engine.register_target("states", lambda target, payload: seen.append((target, payload)))
    try:
        tag = uuid.uuid4().hex
        arn = "arn:aws:states:us-east-1:123456789012:stateMachine:retrain"
        _rule(local_aws, {"detail": {"tag": [tag]}}, [{
            "Id": "sm", "Arn": arn, "RoleArn": "arn:aws:iam::123456789012:role/events",
            "InputTransformer": {"InputPathsMap": {"t": "$.detail.tag"}, "InputTemplate": '{"tag": <t>}'}}])
        _put(local_aws, {"tag": tag})
        _put(local_aws, {"tag": "other"})
    finally:
        engine._handlers.pop("states", None)
    assert len(seen) == 1
    target, payload = seen[0]
    assert target["Arn"] == arn and target["RoleArn"].endswith("role/events")
    assert payload == {"tag": tag}


# --- AWS's own events -----------------------------------------------------------------------------
def test_alarm_state_change_event(local_aws, queue):
    cw = local_aws.client("cloudwatch")
    name = f"drift-{uuid.uuid4().hex[:8]}"
    _rule(local_aws, {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                      "detail": {"alarmName": [name], "state": {"value": ["ALARM"]}}},
          [{"Id": "q", "Arn": queue.arn}])
    cw.put_metric_alarm(AlarmName=name, AlarmDescription="drift on temp", Namespace="Lab/Drift",
                        MetricName="feature_baseline_drift_temp", Statistic="Maximum", Period=3600,
                        EvaluationPeriods=1, Threshold=0.1, ComparisonOperator="GreaterThanThreshold",
                        Dimensions=[{"Name": "Endpoint", "Value": "flights"}])
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="fine")
    assert queue() == []                                  # OK does not match the pattern
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="drifted")
    [body] = queue()
    event = json.loads(body)
    alarm_arn = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    assert event["source"] == "aws.cloudwatch" and event["resources"] == [alarm_arn]
    detail = event["detail"]
    assert detail["alarmName"] == name
    assert detail["state"]["value"] == "ALARM" and detail["state"]["reason"] == "drifted"
    assert detail["previousState"]["value"] == "OK" and detail["previousState"]["reason"] == "fine"
    assert detail["state"]["timestamp"].endswith("+0000")
    assert detail["configuration"]["description"] == "drift on temp"
    [metric] = detail["configuration"]["metrics"]
    assert metric["metricStat"] == {"metric": {"namespace": "Lab/Drift",
                                               "name": "feature_baseline_drift_temp",
                                               "dimensions": {"Endpoint": "flights"}},
                                    "period": 3600, "stat": "Maximum"}
    assert metric["returnData"] is True


def test_training_job_and_endpoint_state_change_events(local_aws, queue):
    sm = local_aws.client("sagemaker")
    suffix = uuid.uuid4().hex[:8]
    _rule(local_aws, {"source": ["aws.sagemaker"],
                      "detail-type": ["SageMaker Training Job State Change",
                                      "SageMaker Endpoint State Change"],
                      "resources": [{"suffix": suffix}]}, [{"Id": "q", "Arn": queue.arn}])
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    role = "arn:aws:iam::123456789012:role/SageMakerRole"
    job = f"job-{suffix}"
    sm.create_training_job(
        TrainingJobName=job, RoleArn=role,
        HyperParameters={"sagemaker_program": '"train.py"',
                         "sagemaker_submit_directory": '"s3://no-such-bucket-ev/src.tar.gz"'},
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://no-such-bucket-ev/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    sm.create_model(ModelName=f"m-{suffix}", ExecutionRoleArn=role, PrimaryContainer={
        "Image": image, "ModelDataUrl": "s3://no-such-bucket-ev/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=f"c-{suffix}", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"m-{suffix}", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=f"ep-{suffix}", EndpointConfigName=f"c-{suffix}")
    deadline, seen = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        seen += [json.loads(b) for b in queue()]
        states = {(e["detail-type"], e["detail"].get("TrainingJobStatus") or e["detail"].get("EndpointStatus"))
                  for e in seen}
        if {("SageMaker Training Job State Change", "Failed"),
                ("SageMaker Endpoint State Change", "Failed")} <= states:
            break
        time.sleep(0.3)
    assert ("SageMaker Training Job State Change", "InProgress") in states
    assert ("SageMaker Training Job State Change", "Failed") in states
    assert ("SageMaker Endpoint State Change", "Creating") in states
    assert ("SageMaker Endpoint State Change", "Failed") in states
    failed = next(e for e in seen if e["detail"].get("TrainingJobStatus") == "Failed")
    assert failed["detail"]["TrainingJobName"] == job and failed["detail"]["FailureReason"]
    assert failed["resources"] == [failed["detail"]["TrainingJobArn"]]
    assert isinstance(failed["detail"]["CreationTime"], int)   # epoch milliseconds, as AWS sends
    endpoint = next(e for e in seen if e["detail"].get("EndpointStatus") == "Failed")
    assert endpoint["detail"]["EndpointName"] == f"ep-{suffix}"
    assert endpoint["detail"]["EndpointConfigName"] == f"c-{suffix}"


# --- schedules --------------------------------------------------------------------------------------
def test_scheduled_rules_fire_on_the_virtual_clock(local_aws, queue):
    events = local_aws.client("events")
    name = f"every-hour-{uuid.uuid4().hex[:6]}"
    arn = events.put_rule(Name=name, ScheduleExpression="rate(1 hour)")["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": queue.arn}])
    paused = f"paused-{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=paused, ScheduleExpression="rate(1 hour)", State="DISABLED")
    events.put_targets(Rule=paused, Targets=[{"Id": "q", "Arn": queue.arn}])
    assert queue() == []
    local_aws.fast_forward(hours=3, minutes=1)
    fired = [json.loads(b) for b in queue(wait=1)]
    while len(fired) < 3:
        more = [json.loads(b) for b in queue(wait=1)]
        if not more:
            break
        fired += more
    assert len(fired) == 3, fired
    assert {e["resources"][0] for e in fired} == {arn}
    assert all(e["source"] == "aws.events" and e["detail-type"] == "Scheduled Event"
               and e["detail"] == {} for e in fired)
    for rule in (name, paused):  # the session's local AWS is shared: later clock jumps must not fire it
        events.remove_targets(Rule=rule, Ids=["q"])
        events.delete_rule(Name=rule)


def test_cron_schedule(local_aws, queue):
    events = local_aws.client("events")
    name = f"cron-{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=name, ScheduleExpression="cron(0/30 * * * ? *)")
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": queue.arn}])
    local_aws.fast_forward(minutes=61)
    times = sorted(json.loads(b)["time"] for b in queue(wait=1))
    assert len(times) == 2 and all(t[14:16] in ("00", "30") and t[17:19] == "00" for t in times)
    events.remove_targets(Rule=name, Ids=["q"])
    events.delete_rule(Name=name)


def test_a_long_clock_jump_delivers_a_bounded_catch_up(local_aws, queue):
    from labkit.local.events import CATCH_UP_LIMIT

    events = local_aws.client("events")
    name = f"every-minute-{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": queue.arn}])
    local_aws.fast_forward(days=30)   # 43,200 scheduled times
    received: list[str] = []
    while more := queue(wait=1):
        received += more
    assert len(received) == CATCH_UP_LIMIT
    local_aws.fast_forward(minutes=2)  # the schedule goes on after the jump
    assert len(queue(wait=2)) >= 1
    events.remove_targets(Rule=name, Ids=["q"])
    events.delete_rule(Name=name)


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 hours)",
                                        "rate(5 weeks)", "cron(0 12 * * *)", "cron(0 12 * * MON *)"])
def test_invalid_schedule_expressions(local_aws, expression):
    with pytest.raises(ClientError) as error:
        local_aws.client("events").put_rule(Name=f"bad-{uuid.uuid4().hex[:6]}",
                                            ScheduleExpression=expression)
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_a_rule_with_targets_cannot_be_deleted(local_aws, queue):
    events = local_aws.client("events")
    name = _rule(local_aws, {"source": ["com.flights"]}, [{"Id": "q", "Arn": queue.arn}])
    with pytest.raises(ClientError) as error:
        events.delete_rule(Name=name)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    events.remove_targets(Rule=name, Ids=["q"])
    events.delete_rule(Name=name)
    assert name not in [r["Name"] for r in events.list_rules(NamePrefix=name)["Rules"]]
