"""Which click a payment belongs to — the attribution rules, as pure functions.

Precedence for a payment, first hit wins:
1. the Stripe customer's pin (set at the first match, so a later email change keeps
   the partner);
2. a click id Stripe carries (Checkout ``client_reference_id``, metadata key);
3. the customer's email, within the attribution window, first- or last-touch;
4. Everflow's own email attribution (``oid``/``aid`` + email), if switched on;
5. otherwise the payment is parked until a click for that email arrives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Policy = Literal["first-touch", "last-touch"]
DAY = 86_400

# What a click id (Everflow's transaction_id) may be, wherever it comes from — POST
# /clicks or Stripe (client_reference_id, metadata): it becomes a DynamoDB attribute
# name, a pin and a postback query value.
TRANSACTION_ID_RULE = "1-128 letters, digits or . _ : ~ -"
_TRANSACTION_ID = re.compile(r"[A-Za-z0-9._:~-]{1,128}")


def read_transaction_id(value: Any) -> str | None:
    """The click id ``value`` holds (surrounding spaces trimmed), or None when it is
    not a string of TRANSACTION_ID_RULE. Never raises."""
    if not isinstance(value, str):
        return None
    candidate = value.strip()
    return candidate if _TRANSACTION_ID.fullmatch(candidate) else None


@dataclass(frozen=True)
class StoredClick:
    transaction_id: str
    occurred_at: int
    offer_id: str | None = None
    affiliate_id: str | None = None
    source: str = "api"

    def as_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "occurred_at": self.occurred_at,
            "source": self.source,
        }
        if self.offer_id:
            item["offer_id"] = self.offer_id
        if self.affiliate_id:
            item["affiliate_id"] = self.affiliate_id
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredClick:
        return cls(
            transaction_id=str(item["transaction_id"]),
            occurred_at=int(item["occurred_at"]),
            offer_id=str(item["offer_id"]) if item.get("offer_id") else None,
            affiliate_id=str(item["affiliate_id"]) if item.get("affiliate_id") else None,
            source=str(item.get("source", "api")),
        )


def choose_click(
    clicks: Iterable[StoredClick], *, paid_at: int, policy: Policy, window_days: int
) -> StoredClick | None:
    """The click an email's payment goes to, or None.

    Window: only clicks at most ``window_days`` before the payment count (0 = no
    limit). A click reported *after* the payment still counts — a payment can reach
    Stripe before the sign-up postback reaches us. First-touch takes the earliest
    click; last-touch the latest click not after the payment (or, if every click is
    later, the earliest of them). Ties break on the transaction id, so the choice is
    the same on every retry.
    """
    eligible = [
        click
        for click in clicks
        if window_days <= 0 or paid_at - click.occurred_at <= window_days * DAY
    ]
    if not eligible:
        return None
    ordered = sorted(eligible, key=lambda c: (c.occurred_at, c.transaction_id))
    if policy == "first-touch":
        return ordered[0]
    before = [c for c in ordered if c.occurred_at <= paid_at]
    return before[-1] if before else ordered[0]
