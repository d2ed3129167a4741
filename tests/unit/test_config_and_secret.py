"""Settings from the environment and the bridge secret: fail fast, name what is wrong."""

from __future__ import annotations

import json

import pytest

from stripe_everflow.config import (
    DEFAULT_ADV_PARAMS,
    DEFAULT_ALLOWED_EVENT_TYPES,
    ClickSettings,
    MatchSettings,
    PostSettings,
    WebhookSettings,
    parse_event_types,
)
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


MATCH_ENV = {
    "BRIDGE_SECRET_NAME": "bridge",
    "ATTRIBUTION_TABLE": "attribution",
    "POSTBACK_QUEUE_URL": "https://sqs/postbacks",
    "PAYMENT_EVENTS_QUEUE_URL": "https://sqs/queue",
}
CLICK_ENV = {
    "BRIDGE_SECRET_NAME": "bridge",
    "ATTRIBUTION_TABLE": "attribution",
    "PAYMENT_EVENTS_QUEUE_URL": "https://sqs/queue",
}
POST_ENV = {
    "BRIDGE_SECRET_NAME": "bridge",
    "LEDGER_TABLE": "ledger",
    "POSTBACK_DLQ_URL": "https://sqs/dlq",
    "POSTBACK_QUEUE_URL": "https://sqs/postbacks",
    "EVERFLOW_TRACKING_DOMAIN": "www.example-track.com",
    "EVERFLOW_NETWORK_ID": "42",
}
MINIMAL = [
    (WebhookSettings, ENV),
    (MatchSettings, MATCH_ENV),
    (ClickSettings, CLICK_ENV),
    (PostSettings, POST_ENV),
]
Settings = type[WebhookSettings] | type[MatchSettings] | type[ClickSettings] | type[PostSettings]


def test_defaults_of_every_function() -> None:
    assert WebhookSettings.from_environ(ENV) == WebhookSettings(
        secret_name="bridge",
        payment_events_queue_url="https://sqs/queue",
        allowed_event_types=DEFAULT_ALLOWED_EVENT_TYPES,
        max_body_bytes=262_144,
        signature_tolerance_seconds=300,
        secret_max_age_seconds=300,
        keep_plain_emails=False,
    )
    assert MatchSettings.from_environ(MATCH_ENV) == MatchSettings(
        secret_name="bridge",
        attribution_table="attribution",
        postback_queue_url="https://sqs/postbacks",
        payment_events_queue_url="https://sqs/queue",
        attribution_policy="first-touch",
        attribution_window_days=0,
        parked_ttl_days=30,
        click_metadata_key="everflow_transaction_id",
        amounts_include_tax=False,
        subscription_update_invoices="rebill",
        email_attribution=False,
        eventbridge_account="default",
        stripe_api_base=None,
        secret_max_age_seconds=300,
    )
    assert ClickSettings.from_environ(CLICK_ENV) == ClickSettings(
        secret_name="bridge",
        attribution_table="attribution",
        payment_events_queue_url="https://sqs/queue",
        max_clicks_per_request=500,
        max_body_bytes=1_048_576,
        secret_max_age_seconds=300,
    )
    assert PostSettings.from_environ(POST_ENV) == PostSettings(
        secret_name="bridge",
        ledger_table="ledger",
        postback_dlq_url="https://sqs/dlq",
        postback_queue_url="https://sqs/postbacks",
        postback_base_url="https://www.example-track.com",
        network_id="42",
        offer_id=None,
        event_id=None,
        advertiser_event_id=None,
        target_rules="",
        adv_params=DEFAULT_ADV_PARAMS,
        api_base_url="https://api.eflow.team",
        partial_refund_policy="adjust",
        partial_refund_fallback="record-only",
        dispute_policy="on-created",
        partial_refund_payout="offer",
        api_calls_per_second=25,
        lease_seconds=120,
        secret_max_age_seconds=300,
        retry_first_delay_seconds=30,
        retry_max_delay_seconds=3600,
        breaker_threshold=10,
        breaker_cooldown_seconds=60,
    )


