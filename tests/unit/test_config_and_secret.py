"""Settings from the environment and the bridge secret: fail fast, name what is wrong."""

from __future__ import annotations

import json

import pytest

from stripe_everflow.config import DEFAULT_ALLOWED_EVENT_TYPES, WebhookSettings, parse_event_types
from stripe_everflow.domain.errors import ConfigurationError, SecretUnavailableError
from stripe_everflow.domain.secret import CachedSecret, parse_bridge_secret
from tests.support import bridge_secret

ENV = {"BRIDGE_SECRET_NAME": "bridge", "PAYMENT_EVENTS_QUEUE_URL": "https://sqs/queue"}


def test_settings_read_from_the_environment() -> None:
    settings = WebhookSettings.from_environ(
        ENV
        | {"ALLOWED_EVENT_TYPES": "invoice.paid, refund.created", "MAX_WEBHOOK_BODY_BYTES": "2048"}
    )
    assert settings.allowed_event_types == {"invoice.paid", "refund.created"}
    assert settings.max_body_bytes == 2048
    assert settings.signature_tolerance_seconds == 300


def test_empty_allow_list_means_the_pipeline_types() -> None:
    assert WebhookSettings.from_environ(ENV | {"ALLOWED_EVENT_TYPES": ""}).allowed_event_types == (
        DEFAULT_ALLOWED_EVENT_TYPES
    )
    assert "invoice.paid" in DEFAULT_ALLOWED_EVENT_TYPES
    assert "charge.dispute.closed" in DEFAULT_ALLOWED_EVENT_TYPES


@pytest.mark.parametrize("missing", ["BRIDGE_SECRET_NAME", "PAYMENT_EVENTS_QUEUE_URL"])
def test_missing_setting_is_named(missing: str) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        WebhookSettings.from_environ({k: v for k, v in ENV.items() if k != missing})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_WEBHOOK_BODY_BYTES", "lots"),
        ("MAX_WEBHOOK_BODY_BYTES", "0"),
        ("MAX_WEBHOOK_BODY_BYTES", "300000"),
        ("SIGNATURE_TOLERANCE_SECONDS", "-1"),
    ],
)
def test_bad_number_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        WebhookSettings.from_environ(ENV | {name: value})


def test_allow_list_entry_that_is_not_an_event_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="invoice paid"):
        parse_event_types("invoice paid")


def test_secret_with_accounts_parses() -> None:
    secret = parse_bridge_secret(json.dumps(bridge_secret()))
    account = secret.account("default")
    assert account is not None and account.livemode is False
    assert len(account.webhook_secrets) == 2
    assert secret.account("missing") is None


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"stripe_accounts": {}}', "at least one account"),
        (
            '{"stripe_accounts": {"Default": {"livemode": false, "webhook_secrets": ["w"]}}}',
            "Default",
        ),
        ('{"stripe_accounts": {"a": {"webhook_secrets": ["w"]}}}', "stripe_accounts.a.livemode"),
        (
            '{"stripe_accounts": {"a": {"livemode": false, "webhook_secrets": []}}}',
            "webhook_secrets",
        ),
        (
            '{"stripe_accounts": {"a": {"livemode": false, "webhook_secrets": [""]}}}',
            "webhook_secrets",
        ),
        ('{"stripe_accounts": {"a": {"livemode": "no", "webhook_secrets": ["w"]}}}', "livemode"),
    ],
)
def test_bad_secret_is_refused_naming_the_key(document: str, named: str) -> None:
    with pytest.raises(SecretUnavailableError, match=named):
        parse_bridge_secret(document)


def test_secret_error_never_contains_a_secret_value() -> None:
    document = json.dumps(
        {"stripe_accounts": {"a": {"livemode": 1, "webhook_secrets": ["whsec_x"]}}}
    )
    with pytest.raises(SecretUnavailableError) as raised:
        parse_bridge_secret(document)
    assert "whsec_x" not in str(raised.value)


def test_cached_secret_is_read_once_per_max_age() -> None:
    reads, now = [], [0.0]

    def fetch() -> str:
        reads.append(now[0])
        return json.dumps(bridge_secret())

    cached = CachedSecret(fetch, max_age=300, clock=lambda: now[0])
    cached.get()
    now[0] = 299
    cached.get()
    assert reads == [0.0]
    now[0] = 300
    cached.get()
    assert reads == [0.0, 300]
