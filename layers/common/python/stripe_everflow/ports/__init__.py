"""The interfaces stages depend on; adapters implement them, handlers wire them.

A stage (``intake``, ``clicks``, ``matching``, ``posting``) imports these Protocols
and the ``domain``, never an adapter: what it needs from AWS, Everflow or Stripe is
named here, with the value types that cross the boundary.

- ``MessageSender`` (here): one queue.
- ``ports.attribution``: AttributionTable and Stripe's API, as the matcher and the
  click stage use them.
- ``ports.everflow``: LedgerTable, the tracking domain and the Network API, as the
  poster uses them.
"""

from __future__ import annotations

from typing import Protocol


class MessageSender(Protocol):
    """One queue: PaymentEventsQueue, PostbackQueue or PostbackDLQ."""

    def send(self, body: str, attributes: dict[str, str]) -> str: ...
