"""The bridge secret's keys: a key the bridge does not know is refused, named, with the
key it was probably meant to be — a misspelled key must not be silently ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stripe_everflow.domain.errors import SecretUnavailableError
from stripe_everflow.domain.secret import parse_bridge_secret, split_secret_document
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


# ------------------------------------------------------------------ two secrets, merged


def _full_secret() -> dict[str, Any]:
    secret = bridge_secret(everflow_api_key="ef", everflow_verification_token="tok")
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_x"
    return secret


def test_split_secret_keeps_api_keys_out_of_the_webhooks_part_and_merges_back() -> None:
    # Given the whole document, as the local stack keeps it in one file
    secret = _full_secret()
    # When it is split into the webhook's secret and the bridge secret
    webhook, bridge = split_secret_document(secret)
    # Then the webhook's part holds the signing secrets and the hash key, and no key
    assert set(webhook) == {"stripe_accounts", "email_hash_key"}
    assert webhook["stripe_accounts"]["default"] == {
        "livemode": False,
        "webhook_secrets": secret["stripe_accounts"]["default"]["webhook_secrets"],
    }
    assert "rk_test_x" not in json.dumps(webhook) and "ef" not in webhook.values()
    # And the bridge secret holds the API keys, accounts named by their api_key only
    assert bridge == {
        "stripe_accounts": {"default": {"api_key": "rk_test_x"}},
        "click_intake_token": "test-click-token",
        "everflow_api_key": "ef",
        "everflow_verification_token": "tok",
    }
    # And read together they are the document again
    merged = parse_bridge_secret({"webhook": json.dumps(webhook), "bridge": json.dumps(bridge)})
    assert merged == parse_bridge_secret(json.dumps(secret))


def test_each_part_parses_alone_with_only_what_it_holds() -> None:
    webhook, bridge = split_secret_document(_full_secret())
    # The webhook's part: accounts and their signing secrets, no key at all
    alone = parse_bridge_secret(json.dumps(webhook))
    default = alone.account("default")
    assert default is not None and default.api_key is None
    assert alone.everflow_api_key is None and alone.click_intake_token is None
    # The bridge secret: the Everflow key and token; no account it could verify with
    keys = parse_bridge_secret(json.dumps(bridge))
    assert (keys.everflow_api_key, keys.everflow_verification_token) == ("ef", "tok")
    assert keys.stripe_accounts == {}
    # Nor one without any account
    assert parse_bridge_secret('{"everflow_api_key": "ef"}').everflow_api_key == "ef"


@pytest.mark.parametrize(
    ("bridge", "named"),
    [
        # a value both secrets set differently: which one holds is not guessed
        ({"email_hash_key": "another"}, "email_hash_key is set differently"),
        ({"stripe_accounts": {"default": {"livemode": True}}}, "stripe_accounts.default.livemode"),
        # an API key for an account the webhook's secret does not name (a typo)
        ({"stripe_accounts": {"defualt": {"api_key": "rk_x"}}}, "stripe_accounts.defualt has no"),
        ({"stripe_accounts": {"default": {"api_key": 5}}}, "api_key must be a string"),
        ({"stripe_accounts": {"default": {"apikey": "rk_x"}}}, "did you mean api_key"),
        ({"everflow_apikey": "x"}, "did you mean everflow_api_key"),
    ],
)
def test_merged_secrets_are_refused_naming_the_key(bridge: dict[str, Any], named: str) -> None:
    webhook, _ = split_secret_document(bridge_secret())
    with pytest.raises(SecretUnavailableError, match=named) as raised:
        parse_bridge_secret({"webhook": json.dumps(webhook), "bridge": json.dumps(bridge)})
    assert "rk_x" not in str(raised.value) and "another" not in str(raised.value)


def test_a_value_set_the_same_in_both_secrets_is_accepted() -> None:
    webhook, bridge = split_secret_document(bridge_secret())
    bridge["email_hash_key"] = webhook["email_hash_key"]
    merged = parse_bridge_secret({"w": json.dumps(webhook), "b": json.dumps(bridge)})
    assert merged.email_hash_key == "test-email-hash-key"


@pytest.mark.parametrize(
    ("text", "named"),
    [("not json", "the secret arn:b is not valid JSON"), ("[1]", "arn:b must be a JSON object")],
)
def test_a_broken_secret_among_several_is_named(text: str, named: str) -> None:
    with pytest.raises(SecretUnavailableError, match=named):
        parse_bridge_secret({"arn:w": json.dumps(bridge_secret()), "arn:b": text})


@pytest.mark.parametrize(
    "bridge",
    [
        {"stripe_accounts": {"Bad Name": {"api_key": "rk_x"}}},
        {"stripe_accounts": {"default": "rk_x"}},
        {"stripe_accounts": {"default": {"api_key": ["rk_x"]}}},
    ],
)
def test_api_keys_alone_are_still_checked_for_shape(bridge: dict[str, Any]) -> None:
    with pytest.raises(SecretUnavailableError, match="stripe_accounts") as raised:
        parse_bridge_secret(json.dumps(bridge))
    assert "rk_x" not in str(raised.value)


def test_empty_account_list_is_refused_in_either_secret() -> None:
    with pytest.raises(SecretUnavailableError, match="at least one account"):
        parse_bridge_secret('{"stripe_accounts": {}, "everflow_api_key": "ef"}')
