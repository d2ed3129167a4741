"""Messages on PaymentEventsQueue: what the intake promises the matcher.

Schema ``stripe-event/1`` (JSON)::

    {
      "schema": "stripe-event/1",
      "source": "webhook",            # the intake that accepted it
      "account": "default",           # the Stripe account the event belongs to
      "received_at": 1767225600,      # unix seconds when the bridge accepted it
      "replayed_at": 1767229200,      # only on a parked payment sent back for matching,
      "replay_id": "9f0c…",           #   with an id of its own (each pass is processed)
      "event": { ...the Stripe Event, every email replaced by "emailhash:<hmac>"... }
    }

Message attributes ``event_id``, ``event_type`` and ``account`` repeat those fields
so an operator can read a DLQ without parsing bodies.

One model, ``IncomingEvent``, writes (``to_json``) and reads (``from_json``) the
contract; the intake's ``PaymentEventMessage`` and a replay are written through it.
Versions: ``stripe-event/<major>[.<minor>]``; a minor version only adds optional
fields, so any ``stripe-event/1.N`` is read (unknown fields ignored); another major
is a ``MalformedMessageError``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from stripe_everflow.domain.emails import redact_emails_in_json

PAYMENT_EVENT_SCHEMA = "stripe-event/1"
_SCHEMA = re.compile(r"stripe-event/(\d+)(?:\.\d+)?")
_READ_MAJOR = "1"


@dataclass(frozen=True)
class StripeEventSummary:
    """The envelope fields of a Stripe Event that the intake looks at."""

    id: str
    type: str
    livemode: bool
    api_version: str | None
    created: int | None


@dataclass(frozen=True)
class PaymentEventMessage:
    account: str
    source: str
    received_at: int
    event: dict[str, Any]

    @property
    def event_id(self) -> str:
        return _event_id(self.event)

    @property
    def event_type(self) -> str:
        return str(self.event["type"])

    def to_json(self, email_key: str | None = None, event_text: str | None = None) -> str:
        """The message; with ``email_key``, every email address in the event hashed
        (see ``IncomingEvent.to_json``)."""
        incoming = IncomingEvent(self.account, self.source, self.event, self.received_at)
        return incoming.to_json(email_key, event_text)

    def attributes(self) -> dict[str, str]:
        return {"event_id": self.event_id, "event_type": self.event_type, "account": self.account}


class MalformedMessageError(ValueError):
    """A queue message the matcher cannot read; the record fails and ends in the DLQ."""


@dataclass(frozen=True)
class IncomingEvent:
    """A Stripe event as the matcher receives it, whatever the intake."""

    account: str
    source: str
    event: dict[str, Any]
    received_at: int | None = None
    replayed_at: int | None = None
    replay_id: str | None = None

    @property
    def event_id(self) -> str:
        return _event_id(self.event)

    def to_json(self, email_key: str | None = None, event_text: str | None = None) -> str:
        """The ``stripe-event/1`` message (``replayed_at``/``replay_id`` only on a replay).

        With ``email_key``, every email address in the event — value or key, wherever it
        stands — is hashed on the way (``redact_emails_in_json``: the same result as
        ``redact_emails`` on the event, at a tenth of its cost). ``event_text``: the
        event's compact JSON text, when the caller has it already
        (``stripe_events.event_json``)."""
        document: dict[str, Any] = {
            "schema": PAYMENT_EVENT_SCHEMA,
            "source": self.source,
            "account": self.account,
            "received_at": self.received_at,
        }
        if self.replayed_at is not None:
            document["replayed_at"] = self.replayed_at
        if self.replay_id is not None:
            document["replay_id"] = self.replay_id
        # the event goes last, as its own text: made once, hashed on the text
        envelope = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        if event_text is None:
            event_text = json.dumps(self.event, separators=(",", ":"), ensure_ascii=False)
        if email_key is not None:
            event_text = redact_emails_in_json(event_text, email_key)
        return f'{envelope[:-1]},"event":{event_text}}}'

    def replay(self, now: int) -> str:
        """The message that sends this event through the matcher again (a parked payment)."""
        return dataclasses.replace(self, replayed_at=now, replay_id=uuid.uuid4().hex).to_json()

    @classmethod
    def from_json(cls, body: str | bytes, *, eventbridge_account: str) -> IncomingEvent:
        """Read a PaymentEventsQueue message: the intake's ``stripe-event/1`` (any 1.N)
        or an Amazon EventBridge envelope from Stripe's event destination (event under
        ``detail``, for ``eventbridge_account``).

        Raises MalformedMessageError."""
        try:
            document = json.loads(body)
        except ValueError:
            raise MalformedMessageError("the message is not JSON") from None
        if not isinstance(document, dict):
            raise MalformedMessageError("the message is not a JSON object")
        schema = document.get("schema")
        if schema is not None:
            return cls._of_intake(document, schema)
        source = document.get("source")
        if (
            isinstance(source, str)
            and source.startswith("aws.partner/stripe.com")
            and isinstance(document.get("detail"), dict)
        ):
            return cls(account=eventbridge_account, source="eventbridge", event=document["detail"])
        raise MalformedMessageError(
            "neither a stripe-event/1 message nor a Stripe EventBridge event"
        )

    @classmethod
    def _of_intake(cls, document: dict[str, Any], schema: Any) -> IncomingEvent:
        version = _SCHEMA.fullmatch(schema) if isinstance(schema, str) else None
        if version is None or version.group(1) != _READ_MAJOR:
            raise MalformedMessageError(
                f"schema {schema!r} is not read here (only {PAYMENT_EVENT_SCHEMA})"
            )
        event, account = document.get("event"), document.get("account")
        if not isinstance(event, dict) or not isinstance(account, str):
            raise MalformedMessageError("stripe-event/1 message without event or account")
        source = document.get("source", "webhook")
        replay_id = document.get("replay_id")
        if not isinstance(source, str) or not (replay_id is None or isinstance(replay_id, str)):
            raise MalformedMessageError("stripe-event/1 message with a malformed source or replay")
        return cls(
            account=account,
            source=source,
            event=event,
            received_at=_seconds(document, "received_at"),
            replayed_at=_seconds(document, "replayed_at"),
            replay_id=replay_id,
        )


def _event_id(event: dict[str, Any]) -> str:
    """The Stripe event's id, or "" when it has none usable (the classifier then
    ignores the event as ``missing_stripe_id``: reading a message never fails on it)."""
    value = event.get("id")
    return value if isinstance(value, str) else ""


def _seconds(document: dict[str, Any], name: str) -> int | None:
    value = document.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise MalformedMessageError(f"stripe-event/1 message whose {name} is not unix seconds")


def read_incoming_event(body: str, *, eventbridge_account: str) -> IncomingEvent:
    """``IncomingEvent.from_json``. Raises MalformedMessageError."""
    return IncomingEvent.from_json(body, eventbridge_account=eventbridge_account)
