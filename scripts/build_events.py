#!/usr/bin/env python3
"""Build the sample Stripe webhook events in ``events/`` from Stripe's own fixtures.

Why generate instead of hand-writing JSON: hand-written payloads drift towards the
fields a handler happens to read, so a handler tested on them breaks on the first real
delivery. Every object here starts as a deep copy of the example Stripe publishes in
its OpenAPI repository (``openapi/fixtures3.json`` of github.com/stripe/openapi, MIT),
keeps that example's field set, and only gets the values one consistent scenario needs
(a customer subscribes through Checkout, the merchant tags her Customer with a click id,
she buys once more, renews, disputes the first charge - the merchant wins - and gets part
of the renewal refunded). Setting a field the fixture does not have raises, so a fixture
update that renames a field fails here instead of silently producing a payload Stripe
never sends.

Each event is written twice, because the bridge must read both shapes:

* ``basil`` - labelled API version ``2025-03-31.basil``: the fixture's own shape (Stripe's
  latest when the fixture was taken), where Invoice and Charge no longer link directly;
* ``legacy`` - API version ``2024-06-20``: Invoice, Charge and PaymentIntent carry their
  direct links (``invoice.charge``, ``invoice.payment_intent``, ``invoice.subscription``,
  ``charge.invoice``, ``payment_intent.invoice``) and line items carry ``price``/``plan``.
  The fields that differ are the ``*_BASIL_ONLY`` tuples and what ``_legacy_invoice`` /
  ``_legacy_line`` add (and the ``invoice`` of a legacy PaymentIntent).

Output is deterministic (no clock, no randomness): ``--check`` fails when the files in
``events/`` are not what this script would write.

    python scripts/build_events.py [--fixtures PATH] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stripe

Json = dict[str, Any]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = REPO_ROOT.parent / "shared" / "data" / "stripe-openapi-fixtures3.json"
DEFAULT_OUT = REPO_ROOT / "events"

# --- The scenario: one customer, one monthly subscription, one one-off purchase. ---

ACCOUNT_ID = "acct_1QbridgeDemo01"
ACCOUNT_NAME = "Bridge Demo Inc."
CUSTOMER_ID = "cus_QbridgeJenny01"
CUSTOMER_EMAIL = "jenny.rosen@example.com"
CUSTOMER_NAME = "Jenny Rosen"
CUSTOMER_POSTAL_CODE = "94107"
SUBSCRIPTION_ID = "sub_1QbridgeSub001"
SUBSCRIPTION_ITEM_ID = "si_QbridgeItem001"
PRICE_ID = "price_1QbridgeMonthly"
PRODUCT_ID = "prod_QbridgePro"
PRODUCT_NAME = "Bridge Pro"
PRICE_CREATED_AT = 1766998800  # 2025-12-29T09:00:00Z
CURRENCY = "usd"
MONTHLY_AMOUNT = 4900  # minor units; tax 0
PAYMENT_METHOD_ID = "pm_1QbridgeVisa4242"
PAYMENT_METHOD_CONFIGURATION_ID = "pmc_1QbridgeDefault01"
CARD_FINGERPRINT = "Qbr1dgeF1ngerpr1"
CLICK_ID = "ef_tx_9f1c2a7b"  # Everflow transaction id carried by the Checkout Session
CLICK_METADATA_KEY = "everflow_transaction_id"
# A second click id, which the merchant's server writes into the Customer's metadata after
# the sign-up (`customer.updated`): a Stripe-carried click that is not Checkout's.
CUSTOMER_CLICK_ID = "ef_tx_meta_5d2e"
CUSTOMER_INVOICE_PREFIX = "QBRIDGE"
SITE_URL = "https://bridge-demo.example.com"

CHECKOUT_SUBSCRIPTION_ID = "cs_test_a1QbridgeSubscribe01"
CHECKOUT_ONE_OFF_ID = "cs_test_a1QbridgeOneOffJpy01"
ONE_OFF_PAYMENT_INTENT_ID = "pi_3QbridgeOneOff01"
ONE_OFF_CURRENCY = "jpy"  # zero-decimal: 5000 means 5000 yen
ONE_OFF_AMOUNT = 5000
ONE_OFF_CHARGE_ID = "ch_3QbridgeOneOff01"
ONE_OFF_PAYMENT_METHOD_ID = "pm_1QbridgeOneOffCard01"  # no customer: a single-use method

REFUND_ID = "re_3QbridgeRenew01"
REFUND_BALANCE_TRANSACTION_ID = "txn_3QbridgeRefund01"
REFUND_AMOUNT = 1500

DISPUTE_ID = "dp_1QbridgeDispute01"
DISPUTE_FEE = 1500
DISPUTE_WITHDRAWAL_ID = "txn_1QbridgeDisputeWd01"
DISPUTE_REINSTATEMENT_ID = "txn_1QbridgeDisputeRi01"

# --- Timeline (UTC). Deliveries are signed at 2026-01-01T00:00:00Z, after the sign-up. ---

CHECKOUT_OPENED_AT = 1767225480  # 2025-12-31T23:58:00Z
SIGNUP_AT = 1767225590  # 2025-12-31T23:59:50Z: subscription and first invoice
CUSTOMER_CREATED_AT = SIGNUP_AT - 2  # Checkout creates the Customer just before subscribing
CUSTOMER_TAGGED_AT = 1767225660  # 2026-01-01T00:01:00Z: the merchant writes the click id
RENEWAL_AT = 1769903990  # 2026-01-31T23:59:50Z: one month later
NEXT_RENEWAL_AT = 1772323190  # 2026-02-28T23:59:50Z (anchor day 31 clamps to Feb 28)
ONE_OFF_OPENED_AT = 1768471080  # 2026-01-15T09:58:00Z
ONE_OFF_CONFIRMED_AT = 1768471193  # Checkout creates the PaymentIntent on confirmation
ONE_OFF_PAID_AT = 1768471195
DISPUTE_OPENED_AT = 1768899600  # 2026-01-20T09:00:00Z
DISPUTE_EVIDENCE_DUE_BY = 1769817599  # 2026-01-30T23:59:59Z
DISPUTE_CLOSED_AT = 1772712000  # 2026-03-05T12:00:00Z
REFUNDED_AT = 1770735600  # 2026-02-10T15:00:00Z
SIGNED_AT = 1767225600  # 2026-01-01T00:00:00Z: the fixed Stripe-Signature timestamp

# `request` of each event: (request id, idempotency key). Automatic actions (renewals,
# disputes) have neither; Checkout confirmations carry only a key; a Dashboard refund both.
CHECKOUT_REQUEST = (None, "8c3f1e2a-5b7d-4c9e-a1f0-3d6b2e9c7a15")
ONE_OFF_REQUEST = (None, "2e7b9d41-6a3c-4f58-b0e2-9d1c7a4f3b60")
REFUND_REQUEST = ("req_QbridgeRefund01", "a91c4f7e-3d2b-4e6a-8c5f-0b7d9e1a2c34")
# The merchant's server tags the Customer through the API (stripe-python sends a key).
CUSTOMER_TAG_REQUEST = ("req_QbridgeCustomerTag01", "5d2e7c1a-9b3f-4e8d-a6c2-1f0b8e7d4a93")
AUTOMATIC_REQUEST = (None, None)

# --- API Gateway (HTTP API, payload format 2.0) deliveries for `sam local invoke`. ---

WEBHOOK_SECRET = "whsec_local_bridge_demo_secret"
STRIPE_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
STRIPE_SOURCE_IP = "3.18.12.63"  # one of Stripe's published webhook source addresses
AWS_ACCOUNT_ID = "123456789012"
API_ID = "bridgeapi01"
API_DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
ACCOUNT_ROUTE_SLUG = "eu-store"

# --- The two shapes, and the fields that differ between them. ---


@dataclass(frozen=True)
class Shape:
    name: str
    api_version: str

    @property
    def legacy(self) -> bool:
        return self.name == "legacy"


BASIL = Shape("basil", "2025-03-31.basil")
LEGACY = Shape("legacy", "2024-06-20")
SHAPES = (BASIL, LEGACY)

# The fixture's Invoice still lists a top-level `subscription`; basil removed it (it is
# neither in stripe-python's Invoice nor in real basil deliveries), so basil drops it.
INVOICE_FIXTURE_STALE = ("subscription",)
INVOICE_BASIL_ONLY = ("parent", "total_taxes", "total_pretax_credit_amounts", "amount_overpaid")
AUTOMATIC_TAX_BASIL_ONLY = ("disabled_reason", "provider")
LINE_BASIL_ONLY = ("parent", "pricing", "taxes", "pretax_credit_amounts")


@dataclass(frozen=True)
class InvoiceCase:
    """One subscription invoice and the payment that settled it."""

    invoice_id: str
    line_id: str
    number: str
    billing_reason: str
    payment_intent_id: str
    charge_id: str
    charge_description: str
    balance_transaction_id: str
    invoice_payment_id: str
    created: int
    finalized_at: int
    paid_at: int
    period_start: int  # Stripe's invoice period: the one that just ended
    period_end: int
    service_start: int  # the line's period: what is being paid for
    service_end: int
    attempt_count: int
    webhooks_delivered_at: int | None


FIRST = InvoiceCase(
    invoice_id="in_1QbridgeFirst01",
    line_id="il_1QbridgeFirst01",
    number="QBRIDGE-0001",
    billing_reason="subscription_create",
    payment_intent_id="pi_3QbridgeFirst01",
    charge_id="ch_3QbridgeFirst01",
    charge_description="Subscription creation",
    balance_transaction_id="txn_3QbridgeFirst01",
    invoice_payment_id="inpay_1QbridgeFirst01",
    created=SIGNUP_AT,
    finalized_at=SIGNUP_AT,
    paid_at=SIGNUP_AT + 2,
    period_start=SIGNUP_AT,
    period_end=SIGNUP_AT,
    service_start=SIGNUP_AT,
    service_end=RENEWAL_AT,
    attempt_count=0,  # paid by the Checkout confirmation, not by an invoice attempt
    webhooks_delivered_at=None,
)

RENEWAL = InvoiceCase(
    invoice_id="in_1QbridgeRenew01",
    line_id="il_1QbridgeRenew01",
    number="QBRIDGE-0002",
    billing_reason="subscription_cycle",
    payment_intent_id="pi_3QbridgeRenew01",
    charge_id="ch_3QbridgeRenew01",
    charge_description="Subscription update",
    balance_transaction_id="txn_3QbridgeRenew01",
    invoice_payment_id="inpay_1QbridgeRenew01",
    created=RENEWAL_AT,
    finalized_at=RENEWAL_AT + 3600,  # Stripe finalizes renewals about an hour later
    paid_at=RENEWAL_AT + 3602,
    period_start=SIGNUP_AT,
    period_end=RENEWAL_AT,
    service_start=RENEWAL_AT,
    service_end=NEXT_RENEWAL_AT,
    attempt_count=1,
    webhooks_delivered_at=RENEWAL_AT + 2,
)


# --- Small helpers. ---


def fixture(fixtures: Json, name: str) -> Json:
    """A private deep copy of one fixture object."""
    return copy.deepcopy(fixtures["resources"][name])


def assign(obj: Json, **values: Any) -> Json:
    """Set fields the fixture object already has; a field it lacks is a bug, so raise."""
    missing = sorted(set(values) - set(obj))
    if missing:
        raise KeyError(f"fixture {obj.get('object', '?')} has no field(s) {missing}")
    obj.update(values)
    return obj


def drop(obj: Json, names: Iterable[str]) -> Json:
    for name in names:
        del obj[name]
    return obj


def list_object(url: str, data: list[Json]) -> Json:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


def stripe_order(value: Any) -> Any:
    """Order keys as Stripe serializes them: `id`, `object`, then alphabetical."""
    if isinstance(value, list):
        return [stripe_order(item) for item in value]
    if not isinstance(value, dict):
        return value
    head = [key for key in ("id", "object") if key in value]
    tail = sorted(key for key in value if key not in head)
    return {key: stripe_order(value[key]) for key in head + tail}


def empty_address(**values: str) -> Json:
    address: Json = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))
    return assign(address, **values)


def customer_address() -> Json:
    return empty_address(country="US", postal_code=CUSTOMER_POSTAL_CODE)


def event_id(name: str, shape: Shape) -> str:
    """`invoice.paid.first` + basil -> `evt_1QbridgeInvoicePaidFirstBasil`."""
    words = name.replace("_", ".").split(".")
    return "evt_1Qbridge" + "".join(word.capitalize() for word in words) + shape.name.capitalize()


# --- Prices and invoices. ---


def legacy_price(fixtures: Json) -> Json:
    """The Price embedded in a legacy line item (basil lines name it in `pricing`)."""
    obj = fixture(fixtures, "price")
    recurring = assign(
        obj["recurring"],
        interval="month",
        interval_count=1,
        meter=None,
        trial_period_days=None,
        usage_type="licensed",
    )
    recurring["aggregate_usage"] = None  # removed in basil with legacy metered billing
    return assign(
        obj,
        active=True,
        created=PRICE_CREATED_AT,
        currency=CURRENCY,
        custom_unit_amount=None,
        id=PRICE_ID,
        lookup_key=None,
        metadata={},
        nickname=None,
        product=PRODUCT_ID,
        tax_behavior="unspecified",
        tiers_mode=None,
        transform_quantity=None,
        unit_amount=MONTHLY_AMOUNT,
        unit_amount_decimal=str(MONTHLY_AMOUNT),
    )


def legacy_plan(fixtures: Json) -> Json:
    """The Plan twin of the Price that legacy line items still carry."""
    obj = fixture(fixtures, "plan")
    obj["aggregate_usage"] = None  # removed in basil with legacy metered billing
    return assign(
        obj,
        active=True,
        amount=MONTHLY_AMOUNT,
        amount_decimal=str(MONTHLY_AMOUNT),
        created=PRICE_CREATED_AT,
        currency=CURRENCY,
        id=PRICE_ID,
        metadata={},
        meter=None,
        nickname=None,
        product=PRODUCT_ID,
        transform_usage=None,
        trial_period_days=None,
    )


def line_description() -> str:
    """Stripe's wording, multiplication sign (U+00D7) included: a non-ASCII byte in the body."""
    dollars, cents = divmod(MONTHLY_AMOUNT, 100)
    return f"1 \u00d7 {PRODUCT_NAME} (at ${dollars}.{cents:02d} / month)"


