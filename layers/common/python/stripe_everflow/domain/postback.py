"""Everflow: building server postbacks from jobs, sending them, reading the answer.

Conversion postback (docs: helpdesk.everflow.io, "S2S postback URLs")::

    GET https://<tracking-domain>/?nid=<network>&transaction_id=<click>&event_id=<event>
        &amount=49.00&currency=USD&order_id=in_…&adv1=…&verification_token=…

``adv_event_id`` replaces ``event_id`` for an advertiser-level (global) event; with
Everflow's email attribution ``oid``/``aid`` + ``email`` replace ``transaction_id``.

What the answer means (Everflow does not document it; see the README):
2xx → posted; a bodyless 204 → rejected by Everflow (recorded, not retried);
429, 5xx, timeouts, connection errors → retryable; other 4xx → permanent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from stripe_everflow.domain.errors import ConfigurationError
from stripe_everflow.domain.jobs import EmailTarget, PostbackJob

Outcome = Literal["posted", "rejected", "retryable", "permanent"]
MAX_RECORDED_BODY = 2000
ADV_SOURCES = (
    "kind",
    "subscription_id",
    "price_id",
    "product_id",
    "customer_id",
    "invoice_id",
    "account",
    "billing_reason",
)


@dataclass(frozen=True)
class EventTarget:
    """Where a conversion is recorded: an offer event, an advertiser event, or the base."""

    event_id: str | None = None
    advertiser_event_id: str | None = None
    offer_id: str | None = None


@dataclass(frozen=True)
class TargetRule:
    """Per Stripe price or product: a different target for initial and/or rebill."""

    price_or_product: str
    initial: EventTarget | None = None
    rebill: EventTarget | None = None


@dataclass(frozen=True)
class PostbackSettings:
    base_url: str
    network_id: str
    default_target: EventTarget
    rules: Sequence[TargetRule] = ()
    adv_params: Mapping[str, str] = field(default_factory=dict)

    def target_for(self, job: PostbackJob) -> EventTarget:
        """The rule matching one of the job's prices (then products), else the default."""
        if not self.rules:
            return self.default_target
        for wanted in (*job.stripe.price_ids, *job.stripe.product_ids):
            for rule in self.rules:
                if rule.price_or_product == wanted:
                    chosen = rule.rebill if job.kind == "rebill" else rule.initial
                    if chosen is not None:
                        return chosen
        return self.default_target


def _target(raw: Any, where: str) -> EventTarget | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"event_id", "adv_event_id", "offer_id"}:
        raise ConfigurationError(f"{where} must be an object with event_id, adv_event_id, offer_id")
    values = {k: str(v) for k, v in raw.items() if v not in (None, "")}
    for name, value in values.items():
        if not value.isdigit():
            raise ConfigurationError(f"{where}.{name} must be an Everflow numeric id")
    return EventTarget(values.get("event_id"), values.get("adv_event_id"), values.get("offer_id"))


def parse_target_rules(text: str) -> tuple[TargetRule, ...]:
    """``[{"price": "price_…" | "product": "prod_…", "initial": {…}, "rebill": {…}}]``."""
    if not text.strip():
        return ()
    try:
        document = json.loads(text)
    except ValueError:
        raise ConfigurationError("EVERFLOW_TARGET_RULES is not valid JSON") from None
    if not isinstance(document, list):
        raise ConfigurationError("EVERFLOW_TARGET_RULES must be a JSON list")
    rules = []
    for index, raw in enumerate(document):
        where = f"EVERFLOW_TARGET_RULES[{index}]"
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{where} must be an object")
        key = raw.get("price") or raw.get("product")
        if not isinstance(key, str) or not key.startswith(("price_", "prod_")):
            raise ConfigurationError(f"{where} needs a price (price_…) or product (prod_…)")
        rules.append(
            TargetRule(
                key,
                _target(raw.get("initial"), f"{where}.initial"),
                _target(raw.get("rebill"), f"{where}.rebill"),
            )
        )
    return tuple(rules)


