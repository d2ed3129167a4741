"""What a Stripe event means for the bridge: one decision per event, for every API shape.

One conversion per real payment, whatever the API version and whatever order events
arrive in. Sources of truth:

* invoiced money (subscriptions, invoices) — ``invoice.paid`` with an amount > 0,
  keyed by the invoice id;
* one-off money — Checkout in payment mode and PaymentIntents not part of an
  invoice, keyed by the payment intent id (so the session and the intent collapse
  onto one conversion); ``charge.succeeded`` only for charges without a payment
  intent (the legacy Charges API);
* ``checkout.session.completed`` in subscription mode and customer/subscription
  events carry click ids only (their money is counted by ``invoice.paid``);
* refunds (``charge.refunded``, with the charge's cumulative refunded amount; the
  ``refund.*`` events describe the same refunds and are not counted) and disputes
  are forwarded with every id needed to find their conversion.

Pre-2025-03-31 payloads link charge/payment intent → invoice directly
(``invoice`` field present); basil and later do not, so a payment intent's invoice
is learned from ``invoice_payment.paid`` or Stripe's InvoicePayment list
(``needs_invoice_check``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

Action = Literal[
    "payment", "refund", "dispute_opened", "dispute_closed", "click_carrier", "link", "ignored"
]
KindHint = Literal["initial", "rebill", "auto"]


@dataclass(frozen=True)
class StripeIds:
    event_id: str
    event_type: str
    object_id: str
    invoice_id: str | None = None
    charge_id: str | None = None
    payment_intent_id: str | None = None
    customer_id: str | None = None
    subscription_id: str | None = None
    refund_id: str | None = None
    dispute_id: str | None = None
    checkout_session_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "invoice_id": self.invoice_id,
            "charge_id": self.charge_id,
            "payment_intent_id": self.payment_intent_id,
            "customer_id": self.customer_id,
            "subscription_id": self.subscription_id,
            "refund_id": self.refund_id,
            "dispute_id": self.dispute_id,
            "checkout_session_id": self.checkout_session_id,
        }


@dataclass(frozen=True)
class CarriedClick:
    """A click id Stripe itself carries (client_reference_id or metadata)."""

    transaction_id: str
    source: str


@dataclass(frozen=True)
class Classification:
    action: Action
    ids: StripeIds
    reason: str | None = None
    kind_hint: KindHint = "auto"
    money_key: str | None = None
    amount_minor: int = 0
    currency: str = ""
    email: str | None = None
    carried_clicks: tuple[CarriedClick, ...] = ()
    price_ids: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()
    promotion_code: str | None = None
    billing_reason: str | None = None
    occurred_at: int = 0
    needs_invoice_check: bool = False
    # A payment intent may be a Checkout Session's: the session then is the source of
    # truth (it knows the tax; the intent does not).
    needs_checkout_check: bool = False
    # refunds: cumulative refunded and the charge's amount; disputes: amount, status
    amount_refunded_minor: int | None = None
    charge_amount_minor: int | None = None
    dispute_status: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassifySettings:
    click_metadata_key: str = "everflow_transaction_id"
    amounts_include_tax: bool = False
    subscription_update_invoices: Literal["rebill", "ignore"] = "rebill"


def _str(value: Any) -> str | None:
    """An id that may be a string or an expanded object with an ``id``."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) and inner else None
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _metadata_click(obj: Mapping[str, Any], key: str, source: str) -> list[CarriedClick]:
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return [CarriedClick(value.strip(), source)]
    return []


def _ignored(ids: StripeIds, reason: str, **facts: Any) -> Classification:
    return Classification("ignored", ids, reason=reason, **facts)


# ------------------------------------------------------------------ invoices


