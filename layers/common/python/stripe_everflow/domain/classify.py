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
  ``refund.*`` events describe the same refunds and are not counted), refunds that
  failed or were canceled (``refund.failed``, ``refund.updated`` and
  ``charge.refund.updated`` with that status: Stripe takes their amount out of the
  charge's ``amount_refunded`` without a new ``charge.refunded``) and disputes are
  forwarded with every id needed to find their conversion.

Pre-2025-03-31 payloads link charge/payment intent → invoice directly
(``invoice`` field present); basil and later do not, so a payment intent's invoice
is learned from ``invoice_payment.paid`` or Stripe's InvoicePayment list
(``needs_invoice_check``).

Never raises, whatever the shape: a genuine event the bridge cannot use is "ignored"
with a reason — ``malformed_event`` (no event id, type or ``data.object``),
``nesting_too_deep`` / ``invalid_unicode`` (what a queue or table cannot carry),
``missing_stripe_id`` / ``invalid_stripe_id`` (an id that cannot be a key),
``malformed_field`` (a field read here of a type Stripe never sends),
``amount_out_of_range``, ``currency_missing`` / ``currency_invalid`` (no conversion or
refund without an ISO currency), ``invalid_click_id`` (a carrier whose only click id
breaks the rule of ``POST /clicks``). Absent (or null) optional fields read as absent;
an absurd time reads as absent (the matcher then uses its own clock).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from stripe_everflow.domain.attribution import read_transaction_id
from stripe_everflow.domain.money import MAX_AMOUNT_MINOR, iso_currency
from stripe_everflow.domain.stripe_events import event_shape_problem, is_stripe_id

Action = Literal[
    "payment",
    "refund",
    "refund_failed",
    "dispute_opened",
    "dispute_closed",
    "click_carrier",
    "link",
    "ignored",
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
    # The promotion code the payment used: its id (``promo_…``), the code customers
    # typed when the payload expanded it, or (basil invoices, which name only their
    # discounts) the discount ids the matcher resolves through Stripe's API.
    promotion_code: str | None = None
    coupon_code: str | None = None
    discount_ids: tuple[str, ...] = ()
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


# Unix seconds up to the end of year 9999: what a calendar (and a report) can show.
MAX_TIMESTAMP = 253_402_300_799
MAX_LABEL_LENGTH = 255


class _UnusableError(Exception):
    """Raised inside this module only: the event is classified "ignored" with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _id(value: Any, *, required: bool = False) -> str | None:
    """A Stripe id, as a string or an expanded object with an ``id``; None (or "")
    reads as absent. Anything else cannot be a key: the event is unusable."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None or value == "":
        if required:
            raise _UnusableError("missing_stripe_id")
        return None
    if not is_stripe_id(value):
        raise _UnusableError("invalid_stripe_id")
    return str(value)


def _label(value: Any) -> str | None:
    """A descriptive value (price, product, promotion code, billing reason, status):
    kept when it is printable text of at most 255 characters, else dropped — it names
    things, it never keys or moves money."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, str) and 0 < len(value) <= MAX_LABEL_LENGTH and value.isprintable():
        return value
    return None


def _amount(value: Any, *, signed: bool = False) -> int:
    """An amount in minor units; absent reads as 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _UnusableError("malformed_field")
    if value > MAX_AMOUNT_MINOR or value < (-MAX_AMOUNT_MINOR if signed else 0):
        raise _UnusableError("amount_out_of_range")
    return value


def _timestamp(value: Any) -> int:
    """Unix seconds, or 0 (absent) for what is not a plausible time."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TIMESTAMP:
        return value
    return 0


def _currency(value: Any) -> str:
    """The ISO currency money needs: without one no amount means anything."""
    if value is None or value == "":
        raise _UnusableError("currency_missing")
    code = iso_currency(value)
    if code is None:
        raise _UnusableError("currency_invalid")
    return code


def _mapping(value: Any) -> Mapping[str, Any]:
    """An object field the bridge reads; absent reads as empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _UnusableError("malformed_field")
    return value


def _email(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class _Carried:
    """The click ids an object carries, and whether one broke the click-id rule."""

    clicks: tuple[CarriedClick, ...] = ()
    refused: bool = False

    def plus(self, value: Any, source: str) -> _Carried:
        if value is None or (isinstance(value, str) and not value.strip()):
            return self
        transaction_id = read_transaction_id(value)
        if transaction_id is None:
            return _Carried(self.clicks, refused=True)
        if transaction_id in {click.transaction_id for click in self.clicks}:
            return self
        return _Carried((*self.clicks, CarriedClick(transaction_id, source)), self.refused)


def _metadata_click(obj: Mapping[str, Any], key: str, source: str) -> _Carried:
    return _Carried().plus(_mapping(obj.get("metadata")).get(key), source)


def _ignored(ids: StripeIds, reason: str, **facts: Any) -> Classification:
    return Classification("ignored", ids, reason=reason, **facts)


# ------------------------------------------------------------------ invoices


def _invoice_subscription(invoice: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    parent = invoice.get("parent")
    if isinstance(parent, Mapping) and isinstance(parent.get("subscription_details"), Mapping):
        details = parent["subscription_details"]  # basil and later
        return _id(details.get("subscription")), details
    details = _mapping(invoice.get("subscription_details"))  # before basil
    return _id(invoice.get("subscription")), details


def _invoice_prices(invoice: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    prices: list[str] = []
    products: list[str] = []
    lines = _mapping(invoice.get("lines")).get("data")
    if lines is None:
        lines = []
    if not isinstance(lines, list):
        raise _UnusableError("malformed_field")
    for line in lines:
        if not isinstance(line, Mapping):
            raise _UnusableError("malformed_field")
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
        for value, bucket in ((_label(price), prices), (_label(product), products)):
            if value and value not in bucket:
                bucket.append(value)
    return tuple(prices), tuple(products)


def _excluding_tax(invoice: Mapping[str, Any], paid: int) -> int:
    """The tax-free share of what was paid: ``paid x total_excluding_tax / total``.

    In proportion rather than ``paid - tax``, so an invoice partly settled from the
    customer's credit balance (paid < total) is not understated.
    """
    total = _amount(invoice.get("total"), signed=True)
    excluding = _amount(invoice.get("total_excluding_tax"), signed=True)
    if total > 0 and invoice.get("total_excluding_tax") is not None:
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
        object_id=_id(invoice.get("id"), required=True) or "",
        invoice_id=_id(invoice.get("id")),
        charge_id=_id(invoice.get("charge")),
        payment_intent_id=_id(invoice.get("payment_intent")),
        customer_id=_id(invoice.get("customer")),
        subscription_id=subscription_id,
    )
    paid = _amount(invoice.get("amount_paid"))
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
    currency = _currency(invoice.get("currency"))
    prices, products = _invoice_prices(invoice)
    carried = _metadata_click(
        subscription_details, settings.click_metadata_key, "subscription_metadata"
    )
    return Classification(
        "payment",
        ids,
        kind_hint=kind,
        money_key=ids.invoice_id,
        amount_minor=amount,
        currency=currency,
        email=_email(invoice.get("customer_email")),
        carried_clicks=carried.clicks,
        price_ids=prices,
        product_ids=products,
        **_promotion(invoice.get("discount"), invoice.get("discounts")),
        billing_reason=_label(reason),
        occurred_at=_paid_at(invoice, event),
    )


def _promotion(*sources: Any) -> dict[str, Any]:
    """The promotion code a payment used, from an object's ``discount`` (before
    2025-03-31) and ``discounts`` (an invoice's discount ids or objects; a Checkout
    Session's ``{coupon, promotion_code}``): the first promotion code named, and the
    code itself when expanded; else the discount ids left to resolve. A discount
    without a promotion code (a coupon applied directly) names none; odd shapes are
    skipped, never fatal."""
    discount_ids: list[str] = []
    for source in sources:
        for discount in source if isinstance(source, list) else [source]:
            if isinstance(discount, str):
                if discount.startswith("di_") and is_stripe_id(discount):
                    discount_ids.append(discount)
                continue
            if not isinstance(discount, Mapping):
                continue
            promotion = discount.get("promotion_code")
            promotion_id = _label(promotion)
            if promotion_id is None or not is_stripe_id(promotion_id):
                continue
            code = _label(promotion.get("code")) if isinstance(promotion, Mapping) else None
            return {"promotion_code": promotion_id, "coupon_code": code}
    return {"discount_ids": tuple(dict.fromkeys(discount_ids))}


def _paid_at(invoice: Mapping[str, Any], event: Mapping[str, Any]) -> int:
    transitions = invoice.get("status_transitions")
    paid_at = _timestamp(transitions.get("paid_at")) if isinstance(transitions, Mapping) else 0
    return paid_at or _timestamp(event.get("created"))


# ------------------------------------------------------------------ checkout


def _classify_checkout(
    event: Mapping[str, Any], session: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(session.get("id"), required=True) or "",
        invoice_id=_id(session.get("invoice")),
        payment_intent_id=_id(session.get("payment_intent")),
        customer_id=_id(session.get("customer")),
        subscription_id=_id(session.get("subscription")),
        checkout_session_id=_id(session.get("id")),
    )
    carried = (
        _Carried()
        .plus(session.get("client_reference_id"), "checkout_client_reference_id")
        .plus(
            _mapping(session.get("metadata")).get(settings.click_metadata_key),
            "checkout_metadata",
        )
    )
    details = session.get("customer_details")
    email = _email(details.get("email") if isinstance(details, Mapping) else None) or _email(
        session.get("customer_email")
    )
    facts: dict[str, Any] = {"email": email, "carried_clicks": carried.clicks}
    mode = session.get("mode")
    if mode == "setup":
        return _ignored(ids, "setup_mode", **facts)
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        # Async methods (bank debits) pay later: checkout.session.async_payment_succeeded.
        return _ignored(ids, "unpaid_checkout", **facts)
    if mode == "subscription" or ids.invoice_id:
        if carried.refused and not carried.clicks:
            return _ignored(ids, "invalid_click_id", **facts)
        # The money is an invoice's: invoice.paid counts it; this event carries the click.
        return Classification("click_carrier", ids, reason="counted_by_invoice", **facts)
    total = _amount(session.get("amount_total"))
    tax = _amount(_mapping(session.get("total_details")).get("amount_tax"))
    amount = total if settings.amounts_include_tax else max(0, total - tax)
    if total <= 0:
        if carried.refused and not carried.clicks:
            return _ignored(ids, "invalid_click_id", **facts)
        return Classification("click_carrier", ids, reason="zero_amount", **facts)
    return Classification(
        "payment",
        ids,
        money_key=ids.payment_intent_id or ids.checkout_session_id,
        amount_minor=amount,
        currency=_currency(session.get("currency")),
        occurred_at=_timestamp(event.get("created")),
        **_promotion(session.get("discounts")),
        **facts,
    )


# ------------------------------------------------------------------ intents, charges


def _classify_payment_intent(
    event: Mapping[str, Any], intent: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(intent.get("id"), required=True) or "",
        invoice_id=_id(intent.get("invoice")),
        payment_intent_id=_id(intent.get("id")),
        charge_id=_id(intent.get("latest_charge")),
        customer_id=_id(intent.get("customer")),
    )
    facts: dict[str, Any] = {
        "email": _email(intent.get("receipt_email")),
        "carried_clicks": _metadata_click(
            intent, settings.click_metadata_key, "payment_intent_metadata"
        ).clicks,
    }
    if ids.invoice_id:
        return Classification("click_carrier", ids, reason="counted_by_invoice", **facts)
    received = _amount(intent.get("amount_received"))
    if received <= 0:
        return _ignored(ids, "zero_amount", **facts)
    return Classification(
        "payment",
        ids,
        money_key=ids.payment_intent_id,
        amount_minor=received,
        currency=_currency(intent.get("currency")),
        occurred_at=_timestamp(event.get("created")),
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
    email = _email(charge.get("receipt_email")) or _email(
        details.get("email") if isinstance(details, Mapping) else None
    )
    if ids.invoice_id:
        return _ignored(ids, "counted_by_invoice")
    if ids.payment_intent_id:
        return _ignored(ids, "counted_by_payment_intent")
    if charge.get("captured") is False:
        # An authorization: money only once captured (charge.captured, not used here).
        return _ignored(ids, "uncaptured")
    amount = _amount(charge.get("amount_captured")) or _amount(charge.get("amount"))
    if amount <= 0 or charge.get("paid") is False:
        return _ignored(ids, "zero_amount")
    return Classification(
        "payment",
        ids,
        money_key=ids.charge_id,
        amount_minor=amount,
        currency=_currency(charge.get("currency")),
        email=email,
        occurred_at=_timestamp(event.get("created")),
    )


def _charge_ids(event: Mapping[str, Any], charge: Mapping[str, Any], **more: Any) -> StripeIds:
    return StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(charge.get("id"), required=True) or "",
        charge_id=_id(charge.get("id")),
        invoice_id=_id(charge.get("invoice")),
        payment_intent_id=_id(charge.get("payment_intent")),
        customer_id=_id(charge.get("customer")),
        **more,
    )


# ------------------------------------------------------------------ refunds, disputes


def _classify_charge_refunded(
    event: Mapping[str, Any], charge: Mapping[str, Any]
) -> Classification:
    ids = _charge_ids(event, charge)
    return Classification(
        "refund",
        ids,
        money_key=ids.invoice_id or ids.payment_intent_id or ids.charge_id,
        amount_refunded_minor=_amount(charge.get("amount_refunded")),
        charge_amount_minor=_amount(charge.get("amount_captured")) or _amount(charge.get("amount")),
        # The refund's amounts are turned into the conversion's currency units.
        currency=_currency(charge.get("currency")),
        occurred_at=_timestamp(event.get("created")),
    )


# A refund in these states gave nothing back: its money returned to the merchant.
REFUND_UNDONE_STATUSES = ("failed", "canceled")


def _classify_refund(event: Mapping[str, Any], refund: Mapping[str, Any]) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(refund.get("id"), required=True) or "",
        refund_id=_id(refund.get("id")),
        charge_id=_id(refund.get("charge")),
        payment_intent_id=_id(refund.get("payment_intent")),
    )
    if _label(refund.get("status")) in REFUND_UNDONE_STATUSES:
        # One job per refund (refund.failed, refund.updated and charge.refund.updated
        # tell the same failure): the poster takes its amount back off the charge's
        # latest refunded amount.
        return Classification(
            "refund_failed",
            ids,
            amount_minor=_amount(refund.get("amount")),
            currency=_currency(refund.get("currency")),
            occurred_at=_timestamp(event.get("created")),
        )
    # charge.refunded carries the charge's cumulative refunded amount for every refund,
    # which makes it the one source of truth: counting refund.* as well would count
    # each refund twice.
    return _ignored(ids, "counted_by_charge_refunded", amount_minor=_amount(refund.get("amount")))


def _classify_dispute(event: Mapping[str, Any], dispute: Mapping[str, Any]) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(dispute.get("id"), required=True) or "",
        dispute_id=_id(dispute.get("id")),
        charge_id=_id(dispute.get("charge")),
        payment_intent_id=_id(dispute.get("payment_intent")),
    )
    status = _label(dispute.get("status"))
    action: Action = (
        "dispute_opened" if event["type"] == "charge.dispute.created" else "dispute_closed"
    )
    if status is not None and status.startswith("warning_"):
        # An inquiry (warning_needs_response, warning_under_review, warning_closed) is
        # not a chargeback: no money moves, nothing to reverse or restore.
        return _ignored(ids, "dispute_inquiry", dispute_status=status)
    # A dispute reverses or restores its conversion whole: its amount is only reported,
    # so a dispute without a usable currency still counts (with no amount).
    return Classification(
        action,
        ids,
        amount_minor=_amount(dispute.get("amount")),
        currency=iso_currency(dispute.get("currency")) or "",
        dispute_status=status,
        occurred_at=_timestamp(event.get("created")),
    )


# ------------------------------------------------------------------ carriers, links


def _carrier(ids: StripeIds, carried: _Carried, **facts: Any) -> Classification:
    if carried.clicks:
        return Classification("click_carrier", ids, carried_clicks=carried.clicks, **facts)
    return _ignored(ids, "invalid_click_id" if carried.refused else "no_click_id")


def _classify_customer(
    event: Mapping[str, Any], customer: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(customer.get("id"), required=True) or "",
        customer_id=_id(customer.get("id")),
    )
    carried = _metadata_click(customer, settings.click_metadata_key, "customer_metadata")
    return _carrier(ids, carried, email=_email(customer.get("email")))


def _classify_subscription(
    event: Mapping[str, Any], subscription: Mapping[str, Any], settings: ClassifySettings
) -> Classification:
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(subscription.get("id"), required=True) or "",
        subscription_id=_id(subscription.get("id")),
        customer_id=_id(subscription.get("customer")),
    )
    carried = _metadata_click(subscription, settings.click_metadata_key, "subscription_metadata")
    return _carrier(ids, carried)


def _classify_invoice_payment(
    event: Mapping[str, Any], payment: Mapping[str, Any]
) -> Classification:
    inner = _mapping(payment.get("payment"))
    intent = _id(inner.get("payment_intent"))
    ids = StripeIds(
        event_id=event["id"],
        event_type=event["type"],
        object_id=_id(payment.get("id"), required=True) or "",
        invoice_id=_id(payment.get("invoice")),
        payment_intent_id=intent,
        charge_id=_id(inner.get("charge")),
    )
    if not (ids.invoice_id and (intent or ids.charge_id)):
        return _ignored(ids, "no_payment_link")
    return Classification("link", ids)


_Classifier = Callable[[Mapping[str, Any], Mapping[str, Any], ClassifySettings], Classification]
_CLASSIFIERS: dict[str, _Classifier] = {
    "invoice.paid": _classify_invoice_paid,
    "checkout.session.completed": _classify_checkout,
    "checkout.session.async_payment_succeeded": _classify_checkout,
    "payment_intent.succeeded": _classify_payment_intent,
    "customer.created": _classify_customer,
    "customer.updated": _classify_customer,
    "customer.subscription.created": _classify_subscription,
}
_CLASSIFIERS_WITHOUT_SETTINGS: dict[
    str, Callable[[Mapping[str, Any], Mapping[str, Any]], Classification]
] = {
    "charge.succeeded": _classify_charge_succeeded,
    "charge.refunded": _classify_charge_refunded,
    "refund.created": _classify_refund,
    "refund.updated": _classify_refund,
    "refund.failed": _classify_refund,
    "charge.refund.updated": _classify_refund,
    "charge.dispute.created": _classify_dispute,
    "charge.dispute.closed": _classify_dispute,
    "invoice_payment.paid": _classify_invoice_payment,
}


def _envelope(event: Any) -> tuple[StripeIds, Mapping[str, Any] | None, str | None]:
    """The event's own ids, its object, and why it cannot be classified (or None)."""
    if not isinstance(event, Mapping):
        return StripeIds("", "", ""), None, "malformed_event"
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    ids = StripeIds(
        event_id=str(event_id) if is_stripe_id(event_id) else "",
        event_type=_label(event_type) or "",
        object_id=(_label(obj.get("id")) or "") if isinstance(obj, Mapping) else "",
    )
    problem = event_shape_problem(event)
    if problem:
        return ids, None, problem
    if not isinstance(event_type, str) or not isinstance(obj, Mapping):
        return ids, None, "malformed_event"
    if event_id is None or event_id == "":
        return ids, None, "missing_stripe_id"
    if not is_stripe_id(event_id):
        return ids, None, "invalid_stripe_id"
    return ids, obj, None


def classify_event(event: Mapping[str, Any], settings: ClassifySettings) -> Classification:
    """Decide what one snapshot Stripe event means. Pure: no I/O, and never raises,
    whatever the shape: what the bridge cannot use is "ignored" with a reason (see
    the module docstring)."""
    ids, obj, problem = _envelope(event)
    if problem or obj is None:
        return _ignored(ids, problem or "malformed_event")
    event_type = ids.event_type
    try:
        if event_type in _CLASSIFIERS:
            result = _CLASSIFIERS[event_type](event, obj, settings)
        elif event_type in _CLASSIFIERS_WITHOUT_SETTINGS:
            result = _CLASSIFIERS_WITHOUT_SETTINGS[event_type](event, obj)
        else:
            return _ignored(ids, "event_type_not_used")
    except _UnusableError as unusable:
        return _ignored(ids, unusable.reason)
    return result