def parse_adv_params(text: str) -> dict[str, str]:
    """``adv1=kind,adv2=subscription_id`` → {"adv1": "kind", …}."""
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, source = item.partition("=")
        if name not in {f"adv{i}" for i in range(1, 6)} or source not in ADV_SOURCES:
            raise ConfigurationError(
                f"EVERFLOW_ADV_PARAMS entry {item!r}: use advN=<{'|'.join(ADV_SOURCES)}>"
            )
        mapping[name] = source
    return mapping


def _adv_value(job: PostbackJob, source: str) -> str | None:
    stripe = job.stripe
    value: Any
    if source in ("kind", "account"):
        value = getattr(job, source)
    elif source == "price_id":
        value = stripe.price_ids[0] if stripe.price_ids else None
    elif source == "product_id":
        value = stripe.product_ids[0] if stripe.product_ids else None
    else:
        value = getattr(stripe, source)
    return str(value) if value else None


def conversion_params(
    job: PostbackJob,
    settings: PostbackSettings,
    verification_token: str | None,
    event: EventTarget | None = None,
) -> list[tuple[str, str]]:
    """The query of a conversion postback for a conversion job (with a click or email
    target), to ``event`` (default: ``settings.target_for(job)``)."""
    target = job.target
    if event is None:
        event = settings.target_for(job)
    params: list[tuple[str, str]] = [("nid", settings.network_id)]
    if isinstance(target, EmailTarget):
        # Everflow's email attribution: the partner owning the email gets the credit.
        params.append(("oid", event.offer_id or ""))
        params.append(("email", target.email))
    elif target is not None:
        params.append(("transaction_id", target.transaction_id))
    else:
        raise ValueError("a conversion postback needs a click or email target")
    if event.advertiser_event_id:
        params.append(("adv_event_id", event.advertiser_event_id))
    elif event.event_id:
        params.append(("event_id", event.event_id))
    if job.amount is not None:
        params.append(("amount", format(job.amount, "f")))
    if job.currency:
        params.append(("currency", job.currency))
    order_id = job.order_id
    if order_id:
        params.append(("order_id", order_id))
    # Jobs written before postback-job/1.1 name only the promotion code's id.
    coupon = job.coupon_code or job.stripe.promotion_code
    if coupon:
        params.append(("coupon_code", coupon))
    for name in sorted(settings.adv_params):
        value = _adv_value(job, settings.adv_params[name])
        if value:
            params.append((name, value))
    if verification_token:
        params.append(("verification_token", verification_token))
    return [(k, v) for k, v in params if v != ""]


def redact_url(url: str, verification_token: str | None) -> str:
    """The URL as recorded in the ledger and logs: never the verification token, in
    whatever form the query encoded it."""
    if not verification_token:
        return url
    encoded = urlencode([("t", verification_token)])[2:]
    return url.replace(encoded, "REDACTED").replace(verification_token, "REDACTED")


@dataclass(frozen=True)
class PostbackResult:
    outcome: Outcome
    status: int | None
    body: str
    conversion_id: str | None = None
    error: str | None = None


def interpret_answer(status: int, body: str) -> PostbackResult:
    """What an HTTP answer from the tracking domain means for the job."""
    text = body[:MAX_RECORDED_BODY]
    if status == 204 and not body.strip():
        return PostbackResult("rejected", status, text)
    if 200 <= status < 300:
        conversion_id = None
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict) and parsed.get("conversion_id"):
                conversion_id = str(parsed["conversion_id"])
        except ValueError:
            pass
        return PostbackResult("posted", status, text, conversion_id)
    if status == 429 or status >= 500:
        return PostbackResult("retryable", status, text)
    return PostbackResult("permanent", status, text)


def reversal_params(
    network_id: str,
    conversion_id: str | None,
    order_id: str | None,
    verification_token: str | None,
) -> list[tuple[str, str]]:
    """A reversal keyed by exactly one safe key: the conversion id, else the order id.
    Never by bare email or bare transaction id (those reverse every conversion of the
    customer or of the click)."""
    params = [("nid", network_id)]
    if conversion_id:
        params.append(("conversion_id", conversion_id))
    elif order_id:
        params.append(("order_id", order_id))
    else:
        raise ValueError("a reversal needs a conversion id or an order id")
    if verification_token:
        params.append(("verification_token", verification_token))
    return params


@dataclass(frozen=True)
class RecordedConversion:
    conversion_id: str
    order_id: str | None
    status: str | None
    is_event: bool