def _invoice_subscription(invoice: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    parent = invoice.get("parent")
    if isinstance(parent, Mapping) and isinstance(parent.get("subscription_details"), Mapping):
        details = parent["subscription_details"]  # basil and later
        return _str(details.get("subscription")), details
    details = invoice.get("subscription_details")  # before basil
    return _str(invoice.get("subscription")), details if isinstance(details, Mapping) else {}


def _invoice_prices(invoice: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    prices: list[str] = []
    products: list[str] = []
    lines = invoice.get("lines")
    for line in lines.get("data", []) if isinstance(lines, Mapping) else []:
        if not isinstance(line, Mapping):
            continue
        pricing = line.get("pricing")
        if isinstance(pricing, Mapping) and isinstance(pricing.get("price_details"), Mapping):
            price, product = (
                pricing["price_details"].get("price"),
                pricing["price_details"].get("product"),
            )
        else:
            price_obj = line.get("price")
            price = price_obj.get("id") if isinstance(price_obj, Mapping) else None
            product = price_obj.get("product") if isinstance(price_obj, Mapping) else None
        for value, bucket in ((_str(price), prices), (_str(product), products)):
            if value and value not in bucket:
                bucket.append(value)
    return tuple(prices), tuple(products)


def _excluding_tax(invoice: Mapping[str, Any], paid: int) -> int:
    """The tax-free share of what was paid: ``paid x total_excluding_tax / total``.

    In proportion rather than ``paid - tax``, so an invoice partly settled from the
    customer's credit balance (paid < total) is not understated.
    """
    total, excluding = invoice.get("total"), invoice.get("total_excluding_tax")
    if isinstance(total, int) and isinstance(excluding, int) and total > 0:
        share = Decimal(paid) * Decimal(excluding) / Decimal(total)
        return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return paid


def _classify_invoice_paid(
    event: Mapping[str, Any], invoice: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    subscription_id, subscription_details = _invoice_subscription(invoice)
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(invoice.get("id")),
        invoice_id=_str(invoice.get("id")),
        charge_id=_str(invoice.get("charge")),
        payment_intent_id=_str(invoice.get("payment_intent")),
        customer_id=_str(invoice.get("customer")),
        subscription_id=subscription_id,
    )
    paid = _int(invoice.get("amount_paid"))
    if paid <= 0:
        return _ignored(ids, "zero_amount")
    reason = invoice.get("billing_reason")
    kind: KindHint = "auto"
    if reason == "subscription_create":
        kind = "initial"
    elif reason == "subscription_cycle":
        kind = "rebill"
    elif reason == "subscription_update":
        if settings.subscription_update_invoices == "ignore":
            return _ignored(ids, "subscription_update_not_counted")
        kind = "rebill"
    amount = paid if settings.amounts_include_tax else _excluding_tax(invoice, paid)
    if amount <= 0:
        return _ignored(ids, "zero_amount")
    prices, products = _invoice_prices(invoice)
    discount = invoice.get("discount")
    promotion = _str(discount.get("promotion_code")) if isinstance(discount, Mapping) else None
    return Classification(
        "payment",
        ids,
        kind_hint=kind,
        money_key=ids.invoice_id,
        amount_minor=amount,
        currency=str(invoice.get("currency", "")).upper(),
        email=invoice.get("customer_email") or None,
        carried_clicks=tuple(
            _metadata_click(
                subscription_details, settings.click_metadata_key, "subscription_metadata"
            )
        ),
        price_ids=prices,
        product_ids=products,
        promotion_code=promotion,
        billing_reason=reason if isinstance(reason, str) else None,
        occurred_at=_paid_at(invoice, event),
    )


def _paid_at(invoice: Mapping[str, Any], event: Mapping[str, Any]) -> int:
    transitions = invoice.get("status_transitions")
    if isinstance(transitions, Mapping) and isinstance(transitions.get("paid_at"), int):
        return int(transitions["paid_at"])
    return _int(event.get("created"))


# ------------------------------------------------------------------ checkout


def _classify_checkout(
    event: Mapping[str, Any], session: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(session.get("id")),
        invoice_id=_str(session.get("invoice")),
        payment_intent_id=_str(session.get("payment_intent")),
        customer_id=_str(session.get("customer")),
        subscription_id=_str(session.get("subscription")),
        checkout_session_id=_str(session.get("id")),
    )
    clicks: list[CarriedClick] = []
    reference = session.get("client_reference_id")
    if isinstance(reference, str) and reference.strip():
        clicks.append(CarriedClick(reference.strip(), "checkout_client_reference_id"))
    for click in _metadata_click(session, settings.click_metadata_key, "checkout_metadata"):
        if click.transaction_id not in {c.transaction_id for c in clicks}:
            clicks.append(click)
    details = session.get("customer_details")
    email = (details.get("email") if isinstance(details, Mapping) else None) or session.get(
        "customer_email"
    )
    facts: dict[str, Any] = {"email": email or None, "carried_clicks": tuple(clicks)}
    mode = session.get("mode")
    if mode == "setup":
        return _ignored(ids, "setup_mode", **facts)
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        # Async methods (bank debits) pay later: checkout.session.async_payment_succeeded.
        return _ignored(ids, "unpaid_checkout", **facts)
    if mode == "subscription" or ids.invoice_id:
        # The money is an invoice's: invoice.paid counts it; this event carries the click.
        return Classification("click_carrier", ids, reason="counted_by_invoice", **facts)
    total = _int(session.get("amount_total"))
    totals = session.get("total_details")
    tax = _int(totals.get("amount_tax")) if isinstance(totals, Mapping) else 0
    amount = total if settings.amounts_include_tax else max(0, total - tax)
    if total <= 0:
        return Classification("click_carrier", ids, reason="zero_amount", **facts)
    return Classification(
        "payment",
        ids,
        money_key=ids.payment_intent_id or ids.checkout_session_id,
        amount_minor=amount,
        currency=str(session.get("currency", "")).upper(),
        occurred_at=_int(event.get("created")),
        **facts,
    )


# ------------------------------------------------------------------ intents, charges


def _classify_payment_intent(
    event: Mapping[str, Any], intent: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(intent.get("id")),
        invoice_id=_str(intent.get("invoice")),
        payment_intent_id=_str(intent.get("id")),
        charge_id=_str(intent.get("latest_charge")),
        customer_id=_str(intent.get("customer")),
    )
    facts: dict[str, Any] = {
        "email": intent.get("receipt_email") or None,
        "carried_clicks": tuple(
            _metadata_click(intent, settings.click_metadata_key, "payment_intent_metadata")
        ),
    }
    if ids.invoice_id:
        return Classification("click_carrier", ids, reason="counted_by_invoice", **facts)
    received = _int(intent.get("amount_received"))
    if received <= 0:
        return _ignored(ids, "zero_amount", **facts)
    return Classification(
        "payment",
        ids,
        money_key=ids.payment_intent_id,
        amount_minor=received,
        currency=str(intent.get("currency", "")).upper(),
        occurred_at=_int(event.get("created")),
        # Before basil an invoiced intent names its invoice; since basil only the
        # InvoicePayment knows, so the matcher must ask before counting it.
        needs_invoice_check="invoice" not in intent,
        needs_checkout_check=True,
        **facts,
    )


def _classify_charge_succeeded(
    event: Mapping[str, Any], charge: Mapping[str, Any]
) -> Classification:
    ids = _charge_ids(event, charge)
    details = charge.get("billing_details")
    email = charge.get("receipt_email") or (
        details.get("email") if isinstance(details, Mapping) else None
    )
    if ids.invoice_id:
        return _ignored(ids, "counted_by_invoice")
    if ids.payment_intent_id:
        return _ignored(ids, "counted_by_payment_intent")
    if charge.get("captured") is False:
        # An authorization: money only once captured (charge.captured, not used here).
        return _ignored(ids, "uncaptured")
    amount = _int(charge.get("amount_captured")) or _int(charge.get("amount"))
    if amount <= 0 or charge.get("paid") is False:
        return _ignored(ids, "zero_amount")
    return Classification(
        "payment",
        ids,
        money_key=ids.charge_id,
        amount_minor=amount,
        currency=str(charge.get("currency", "")).upper(),
        email=email or None,
        occurred_at=_int(event.get("created")),
    )


def _charge_ids(event: Mapping[str, Any], charge: Mapping[str, Any], **more: Any) -> StripeIds:
    return StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(charge.get("id")),
        charge_id=_str(charge.get("id")),
        invoice_id=_str(charge.get("invoice")),
        payment_intent_id=_str(charge.get("payment_intent")),
        customer_id=_str(charge.get("customer")),
        **more,
    )


# ------------------------------------------------------------------ refunds, disputes


def _classify_charge_refunded(
    event: Mapping[str, Any], charge: Mapping[str, Any]
) -> Classification:
    return Classification(
        "refund",
        _charge_ids(event, charge),
        money_key=_str(charge.get("invoice"))
        or _str(charge.get("payment_intent"))
        or _str(charge.get("id")),
        amount_refunded_minor=_int(charge.get("amount_refunded")),
        charge_amount_minor=_int(charge.get("amount_captured")) or _int(charge.get("amount")),
        currency=str(charge.get("currency", "")).upper(),
        occurred_at=_int(event.get("created")),
    )


def _classify_refund(event: Mapping[str, Any], refund: Mapping[str, Any]) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(refund.get("id")),
        refund_id=_str(refund.get("id")),
        charge_id=_str(refund.get("charge")),
        payment_intent_id=_str(refund.get("payment_intent")),
    )
    # charge.refunded carries the charge's cumulative refunded amount for every refund,
    # which makes it the one source of truth: counting refund.* as well would count
    # each refund twice.
    return _ignored(ids, "counted_by_charge_refunded", amount_minor=_int(refund.get("amount")))


