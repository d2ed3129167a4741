"""Everflow as a click source: the clicks Everflow already knows by email.

An advertiser who follows Everflow's own Stripe guide sends the customer's email with
the initial conversion (``&email=`` on the postback, ``email`` in ``EF.conversion``),
so Everflow knows email → click. Two ways read it back, both through the Network API
(the advertiser's API key; every call takes its slot of the shared budget in the
adapter):

* ``EverflowLookup`` — on a miss (the matcher has the email of a payment but no
  stored click for it), ``POST /v1/networks/reporting/conversions/email`` for the
  attribution window before the payment (at most the 365 days Everflow reports);
  its base conversions on the configured offer (or advertiser) become stored clicks
  (``source`` ``everflow``, keyed by the email's hash), so the next payment costs no
  call, and the attribution policy picks the payment's among them. When Everflow
  answers that it knows none, that is remembered ``miss_seconds`` (a burst of one
  customer's events asks once) and the payment is parked. Any failure (no answer,
  429, 5xx, a refusal, the budget exhausted) raises: the record fails and SQS
  delivers it again later; nothing is parked on a guess.
  (developers.everflow.io/api-reference/post-networksreportingconversionsbyemail)
* ``EverflowSync`` — on a schedule, ``POST /v1/networks/reporting/conversions``
  (``?page=&page_size=``, base conversions of the offer or advertiser) from the last
  checkpoint, read again ``overlap_seconds`` before it (conversions recorded late);
  every conversion carrying an email is stored as a click (``put_click``: a click
  already known changes nothing), then the payments parked for the emails that got
  a new click are replayed. The checkpoint moves only after the whole window was
  read; a window with more rows than one run takes is halved and the rest waits
  for the next run.
  (developers.everflow.io/api-reference/post-networksreportingconversions,
  developers.everflow.io/docs/network/reporting/raw_conversions)

A conversion counts as a click when it is a base conversion (``is_event`` false: an
event is a later step of the same click), has a transaction id of the form click ids
take, is not ``rejected`` or ``invalid``, and belongs to the configured offer (else
the configured advertiser; else any). Its time is the click's
(``click_unix_timestamp``, else the conversion's), as for clicks posted to
``POST /clicks``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stripe_everflow.domain.attribution import (
    DAY,
    Policy,
    StoredClick,
    choose_click,
    read_transaction_id,
)
from stripe_everflow.domain.emails import REDACTED_PREFIX, try_email_hash
from stripe_everflow.domain.records import parked_email_pk, sync_checkpoint_key
from stripe_everflow.parking import replay_parked
from stripe_everflow.ports import MessageSender
from stripe_everflow.ports.attribution import AttributionStore
from stripe_everflow.ports.everflow import ConversionReports, ReportedConversion

SOURCE = "everflow"
# Everflow's conversion reports cover the prior 365 days, at most a year per request.
MAX_LOOKBACK_SECONDS = 365 * DAY - 3600
NOT_CLICKS = frozenset({"rejected", "invalid"})


def click_of(
    row: ReportedConversion, *, offer_id: str | None, advertiser_id: str | None
) -> StoredClick | None:
    """The click a report row stands for, or None when it is not one (see above)."""
    transaction_id = read_transaction_id(row.transaction_id)
    if row.is_event or transaction_id is None or (row.status or "").lower() in NOT_CLICKS:
        return None
    if offer_id and row.offer_id != offer_id:
        return None
    if not offer_id and advertiser_id and row.advertiser_id != advertiser_id:
        return None
    return StoredClick(
        transaction_id=transaction_id,
        occurred_at=row.clicked_at or row.converted_at,
        offer_id=row.offer_id,
        affiliate_id=row.affiliate_id,
        source=SOURCE,
    )


def plain_email(email: str | None) -> str | None:
    """The address to ask Everflow about: None for a missing or hashed one."""
    if not email or email.startswith(REDACTED_PREFIX) or "@" not in email:
        return None
    return email.strip().lower()


@dataclass
class EverflowLookup:
    """The lookup on a miss (see the module)."""

    reports: ConversionReports
    store: AttributionStore
    offer_id: str | None = None
    advertiser_id: str | None = None
    miss_seconds: int = 300
    clock: Callable[[], float] = time.time
    calls: int = 0

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
        """The click Everflow knows for the email that the payment goes to (with the
        ``known`` clicks, by the policy and window), or None after noting the miss.
        Every click Everflow reported is stored. Raises EverflowApiError (its
        EverflowUnavailableError for no answer, 429, 5xx): the caller retries."""
        now = int(self.clock())
        until = max(now, paid_at)
        lookback = window_days * DAY if window_days > 0 else MAX_LOOKBACK_SECONDS
        since = max(paid_at - lookback, until - MAX_LOOKBACK_SECONDS)
        self.calls += 1
        rows = self.reports.conversions_by_email(api_key, email, since, until)
        clicks = self._clicks(rows)
        for click in clicks:
            self.store.put_click(email_hash, click)
        chosen = choose_click(
            [*known, *clicks], paid_at=paid_at, policy=policy, window_days=window_days
        )
        if chosen is None:
            self.store.note_everflow_miss(email_hash, now + self.miss_seconds)
        return chosen

    def _clicks(self, rows: Iterable[ReportedConversion]) -> list[StoredClick]:
        found: dict[str, StoredClick] = {}
        for row in rows:
            click = click_of(row, offer_id=self.offer_id, advertiser_id=self.advertiser_id)
            if click is not None:
                found.setdefault(click.transaction_id, click)
        return list(found.values())


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync run did; logged and counted."""

    status: str  # synced | skipped
    reason: str | None = None
    since: int | None = None
    until: int | None = None
    pages: int = 0
    conversions: int = 0
    registered: int = 0
    replayed: int = 0
    checkpoint_moved: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class EverflowSync:
    """The scheduled sync (see the module)."""

    reports: ConversionReports
    store: AttributionStore
    payment_events: MessageSender
    offer_id: str | None = None
    advertiser_id: str | None = None
    overlap_seconds: int = 3600
    first_sync_days: int = 30
    page_size: int = 500
    max_rows: int = 20_000
    clock: Callable[[], float] = time.time

    @property
    def scope(self) -> str:
        if self.offer_id:
            return f"offer-{self.offer_id}"
        return f"advertiser-{self.advertiser_id}" if self.advertiser_id else "network"

    def run(self, api_key: str, hash_key: str) -> SyncOutcome:
        """Read the report from the checkpoint, store its clicks, replay what waited
        for them, move the checkpoint. Raises EverflowApiError (the checkpoint stays:
        the next run reads the window again) or AWS errors."""
        now = int(self.clock())
        key = sync_checkpoint_key(self.scope)
        checkpoint = self.store.get(key, consistent=True)
        seen = int(checkpoint["synced_until"]) if checkpoint else None
        since = (
            seen - self.overlap_seconds if seen is not None else now - self.first_sync_days * DAY
        )
        since = max(since, now - MAX_LOOKBACK_SECONDS)
        until = now
        if until <= since:
            return SyncOutcome("skipped", reason="nothing_new", since=since, until=until)
        rows, total = self._page(api_key, since, until, 1)
        pages = 1
        while total > self.max_rows and until - since > 60:
            # Too much for one run: take the older half now, the rest next time.
            until = since + (until - since) // 2
            rows, total = self._page(api_key, since, until, 1)
            pages += 1
        conversions, registered = 0, 0
        parked_pks: dict[str, None] = {}
        page = 1
        while True:
            for row in rows:
                conversions += 1
                click = click_of(row, offer_id=self.offer_id, advertiser_id=self.advertiser_id)
                email_hash = try_email_hash(row.email, hash_key) if row.email else None
                if click is None or email_hash is None:
                    continue
                if self.store.put_click(email_hash, click):
                    registered += 1
                    parked_pks[parked_email_pk(email_hash)] = None
            if not rows or len(rows) < self.page_size or (total and page * self.page_size >= total):
                break
            page += 1
            rows, total = self._page(api_key, since, until, page)
            pages += 1
        replayed = (
            replay_parked(self.store, self.payment_events, parked_pks, int(self.clock()))
            if parked_pks
            else 0
        )
        moved = self.store.advance_checkpoint(key, seen, until)
        return SyncOutcome(
            "synced",
            since=since,
            until=until,
            pages=pages,
            conversions=conversions,
            registered=registered,
            replayed=replayed,
            checkpoint_moved=moved,
        )

    def _page(
        self, api_key: str, since: int, until: int, page: int
    ) -> tuple[list[ReportedConversion], int]:
        return self.reports.conversion_page(
            api_key,
            since,
            until,
            page=page,
            page_size=self.page_size,
            offer_id=self.offer_id,
            advertiser_id=self.advertiser_id,
        )
