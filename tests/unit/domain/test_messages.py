"""PaymentEventsQueue messages (schema stripe-event/1): what the intake writes, what a
replay writes, and what the matcher reads back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stripe_everflow.domain.messages import (
    IncomingEvent,
    MalformedMessageError,
    PaymentEventMessage,
    read_incoming_event,
)
from tests.support import stripe_event

EVENT = stripe_event("basil", "invoice.paid.first")


def read(body: str) -> IncomingEvent:
    return IncomingEvent.from_json(body, eventbridge_account="eu-store")


def test_the_intakes_message_reads_back_as_what_it_accepted() -> None:
    # Given the webhook accepted an event
    message = PaymentEventMessage(
        account="default", source="webhook", received_at=1767225600, event=EVENT
    )

    # When the matcher reads the message
    incoming = read_incoming_event(message.to_json(), eventbridge_account="eu-store")

    # Then it is that event, of that account, from that intake, at that time
    assert incoming == IncomingEvent("default", "webhook", EVENT, received_at=1767225600)
    assert incoming.event_id == message.event_id == EVENT["id"]
    assert json.loads(message.to_json()) == {
        "schema": "stripe-event/1",
        "source": "webhook",
        "account": "default",
        "received_at": 1767225600,
        "event": EVENT,
    }


def test_a_replay_reads_back_with_its_own_id_each_time() -> None:
    parked = IncomingEvent("default", "webhook", EVENT, received_at=1767225600)

    first, second = read(parked.replay(1767229200)), read(parked.replay(1767229200))

    assert (first.account, first.source, first.event) == ("default", "webhook", EVENT)
    assert (first.received_at, first.replayed_at) == (1767225600, 1767229200)
    assert first.replay_id and second.replay_id and first.replay_id != second.replay_id
    assert read(first.to_json()) == first


def test_a_newer_minor_version_with_more_fields_is_read() -> None:
    document = json.loads(PaymentEventMessage("default", "webhook", 1767225600, EVENT).to_json())
    document |= {"schema": "stripe-event/1.2", "trace_id": "abc"}

    assert read(json.dumps(document)) == IncomingEvent("default", "webhook", EVENT, 1767225600)


def test_an_eventbridge_envelope_is_read_as_the_configured_account() -> None:
    envelope = {"source": "aws.partner/stripe.com/ed_test_61Q", "detail-type": "x", "detail": EVENT}

    assert read(json.dumps(envelope)) == IncomingEvent("eu-store", "eventbridge", EVENT)


def message(**changes: Any) -> str:
    document = json.loads(PaymentEventMessage("default", "webhook", 1767225600, EVENT).to_json())
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"source": "aws.events", "detail": EVENT}), "neither a stripe-event/1"),
        (message(schema="stripe-event/2"), "'stripe-event/2' is not read here"),
        (message(schema="postback-job/1"), "'postback-job/1' is not read here"),
        (message(schema=1), "1 is not read here"),
        (message(event=None), "without event or account"),
        (message(account=7), "without event or account"),
        (message(received_at="yesterday"), "received_at is not unix seconds"),
        (message(replayed_at=1.5), "replayed_at is not unix seconds"),
        (message(replay_id=7), "malformed source or replay"),
    ],
)
def test_a_message_the_matcher_cannot_read_is_refused(body: str, problem: str) -> None:
    with pytest.raises(MalformedMessageError, match=problem):
        read(body)


@pytest.mark.parametrize("event_id", [None, 42, "missing"])
def test_an_event_without_a_string_id_reads_with_an_empty_id(event_id: object) -> None:
    # Given an EventBridge envelope whose Stripe event has no usable id
    event: dict[str, object] = {"object": "event", "type": "invoice.paid", "data": {}}
    if event_id != "missing":
        event["id"] = event_id
    body = json.dumps({"source": "aws.partner/stripe.com/ed_1", "detail": event})
    # When the matcher reads it
    incoming = IncomingEvent.from_json(body, eventbridge_account="default")
    # Then its id is empty (the classifier ignores it as missing_stripe_id), not an error
    assert incoming.event_id == ""
    message = PaymentEventMessage("default", "webhook", 0, dict(event))
    assert message.event_id == ""
