"""AttributionTable and Stripe's API, as the matcher and the click stage use them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stripe_everflow.domain.attribution import Policy, StoredClick
from stripe_everflow.domain.records import (
    ClaimAttempt,
    ConversionClaim,
    Key,
    ParkedPayment,
    Pin,
    Registration,
    WaitAttempt,
    WaitingUndo,
)


class AttributionStore(Protocol):
    """AttributionTable: clicks, pins, claims, links, parked payments, and refunds and
    disputes waiting for their payment."""

    def get_many(
        self, keys: Iterable[Key], *, consistent: bool = False
    ) -> dict[Key, dict[str, Any]]: ...
    def get(self, key: Key, *, consistent: bool = False) -> dict[str, Any] | None: ...
    def put_click(self, email_hash: str, click: StoredClick) -> bool: ...
    def clicks_of(self, item: dict[str, Any] | None) -> list[StoredClick]: ...
    def pin_customer(self, account: str, customer_id: str, click: StoredClick, now: int) -> Pin: ...
    def pin_of(self, item: dict[str, Any]) -> Pin: ...
    def claim_conversion(
        self,
        claim: ConversionClaim,
        *,
        pin: tuple[Key, Pin] | None = None,
        first_conversion: tuple[Key, str] | None = None,
        parked_marker: Key | None = None,
        takes_over: str | None = None,
    ) -> ClaimAttempt: ...
    def record_conversion(
        self, claim: ConversionClaim, links: Iterable[Key]
    ) -> tuple[str, ...]: ...
    def put_link(
        self, account: str, payment_intent_id: str, invoice_id: str
    ) -> tuple[str, ...]: ...
    def park(
        self,
        pks: Iterable[str],
        event_id: str,
        message: str,
        expires_at: int,
        markers: Iterable[Key] = (),
    ) -> None: ...
    def parked(self, pk: str) -> list[ParkedPayment]: ...
    def unpark(self, parked: ParkedPayment) -> None: ...
    def wait_for_payment(
        self, waiting: WaitingUndo, registrations: Sequence[Registration], expires_at: int
    ) -> WaitAttempt: ...
    def waiting_undo(self, account: str, event_id: str) -> WaitingUndo | None: ...
    def settle_waiting(self, key: Key, event_ids: Iterable[str]) -> None: ...
    def forget_waiting(self, waiting: WaitingUndo) -> None: ...
    def extend_waiting(
        self, account: str, event_ids: Iterable[str], give_up_at: int, expires_at: int
    ) -> None: ...
    def note_waiting(self, account: str, give_up_at: int, now: int) -> None: ...
    def take_sweep(
        self, account: str, seen: Mapping[str, Any], next_sweep: int
    ) -> dict[str, Any] | None: ...
    def waiting_of(self, account: str) -> list[WaitingUndo]: ...
    def end_sweep(self, account: str, taken: Mapping[str, Any]) -> None: ...
    def put_coupon_code(self, key: Key, code: str) -> None: ...
    def note_everflow_miss(self, email_hash: str, until: int) -> None: ...
    def advance_checkpoint(self, key: Key, seen: int | None, synced_until: int) -> bool: ...


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
    def promotion_code(self, api_key: str, promotion_code_id: str) -> str: ...
    def invoice_promotion_codes(
        self, api_key: str, invoice_id: str
    ) -> dict[str, tuple[str | None, str | None]]: ...


class ClickLookup(Protocol):
    """A source asked for an email's click when none is stored (Everflow's
    conversions of the email: ``clicks.everflow_source.EverflowLookup``)."""

    def find(
        self,
        api_key: str,
        email: str,
        email_hash: str,
        *,
        paid_at: int,
        policy: Policy,
        window_days: int,
        known: Sequence[StoredClick] = (),
    ) -> StoredClick | None:
        """The click the payment goes to, stored; or None, the miss remembered.
        Raises when the source could not answer (the record is retried)."""
        ...
