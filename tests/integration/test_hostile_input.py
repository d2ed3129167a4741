"""Genuine but odd input, end to end: the webhook's answer, what is queued, what the
matcher does with it, what the click intake stores.

A signed event whose shape the bridge cannot use is acknowledged (200 "ignored", with
a reason, counted) — Stripe must not retry it for three days — and the matcher
ignores such an event with a reason instead of failing the record into the DLQ.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline
from tests.support import LambdaContext, http_api_event, load_function, sign, stripe_event

JENNY = "jenny.rosen@example.com"
TOO_LONG_ID = "in_" + "x" * 3000


@pytest.fixture
def webhook(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in aws.function_environment("StripeWebhookFunction").items():
        monkeypatch.setenv(name, value)
    return load_function("stripe_webhook")


@pytest.fixture
def pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return build_pipeline(aws, monkeypatch)


def deliver(webhook: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Sign and deliver like Stripe; a function error is what API Gateway answers: 500.

    Compact JSON: 500 levels pretty-printed would be refused as too large first."""
    body = json.dumps(event).encode()
    try:
        answer = webhook.lambda_handler(http_api_event(body, signature=sign(body)), LambdaContext())
    except Exception:
        return 500, {}
    return answer["statusCode"], json.loads(answer["body"])


def match(pipeline: Pipeline, event: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """One event through MatchPaymentFunction: the batch's failed records and the
    outcome the function logged for it."""
    logs = io.StringIO()
    # INFO whatever level an earlier test left the process-wide logger at
    pipeline.match.logger.setLevel("INFO")
    previous = pipeline.match.logger.registered_handler.setStream(logs)
    try:
        failures = pipeline.deliver_events(event)["batchItemFailures"]
    finally:
        pipeline.match.logger.registered_handler.setStream(previous)
    logged = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    outcomes = [entry for entry in logged if entry.get("message") == "event matched"]
    return failures, outcomes[-1] if outcomes else {}


def invoice(**changes: Any) -> dict[str, Any]:
    event = stripe_event("basil", "invoice.paid.first")
    event["data"]["object"].update(changes)
    return event


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": JENNY}
    for _ in range(depth):
        value = {"a": value}
    return value


def _with_lines_data(data: Any) -> dict[str, Any]:
    event = invoice()
    event["data"]["object"]["lines"]["data"] = data
    return event


def _with(path: tuple[str, ...], value: Any) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        event = invoice()
        node = event
        for name in path[:-1]:
            node = node[name]
        node[path[-1]] = value
        return event

    return build


# name → (event builder, the reason the bridge gives)
ODD_INVOICES: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "500 levels of nesting": (lambda: invoice(metadata=nested(500)), "nesting_too_deep"),
    "lone surrogate in a value": (lambda: invoice(description="\ud800"), "invalid_unicode"),
    "lone surrogate in an email": (
        lambda: invoice(customer_email="jenny\udfff@example.com"),
        "invalid_unicode",
    ),
    "lone surrogate in a key": (lambda: invoice(metadata={"\ud800": "x"}), "invalid_unicode"),
    "noncharacter SQS refuses": (lambda: invoice(description="\uffff"), "invalid_unicode"),
    "invoice id a number": (lambda: invoice(id=12345), "invalid_stripe_id"),
    "invoice id null": (lambda: invoice(id=None), "missing_stripe_id"),
    "invoice id over the key limit": (lambda: invoice(id=TOO_LONG_ID), "invalid_stripe_id"),
    "customer id over the key limit": (
        lambda: invoice(customer="cus_" + "x" * 3000),
        "invalid_stripe_id",
    ),
    "event id over the key limit": (
        _with(("id",), "evt_" + "x" * 3000),
        "invalid_stripe_id",
    ),
    "lines.data an object": (lambda: _with_lines_data({"a": 1}), "malformed_field"),
    "lines.data a number": (lambda: _with_lines_data(7), "malformed_field"),
    "amount_paid 10^40": (lambda: invoice(amount_paid=10**40), "amount_out_of_range"),
    "total 10^40": (
        lambda: invoice(total=10**40, total_excluding_tax=10**40),
        "amount_out_of_range",
    ),
}


@pytest.mark.parametrize("case", ODD_INVOICES)
def test_signed_odd_event_is_never_answered_500(webhook: ModuleType, aws: Aws, case: str) -> None:
    # Given a genuine, signed invoice.paid of an odd shape
    build, _ = ODD_INVOICES[case]
    # When Stripe delivers it
    status, answer = deliver(webhook, build())
    # Then the bridge answers it (never 500: Stripe would retry it for three days), and
    # what it queues, if anything, is one message the matcher can read
    assert status in (200, 400), answer
    queued = aws.drain("PaymentEventsQueue")
    assert len(queued) == (1 if answer.get("status") == "accepted" else 0)