def invoice_line(fixtures: Json, shape: Shape, case: InvoiceCase) -> Json:
    line = assign(
        fixture(fixtures, "line_item"),
        amount=MONTHLY_AMOUNT,
        currency=CURRENCY,
        description=line_description(),
        discount_amounts=[],
        discountable=True,
        discounts=[],
        id=case.line_id,
        invoice=case.invoice_id,
        metadata={},
        period={"end": case.service_end, "start": case.service_start},
        pretax_credit_amounts=[],
        quantity=1,
        quantity_decimal="1",
        subscription=SUBSCRIPTION_ID,
        subtotal=MONTHLY_AMOUNT,
        taxes=[],
    )
    if shape.legacy:
        return _legacy_line(fixtures, line)
    line["parent"] = {
        "invoice_item_details": None,
        "subscription_item_details": {
            "invoice_item": None,
            "proration": False,
            "proration_details": {"credited_items": None},
            "subscription": SUBSCRIPTION_ID,
            "subscription_item": SUBSCRIPTION_ITEM_ID,
        },
        "type": "subscription_item_details",
    }
    # The fixture names `price_details` as the pricing type but leaves out the object itself.
    line["pricing"] = assign(line["pricing"], unit_amount_decimal=str(MONTHLY_AMOUNT))
    line["pricing"]["price_details"] = {"price": PRICE_ID, "product": PRODUCT_ID}
    return line


