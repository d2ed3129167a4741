"""The intake rules, with in-memory fakes of the secret and the queue."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from stripe_everflow.config import (
    QUEUE_MAX_MESSAGE_BYTES,
    SQS_MAX_MESSAGE_BYTES,
    WebhookSettings,
    parse_event_types,
)
from stripe_everflow.domain.emails import email_hash, redact_emails
from stripe_everflow.domain.errors import (
    BodyNotJsonError,
    NotStripeEventError,
    PayloadTooLargeError,
    QueueUnavailableError,
    SecretUnavailableError,
    SignatureMismatchError,
    UnknownAccountError,
)
from stripe_everflow.domain.secret import CachedSecret
from stripe_everflow.intake.webhook import WebhookRequest, accept_stripe_webhook
from tests.support import EU_SECRET, TEST_SECRET, body_of, bridge_secret, sign, stripe_event

NOW = 1_767_225_600


@dataclass
class RecordingSender:
    sent: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    fail: bool = False

    def send(self, body: str, attributes: dict[str, str]) -> str:
        if self.fail:
            raise QueueUnavailableError("SendMessage failed: EndpointConnectionError")
        self.sent.append((json.loads(body), attributes))
        return f"msg-{len(self.sent)}"


@dataclass
class SecretStore:
    """The secret as Secrets Manager would hold it, counting reads."""

    document: dict[str, Any] = field(default_factory=bridge_secret)
    reads: int = 0
    clock_value: float = 0.0

    def fetch(self) -> str:
        self.reads += 1
        return json.dumps(self.document)

    def cached(self, max_age: float = 300) -> CachedSecret:
        return CachedSecret(self.fetch, max_age=max_age, clock=lambda: self.clock_value)


SETTINGS = WebhookSettings(secret_name="bridge", payment_events_queue_url="https://queue")


def accept(
    body: bytes,
    header: str | None,
    *,
    account: str = "default",
    store: SecretStore | None = None,
    sender: RecordingSender | None = None,
    settings: WebhookSettings = SETTINGS,
    secret: CachedSecret | None = None,
) -> Any:
    store = store or SecretStore()
    return accept_stripe_webhook(
        WebhookRequest(account=account, body=body, signature_header=header),
        settings=settings,
        secret=secret or store.cached(),
        sender=sender if sender is not None else RecordingSender(),
        clock=lambda: NOW,
    )


def test_accepted_event_is_queued_with_its_account_and_envelope() -> None:
    # Given a genuine test-mode invoice.paid for the default account
    event = stripe_event("basil", "invoice.paid.first")
    body = body_of(event)
    sender = RecordingSender()
    # When it is delivered
    outcome = accept(body, sign(body, TEST_SECRET, NOW), sender=sender)
    # Then exactly one message carries the event as Stripe sent it
    assert (outcome.status, outcome.event_id, outcome.message_id) == (
        "accepted",
        event["id"],
        "msg-1",
    )
    [(message, attributes)] = sender.sent
    assert message == {
        "schema": "stripe-event/1",
        "source": "webhook",
        "account": "default",
        "received_at": NOW,
        "event": redact_emails(event, "test-email-hash-key"),
    }
    # and no email travels in it: each is a keyed hash the matcher can still match on
    assert "jenny.rosen@example.com" not in json.dumps(message)
    invoice = message["event"]["data"]["object"]
    assert invoice["customer_email"] == "emailhash:" + email_hash(
        "jenny.rosen@example.com", "test-email-hash-key"
    )
    assert attributes == {
        "event_id": event["id"],
        "event_type": "invoice.paid",
        "account": "default",
    }


def test_named_account_uses_its_own_secrets_and_mode() -> None:
    event = stripe_event("legacy", "invoice.paid.renewal") | {"livemode": True}
    body = body_of(event)
    sender = RecordingSender()
    outcome = accept(body, sign(body, EU_SECRET, NOW), account="eu-store", sender=sender)
    assert outcome.status == "accepted"
    assert sender.sent[0][0]["account"] == "eu-store"


def test_default_account_secret_does_not_open_another_account() -> None:
    body = body_of(stripe_event("basil", "invoice.paid.first") | {"livemode": True})
    with pytest.raises(SignatureMismatchError):
        accept(body, sign(body, TEST_SECRET, NOW), account="eu-store")


def test_event_of_the_other_mode_is_acknowledged_and_not_queued() -> None:
    body = body_of(stripe_event("basil", "invoice.paid.first") | {"livemode": True})
    sender = RecordingSender()
    outcome = accept(body, sign(body, TEST_SECRET, NOW), sender=sender)
    assert (outcome.status, outcome.reason) == ("ignored", "livemode_mismatch")
    assert sender.sent == []


def test_event_type_off_the_allow_list_is_acknowledged_and_not_queued() -> None:
    body = body_of(stripe_event("basil", "invoice.paid.first") | {"type": "invoice.upcoming"})
    sender = RecordingSender()
    outcome = accept(body, sign(body, TEST_SECRET, NOW), sender=sender)
    assert (outcome.status, outcome.reason) == ("ignored", "event_type_not_handled")
    assert sender.sent == []


def test_configured_allow_list_replaces_the_default() -> None:
    settings = WebhookSettings("bridge", "https://queue", parse_event_types("refund.created"))
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    outcome = accept(body, sign(body, TEST_SECRET, NOW), settings=settings)
    assert outcome.reason == "event_type_not_handled"


@pytest.mark.parametrize(
    "name",
    [
        "invoice.paid.first",
        "invoice.paid.renewal",
        "charge.succeeded",
        "checkout.session.completed",
        "charge.refunded",
        "refund.created",
        "charge.dispute.created",
        "charge.dispute.closed",
    ],
)
@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_every_event_the_pipeline_uses_is_accepted_by_default(shape: str, name: str) -> None:
    body = body_of(stripe_event(shape, name))
    assert accept(body, sign(body, TEST_SECRET, NOW)).status == "accepted"


def test_unknown_account_is_refused_without_queueing() -> None:
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    sender = RecordingSender()
    with pytest.raises(UnknownAccountError):
        accept(body, sign(body, TEST_SECRET, NOW), account="nobody", sender=sender)
    assert sender.sent == []


def test_malformed_account_name_is_refused_without_reading_the_secret() -> None:
    store = SecretStore()
    with pytest.raises(UnknownAccountError):
        accept(b"{}", "t=1,v1=00", account="../../etc", store=store)
    assert store.reads == 0


def test_body_over_the_limit_is_refused_before_anything_else() -> None:
    store = SecretStore()
    settings = WebhookSettings("bridge", "https://queue", max_body_bytes=1024)
    with pytest.raises(PayloadTooLargeError):
        accept(b"x" * 1025, None, store=store, settings=settings)
    assert store.reads == 0


def test_event_that_cannot_fit_one_queue_message_is_refused() -> None:
    # Given (with a body limit raised to the queue's) an event whose compact form
    # leaves no room for the envelope
    settings = WebhookSettings("bridge", "https://queue", max_body_bytes=QUEUE_MAX_MESSAGE_BYTES)
    event = stripe_event("basil", "invoice.paid.first")
    filler = QUEUE_MAX_MESSAGE_BYTES - len(json.dumps(event, separators=(",", ":"))) - 40
    event["data"]["object"]["description"] = "x" * filler
    body = json.dumps(event, separators=(",", ":")).encode()
    assert len(body) <= QUEUE_MAX_MESSAGE_BYTES
    sender = RecordingSender()
    # When / Then it is refused rather than failing at the queue
    with pytest.raises(PayloadTooLargeError, match="queue message"):
        accept(body, sign(body, TEST_SECRET, NOW), sender=sender, settings=settings)
    assert sender.sent == []


def test_a_body_at_the_limit_still_fits_once_its_emails_are_hashed() -> None:
    # Given a 256 KiB event full of short addresses (each hash is longer)
    event = stripe_event("basil", "invoice.paid.first")
    event["data"]["object"]["metadata"] = {f"k{n}": f"a{n}@b.co" for n in range(12100)}
    body = json.dumps(event, separators=(",", ":")).encode()
    assert SQS_MAX_MESSAGE_BYTES * 0.9 < len(body) <= SQS_MAX_MESSAGE_BYTES
    sender = RecordingSender()
    # When it is accepted, then the grown message was queued
    assert accept(body, sign(body, TEST_SECRET, NOW), sender=sender).status == "accepted"
    assert len(json.dumps(sender.sent[0][0]).encode()) > SQS_MAX_MESSAGE_BYTES


def test_signed_body_that_is_not_json_is_refused() -> None:
    body = b"<xml>not json</xml>"
    with pytest.raises(BodyNotJsonError):
        accept(body, sign(body, TEST_SECRET, NOW))


def test_deeply_nested_json_is_refused_not_crashed_on() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    settings = WebhookSettings("bridge", "https://queue", max_body_bytes=SQS_MAX_MESSAGE_BYTES)
    with pytest.raises(BodyNotJsonError):
        accept(body, sign(body, TEST_SECRET, NOW), settings=settings)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([1, 2], "not a JSON object"),
        ({"object": "customer", "id": "cus_1"}, "not a Stripe event"),
        ({"object": "v2.core.event", "id": "evt_1", "type": "v1.billing.meter"}, "thin events"),
        ({"object": "event", "id": "evt_1", "livemode": False, "data": {"object": {}}}, "no type"),
        ({"object": "event", "id": "nope", "type": "invoice.paid"}, "evt_ id"),
        ({"object": "event", "id": "evt_1", "type": "invoice.paid", "data": {}}, "livemode"),
        ({"object": "event", "id": "evt_1", "type": "invoice.paid", "livemode": False}, "data"),
    ],
)
def test_signed_json_that_is_not_a_stripe_event_is_refused(document: Any, reason: str) -> None:
    body = json.dumps(document).encode()
    with pytest.raises(NotStripeEventError, match=reason):
        accept(body, sign(body, TEST_SECRET, NOW))


def test_a_rolled_secret_is_picked_up_by_re_reading_the_secret() -> None:
    # Given the cached secret still holds only the old webhook secret
    store = SecretStore(
        document=bridge_secret(
            stripe_accounts={"default": {"livemode": False, "webhook_secrets": ["whsec_old"]}}
        )
    )
    cached = store.cached()
    cached.get()
    store.clock_value = 60  # a minute later the secret was rolled in Secrets Manager
    store.document = bridge_secret(
        stripe_accounts={
            "default": {"livemode": False, "webhook_secrets": ["whsec_new", "whsec_old"]}
        }
    )
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    # When Stripe signs with the new secret
    outcome = accept(body, sign(body, "whsec_new", NOW), secret=cached, store=store)
    # Then the secret is read again and the event accepted
    assert outcome.status == "accepted"
    assert store.reads == 2


def test_forged_requests_do_not_turn_into_secret_reads() -> None:
    store = SecretStore()
    cached = store.cached()
    cached.get()  # read at start-up
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    store.clock_value = 100
    for _ in range(20):
        with pytest.raises(SignatureMismatchError):
            accept(body, sign(body, "whsec_forged", NOW), secret=cached, store=store)
    # one initial read, one refresh; the rest within the 30 s refresh interval
    assert store.reads == 2


def test_queue_failure_surfaces_as_queue_unavailable() -> None:
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    with pytest.raises(QueueUnavailableError):
        accept(body, sign(body, TEST_SECRET, NOW), sender=RecordingSender(fail=True))


def test_unreadable_secret_surfaces_as_secret_unavailable() -> None:
    def broken() -> str:
        raise ConnectionError("secretsmanager down")

    body = body_of(stripe_event("basil", "invoice.paid.first"))
    with pytest.raises(SecretUnavailableError, match="ConnectionError"):
        accept(body, sign(body, TEST_SECRET, NOW), secret=CachedSecret(broken, max_age=300))


def test_emails_stay_plain_when_everflow_email_attribution_needs_them() -> None:
    settings = WebhookSettings("bridge", "https://queue", keep_plain_emails=True)
    event = stripe_event("basil", "invoice.paid.first")
    body = body_of(event)
    sender = RecordingSender()
    accept(body, sign(body, TEST_SECRET, NOW), sender=sender, settings=settings)
    assert sender.sent[0][0]["event"] == event


def test_missing_email_hash_key_answers_retryable_rather_than_leaking() -> None:
    store = SecretStore(document=bridge_secret(email_hash_key=None))
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    with pytest.raises(SecretUnavailableError, match="email_hash_key"):
        accept(body, sign(body, TEST_SECRET, NOW), store=store)


# ------------------------------------------------------------------ genuine but unusable


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "jenny.rosen@example.com"}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"metadata": _nested(500)}, "nesting_too_deep"),
        ({"metadata": _nested(40)}, "nesting_too_deep"),
        ({"description": "\ud800"}, "invalid_unicode"),
        ({"customer_email": "jenny\udfff@example.com"}, "invalid_unicode"),
        ({"metadata": {"\ud800": "x"}}, "invalid_unicode"),
        ({"description": "\uffff"}, "invalid_unicode"),
    ],
)
def test_genuine_event_the_queue_cannot_carry_is_ignored_with_its_reason(
    changes: dict[str, Any], reason: str
) -> None:
    # Given a signed invoice.paid holding what no queue message can carry
    event = stripe_event("basil", "invoice.paid.first")
    event["data"]["object"].update(changes)
    body = json.dumps(event).encode()  # compact; the escapes stay ASCII
    sender = RecordingSender()
    # When it is delivered
    outcome = accept(body, sign(body, TEST_SECRET, NOW), sender=sender)
    # Then it is acknowledged as ignored (no Stripe retries), and nothing is queued
    assert (outcome.status, outcome.reason) == ("ignored", reason)
    assert sender.sent == []


def test_genuine_event_of_ordinary_depth_and_text_is_queued() -> None:
    event = stripe_event("basil", "invoice.paid.first")
    event["data"]["object"]["metadata"] = _nested(20) | {"name": "Zoë 東京 🎉"}
    body = json.dumps(event, ensure_ascii=False).encode()
    sender = RecordingSender()
    assert accept(body, sign(body, TEST_SECRET, NOW), sender=sender).status == "accepted"
    assert len(sender.sent) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "evt_" + "x" * 3000},
        {"id": "evt_1#x"},
        {"type": "invoice paid"},
        {"type": "invoice." + "x" * 200},
        {"type": "\ud800.paid"},
    ],
)
def test_event_whose_id_or_type_cannot_be_a_key_is_not_a_stripe_event(
    changes: dict[str, Any],
) -> None:
    body = json.dumps(stripe_event("basil", "invoice.paid.first") | changes).encode()
    with pytest.raises(NotStripeEventError):
        accept(body, sign(body, TEST_SECRET, NOW))