@pytest.mark.parametrize(
    "case",
    [
        "500 levels of nesting",
        "lone surrogate in a value",
        "lone surrogate in an email",
        "lone surrogate in a key",
        "noncharacter SQS refuses",
    ],
)
def test_signed_event_the_queue_cannot_carry_is_ignored_with_its_reason(
    webhook: ModuleType, aws: Aws, case: str
) -> None:
    build, reason = ODD_INVOICES[case]
    status, answer = deliver(webhook, build())
    assert (status, answer.get("status"), answer.get("reason")) == (200, "ignored", reason)
    assert aws.drain("PaymentEventsQueue") == []


def test_signed_event_whose_id_cannot_be_a_key_is_refused_at_the_door(
    webhook: ModuleType, aws: Aws
) -> None:
    build, _ = ODD_INVOICES["event id over the key limit"]
    status, answer = deliver(webhook, build())
    assert (status, answer.get("error")) == (400, "not_a_stripe_event")
    assert aws.drain("PaymentEventsQueue") == []


@pytest.mark.parametrize("case", ODD_INVOICES)
def test_matcher_ignores_an_odd_event_with_a_reason_instead_of_failing_it(
    pipeline: Pipeline, case: str
) -> None:
    # Given a click for the customer, so that a usable payment would be posted
    assert pipeline.post_clicks({"email": JENNY, "transaction_id": "ef_tx_jenny"})[0] == 201
    build, reason = ODD_INVOICES[case]
    # When an odd event reaches the matcher (an EventBridge delivery has no webhook
    # in front of it)
    failures, outcome = match(pipeline, build())
    # Then the record succeeds (no retries, no DLQ), nothing is posted, and the
    # outcome names why
    assert failures == []
    assert (outcome.get("status"), outcome.get("reason")) == ("ignored", reason)
    assert pipeline.jobs() == []


# ------------------------------------------------------------------ amounts, currencies


@pytest.mark.parametrize(
    ("currency", "reason"),
    [
        (None, "currency_missing"),
        ("", "currency_missing"),
        ("zz", "currency_invalid"),
        ("none", "currency_invalid"),
        ("usdollar", "currency_invalid"),
        (840, "currency_invalid"),
        ("\ud800sd", "invalid_unicode"),
    ],
)
def test_payment_without_a_valid_currency_is_ignored_not_posted(
    pipeline: Pipeline, currency: Any, reason: str
) -> None:
    # Given jenny's click
    assert pipeline.post_clicks({"email": JENNY, "transaction_id": "ef_tx_jenny"})[0] == 201
    # When her invoice is paid without a usable currency
    failures, outcome = match(pipeline, invoice(currency=currency))
    # Then no conversion is posted (Everflow would record a zero or NONE sale)
    assert failures == []
    assert (outcome.get("status"), outcome.get("reason")) == ("ignored", reason)
    assert pipeline.jobs() == []


def test_payment_without_a_currency_field_is_ignored_not_posted(pipeline: Pipeline) -> None:
    assert pipeline.post_clicks({"email": JENNY, "transaction_id": "ef_tx_jenny"})[0] == 201
    event = invoice()
    del event["data"]["object"]["currency"]
    failures, outcome = match(pipeline, event)
    assert failures == []
    assert (outcome.get("status"), outcome.get("reason")) == ("ignored", "currency_missing")
    assert pipeline.jobs() == []


@pytest.mark.parametrize("name", ["charge.succeeded", "checkout.session.completed.payment"])
def test_one_off_payment_without_currency_is_ignored(pipeline: Pipeline, name: str) -> None:
    event = stripe_event("legacy", name)
    if name == "charge.succeeded":  # a Charges API charge: no intent, no invoice
        event["data"]["object"].update(payment_intent=None, invoice=None)
    event["data"]["object"]["currency"] = None
    failures, outcome = match(pipeline, event)
    assert failures == []
    assert (outcome.get("status"), outcome.get("reason")) == ("ignored", "currency_missing")
    assert pipeline.jobs() == []


def test_refund_without_currency_is_ignored_not_forwarded(pipeline: Pipeline) -> None:
    event = stripe_event("basil", "charge.refunded")
    event["data"]["object"]["currency"] = None
    failures, outcome = match(pipeline, event)
    assert failures == []
    assert (outcome.get("status"), outcome.get("reason")) == ("ignored", "currency_missing")
    assert pipeline.jobs() == []


