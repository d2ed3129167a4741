"""What the stages and AttributionTable agree on: item keys, pins, claims, parked
payments, and refunds and disputes waiting for their payment.

The key scheme is described in ``adapters.dynamodb.store``; stages build keys and
item contents here so they can prefetch, look items up and remember what they wrote
without knowing the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stripe_everflow.domain.attribution import StoredClick

Key = tuple[str, str]


def email_key(email_hash: str) -> Key:
    return (f"email#{email_hash}", "clicks")


def pin_key(account: str, customer_id: str) -> Key:
    return (f"customer#{account}#{customer_id}", "pin")


def claim_key(account: str, name: str) -> Key:
    return (f"claim#{account}#{name}", "claim")


def conversion_key(account: str, money_key: str) -> Key:
    """The claim on a payment's money: held by the event that first reported it."""
    return claim_key(account, f"conversion#{money_key}")


def first_conversion_key(account: str, customer_id: str) -> Key:
    """The claim on a customer's first conversion: held by that conversion's money key."""
    return claim_key(account, f"first-conversion#{customer_id}")


def link_key(account: str, payment_intent_id: str) -> Key:
    return (f"intent#{account}#{payment_intent_id}", "invoice")


def coupon_key(account: str, stripe_id: str) -> Key:
    """The code customers type for a promotion code (``promo_…``) or the promotion
    code of a discount (``di_…``; "" for none): Stripe never changes either."""
    return (f"coupon#{account}#{stripe_id}", "code")


def object_key(account: str, stripe_id: str) -> Key:
    return (f"object#{account}#{stripe_id}", "conversion")


def parked_email_pk(email_hash: str) -> str:
    return f"parked#email#{email_hash}"


def parked_customer_pk(account: str, customer_id: str) -> str:
    return f"parked#customer#{account}#{customer_id}"


def parked_marker_key(account: str, customer_id: str) -> Key:
    """Beside the customer's pin: present while payments may be parked for the customer,
    so the payment that pins it knows (in the same request) to release them."""
    return (f"customer#{account}#{customer_id}", "parked")


def waiting_pk(account: str) -> str:
    """The refunds and disputes of an account that wait for their payment."""
    return f"parked#undo#{account}"


def waiting_key(account: str, event_id: str) -> Key:
    return (waiting_pk(account), event_id)


def sweep_key(account: str) -> Key:
    """When the account's waiting refunds and disputes are next looked over for those
    whose wait has ended."""
    return (waiting_pk(account), "#sweep")


def everflow_miss_key(email_hash: str) -> Key:
    """Everflow answered that it knows no click for this email (until ``expires_at``):
    a burst of the customer's events asks it once."""
    return (f"everflow-miss#{email_hash}", "miss")


def sync_checkpoint_key(scope: str) -> Key:
    """Up to when Everflow's conversion report was read (``synced_until``), per offer
    or advertiser (``offer-<id>``, ``advertiser-<id>``, ``network``)."""
    return (f"everflow-sync#{scope}", "checkpoint")


def key_text(key: Key) -> str:
    return f"{key[0]}|{key[1]}"


def key_of(text: str) -> Key:
    pk, _, sk = text.rpartition("|")
    return (pk, sk)


@dataclass(frozen=True)
class Pin:
    transaction_id: str
    offer_id: str | None
    affiliate_id: str | None
    source: str
    pinned_at: int

    def as_item(self) -> dict[str, Any]:
        """The pin item's attributes (without its key)."""
        item: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "source": self.source,
            "pinned_at": self.pinned_at,
        }
        if self.offer_id:
            item["offer_id"] = self.offer_id
        if self.affiliate_id:
            item["affiliate_id"] = self.affiliate_id
        return item

    @classmethod
    def of(cls, click: StoredClick, pinned_at: int) -> Pin:
        return cls(
            click.transaction_id, click.offer_id, click.affiliate_id, click.source, pinned_at
        )

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Pin:
        return cls(
            transaction_id=str(item["transaction_id"]),
            offer_id=item.get("offer_id"),
            affiliate_id=item.get("affiliate_id"),
            source=str(item.get("source", "")),
            pinned_at=int(item.get("pinned_at", 0)),
        )


