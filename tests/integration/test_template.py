"""template.yaml as CloudFormation deploys it.

cfn-lint must be clean, and the output of the AWS::Serverless-2016-10-31 transform (the
resources CloudFormation actually creates) must keep the house rules of style.md,
"Template". The checks walk every resource of a kind, so they keep holding as functions
and queues are added; each also pins what exists today, so none can pass on nothing.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.helpers import REGIONS
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from stripe_everflow_cli.template import LOCAL_ACCOUNT_ID, LOCAL_REGION, load_template
from tests.support import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "template.yaml"

# CloudFormation hands the transform these pseudo-parameters; template parameters take
# their defaults (the translator adds those itself).
PSEUDO_PARAMETERS = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "stripe-everflow-bridge",
}

SQS_DEFAULT_VISIBILITY_TIMEOUT = 30
SQS_DEFAULT_RETENTION = 345_600
LAMBDA_DEFAULT_TIMEOUT = 3

# Actions that have no resource-level permissions, so "*" is the only Resource they take.
NO_RESOURCE_LEVEL_ACTIONS = ("xray:put*", "xray:getsampling*")
# Services whose grants must name the template's own queue / table / secret.
SCOPED_SERVICES = frozenset({"sqs", "dynamodb", "secretsmanager"})
SECRET_LOOKING_NAME = re.compile(r"SECRET|TOKEN|KEY")
SECRET_LOOKING_VALUE = re.compile(r"^(whsec|sk|rk)_")


# ------------------------------------------------------------------ the transform


def package(template: Mapping[str, Any]) -> dict[str, Any]:
    """What `sam package` uploads: local code paths become S3 locations (the transform
    accepts nothing else)."""
    packaged = copy.deepcopy(dict(template))
    sections = [packaged.get("Globals", {}).get("Function", {})]
    sections += [r.get("Properties", {}) for r in packaged["Resources"].values()]
    for properties in sections:
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://sam-artifacts/{properties[key].strip('/')}.zip"
    return packaged


def transform(template: Mapping[str, Any]) -> dict[str, Any]:
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=LOCAL_REGION),
    )
    transformed: dict[str, Any] = translator.translate(
        package(template),
        parameter_values=dict(PSEUDO_PARAMETERS),
        # Only consulted for policies named (not ARN'd) in a function's Policies; none are,
        # and an unknown name would surface in ManagedPolicyArns and fail the allow-list.
        get_managed_policy_map=dict,
    )
    return transformed


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def cfn(source: dict[str, Any]) -> dict[str, Any]:
    """template.yaml after the SAM transform, as CloudFormation would run it."""
    return transform(source)


# ------------------------------------------------------------------ helpers


def resources(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {i: r for i, r in template["Resources"].items() if r.get("Type") == kind}


def props(resource: Mapping[str, Any]) -> dict[str, Any]:
    return dict(resource.get("Properties", {}))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def target_of(value: Any) -> str | None:
    """The logical id a `Ref` / `Fn::GetAtt` points at (None for anything else)."""
    if isinstance(value, dict) and len(value) == 1:
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def referenced_ids(value: Any) -> set[str]:
    """Every logical id or parameter a value refers to (Ref, GetAtt, ${X} in Fn::Sub)."""
    if isinstance(value, list):
        return set().union(*(referenced_ids(item) for item in value))
    if not isinstance(value, dict):
        return set()
    if (target := target_of(value)) is not None:
        return {target}
    if "Fn::Sub" in value:
        text, variables = (value["Fn::Sub"], {})
        if isinstance(text, list):
            text, variables = text
        names = {n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text)}
        names = {n for n in names if not n.startswith("AWS::") and n not in variables}
        return names | referenced_ids(list(variables.values()))
    return referenced_ids(list(value.values()))


def function_behind(template: Mapping[str, Any], value: Any) -> str | None:
    """The AWS::Lambda::Function a FunctionName refers to, through an alias or version."""
    target = target_of(value)
    resource = template["Resources"].get(target)
    if resource and resource["Type"] in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        return function_behind(template, props(resource)["FunctionName"])
    return target if resource and resource["Type"] == "AWS::Lambda::Function" else None


def sqs_event_source_mappings(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    queues = resources(template, "AWS::SQS::Queue")
    return {
        mapping_id: mapping
        for mapping_id, mapping in resources(template, "AWS::Lambda::EventSourceMapping").items()
        if target_of(props(mapping).get("EventSourceArn")) in queues
        or ":sqs:" in json.dumps(props(mapping).get("EventSourceArn"))
    }


def redrive_targets(template: Mapping[str, Any]) -> dict[str, tuple[str | None, int]]:
    """Each queue with a RedrivePolicy → (its DLQ's logical id, maxReceiveCount)."""
    targets = {}
    for queue_id, queue in resources(template, "AWS::SQS::Queue").items():
        policy = props(queue).get("RedrivePolicy")
        if policy is None:
            continue
        if isinstance(policy, str):
            policy = json.loads(policy)
        targets[queue_id] = (
            target_of(policy.get("deadLetterTargetArn")),
            int(policy.get("maxReceiveCount", 0)),
        )
    return targets


def function_roles(template: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Each Lambda function → its execution role in the template (None when external)."""
    roles = resources(template, "AWS::IAM::Role")
    return {
        function_id: roles.get(target_of(props(function).get("Role")) or "")
        for function_id, function in resources(template, "AWS::Lambda::Function").items()
    }


def statement_problems(statement: Mapping[str, Any], logical_ids: set[str]) -> list[str]:
    """Why an IAM statement grants more than the named resources it needs ([] if it doesn't)."""
    if "NotAction" in statement or "NotResource" in statement:
        return ["uses NotAction/NotResource"]
    if statement.get("Effect") != "Allow":
        return []
    actions = [str(a).lower() for a in as_list(statement.get("Action", []))]
    granted = as_list(statement.get("Resource", []))
    problems = []
    if "*" in actions:
        problems.append("grants Action '*'")
    if "*" in granted:
        broad = [
            a for a in actions if not any(fnmatchcase(a, p) for p in NO_RESOURCE_LEVEL_ACTIONS)
        ]
        if broad:
            problems.append(f"grants {broad} on Resource '*'")
    if any(a.split(":")[0] in SCOPED_SERVICES for a in actions):
        unnamed = [r for r in granted if not referenced_ids(r) & logical_ids]
        if unnamed:
            problems.append(f"grants {actions} on {unnamed}, which name no template resource")
    return problems


def fires_on_first_message(alarm: Mapping[str, Any]) -> bool:
    threshold = float(alarm.get("Threshold", 0))
    operator = alarm.get("ComparisonOperator")
    return threshold <= 1 and (
        operator == "GreaterThanOrEqualToThreshold"
        or (operator == "GreaterThanThreshold" and threshold < 1)
    )


def http_routes(template: Mapping[str, Any]) -> dict[tuple[str, str, str], str | None]:
    """(api, METHOD, /path) → the function its Lambda integration invokes."""
    routes = {}
    for api_id, api in resources(template, "AWS::ApiGatewayV2::Api").items():
        for path, operations in props(api).get("Body", {}).get("paths", {}).items():
            for method, operation in operations.items():
                uri = json.dumps(operation.get("x-amazon-apigateway-integration", {}).get("uri"))
                invoked = re.search(r"/functions/\$\{(\w+)\.Arn\}/invocations", uri)
                routes[(api_id, method.upper(), path)] = invoked.group(1) if invoked else None
    return routes


def may_invoke(permission: Mapping[str, Any], api: str, method: str, path: str) -> bool:
    """Whether a Lambda permission lets this HTTP API invoke the function on the route."""
    source = permission.get("SourceArn", {}).get("Fn::Sub")
    if permission.get("Principal") != "apigateway.amazonaws.com" or source is None:
        return False
    text, variables = source if isinstance(source, list) else (source, {})
    if variables.get("__ApiId__") != {"Ref": api} and f"${{{api}}}" not in text:
        return False
    route_pattern = text.split("/", 2)[2]  # after ".../${ApiId}/${Stage}/"
    concrete_path = re.sub(r"\{[^}]+\}", "example", path)
    return fnmatchcase(f"{method}{concrete_path}", route_pattern)


def string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [leaf for item in value for leaf in string_leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in string_leaves(item)]
    return []


# ------------------------------------------------------------------ cfn-lint


def test_template_is_cfn_lint_clean_in_every_region() -> None:
    # Given template.yaml, which anyone may deploy (or install from SAR) in any region
    # When cfn-lint checks it against every region's resource specs
    matches = lint_file(TEMPLATE, ManualArgs(regions=REGIONS))
    # Then it finds nothing
    assert matches == [], "\n".join(str(match) for match in matches)


# ------------------------------------------------------------------ SQS event sources


@pytest.fixture(scope="module")
def sqs_mappings(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mappings = sqs_event_source_mappings(cfn)
    if not mappings:
        pytest.skip(
            "no SQS-triggered function yet: the transformed template has 0 "
            "AWS::Lambda::EventSourceMapping from SQS, so there are no mapping "
            "properties to check"
        )
    return mappings


def test_every_sqs_event_in_the_source_becomes_a_checked_event_source_mapping(
    source: dict[str, Any], cfn: dict[str, Any]
) -> None:
    # Given the SQS events declared on functions (the checks below skip only if there are none)
    declared = [
        event
        for function in resources(source, "AWS::Serverless::Function").values()
        for event in props(function).get("Events", {}).values()
        if event.get("Type") == "SQS"
    ]
    declared += list(sqs_event_source_mappings(source).values())
    # When the transform has run
    mappings = sqs_event_source_mappings(cfn)
    # Then each one is an SQS mapping the per-mapping checks see
    assert len(mappings) == len(declared), sorted(mappings)


def test_sqs_event_sources_report_batch_item_failures_with_bounded_concurrency(
    sqs_mappings: dict[str, dict[str, Any]], cfn: dict[str, Any]
) -> None:
    parameters = cfn.get("Parameters", {})
    problems = []
    for mapping_id, mapping in sqs_mappings.items():
        properties = props(mapping)
        if properties.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
            problems.append(f"{mapping_id}: FunctionResponseTypes is not [ReportBatchItemFailures]")
        concurrency = properties.get("ScalingConfig", {}).get("MaximumConcurrency")
        if isinstance(concurrency, dict) and concurrency.get("Ref") in parameters:
            # A parameter: the lowest value it admits is what must be >= 2
            concurrency = parameters[concurrency["Ref"]].get("MinValue")
        if not isinstance(concurrency, int) or concurrency < 2:
            problems.append(f"{mapping_id}: ScalingConfig.MaximumConcurrency {concurrency!r} < 2")
    assert not problems, "\n".join(problems)


def test_queues_feeding_a_function_stay_invisible_for_six_function_timeouts(
    cfn: dict[str, Any], sqs_mappings: dict[str, dict[str, Any]]
) -> None:
    # Given each SQS event source and the function it invokes
    queues = resources(cfn, "AWS::SQS::Queue")
    functions = resources(cfn, "AWS::Lambda::Function")
    problems = []
    for mapping_id, mapping in sqs_mappings.items():
        queue_id = target_of(props(mapping)["EventSourceArn"])
        function_id = function_behind(cfn, props(mapping)["FunctionName"])
        if queue_id not in queues or function_id is None:
            problems.append(f"{mapping_id}: its queue or function is not in the template")
            continue
        timeout = props(functions[function_id]).get("Timeout", LAMBDA_DEFAULT_TIMEOUT)
        visibility = props(queues[queue_id]).get(
            "VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT
        )
        # Then a batch still being processed (or retried after throttling) is not redelivered
        if int(visibility) < 6 * int(timeout):
            problems.append(
                f"{queue_id}: VisibilityTimeout {visibility} < 6 x {function_id} Timeout {timeout}"
            )
    assert not problems, "\n".join(problems)


def test_sqs_triggered_functions_have_no_async_dead_letter_queue(
    cfn: dict[str, Any], sqs_mappings: dict[str, dict[str, Any]]
) -> None:
    # A function DLQ only catches async invokes: for SQS it would hide the queue's own redrive.
    functions = resources(cfn, "AWS::Lambda::Function")
    consumers = {function_behind(cfn, props(m)["FunctionName"]) for m in sqs_mappings.values()}
    with_dlq = sorted(
        str(f) for f in consumers if "DeadLetterConfig" in props(functions.get(str(f), {}))
    )
    assert with_dlq == [], f"DeadLetterQueue set on SQS-triggered {with_dlq}"


# ------------------------------------------------------------------ queues


def test_redriven_queues_move_messages_to_a_longer_lived_dlq_after_five_receives(
    cfn: dict[str, Any],
) -> None:
    # Given the queues with a RedrivePolicy
    queues = resources(cfn, "AWS::SQS::Queue")
    targets = redrive_targets(cfn)
    assert {queue: dlq for queue, (dlq, _) in targets.items()} == {
        "PaymentEventsQueue": "PaymentEventsDLQ",
        "PostbackQueue": "PostbackDLQ",
    }
    problems = []
    for queue_id, (dlq_id, max_receive_count) in targets.items():
        # Then a message is retried at least 5 times before it is set aside
        if max_receive_count < 5:
            problems.append(f"{queue_id}: maxReceiveCount {max_receive_count} < 5")
        # And it does not expire in the DLQ before it would have in its source queue
        retention = props(queues[queue_id]).get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION)
        dlq_retention = props(queues[str(dlq_id)]).get(
            "MessageRetentionPeriod", SQS_DEFAULT_RETENTION
        )
        if int(dlq_retention) <= int(retention):
            problems.append(f"{dlq_id}: retention {dlq_retention} <= {queue_id}'s {retention}")
    assert not problems, "\n".join(problems)


def test_every_queue_is_a_dlq_or_redrives_to_one(cfn: dict[str, Any]) -> None:
    queues = set(resources(cfn, "AWS::SQS::Queue"))
    targets = redrive_targets(cfn)
    dlqs = {dlq for dlq, _ in targets.values()}
    assert queues >= {"PaymentEventsQueue", "PaymentEventsDLQ", "PostbackQueue", "PostbackDLQ"}
    assert sorted(queues - dlqs - set(targets)) == []


def test_every_dlq_raises_an_alarm_on_its_first_message(cfn: dict[str, Any]) -> None:
    # Given the queues that some RedrivePolicy sends failed messages to
    dlqs = sorted(str(dlq) for dlq, _ in redrive_targets(cfn).values())
    assert dlqs == ["PaymentEventsDLQ", "PostbackDLQ"]
    alarms = [props(a) for a in resources(cfn, "AWS::CloudWatch::Alarm").values()]
    missing = []
    for dlq in dlqs:
        # When one message lands there, Then an alarm with somewhere to notify goes off
        watching = [
            alarm
            for alarm in alarms
            if alarm.get("Namespace") == "AWS/SQS"
            and alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}
            in alarm.get("Dimensions", [])
            and fires_on_first_message(alarm)
            and alarm.get("AlarmActions")
        ]
        if not watching:
            missing.append(dlq)
    assert missing == [], f"no depth alarm (threshold <= 1, with AlarmActions) for {missing}"


def test_every_queue_is_encrypted_at_rest(cfn: dict[str, Any]) -> None:
    queues = resources(cfn, "AWS::SQS::Queue")
    assert len(queues) >= 4
    unencrypted = sorted(
        queue_id
        for queue_id, queue in queues.items()
        if props(queue).get("SqsManagedSseEnabled") is not True
        and not props(queue).get("KmsMasterKeyId")
    )
    assert unencrypted == []


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(cfn: dict[str, Any]) -> None:
    # Given the topics the alarms notify
    topics = resources(cfn, "AWS::SNS::Topic")
    keys = resources(cfn, "AWS::KMS::Key")
    action_topics = {
        str(target_of(action))
        for alarm in resources(cfn, "AWS::CloudWatch::Alarm").values()
        for action in props(alarm).get("AlarmActions", []) + props(alarm).get("OKActions", [])
        if target_of(action) in topics
    }
    assert action_topics == {"AlarmTopic"}
    for topic_id in action_topics:
        # Then each is encrypted, with a key of the template (alias/aws/sns cannot let
        # CloudWatch publish: every notification would be dropped)
        key_id = target_of(props(topics[topic_id]).get("KmsMasterKeyId"))
        assert key_id in keys, f"{topic_id} is not encrypted with a key of the template"
        key = props(keys[str(key_id)])
        assert key.get("EnableKeyRotation") is True
        # And CloudWatch may encrypt with it, and publish to the topic
        statements = as_list(key["KeyPolicy"]["Statement"])
        cloudwatch = [
            s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        ]
        assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(
            as_list(cloudwatch[0]["Action"])
        )
        policies = [
            props(p)
            for p in resources(cfn, "AWS::SNS::TopicPolicy").values()
            if {"Ref": topic_id} in props(p)["Topics"]
        ]
        assert any(
            s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
            and s.get("Action") == "sns:Publish"
            for p in policies
            for s in as_list(p["PolicyDocument"]["Statement"])
        )


def alarms_on(
    cfn: Mapping[str, Any], namespace: str, metric: str, dimension: tuple[str, Any]
) -> list[dict[str, Any]]:
    """Alarms on ``metric`` with the dimension (name, value) that notify going off and OK."""
    name, value = dimension
    return [
        props(alarm)
        for alarm in resources(cfn, "AWS::CloudWatch::Alarm").values()
        if props(alarm).get("Namespace") == namespace
        and props(alarm).get("MetricName") == metric
        and {"Name": name, "Value": value} in props(alarm).get("Dimensions", [])
        and props(alarm).get("AlarmActions") == [{"Ref": "AlarmTopic"}]
        and props(alarm).get("OKActions") == [{"Ref": "AlarmTopic"}]
    ]


def test_every_alarm_notifies_when_it_goes_off_and_when_it_is_ok_again(
    cfn: dict[str, Any],
) -> None:
    alarms = resources(cfn, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 15
    silent = sorted(
        alarm_id
        for alarm_id, alarm in alarms.items()
        if props(alarm).get("AlarmActions") != [{"Ref": "AlarmTopic"}]
        or props(alarm).get("OKActions") != [{"Ref": "AlarmTopic"}]
        or props(alarm).get("TreatMissingData") != "notBreaching"
    )
    assert silent == []


def test_every_function_has_an_errors_and_a_throttles_alarm(cfn: dict[str, Any]) -> None:
    functions = resources(cfn, "AWS::Lambda::Function")
    assert len(functions) == 5
    missing = [
        f"{function_id} {metric}"
        for function_id in functions
        for metric in ("Errors", "Throttles")
        if not any(
            fires_on_first_message(a)
            for a in alarms_on(cfn, "AWS/Lambda", metric, ("FunctionName", {"Ref": function_id}))
        )
    ]
    assert missing == []


def test_queues_feeding_a_function_alarm_on_the_age_of_their_oldest_message(
    cfn: dict[str, Any], sqs_mappings: dict[str, dict[str, Any]]
) -> None:
    fed = {str(target_of(props(m)["EventSourceArn"])) for m in sqs_mappings.values()}
    assert fed == {"PaymentEventsQueue", "PostbackQueue"}
    parameters = cfn["Parameters"]
    for queue in sorted(fed):
        dimension = ("QueueName", {"Fn::GetAtt": [queue, "QueueName"]})
        [alarm] = alarms_on(cfn, "AWS/SQS", "ApproximateAgeOfOldestMessage", dimension)
        # A parameter, whose default is some minutes: matching and posting take seconds
        threshold = parameters[alarm["Threshold"]["Ref"]]
        assert 60 <= int(threshold["Default"]) <= 3600, queue


@pytest.mark.parametrize(
    ("namespace", "metric", "dimension"),
    [
        # any webhook the bridge failed to take: its own errors and unexpected ones
        ("StripeEverflowBridge", "WebhooksFailed", ("service", "stripe-webhook")),
        ("StripeEverflowBridge", "ConversionsRejectedByEverflow", ("service", "post-everflow")),
        ("AWS/ApiGateway", "5xx", ("ApiId", {"Ref": "HttpApi"})),
    ],
)
def test_alarm_on_the_first_failure_a_user_must_hear_of(
    cfn: dict[str, Any], namespace: str, metric: str, dimension: tuple[str, Any]
) -> None:
    alarms = alarms_on(cfn, namespace, metric, dimension)
    assert any(fires_on_first_message(a) and a.get("Statistic") == "Sum" for a in alarms)


def _bridge_metric_names(value: Any) -> set[str]:
    """StripeEverflowBridge metric names in alarms and dashboard widgets."""
    text = json.dumps(value)
    return set(re.findall(r'"StripeEverflowBridge", "(\w+)"', text)) | set(
        re.findall(r'MetricName=\\+"(\w+)\\+"', text)
    )


@pytest.fixture(scope="module")
def dashboard(cfn: dict[str, Any]) -> dict[str, Any]:
    [board] = resources(cfn, "AWS::CloudWatch::Dashboard").values()
    body = props(board)["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    # Every ${...} names a pseudo-parameter or a resource (attribute) of the template
    assert {n.split(".")[0] for n in names if not n.startswith("AWS::")} <= set(cfn["Resources"])
    document: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))
    return document


def test_dashboard_shows_what_an_operator_looks_at(dashboard: dict[str, Any]) -> None:
    widgets = dashboard["widgets"]
    text = json.dumps(widgets)
    # Webhooks by outcome; posted, rejected, parked; queues, DLQs; Lambda and the API
    assert {
        "WebhooksAccepted",
        "WebhooksIgnored",
        "WebhooksRejected",
        "WebhooksFailed",
        "ConversionsPosted",
        "ConversionsReversed",
        "ConversionsAdjusted",
        "ConversionsRejectedByEverflow",
        "PaymentsParked",
    } <= _bridge_metric_names(widgets)
    for queue in ("PaymentEventsQueue", "PostbackQueue"):
        for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
            assert re.search(rf'"{metric}", "QueueName", "{queue}.QueueName"', text), (
                queue,
                metric,
            )
    for dlq in ("PaymentEventsDLQ", "PostbackDLQ"):
        assert f'"ApproximateNumberOfMessagesVisible", "QueueName", "{dlq}.QueueName"' in text
    for function_id in (
        "StripeWebhookFunction",
        "ClickIntakeFunction",
        "MatchPaymentFunction",
        "PostEverflowFunction",
    ):
        for metric in ("Errors", "Throttles"):
            assert f'"AWS/Lambda", "{metric}", "FunctionName", "{function_id}"' in text
    # Everflow's answers by status, from the poster's log
    [errors] = [w for w in widgets if w["type"] == "log"]
    assert "SOURCE 'PostEverflowLogGroup'" in errors["properties"]["query"]
    # And the widgets do not overlap on the 24-column grid
    cells = [
        (w["x"] + dx, w["y"] + dy)
        for w in widgets
        for dx in range(w["width"])
        for dy in range(w["height"])
    ]
    assert len(cells) == len(set(cells)) and all(x < 24 for x, _ in cells)


def test_every_bridge_metric_watched_is_one_a_function_emits(
    cfn: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    # A misspelled metric name is a graph that stays empty and an alarm that never fires
    watched = _bridge_metric_names(dashboard) | {
        str(props(a)["MetricName"])
        for a in resources(cfn, "AWS::CloudWatch::Alarm").values()
        if props(a).get("Namespace") == "StripeEverflowBridge"
    }
    sources = "".join(path.read_text("utf-8") for path in PROJECT_ROOT.glob("functions/*/app.py"))
    assert len(watched) >= 10
    assert sorted(m for m in watched if f'"{m}"' not in sources) == []


# ------------------------------------------------------------------ IAM


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        # X-Ray has no resource-level permissions: "*" is the only way to grant it
        ({"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": "sqs:SendMessage*", "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": ["*"]}, False),
        ({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}, False),
        (
            {
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:*:*:table/*"},
            },
            False,
        ),
        (
            {
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": {
                    "Fn::Sub": ["arn:aws:dynamodb:::table/${t}/index/*", {"t": {"Ref": "T"}}]
                },
            },
            True,
        ),
    ],
)
def test_policy_check_allows_wildcards_only_where_iam_has_no_resource_scoping(
    statement: dict[str, Any], allowed: bool
) -> None:
    assert (statement_problems(statement, {"T"}) == []) is allowed


def test_function_role_statements_name_the_resources_they_touch(cfn: dict[str, Any]) -> None:
    # Given every Lambda function's execution role
    roles = function_roles(cfn)
    assert "StripeWebhookFunction" in roles
    logical_ids = set(cfn["Resources"])
    problems, checked = [], 0
    for function_id, role in roles.items():
        if role is None:
            problems.append(f"{function_id}: execution role is not in the template")
            continue
        # Then each inline statement is scoped to the template's own queue / table / secret
        for policy in props(role).get("Policies", []):
            for statement in as_list(policy["PolicyDocument"].get("Statement", [])):
                checked += 1
                problems += [
                    f"{function_id} {policy['PolicyName']}: {problem}"
                    for problem in statement_problems(statement, logical_ids)
                ]
    assert checked > 0
    assert not problems, "\n".join(problems)


def grants(role: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(action, the logical id of the resource it is granted on, or "*") of a role's
    inline statements; managed policies are checked apart."""
    granted = set()
    for policy in props(role).get("Policies", []):
        for statement in as_list(policy["PolicyDocument"].get("Statement", [])):
            assert statement.get("Effect") == "Allow" and "Condition" not in statement
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    granted.add((str(action), "*" if resource == "*" else str(target_of(resource))))
    return granted


def _on(resource: str, *actions: str) -> set[tuple[str, str]]:
    return {(action, resource) for action in actions}


# What each function's code calls (adapters/: dynamodb/store.py, dynamodb/ledger.py,
# dynamodb/rate_limiter.py, sqs.py, secrets.py) and its event source mapping polls,
# on which resource. A grant beyond this, or one missing, fails the test below.
POLL = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
EXPECTED_GRANTS = {
    "StripeWebhookFunction": _on("PaymentEventsQueue", "sqs:SendMessage")
    | _on("StripeWebhookSecret", "secretsmanager:GetSecretValue"),
    "ClickIntakeFunction": _on(
        # put_click (update, then get and put), pin_customer, replay_parked (query, delete)
        "AttributionTable",
        *("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
        *("dynamodb:Query", "dynamodb:DeleteItem"),
    )
    | _on("PaymentEventsQueue", "sqs:SendMessage")
    | _on("StripeWebhookSecret", "secretsmanager:GetSecretValue")
    | _on("BridgeSecret", "secretsmanager:GetSecretValue"),
    "MatchPaymentFunction": _on("PaymentEventsQueue", *POLL, "sqs:SendMessage")
    | _on(
        # get_many (BatchGetItem), claims and waits (one write, or TransactWriteItems of
        # Put, Update and ConditionCheck, which IAM authorizes as PutItem, UpdateItem and
        # ConditionCheckItem), record_conversion / park (BatchWriteItem), carried clicks
        # (put_click: UpdateItem), replays and settled waits (Query, DeleteItem)
        "AttributionTable",
        *("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"),
        *("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
        *("dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"),
    )
    | _on("PostbackQueue", "sqs:SendMessage")
    # the Network API budget of its Everflow lookups (rate_limiter.py: UpdateItem)
    | _on("LedgerTable", "dynamodb:UpdateItem")
    | _on("StripeWebhookSecret", "secretsmanager:GetSecretValue")
    | _on("BridgeSecret", "secretsmanager:GetSecretValue"),
    "SyncClicksFunction": _on(
        # the checkpoint (get, conditional put), put_click (update, then get and put),
        # replay_parked (query, delete)
        "AttributionTable",
        *("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
        *("dynamodb:Query", "dynamodb:DeleteItem"),
    )
    | _on("LedgerTable", "dynamodb:UpdateItem")
    | _on("PaymentEventsQueue", "sqs:SendMessage")
    | _on("StripeWebhookSecret", "secretsmanager:GetSecretValue")
    | _on("BridgeSecret", "secretsmanager:GetSecretValue"),
    "PostEverflowFunction": _on("PostbackQueue", *POLL, "sqs:ChangeMessageVisibility")
    # the ledger (get, conditional updates) and the Network API budget (updates)
    | _on("LedgerTable", "dynamodb:GetItem", "dynamodb:UpdateItem")
    | _on("PostbackDLQ", "sqs:SendMessage")
    | _on("BridgeSecret", "secretsmanager:GetSecretValue"),
}
TRACING = _on("*", "xray:PutTraceSegments", "xray:PutTelemetryRecords")
OWN_LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")


def test_each_function_is_granted_exactly_the_calls_its_code_makes(cfn: dict[str, Any]) -> None:
    # Given each function's role, and the log group its LoggingConfig names
    functions = resources(cfn, "AWS::Lambda::Function")
    assert set(functions) == set(EXPECTED_GRANTS)
    problems = []
    for function_id, role in function_roles(cfn).items():
        assert role is not None, function_id
        log_group = target_of(props(functions[function_id])["LoggingConfig"]["LogGroup"])
        expected = EXPECTED_GRANTS[function_id] | _on(str(log_group), *OWN_LOGS)
        if props(functions[function_id]).get("TracingConfig", {}).get("Mode") == "Active":
            expected |= TRACING
        # Then it may do what its code does, where it does it, and nothing more
        granted = grants(role)
        if extra := granted - expected:
            problems.append(f"{function_id} is granted more than it calls: {sorted(extra)}")
        if missing := expected - granted:
            problems.append(f"{function_id} lacks {sorted(missing)}")
    assert not problems, "\n".join(problems)


ADAPTERS = PROJECT_ROOT / "layers" / "common" / "python" / "stripe_everflow" / "adapters"
TRANSACTION_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _actions_called(path: Path, service: str) -> set[str]:
    """The IAM actions of the botocore calls in an adapter's source: ``.update_item(``
    is dynamodb:UpdateItem, a batch call its single action (SQS authorizes
    ChangeMessageVisibilityBatch as ChangeMessageVisibility), a transaction the
    actions of the items it names."""
    text = path.read_text("utf-8")
    actions = set()
    for call in re.findall(r"\.(_db|_sqs|_client)\.([a-z_]+)\(", text):
        name = "".join(part.title() for part in call[1].split("_"))
        if name == "TransactWriteItems":
            kinds = set(re.findall(r'\{"(Put|Update|Delete|ConditionCheck)"', text))
            actions |= {f"{service}:{TRANSACTION_ITEM_ACTIONS[k]}" for k in kinds}
            continue
        actions.add(f"{service}:{name.removesuffix('Batch')}")
    return actions


@pytest.mark.parametrize(
    ("function_id", "resource", "adapters"),
    [
        # the matcher uses the whole attribution store; the poster the ledger and budget
        ("MatchPaymentFunction", "AttributionTable", ["dynamodb/store.py"]),
        ("PostEverflowFunction", "LedgerTable", ["dynamodb/ledger.py", "dynamodb/rate_limiter.py"]),
        ("PostEverflowFunction", "PostbackQueue", ["sqs.py"]),
    ],
)
def test_every_call_an_adapter_makes_is_granted_to_the_function_using_it(
    function_id: str, resource: str, adapters: list[str]
) -> None:
    # A call the role does not grant fails only once deployed (AccessDenied): checked here
    # from the adapters' source, so a new call cannot land without its grant.
    service = "sqs" if resource.endswith("Queue") else "dynamodb"
    called = set().union(*(_actions_called(ADAPTERS / a, service) for a in adapters))
    granted = {action for action, on in EXPECTED_GRANTS[function_id] if on == resource}
    if resource == "PostbackQueue":
        called -= {"sqs:SendMessage"}  # the poster sends to its DLQ, checked apart
    assert called and called <= granted, sorted(called - granted)


def test_function_roles_attach_no_managed_policy_and_are_not_shared(cfn: dict[str, Any]) -> None:
    # AWSLambdaSQSQueueExecutionRole (which SAM attaches to generated roles with an SQS
    # event) lets a function receive and delete on every queue of the account;
    # AWSLambdaBasicExecutionRole writes to every log group.
    roles = function_roles(cfn)
    attached = {f: props(r or {}).get("ManagedPolicyArns", []) for f, r in roles.items()}
    assert attached == {function_id: [] for function_id in roles}
    role_ids = [
        target_of(props(f)["Role"]) for f in resources(cfn, "AWS::Lambda::Function").values()
    ]
    assert len(set(role_ids)) == len(role_ids)


def test_the_webhook_reads_its_signing_secrets_and_never_an_api_key(cfn: dict[str, Any]) -> None:
    # Given the internet-facing webhook's role
    role = function_roles(cfn)["StripeWebhookFunction"]
    assert role is not None
    readable = {r for a, r in grants(role) if a.startswith("secretsmanager:")}
    # Then the only secret it can read is the one of signing secrets and the hash key
    assert readable == {"StripeWebhookSecret"}
    generated = props(cfn["Resources"]["StripeWebhookSecret"])["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"stripe_accounts": {}}
    assert generated["GenerateStringKey"] == "email_hash_key"


def test_each_function_is_told_the_secrets_its_role_lets_it_read(cfn: dict[str, Any]) -> None:
    # A secret named in the environment but not granted fails every event; one granted
    # but not named is a permission nobody uses.
    functions = resources(cfn, "AWS::Lambda::Function")
    secrets = set(resources(cfn, "AWS::SecretsManager::Secret"))
    assert secrets == {"StripeWebhookSecret", "BridgeSecret"}
    for function_id, role in function_roles(cfn).items():
        assert role is not None
        named = referenced_ids(props(functions[function_id])["Environment"]["Variables"])
        readable = {r for a, r in grants(role) if a == "secretsmanager:GetSecretValue"}
        assert named & secrets == readable, function_id


# ------------------------------------------------------------------ functions


def test_every_function_runs_python_3_12_or_newer_on_arm64(cfn: dict[str, Any]) -> None:
    functions = resources(cfn, "AWS::Lambda::Function")
    assert "StripeWebhookFunction" in functions
    problems = []
    for function_id, function in functions.items():
        runtime = str(props(function).get("Runtime"))
        version = re.fullmatch(r"python3\.(\d+)", runtime)
        if version is None or int(version.group(1)) < 12:
            problems.append(f"{function_id}: Runtime {runtime}")
        if props(function).get("Architectures") != ["arm64"]:
            problems.append(f"{function_id}: Architectures {props(function).get('Architectures')}")
    assert not problems, "\n".join(problems)


def test_every_function_layer_is_built_for_its_runtime_and_architecture(
    cfn: dict[str, Any],
) -> None:
    layers = resources(cfn, "AWS::Lambda::LayerVersion")
    problems, checked = [], 0
    for function_id, function in resources(cfn, "AWS::Lambda::Function").items():
        for layer in props(function).get("Layers", []):
            layer_props = props(layers.get(str(target_of(layer)), {}))
            checked += 1
            if props(function)["Runtime"] not in layer_props.get("CompatibleRuntimes", []):
                problems.append(f"{function_id}: layer {layer} lacks {props(function)['Runtime']}")
            if not set(props(function)["Architectures"]) <= set(
                layer_props.get("CompatibleArchitectures", [])
            ):
                problems.append(f"{function_id}: layer {layer} is not built for its architecture")
    assert checked > 0
    assert not problems, "\n".join(problems)


def test_no_function_environment_holds_a_secret_value(cfn: dict[str, Any]) -> None:
    # Given each function's environment, with parameter defaults for what it Refs
    parameters = cfn.get("Parameters", {})
    secrets = set(resources(cfn, "AWS::SecretsManager::Secret"))
    problems, secret_named = [], 0
    for function_id, function in resources(cfn, "AWS::Lambda::Function").items():
        variables = props(function).get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            where = f"{function_id} {name}"
            # Then a SECRET/TOKEN/KEY variable only names or points at the secret
            if SECRET_LOOKING_NAME.search(name):
                secret_named += 1
                target = target_of(value)
                # A plain, echoed parameter is a setting (e.g. a metadata key *name*);
                # secrets never travel as parameters, so a NoEcho one is a finding.
                is_setting = target in parameters and not parameters[target].get("NoEcho")
                if target is not None and target not in secrets and not is_setting:
                    problems.append(f"{where}: refers to {target}, not a Secrets Manager secret")
                elif target is None and not isinstance(value, str):
                    # Several secrets named in one value (a function reading two, merged)
                    named = referenced_ids(value)
                    if not named or not named <= secrets:
                        problems.append(f"{where}: {value!r} names no secret, or not only secrets")
            # And no variable carries a Stripe key or webhook secret, literally or by default
            defaults = [parameters.get(p, {}).get("Default") for p in referenced_ids(value)]
            for leaf in string_leaves(value) + [str(d) for d in defaults if d is not None]:
                if SECRET_LOOKING_VALUE.match(leaf):
                    problems.append(f"{where}: holds a {leaf.split('_')[0]}_… value")
    assert secret_named > 0
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ tables


def test_every_table_is_on_demand_with_point_in_time_recovery(cfn: dict[str, Any]) -> None:
    tables = resources(cfn, "AWS::DynamoDB::Table")
    assert set(tables) == {"AttributionTable", "LedgerTable"}
    problems = []
    for table_id, table in tables.items():
        if props(table).get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(f"{table_id}: BillingMode {props(table).get('BillingMode')}")
        recovery = props(table).get("PointInTimeRecoverySpecification", {})
        if recovery.get("PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{table_id}: point-in-time recovery is off")
    assert not problems, "\n".join(problems)


def test_only_expiring_tables_have_ttl_on_their_expiry_attribute(cfn: dict[str, Any]) -> None:
    ttl = {
        table_id: props(table)["TimeToLiveSpecification"].get("AttributeName")
        for table_id, table in resources(cfn, "AWS::DynamoDB::Table").items()
        if props(table).get("TimeToLiveSpecification", {}).get("Enabled") is True
    }
    assert ttl == {
        "AttributionTable": "expires_at",
        "LedgerTable": "expires_at",  # only its rate-limit windows carry expires_at
    }


# ------------------------------------------------------------------ HTTP API and outputs


def test_http_api_routes_stripe_webhooks_to_the_webhook_function(cfn: dict[str, Any]) -> None:
    # Given the HTTP API as the transform writes it (an OpenAPI body)
    routes = http_routes(cfn)
    permissions = [props(p) for p in resources(cfn, "AWS::Lambda::Permission").values()]
    for method, path in [("POST", "/stripe/webhook"), ("POST", "/stripe/webhook/{account}")]:
        # Then each Stripe endpoint invokes StripeWebhookFunction
        assert routes.get(("HttpApi", method, path)) == "StripeWebhookFunction", (method, path)
        # And API Gateway is allowed to invoke it there (or callers would get a 500)
        assert any(
            p.get("FunctionName") == {"Ref": "StripeWebhookFunction"}
            and may_invoke(p, "HttpApi", method, path)
            for p in permissions
        ), f"no lambda:InvokeFunction permission for {method} {path}"


def test_outputs_point_at_what_the_user_configures(cfn: dict[str, Any]) -> None:
    outputs = cfn.get("Outputs", {})
    expected = {
        "PaymentEventsQueueUrl": {"Ref": "PaymentEventsQueue"},
        "PostbackQueueUrl": {"Ref": "PostbackQueue"},
        "AttributionTableName": {"Ref": "AttributionTable"},
        "LedgerTableName": {"Ref": "LedgerTable"},
        "StripeWebhookSecretArn": {"Ref": "StripeWebhookSecret"},
        "BridgeSecretArn": {"Ref": "BridgeSecret"},
    }
    assert {name: outputs.get(name, {}).get("Value") for name in expected} == expected
    webhook_url = outputs.get("WebhookUrl", {}).get("Value", {}).get("Fn::Sub", "")
    assert webhook_url.startswith("https://${HttpApi}.execute-api.")
    assert webhook_url.endswith("/stripe/webhook")


# ------------------------------------------------------------------ layers

LAYER_SOURCES = PROJECT_ROOT / "layers"
PACKAGE_DIR = LAYER_SOURCES / "common" / "python"


def _layer_ids(function: Mapping[str, Any]) -> list[str]:
    return [str(target_of(layer)) for layer in props(function).get("Layers", [])]


def _requirements_of(layer: Mapping[str, Any], layer_id: str) -> set[str]:
    """Distribution names the layer's Makefile target installs (its -r file)."""
    source = PROJECT_ROOT / props(layer)["ContentUri"]
    makefile = (source / "Makefile").read_text("utf-8")
    target = re.search(rf"^build-{layer_id}:.*\n\t\$\(call build_layer,(\S+)\)", makefile, re.M)
    assert target, f"{source}/Makefile has no build-{layer_id} target"
    lines = (source / target.group(1)).read_text("utf-8").splitlines()
    names = (re.split(r"[=<>~! ]", line.strip())[0] for line in lines)
    return {_normalized(name) for name in names if name and name[0] not in "#-"}


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _with_dependencies(names: set[str]) -> set[str]:
    """``names`` and what they install with them (as this environment resolved them)."""
    from importlib.metadata import PackageNotFoundError, requires

    todo, closure = list(names), set()
    while todo:
        if (name := todo.pop()) in closure:
            continue
        closure.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [
            _normalized(re.split(r"[\s;<>=!~\[(]", need)[0])
            for need in needs
            if "extra" not in need
        ]
    return closure


def _third_party_imports(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level names of what a module imports, following stripe_everflow imports
    (lazy ones inside functions included; ``if TYPE_CHECKING:`` blocks left out)."""
    import ast

    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    tree = ast.parse(path.read_text("utf-8"))
    typing_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for statement in branch.body
        for node in ast.walk(statement)
    }
    modules: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    found = set()
    for module in modules:
        top = module.split(".")[0]
        if top != "stripe_everflow":
            if top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
            continue
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # a submodule's packages are imported too
            base = PACKAGE_DIR.joinpath(*parts[:depth])
            for candidate in (base / "__init__.py", base.with_suffix(".py")):
                if candidate.is_file():
                    found |= _third_party_imports(candidate, seen)
    return found


def test_each_function_names_its_layers_and_the_webhook_gets_the_slim_one(
    source: dict[str, Any],
) -> None:
    # Globals would add their layers to every function's own: none there.
    assert "Layers" not in source["Globals"]["Function"]
    functions = resources(source, "AWS::Serverless::Function")
    layers = {i: _layer_ids(function) for i, function in functions.items()}
    assert layers.pop("StripeWebhookFunction") == ["WebhookLayer"]
    assert layers and all(ids == ["CommonLayer"] for ids in layers.values()), layers


def test_every_function_layer_ships_what_its_code_imports_and_the_webhook_nothing_more(
    source: dict[str, Any],
) -> None:
    from importlib.metadata import packages_distributions

    distributions = packages_distributions()
    layers = resources(source, "AWS::Serverless::LayerVersion")
    shipped = {i: _requirements_of(layer, i) for i, layer in layers.items()}
    pinned = shipped["CommonLayer"]
    problems = []
    for function_id, function in resources(source, "AWS::Serverless::Function").items():
        handler = PROJECT_ROOT / props(function)["CodeUri"] / "app.py"
        imported = {_normalized(d) for m in _third_party_imports(handler) for d in distributions[m]}
        provided = set().union(*(shipped[i] for i in _layer_ids(function)))
        if missing := imported - _with_dependencies(provided):
            problems.append(f"{function_id} imports {sorted(missing)}, not in its layers")
        if function_id == "StripeWebhookFunction":
            assert imported == {"aws-lambda-powertools", "botocore"}
            if extra := provided - imported:
                problems.append(f"{function_id}'s layers ship {sorted(extra)}, never imported")
    for layer_id, names in shipped.items():
        if unpinned := names - pinned:
            problems.append(f"{layer_id}: {sorted(unpinned)} not pinned in requirements.txt")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("interpreter", ["found", "given"])
def test_layer_build_stops_before_fetching_without_an_interpreter_of_the_runtime(
    tmp_path: Path, interpreter: str
) -> None:
    # Given a runtime version no interpreter here has (found on PATH, or given)
    import subprocess

    given = [f"LAMBDA_PYTHON={sys.executable}"] if interpreter == "given" else []
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    # When the WebhookLayer is built
    done = subprocess.run(
        [
            *("make", "-s", "-C", str(LAYER_SOURCES / "common"), "build-WebhookLayer"),
            *(f"ARTIFACTS_DIR={artifacts}", "LAMBDA_PYTHON_VERSION=3.99", *given),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # Then it stops, nothing fetched, naming the command that builds it right
    assert done.returncode != 0
    assert not any(artifacts.iterdir())
    assert "bytecode compiled by Python 3.99" in done.stderr
    assert "make build LAMBDA_PYTHON=/path/to/python3.99" in done.stderr
    assert "sam build --use-container" in done.stderr


def _trim_botocore() -> Any:
    spec = importlib.util.spec_from_file_location(
        "trim_botocore", LAYER_SOURCES / "common" / "trim_botocore.py"
    )
    assert spec is not None and spec.loader is not None
    trim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trim)
    return trim


def test_trimmed_botocore_resolves_the_bridge_services_as_the_full_endpoint_data() -> None:
    import botocore.loaders
    from botocore.regions import EndpointResolver

    from stripe_everflow.adapters.aws import SERVICES

    trim = _trim_botocore()
    full_data = botocore.loaders.Loader().load_data("endpoints")
    trimmed_data = trim.trimmed(full_data, SERVICES)
    assert len(json.dumps(trimmed_data)) < len(json.dumps(full_data)) / 20
    full = EndpointResolver(full_data, uses_builtin_data=True)
    trimmed = EndpointResolver(trimmed_data, uses_builtin_data=True)
    checked = 0
    for partition in full_data["partitions"]:
        for region in partition["regions"]:
            for service in SERVICES:
                for fips in (False, True):
                    for dualstack in (False, True):
                        expected = full.construct_endpoint(service, region, dualstack, fips)
                        assert (
                            trimmed.construct_endpoint(service, region, dualstack, fips) == expected
                        ), (service, region, fips, dualstack)
                        checked += 1
    assert checked > 100
    assert set(trimmed.get_available_partitions()) == set(full.get_available_partitions())


def test_undocumented_service_models_describe_the_same_calls() -> None:
    import botocore.loaders
    from botocore.model import ServiceModel, Shape

    from stripe_everflow.adapters.aws import SERVICES

    def described(shape: Shape | None, seen: set[str]) -> Any:
        """Everything about a shape that making or parsing a call reads."""
        if shape is None or shape.name in seen:
            return shape and shape.name
        seen = seen | {shape.name}
        members = getattr(shape, "members", {})
        parts = [
            ("member", shape, "member"),
            ("key", shape, "key"),
            ("value", shape, "value"),
        ]
        return (
            shape.name,
            shape.type_name,
            shape.metadata,
            shape.serialization,
            {name: described(member, seen) for name, member in members.items()},
            {p: described(getattr(s, a, None), seen) for p, s, a in parts},
        )

    trim = _trim_botocore()
    loader = botocore.loaders.Loader()
    for service in SERVICES:
        raw = loader.load_service_model(service, "service-2")
        undocumented = trim.undocumented(raw)
        assert len(json.dumps(undocumented)) < len(json.dumps(raw)) / 2
        assert "documentation" not in json.dumps(undocumented["operations"])
        full, bare = ServiceModel(raw, service), ServiceModel(undocumented, service)
        assert bare.operation_names == full.operation_names
        assert bare.metadata == full.metadata
        for name in full.operation_names:
            operation, kept = full.operation_model(name), bare.operation_model(name)
            assert kept.http == operation.http
            for shape in ("input_shape", "output_shape"):
                expected = described(getattr(operation, shape), set())
                assert described(getattr(kept, shape), set()) == expected, (service, name)
            assert [e.name for e in kept.error_shapes] == [e.name for e in operation.error_shapes]


# ------------------------------------------------------------------ checkov


def test_every_checkov_suppression_is_written_next_to_its_reason(source: dict[str, Any]) -> None:
    # `make lint` runs checkov over template.yaml; what it is told to skip is
    # decided resource by resource, each with the reason a reviewer can weigh.
    skips = [
        (resource_id, skip)
        for resource_id, resource in source["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert len(skips) >= 20
    unexplained = [
        f"{resource_id} {skip.get('id')}"
        for resource_id, skip in skips
        if not re.fullmatch(r"CKV2?_AWS_\d+", str(skip.get("id")))
        or len(str(skip.get("comment", "")).split()) < 6
    ]
    assert unexplained == []
    # And nothing is skipped template-wide
    assert "checkov" not in source.get("Metadata", {})
