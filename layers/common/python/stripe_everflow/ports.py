"""The interfaces stages depend on; adapters implement them, handlers wire them.

A stage (``intake``, ``clicks``, ``matching``, ``posting``) imports these Protocols
and the ``domain``, never an adapter: what it needs from AWS, Everflow or Stripe is
named here, with the value types that cross the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stripe_everflow.domain.attribution import StoredClick
from stripe_everflow.domain.ledger import Begin, LedgerEntry
from stripe_everflow.domain.postback import PostbackResult, RecordedConversion
from stripe_everflow.domain.records import Key, ParkedPayment, Pin


class MessageSender(Protocol):
    """One queue: PaymentEventsQueue, PostbackQueue or PostbackDLQ."""

    def send(self, body: str, attributes: dict[str, str]) -> str: ...


class AttributionStore(Protocol):
    """AttributionTable: clicks, pins, claims, links, parked payments."""

    def get_many(self, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]: ...
    def get(self, key: Key, *, consistent: bool = False) -> dict[str, Any] | None: ...
    def put_click(self, email_hash: str, click: StoredClick) -> bool: ...
    def clicks_of(self, item: dict[str, Any] | None) -> list[StoredClick]: ...
    def pin_customer(self, account: str, customer_id: str, click: StoredClick, now: int) -> Pin: ...
    def pin_of(self, item: dict[str, Any]) -> Pin: ...
    def claim(self, key: Key, owner: str, details: dict[str, Any] | None = None) -> bool: ...
    def release_claim(self, key: Key, owner: str) -> None: ...
    def record_job(self, key: Key, job_key: str) -> None: ...
    def link_objects(self, account: str, stripe_ids: Iterable[str], job_key: str) -> None: ...
    def put_link(self, account: str, payment_intent_id: str, invoice_id: str) -> None: ...
    def park(self, pk: str, event_id: str, message: str, expires_at: int) -> None: ...
    def parked(self, pk: str) -> list[ParkedPayment]: ...
    def unpark(self, parked: ParkedPayment) -> None: ...


class Ledger(Protocol):
    """LedgerTable: one entry per job, moved through states by conditional writes."""

    def get(self, job_key: str) -> LedgerEntry | None: ...
    def begin(
        self, job: Mapping[str, Any], attempt_id: str, now: int, lease_seconds: int
    ) -> Begin: ...
    def finish(
        self, job_key: str, attempt_id: str, status: str, now: int, facts: Mapping[str, Any]
    ) -> None: ...
    def release(
        self,
        job_key: str,
        attempt_id: str,
        now: int,
        facts: Mapping[str, Any],
        maybe_sent: bool = False,
    ) -> None: ...
    def annotate(self, job_key: str, facts: Mapping[str, Any]) -> None: ...
    def raise_refunded(self, conversion_key: str, refunded_minor: int) -> bool: ...


class PostbackClient(Protocol):
    """The tracking domain: sends a postback, says what the answer means."""

    def get(
        self, base_url: str, params: Sequence[tuple[str, str]], path: str = "/"
    ) -> tuple[str, PostbackResult]: ...


class NetworkApi(Protocol):
    """Everflow's Network API (needs the advertiser's API key)."""

    def events_of_transaction(
        self, api_key: str, transaction_id: str
    ) -> list[RecordedConversion]: ...
    def set_sale_amount(
        self, api_key: str, conversion_id: str, amount: str, is_event: bool
    ) -> None: ...
    def set_status(self, api_key: str, conversion_ids: list[str], status: str) -> None: ...


class RateLimiter(Protocol):
    """The Network API budget shared by every worker."""

    def acquire(self) -> None: ...


@dataclass(frozen=True)
class CustomerFacts:
    email: str | None
    metadata: Mapping[str, str]
    deleted: bool = False


class StripeReader(Protocol):
    """Stripe's API, read with an account's restricted key."""

    def customer(self, api_key: str, customer_id: str) -> CustomerFacts: ...
    def invoice_of_payment_intent(self, api_key: str, payment_intent_id: str) -> str | None: ...
    def checkout_session_of_payment_intent(
        self, api_key: str, payment_intent_id: str
    ) -> str | None: ...