def test_valid_payment_is_still_posted_with_its_currency(pipeline: Pipeline) -> None:
    # The guard refuses only what is broken: a lowercase ISO code is what Stripe sends.
    assert pipeline.post_clicks({"email": JENNY, "transaction_id": "ef_tx_jenny"})[0] == 201
    failures, outcome = match(pipeline, invoice(currency="eur"))
    assert failures == [] and outcome["status"] == "job"
    [job] = pipeline.jobs()
    assert (job["amount"], job["currency"]) == ("49.00", "EUR")


# ------------------------------------------------------------------ click ids from Stripe

BAD_CLICK_IDS = {
    "3,000 characters": "a" * 3000,
    "129 characters": "a" * 129,
    "spaces inside": "ef tx jenny",
    "a URL": "https://evil.example/?x=1",
    "an ampersand": "ef_tx&amount=1000",
}


def _stored_click_ids(aws: Aws) -> list[str]:
    items = aws.dynamodb.scan(TableName="AttributionTable")["Items"]
    found = []
    for item in items:
        if "transaction_id" in item:
            found.append(item["transaction_id"]["S"])
        for click in item.get("clicks", {}).get("M", {}).values():
            found.append(click["M"]["transaction_id"]["S"])
    return found


@pytest.mark.parametrize("case", BAD_CLICK_IDS)
def test_click_id_in_customer_metadata_follows_the_clicks_rules(
    pipeline: Pipeline, aws: Aws, case: str
) -> None:
    # Given a Customer whose metadata carries a click id POST /clicks would refuse
    customer = stripe_event("basil", "customer.updated")
    customer["data"]["object"]["metadata"] = {"everflow_transaction_id": BAD_CLICK_IDS[case]}
    # When Stripe reports it, then her invoice is paid
    failures, outcome = match(pipeline, customer)
    assert failures == []
    assert (outcome.get("status"), outcome.get("reason")) == ("ignored", "invalid_click_id")
    failures, outcome = match(pipeline, invoice())
    # Then that id is neither stored, nor pinned, nor posted: the payment waits for a
    # real click
    assert failures == [] and outcome["status"] == "parked"
    assert pipeline.jobs() == []
    assert BAD_CLICK_IDS[case] not in _stored_click_ids(aws)


@pytest.mark.parametrize("case", BAD_CLICK_IDS)
def test_click_id_in_subscription_metadata_follows_the_clicks_rules(
    pipeline: Pipeline, aws: Aws, case: str
) -> None:
    event = invoice()
    event["data"]["object"]["parent"]["subscription_details"]["metadata"] = {
        "everflow_transaction_id": BAD_CLICK_IDS[case]
    }
    failures, outcome = match(pipeline, event)
    assert failures == [] and outcome["status"] == "parked"
    assert pipeline.jobs() == []
    assert BAD_CLICK_IDS[case] not in _stored_click_ids(aws)


@pytest.mark.parametrize("case", BAD_CLICK_IDS)
def test_checkout_client_reference_id_follows_the_clicks_rules(
    pipeline: Pipeline, aws: Aws, case: str
) -> None:
    session = stripe_event("basil", "checkout.session.completed")
    session["data"]["object"]["client_reference_id"] = BAD_CLICK_IDS[case]
    session["data"]["object"]["metadata"] = {}
    failures, _ = match(pipeline, session)
    assert failures == []
    failures, outcome = match(pipeline, invoice())
    assert failures == [] and outcome["status"] == "parked"
    assert BAD_CLICK_IDS[case] not in _stored_click_ids(aws)


def test_a_good_click_id_beside_a_bad_one_is_still_used(pipeline: Pipeline) -> None:
    session = stripe_event("basil", "checkout.session.completed")
    session["data"]["object"]["client_reference_id"] = "not a click id"
    session["data"]["object"]["metadata"] = {"everflow_transaction_id": "ef_tx_good"}
    match(pipeline, session)
    failures, outcome = match(pipeline, invoice())
    assert failures == [] and outcome["status"] == "job"
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_good"


# ------------------------------------------------------------------ POST /clicks


