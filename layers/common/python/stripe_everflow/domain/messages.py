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
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

PAYMENT_EVENT_SCHEMA = "stripe-event/1"


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
        return str(self.event["id"])

    @property
    def event_type(self) -> str:
        return str(self.event["type"])

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": PAYMENT_EVENT_SCHEMA,
                "source": self.source,
                "account": self.account,
                "received_at": self.received_at,
                "event": self.event,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

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
        return str(self.event["id"])

    def replay(self, now: int) -> str:
        """The message that sends this event through the matcher again (a parked payment)."""
        return json.dumps(
            {
                "schema": PAYMENT_EVENT_SCHEMA,
                "source": self.source,
                "account": self.account,
                "received_at": self.received_at,
                "replayed_at": now,
                "replay_id": uuid.uuid4().hex,
                "event": self.event,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )


def read_incoming_event(body: str, *, eventbridge_account: str) -> IncomingEvent:
    """Read a PaymentEventsQueue message: the intake's ``stripe-event/1`` or an Amazon
    EventBridge envelope from Stripe's event destination (event under ``detail``).

    Raises MalformedMessageError.
    """
    try:
        document = json.loads(body)
    except ValueError:
        raise MalformedMessageError("the message is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessageError("the message is not a JSON object")
    if document.get("schema") == PAYMENT_EVENT_SCHEMA:
        event, account = document.get("event"), document.get("account")
        if not isinstance(event, dict) or not isinstance(account, str):
            raise MalformedMessageError("stripe-event/1 message without event or account")
        return IncomingEvent(
            account=account,
            source=str(document.get("source", "webhook")),
            event=event,
            received_at=document.get("received_at"),
            replayed_at=document.get("replayed_at"),
            replay_id=document.get("replay_id"),
        )
    source = document.get("source")
    if (
        isinstance(source, str)
        and source.startswith("aws.partner/stripe.com")
        and isinstance(document.get("detail"), dict)
    ):
        return IncomingEvent(
            account=eventbridge_account, source="eventbridge", event=document["detail"]
        )
    raise MalformedMessageError("neither a stripe-event/1 message nor a Stripe EventBridge event")