def _classify_dispute(event: Mapping[str, Any], dispute: Mapping[str, Any]) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(dispute.get("id")),
        dispute_id=_str(dispute.get("id")),
        charge_id=_str(dispute.get("charge")),
        payment_intent_id=_str(dispute.get("payment_intent")),
    )
    status = dispute.get("status")
    action: Action = (
        "dispute_opened" if event["type"] == "charge.dispute.created" else "dispute_closed"
    )
    if isinstance(status, str) and status.startswith("warning_"):
        # An inquiry (warning_needs_response, warning_under_review, warning_closed) is
        # not a chargeback: no money moves, nothing to reverse or restore.
        return _ignored(ids, "dispute_inquiry", dispute_status=status)
    return Classification(
        action,
        ids,
        amount_minor=_int(dispute.get("amount")),
        currency=str(dispute.get("currency", "")).upper(),
        dispute_status=status if isinstance(status, str) else None,
        occurred_at=_int(event.get("created")),
    )


# ------------------------------------------------------------------ carriers, links


def _classify_customer(
    event: Mapping[str, Any], customer: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(customer.get("id")),
        customer_id=_str(customer.get("id")),
    )
    clicks = _metadata_click(customer, settings.click_metadata_key, "customer_metadata")
    if not clicks:
        return _ignored(ids, "no_click_id")
    return Classification(
        "click_carrier", ids, email=customer.get("email") or None, carried_clicks=tuple(clicks)
    )