def _legacy_line(fixtures: Json, line: Json) -> Json:
    drop(line, LINE_BASIL_ONLY)
    line.update(
        amount_excluding_tax=MONTHLY_AMOUNT,
        plan=legacy_plan(fixtures),
        price=legacy_price(fixtures),
        proration=False,
        proration_details={"credited_items": None},
        subscription_item=SUBSCRIPTION_ITEM_ID,
        tax_amounts=[],
        tax_rates=[],
        type="subscription",
        unit_amount_excluding_tax=str(MONTHLY_AMOUNT),
    )
    return line


def invoice(fixtures: Json, shape: Shape, case: InvoiceCase) -> Json:
    obj = fixture(fixtures, "invoice")
    assign(
        obj["automatic_tax"],
        disabled_reason=None,
        enabled=False,
        liability=None,
        provider=None,
        status=None,
    )
    assign(
        obj["payment_settings"],
        default_mandate=None,
        payment_method_options=dict.fromkeys(obj["payment_settings"]["payment_method_options"])
        | {"card": {"request_three_d_secure": "automatic"}},
        payment_method_types=None,
    )
    hosted_token = f"test_{case.invoice_id.removeprefix('in_')}Hosted"
    assign(
        obj,
        account_country="US",
        account_name=ACCOUNT_NAME,
        amount_due=MONTHLY_AMOUNT,
        amount_overpaid=0,
        amount_paid=MONTHLY_AMOUNT,
        amount_remaining=0,
        attempt_count=case.attempt_count,
        attempted=True,
        billing_reason=case.billing_reason,
        created=case.created,
        currency=CURRENCY,
        customer=CUSTOMER_ID,
        customer_address=customer_address(),
        customer_email=CUSTOMER_EMAIL,
        customer_name=CUSTOMER_NAME,
        customer_shipping=None,
        due_date=None,
        effective_at=case.finalized_at,
        ending_balance=0,
        from_invoice=None,
        hosted_invoice_url=f"https://invoice.stripe.com/i/{ACCOUNT_ID}/{hosted_token}?s=ap",
        id=case.invoice_id,
        invoice_pdf=f"https://pay.stripe.com/invoice/{ACCOUNT_ID}/{hosted_token}/pdf?s=ap",
        last_finalization_error=None,
        lines=list_object(
            f"/v1/invoices/{case.invoice_id}/lines", [invoice_line(fixtures, shape, case)]
        ),
        next_payment_attempt=None,
        number=case.number,
        period_end=case.period_end,
        period_start=case.period_start,
        rendering=None,
        shipping_cost=None,
        shipping_details=None,
        status="paid",
        status_transitions={
            "finalized_at": case.finalized_at,
            "marked_uncollectible_at": None,
            "paid_at": case.paid_at,
            "voided_at": None,
        },
        subscription=SUBSCRIPTION_ID,
        subtotal=MONTHLY_AMOUNT,
        subtotal_excluding_tax=MONTHLY_AMOUNT,
        total=MONTHLY_AMOUNT,
        total_excluding_tax=MONTHLY_AMOUNT,
        total_pretax_credit_amounts=[],
        total_taxes=[],
        webhooks_delivered_at=case.webhooks_delivered_at,
    )
    if shape.legacy:
        return _legacy_invoice(obj, case)
    drop(obj, INVOICE_FIXTURE_STALE)
    obj["parent"] = {
        "quote_details": None,
        "subscription_details": {"metadata": {}, "subscription": SUBSCRIPTION_ID},
        "type": "subscription_details",
    }
    return obj


