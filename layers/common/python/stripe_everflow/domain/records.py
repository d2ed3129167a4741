"""What the stages and AttributionTable agree on: item keys, pins, parked payments.

The key scheme is described in ``adapters.dynamodb.store``; stages build keys here
so they can prefetch and look items up without knowing the table.
"""

from __future__ import annotations

from dataclasses import dataclass

Key = tuple[str, str]


def email_key(email_hash: str) -> Key:
    return (f"email#{email_hash}", "clicks")


def pin_key(account: str, customer_id: str) -> Key:
    return (f"customer#{account}#{customer_id}", "pin")


def claim_key(account: str, name: str) -> Key:
    return (f"claim#{account}#{name}", "claim")


def link_key(account: str, payment_intent_id: str) -> Key:
    return (f"intent#{account}#{payment_intent_id}", "invoice")


def object_key(account: str, stripe_id: str) -> Key:
    return (f"object#{account}#{stripe_id}", "conversion")


def parked_email_pk(email_hash: str) -> str:
    return f"parked#email#{email_hash}"


def parked_customer_pk(account: str, customer_id: str) -> str:
    return f"parked#customer#{account}#{customer_id}"


@dataclass(frozen=True)
class Pin:
    transaction_id: str
    offer_id: str | None
    affiliate_id: str | None
    source: str
    pinned_at: int


@dataclass(frozen=True)
class ParkedPayment:
    pk: str
    sk: str
    message: str
