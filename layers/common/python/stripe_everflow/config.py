"""Settings of each function, read once from its environment and validated at start.

The environment holds only non-secret settings and the *name* of the bridge secret;
the secret's content is fetched at run time (see ``secrets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stripe_everflow.domain.errors import ConfigurationError

# The Stripe event types the pipeline acts on (see the README, "Which Stripe events
# mean what"). Anything else is acknowledged with 200 and dropped at the door.
DEFAULT_ALLOWED_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "invoice.paid",
        "invoice_payment.paid",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "customer.created",
        "customer.updated",
        "customer.subscription.created",
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "charge.dispute.created",
        "charge.dispute.closed",
    }
)

# Webhook bodies are accepted up to 256 KiB (Stripe's events are far smaller), and
# PaymentEventsQueue takes messages up to 1 MiB (its MaximumMessageSize), so the
# envelope and the email hashes, which are longer than most addresses, always fit.
SQS_MAX_MESSAGE_BYTES = 262_144
QUEUE_MAX_MESSAGE_BYTES = 1_048_576
DEFAULT_MAX_BODY_BYTES = SQS_MAX_MESSAGE_BYTES
# Stripe's own default; 0 would disable replay protection and is refused.
DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300
DEFAULT_SECRET_MAX_AGE_SECONDS = 300


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is required")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be greater than 0, got {value}")
    return value


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = environ.get(name, "").strip() or default
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def _non_negative_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} must be 0 or more, got {value}")
    return value


def parse_event_types(raw: str) -> frozenset[str]:
    """Read a comma-separated allow-list; empty means the default list.

    Raises ConfigurationError for an entry that cannot be a Stripe event type.
    """
    entries = {item.strip() for item in raw.split(",") if item.strip()}
    if not entries:
        return DEFAULT_ALLOWED_EVENT_TYPES
    for entry in entries:
        if entry != "*" and ("." not in entry or " " in entry):
            raise ConfigurationError(f"ALLOWED_EVENT_TYPES holds {entry!r}, not an event type")
    return frozenset(entries)


@dataclass(frozen=True)
class WebhookSettings:
    """Settings of StripeWebhookFunction."""

    secret_name: str
    payment_events_queue_url: str
    allowed_event_types: frozenset[str] = DEFAULT_ALLOWED_EVENT_TYPES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    signature_tolerance_seconds: int = DEFAULT_SIGNATURE_TOLERANCE_SECONDS
    secret_max_age_seconds: int = DEFAULT_SECRET_MAX_AGE_SECONDS
    # Emails are replaced by keyed hashes before queueing, unless Everflow's email
    # attribution needs the address itself (EVERFLOW_EMAIL_ATTRIBUTION).
    keep_plain_emails: bool = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> WebhookSettings:
        """Build the settings; raises ConfigurationError naming the first bad variable."""
        max_body = _positive_int(environ, "MAX_WEBHOOK_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
        if max_body > SQS_MAX_MESSAGE_BYTES:
            raise ConfigurationError(
                f"MAX_WEBHOOK_BODY_BYTES must be at most {SQS_MAX_MESSAGE_BYTES} (the SQS limit)"
            )
        return cls(
            secret_name=_require(environ, "BRIDGE_SECRET_NAME"),
            payment_events_queue_url=_require(environ, "PAYMENT_EVENTS_QUEUE_URL"),
            allowed_event_types=parse_event_types(environ.get("ALLOWED_EVENT_TYPES", "")),
            max_body_bytes=max_body,
            signature_tolerance_seconds=_positive_int(
                environ, "SIGNATURE_TOLERANCE_SECONDS", DEFAULT_SIGNATURE_TOLERANCE_SECONDS
            ),
            secret_max_age_seconds=_positive_int(
                environ, "SECRET_MAX_AGE_SECONDS", DEFAULT_SECRET_MAX_AGE_SECONDS
            ),
            keep_plain_emails=_flag(environ, "EVERFLOW_EMAIL_ATTRIBUTION", False),
        )

    def allows(self, event_type: str) -> bool:
        return "*" in self.allowed_event_types or event_type in self.allowed_event_types


DEFAULT_CLICK_METADATA_KEY = "everflow_transaction_id"
IDEMPOTENCY_SECONDS = 4 * 86_400  # as long as PaymentEventsQueue keeps a message


@dataclass(frozen=True)
class MatchSettings:
    """Settings of MatchPaymentFunction."""

    secret_name: str
    attribution_table: str
    idempotency_table: str
    postback_queue_url: str
    payment_events_queue_url: str
    attribution_policy: str = "first-touch"
    attribution_window_days: int = 0
    parked_ttl_days: int = 30
    click_metadata_key: str = DEFAULT_CLICK_METADATA_KEY
    amounts_include_tax: bool = False
    subscription_update_invoices: str = "rebill"
    email_attribution: bool = False
    eventbridge_account: str = "default"
    stripe_api_base: str | None = None
    secret_max_age_seconds: int = DEFAULT_SECRET_MAX_AGE_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> MatchSettings:
        """Build the settings; raises ConfigurationError naming the first bad variable."""
        return cls(
            secret_name=_require(environ, "BRIDGE_SECRET_NAME"),
            attribution_table=_require(environ, "ATTRIBUTION_TABLE"),
            idempotency_table=_require(environ, "IDEMPOTENCY_TABLE"),
            postback_queue_url=_require(environ, "POSTBACK_QUEUE_URL"),
            payment_events_queue_url=_require(environ, "PAYMENT_EVENTS_QUEUE_URL"),
            attribution_policy=_choice(
                environ, "ATTRIBUTION_POLICY", ("first-touch", "last-touch"), "first-touch"
            ),
            attribution_window_days=_non_negative_int(environ, "ATTRIBUTION_WINDOW_DAYS", 0),
            parked_ttl_days=_positive_int(environ, "PARKED_PAYMENT_TTL_DAYS", 30),
            click_metadata_key=environ.get("CLICK_ID_METADATA_KEY", "").strip()
            or DEFAULT_CLICK_METADATA_KEY,
            amounts_include_tax=_flag(environ, "AMOUNTS_INCLUDE_TAX", False),
            subscription_update_invoices=_choice(
                environ, "SUBSCRIPTION_UPDATE_INVOICES", ("rebill", "ignore"), "rebill"
            ),
            email_attribution=_flag(environ, "EVERFLOW_EMAIL_ATTRIBUTION", False),
            eventbridge_account=environ.get("EVENTBRIDGE_ACCOUNT", "").strip() or "default",
            stripe_api_base=environ.get("STRIPE_API_BASE", "").strip() or None,
            secret_max_age_seconds=_positive_int(
                environ, "SECRET_MAX_AGE_SECONDS", DEFAULT_SECRET_MAX_AGE_SECONDS
            ),
        )


DEFAULT_MAX_CLICKS_PER_REQUEST = 500
DEFAULT_MAX_CLICK_BODY_BYTES = 1_048_576


@dataclass(frozen=True)
class ClickSettings:
    """Settings of ClickIntakeFunction."""

    secret_name: str
    attribution_table: str
    payment_events_queue_url: str
    max_clicks_per_request: int = DEFAULT_MAX_CLICKS_PER_REQUEST
    max_body_bytes: int = DEFAULT_MAX_CLICK_BODY_BYTES
    secret_max_age_seconds: int = DEFAULT_SECRET_MAX_AGE_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ClickSettings:
        return cls(
            secret_name=_require(environ, "BRIDGE_SECRET_NAME"),
            attribution_table=_require(environ, "ATTRIBUTION_TABLE"),
            payment_events_queue_url=_require(environ, "PAYMENT_EVENTS_QUEUE_URL"),
            max_clicks_per_request=_positive_int(
                environ, "MAX_CLICKS_PER_REQUEST", DEFAULT_MAX_CLICKS_PER_REQUEST
            ),
            max_body_bytes=_positive_int(
                environ, "MAX_CLICK_BODY_BYTES", DEFAULT_MAX_CLICK_BODY_BYTES
            ),
            secret_max_age_seconds=_positive_int(
                environ, "SECRET_MAX_AGE_SECONDS", DEFAULT_SECRET_MAX_AGE_SECONDS
            ),
        )


DEFAULT_ADV_PARAMS = "adv1=kind,adv2=subscription_id,adv3=price_id"


@dataclass(frozen=True)
class PostSettings:
    """Settings of PostEverflowFunction."""

    secret_name: str
    ledger_table: str
    postback_dlq_url: str
    postback_base_url: str
    network_id: str
    offer_id: str | None
    event_id: str | None
    advertiser_event_id: str | None
    target_rules: str = ""
    adv_params: str = DEFAULT_ADV_PARAMS
    api_base_url: str = "https://api.eflow.team"
    partial_refund_policy: str = "adjust"
    partial_refund_fallback: str = "record-only"
    dispute_policy: str = "on-created"
    api_calls_per_second: int = 25
    lease_seconds: int = 120
    secret_max_age_seconds: int = DEFAULT_SECRET_MAX_AGE_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PostSettings:
        """Raises ConfigurationError naming the first missing or malformed setting."""
        override = environ.get("EVERFLOW_POSTBACK_BASE_URL", "").strip()
        domain = environ.get("EVERFLOW_TRACKING_DOMAIN", "").strip()
        if not override and not domain:
            raise ConfigurationError("environment variable EVERFLOW_TRACKING_DOMAIN is required")
        if domain and ("/" in domain or ":" in domain):
            raise ConfigurationError(
                "EVERFLOW_TRACKING_DOMAIN is a host name, e.g. www.example-track.com"
            )
        network = _require(environ, "EVERFLOW_NETWORK_ID")
        ids = {}
        for name in (
            "EVERFLOW_NETWORK_ID",
            "EVERFLOW_OFFER_ID",
            "EVERFLOW_EVENT_ID",
            "EVERFLOW_ADVERTISER_EVENT_ID",
        ):
            value = environ.get(name, "").strip()
            if value and not value.isdigit():
                raise ConfigurationError(f"{name} must be an Everflow numeric id, got {value!r}")
            ids[name] = value or None
        return cls(
            secret_name=_require(environ, "BRIDGE_SECRET_NAME"),
            ledger_table=_require(environ, "LEDGER_TABLE"),
            postback_dlq_url=_require(environ, "POSTBACK_DLQ_URL"),
            postback_base_url=override or f"https://{domain}",
            network_id=network,
            offer_id=ids["EVERFLOW_OFFER_ID"],
            event_id=ids["EVERFLOW_EVENT_ID"],
            advertiser_event_id=ids["EVERFLOW_ADVERTISER_EVENT_ID"],
            target_rules=environ.get("EVERFLOW_TARGET_RULES", ""),
            adv_params=environ.get("EVERFLOW_ADV_PARAMS", DEFAULT_ADV_PARAMS),
            api_base_url=environ.get("EVERFLOW_API_BASE_URL", "").strip()
            or "https://api.eflow.team",
            partial_refund_policy=_choice(
                environ, "PARTIAL_REFUND_POLICY", ("adjust", "reverse", "record-only"), "adjust"
            ),
            partial_refund_fallback=_choice(
                environ, "PARTIAL_REFUND_FALLBACK", ("reverse", "record-only"), "record-only"
            ),
            dispute_policy=_choice(
                environ, "DISPUTE_POLICY", ("on-created", "on-lost"), "on-created"
            ),
            api_calls_per_second=_positive_int(environ, "EVERFLOW_API_CALLS_PER_SECOND", 25),
            lease_seconds=_positive_int(environ, "POSTBACK_LEASE_SECONDS", 120),
            secret_max_age_seconds=_positive_int(
                environ, "SECRET_MAX_AGE_SECONDS", DEFAULT_SECRET_MAX_AGE_SECONDS
            ),
        )