def _raw_clicks_request(pipeline: Pipeline, body: str) -> tuple[int, dict[str, Any]]:
    event = {
        "version": "2.0",
        "routeKey": "POST /clicks",
        "rawPath": "/clicks",
        "headers": {"content-type": "application/json", "authorization": "Bearer test-click-token"},
        "requestContext": {"http": {"method": "POST", "path": "/clicks"}},
        "body": body,
        "isBase64Encoded": False,
    }
    try:
        answer = pipeline.clicks.lambda_handler(event, LambdaContext())
    except Exception:
        return 500, {}
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (json.dumps({"email": "jenny\ud800@example.com", "transaction_id": "t1"}), 422, "email"),
        (json.dumps({"email": JENNY, "transaction_id": "t\ud800"}), 422, "transaction_id"),
        (json.dumps({"email": JENNY, "transaction_id": "t1", "\ud800": 1}), 422, "click"),
        (json.dumps({"email": JENNY, "transaction_id": "t1", "x" * 5000: 1}), 422, "click"),
        (
            json.dumps({"email": JENNY, "transaction_id": "t1", "occurred_at": "\ud800"}),
            422,
            "occurred_at",
        ),
        (json.dumps({"email": JENNY, "transaction_id": "t1", "offer_id": 10**40}), 422, "offer_id"),
        (
            json.dumps({"email": JENNY, "transaction_id": "t1", "occurred_at": 10**40}),
            422,
            "occurred_at",
        ),
        (
            json.dumps({"email": JENNY, "transaction_id": "t1", "occurred_at": 1e300}),
            422,
            "occurred_at",
        ),
        (json.dumps([nested(500)]), 422, "clicks[0].a"),
        ('{"email": "a@b.co", "transaction_id": "t1", "offer_id": 1' + "0" * 5000 + "}", 400, None),
        ('{"email": "jenny\ud800@example.com"}', 400, None),
    ],
)
def test_clicks_answers_odd_input_without_500_and_stores_nothing(
    pipeline: Pipeline, aws: Aws, body: str, status: int, field: str | None
) -> None:
    answered, answer = _raw_clicks_request(pipeline, body)
    assert (answered, answer.get("field")) == (status, field), answer
    assert _stored_click_ids(aws) == []


def test_click_field_error_echoes_no_unknown_field_name(pipeline: Pipeline) -> None:
    # An unknown field is named back only when it is a plain name (never 5,000 characters)
    status, answer = _raw_clicks_request(
        pipeline, json.dumps({"email": JENNY, "transaction_id": "t1", "colour": "red"})
    )
    assert (status, answer["field"]) == (422, "colour")
    status, answer = _raw_clicks_request(
        pipeline, json.dumps({"email": JENNY, "transaction_id": "t1", "x" * 5000: 1})
    )
    assert status == 422 and len(json.dumps(answer)) < 300


def test_absurd_times_are_not_carried_into_the_job(pipeline: Pipeline) -> None:
    # A paid_at no calendar holds is not a reason to lose the sale: the job carries the
    # event's own time instead.
    assert pipeline.post_clicks({"email": JENNY, "transaction_id": "ef_tx_jenny"})[0] == 201
    event = invoice()
    event["data"]["object"]["status_transitions"]["paid_at"] = 10**40
    failures, outcome = match(pipeline, event)
    assert failures == [] and outcome["status"] == "job"
    [job] = pipeline.jobs()
    assert job["occurred_at"] == event["created"]


def test_odd_events_leave_nothing_half_done(pipeline: Pipeline, aws: Aws) -> None:
    # Every odd invoice of this file, one after another, then a real one: the real one
    # is matched as if the odd ones had never come.
    assert pipeline.post_clicks({"email": JENNY, "transaction_id": "ef_tx_jenny"})[0] == 201
    for index, (build, _) in enumerate(ODD_INVOICES.values()):
        event = build()
        if isinstance(event.get("id"), str) and len(event["id"]) < 100:
            event["id"] = f"evt_odd_{index}"
        failures, _ = match(pipeline, event)
        assert failures == []
    assert pipeline.jobs() == []
    failures, outcome = match(pipeline, invoice())
    assert failures == [] and outcome["status"] == "job"


def test_an_eventbridge_event_without_an_id_is_ignored_not_failed(pipeline: Pipeline) -> None:
    # Given a Stripe event from the EventBridge intake that lost its id
    event = stripe_event("basil", "invoice.paid.first")
    del event["id"]
    envelope = {"source": "aws.partner/stripe.com/ed_test_61Q", "detail": event}
    # When the matcher receives it
    answer = pipeline.deliver(json.dumps(envelope))
    # Then the record does not fail into the DLQ, and no job is sent
    assert answer["batchItemFailures"] == []
    assert pipeline.jobs() == []
