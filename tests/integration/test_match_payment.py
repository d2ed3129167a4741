"""MatchPaymentFunction and ClickIntakeFunction together, in process, on moto resources
created from template.yaml: the attribution story of the README, case by case."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline, intake_message
from tests.stubs.stripe_api import running_stripe_stub
from tests.support import bridge_secret, stripe_event

JENNY = "jenny.rosen@example.com"
DAY = 86_400


@pytest.fixture
def pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return build_pipeline(aws, monkeypatch)


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


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_initial_payment_and_rebill_are_matched_to_the_click(
    pipeline: Pipeline, shape: str
) -> None:
    # Given the sign-up reported jenny's click
    assert pipeline.post_clicks(click())[0] == 201
    # When her first invoice and her renewal are paid
    pipeline.deliver_events(stripe_event(shape, "invoice.paid.first"))
    pipeline.deliver_events(stripe_event(shape, "invoice.paid.renewal"))
    # Then one initial and one rebill job target her click
    jobs = pipeline.jobs()
    assert conversions(jobs) == [
        ("in_1QbridgeFirst01", "initial", "49.00", "ef_tx_jenny"),
        ("in_1QbridgeRenew01", "rebill", "49.00", "ef_tx_jenny"),
    ]
    first = next(j for j in jobs if j["kind"] == "initial")
    assert first["target"] == {
        "mode": "click",
        "transaction_id": "ef_tx_jenny",
        "offer_id": "12",
        "affiliate_id": "7",
        "matched_by": "email_first_touch",
    }
    assert first["stripe"]["customer_id"] == "cus_QbridgeJenny01"
    assert first["stripe"]["subscription_id"] == "sub_1QbridgeSub001"
    assert first["stripe"]["price_ids"] == ["price_1QbridgeMonthly"]
    assert first["currency"] == "USD" and first["schema"] == "postback-job/1.1"
    renewal = next(j for j in jobs if j["kind"] == "rebill")
    assert renewal["target"]["matched_by"] == "customer_pin"


def test_duplicate_deliveries_yield_one_job(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    event = stripe_event("basil", "invoice.paid.first")
    # the same event twice in one batch, then again in a later batch
    response = pipeline.deliver_events(event, event)
    pipeline.deliver_events(event)
    assert response == {"batchItemFailures": []}
    assert len(pipeline.jobs()) == 1


def test_same_money_reported_by_several_events_is_counted_once(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    # Stripe sends invoice.paid, charge.succeeded and the Checkout Session for one
    # subscription payment, and occasionally a second Event object for one change.
    twin = stripe_event("basil", "invoice.paid.first") | {"id": "evt_1QbridgeTwinOfFirst"}
    pipeline.deliver_events(
        stripe_event("basil", "checkout.session.completed"),
        stripe_event("basil", "charge.succeeded"),
        stripe_event("legacy", "charge.succeeded"),
        stripe_event("basil", "invoice.paid.first"),
    )
    pipeline.deliver_events(twin)
    # (the click Checkout carried outranks the email's: it pinned the customer first)
    assert conversions(pipeline.jobs()) == [
        ("in_1QbridgeFirst01", "initial", "49.00", "ef_tx_9f1c2a7b")
    ]


def test_one_off_checkout_and_its_payment_intent_are_one_conversion(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    session = stripe_event("basil", "checkout.session.completed.payment")
    intent = {  # the same money, as payment_intent.succeeded (pre-basil shape: invoice null)
        "id": "evt_1QbridgePiOneOff",
        "object": "event",
        "type": "payment_intent.succeeded",
        "livemode": False,
        "created": session["created"],
        "api_version": "2024-06-20",
        "data": {
            "object": {
                "id": "pi_3QbridgeOneOff01",
                "object": "payment_intent",
                "amount_received": 5000,
                "currency": "jpy",
                "invoice": None,
                "receipt_email": JENNY,
                "customer": None,
                "metadata": {},
            }
        },
    }
    pipeline.deliver_events(session)
    pipeline.deliver_events(intent)
    assert conversions(pipeline.jobs()) == [
        ("pi_3QbridgeOneOff01", "initial", "5000", "ef_tx_jenny")
    ]


def test_payment_before_its_click_is_parked_then_matched(pipeline: Pipeline) -> None:
    # Given the payment arrives first
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert pipeline.jobs() == []
    parked = [
        i
        for i in pipeline.aws.dynamodb.scan(TableName="AttributionTable")["Items"]
        if i["pk"]["S"].startswith("parked#email#")
    ]
    assert len(parked) == 1
    # When the click arrives an hour later
    status, answer = pipeline.post_clicks(click())
    # Then the parked payment is replayed and matched
    assert (status, answer["replayed_payments"]) == (201, 1)
    assert pipeline.run_replays() == 1
    assert conversions(pipeline.jobs()) == [
        ("in_1QbridgeFirst01", "initial", "49.00", "ef_tx_jenny")
    ]
    # and nothing stays parked
    assert pipeline.post_clicks(click(tx="ef_tx_other"))[1]["replayed_payments"] == 0


def test_customer_pin_survives_an_email_change(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    pipeline.post_clicks(click(email="new.address@example.com", tx="ef_tx_someone_else"))
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    renewal = stripe_event("basil", "invoice.paid.renewal")
    renewal["data"]["object"]["customer_email"] = "new.address@example.com"
    pipeline.deliver_events(renewal)
    assert [j["target"]["transaction_id"] for j in pipeline.jobs()] == [
        "ef_tx_jenny",
        "ef_tx_jenny",
    ]


@pytest.mark.parametrize(
    ("policy", "expected"), [("first-touch", "ef_tx_early"), ("last-touch", "ef_tx_late")]
)
def test_first_and_last_touch(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, policy: str, expected: str
) -> None:
    pipeline = build_pipeline(aws, monkeypatch, ATTRIBUTION_POLICY=policy)
    event = stripe_event("basil", "invoice.paid.first")
    paid_at = event["data"]["object"]["status_transitions"]["paid_at"]
    pipeline.post_clicks(
        [
            click(tx="ef_tx_late", occurred_at=paid_at - DAY),
            click(tx="ef_tx_early", occurred_at=paid_at - 10 * DAY),
        ]
    )
    pipeline.deliver_events(event)
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == expected
    assert job["target"]["matched_by"] == f"email_{policy.replace('-', '_')}"


def test_click_outside_the_window_does_not_attribute(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = build_pipeline(aws, monkeypatch, ATTRIBUTION_WINDOW_DAYS="30")
    event = stripe_event("basil", "invoice.paid.first")
    paid_at = event["data"]["object"]["status_transitions"]["paid_at"]
    pipeline.post_clicks(click(occurred_at=paid_at - 31 * DAY))
    pipeline.deliver_events(event)
    assert pipeline.jobs() == []  # parked, waiting for a click inside the window
    pipeline.post_clicks(click(tx="ef_tx_recent", occurred_at=paid_at - 2 * DAY))
    pipeline.run_replays()
    assert [j["target"]["transaction_id"] for j in pipeline.jobs()] == ["ef_tx_recent"]


def test_email_is_matched_whatever_its_case_and_spaces(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click(email="  JENNY.Rosen@Example.COM "))
    pipeline.deliver_events(stripe_event("legacy", "invoice.paid.first"))
    assert len(pipeline.jobs()) == 1


def test_click_id_carried_by_checkout_pins_the_customer(pipeline: Pipeline) -> None:
    # Given no click was ever posted, but Checkout carried one (client_reference_id)
    pipeline.deliver_events(stripe_event("basil", "checkout.session.completed"))
    # When the invoice is paid under another email
    invoice = stripe_event("basil", "invoice.paid.first")
    invoice["data"]["object"]["customer_email"] = "billing@jenny.example"
    pipeline.deliver_events(invoice)
    # Then the conversion goes to the carried click, through the customer's pin
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_9f1c2a7b"
    assert job["target"]["matched_by"] == "customer_pin"


def test_click_id_in_subscription_metadata_is_used(pipeline: Pipeline) -> None:
    invoice = stripe_event("basil", "invoice.paid.first")
    invoice["data"]["object"]["parent"]["subscription_details"]["metadata"] = {
        "everflow_transaction_id": "ef_tx_from_sub"
    }
    pipeline.deliver_events(invoice)
    [job] = pipeline.jobs()
    assert (job["target"]["transaction_id"], job["target"]["matched_by"]) == (
        "ef_tx_from_sub",
        "stripe_click_id",
    )


def test_late_carried_click_replays_a_parked_payment(pipeline: Pipeline) -> None:
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert pipeline.jobs() == []
    customer = {
        "id": "evt_1QbridgeCustomerUpdated",
        "object": "event",
        "type": "customer.updated",
        "livemode": False,
        "created": 1767225700,
        "api_version": "2025-03-31.basil",
        "data": {
            "object": {
                "id": "cus_QbridgeJenny01",
                "object": "customer",
                "email": JENNY,
                "metadata": {"everflow_transaction_id": "ef_tx_meta"},
            }
        },
    }
    pipeline.deliver_events(customer)
    assert pipeline.run_replays() >= 1
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_meta"


def basil_intent(
    customer: str | None = "cus_QbridgeJenny01", email: str | None = None
) -> dict[str, Any]:
    return {
        "id": "evt_1QbridgePiBasil",
        "object": "event",
        "type": "payment_intent.succeeded",
        "livemode": False,
        "created": 1767225600,
        "api_version": "2025-03-31.basil",
        "data": {
            "object": {
                "id": "pi_3QbridgeFirst01",
                "object": "payment_intent",
                "amount_received": 4900,
                "currency": "usd",
                "customer": customer,
                "receipt_email": email,
                "metadata": {},
            }
        },
    }


def test_basil_intent_of_an_invoice_is_not_counted_twice(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    # invoice_payment.paid links pi → invoice before the intent arrives
    pipeline.deliver_events(
        stripe_event("basil", "invoice_payment.paid.first"),
        stripe_event("basil", "invoice.paid.first"),
    )
    pipeline.deliver_events(basil_intent(email=JENNY))
    assert len(pipeline.jobs()) == 1


def test_basil_intent_without_link_or_api_key_is_not_guessed(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    pipeline.deliver_events(basil_intent(email=JENNY))
    assert pipeline.jobs() == []


def test_stripe_api_answers_the_invoice_link_and_the_customer_email(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = bridge_secret()
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_bridge"
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    with running_stripe_stub() as stripe_api:
        stripe_api.customers["cus_QbridgeJenny01"] = {"email": JENNY, "metadata": {}}
        pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
        pipeline.post_clicks(click())
        # a one-off intent with no email in the payload: the customer's email is read
        pipeline.deliver_events(basil_intent())
        [job] = pipeline.jobs()
        assert (job["stripe"]["payment_intent_id"], job["target"]["transaction_id"]) == (
            "pi_3QbridgeFirst01",
            "ef_tx_jenny",
        )
        # an intent that paid an invoice is ignored
        stripe_api.invoice_payments["pi_3QbridgeOther"] = "in_1QbridgeFirst01"
        other = basil_intent()
        other["id"] = "evt_1QbridgePiOther"
        other["data"]["object"]["id"] = "pi_3QbridgeOther"
        pipeline.deliver_events(other)
        assert pipeline.jobs() == []
        assert {r["authorization"] for r in stripe_api.requests} == {"Bearer rk_test_bridge"}


def test_taxed_checkout_payment_is_reported_without_tax_whichever_event_comes_first(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = bridge_secret()
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_bridge"
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    with running_stripe_stub() as stripe_api:
        pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
        pipeline.post_clicks(click())
        # Given a one-off Checkout of 5000 JPY + 500 tax, whose intent arrives first
        session = stripe_event("legacy", "checkout.session.completed.payment")
        session["data"]["object"].update(
            amount_total=5500,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 500},
        )
        intent = stripe_event("legacy", "payment_intent.succeeded")
        intent["data"]["object"].update(amount=5500, amount_received=5500)
        stripe_api.checkout_sessions["pi_3QbridgeOneOff01"] = session["data"]["object"]["id"]
        # When both arrive, intent first
        pipeline.deliver_events(intent)
        pipeline.deliver_events(session)
        # Then one conversion, without the tax
        assert conversions(pipeline.jobs()) == [
            ("pi_3QbridgeOneOff01", "initial", "5000", "ef_tx_jenny")
        ]


def test_click_carried_by_a_checkout_that_lost_the_race_still_counts(pipeline: Pipeline) -> None:
    # Given the intent of a one-off payment arrives first and finds no click (parked)
    pipeline.deliver_events(stripe_event("legacy", "payment_intent.succeeded"))
    assert pipeline.jobs() == []
    # When its Checkout Session, carrying the click, arrives second
    session = stripe_event("legacy", "checkout.session.completed.payment")
    session["data"]["object"]["client_reference_id"] = "ef_tx_from_checkout"
    pipeline.deliver_events(session)
    pipeline.run_replays()
    # Then the payment is matched to the click the session carried
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_from_checkout"


def test_everflow_email_attribution_when_switched_on(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = build_pipeline(aws, monkeypatch, EVERFLOW_EMAIL_ATTRIBUTION="true")
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    [job] = pipeline.jobs()
    assert job["target"] == {"mode": "email", "email": JENNY}


def test_eventbridge_envelope_is_read_as_the_configured_account(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    envelope = {
        "version": "0",
        "id": "6a7e8feb",
        "detail-type": "invoice.paid",
        "source": "aws.partner/stripe.com/ed_test_61Q",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": stripe_event("basil", "invoice.paid.first"),
    }
    pipeline.deliver(json.dumps(envelope))
    [job] = pipeline.jobs()
    assert job["account"] == "default"


def test_refunds_and_disputes_become_jobs_with_their_ids(pipeline: Pipeline) -> None:
    # Given the payments they undo, counted
    pipeline.post_clicks(click())
    pipeline.deliver_events(
        stripe_event("legacy", "invoice.paid.first"), stripe_event("legacy", "invoice.paid.renewal")
    )
    conversion_jobs = {j["stripe"]["invoice_id"]: j["job_key"] for j in pipeline.jobs()}
    # When a refund and a dispute arrive (refund.created describes the same refund)
    pipeline.deliver_events(
        stripe_event("basil", "charge.refunded"),
        stripe_event("basil", "refund.created"),
        stripe_event("legacy", "charge.dispute.created"),
        stripe_event("legacy", "charge.dispute.closed"),
    )
    # Then each is a job naming its Stripe ids and the conversion it undoes
    jobs = pipeline.jobs()
    assert sorted(j["action"] for j in jobs) == ["dispute_closed", "dispute_opened", "refund"]
    by_action = {j["action"]: j for j in jobs}
    assert by_action["refund"]["stripe"]["charge_id"] == "ch_3QbridgeRenew01"
    assert by_action["refund"]["conversion_job_key"] == conversion_jobs["in_1QbridgeRenew01"]
    assert by_action["dispute_opened"]["stripe"]["dispute_id"] == "dp_1QbridgeDispute01"
    assert (
        by_action["dispute_opened"]["conversion_job_key"] == conversion_jobs["in_1QbridgeFirst01"]
    )
    assert by_action["dispute_closed"]["dispute_status"] == "won"


def test_one_bad_message_fails_only_itself(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    response = pipeline.deliver(
        "not json", intake_message(stripe_event("basil", "invoice.paid.first"))
    )
    assert len(response["batchItemFailures"]) == 1
    assert len(pipeline.jobs()) == 1


def test_event_of_the_other_mode_is_ignored(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first") | {"livemode": True})
    assert pipeline.jobs() == []


def test_a_batch_of_ten_payments_reads_its_lookups_in_one_request(pipeline: Pipeline) -> None:
    # Given ten customers with clicks and ten first invoices
    events = []
    for n in range(10):
        email = f"customer{n}@example.com"
        pipeline.post_clicks(click(email=email, tx=f"ef_tx_{n}"))
        event = copy.deepcopy(stripe_event("basil", "invoice.paid.first"))
        event["id"] = f"evt_batch{n}"
        invoice = event["data"]["object"]
        invoice.update(id=f"in_batch{n}", customer=f"cus_batch{n}", customer_email=email)
        events.append(event)
    store = pipeline.match_deps.matcher.store
    reads_before = store.read_requests
    # When they arrive as one SQS batch
    pipeline.deliver_events(*events)
    # Then every lookup came from one BatchGetItem, and each got its own click
    assert store.read_requests - reads_before <= 2
    assert sorted(j["target"]["transaction_id"] for j in pipeline.jobs()) == [
        f"ef_tx_{n}" for n in range(10)
    ]


def test_no_email_in_tables_queues_or_logs(pipeline: Pipeline, aws: Aws) -> None:
    logs = io.StringIO()
    previous = [
        m.logger.registered_handler.setStream(logs) for m in (pipeline.match, pipeline.clicks)
    ]
    pipeline.post_clicks(click(email="Jenny.Rosen@Example.com"))
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    pipeline.deliver_events(
        stripe_event("basil", "checkout.session.completed.payment") | {"id": "evt_parked"}
    )  # matched; then a parked one:
    parked = stripe_event("legacy", "invoice.paid.renewal")
    parked["data"]["object"].update(customer="cus_nobody", customer_email="nobody@example.com")
    pipeline.deliver_events(parked)
    for module, stream in zip((pipeline.match, pipeline.clicks), previous, strict=True):
        module.logger.registered_handler.setStream(stream)
    items = aws.dynamodb.scan(TableName="AttributionTable")["Items"]
    everything = json.dumps(items) + json.dumps(pipeline.jobs()) + logs.getvalue()
    assert items and "parked#email#" in json.dumps(items)
    for email in ("jenny.rosen@example.com", "nobody@example.com"):
        at = everything.lower().find(email)
        assert at < 0, everything[max(0, at - 300) : at + 40]


# ------------------------------------------------------------------ from the code review


def parked_items(aws: Aws) -> list[dict[str, Any]]:
    return [
        i
        for i in aws.dynamodb.scan(TableName="AttributionTable")["Items"]
        if i["pk"]["S"].startswith("parked#")
    ]


def test_a_click_outside_the_window_does_not_loop_a_parked_payment(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = build_pipeline(aws, monkeypatch, ATTRIBUTION_WINDOW_DAYS="30")
    event = stripe_event("basil", "invoice.paid.first")
    paid_at = event["data"]["object"]["status_transitions"]["paid_at"]
    pipeline.post_clicks(click(tx="ef_tx_old", occurred_at=paid_at - 31 * DAY))
    # When the payment parks, it is not replayed straight back (no loop) …
    pipeline.deliver_events(event)
    assert pipeline.run_replays() == 0
    assert parked_items(aws)
    # … and it is still there for the click that does attribute it
    pipeline.post_clicks(click(tx="ef_tx_recent", occurred_at=paid_at - DAY))
    assert pipeline.run_replays() == 1
    assert [j["target"]["transaction_id"] for j in pipeline.jobs()] == ["ef_tx_recent"]


def test_guest_intent_with_nowhere_to_park_leaves_the_money_to_its_session(
    pipeline: Pipeline,
) -> None:
    # Given a guest one-off intent with no email and no customer, arriving first
    intent = stripe_event("legacy", "payment_intent.succeeded")
    intent["data"]["object"].update(receipt_email=None, customer=None)
    session = stripe_event("legacy", "checkout.session.completed.payment")
    session["data"]["object"].update(client_reference_id="ef_tx_cref", customer=None)
    pipeline.deliver_events(intent)
    pipeline.deliver_events(session)
    # Then the session, which carries the click, counts the payment
    [job] = pipeline.jobs()
    assert (job["target"]["transaction_id"], job["amount"]) == ("ef_tx_cref", "5000")


def test_a_click_for_the_customer_replays_a_payment_parked_under_its_email(
    pipeline: Pipeline,
) -> None:
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    _, answer = pipeline.post_clicks(
        click(email="other.address@example.com", stripe_customer_id="cus_QbridgeJenny01")
    )
    assert answer["replayed_payments"] == 1
    pipeline.run_replays()
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_jenny"
