"""Stripe does not order its events: the same money reported in every order the
bridge can meet, in process (moto from template.yaml, Everflow from the stand-in),
with payloads from events/ in both API shapes.

One-off Checkout money is decided by its Checkout Session whichever event comes
first (the intent does not know the tax nor, often, the email); refunds and
disputes that arrive before their payment wait for it and are applied once it is
counted; a click that a later payment carries, or a pin it sets, releases what was
parked for that customer."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow_cli.everflow_standin import EverflowStandIn
from tests.integration.conftest import Aws
from tests.integration.pipeline import Bridge, Pipeline, build_pipeline
from tests.stubs.stripe_api import running_stripe_stub
from tests.support import bridge_secret, stripe_event

JENNY = "jenny.rosen@example.com"
CUSTOMER = "cus_QbridgeJenny01"
ONE_OFF = "pi_3QbridgeOneOff01"
DAY = 86_400
SHAPES = ["legacy", "basil"]


@pytest.fixture
def pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return build_pipeline(aws, monkeypatch)


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def bridge(aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch) -> Bridge:
    return Bridge(aws, everflow, monkeypatch)


def click(email: str = JENNY, tx: str = "ef_tx_jenny", **more: Any) -> dict[str, Any]:
    return {"email": email, "transaction_id": tx, "offer_id": 12, "affiliate_id": 7} | more


def conversions(jobs: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (
            j["stripe"]["invoice_id"] or j["stripe"]["payment_intent_id"],
            j["kind"],
            j["amount"],
            j["target"]["transaction_id"],
        )
        for j in jobs
        if j["action"] == "conversion"
    )


# ------------------------------------------------------------------ one-off Checkout


def one_off(
    shape: str,
    *,
    receipt_email: str | None = None,
    customer: str | None = CUSTOMER,
    session_type: str = "checkout.session.completed",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A one-off Checkout of 5000 JPY + 1000 tax: its payment_intent.succeeded and the
    session's event, as Stripe sends them (the intent knows neither tax nor session)."""
    intent = copy.deepcopy(stripe_event(shape, "payment_intent.succeeded"))
    intent["data"]["object"].update(
        amount=6000, amount_received=6000, customer=customer, receipt_email=receipt_email
    )
    session = copy.deepcopy(stripe_event(shape, "checkout.session.completed.payment"))
    session["data"]["object"].update(
        customer=customer,
        amount_subtotal=5000,
        amount_total=6000,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 1000},
    )
    if session_type != "checkout.session.completed":
        session["id"] = session["id"].replace("Completed", "AsyncSucceeded")
        session["type"] = session_type
    return intent, session


def unpaid(session: dict[str, Any]) -> dict[str, Any]:
    """The checkout.session.completed of a bank debit: complete, not paid yet."""
    event = copy.deepcopy(session)
    event["id"] = event["id"] + "Unpaid"
    event["type"] = "checkout.session.completed"
    event["data"]["object"]["payment_status"] = "unpaid"
    return event


SESSION_TYPES = ["checkout.session.completed", "checkout.session.async_payment_succeeded"]