@pytest.mark.parametrize(
    ("settings", "environ", "missing"),
    [
        (settings, environ, name)
        for settings, environ in MINIMAL
        for name in environ
        if name != "EVERFLOW_TRACKING_DOMAIN"
    ],
)
def test_every_required_variable_is_named_when_missing_or_blank(
    settings: Settings, environ: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"environment variable {missing} is required"):
        settings.from_environ({k: v for k, v in environ.items() if k != missing})
    with pytest.raises(ConfigurationError, match=missing):
        settings.from_environ(environ | {missing: "  "})


@pytest.mark.parametrize(
    ("settings", "environ", "name", "value", "named"),
    [
        (WebhookSettings, ENV, "SIGNATURE_TOLERANCE_SECONDS", "0", "greater than 0"),
        (WebhookSettings, ENV, "SECRET_MAX_AGE_SECONDS", "5m", "an integer"),
        (WebhookSettings, ENV, "EVERFLOW_EMAIL_ATTRIBUTION", "maybe", "true or false"),
        (WebhookSettings, ENV, "ALLOWED_EVENT_TYPES", "invoice.paid,invoice", "not an event"),
        (MatchSettings, MATCH_ENV, "ATTRIBUTION_POLICY", "any-touch", "first-touch, last-touch"),
        (MatchSettings, MATCH_ENV, "ATTRIBUTION_WINDOW_DAYS", "-1", "0 or more"),
        (MatchSettings, MATCH_ENV, "PARKED_PAYMENT_TTL_DAYS", "0", "greater than 0"),
        (MatchSettings, MATCH_ENV, "AMOUNTS_INCLUDE_TAX", "si", "true or false"),
        (MatchSettings, MATCH_ENV, "SUBSCRIPTION_UPDATE_INVOICES", "all", "rebill, ignore"),
        (ClickSettings, CLICK_ENV, "MAX_CLICKS_PER_REQUEST", "many", "an integer"),
        (ClickSettings, CLICK_ENV, "MAX_CLICK_BODY_BYTES", "-5", "greater than 0"),
        (PostSettings, POST_ENV, "EVERFLOW_TRACKING_DOMAIN", "https://t.example", "host name"),
        (PostSettings, POST_ENV, "EVERFLOW_NETWORK_ID", "net-1", "numeric id"),
        (PostSettings, POST_ENV, "EVERFLOW_OFFER_ID", "1a", "numeric id"),
        (PostSettings, POST_ENV, "EVERFLOW_EVENT_ID", "x", "numeric id"),
        (PostSettings, POST_ENV, "EVERFLOW_ADVERTISER_EVENT_ID", "-3", "numeric id"),
        (PostSettings, POST_ENV, "PARTIAL_REFUND_POLICY", "ignore", "adjust, reverse"),
        (PostSettings, POST_ENV, "PARTIAL_REFUND_FALLBACK", "adjust", "reverse, record-only"),
        (PostSettings, POST_ENV, "DISPUTE_POLICY", "never", "on-created, on-lost"),
        (PostSettings, POST_ENV, "EVERFLOW_API_CALLS_PER_SECOND", "0", "greater than 0"),
        (PostSettings, POST_ENV, "POSTBACK_LEASE_SECONDS", "2.5", "an integer"),
        (WebhookSettings, ENV, "BRIDGE_SECRET_NAME", "webhook,", "empty secret"),
        (MatchSettings, MATCH_ENV, "BRIDGE_SECRET_NAME", "webhook,,bridge", "empty secret"),
    ],
)
def test_malformed_value_is_refused_naming_the_variable(
    settings: Settings, environ: dict[str, str], name: str, value: str, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=name) as raised:
        settings.from_environ(environ | {name: value})
    assert named in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "environ", "name", "value", "field", "expected"),
    [
        (WebhookSettings, ENV, "EVERFLOW_EMAIL_ATTRIBUTION", " Yes ", "keep_plain_emails", True),
        (WebhookSettings, ENV, "SECRET_MAX_AGE_SECONDS", "60", "secret_max_age_seconds", 60),
        (
            MatchSettings,
            MATCH_ENV,
            "ATTRIBUTION_POLICY",
            "last-touch",
            "attribution_policy",
            "last-touch",
        ),
        (MatchSettings, MATCH_ENV, "ATTRIBUTION_WINDOW_DAYS", "0", "attribution_window_days", 0),
        (
            MatchSettings,
            MATCH_ENV,
            "CLICK_ID_METADATA_KEY",
            " ef_click ",
            "click_metadata_key",
            "ef_click",
        ),
        (MatchSettings, MATCH_ENV, "AMOUNTS_INCLUDE_TAX", "off", "amounts_include_tax", False),
        (MatchSettings, MATCH_ENV, "EVENTBRIDGE_ACCOUNT", "eu", "eventbridge_account", "eu"),
        (
            MatchSettings,
            MATCH_ENV,
            "STRIPE_API_BASE",
            "http://127.0.0.1:1",
            "stripe_api_base",
            "http://127.0.0.1:1",
        ),
        (ClickSettings, CLICK_ENV, "MAX_CLICKS_PER_REQUEST", "20", "max_clicks_per_request", 20),
        (
            ClickSettings,
            CLICK_ENV,
            "BRIDGE_SECRET_NAME",
            " arn:webhook , arn:bridge ",
            "secret_name",
            "arn:webhook,arn:bridge",
        ),
        (PostSettings, POST_ENV, "EVERFLOW_OFFER_ID", "7", "offer_id", "7"),
        (PostSettings, POST_ENV, "EVERFLOW_ADV_PARAMS", "adv1=kind", "adv_params", "adv1=kind"),
        # Set but empty: no adv parameters at all (unset means the default list).
        (PostSettings, POST_ENV, "EVERFLOW_ADV_PARAMS", "", "adv_params", ""),
        (PostSettings, POST_ENV, "EVERFLOW_TARGET_RULES", "[]", "target_rules", "[]"),
        (
            PostSettings,
            POST_ENV,
            "EVERFLOW_API_BASE_URL",
            "http://127.0.0.1:2",
            "api_base_url",
            "http://127.0.0.1:2",
        ),
        (PostSettings, POST_ENV, "DISPUTE_POLICY", "on-lost", "dispute_policy", "on-lost"),
        (
            PostSettings,
            POST_ENV,
            "EVERFLOW_POSTBACK_BASE_URL",
            "http://127.0.0.1:3",
            "postback_base_url",
            "http://127.0.0.1:3",
        ),
    ],
)
def test_value_is_read_into_its_field(
    settings: Settings,
    environ: dict[str, str],
    name: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    assert getattr(settings.from_environ(environ | {name: value}), field) == expected


def test_postback_base_url_override_stands_in_for_the_tracking_domain() -> None:
    environ = {k: v for k, v in POST_ENV.items() if k != "EVERFLOW_TRACKING_DOMAIN"}
    with pytest.raises(ConfigurationError, match="EVERFLOW_TRACKING_DOMAIN is required"):
        PostSettings.from_environ(environ)
    override = environ | {"EVERFLOW_POSTBACK_BASE_URL": "http://127.0.0.1:9"}
    assert PostSettings.from_environ(override).postback_base_url == "http://127.0.0.1:9"


def test_settings_are_immutable_and_built_by_position_or_name() -> None:
    settings = WebhookSettings("bridge", "https://queue", frozenset({"invoice.paid"}))
    assert settings == WebhookSettings(
        secret_name="bridge",
        payment_events_queue_url="https://queue",
        allowed_event_types=frozenset({"invoice.paid"}),
    )
    assert settings.allows("invoice.paid") and not settings.allows("charge.succeeded")
    assert "bridge" in repr(settings)
    with pytest.raises(AttributeError):
        settings.max_body_bytes = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        WebhookSettings("bridge")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="secret_name"):
        WebhookSettings("bridge", "https://queue", secret_name="other")  # type: ignore[misc]
    with pytest.raises(TypeError, match="max_body"):
        WebhookSettings("bridge", "https://queue", max_body=1)  # type: ignore[call-arg]


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
