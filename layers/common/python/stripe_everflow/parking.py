"""Parked payments going back to matching: the one use case two stages share.

The matcher parks a payment it cannot attribute yet; whatever later makes it
attributable (a click through ``POST /clicks``, a click id carried by a later
Stripe event) replays what was parked for that email or customer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stripe_everflow.domain.messages import read_incoming_event
from stripe_everflow.ports import MessageSender
from stripe_everflow.ports.attribution import AttributionStore


def replay_parked(
    store: AttributionStore, payment_events: MessageSender, pks: Iterable[str], now: int
) -> int:
    """Send every payment parked under ``pks`` back to PaymentEventsQueue (once per
    event, though it may be parked under both its email and its customer), then
    forget those copies; returns how many payments went back.

    A crash between the send and the delete replays it again later: harmless, the
    conversion claim makes the second pass send the same job, which the ledger
    posts once.
    """
    by_event: dict[str, list[Any]] = {}
    for pk in pks:
        for parked in store.parked(pk):
            by_event.setdefault(parked.sk, []).append(parked)
    for copies in by_event.values():
        incoming = read_incoming_event(copies[0].message, eventbridge_account="default")
        payment_events.send(
            incoming.replay(now),
            {
                "event_id": incoming.event_id,
                "event_type": str(incoming.event.get("type")),
                "account": incoming.account,
            },
        )
        for parked in copies:
            store.unpark(parked)
    return len(by_event)