@pytest.mark.parametrize("session_type", SESSION_TYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_a_checkout_payment_whose_intent_comes_first_without_an_email_is_counted(
    pipeline: Pipeline, shape: str, session_type: str
) -> None:
    # Given jenny's click, and a one-off Checkout whose intent names her customer but
    # carries no receipt email (no restricted key to read the customer with)
    pipeline.post_clicks(click())
    intent, session = one_off(shape, session_type=session_type)
    if session_type != "checkout.session.completed":
        pipeline.deliver_events(unpaid(session))
    # When Stripe sends the intent first, then the session
    pipeline.deliver_events(intent)
    pipeline.deliver_events(session)
    pipeline.run_replays()
    # Then the sale is reported once, by the session: its email, its amount without tax
    assert conversions(pipeline.jobs()) == [(ONE_OFF, "initial", "5000", "ef_tx_jenny")]


@pytest.mark.parametrize("shape", SHAPES)
def test_a_session_that_comes_after_its_parked_intent_still_counts_the_sale(
    pipeline: Pipeline, shape: str
) -> None:
    # Given the intent came alone and, once it had waited for its session, was parked
    pipeline.post_clicks(click())
    intent, session = one_off(shape)
    pipeline.deliver_events(intent)
    pipeline.run_replays()
    assert pipeline.jobs() == []
    # When the session comes much later (Stripe retried its delivery)
    pipeline.later(2 * 3600)
    pipeline.deliver_events(session)
    pipeline.run_replays()
    # Then the session counts the sale, and the parked intent stays out of it
    assert conversions(pipeline.jobs()) == [(ONE_OFF, "initial", "5000", "ef_tx_jenny")]
    pipeline.post_clicks(click(tx="ef_tx_other", stripe_customer_id=CUSTOMER))
    pipeline.run_replays()
    assert pipeline.jobs() == []


@pytest.mark.parametrize("order", ["intent_first", "session_first"])
@pytest.mark.parametrize("found_by", ["receipt_email", "customer_pin"])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_taxed_checkout_payment_is_reported_without_tax_whichever_event_comes_first(
    pipeline: Pipeline, shape: str, found_by: str, order: str
) -> None:
    # Given an intent the bridge could match on its own: by its receipt email, or
    # because its customer is pinned already
    if found_by == "receipt_email":
        pipeline.post_clicks(click())
        intent, session = one_off(shape, receipt_email=JENNY)
    else:
        pipeline.post_clicks(click(stripe_customer_id=CUSTOMER))
        intent, session = one_off(shape)
    # When both events arrive, in either order
    events = [intent, session] if order == "intent_first" else [session, intent]
    for event in events:
        pipeline.deliver_events(event)
    pipeline.run_replays()
    # Then the session decides the amount: 5000 of the 6000 paid, the tax left out
    [(money, kind, amount, tx)] = conversions(pipeline.jobs())
    assert (money, kind, amount, tx) == (ONE_OFF, "initial", "5000", "ef_tx_jenny")


@pytest.mark.parametrize("order", ["intent_first", "session_first"])
def test_with_amounts_including_tax_the_session_reports_what_was_paid(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    pipeline = build_pipeline(aws, monkeypatch, AMOUNTS_INCLUDE_TAX="true")
    pipeline.post_clicks(click())
    intent, session = one_off("legacy", receipt_email=JENNY)
    for event in [intent, session] if order == "intent_first" else [session, intent]:
        pipeline.deliver_events(event)
    pipeline.run_replays()
    assert conversions(pipeline.jobs()) == [(ONE_OFF, "initial", "6000", "ef_tx_jenny")]


def test_a_one_off_intent_without_a_session_is_counted_once_it_has_waited(
    pipeline: Pipeline,
) -> None:
    # Given a one-off payment made without Checkout (no session will ever come)
    pipeline.post_clicks(click())
    intent, _ = one_off("legacy", receipt_email=JENNY)
    # When its intent arrives, it waits for a session first …
    pipeline.deliver_events(intent)
    assert pipeline.jobs() == []
    # … then, none having come, counts the money itself
    assert pipeline.run_replays() == 1
    assert conversions(pipeline.jobs()) == [(ONE_OFF, "initial", "6000", "ef_tx_jenny")]
    # and the same intent delivered again counts nothing more
    pipeline.deliver_events(intent)
    pipeline.run_replays()
    assert pipeline.jobs() == []


# ------------------------------------------------------------------ refunds, disputes


def refunded(shape: str, refunded_minor: int, event_id: str | None = None) -> dict[str, Any]:
    """charge.refunded of the renewal's charge (4900), ``refunded_minor`` so far."""
    event = copy.deepcopy(stripe_event(shape, "charge.refunded"))
    event["id"] = event_id or f"evt_refund_{shape}_{refunded_minor}"
    event["data"]["object"].update(amount_refunded=refunded_minor, refunded=refunded_minor >= 4900)
    return event


def renewal_payment(shape: str) -> list[dict[str, Any]]:
    """What Stripe sends for the renewal's money: basil links the charge's intent to
    the invoice through invoice_payment.paid."""
    events = [stripe_event(shape, "invoice.paid.renewal")]
    if shape == "basil":
        events.insert(0, stripe_event("basil", "invoice_payment.paid.renewal"))
    return events


RENEW = "conversion:default:in_1QbridgeRenew01"
REFUNDED_AT = 1770735601  # charge.refunded of events/
FULL_REFUND = f"refund:default:ch_3QbridgeRenew01:4900@{REFUNDED_AT}"


@pytest.mark.parametrize("shape", SHAPES)
def test_a_full_refund_processed_before_its_invoice_reverses_the_conversion(
    bridge: Bridge, everflow: EverflowStandIn, shape: str
) -> None:
    bridge.pipeline.post_clicks(click())
    # Given the refund is processed before the invoice it refunds
    bridge.stripe(refunded(shape, 4900))
    assert everflow.requests() == []
    # When the invoice is processed
    for event in renewal_payment(shape):
        bridge.stripe(event)
    # Then the conversion is posted, then reversed, each once
    assert len(everflow.postbacks()) == 1
    [reversal] = everflow.reversals()
    assert dict(reversal.query)["conversion_id"] == bridge.ledger(RENEW)["conversion_id"]
    assert bridge.ledger(FULL_REFUND)["status"] == "reversed"
    assert bridge.failed_jobs == []


@pytest.mark.parametrize(
    "order",
    [
        ("refund", "invoice", "link"),
        ("invoice", "refund", "link"),
        ("refund", "link", "invoice"),
        ("link", "refund", "invoice"),
    ],
)
def test_a_basil_refund_reverses_its_conversion_whatever_the_order_of_its_three_events(
    bridge: Bridge, everflow: EverflowStandIn, order: tuple[str, ...]
) -> None:
    bridge.pipeline.post_clicks(click())
    events = {
        "refund": refunded("basil", 4900),
        "invoice": stripe_event("basil", "invoice.paid.renewal"),
        "link": stripe_event("basil", "invoice_payment.paid.renewal"),
    }
    for name in order:
        bridge.stripe(events[name])
    assert len(everflow.postbacks()) == 1
    assert len(everflow.reversals()) == 1
    assert bridge.ledger(FULL_REFUND)["status"] == "reversed"


def renewal_intent() -> dict[str, Any]:
    """payment_intent.succeeded of the renewal's intent, basil: it names no invoice."""
    intent = copy.deepcopy(stripe_event("basil", "payment_intent.succeeded"))
    intent["id"] = "evt_1QbridgePiRenewBasil"
    intent["data"]["object"].update(
        id="pi_3QbridgeRenew01",
        amount=4900,
        amount_received=4900,
        currency="usd",
        customer=CUSTOMER,
        latest_charge="ch_3QbridgeRenew01",
        receipt_email=None,
    )
    return intent


def test_an_intent_in_the_batch_that_links_it_reads_the_link_just_written(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = bridge_secret()
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_bridge"
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    with running_stripe_stub() as stripe_api:
        pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
        pipeline.post_clicks(click())
        # One batch: the link from the renewal's intent to its invoice, then the intent
        # (the batch read the link before it was written)
        pipeline.deliver_events(
            stripe_event("basil", "invoice_payment.paid.renewal"), renewal_intent()
        )
        pipeline.deliver_events(stripe_event("basil", "invoice.paid.renewal"))
        # Then the intent knows its invoice without asking Stripe, and the renewal is
        # counted once, by its invoice
        asked = {r["path"] for r in stripe_api.requests}
        assert not asked & {"/v1/invoice_payments", "/v1/checkout/sessions"}, asked
        assert conversions(pipeline.jobs()) == [
            ("in_1QbridgeRenew01", "rebill", "49.00", "ef_tx_jenny")
        ]


def test_a_basil_refund_in_the_batch_that_links_its_charge_finds_its_invoice(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.pipeline.post_clicks(click())
    intent = renewal_intent()
    # One matcher batch: the link, the intent (which reads the link), the invoice and
    # its full refund
    bridge.stripe(
        stripe_event("basil", "invoice_payment.paid.renewal"),
        intent,
        stripe_event("basil", "invoice.paid.renewal"),
        refunded("basil", 4900),
    )
    assert len(everflow.postbacks()) == 1
    assert len(everflow.reversals()) == 1
    assert bridge.ledger(FULL_REFUND)["status"] == "reversed"


@pytest.mark.parametrize("shape", SHAPES)
def test_a_partial_refund_before_its_invoice_adjusts_the_conversion(
    bridge: Bridge, everflow: EverflowStandIn, shape: str
) -> None:
    bridge.pipeline.post_clicks(click())
    bridge.stripe(refunded(shape, 1500))
    for event in renewal_payment(shape):
        bridge.stripe(event)
    [put] = [json.loads(r.body) for r in everflow.api_calls() if r.method == "PUT"]
    assert put["sale_amount"] == 34.0
    assert everflow.reversals() == []


@pytest.mark.parametrize("shape", SHAPES)
def test_a_dispute_opened_before_its_payment_reverses_and_its_win_restores(
    bridge: Bridge, everflow: EverflowStandIn, shape: str
) -> None:
    bridge.pipeline.post_clicks(click())
    # Given the chargeback on the first charge is processed before its invoice
    bridge.stripe(stripe_event(shape, "charge.dispute.created"))
    assert everflow.requests() == []
    first = [stripe_event(shape, "invoice.paid.first")]
    if shape == "basil":
        first.insert(0, stripe_event("basil", "invoice_payment.paid.first"))
    for event in first:
        bridge.stripe(event)
    # Then the conversion is posted and reversed …
    assert len(everflow.postbacks()) == 1
    assert len(everflow.reversals()) == 1
    # … and approved again when the merchant wins
    bridge.stripe(stripe_event(shape, "charge.dispute.closed"))
    [patch] = [r for r in everflow.api_calls() if r.method == "PATCH"]
    assert json.loads(patch.body)["conversion_status"] == "approved"


def test_a_refund_of_a_parked_payment_is_applied_once_the_payment_is_posted(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given a renewal with no click yet (parked), refunded in full
    renewal = stripe_event("legacy", "invoice.paid.renewal")
    renewal["data"]["object"].update(customer="cus_later", customer_email="later@example.com")
    bridge.stripe(renewal)
    bridge.stripe(refunded("legacy", 4900))
    # Then the refund waits with its payment: nothing posted, nothing failing
    assert everflow.requests() == [] and bridge.failed_jobs == []
    # When the click arrives twelve days later
    bridge.pipeline.later(12 * DAY)
    bridge.pipeline.post_clicks(click(email="later@example.com", tx="ef_tx_later"))
    bridge.settle()
    # Then the conversion is posted and the refund reverses it
    assert len(everflow.postbacks()) == 1
    assert len(everflow.reversals()) == 1
    assert bridge.failed_jobs == []


def test_a_refund_waits_as_long_as_its_payment_stays_parked(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = Bridge(aws, everflow, monkeypatch, ATTRIBUTION_WINDOW_DAYS="30")
    # Given a renewal parked (no click), and its full refund waiting with it
    renewal = stripe_event("legacy", "invoice.paid.renewal")
    renewal["data"]["object"].update(customer="cus_later", customer_email="later@example.com")
    paid_at = renewal["data"]["object"]["status_transitions"]["paid_at"]
    bridge.stripe(renewal)
    bridge.stripe(refunded("legacy", 4900))
    # and, 25 days on, a click outside the attribution window: the payment is replayed
    # and parked again, for another ParkedPaymentTtlDays
    bridge.pipeline.later(25 * DAY)
    bridge.pipeline.post_clicks(
        click(email="later@example.com", tx="ef_tx_old", occurred_at=paid_at - 40 * DAY)
    )
    bridge.settle()
    # When the refund's own 30 days have passed, it does not give up …
    bridge.pipeline.later(6 * DAY)
    bridge.stripe(stripe_event("basil", "invoice.paid.first") | {"livemode": True})
    assert bridge.poster.deps.poster.ledger.get(FULL_REFUND) is None
    # … and once a click matches the payment, the refund reverses its conversion
    bridge.pipeline.post_clicks(
        click(email="later@example.com", tx="ef_tx_new", occurred_at=paid_at - DAY)
    )
    bridge.settle()
    assert len(everflow.postbacks()) == 1
    assert len(everflow.reversals()) == 1


def test_a_refund_waiting_on_an_intent_follows_the_session_that_takes_its_money(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given a one-off intent parked (no email, no key to ask Stripe), then refunded
    bridge.pipeline.post_clicks(click())
    intent, session = one_off("legacy")
    bridge.stripe(intent)
    refund = copy.deepcopy(stripe_event("legacy", "charge.refunded"))
    refund["id"] = "evt_refund_one_off"
    refund["data"]["object"].update(
        id="ch_3QbridgeOneOff01",
        invoice=None,
        payment_intent=ONE_OFF,
        amount=6000,
        amount_captured=6000,
        amount_refunded=6000,
        refunded=True,
        currency="jpy",
    )
    bridge.stripe(refund)
    assert everflow.requests() == []
    # When its session comes, late, and counts the sale
    bridge.pipeline.later(3600)
    bridge.stripe(session)
    # Then the sale is posted without its tax, and the refund reverses it
    [postback] = everflow.postbacks()
    assert dict(postback.query)["amount"] == "5000"
    assert len(everflow.reversals()) == 1


def test_waiting_refunds_are_looked_over_at_most_hourly_and_the_record_ends_with_them(
    bridge: Bridge, aws: Aws
) -> None:
    sweep = {"pk": {"S": "parked#undo#default"}, "sk": {"S": "#sweep"}}
    other = refunded("legacy", 4900)
    other["data"]["object"].update(
        id="ch_unknown", invoice="in_unknown", payment_intent="pi_unknown"
    )
    bridge.stripe(other)
    assert "Item" in aws.dynamodb.get_item(TableName="AttributionTable", Key=sweep)
    ignored = stripe_event("basil", "invoice.paid.first") | {"livemode": True}
    store = bridge.pipeline.match_deps.matcher.store
    # Before the wait ends, a batch reads nothing more than its own lookups
    reads = store.read_requests
    bridge.stripe(ignored)
    assert store.read_requests - reads == 1
    # After it, one sweep sends the refund as not ours, and the record goes with it
    bridge.pipeline.later(31 * DAY)
    bridge.stripe(ignored)
    assert bridge.ledger(f"refund:default:ch_unknown:4900@{REFUNDED_AT}")["status"] == "not_ours"
    bridge.pipeline.later(2 * 3600)
    bridge.stripe(ignored)
    assert "Item" not in aws.dynamodb.get_item(TableName="AttributionTable", Key=sweep)


def test_a_refund_delivered_again_while_it_waits_is_applied_once(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.pipeline.post_clicks(click())
    refund = refunded("legacy", 4900)
    bridge.stripe(refund, copy.deepcopy(refund))
    bridge.stripe(refunded("legacy", 4900, event_id="evt_refund_twin"))
    bridge.stripe(stripe_event("legacy", "invoice.paid.renewal"))
    bridge.stripe(refund)
    assert len(everflow.reversals()) == 1


def test_a_refund_whose_payment_never_comes_is_not_ours_once_its_wait_ends(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given a refund of money the bridge has not seen
    other = refunded("legacy", 4900)
    other["data"]["object"].update(
        id="ch_unknown", invoice="in_unknown", payment_intent="pi_unknown"
    )
    bridge.stripe(other)
    # Then it waits: no job, nothing recorded as not ours while its payment may come
    refund_job = f"refund:default:ch_unknown:4900@{REFUNDED_AT}"
    assert bridge.poster.deps.poster.ledger.get(refund_job) is None
    # When the payment's wait (ParkedPaymentTtlDays, 30) has passed
    bridge.pipeline.later(31 * DAY)
    bridge.stripe(stripe_event("basil", "invoice.paid.first") | {"livemode": True})
    # Then the refund is recorded not ours, and Everflow is never called
    assert bridge.ledger(refund_job)["status"] == "not_ours"
    assert everflow.requests() == []


# ------------------------------------------------------------------ parked for a customer


@pytest.mark.parametrize("shape", SHAPES)
def test_a_click_carried_by_a_later_invoice_releases_the_customers_parked_payment(
    pipeline: Pipeline, shape: str
) -> None:
    # Given the first invoice, with no click anywhere yet: parked
    pipeline.deliver_events(stripe_event(shape, "invoice.paid.first"))
    assert pipeline.jobs() == []
    # When the renewal's subscription metadata carries the click id
    renewal = stripe_event(shape, "invoice.paid.renewal")
    invoice = renewal["data"]["object"]
    details = (
        invoice["parent"]["subscription_details"]
        if shape == "basil"
        else invoice["subscription_details"]
    )
    details["metadata"] = {"everflow_transaction_id": "ef_tx_from_sub"}
    pipeline.deliver_events(renewal)
    pipeline.run_replays()
    # Then both payments go to that click
    assert conversions(pipeline.jobs()) == [
        ("in_1QbridgeFirst01", "initial", "49.00", "ef_tx_from_sub"),
        ("in_1QbridgeRenew01", "rebill", "49.00", "ef_tx_from_sub"),
    ]


@pytest.mark.parametrize("shape", SHAPES)
def test_a_customer_pinned_by_a_later_payment_releases_what_was_parked_for_it(
    pipeline: Pipeline, shape: str
) -> None:
    # Given a first invoice without an email: parked under its customer only
    first = stripe_event(shape, "invoice.paid.first")
    first["data"]["object"]["customer_email"] = None
    pipeline.deliver_events(first)
    # and jenny's click, reported without her customer id (it releases nothing)
    assert pipeline.post_clicks(click())[1]["replayed_payments"] == 0
    # When her renewal is matched by email, which pins her customer
    pipeline.deliver_events(stripe_event(shape, "invoice.paid.renewal"))
    pipeline.run_replays()
    # Then the first payment is released and goes to the pinned click
    assert conversions(pipeline.jobs()) == [
        ("in_1QbridgeFirst01", "initial", "49.00", "ef_tx_jenny"),
        ("in_1QbridgeRenew01", "rebill", "49.00", "ef_tx_jenny"),
    ]
