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
  already known changes nothing), then, page by page, the payments parked for the
  emails of the page's clicks are replayed — new clicks or known ones, as
  ``POST /clicks`` does, so a run that stored clicks and stopped before replaying
  leaves the replay to the next run rather than to nobody. The checkpoint moves
  only after the whole window was read; a window with more rows than one run takes
  is halved and the rest waits for the next run. ``read_range`` is the same once
  over a range (``stripe-everflow import-clicks --from-everflow``): windows of at
  most a year, no row limit, the checkpoint neither read nor moved, and a dry run
  that stores and replays nothing.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stripe_everflow.domain.attribution import (
    DAY,
    Policy,
    StoredClick,
    choose_click,
    read_transaction_id,
)
from stripe_everflow.domain.emails import REDACTED_PREFIX, try_email_hash
from stripe_everflow.domain.records import email_key, parked_email_pk, sync_checkpoint_key
from stripe_everflow.parking import replay_parked
from stripe_everflow.ports import MessageSender
from stripe_everflow.ports.attribution import AttributionStore
from stripe_everflow.ports.everflow import ConversionReports, ReportedConversion

SOURCE = "everflow"
# Everflow's conversion reports cover the prior 365 days, at most a year per request.
MAX_LOOKBACK_SECONDS = 365 * DAY - 3600
REPORT_SPAN_SECONDS = 365 * DAY - 3600
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


@dataclass(frozen=True)
class FoundClick:
    """A click of the report, with the email it was reported for."""

    email: str
    email_hash: str
    click: StoredClick


@dataclass(frozen=True)
class ReportPage:
    """One page of the report as ``EverflowSync.read_range`` went through it: which
    window of how many (``window`` from 1), the window's rows in all (Everflow's
    ``total_count``), its rows, the clicks among them and what became of them."""

    window: int
    windows: int
    total: int
    conversions: int
    clicks: tuple[FoundClick, ...]
    registered: int = 0
    replayed: int = 0


@dataclass(frozen=True)
class RangeOutcome:
    """What ``EverflowSync.read_range`` did over its windows."""

    since: int
    until: int
    windows: int = 0
    pages: int = 0
    conversions: int = 0
    clicks: int = 0
    registered: int = 0
    replayed: int = 0


def report_windows(
    since: int, until: int, span: int = REPORT_SPAN_SECONDS
) -> list[tuple[int, int]]:
    """``since``..``until`` cut into consecutive windows of at most ``span`` seconds
    (Everflow refuses a report over a year), oldest first; none when ``until`` is not
    after ``since``."""
    windows, start = [], since
    while start < until:
        end = min(until, start + span)
        windows.append((start, end))
        start = end
    return windows


@dataclass
class EverflowSync:
    """The scheduled sync, and the same over a range once (see the module)."""

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
        first = self._page(api_key, since, until, 1)
        pages = 0  # the pages read before the window's first: a window found too large
        while first[1] > self.max_rows and until - since > 60:
            # Too much for one run: take the older half now, the rest next time.
            until = since + (until - since) // 2
            first = self._page(api_key, since, until, 1)
            pages += 1
        conversions = registered = replayed = 0
        for page in self._window(api_key, hash_key, since, until, first=first):
            pages += 1
            conversions += page.conversions
            stored, sent = self.store_clicks(page.clicks)
            registered, replayed = registered + stored, replayed + sent
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

    def read_range(
        self,
        api_key: str,
        hash_key: str,
        since: int,
        until: int,
        *,
        dry_run: bool = False,
        on_page: Callable[[ReportPage], None] | None = None,
    ) -> RangeOutcome:
        """The sync once over ``since``..``until``, in windows of at most a year: every
        page's clicks stored and the payments parked for their emails replayed, page
        by page (``dry_run``: nothing stored, nothing replayed). The checkpoint of the
        scheduled sync is neither read nor moved. ``on_page`` sees each page once
        done. Raises EverflowApiError (what was stored stays stored: run it again)
        or AWS errors."""
        windows = report_windows(since, until)
        outcome = RangeOutcome(since, until, windows=len(windows))
        for number, (start, end) in enumerate(windows, 1):
            for page in self._window(api_key, hash_key, start, end):
                registered = replayed = 0
                if not dry_run:
                    registered, replayed = self.store_clicks(page.clicks)
                done = replace(
                    page,
                    window=number,
                    windows=len(windows),
                    registered=registered,
                    replayed=replayed,
                )
                outcome = replace(
                    outcome,
                    pages=outcome.pages + 1,
                    conversions=outcome.conversions + done.conversions,
                    clicks=outcome.clicks + len(done.clicks),
                    registered=outcome.registered + registered,
                    replayed=outcome.replayed + replayed,
                )
                if on_page is not None:
                    on_page(done)
        return outcome

    def store_clicks(self, found: Sequence[FoundClick]) -> tuple[int, int]:
        """Store each click (a known one changes nothing), then replay the payments
        parked for every email among them — new click or known: a run that stored
        clicks and stopped before their replay leaves it to the next one, as
        ``POST /clicks`` does. Returns (clicks new, payments replayed)."""
        registered = 0
        parked_pks: dict[str, None] = {}
        for item in found:
            if self.store.put_click(item.email_hash, item.click):
                registered += 1
            parked_pks[parked_email_pk(item.email_hash)] = None
        replayed = (
            replay_parked(self.store, self.payment_events, parked_pks, int(self.clock()))
            if parked_pks
            else 0
        )
        return registered, replayed

    def is_known(self, found: FoundClick) -> bool:
        """Whether the click is stored already (what a dry run tells apart)."""
        item = self.store.get(email_key(found.email_hash))
        return any(
            click.transaction_id == found.click.transaction_id
            for click in self.store.clicks_of(item)
        )

    def clicks_in(self, rows: Iterable[ReportedConversion], hash_key: str) -> list[FoundClick]:
        """The report rows that are clicks and carry an email."""
        found = []
        for row in rows:
            click = click_of(row, offer_id=self.offer_id, advertiser_id=self.advertiser_id)
            email_hash = try_email_hash(row.email, hash_key) if row.email else None
            if click is not None and email_hash is not None and row.email:
                found.append(FoundClick(row.email, email_hash, click))
        return found

    def _window(
        self,
        api_key: str,
        hash_key: str,
        since: int,
        until: int,
        *,
        first: tuple[list[ReportedConversion], int] | None = None,
    ) -> Iterator[ReportPage]:
        """One window of the report, page by page, until a short or empty page or the
        total is reached."""
        number = 1
        rows, total = first if first is not None else self._page(api_key, since, until, 1)
        while True:
            yield ReportPage(1, 1, total, len(rows), tuple(self.clicks_in(rows, hash_key)))
            if (
                not rows
                or len(rows) < self.page_size
                or (total and number * self.page_size >= total)
            ):
                return
            number += 1
            rows, total = self._page(api_key, since, until, number)

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
