"""What `stripe-everflow local` refuses before it starts anything: parameters checked
against template.yaml as CloudFormation would, each function's settings model over
the environment the local stack gives it, and the shape of local.config.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stripe_everflow_cli.localconfig import (
    DEFAULT_LOCAL_PARAMETERS,
    LocalConfig,
    load_local_config,
)
from stripe_everflow_cli.preflight import (
    SETTINGS_BY_FUNCTION,
    LocalSettingsError,
    check_parameters,
)
from stripe_everflow_cli.stack import LocalStack
from stripe_everflow_cli.template import function_specs, load_template
from tests.support import PROJECT_ROOT, bridge_secret


def _check(**parameters: str) -> dict[str, str]:
    config = LocalConfig(
        secret=bridge_secret(),
        parameters=DEFAULT_LOCAL_PARAMETERS | parameters,
        source="test",
    )
    _, values = LocalStack(project_root=PROJECT_ROOT, config=config).check()
    return values


def test_every_function_of_the_template_has_its_settings_checked() -> None:
    template = load_template(PROJECT_ROOT / "template.yaml")
    assert {spec.logical_id for spec in function_specs(template)} <= set(SETTINGS_BY_FUNCTION)


def test_the_local_defaults_pass() -> None:
    values = _check()
    assert values["AttributionPolicy"] == "first-touch"
    assert values["EverflowNetworkId"] == "1"


@pytest.mark.parametrize(
    ("parameters", "named", "says"),
    [
        ({"AtributionPolicy": "last-touch"}, "AtributionPolicy", "did you mean AttributionPolicy"),
        ({"attributionpolicy": "x"}, "attributionpolicy", "not a parameter of template.yaml"),
        ({"AttributionPolicy": "first"}, "AttributionPolicy", "first-touch, last-touch"),
        ({"AttributionPolicy": ""}, "AttributionPolicy", "one of"),
        # What follows may be refused by the template's own constraint or, past it,
        # by the function's settings model: either way the parameter is named.
        ({"AttributionWindowDays": "-3"}, "AttributionWindowDays", ""),
        ({"AttributionWindowDays": "many"}, "AttributionWindowDays", ""),
        ({"AttributionWindowDays": "1.5"}, "AttributionWindowDays", ""),
        ({"AttributionWindowDays": "1e99999"}, "AttributionWindowDays", ""),
        ({"ParkedPaymentTtlDays": "0"}, "ParkedPaymentTtlDays", ""),
        ({"MaxWebhookBodyBytes": "10"}, "MaxWebhookBodyBytes", ""),
        ({"MaxWebhookBodyBytes": "262145"}, "MaxWebhookBodyBytes", ""),
        ({"LogRetentionDays": "8"}, "LogRetentionDays", "one of"),
        ({"EverflowNetworkId": "abc"}, "EverflowNetworkId", ""),
        ({"EverflowNetworkId": ""}, "EverflowNetworkId", ""),
        ({"EverflowTrackingDomain": "https://t.example/"}, "EverflowTrackingDomain", ""),
        ({"EverflowTrackingDomain": "t.example\n"}, "EverflowTrackingDomain", ""),
        ({"EverflowOfferId": "12a"}, "EverflowOfferId", ""),
        ({"AmountsIncludeTax": "yes"}, "AmountsIncludeTax", "true, false"),
        ({"EverflowApiBaseUrl": "https://evil.example"}, "EverflowApiBaseUrl", "one of"),
        ({"ClickIdMetadataKey": ""}, "ClickIdMetadataKey", ""),
        ({"EverflowTargetRules": "[{price: 1}"}, "EverflowTargetRules", ""),
        ({"EverflowTargetRules": '{"price": "price_1"}'}, "EverflowTargetRules", ""),
        # a JSON list, as any template pattern would let through: the model refuses it
        (
            {"EverflowTargetRules": '[{"price": "price_1", "initial": {"event_id": "x"}}]'},
            "EverflowTargetRules",
            "EVERFLOW_TARGET_RULES[0].initial.event_id",
        ),
        ({"EverflowAdvParams": "adv9=kind"}, "EverflowAdvParams", ""),
        ({"EverflowAdvParams": "adv1=price"}, "EverflowAdvParams", ""),
        ({"AllowedEventTypes": "invoice paid"}, "AllowedEventTypes", ""),
    ],
)
def test_bad_parameter_is_refused_naming_it(
    parameters: dict[str, str], named: str, says: str
) -> None:
    with pytest.raises(LocalSettingsError) as raised:
        _check(**parameters)
    message = str(raised.value)
    assert f"parameters.{named}" in message and says in message
    assert "\n" not in message and len(message) < 500


# CloudFormation's rules, over a template of one parameter of each kind.
TEMPLATE = {
    "Parameters": {
        "Days": {"Type": "Number", "Default": 0, "MinValue": 0, "MaxValue": 90},
        "Retention": {"Type": "Number", "Default": 30, "AllowedValues": [1, 30, 60]},
        "Mode": {"Type": "String", "Default": "a", "AllowedValues": ["a", "b"]},
        "Id": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "[0-9]*",  # unanchored: CloudFormation matches it whole
            "ConstraintDescription": "a numeric id",
        },
        "Name": {"Type": "String", "Default": "x", "MinLength": 1, "MaxLength": 3},
        "Required": {"Type": "String"},
        "Subnets": {"Type": "List<AWS::EC2::Subnet::Id>", "Default": ""},
    },
    "Resources": {},
}


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"Required": "r", "Days": "-1"}, "parameters.Days must be at least 0, got -1"),
        ({"Required": "r", "Days": "91"}, "parameters.Days must be at most 90"),
        ({"Required": "r", "Days": "ten"}, "parameters.Days must be a number"),
        ({"Required": "r", "Days": ""}, "parameters.Days must be a number"),
        ({"Required": "r", "Days": "1e5"}, "at most 90"),
        ({"Required": "r", "Retention": "31"}, "parameters.Retention must be one of 1, 30, 60"),
        ({"Required": "r", "Mode": "c"}, "parameters.Mode must be one of a, b, got 'c'"),
        ({"Required": "r", "Mode": "A"}, "one of a, b"),
        ({"Required": "r", "Id": "12x"}, "parameters.Id must be a numeric id, got '12x'"),
        ({"Required": "r", "Id": "1\n"}, "parameters.Id must be a numeric id"),
        ({"Required": "r", "Name": ""}, "parameters.Name must be at least 1 characters"),
        ({"Required": "r", "Name": "long"}, "parameters.Name must be at most 3 characters"),
        ({}, "parameters.Required is required (it has no default)"),
        ({"Requird": "x"}, "parameters.Requird is not a parameter of template.yaml (did you"),
    ],
)
def test_parameters_are_checked_as_cloudformation_does(given: dict[str, str], says: str) -> None:
    with pytest.raises(LocalSettingsError, match=re.escape(says)):
        check_parameters(TEMPLATE, given)


def test_values_cloudformation_takes_pass() -> None:
    given = {"Required": "r", "Days": "90", "Retention": "60", "Id": "", "Subnets": "s-1,s-2"}
    assert check_parameters(TEMPLATE, given) == {
        "Days": "90",
        "Retention": "60",
        "Mode": "a",
        "Id": "",
        "Name": "x",
        "Required": "r",
        "Subnets": "s-1,s-2",
    }


REQUIRED = {"EverflowTrackingDomain": "t.example.com", "EverflowNetworkId": "1"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EverflowTargetRules", "[{price: 1}"),
        ("EverflowTargetRules", '{"price": "price_1"}'),
        ("EverflowTargetRules", "[" + " " * 2047 + "]"),
        ("EverflowAdvParams", "adv9=kind"),
        ("EverflowAdvParams", "adv1=price"),
        ("EverflowAdvParams", "adv1=kind;adv2=price_id"),
        ("AllowedEventTypes", "invoice paid"),
        ("AllowedEventTypes", "invoice"),
        ("AllowedEventTypes", "Invoice.Paid"),
        ("AlarmEmail", "ops"),
        ("AlarmEmail", "ops@example"),
        ("EverflowTrackingDomain", "a" * 254),
        ("HttpApiThrottlingRateLimit", "0"),
        ("MatchMaximumConcurrency", "1"),
        ("WebhookReservedConcurrency", "-1"),
    ],
)
def test_the_template_itself_refuses_at_deploy_what_would_fail_every_event(
    name: str, value: str
) -> None:
    # CloudFormation checks a parameter against its constraints before it deploys
    # anything; the local stack's preflight checks the same ones first.
    template = load_template(PROJECT_ROOT / "template.yaml")
    with pytest.raises(LocalSettingsError, match=f"parameters.{name} must"):
        check_parameters(template, REQUIRED | {name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EverflowTargetRules", ""),
        ("EverflowTargetRules", ' [{"price": "price_1", "initial": {"event_id": 5}}]\n'),
        ("EverflowAdvParams", ""),
        ("EverflowAdvParams", "adv1=kind, adv2=subscription_id,adv5=billing_reason"),
        ("AllowedEventTypes", ""),
        ("AllowedEventTypes", "invoice.paid, charge.dispute.closed,*"),
        ("AlarmEmail", ""),
        ("AlarmEmail", "ops+bridge@example.co.uk"),
        ("WebhookReservedConcurrency", "0"),
        ("WebhookReservedConcurrency", "50"),
    ],
)
def test_the_templates_constraints_take_every_good_value(name: str, value: str) -> None:
    template = load_template(PROJECT_ROOT / "template.yaml")
    assert check_parameters(template, REQUIRED | {name: value})[name] == value


def _config(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "local.config.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"parameters": ["AttributionPolicy", "last-touch"]}, '"parameters" must be an object'),
        ({"parameters": None}, "got null"),
        ({"parameters": "AttributionPolicy=last-touch"}, "got a string"),
        ({"parameters": {"AttributionPolicy": None}}, "parameters.AttributionPolicy"),
        ({"parameters": {"AttributionPolicy": ["last-touch"]}}, "got a list"),
        ({"parameters": {"AttributionWindowDays": {"days": 3}}}, "got an object"),
        ({"parameter": {}}, "did you mean parameters"),
        ({"secrets": {}}, "did you mean secret"),
        ([], "must be an object"),
        ({"secret": None}, "must be a JSON object"),
        ({"secret": bridge_secret(email_hash_keys="k")}, "did you mean email_hash_key"),
    ],
)
def test_bad_local_config_is_refused_naming_what_is_wrong(
    tmp_path: Path, document: Any, says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as raised:
        load_local_config(_config(tmp_path, document), {})
    assert "\n" not in str(raised.value)


def test_json_numbers_and_booleans_are_parameter_text(tmp_path: Path) -> None:
    document = {"parameters": {"AmountsIncludeTax": True, "AttributionWindowDays": 7}}
    config = load_local_config(_config(tmp_path, document), {})
    assert config.parameters["AmountsIncludeTax"] == "true"
    assert config.parameters["AttributionWindowDays"] == "7"


def test_a_secret_without_hash_key_or_click_token_starts_with_warnings(tmp_path: Path) -> None:
    # Given the README's example: one account, nothing else
    account = {"livemode": False, "webhook_secrets": ["whsec_from_stripe_listen"]}
    document = {"secret": {"stripe_accounts": {"default": account}}}
    # When it is read
    config = load_local_config(_config(tmp_path, document), {})
    # Then the local email hash key is used (every event needs one) and both are said
    assert config.secret["email_hash_key"]
    assert config.warnings == (
        "the secret has no email_hash_key: the local one is used",
        "the secret has no click_intake_token: POST /clicks answers 503",
    )
    assert load_local_config(_config(tmp_path, {"secret": bridge_secret()}), {}).warnings == ()
