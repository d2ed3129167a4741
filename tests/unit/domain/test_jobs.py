"""PostbackQueue messages (schema postback-job/1): what the poster receives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stripe_everflow.domain.classify import Classification, ClassifySettings, classify_event
from stripe_everflow.domain.jobs import POSTBACK_JOB_SCHEMA, ClickTarget, EmailTarget, PostbackJob
from tests.support import stripe_event

EMAIL = "jenny.rosen@example.com"
CLICK = ClickTarget("ef_tx_9f1c2a7b", offer_id="12", affiliate_id="7", matched_by="customer_pin")


def classified(shape: str, name: str) -> Classification:
    return classify_event(stripe_event(shape, name), ClassifySettings())


def conversion(shape: str, target: ClickTarget | EmailTarget | None = CLICK) -> PostbackJob:
    return PostbackJob(
        job_key="conversion:default:in_1QbridgeFirst01",
        action="conversion",
        account="default",
        livemode=False,
        classification=classified(shape, "invoice.paid.first"),
        kind="initial",
        target=target,
    )


# Only legacy invoices name the charge and payment intent that paid them.
PAID_BY = {
    "basil": {"charge_id": None, "payment_intent_id": None},
    "legacy": {"charge_id": "ch_3QbridgeFirst01", "payment_intent_id": "pi_3QbridgeFirst01"},
}


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_conversion_job_of_the_first_invoice(shape: str) -> None:
    # Given the first invoice, matched to a click
    job = conversion(shape)

    # When
    document = job.as_dict()

    # Then
    assert document == {
        "schema": "postback-job/1",
        "job_key": "conversion:default:in_1QbridgeFirst01",
        "action": "conversion",
        "kind": "initial",
        "account": "default",
        "livemode": False,
        "occurred_at": 1767225592,
        "amount": "49.00",
        "currency": "USD",
        "amount_refunded": None,
        "charge_amount": None,
        "dispute_status": None,
        "conversion_job_key": None,
        "stripe": {
            "event_id": f"evt_1QbridgeInvoicePaidFirst{shape.capitalize()}",
            "event_type": "invoice.paid",
            "invoice_id": "in_1QbridgeFirst01",
            **PAID_BY[shape],
            "customer_id": "cus_QbridgeJenny01",
            "subscription_id": "sub_1QbridgeSub001",
            "refund_id": None,
            "dispute_id": None,
            "checkout_session_id": None,
            "price_ids": ["price_1QbridgeMonthly"],
            "product_ids": ["prod_QbridgePro"],
            "promotion_code": None,
            "billing_reason": "subscription_create",
        },
        "target": {
            "mode": "click",
            "transaction_id": "ef_tx_9f1c2a7b",
            "offer_id": "12",
            "affiliate_id": "7",
            "matched_by": "customer_pin",
        },
    }
    assert document["schema"] == POSTBACK_JOB_SCHEMA


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_job_json_is_compact_and_reads_back_as_the_dict(shape: str) -> None:
    job = conversion(shape)

    text = job.to_json()

    assert json.loads(text) == job.as_dict()
    assert ", " not in text
    assert ": " not in text


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_click_target_job_holds_no_email(shape: str) -> None:
    # Given the classification knows the customer's email
    job = conversion(shape)
    assert job.classification.email == EMAIL

    # Then no part of the message carries it
    text = job.to_json()
    assert EMAIL not in text.lower()
    assert "jenny.rosen" not in text.lower()
    assert "@" not in text


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_email_target_puts_the_email_only_under_target(shape: str) -> None:
    # Given Everflow email attribution is on
    job = conversion(shape, target=EmailTarget(EMAIL))

    document = json.loads(job.to_json())

    assert document["target"] == {"mode": "email", "email": EMAIL}
    rest = {name: value for name, value in document.items() if name != "target"}
    assert "@" not in json.dumps(rest)


def test_amounts_are_exact_strings_in_the_currency_unit() -> None:
    # Given the one-off JPY payment (zero-decimal)
    job = PostbackJob(
        job_key="conversion:default:pi_3QbridgeOneOff01",
        action="conversion",
        account="default",
        livemode=False,
        classification=classified("basil", "payment_intent.succeeded"),
        kind="initial",
        target=CLICK,
    )

    document: dict[str, Any] = json.loads(job.to_json())

    assert (document["amount"], document["currency"]) == ("5000", "JPY")
    assert document["stripe"]["payment_intent_id"] == "pi_3QbridgeOneOff01"
    assert document["stripe"]["charge_id"] == "ch_3QbridgeOneOff01"


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_refund_job_carries_cumulative_and_captured_amounts_and_no_target(shape: str) -> None:
    job = PostbackJob(
        job_key="refund:default:ch_3QbridgeRenew01:1500",
        action="refund",
        account="default",
        livemode=False,
        classification=classified(shape, "charge.refunded"),
    )

    document = json.loads(job.to_json())

    assert (document["amount_refunded"], document["charge_amount"]) == ("15.00", "49.00")
    assert (document["kind"], document["target"]) == (None, None)
    assert document["stripe"]["charge_id"] == "ch_3QbridgeRenew01"


def test_dispute_job_carries_the_dispute_status() -> None:
    job = PostbackJob(
        job_key="dispute_closed:default:dp_1QbridgeDispute01:won",
        action="dispute_closed",
        account="default",
        livemode=False,
        classification=classified("legacy", "charge.dispute.closed"),
    )

    document = job.as_dict()

    assert (document["dispute_status"], document["amount"]) == ("won", "49.00")
    assert document["stripe"]["dispute_id"] == "dp_1QbridgeDispute01"
