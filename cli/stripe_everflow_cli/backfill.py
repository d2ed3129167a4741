"""`stripe-everflow backfill --since DATE`: Stripe's history through the live path.

Pages Stripe's API for the objects that move money or carry clicks — paid invoices,
complete Checkout Sessions, succeeded payment intents, charges without a payment
intent (the legacy Charges API), refunds and disputes — and turns each into the event
Stripe would have sent (``invoice.paid``, ``checkout.session.completed``,
``payment_intent.succeeded``, ``charge.succeeded``, ``charge.refunded``,
``charge.dispute.created`` and, once settled, ``charge.dispute.closed``), with an id
of its own (``evt_bf_…``) and ``source: backfill`` on the queue message. Each goes
through the webhook's checks after the signature (``intake.webhook.queue_event``) onto
PaymentEventsQueue, and the matcher treats it like any other event. The matcher counts
money once per Stripe object (the conversion claim is keyed by the invoice or payment
intent), so what the live webhook already posted is not posted again and a second
backfill posts nothing.

Order and resumption. History is read one UTC day at a time (``created`` within the
day; an invoice counts on the day it was created). Each day's objects are sorted
oldest first, so a customer's first payment is the one that counts as initial, and
fed in that order. After each batch the position (day, time, object id) is written to
AttributionTable (``backfill#<account>`` / ``position``); an interrupted run started
again with the same arguments skips what was fed. ``--restart`` forgets the position.

Rate limits. Stripe allows about 100 read requests per second in live mode and 25 in
test mode (https://docs.stripe.com/rate-limits); the stripe library does not retry a
429, so each page is retried here after ``Retry-After`` (or a growing pause), and
``--max-rps`` paces requests (default 20, under test mode's limit).

What a backfill posts:

* a payment older than every click known for its customer is parked, as a live one
  would be (attribution needs a click before the payment, within the window);
* a payment already refunded is posted, then its refund applied (reversed in full, or
  its sale amount adjusted) — Everflow's history then matches Stripe's;
* a refund's state is the charge's refunded amount *now*, at the time of its latest
  refund in the period (refunds that failed are already out of that amount, so they
  are not replayed); a dispute's close comes after its opening.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from stripe_everflow_cli.errors import SERVER_DOWN, STRIPE_REFUSED, USAGE, CliError
from stripe_everflow_cli.progress import Progress

DAY = 86_400
PAGE_SIZE = 100
# Events queued (and flushed) before the position is written: a resumed run sends at
# most this many again (the matcher drops them as duplicates), and each flush waits
# for the last requests in flight (about 15 ms against SQS: 10% of 2,000 events' time).
FEED_BATCH = 2000
MAX_RATE_LIMIT_WAITS = 8
DEFAULT_MAX_RPS = 20.0
SETTLED_DISPUTES = ("won", "lost", "prevented")

# name → (the stripe library's list service path, the event type its objects become)
OBJECT_LISTS: dict[str, tuple[str, ...]] = {
    "invoices": ("invoices",),
    "checkout_sessions": ("checkout", "sessions"),
    "payment_intents": ("payment_intents",),
    "charges": ("charges",),
    "refunds": ("refunds",),
    "disputes": ("disputes",),
}


class BackfillError(ValueError):
    """The backfill cannot go on; ``code`` is the exit code (``errors.EXIT_CODES``):
    Stripe refused (a key without the permission, 429 after 429) or is unreachable,
    or the account is not set up for it."""

    def __init__(self, message: str, code: int = STRIPE_REFUSED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, order=True)
class Position:
    """Where a run is: everything up to this (time, object id) was fed."""

    created: int
    object_id: str

    def as_item(self) -> dict[str, Any]:
        return {"created": self.created, "object_id": self.object_id}


@dataclass
class Fed:
    objects: int = 0
    events: int = 0
    accepted: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # fed by an earlier run (before the position)


# ------------------------------------------------------------------ Stripe, paced


class StripeLister:
    """Lists one kind of Stripe object a page at a time, paced and retried on 429."""

    def __init__(
        self,
        client: Any,
        *,
        max_rps: float = DEFAULT_MAX_RPS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._interval = 1.0 / max_rps if max_rps > 0 else 0.0
        self._sleep, self._clock = sleep, clock
        self._next_call = 0.0
        self.requests = 0
        self.rate_limited = 0

    def _call(self, call: Callable[[], Any]) -> Any:
        import stripe

        waits = 0
        while True:
            now = self._clock()
            if now < self._next_call:
                self._sleep(self._next_call - now)
            self._next_call = max(now, self._next_call) + self._interval
            self.requests += 1
            try:
                return call()
            except stripe.RateLimitError as error:
                waits += 1
                self.rate_limited += 1
                if waits > MAX_RATE_LIMIT_WAITS:
                    raise BackfillError(
                        "Stripe kept answering 429: try a lower --max-rps"
                    ) from None
                self._sleep(_retry_after(error, waits))
            except (stripe.PermissionError, stripe.AuthenticationError) as error:
                raise BackfillError(f"Stripe refused: {error.user_message or error}") from None
            except stripe.StripeError as error:
                raise BackfillError(
                    f"Stripe failed: {type(error).__name__}: {error.user_message or error}",
                    SERVER_DOWN if isinstance(error, stripe.APIConnectionError) else STRIPE_REFUSED,
                ) from None

    def list(self, kind: str, start: int, end: int) -> Iterator[dict[str, Any]]:
        """Every object of ``kind`` created in ``[start, end)``, newest first. Read as
        raw JSON: the library's objects cost milliseconds each to build (and turn
        decimal strings into Decimal, which an event must not hold)."""
        path = "/v1/" + "/".join(OBJECT_LISTS[kind])
        params: dict[str, Any] = {"limit": PAGE_SIZE, "created": {"gte": start, "lt": end}}
        while True:
            page = self._get(path, dict(params))
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            params["starting_after"] = data[-1]["id"]

    def charge(self, charge_id: str) -> dict[str, Any]:
        return self._get(f"/v1/charges/{charge_id}", {})

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = self._call(functools.partial(self._client.raw_request, "get", path, **params))
        return cast(dict[str, Any], answer.data)


def _retry_after(error: Any, waits: int) -> float:
    headers = getattr(error, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else min(2.0**waits, 30.0)
    except ValueError:
        return min(2.0**waits, 30.0)


# ------------------------------------------------------------------ objects → events


def _event(
    event_type: str, obj: Mapping[str, Any], created: int, suffix: str = ""
) -> dict[str, Any]:
    return {
        "id": f"evt_bf_{obj['id']}{suffix}",
        "object": "event",
        "type": event_type,
        "created": int(created),
        "livemode": bool(obj.get("livemode", False)),
        "api_version": None,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": dict(obj)},
    }


def events_of(
    kind: str, obj: Mapping[str, Any], lister: StripeLister | None
) -> list[dict[str, Any]]:
    """The events Stripe would have sent for one object (none for an object that
    moved no money and carries nothing the bridge reads)."""
    created = int(obj.get("created") or 0)
    if kind == "invoices":
        if obj.get("status") != "paid":
            return []
        transitions = obj.get("status_transitions") or {}
        paid_at = transitions.get("paid_at") if isinstance(transitions, Mapping) else None
        return [_event("invoice.paid", obj, int(paid_at or created))]
    if kind == "checkout_sessions":
        if obj.get("status") != "complete":
            return []
        return [_event("checkout.session.completed", obj, created)]
    if kind == "payment_intents":
        if obj.get("status") != "succeeded":
            return []
        return [_event("payment_intent.succeeded", obj, created)]
    if kind == "charges":
        if obj.get("payment_intent") or obj.get("status") != "succeeded" or not obj.get("paid"):
            return []  # an intent's charge is counted through its intent
        return [_event("charge.succeeded", obj, created)]
    if kind == "refunds":
        if obj.get("status") != "succeeded" or not obj.get("charge") or lister is None:
            return []
        charge_id = obj["charge"] if isinstance(obj["charge"], str) else obj["charge"]["id"]
        charge = lister.charge(charge_id)
        if not charge.get("amount_refunded"):
            return []
        # one state per refund, each the charge's refunded amount now: the ledger keeps
        # the latest by time, so the newest refund's event leaves the true amount
        return [_event("charge.refunded", charge, created, suffix=f"_{obj['id']}")]
    if kind == "disputes":
        events = [_event("charge.dispute.created", obj, created)]
        if obj.get("status") in SETTLED_DISPUTES:
            moments = [
                int(t.get("created") or 0)
                for t in obj.get("balance_transactions") or []
                if isinstance(t, Mapping)
            ]
            closed = max([created + 1, *moments])
            events.append(_event("charge.dispute.closed", obj, closed, suffix="_closed"))
        return events
    raise ValueError(f"unknown object kind {kind!r}")


# ------------------------------------------------------------------ the run


def days(since: date, until: date) -> Iterator[tuple[int, int]]:
    """[start, end) of each UTC day from ``since`` to ``until`` inclusive."""
    day = since
    while day <= until:
        start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        yield start, start + DAY
        day += timedelta(days=1)


def objects_of_day(
    lister: StripeLister, start: int, end: int
) -> list[tuple[int, str, str, dict[str, Any]]]:
    """Every object of the day, oldest first: (created, id, kind, object)."""
    found = [
        (int(obj.get("created") or 0), str(obj["id"]), kind, obj)
        for kind in OBJECT_LISTS
        for obj in lister.list(kind, start, end)
    ]
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return found


class Checkpoint:
    """The run's position, in AttributionTable (``backfill#<account>`` / ``position``)."""

    def __init__(self, dynamodb: Any, table: str, account: str) -> None:
        self._db, self._table = dynamodb, table
        self._key = {"pk": {"S": f"backfill#{account}"}, "sk": {"S": "position"}}

    def read(self) -> Position | None:
        item = self._db.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        found = item.get("Item")
        if not found:
            return None
        return Position(int(found["created"]["N"]), found["object_id"]["S"])

    def write(self, position: Position) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                **self._key,
                "created": {"N": str(position.created)},
                "object_id": {"S": position.object_id},
                "written_at": {"N": str(int(time.time()))},
            },
        )

    def forget(self) -> None:
        self._db.delete_item(TableName=self._table, Key=self._key)