@dataclass(frozen=True)
class ConversionClaim:
    """A payment's money, claimed by the event that reports it (``owner``: event id).

    ``decision`` is what the owner decided before sending the job (``kind``, and the
    click ``target`` when there is one), so a retry sends the same job; ``job_key``
    is set once the job was sent: a later delivery of the event then does nothing.
    """

    key: Key
    owner: str
    claimed_at: int
    decision: Mapping[str, Any] = field(default_factory=dict)
    job_key: str | None = None
    # the owner's event type: a payment intent's claim, not decided yet, yields to its
    # Checkout Session
    source: str | None = None

    def as_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": self.key[0],
            "sk": self.key[1],
            "owner": self.owner,
            "claimed_at": self.claimed_at,
            **self.decision,
        }
        if self.source:
            item["source"] = self.source
        if self.job_key:
            item["job_key"] = self.job_key
        return item


@dataclass(frozen=True)
class ClaimAttempt:
    """What one attempt to take a conversion claim (with its customer's pin and first
    conversion, written together) found.

    ``won``: everything was written. Otherwise nothing was, and either the claim was
    refused (``claim`` holds it: another event's, or this event's finished one) or
    only the customer's records had changed since they were read: ``pin`` and
    ``first_conversion`` (a money key) hold what is now in force, to decide again.
    """

    won: bool
    claim: Mapping[str, Any] | None = None
    pin: Pin | None = None
    first_conversion: str | None = None
    # refused only because payments may be parked for the customer being pinned
    parked: bool = False
    # the refunds and disputes waiting on the claim when it was taken (a claim taken
    # alone: a parked payment's)
    waiting: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParkedPayment:
    pk: str
    sk: str
    message: str


def waiting_ids(item: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The event ids of the refunds and disputes waiting on an item (its ``waiting`` set)."""
    return tuple(sorted(str(i) for i in (item or {}).get("waiting") or ()))


@dataclass(frozen=True)
class Registration:
    """An item a refund or dispute waits on: one its payment writes when it is counted.

    ``claim``: the money's conversion claim (it fires when the claim's job is sent);
    ``object``: the link from a charge or intent to its conversion; ``link``: a basil
    intent's invoice (it fires when invoice_payment.paid is matched). ``placeholder``:
    the item holds nothing of a payment yet (it is created, with an expiry)."""

    key: Key
    kind: Literal["claim", "object", "link"]
    placeholder: bool = True


@dataclass(frozen=True)
class WaitingUndo:
    """A refund or dispute waiting for its payment (``waiting_key``): the queue message
    that replays it, the job it will send (as the ledger would keep it, for reports),
    when it gives up (then it is recorded not ours) and where it is registered."""

    account: str
    event_id: str
    message: str
    job: str
    waiting_since: int
    give_up_at: int
    registrations: tuple[Key, ...] = ()

    def as_item(self, expires_at: int) -> dict[str, Any]:
        pk, sk = waiting_key(self.account, self.event_id)
        return {
            "pk": pk,
            "sk": sk,
            "status": "waiting",
            "message": self.message,
            "job": self.job,
            "waiting_since": self.waiting_since,
            "give_up_at": self.give_up_at,
            "registrations": [key_text(k) for k in self.registrations],
            "expires_at": expires_at,
        }

    @classmethod
    def from_item(cls, account: str, item: Mapping[str, Any]) -> WaitingUndo:
        return cls(
            account=account,
            event_id=str(item["sk"]),
            message=str(item["message"]),
            job=str(item.get("job", "")),
            waiting_since=int(item.get("waiting_since", 0)),
            give_up_at=int(item.get("give_up_at", 0)),
            registrations=tuple(key_of(str(k)) for k in item.get("registrations") or ()),
        )


@dataclass(frozen=True)
class WaitAttempt:
    """What one attempt to register a waiting refund or dispute found: ``won`` (it
    waits), or the items whose payment was counted meanwhile (``refused``, by key)."""

    won: bool
    refused: Mapping[Key, Mapping[str, Any]] = field(default_factory=dict)