def _legacy_invoice(obj: Json, case: InvoiceCase) -> Json:
    drop(obj, INVOICE_BASIL_ONLY)
    drop(obj["automatic_tax"], AUTOMATIC_TAX_BASIL_ONLY)
    obj.update(
        application_fee_amount=None,
        charge=case.charge_id,
        discount=None,
        paid=True,
        paid_out_of_band=False,
        payment_intent=case.payment_intent_id,
        quote=None,
        subscription_details={"metadata": {}},
        tax=None,
        total_tax_amounts=[],
        transfer_data=None,
    )
    return obj


def invoice_payment(fixtures: Json, case: InvoiceCase) -> Json:
    """The basil link between an invoice and the PaymentIntent that paid it."""
    obj = fixture(fixtures, "invoice_payment")
    # The fixture shows only `payment.type`; the PaymentIntent id sits beside it.
    obj["payment"] = {"payment_intent": case.payment_intent_id, "type": "payment_intent"}
    return assign(
        obj,
        amount_paid=MONTHLY_AMOUNT,
        amount_requested=MONTHLY_AMOUNT,
        created=case.finalized_at,
        currency=CURRENCY,
        id=case.invoice_payment_id,
        invoice=case.invoice_id,
        is_default=True,
        livemode=False,
        status="paid",
        status_transitions={"canceled_at": None, "paid_at": case.paid_at},
    )


