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
from stripe_everflow_cli.preflight import SETTINGS_BY_FUNCTION, LocalSettingsError
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
        ({"AttributionWindowDays": "-3"}, "AttributionWindowDays", "at least 0"),
        ({"AttributionWindowDays": "many"}, "AttributionWindowDays", "must be a number"),
        ({"AttributionWindowDays": "1.5"}, "AttributionWindowDays", "integer"),
        ({"AttributionWindowDays": "1e99999"}, "AttributionWindowDays", ""),
        ({"ParkedPaymentTtlDays": "0"}, "ParkedPaymentTtlDays", "at least 1"),
        ({"MaxWebhookBodyBytes": "10"}, "MaxWebhookBodyBytes", "at least 1024"),
        ({"MaxWebhookBodyBytes": "262145"}, "MaxWebhookBodyBytes", "at most"),
        ({"LogRetentionDays": "8"}, "LogRetentionDays", "one of"),
        ({"EverflowNetworkId": "abc"}, "EverflowNetworkId", "numeric"),
        ({"EverflowNetworkId": ""}, "EverflowNetworkId", "numeric"),
        ({"EverflowTrackingDomain": "https://t.example/"}, "EverflowTrackingDomain", "host"),
        ({"EverflowTrackingDomain": "t.example\n"}, "EverflowTrackingDomain", "host"),
        ({"EverflowOfferId": "12a"}, "EverflowOfferId", ""),
        ({"AmountsIncludeTax": "yes"}, "AmountsIncludeTax", "true, false"),
        ({"EverflowApiBaseUrl": "https://evil.example"}, "EverflowApiBaseUrl", "one of"),
        ({"ClickIdMetadataKey": ""}, "ClickIdMetadataKey", "match"),
        ({"EverflowTargetRules": "[{price: 1}"}, "EverflowTargetRules", "not valid JSON"),
        ({"EverflowTargetRules": '{"price": "price_1"}'}, "EverflowTargetRules", "list"),
        (
            {"EverflowTargetRules": '[{"price": "price_1", "initial": {"event_id": "x"}}]'},
            "EverflowTargetRules",
            "numeric",
        ),
        ({"EverflowAdvParams": "adv9=kind"}, "EverflowAdvParams", "EVERFLOW_ADV_PARAMS"),
        ({"EverflowAdvParams": "adv1=price"}, "EverflowAdvParams", "EVERFLOW_ADV_PARAMS"),
        ({"AllowedEventTypes": "invoice paid"}, "AllowedEventTypes", "not an event type"),
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
