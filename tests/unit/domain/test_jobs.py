"""PostbackQueue messages (schema postback-job/1.N): what the matcher writes and the
poster reads back."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow.domain.classify import Classification, ClassifySettings, classify_event
from stripe_everflow.domain.errors import MalformedJobError, UnsupportedJobError
from stripe_everflow.domain.jobs import (
    POSTBACK_JOB_SCHEMA,
    ClickTarget,
    EmailTarget,
    PostbackJob,
    StripeRefs,
)
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
        "schema": "postback-job/1.1",
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
        "coupon_code": None,
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
    assert classified(shape, "invoice.paid.first").email == EMAIL
    job = conversion(shape)

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


# ------------------------------------------------------------------ reading jobs back


def every_job() -> list[PostbackJob]:
    """One job of each action and target, from every API shape's events."""
    jobs = []
    for shape in ("basil", "legacy"):
        jobs += [conversion(shape), conversion(shape, EmailTarget(EMAIL))]
        for name, action, key in [
            ("charge.refunded", "refund", "refund:default:ch_3QbridgeRenew01:1500"),
            ("charge.dispute.created", "dispute_opened", "dispute_opened:default:dp_1"),
            ("charge.dispute.closed", "dispute_closed", "dispute_closed:default:dp_1:won"),
        ]:
            jobs.append(
                PostbackJob(
                    job_key=key,
                    action=action,  # type: ignore[arg-type]
                    account="default",
                    livemode=False,
                    classification=classified(shape, name),
                    conversion_job_key="conversion:default:in_1QbridgeRenew01",
                )
            )
    jobs.append(
        PostbackJob(
            job_key="conversion:default:pi_3QbridgeOneOff01",
            action="conversion",
            account="eu-store",
            livemode=True,
            classification=classified("basil", "payment_intent.succeeded"),
            kind="rebill",
            target=ClickTarget("ef_tx_2", None, None, "stripe_click_id"),
        )
    )
    return jobs


@pytest.mark.parametrize("job", every_job(), ids=lambda j: f"{j.job_key}-{type(j.target)}")
def test_a_job_reads_back_as_the_job_written(job: PostbackJob) -> None:
    # When the poster reads what the matcher wrote
    text = job.to_json()
    read = PostbackJob.from_json(text)

    # Then it is the same job, and writes the same message
    assert read == job
    assert read.to_json() == text


def test_a_read_job_has_typed_fields() -> None:
    read = PostbackJob.from_json(conversion("legacy").to_json())

    assert (read.amount, read.currency) == (Decimal("49.00"), "USD")
    assert read.target == CLICK
    assert read.stripe.price_ids == ("price_1QbridgeMonthly",)
    assert (read.order_id, read.transaction_id) == ("in_1QbridgeFirst01", "ef_tx_9f1c2a7b")


def test_the_order_id_is_the_invoice_else_the_intent_else_the_charge() -> None:
    job = conversion("legacy")
    refs = job.stripe

    def order_id(**ids: str | None) -> str | None:
        return dataclasses.replace(job, stripe=dataclasses.replace(refs, **ids)).order_id

    assert order_id() == "in_1QbridgeFirst01"
    assert order_id(invoice_id=None) == "pi_3QbridgeFirst01"
    assert order_id(invoice_id=None, payment_intent_id=None) == "ch_3QbridgeFirst01"
    assert order_id(invoice_id=None, payment_intent_id=None, charge_id=None) is None


def document(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(conversion("basil").to_json())
    raw.update(changes)
    return raw


def test_a_newer_minor_version_with_more_fields_is_read() -> None:
    # Given a job from a newer matcher: a minor version adds fields here and there
    newer = document(schema="postback-job/1.3", priority="high")
    newer["stripe"]["quote_id"] = "qt_1"
    newer["target"]["sub_id"] = "s1"

    # When an older poster reads it, then it reads what it knows and ignores the rest
    read = PostbackJob.from_json(json.dumps(newer))
    assert read == conversion("basil")


def test_optional_fields_may_be_absent() -> None:
    minimal = {
        "schema": POSTBACK_JOB_SCHEMA,
        "job_key": "refund:default:ch_1:100",
        "action": "refund",
        "account": "default",
    }

    read = PostbackJob.from_json(json.dumps(minimal))

    assert read == PostbackJob("refund:default:ch_1:100", "refund", "default", False)
    assert read.stripe == StripeRefs() and read.amount is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "the job is not JSON"),
        ("[1, 2]", "the job is not a JSON object"),
        (json.dumps(document(schema=None)), "not a postback-job/1 job"),
        (json.dumps(document(schema="stripe-event/1")), "not a postback-job/1 job"),
        (json.dumps(document(schema="postback-job/2")), "postback-job/2 jobs are not read here"),
        (json.dumps(document(schema="postback-job/1.x")), "not a postback-job/1 job"),
        (json.dumps(document(job_key="")), "the job has no job_key"),
        (json.dumps(document(account=None)), "the job has no account"),
        (json.dumps(document(amount=49.0)), "the job's amount is not an amount written as text"),
        (json.dumps(document(amount="4g")), "the job's amount is not a decimal amount"),
        (json.dumps(document(amount="NaN")), "the job's amount is not a decimal amount"),
        (json.dumps(document(livemode="false")), "the job's livemode is not true or false"),
        (json.dumps(document(occurred_at="1767225592")), "occurred_at is not a whole number"),
        (json.dumps(document(stripe=[])), "the job's stripe is not an object"),
        (json.dumps(document(stripe={"price_ids": "price_1"})), "stripe.price_ids is not a list"),
        (json.dumps(document(stripe={"invoice_id": 7})), "the job's stripe.invoice_id is not text"),
        (json.dumps(document(target=None)), "a conversion job needs a click or email target"),
        (json.dumps(document(target={"mode": "sms"})), "target mode 'sms' is neither"),
        (json.dumps(document(target={"mode": "click"})), "the job has no target.transaction_id"),
        (json.dumps(document(target={"mode": "email", "email": 1})), "target.email is not text"),
    ],
)
def test_a_malformed_job_is_refused_naming_what_is_wrong(body: str, message: str) -> None:
    with pytest.raises(MalformedJobError, match=message.replace("(", r"\(")):
        PostbackJob.from_json(body)


def test_a_job_of_an_unknown_action_is_unsupported() -> None:
    with pytest.raises(UnsupportedJobError, match="lead jobs are not posted"):
        PostbackJob.from_json(json.dumps(document(action="lead")))


def test_numeric_everflow_ids_of_older_jobs_are_read_as_text() -> None:
    raw = document()
    raw["target"] |= {"offer_id": 12, "affiliate_id": 7}

    read = PostbackJob.from_json(json.dumps(raw))

    assert read.target == CLICK