# --- Charges, refunds, disputes. ---


def card_details(card: Json, amount: int) -> Json:
    return assign(
        card,
        amount_authorized=amount,
        authorization_code="482913",
        brand="visa",
        checks={
            "address_line1_check": None,
            "address_postal_code_check": "pass",
            "cvc_check": "pass",
        },
        country="US",
        exp_month=12,
        exp_year=2030,
        fingerprint=CARD_FINGERPRINT,
        installments=None,
        last4="4242",
        mandate=None,
        network_transaction_id="583629147204157",
        overcapture={"maximum_amount_capturable": amount, "status": "unavailable"},
        regulated_status="unregulated",
        three_d_secure=None,
        wallet=None,
    )


def charge(fixtures: Json, shape: Shape, case: InvoiceCase) -> Json:
    obj = fixture(fixtures, "charge")
    assign(
        obj["billing_details"],
        address=customer_address(),
        email=CUSTOMER_EMAIL,
        name=CUSTOMER_NAME,
    )
    assign(
        obj["outcome"],
        network_status="approved_by_network",
        seller_message="Payment complete.",
        type="authorized",
    )
    card_details(obj["payment_method_details"]["card"], MONTHLY_AMOUNT)
    assign(
        obj,
        amount=MONTHLY_AMOUNT,
        amount_captured=MONTHLY_AMOUNT,
        amount_refunded=0,
        balance_transaction=case.balance_transaction_id,
        calculated_statement_descriptor="BRIDGE DEMO",
        captured=True,
        created=case.paid_at - 1,
        currency=CURRENCY,
        customer=CUSTOMER_ID,
        description=case.charge_description,
        id=case.charge_id,
        payment_intent=case.payment_intent_id,
        payment_method=PAYMENT_METHOD_ID,
        receipt_email=CUSTOMER_EMAIL,
        receipt_url=f"https://pay.stripe.com/receipts/invoices/{case.charge_id}Receipt?s=ap",
        refunded=False,
        shipping=None,
        source=None,
        transfer_data=None,
    )
    # Not expanded since API 2022-11-15; kept as the fixture shows it, pointing at this charge.
    assign(obj["refunds"], url=f"/v1/charges/{case.charge_id}/refunds")
    if shape.legacy:
        obj["invoice"] = case.invoice_id
    return obj


def refund(fixtures: Json) -> Json:
    obj = fixture(fixtures, "refund")
    assign(obj["destination_details"]["card"], type="refund")
    return assign(
        obj,
        amount=REFUND_AMOUNT,
        balance_transaction=REFUND_BALANCE_TRANSACTION_ID,
        charge=RENEWAL.charge_id,
        created=REFUNDED_AT,
        currency=CURRENCY,
        customer=CUSTOMER_ID,
        id=REFUND_ID,
        payment_intent=RENEWAL.payment_intent_id,
        payment_method=PAYMENT_METHOD_ID,
        reason="requested_by_customer",
        status="succeeded",
    )


def balance_transaction(
    fixtures: Json, *, txn_id: str, amount: int, fee: int, created: int, reversal: bool
) -> Json:
    obj = fixture(fixtures, "balance_transaction")
    kind = "reversal" if reversal else "withdrawal"
    fee_details = [
        {
            "amount": fee,
            "application": None,
            "currency": CURRENCY,
            "description": "Dispute fee",
            "type": "stripe_fee",
        }
    ]
    return assign(
        obj,
        amount=amount,
        available_on=created,
        created=created,
        currency=CURRENCY,
        description=f"Chargeback {kind} for {FIRST.charge_id}",
        fee=fee,
        fee_details=fee_details if fee else [],
        id=txn_id,
        net=amount - fee,
        reporting_category="dispute_reversal" if reversal else "dispute",
        source=DISPUTE_ID,
        type="adjustment",
    )


def dispute(fixtures: Json, *, won: bool) -> Json:
    obj = fixture(fixtures, "dispute")
    transactions = [
        balance_transaction(
            fixtures,
            txn_id=DISPUTE_WITHDRAWAL_ID,
            amount=-MONTHLY_AMOUNT,
            fee=DISPUTE_FEE,
            created=DISPUTE_OPENED_AT,
            reversal=False,
        )
    ]
    if won:
        transactions.append(
            balance_transaction(
                fixtures,
                txn_id=DISPUTE_REINSTATEMENT_ID,
                amount=MONTHLY_AMOUNT,
                fee=0,
                created=DISPUTE_CLOSED_AT,
                reversal=True,
            )
        )
        assign(
            obj["evidence"],
            customer_email_address=CUSTOMER_EMAIL,
            customer_name=CUSTOMER_NAME,
            customer_purchase_ip="203.0.113.7",
            product_description=f"{PRODUCT_NAME} monthly subscription, used since sign-up.",
            service_date="2026-01-01",
        )
    assign(
        obj["evidence_details"],
        due_by=DISPUTE_EVIDENCE_DUE_BY,
        has_evidence=won,
        submission_count=1 if won else 0,
    )
    assign(
        obj["payment_method_details"]["card"],
        case_type="chargeback",
        network_reason_code="10.4",  # Visa: other fraud, card-absent environment
    )
    return assign(
        obj,
        amount=MONTHLY_AMOUNT,
        balance_transactions=transactions,
        charge=FIRST.charge_id,
        created=DISPUTE_OPENED_AT,
        currency=CURRENCY,
        id=DISPUTE_ID,
        is_charge_refundable=False,
        payment_intent=FIRST.payment_intent_id,
        reason="fraudulent",
        status="won" if won else "needs_response",
    )


