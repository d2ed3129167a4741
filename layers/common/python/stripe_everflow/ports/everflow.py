"""LedgerTable, the tracking domain, the Network API and the circuit breaker over
Everflow, as the poster uses them; and Everflow's conversion reports, as the click
source (``clicks.everflow_source``) reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from stripe_everflow.domain.jobs import PostbackJob
from stripe_everflow.domain.ledger import Begin, LedgerEntry
from stripe_everflow.domain.postback import PostbackResult, RecordedConversion
from stripe_everflow.domain.undo import EverflowAmounts


class Ledger(Protocol):
    """LedgerTable: one entry per job, moved through states by conditional writes."""

    def get(self, job_key: str) -> LedgerEntry | None: ...
    def begin(self, job: PostbackJob, attempt_id: str, now: int, lease_seconds: int) -> Begin: ...
    def finish(
        self, job_key: str, attempt_id: str, status: str, now: int, facts: Mapping[str, Any]
    ) -> None: ...
    def release(
        self,
        job_key: str,
        attempt_id: str,
        now: int,
        facts: Mapping[str, Any],
        maybe_sent: bool | None = None,
    ) -> None: ...
    def annotate(self, job_key: str, facts: Mapping[str, Any]) -> None: ...
    def raise_refunded(self, conversion_key: str, refunded_minor: int) -> bool: ...
    def advance_refund_state(
        self, conversion_key: str, at: int, refunded_minor: int, charge_minor: int
    ) -> bool: ...


class PostbackClient(Protocol):
    """The tracking domain: sends a postback, says what the answer means.

    A network failure is a ``retryable`` result whose ``error`` starts with
    "not sent: " only when the request never left (refused or timed-out connection,
    TLS refused, a failed send); any other failure may hide a recorded conversion.
    """

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
    def conversion_amounts(self, api_key: str, conversion_id: str) -> EverflowAmounts: ...
    def set_payout_revenue(
        self, api_key: str, conversion_id: str, payout: str, revenue: str, is_event: bool
    ) -> None: ...


class RateLimiter(Protocol):
    """The Network API budget shared by every worker."""

    def acquire(self) -> None: ...


# closed: call Everflow; probe: this batch may try one call after a cool-down; open: don't.
Admission = Literal["closed", "probe", "open"]


class CircuitBreaker(Protocol):
    """Whether to call Everflow at all, shared by every worker: it opens after a run
    of failed calls, and after a cool-down lets one probe through; the probe's success
    closes it."""

    def admit(self, now: int) -> Admission: ...
    def record(self, now: int, answered: int, failed: int) -> None:
        """What the calls of the batch ``admit`` let through came to: Everflow
        ``answered`` some (a success, even a refusal), or ``failed`` (429, 5xx, no
        answer). Neither, after a probe: the probe is given back."""


@dataclass(frozen=True)
class ReportedConversion:
    """One row of Everflow's conversion reports, as the click source reads it: a base
    conversion (``is_event`` false) is the click a customer converted through; and as
    ``reconcile`` reads it: the ``order_id`` and ``sale_amount`` it was recorded with."""

    conversion_id: str
    transaction_id: str | None
    email: str | None
    is_event: bool
    converted_at: int
    clicked_at: int | None
    offer_id: str | None
    affiliate_id: str | None
    advertiser_id: str | None
    status: str | None
    order_id: str | None = None
    sale_amount: Decimal | None = None


class ConversionReports(Protocol):
    """Everflow's conversion reports (Network API; needs the API key). Both raise
    EverflowUnavailableError (no answer, 429, 5xx) or EverflowApiError (any other
    refusal, an unreadable answer)."""

    def conversions_by_email(
        self, api_key: str, email: str, since: int, until: int
    ) -> list[ReportedConversion]:
        """POST reporting/conversions/email: the email's conversions and events
        between ``since`` and ``until`` (unix seconds)."""
        ...

    def conversion_page(
        self,
        api_key: str,
        since: int,
        until: int,
        *,
        page: int,
        page_size: int,
        offer_id: str | None = None,
        advertiser_id: str | None = None,
        events: bool = False,
    ) -> tuple[list[ReportedConversion], int]:
        """POST reporting/conversions?page=&page_size=: one page of the base
        conversions between ``since`` and ``until`` (of the offer or advertiser; with
        ``events``, the post-conversion events too), and how many there are in all."""
        ...
