"""Settings of each function, read once from its environment and validated at start.

Each field names in one line the variable it is read from, the parser of its text and
its default; ``from_environ`` raises ConfigurationError naming the first variable that
is missing or malformed. Blank counts as unset. The environment holds only non-secret
settings and the *names* of the secrets each function reads (at run time,
``adapters.secrets``).

``Settings`` is a frozen dataclass to type checkers but generates no code at import:
dataclasses cost the webhook's cold start about 1.5 ms per class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple, Self, dataclass_transform

from stripe_everflow.domain.errors import ConfigurationError

# The Stripe event types the pipeline acts on (see the README, "Which Stripe events
# mean what"). Anything else is acknowledged with 200 and dropped at the door.
DEFAULT_ALLOWED_EVENT_TYPES = frozenset(
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
        "refund.failed",
        "charge.refund.updated",
        "charge.dispute.created",
        "charge.dispute.closed",
    }
)
# Webhook bodies are accepted up to 256 KiB (Stripe's events are far smaller), and
# PaymentEventsQueue takes messages up to 1 MiB (its MaximumMessageSize), so the
# envelope and the email hashes, which are longer than most addresses, always fit.
SQS_MAX_MESSAGE_BYTES = 262_144
QUEUE_MAX_MESSAGE_BYTES = 1_048_576
DEFAULT_ADV_PARAMS = "adv1=kind,adv2=subscription_id,adv3=price_id"

Parser = Callable[[str], Any]  # gets the stripped text; a ValueError names the variable
_REQUIRED: Any = object()


def parse_event_types(raw: str) -> frozenset[str]:
    """A comma-separated allow-list; empty means the default list."""
    entries = {item.strip() for item in raw.split(",") if item.strip()}
    for entry in entries:
        if entry != "*" and ("." not in entry or " " in entry):
            raise ConfigurationError(f"ALLOWED_EVENT_TYPES holds {entry!r}, not an event type")
    return frozenset(entries) or DEFAULT_ALLOWED_EVENT_TYPES


# Where the matcher may learn email → click: POST /clicks ("api"), a click id Stripe
# carries ("stripe"), Everflow's conversions of the email ("everflow", opt-in: needs
# the Everflow API key in the secret, without which it is inert).
CLICK_SOURCES = ("api", "stripe", "everflow")
DEFAULT_CLICK_SOURCES = frozenset({"api", "stripe"})


def parse_click_sources(raw: str) -> frozenset[str]:
    """A comma-separated subset of api, stripe, everflow; empty means the default."""
    entries = {item.strip().lower() for item in raw.split(",") if item.strip()}
    for entry in sorted(entries):
        if entry not in CLICK_SOURCES:
            raise ValueError(f"holds {entry!r}; the sources are {', '.join(CLICK_SOURCES)}")
    return frozenset(entries) or DEFAULT_CLICK_SOURCES


def secret_names(raw: str) -> str:
    """One secret name or ARN, or several separated by commas (read and merged)."""
    names = [name.strip() for name in raw.split(",")]
    if not all(names):
        raise ValueError(f"names an empty secret in {raw!r}")
    return ",".join(names)


def integer(minimum: int = 1, maximum: int | None = None, why: str = "") -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be an integer, got {raw!r}") from None
        if value < minimum:
            bound = "greater than 0" if minimum == 1 else f"{minimum} or more"
            raise ValueError(f"must be {bound}, got {value}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum} ({why})")
        return value

    return parse


def one_of(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


def flag(raw: str) -> bool:
    if raw.lower() not in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        raise ValueError(f"must be true or false, got {raw.lower()!r}")
    return raw.lower() in ("true", "1", "yes", "on")


def everflow_id(raw: str) -> str:
    if not raw.isdigit():
        raise ValueError(f"must be an Everflow numeric id, got {raw!r}")
    return raw


def tracking_url(raw: str) -> str:
    if "/" in raw or ":" in raw:
        raise ValueError("is a host name, e.g. www.example-track.com")
    return f"https://{raw}"


class Variable(NamedTuple):
    """Where a field comes from. ``keep_blank``: set but blank is "", not the default;
    ``replaced_by``: a variable that, when set, is the value as it is."""

    name: str
    parse: Parser
    default: Any
    keep_blank: bool
    replaced_by: str

    def read(self, environ: Mapping[str, str]) -> Any:
        if self.replaced_by and (override := environ.get(self.replaced_by, "").strip()):
            return override
        raw = environ.get(self.name)
        text = (raw or "").strip()
        if not text and not (self.keep_blank and raw is not None):
            if self.default is _REQUIRED:
                raise ConfigurationError(f"environment variable {self.name} is required")
            return self.default
        try:
            return self.parse(text) if text else text
        except ValueError as error:
            raise ConfigurationError(f"{self.name} {error}") from None


def env(
    name: str,
    parse: Parser = str,
    *,
    default: Any = _REQUIRED,
    keep_blank: bool = False,
    replaced_by: str = "",
) -> Any:
    """A field read from the variable ``name``; required unless it has a default."""
    return Variable(name, parse, default, keep_blank, replaced_by)


@dataclass_transform(frozen_default=True, field_specifiers=(env,))
class Settings:
    """Base of the settings classes: frozen, built by position or by name."""

    _fields: ClassVar[tuple[tuple[str, Variable], ...]] = ()

    def __init_subclass__(cls) -> None:
        own = [(name, cls.__dict__.get(name)) for name in inspect.get_annotations(cls)]
        for name, variable in own:
            if not isinstance(variable, Variable):
                raise TypeError(f"{cls.__name__}.{name} is not declared with env(...)")
            delattr(cls, name)
        cls._fields += tuple(own)  # type: ignore[arg-type]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes {len(self._fields)} fields")
        given = {name: value for (name, _), value in zip(self._fields, args, strict=False)}
        if twice := given.keys() & kwargs.keys():
            raise TypeError(f"{type(self).__name__} got {', '.join(twice)} twice")
        kwargs |= given
        for name, variable in self._fields:
            if (value := kwargs.pop(name, variable.default)) is _REQUIRED:
                raise TypeError(f"{type(self).__name__} needs {name}")
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(kwargs)}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        """Raises ConfigurationError naming the first missing or malformed variable."""
        return cls(**{name: variable.read(environ) for name, variable in cls._fields})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(tuple(vars(self).values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


# Fields several classes share. Only fields with a default can be shared so: type
# checkers see a plain default there, not an env(...) call.
_SECRET_MAX_AGE = env("SECRET_MAX_AGE_SECONDS", integer(), default=300)
_EMAIL_ATTRIBUTION = env("EVERFLOW_EMAIL_ATTRIBUTION", flag, default=False)
_CLICK_SOURCES = env("CLICK_SOURCES", parse_click_sources, default=DEFAULT_CLICK_SOURCES)
_EVERFLOW_API_BASE = env("EVERFLOW_API_BASE_URL", default="https://api.eflow.team")
_EVERFLOW_OFFER = env("EVERFLOW_OFFER_ID", everflow_id, default=None)
_EVERFLOW_ADVERTISER = env("EVERFLOW_ADVERTISER_ID", everflow_id, default=None)
_API_CALLS_PER_SECOND = env("EVERFLOW_API_CALLS_PER_SECOND", integer(), default=25)
# LedgerTable holds the Network API budget every worker shares.
_BUDGET_TABLE = env("LEDGER_TABLE", default=None)


class WebhookSettings(Settings):
    """Settings of StripeWebhookFunction."""

    secret_name: str = env("BRIDGE_SECRET_NAME", secret_names)
    payment_events_queue_url: str = env("PAYMENT_EVENTS_QUEUE_URL")
    allowed_event_types: frozenset[str] = env(
        "ALLOWED_EVENT_TYPES", parse_event_types, default=DEFAULT_ALLOWED_EVENT_TYPES
    )
    max_body_bytes: int = env(
        "MAX_WEBHOOK_BODY_BYTES",
        integer(maximum=SQS_MAX_MESSAGE_BYTES, why="the SQS limit"),
        default=SQS_MAX_MESSAGE_BYTES,
    )
    # Stripe's own default; 0 would disable replay protection and is refused.
    signature_tolerance_seconds: int = env("SIGNATURE_TOLERANCE_SECONDS", integer(), default=300)
    secret_max_age_seconds: int = _SECRET_MAX_AGE
    # Emails become keyed hashes before queueing, unless Everflow attributes by email.
    keep_plain_emails: bool = _EMAIL_ATTRIBUTION

    def allows(self, event_type: str) -> bool:
        return "*" in self.allowed_event_types or event_type in self.allowed_event_types


class MatchSettings(Settings):
    """Settings of MatchPaymentFunction."""

    secret_name: str = env("BRIDGE_SECRET_NAME", secret_names)
    attribution_table: str = env("ATTRIBUTION_TABLE")
    postback_queue_url: str = env("POSTBACK_QUEUE_URL")
    payment_events_queue_url: str = env("PAYMENT_EVENTS_QUEUE_URL")
    attribution_policy: str = env(
        "ATTRIBUTION_POLICY", one_of("first-touch", "last-touch"), default="first-touch"
    )
    attribution_window_days: int = env("ATTRIBUTION_WINDOW_DAYS", integer(0), default=0)
    parked_ttl_days: int = env("PARKED_PAYMENT_TTL_DAYS", integer(), default=30)
    click_metadata_key: str = env("CLICK_ID_METADATA_KEY", default="everflow_transaction_id")
    amounts_include_tax: bool = env("AMOUNTS_INCLUDE_TAX", flag, default=False)
    subscription_update_invoices: str = env(
        "SUBSCRIPTION_UPDATE_INVOICES", one_of("rebill", "ignore"), default="rebill"
    )
    email_attribution: bool = _EMAIL_ATTRIBUTION
    eventbridge_account: str = env("EVENTBRIDGE_ACCOUNT", default="default")
    stripe_api_base: str | None = env("STRIPE_API_BASE", default=None)
    secret_max_age_seconds: int = _SECRET_MAX_AGE
    # Everflow as a click source: on a miss, the email's conversions (clicks.everflow_source)
    click_sources: frozenset[str] = _CLICK_SOURCES
    everflow_api_base_url: str = _EVERFLOW_API_BASE
    everflow_offer_id: str | None = _EVERFLOW_OFFER
    everflow_advertiser_id: str | None = _EVERFLOW_ADVERTISER
    # How long "Everflow knows no click for this email" is believed.
    everflow_miss_seconds: int = env("EVERFLOW_MISS_CACHE_SECONDS", integer(), default=300)
    budget_table: str | None = _BUDGET_TABLE
    api_calls_per_second: int = _API_CALLS_PER_SECOND


class SyncSettings(Settings):
    """Settings of SyncClicksFunction (Everflow's conversion report → clicks)."""

    secret_name: str = env("BRIDGE_SECRET_NAME", secret_names)
    attribution_table: str = env("ATTRIBUTION_TABLE")
    payment_events_queue_url: str = env("PAYMENT_EVENTS_QUEUE_URL")
    budget_table: str | None = _BUDGET_TABLE
    click_sources: frozenset[str] = _CLICK_SOURCES
    api_base_url: str = _EVERFLOW_API_BASE
    offer_id: str | None = _EVERFLOW_OFFER
    advertiser_id: str | None = _EVERFLOW_ADVERTISER
    api_calls_per_second: int = _API_CALLS_PER_SECOND
    # Each run reads again this much before its checkpoint (conversions Everflow
    # records late); the first run reads this many days back.
    overlap_seconds: int = env("EVERFLOW_SYNC_OVERLAP_SECONDS", integer(0), default=3600)
    first_sync_days: int = env(
        "EVERFLOW_SYNC_FIRST_DAYS", integer(maximum=365, why="Everflow's report limit"), default=30
    )
    page_size: int = env("EVERFLOW_SYNC_PAGE_SIZE", integer(maximum=2000), default=500)
    # A window holding more rows is halved (the rest waits for the next run).
    max_rows_per_run: int = env("EVERFLOW_SYNC_MAX_ROWS", integer(), default=20_000)
    secret_max_age_seconds: int = _SECRET_MAX_AGE


class ClickSettings(Settings):
    """Settings of ClickIntakeFunction."""

    secret_name: str = env("BRIDGE_SECRET_NAME", secret_names)
    attribution_table: str = env("ATTRIBUTION_TABLE")
    payment_events_queue_url: str = env("PAYMENT_EVENTS_QUEUE_URL")
    max_clicks_per_request: int = env("MAX_CLICKS_PER_REQUEST", integer(), default=500)
    max_body_bytes: int = env("MAX_CLICK_BODY_BYTES", integer(), default=1_048_576)
    secret_max_age_seconds: int = _SECRET_MAX_AGE


class PostSettings(Settings):
    """Settings of PostEverflowFunction."""

    secret_name: str = env("BRIDGE_SECRET_NAME", secret_names)
    ledger_table: str = env("LEDGER_TABLE")
    postback_dlq_url: str = env("POSTBACK_DLQ_URL")
    # Its own queue: failed records are delayed there for their next delivery.
    postback_queue_url: str = env("POSTBACK_QUEUE_URL")
    # EVERFLOW_POSTBACK_BASE_URL (the local stack's Everflow stand-in) replaces the domain.
    postback_base_url: str = env(
        "EVERFLOW_TRACKING_DOMAIN", tracking_url, replaced_by="EVERFLOW_POSTBACK_BASE_URL"
    )
    network_id: str = env("EVERFLOW_NETWORK_ID", everflow_id)
    offer_id: str | None = env("EVERFLOW_OFFER_ID", everflow_id, default=None)
    event_id: str | None = env("EVERFLOW_EVENT_ID", everflow_id, default=None)
    advertiser_event_id: str | None = env("EVERFLOW_ADVERTISER_EVENT_ID", everflow_id, default=None)
    target_rules: str = env("EVERFLOW_TARGET_RULES", default="")
    # Set but blank: no adv parameters at all.
    adv_params: str = env("EVERFLOW_ADV_PARAMS", default=DEFAULT_ADV_PARAMS, keep_blank=True)
    api_base_url: str = env("EVERFLOW_API_BASE_URL", default="https://api.eflow.team")
    partial_refund_policy: str = env(
        "PARTIAL_REFUND_POLICY", one_of("adjust", "reverse", "record-only"), default="adjust"
    )
    partial_refund_fallback: str = env(
        "PARTIAL_REFUND_FALLBACK", one_of("reverse", "record-only"), default="record-only"
    )
    dispute_policy: str = env(
        "DISPUTE_POLICY", one_of("on-created", "on-lost"), default="on-created"
    )
    # Partners' payout on partial refunds: the offer's own rules, or scaled by what the
    # customer kept (PUT …/payoutrevenue; needs the Everflow API key).
    partial_refund_payout: str = env(
        "PARTIAL_REFUND_PAYOUT", one_of("offer", "prorate"), default="offer"
    )
    api_calls_per_second: int = env("EVERFLOW_API_CALLS_PER_SECOND", integer(), default=25)
    lease_seconds: int = env("POSTBACK_LEASE_SECONDS", integer(), default=120)
    secret_max_age_seconds: int = _SECRET_MAX_AGE
    # Retries of failed records: delays growing from the first to the cap (SQS allows
    # 12 h), and the circuit breaker over Everflow shared by every instance.
    retry_first_delay_seconds: int = env(
        "POSTBACK_RETRY_FIRST_DELAY_SECONDS", integer(), default=30
    )
    retry_max_delay_seconds: int = env(
        "POSTBACK_RETRY_MAX_DELAY_SECONDS",
        integer(maximum=43_200, why="SQS's longest visibility timeout"),
        default=3600,
    )
    breaker_threshold: int = env("EVERFLOW_BREAKER_THRESHOLD", integer(), default=10)
    breaker_cooldown_seconds: int = env("EVERFLOW_BREAKER_COOLDOWN_SECONDS", integer(), default=60)
