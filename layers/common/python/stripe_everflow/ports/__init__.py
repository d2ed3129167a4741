"""The interfaces stages depend on; adapters implement them, handlers wire them.

A stage (``intake``, ``clicks``, ``matching``, ``posting``) imports these Protocols
and the ``domain``, never an adapter: what it needs from AWS, Everflow or Stripe is
named here, with the value types that cross the boundary.

- ``MessageSender``, ``RetryScheduler`` (here): one queue; when a failed message of
  PostbackQueue comes back.
- ``ports.attribution``: AttributionTable and Stripe's API, as the matcher and the
  click stage use them.
- ``ports.everflow``: LedgerTable, the tracking domain, the Network API and the
  circuit breaker over Everflow, as the poster uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class MessageSender(Protocol):
    """One queue: PaymentEventsQueue, PostbackQueue or PostbackDLQ."""

    def send(self, body: str, attributes: dict[str, str]) -> str: ...


class RetryScheduler(Protocol):
    """The queue a batch came from: when each failed message is delivered again."""

    def change_visibility(self, delays: Sequence[tuple[str, int]]) -> int:
        """(receipt handle, seconds from now) per message; returns how many changed."""
        ...