# --- PaymentIntents and Customers. ---


def one_off_payment_intent(fixtures: Json, shape: Shape) -> Json:
    """The PaymentIntent behind the one-off Checkout: no customer, no invoice, no metadata."""
    obj = fixture(fixtures, "payment_intent")
    secret = hashlib.sha256(ONE_OFF_PAYMENT_INTENT_ID.encode()).hexdigest()[:25]
    assign(
        obj,
        amount=ONE_OFF_AMOUNT,
        amount_capturable=0,
        amount_received=ONE_OFF_AMOUNT,
        automatic_payment_methods=None,  # Checkout picks the methods itself
        canceled_at=None,
        cancellation_reason=None,
        capture_method="automatic",
        client_secret=f"{ONE_OFF_PAYMENT_INTENT_ID}_secret_{secret}",
        confirmation_method="automatic",
        created=ONE_OFF_CONFIRMED_AT,
        currency=ONE_OFF_CURRENCY,
        customer=None,
        customer_account=None,
        description=None,
        excluded_payment_method_types=None,
        id=ONE_OFF_PAYMENT_INTENT_ID,
        last_payment_error=None,
        latest_charge=ONE_OFF_CHARGE_ID,
        livemode=False,
        managed_payments={"enabled": False},
        metadata={},
        next_action=None,
        on_behalf_of=None,
        payment_method=ONE_OFF_PAYMENT_METHOD_ID,
        payment_method_configuration_details={
            "id": PAYMENT_METHOD_CONFIGURATION_ID,
            "parent": None,
        },
        payment_method_options={
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        payment_method_types=["card"],
        processing=None,
        receipt_email=CUSTOMER_EMAIL,
        review=None,
        setup_future_usage=None,
        shipping=None,
        source=None,
        statement_descriptor=None,
        statement_descriptor_suffix=None,
        status="succeeded",
        transfer_data=None,
        transfer_group=None,
    )
    if shape.legacy:
        obj["invoice"] = None  # a one-off payment; basil removed the field altogether
    return obj


def tagged_customer(fixtures: Json) -> Json:
    """The Customer once the merchant's server has written the click id into its metadata."""
    obj = fixture(fixtures, "customer")
    assign(obj["invoice_settings"], default_payment_method=None)
    return assign(
        obj,
        address=customer_address(),
        balance=0,
        created=CUSTOMER_CREATED_AT,
        currency=CURRENCY,
        default_source=None,
        delinquent=False,
        description=None,
        discount=None,
        email=CUSTOMER_EMAIL,
        id=CUSTOMER_ID,
        invoice_prefix=CUSTOMER_INVOICE_PREFIX,
        livemode=False,
        metadata={CLICK_METADATA_KEY: CUSTOMER_CLICK_ID},
        name=CUSTOMER_NAME,
        next_invoice_sequence=2,  # QBRIDGE-0001 is issued, the renewal is not yet
        phone=None,
        preferred_locales=[],
        shipping=None,
        tax_exempt="none",
        test_clock=None,
    )


# --- Checkout Sessions. ---


def checkout_session(fixtures: Json) -> Json:
    """The fields both Checkout Sessions share: a completed, hosted, card-only session."""
    obj = fixture(fixtures, "checkout.session")
    assign(obj["automatic_tax"], liability=None, provider=None, status=None)
    assign(obj["collected_information"], shipping_details=None)
    assign(
        obj["customer_details"],
        address=customer_address(),
        email=CUSTOMER_EMAIL,
        name=CUSTOMER_NAME,
        tax_ids=[],
    )
    assign(obj["saved_payment_method_options"], allow_redisplay_filters=["always"])
    return assign(
        obj,
        adaptive_pricing=None,
        after_expiration=None,
        cancel_url=f"{SITE_URL}/pricing",
        consent=None,
        consent_collection=None,
        currency_conversion=None,
        custom_text=dict.fromkeys(obj["custom_text"]),
        discounts=[],
        managed_payments={"enabled": False},
        payment_method_configuration_details={
            "id": PAYMENT_METHOD_CONFIGURATION_ID,
            "parent": None,
        },
        payment_status="paid",
        permissions=None,
        shipping_address_collection=None,
        shipping_cost=None,
        status="complete",
        success_url=f"{SITE_URL}/welcome?session_id={{CHECKOUT_SESSION_ID}}",
        ui_mode="hosted",
        url=None,  # Stripe clears the URL once the session is complete
        wallet_options=None,
    )


def subscription_checkout_session(fixtures: Json) -> Json:
    return assign(
        checkout_session(fixtures),
        amount_subtotal=MONTHLY_AMOUNT,
        amount_total=MONTHLY_AMOUNT,
        client_reference_id=CLICK_ID,
        created=CHECKOUT_OPENED_AT,
        currency=CURRENCY,
        customer=CUSTOMER_ID,
        expires_at=CHECKOUT_OPENED_AT + 86400,
        id=CHECKOUT_SUBSCRIPTION_ID,
        invoice=FIRST.invoice_id,
        invoice_creation=None,  # subscription mode always invoices
        metadata={CLICK_METADATA_KEY: CLICK_ID},
        mode="subscription",
        payment_intent=None,
        payment_method_collection="always",
        subscription=SUBSCRIPTION_ID,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
    )


def one_off_checkout_session(fixtures: Json) -> Json:
    obj = checkout_session(fixtures)
    invoice_data = obj["invoice_creation"]["invoice_data"]
    assign(invoice_data, issuer=None, metadata={}, rendering_options=None)
    return assign(
        obj,
        amount_subtotal=ONE_OFF_AMOUNT,
        amount_total=ONE_OFF_AMOUNT,
        client_reference_id=None,
        created=ONE_OFF_OPENED_AT,
        currency=ONE_OFF_CURRENCY,
        customer=None,
        customer_creation="if_required",
        expires_at=ONE_OFF_OPENED_AT + 86400,
        id=CHECKOUT_ONE_OFF_ID,
        invoice=None,
        invoice_creation={"enabled": False, "invoice_data": invoice_data},
        metadata={},
        mode="payment",
        payment_intent=ONE_OFF_PAYMENT_INTENT_ID,
        subscription=None,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
    )


# --- Events. ---


Request = tuple[str | None, str | None]


@dataclass(frozen=True)
class EventSpec:
    """One sample event: its file stem, Stripe type, time, object and originating request."""

    name: str
    event_type: str
    created: int
    obj: Json
    request: Request
    previous_attributes: Json | None = None


def envelope(fixtures: Json, shape: Shape, spec: EventSpec) -> Json:
    """Wrap an object in the Event fixture, the way a webhook endpoint receives it."""
    event = fixture(fixtures, "event")
    data: Json = {"object": spec.obj}
    if spec.previous_attributes is not None:
        data["previous_attributes"] = spec.previous_attributes
    request_id, idempotency_key = spec.request
    assign(
        event,
        api_version=shape.api_version,
        created=spec.created,
        data=data,
        id=event_id(spec.name, shape),
        livemode=False,
        pending_webhooks=1,
        request={"id": request_id, "idempotency_key": idempotency_key},
        type=spec.event_type,
    )
    ordered: Json = stripe_order(event)
    return ordered


def event_specs(fixtures: Json, shape: Shape) -> list[EventSpec]:
    """The scenario's events of one shape, in the order Stripe would send them."""
    refunded = assign(charge(fixtures, shape, RENEWAL), amount_refunded=REFUND_AMOUNT)
    specs = [
        EventSpec(
            "charge.succeeded",
            "charge.succeeded",
            FIRST.paid_at + 1,
            charge(fixtures, shape, FIRST),
            CHECKOUT_REQUEST,
        ),
        EventSpec(
            "invoice.paid.first",
            "invoice.paid",
            FIRST.paid_at + 3,
            invoice(fixtures, shape, FIRST),
            CHECKOUT_REQUEST,
        ),
        EventSpec(
            "checkout.session.completed",
            "checkout.session.completed",
            FIRST.paid_at + 4,
            subscription_checkout_session(fixtures),
            CHECKOUT_REQUEST,
        ),
        EventSpec(
            "customer.updated",
            "customer.updated",
            CUSTOMER_TAGGED_AT,
            tagged_customer(fixtures),
            CUSTOMER_TAG_REQUEST,
            previous_attributes={"metadata": {}},
        ),
        EventSpec(
            "payment_intent.succeeded",
            "payment_intent.succeeded",
            ONE_OFF_PAID_AT,
            one_off_payment_intent(fixtures, shape),
            ONE_OFF_REQUEST,
        ),
        EventSpec(
            "checkout.session.completed.payment",
            "checkout.session.completed",
            ONE_OFF_PAID_AT + 1,
            one_off_checkout_session(fixtures),
            ONE_OFF_REQUEST,
        ),
        EventSpec(
            "charge.dispute.created",
            "charge.dispute.created",
            DISPUTE_OPENED_AT + 1,
            dispute(fixtures, won=False),
            AUTOMATIC_REQUEST,
        ),
        EventSpec(
            "invoice.paid.renewal",
            "invoice.paid",
            RENEWAL.paid_at + 3,
            invoice(fixtures, shape, RENEWAL),
            AUTOMATIC_REQUEST,
        ),
        EventSpec(
            "charge.refunded",
            "charge.refunded",
            REFUNDED_AT + 1,
            refunded,
            REFUND_REQUEST,
            previous_attributes={"amount_refunded": 0},
        ),
        EventSpec(
            "refund.created",
            "refund.created",
            REFUNDED_AT + 2,
            refund(fixtures),
            REFUND_REQUEST,
        ),
        EventSpec(
            "charge.dispute.closed",
            "charge.dispute.closed",
            DISPUTE_CLOSED_AT + 1,
            dispute(fixtures, won=True),
            AUTOMATIC_REQUEST,
        ),
    ]
    if shape.legacy:
        return specs
    # InvoicePayment exists from basil on. The Invoice payload does not embed it
    # (`invoice.payments` is includable: API responses with expand[] only, never webhooks),
    # so its own event is how a basil endpoint learns which PaymentIntent paid an invoice.
    return [
        *specs,
        EventSpec(
            "invoice_payment.paid.first",
            "invoice_payment.paid",
            FIRST.paid_at + 2,
            invoice_payment(fixtures, FIRST),
            CHECKOUT_REQUEST,
        ),
        EventSpec(
            "invoice_payment.paid.renewal",
            "invoice_payment.paid",
            RENEWAL.paid_at + 2,
            invoice_payment(fixtures, RENEWAL),
            AUTOMATIC_REQUEST,
        ),
    ]


def stripe_events(fixtures: Json, shape: Shape) -> dict[str, Json]:
    """Every sample event of one shape, by file stem."""
    return {spec.name: envelope(fixtures, shape, spec) for spec in event_specs(fixtures, shape)}


# --- API Gateway deliveries. ---

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def clf_time(epoch: int) -> str:
    """API Gateway's `requestContext.time` (CLF format), free of the process locale."""
    days, seconds = divmod(epoch, 86400)
    year, month, day = _civil_from_days(days)
    hh, rest = divmod(seconds, 3600)
    mm, ss = divmod(rest, 60)
    return f"{day:02d}/{MONTHS[month - 1]}/{year}:{hh:02d}:{mm:02d}:{ss:02d} +0000"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm)."""
    z = days + 719468
    era, doe = divmod(z, 146097)
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def compact(event: Json) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def apigw_delivery(
    event: Json, *, route_key: str, raw_path: str, request_id: str, path_parameters: Json | None
) -> Json:
    """An HTTP API (payload 2.0) request carrying one signed Stripe delivery."""
    body = compact(event)
    trace_suffix = hashlib.sha256(event["id"].encode()).hexdigest()[:24]
    signature = stripe.WebhookSignature.generate_signature_header(
        body, WEBHOOK_SECRET, timestamp=SIGNED_AT
    )
    delivery: Json = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {
            "accept": "*/*; q=0.5, application/xml",
            "cache-control": "no-cache",
            "content-length": str(len(body.encode("utf-8"))),
            "content-type": "application/json; charset=utf-8",
            "host": API_DOMAIN,
            "stripe-signature": signature,
            "user-agent": STRIPE_USER_AGENT,
            "x-amzn-trace-id": f"Root=1-{SIGNED_AT:08x}-{trace_suffix}",
            "x-forwarded-for": STRIPE_SOURCE_IP,
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": AWS_ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": API_DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": "POST",
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": STRIPE_SOURCE_IP,
                "userAgent": STRIPE_USER_AGENT,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": clf_time(SIGNED_AT),
            "timeEpoch": SIGNED_AT * 1000,
        },
        "body": body,
        "isBase64Encoded": False,
    }
    if path_parameters is not None:
        delivery["pathParameters"] = path_parameters
    return delivery


def apigw_events(basil: dict[str, Json]) -> dict[str, Json]:
    return {
        "stripe-webhook.invoice.paid.first": apigw_delivery(
            basil["invoice.paid.first"],
            route_key="POST /stripe/webhook",
            raw_path="/stripe/webhook",
            request_id="QbRdgAAAIAMEb1A=",
            path_parameters=None,
        ),
        "stripe-webhook-account.charge.refunded": apigw_delivery(
            basil["charge.refunded"],
            route_key="POST /stripe/webhook/{account}",
            raw_path=f"/stripe/webhook/{ACCOUNT_ROUTE_SLUG}",
            request_id="QbRdgAAAIAMEb2B=",
            path_parameters={"account": ACCOUNT_ROUTE_SLUG},
        ),
    }


# --- Files. ---


def render(document: Json) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def build_files(fixtures: Json) -> dict[Path, str]:
    """Every output file, as a path relative to the output directory -> its text."""
    files: dict[Path, str] = {}
    by_shape = {shape.name: stripe_events(fixtures, shape) for shape in SHAPES}
    for shape_name, events in by_shape.items():
        for name, event in events.items():
            files[Path("stripe", shape_name, f"{name}.json")] = render(event)
    for name, delivery in apigw_events(by_shape[BASIL.name]).items():
        files[Path("apigw", f"{name}.json")] = render(delivery)
    return files


def stale_files(out: Path, files: dict[Path, str]) -> list[Path]:
    return [
        path
        for path, text in sorted(files.items())
        if not (out / path).is_file() or (out / path).read_text(encoding="utf-8") != text
    ]


def write_files(out: Path, files: dict[Path, str]) -> None:
    for path, text in sorted(files.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=DEFAULT_FIXTURES,
        help="Stripe's fixtures3.json (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory to write into (default: %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file differs from what would be written",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fixtures = json.loads(args.fixtures.read_text(encoding="utf-8"))
    files = build_files(fixtures)
    if args.check:
        stale = stale_files(args.out, files)
        for path in stale:
            print(f"out of date: {args.out / path}", file=sys.stderr)
        return 1 if stale else 0
    write_files(args.out, files)
    print(f"wrote {len(files)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