def backfill(
    lister: StripeLister,
    days_: Iterable[tuple[int, int]],
    feed: Callable[[list[dict[str, Any]]], list[Any]],
    *,
    checkpoint: Checkpoint | None,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> Fed:
    """Feed each day's objects, oldest first, from where an earlier run stopped.
    ``feed`` takes a batch of events and returns their intake outcomes."""
    fed = Fed()
    position = checkpoint.read() if checkpoint is not None else None
    for start, end in days_:
        if position is not None and end <= position.created:
            continue
        pending: list[dict[str, Any]] = []
        last: Position | None = None
        for created, object_id, kind, obj in objects_of_day(lister, start, end):
            here = Position(created, object_id)
            if position is not None and here <= position:
                fed.skipped += 1
                continue
            fed.objects += 1
            if progress is not None:
                progress.advance()
            pending += events_of(kind, obj, lister)
            last = here
            if len(pending) >= FEED_BATCH:
                _feed(feed, pending, fed)
                pending = []
                if checkpoint is not None and not dry_run:
                    checkpoint.write(last)
        if pending:
            _feed(feed, pending, fed)
        if last is not None and checkpoint is not None and not dry_run:
            checkpoint.write(last)
    return fed


def _feed(
    feed: Callable[[list[dict[str, Any]]], list[Any]], events: list[dict[str, Any]], fed: Fed
) -> None:
    for outcome in feed(events):
        fed.events += 1
        if outcome.status == "accepted":
            fed.accepted += 1
        else:
            reason = outcome.reason or "ignored"
            fed.ignored[reason] = fed.ignored.get(reason, 0) + 1


# ------------------------------------------------------------------ the command


def day_argument(value: str) -> date:
    """An argparse type: a UTC day, YYYY-MM-DD."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    day = day_argument
    parser.add_argument("--since", type=day, required=True, help="first day (UTC), YYYY-MM-DD")
    parser.add_argument("--until", type=day, help="last day (UTC), inclusive; default today")
    parser.add_argument("--account", default="default", help="the Stripe account's name")
    parser.add_argument(
        "--max-rps", type=float, default=DEFAULT_MAX_RPS, help="Stripe API requests per second"
    )
    parser.add_argument(
        "--restart", action="store_true", help="forget where an earlier run stopped"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be fed (amounts and customers), queue nothing",
    )
    parser.add_argument(
        "--stripe-api-base", default=None, help="Stripe's API address (a stand-in's, for tests)"
    )
    parser.add_argument("--endpoint", help="the local stack's AWS endpoint URL")
    parser.add_argument("--stack", help="a deployed stack's name")
    parser.add_argument("--region", help="the deployed stack's AWS region")


def run(args: argparse.Namespace) -> int:
    """0: fed; else one line on stderr and the code of what stopped it
    (``errors.EXIT_CODES``: 2 usage, 7 Stripe unreachable, 11 Stripe refused)."""
    import stripe

    from stripe_everflow.intake.webhook import queue_event
    from stripe_everflow_cli.stack_access import stack_access

    name = "stripe-everflow backfill"
    until = args.until or datetime.now(UTC).date()
    if until < args.since:
        print(f"{name}: --until is before --since", file=sys.stderr)
        return 2
    try:
        access = stack_access(args.endpoint, args.stack, args.region)
        secret = access.cached_secret()
        account = secret.get().account(args.account)
        if account is None:
            raise BackfillError(f"no Stripe account named {args.account!r} is configured", USAGE)
        if not account.api_key:
            raise BackfillError(
                f"account {args.account!r} has no api_key in the bridge secret (a restricted "
                "key with Read on Invoices, Checkout Sessions, Payment Intents, Charges, "
                "Refunds and Disputes)",
                USAGE,
            )
        settings = access.webhook_settings()
        options: dict[str, Any] = {"max_network_retries": 2}
        if args.stripe_api_base:
            options["base_addresses"] = {"api": args.stripe_api_base}
        lister = StripeLister(stripe.StripeClient(account.api_key, **options), max_rps=args.max_rps)
        checkpoint = None if args.dry_run else access.backfill_checkpoint(args.account)
        if checkpoint is not None and args.restart:
            checkpoint.forget()
        sender = (
            _dry_run(access, secret, account) if args.dry_run else access.payment_events_batch()
        )

        def feed(events: list[dict[str, Any]]) -> list[Any]:
            outcomes = []
            for event in events:
                outcome = queue_event(
                    event,
                    account,
                    settings=settings,
                    secret=secret,
                    sender=sender,
                    now=time.time(),
                    source="backfill",
                )
                outcomes.append(outcome)
            sender.flush()
            return outcomes

        progress = Progress("objects", None)
        try:
            fed = backfill(
                lister,
                days(args.since, until),
                feed,
                checkpoint=checkpoint,
                progress=progress,
                dry_run=args.dry_run,
            )
        finally:
            sender.close()
        progress.finish()
    except CliError:
        raise
    except ValueError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return getattr(error, "code", USAGE)
    ignored = ", ".join(f"{n} {reason}" for reason, n in sorted(fed.ignored.items())) or "none"
    verb = "would be queued" if args.dry_run else "queued"
    print(
        f"{fed.objects} Stripe object(s) read ({fed.skipped} fed by an earlier run), "
        f"{fed.accepted} event(s) {verb}, ignored: {ignored}; "
        f"{lister.requests} Stripe request(s), {lister.rate_limited} rate-limited"
    )
    return 0


def _dry_run(access: Any, secret: Any, account: Any) -> _DryRun:
    """The dry run's listing, with what the matcher would do with each event as the
    stack's settings (MatchPaymentFunction's) and AttributionTable hold things now."""
    from stripe_everflow.config import MatchSettings
    from stripe_everflow.domain.errors import ConfigurationError
    from stripe_everflow.matching.matcher import AttributionPreview

    try:
        settings = MatchSettings.from_environ(access.function_environment("MatchPaymentFunction"))
    except ConfigurationError as error:
        raise BackfillError(f"MatchPaymentFunction's settings: {error}", USAGE) from None
    preview = AttributionPreview(settings, access.attribution_store(), secret.get())
    return _DryRun(preview, account)


# What the matcher would count (or undo) money for: a dry-run line shows the amount.
COUNTING = ("click", "email", "park", "held", "undo")


class _DryRun:
    """What a dry run prints instead of queueing: one line per event (time, type,
    object, amount, customer) and what the matcher would do with it
    (``AttributionPreview``): the amount it counts (a refund's: the charge's refunded
    amount; a dispute's: its amount) and the affiliate and click it goes to, or why
    none. Printed at each flush, the batch's table reads made together."""

    def __init__(self, preview: Any, account: Any) -> None:
        self._preview, self._account = preview, account
        self._pending: list[Any] = []

    def send(self, body: str, attributes: dict[str, str]) -> str:
        from stripe_everflow.domain.messages import read_incoming_event

        self._pending.append(read_incoming_event(body, eventbridge_account=self._account.name))
        return "dry-run"

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        self._preview.prefetch(pending)
        for incoming in pending:
            print(self.line(incoming.event, self._preview.of(self._account, incoming)))

    def close(self) -> None:
        self.flush()
        print(f"dry run: {self._preview.reads} AttributionTable item(s) read, nothing written")

    @staticmethod
    def line(event: Mapping[str, Any], preview: Any) -> str:
        from stripe_everflow.domain.money import format_amount

        obj = event["data"]["object"]
        amount = obj.get("amount_paid", obj.get("amount_total", obj.get("amount")))
        refunded = obj.get("amount_refunded") if event["type"] == "charge.refunded" else None
        counted = ""
        if preview.decision in COUNTING and preview.amount_minor is not None and preview.currency:
            money = format_amount(preview.amount_minor, preview.currency)
            counted = f"{money} {preview.currency}, "
        return (
            f"{datetime.fromtimestamp(event['created'], UTC):%Y-%m-%d %H:%M}  "
            f"{event['type']:<28} {obj.get('id')}  "
            f"{amount if refunded is None else refunded} {str(obj.get('currency') or '').upper()}  "
            f"customer {obj.get('customer') or '-'}  -> {counted}{preview.describe()}"
        )
