"""Settings of each function, read once from its environment and validated at start.

The environment holds only non-secret settings and the *name* of the bridge secret;
the secret's content is fetched at run time (see ``secrets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stripe_everflow.errors import ConfigurationError

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

# SQS refuses messages over 256 KiB; a body that large cannot be queued, so it is
# refused at the door with 413 instead of failing later.
SQS_MAX_MESSAGE_BYTES = 262_144
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
        )

    def allows(self, event_type: str) -> bool:
        return "*" in self.allowed_event_types or event_type in self.allowed_event_types
