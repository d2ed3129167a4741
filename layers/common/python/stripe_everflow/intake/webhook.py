"""The webhook intake rules: what is accepted, ignored or refused, and when it is queued.

Order of checks (each refusal queues nothing):
size → account → signature (every active secret) → JSON → Stripe event → livemode →
allow-list → shape (what the queue can carry) → send to PaymentEventsQueue. Only a
completed send is "accepted".

A genuine event the queue cannot carry (nested beyond any Stripe object, or holding
text with no UTF-8 form) is acknowledged as "ignored" with its reason: answering 4xx
or 5xx to a signed event only makes Stripe send it again for three days.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from stripe_everflow.config import QUEUE_MAX_MESSAGE_BYTES, WebhookSettings
from stripe_everflow.domain.errors import (
    BodyNotJsonError,
    PayloadTooLargeError,
    SecretUnavailableError,
    SignatureMismatchError,
    UnknownAccountError,
)
from stripe_everflow.domain.messages import PaymentEventMessage
from stripe_everflow.domain.secret import ACCOUNT_NAME_PATTERN, CachedSecret, StripeAccount
from stripe_everflow.domain.stripe_events import event_json, read_event_summary
from stripe_everflow.intake.signature import verify_signature
from stripe_everflow.ports import MessageSender


@dataclass(frozen=True)
class WebhookRequest:
    account: str
    body: bytes
    signature_header: str | None


@dataclass(frozen=True)
class IntakeOutcome:
    status: Literal["accepted", "ignored"]
    event_id: str
    event_type: str
    reason: str | None = None
    message_id: str | None = None


def _email_hash_key(secret: CachedSecret) -> str:
    key = secret.get().email_hash_key
    if not key:
        raise SecretUnavailableError("email_hash_key is missing from the bridge secret")
    return key


def _find_account(secret: CachedSecret, name: str) -> StripeAccount:
    account = secret.get().account(name) if ACCOUNT_NAME_PATTERN.match(name) else None
    if account is None:
        raise UnknownAccountError(f"no Stripe account named {name!r} is configured")
    return account


def _verify(
    request: WebhookRequest,
    account: StripeAccount,
    secret: CachedSecret,
    settings: WebhookSettings,
    now: float,
) -> None:
    try:
        verify_signature(
            request.body,
            request.signature_header,
            account.webhook_secrets,
            now=now,
            tolerance=settings.signature_tolerance_seconds,
        )
    except SignatureMismatchError:
        # A secret rolled in the Dashboard since our cached read looks exactly like a
        # forged request: read the secret again (rate-limited) before refusing.
        if not secret.refresh():
            raise
        verify_signature(
            request.body,
            request.signature_header,
            _find_account(secret, request.account).webhook_secrets,
            now=now,
            tolerance=settings.signature_tolerance_seconds,
        )


def accept_stripe_webhook(
    request: WebhookRequest,
    *,
    settings: WebhookSettings,
    secret: CachedSecret,
    sender: MessageSender,
    clock: Callable[[], float] = time.time,
) -> IntakeOutcome:
    """Verify one webhook delivery and queue it for the matcher.

    Returns "accepted" only after the message was sent, or "ignored" (with a reason)
    for genuine events the bridge does not act on. Raises a WebhookRejectedError
    subclass for a request to refuse (never retried by us; Stripe may resend),
    SecretUnavailableError or QueueUnavailableError when the bridge itself failed
    (the caller answers 503 so Stripe retries).
    """
    if len(request.body) > settings.max_body_bytes:
        raise PayloadTooLargeError(f"the body is over {settings.max_body_bytes} bytes")
    account = _find_account(secret, request.account)
    now = clock()
    _verify(request, account, secret, settings, now)
    try:
        event = json.loads(request.body)
    except (ValueError, RecursionError):
        raise BodyNotJsonError("the body is not valid JSON") from None
    return queue_event(event, account, settings=settings, secret=secret, sender=sender, now=now)


def queue_event(
    event: Any,
    account: StripeAccount,
    *,
    settings: WebhookSettings,
    secret: CachedSecret,
    sender: MessageSender,
    now: float,
    source: str = "webhook",
) -> IntakeOutcome:
    """The checks after the signature — livemode, allow-list, shape — then the send
    to PaymentEventsQueue. Also the path of events the operator replays (``source``
    ``replay``), which carry no signature. Raises StripeEventError (through
    ``read_event_summary``) for a body that is not a Stripe event."""
    summary = read_event_summary(event)  # a JSON object from here on
    if summary.livemode != account.livemode:
        return IntakeOutcome("ignored", summary.id, summary.type, reason="livemode_mismatch")
    if not settings.allows(summary.type):
        return IntakeOutcome("ignored", summary.id, summary.type, reason="event_type_not_handled")
    problem, text = event_json(event)
    if problem:
        return IntakeOutcome("ignored", summary.id, summary.type, reason=problem)
    message = PaymentEventMessage(
        account=account.name, source=source, received_at=int(now), event=event
    )
    email_key = None if settings.keep_plain_emails else _email_hash_key(secret)
    body = message.to_json(email_key, text)
    if len(body.encode("utf-8")) > QUEUE_MAX_MESSAGE_BYTES:
        raise PayloadTooLargeError("the event does not fit in one queue message")
    message_id = sender.send(body, message.attributes())
    return IntakeOutcome("accepted", summary.id, summary.type, message_id=message_id)