def _classify_subscription(
    event: Mapping[str, Any], subscription: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(subscription.get("id")),
        subscription_id=_str(subscription.get("id")),
        customer_id=_str(subscription.get("customer")),
    )
    clicks = _metadata_click(subscription, settings.click_metadata_key, "subscription_metadata")
    if not clicks:
        return _ignored(ids, "no_click_id")
    return Classification("click_carrier", ids, carried_clicks=tuple(clicks))


def _classify_invoice_payment(
    event: Mapping[str, Any], payment: Mapping[str, Any]
) -> Classification:
    inner = payment.get("payment")
    intent = _str(inner.get("payment_intent")) if isinstance(inner, Mapping) else None
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=str(payment.get("id")),
        invoice_id=_str(payment.get("invoice")),
        payment_intent_id=intent,
        charge_id=_str(inner.get("charge")) if isinstance(inner, Mapping) else None,
    )
    if not (ids.invoice_id and (intent or ids.charge_id)):
        return _ignored(ids, "no_payment_link")
    return Classification("link", ids)


def classify_event(event: Mapping[str, Any], settings: ClassifySettings) -> Classification:
    """Decide what one snapshot Stripe event means. Pure: no I/O, never raises for
    unexpected shapes (missing fields read as absent)."""
    event_type = str(event.get("type"))
    obj = event.get("data", {}).get("object", {})
    if event_type == "invoice.paid":
        return _classify_invoice_paid(event, obj, settings)
    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return _classify_checkout(event, obj, settings)
    if event_type == "payment_intent.succeeded":
        return _classify_payment_intent(event, obj, settings)
    if event_type == "charge.succeeded":
        return _classify_charge_succeeded(event, obj)
    if event_type == "charge.refunded":
        return _classify_charge_refunded(event, obj)
    if event_type in ("refund.created", "refund.updated"):
        return _classify_refund(event, obj)
    if event_type in ("charge.dispute.created", "charge.dispute.closed"):
        return _classify_dispute(event, obj)
    if event_type in ("customer.created", "customer.updated"):
        return _classify_customer(event, obj, settings)
    if event_type == "customer.subscription.created":
        return _classify_subscription(event, obj, settings)
    if event_type == "invoice_payment.paid":
        return _classify_invoice_payment(event, obj)
    ids = StripeIds(
        event_id=str(event.get("id")), event_type=event_type, object_id=str(obj.get("id"))
    )
    return _ignored(ids, "event_type_not_used")
