"""The bridge secret's keys: a key the bridge does not know is refused, named, with the
key it was probably meant to be — a misspelled key must not be silently ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stripe_everflow.domain.errors import SecretUnavailableError
from stripe_everflow.domain.secret import parse_bridge_secret
from tests.support import bridge_secret


def _with(**changes: Any) -> str:
    return json.dumps(bridge_secret(**changes))


def _account_with(**changes: Any) -> str:
    secret = bridge_secret()
    secret["stripe_accounts"]["default"].update(changes)
    return json.dumps(secret)


@pytest.mark.parametrize(
    ("document", "named", "meant"),
    [
        (_with(email_hash_keys="k"), "email_hash_keys", "email_hash_key"),
        (_with(everflow_apikey="k"), "everflow_apikey", "everflow_api_key"),
        (_with(click_intake_tokens="t"), "click_intake_tokens", "click_intake_token"),
        (_with(everflow_verification="t"), "everflow_verification", "everflow_verification_token"),
        (
            json.dumps({"stripe_account": bridge_secret()["stripe_accounts"]}),
            "stripe_account",
            "stripe_accounts",
        ),
        (
            _account_with(webhook_secret=["whsec_x"]),
            "stripe_accounts.default.webhook_secret",
            "webhook_secrets",
        ),
        (_account_with(apikey="rk_test_x"), "stripe_accounts.default.apikey", "api_key"),
        (_account_with(live_mode=True), "stripe_accounts.default.live_mode", "livemode"),
    ],
)
def test_misspelled_key_is_refused_naming_it_and_what_it_meant(
    document: str, named: str, meant: str
) -> None:
    with pytest.raises(SecretUnavailableError) as raised:
        parse_bridge_secret(document)
    message = str(raised.value)
    assert named in message
    assert f"did you mean {meant}" in message


@pytest.mark.parametrize("key", ["comment", "x" * 500, "line\nbreak"])
def test_unknown_key_is_refused_without_echoing_it_whole(key: str) -> None:
    with pytest.raises(SecretUnavailableError) as raised:
        parse_bridge_secret(json.dumps(bridge_secret() | {key: "v"}))
    message = str(raised.value)
    assert "not a key of the bridge secret" in message
    assert "\n" not in message and len(message) < 400


def test_unknown_key_error_never_holds_a_value() -> None:
    with pytest.raises(SecretUnavailableError) as raised:
        parse_bridge_secret(_account_with(webhook_secret=["whsec_do_not_print"]))
    assert "whsec_do_not_print" not in str(raised.value)


def test_every_documented_key_is_accepted() -> None:
    secret = bridge_secret(
        everflow_api_key="ef", everflow_verification_token="tok", click_intake_token="t"
    )
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_x"
    parsed = parse_bridge_secret(json.dumps(secret))
    assert parsed.everflow_api_key == "ef"
    assert parsed.account("default") is not None
