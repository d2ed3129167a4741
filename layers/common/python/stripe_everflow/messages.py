"""Messages on PaymentEventsQueue: what the intake promises the matcher.

Schema ``stripe-event/1`` (JSON)::

    {
      "schema": "stripe-event/1",
      "source": "webhook",            # or "eventbridge", "replay", "backfill", "parked"
      "account": "default",           # the Stripe account the event belongs to
      "received_at": 1767225600,      # unix seconds when the bridge accepted it
      "event": { ...the Stripe Event, exactly as Stripe sent it... }
    }

Message attributes ``event_id``, ``event_type`` and ``account`` repeat those fields
so an operator can read a DLQ without parsing bodies.
"""

from __future__ import annotations

import json
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
