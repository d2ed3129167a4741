"""`stripe-everflow reconcile --from DAY --to DAY`: the proof that Stripe's money in
a period is in Everflow exactly once.

Three sides, read for the period (UTC days, ``created`` within them, as ``backfill``
reads them):

* Stripe's: paid invoices, complete Checkout Sessions, succeeded payment intents,
  legacy charges, refunds and disputes, turned into the events Stripe sends
  (``backfill.events_of``) and classified as the matcher classifies them
  (``domain.classify``, with the matcher's settings: the click metadata key, tax
  included or not, subscription-update invoices). One row of money per order id (the
  invoice, else the payment intent, else the charge: what the bridge sends Everflow as
  ``order_id``), with the charge's refunded amount and a lost dispute;
* the ledger's: each conversion entry by order id (status, amount), the parked
  payments (AttributionTable) and the refunds waiting for their payment;
* Everflow's: the conversion report (``POST /v1/networks/reporting/conversions``,
  conversions and events, from the period's first day to now) by ``order_id``, read
  for one advertiser or offer (``report_filter``: ``--advertiser``/``--offer``, else
  the stack's ``EverflowAdvertiserId``, else the whole network), so another
  advertiser's conversions are not read as this stack's.

A difference is a row with a reason:

* ``missing_in_everflow`` — the ledger posted it, Everflow has no conversion for it;
* ``not_posted`` — Stripe's money the ledger never posted: the bridge never saw it,
  a refund waits for it, or the ledger's entry is not ``posted`` (``failed``…). A
  payment parked for want of a click (or whose parking expired without one) is the
  bridge's decision, not a difference: its amount is in the totals' ``no_click``;
* ``amount_differs`` — the ledger's or Everflow's amount is not Stripe's (after a
  partial refund, Everflow may hold the original or the prorated amount);
* ``posted_twice`` — Everflow holds two conversions or more for the order id (not
  rejected);
* ``refunded_in_stripe_approved_in_everflow`` — refunded in full (or a dispute lost)
  in Stripe, still approved in Everflow;
* ``rejected_in_everflow`` — Stripe kept the money (no full refund, no dispute lost
  or open), yet every conversion Everflow holds for the order is rejected: the
  partner is not paid for it;
* ``parked_with_click_known`` — parked for want of a click, while a click is now
  stored for its email (or a pin for its customer): the replay that click should
  have caused did not happen (the matcher still decides whether the click counts).

``--fix`` sends what is missing through the pipeline: a payment the ledger never
saw (``not_posted`` and not parked, or ``parked_with_click_known``) is queued as its
event (source ``reconcile``; the matcher's claim keeps it exactly-once); a
``missing_in_everflow`` one, once Everflow is asked again and still has no
conversion for the order id, has its ledger entry made retakeable (``Ledger.release``
with the doubt kept, so the poster looks before sending) and its job sent again to
PostbackQueue. Never a second conversion for an order Everflow already has: posted
twice, refunded but approved, an amount that differs, a ledger entry that failed
(``redrive`` is its tool) are reported, not touched.

Exit: 0 clean, 1 differences, else ``errors.EXIT_CODES``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from stripe_everflow_cli.errors import (
    EVERFLOW_REFUSED,
    PROBLEM,
    SERVER_DOWN,
    USAGE,
    CliError,
)

if TYPE_CHECKING:
    from stripe_everflow.ports.everflow import ConversionReports, ReportedConversion

REASONS = (
    "missing_in_everflow",
    "not_posted",
    "amount_differs",
    "posted_twice",
    "refunded_in_stripe_approved_in_everflow",
    "rejected_in_everflow",
    "parked_with_click_known",
)
# How a chargeback can end (inquiries, ``warning_…``, move no money: never counted).
SETTLED_DISPUTES = ("won", "lost", "prevented")
DAY = 86_400
REPORT_PAGE_SIZE = 2000  # Everflow's largest page
REPORT_SPAN = 365 * 86_400  # Everflow refuses a report window over a year
DEFAULT_EVERFLOW_API = "https://api.eflow.team"


# ------------------------------------------------------------------ the three sides


@dataclass
class StripeMoney:
    """One order's money in Stripe, as the bridge counts it."""

    order_id: str
    currency: str
    amount_minor: int
    event: dict[str, Any]  # the event that counts it (what --fix queues)
    refunded_minor: int = 0
    charge_minor: int | None = None
    dispute_lost: bool = False
    # a dispute not settled yet: the bridge may hold the conversion rejected until it
    # ends (DisputePolicy on-created), so a rejection then is no difference
    dispute_open: bool = False

    @property
    def fully_refunded(self) -> bool:
        charge = self.charge_minor if self.charge_minor is not None else self.amount_minor
        return self.dispute_lost or (self.refunded_minor > 0 and self.refunded_minor >= charge)


@dataclass(frozen=True)
class EverflowConversion:
    conversion_id: str
    order_id: str
    sale_amount: Decimal | None
    status: str


@dataclass
class Row:
    reason: str
    order_id: str
    currency: str
    stripe_amount: str
    ledger: str  # the ledger's status, or what kept it from posting
    ledger_amount: str
    everflow: str  # conversion ids and statuses, or "-"
    everflow_amount: str
    detail: str
    fix: str = "-"  # what --fix does or did


@dataclass
class Totals:
    currency: str
    payments: int = 0
    counted: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    # the counted amount of the orders whose chargeback was lost (reversed in Everflow)
    disputed: Decimal = Decimal(0)
    posted: Decimal = Decimal(0)
    unattributed: Decimal = Decimal(0)  # parked, no click known: nothing to post
    in_everflow: Decimal = Decimal(0)
    differences: int = 0


@dataclass
class Reconciliation:
    rows: list[Row] = field(default_factory=list)
    totals: dict[str, Totals] = field(default_factory=dict)
    # for --fix: order id → what to send
    queue: dict[str, dict[str, Any]] = field(default_factory=dict)
    resend: dict[str, dict[str, Any]] = field(default_factory=dict)


def stripe_money(
    events: Iterable[Mapping[str, Any]],
    settings: Any,
    invoice_of: Callable[[str], str | None] = lambda _: None,
) -> dict[str, StripeMoney]:
    """Each order's money from the period's events, as ``classify_event`` counts it:
    the first event to count an order keeps it (the matcher's claim does the same),
    but a Checkout Session takes over its payment intent's; an intent that paid an
    invoice is the invoice's; refunds and disputes are applied to their order.
    ``invoice_of`` answers the invoice a payment intent paid (since Stripe's basil
    version neither the intent nor its charge names it: the InvoicePayment does)."""
    from stripe_everflow.domain.classify import classify_event

    money: dict[str, StripeMoney] = {}
    undo: list[Any] = []
    for event in events:
        found = classify_event(event, settings)
        if found.action == "payment" and found.money_key:
            if found.needs_invoice_check and invoice_of(found.money_key):
                continue  # an invoice's payment intent (basil): counted by the invoice
            counted = money.get(found.money_key)
            session = event.get("type") == "checkout.session.completed"
            if counted is None or (
                session and counted.event.get("type") == "payment_intent.succeeded"
            ):
                # a Checkout Session counts its intent's money (it knows the tax)
                money[found.money_key] = StripeMoney(
                    found.money_key, found.currency.upper(), found.amount_minor, dict(event)
                )
        elif found.action in ("refund", "dispute_opened", "dispute_closed"):
            undo.append(found)
    for found in undo:
        ids = found.ids
        key = found.money_key or ids.invoice_id or ids.payment_intent_id or ids.charge_id
        target = money.get(key or "")
        if target is None and ids.payment_intent_id and not ids.invoice_id:
            target = money.get(invoice_of(ids.payment_intent_id) or "")
        if target is None:
            continue  # a refund of money from another period
        if found.action == "refund":
            target.refunded_minor = max(target.refunded_minor, found.amount_refunded_minor or 0)
            target.charge_minor = found.charge_amount_minor
        elif found.dispute_status == "lost":
            target.dispute_lost = True
        elif found.dispute_status not in SETTLED_DISPUTES:
            target.dispute_open = True
    return money


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def read_everflow_rows(rows: Iterable[ReportedConversion]) -> list[EverflowConversion]:
    """Report rows (``ports.everflow.ReportedConversion``) with an ``order_id``, as
    conversions (others are not the bridge's)."""
    return [
        EverflowConversion(
            row.conversion_id, row.order_id, row.sale_amount, row.status or "approved"
        )
        for row in rows
        if row.order_id
    ]


def ledger_conversions(
    entries: Iterable[Mapping[str, Any]], account: str
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Conversion entries by order id, and the order ids with a refund waiting."""
    conversions: dict[str, dict[str, Any]] = {}
    waiting: set[str] = set()
    for entry in entries:
        if entry.get("account") not in (account, None):
            continue
        order_id = (
            entry.get("invoice_id") or entry.get("payment_intent_id") or entry.get("charge_id")
        )
        if not isinstance(order_id, str):
            continue
        if entry.get("status") == "waiting":
            waiting.add(order_id)
        elif entry.get("action") == "conversion":
            conversions[order_id] = dict(entry)
    return conversions, waiting


# ------------------------------------------------------------------ the comparison


def reconcile(
    money: Mapping[str, StripeMoney],
    conversions: Mapping[str, Mapping[str, Any]],
    everflow: Iterable[EverflowConversion],
    *,
    parked: Mapping[str, str] | None = None,
    waiting: Iterable[str] = (),
) -> Reconciliation:
    """The rows (one per order with a difference) and the totals per currency."""
    from stripe_everflow.domain.money import currency_exponent, to_major_units

    by_order: dict[str, list[EverflowConversion]] = {}
    for conversion in everflow:
        by_order.setdefault(conversion.order_id, []).append(conversion)
    parked_ids, waiting_ids = dict(parked or {}), set(waiting)
    result = Reconciliation()
    for order_id in sorted(money):
        m = money[order_id]
        amount = to_major_units(m.amount_minor, m.currency)
        refunded = to_major_units(m.refunded_minor, m.currency)
        totals = result.totals.setdefault(m.currency, Totals(m.currency))
        totals.payments += 1
        totals.counted += amount
        totals.refunded += refunded
        if m.dispute_lost:
            totals.disputed += amount
        entry = conversions.get(order_id)
        status = str(entry.get("status")) if entry else None
        ledger_amount = _decimal(entry.get("amount")) if entry else None
        if status == "posted" and ledger_amount is not None:
            totals.posted += ledger_amount
        held = by_order.get(order_id, [])
        live = [c for c in held if c.status != "rejected"]
        step = Decimal(1).scaleb(-currency_exponent(m.currency))
        totals.in_everflow += sum(
            ((c.sale_amount or Decimal(0)).quantize(step) for c in live), Decimal(0)
        )

        verdict = _verdict(m, amount, entry, status, ledger_amount, held, live)
        if verdict is None:
            continue
        reason, detail = verdict
        why = _unposted(order_id, parked_ids, waiting_ids)
        if reason == "not_posted" and entry is None and why in UNATTRIBUTED:
            totals.unattributed += amount  # no click: the bridge's decision, no difference
            continue
        fix = "-"
        if reason == "missing_in_everflow":
            fix = "send the ledger's job again"
            result.resend[order_id] = dict(entry or {})
        elif reason == "not_posted" and entry is None:
            if why == PARKED_CLICK_KNOWN:
                reason, detail = "parked_with_click_known", "parked, and a click is now stored"
                detail += " for its email or customer"
            else:
                detail = {
                    "waiting": "not counted yet; a refund waits for it",
                }.get(why, "the bridge never saw it")
            fix = "queue the payment's event"
            result.queue[order_id] = m.event
        totals.differences += 1
        result.rows.append(
            Row(
                reason=reason,
                order_id=order_id,
                currency=m.currency,
                stripe_amount=str(amount),
                ledger=status or _unposted(order_id, parked_ids, waiting_ids),
                ledger_amount="-" if ledger_amount is None else str(ledger_amount),
                everflow=", ".join(f"{c.conversion_id} {c.status}" for c in held) or "-",
                everflow_amount=", ".join(
                    "-" if c.sale_amount is None else str(c.sale_amount.quantize(step))
                    for c in held
                )
                or "-",
                detail=detail,
                fix=fix,
            )
        )
    return result


def _verdict(
    m: StripeMoney,
    amount: Decimal,
    entry: Mapping[str, Any] | None,
    status: str | None,
    ledger_amount: Decimal | None,
    held: list[EverflowConversion],
    live: list[EverflowConversion],
) -> tuple[str, str] | None:
    """The difference (reason, detail) for one order, or None."""
    from stripe_everflow.domain.undo import prorated

    if len(live) >= 2:
        return "posted_twice", f"{len(live)} conversions in Everflow for one order"
    if not held and status == "posted":
        return "missing_in_everflow", "the ledger posted it; Everflow has no conversion"
    if not held:
        if m.fully_refunded:
            return None  # refunded in full before it was posted: nothing is owed
        if entry is None:
            return "not_posted", "the ledger never posted it"
        return "not_posted", f"the ledger's entry is {status}"
    if m.fully_refunded:
        if any(c.status == "approved" for c in live):
            what = "a dispute lost" if m.dispute_lost else "refunded in full"
            return "refunded_in_stripe_approved_in_everflow", f"{what} in Stripe"
        return None
    if not live:
        if m.dispute_open:
            return None
        return "rejected_in_everflow", "Stripe kept the money; every conversion is rejected"
    if ledger_amount is not None and ledger_amount != amount:
        return "amount_differs", f"the ledger holds {ledger_amount}, Stripe {amount}"
    sale = live[0].sale_amount
    accepted = {amount}
    if m.refunded_minor and m.charge_minor:
        kept = m.charge_minor - m.refunded_minor
        accepted.add(prorated(amount, kept, m.charge_minor, m.currency))
    if sale is not None and all(sale != a for a in accepted):
        return "amount_differs", f"Everflow holds {sale}, Stripe {amount}"
    return None


def _unposted(order_id: str, parked: Mapping[str, str], waiting: set[str]) -> str:
    if order_id in parked:
        return parked[order_id]
    if order_id in waiting:
        return "waiting"
    return "unknown"


# ------------------------------------------------------------------ output


def render(result: Reconciliation, form: str) -> str:
    from stripe_everflow.domain.money import currency_exponent

    def major(amount: Decimal, currency: str) -> str:
        return str(amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))))

    rows = [asdict(r) for r in result.rows]
    totals = [
        {
            "currency": t.currency,
            "payments": t.payments,
            "counted": major(t.counted, t.currency),
            "refunded": major(t.refunded, t.currency),
            "disputed": major(t.disputed, t.currency),
            "posted": major(t.posted, t.currency),
            "no_click": major(t.unattributed, t.currency),
            "in_everflow": major(t.in_everflow, t.currency),
            "differences": t.differences,
        }
        for t in sorted(result.totals.values(), key=lambda t: t.currency)
    ]
    if form == "json":
        return json.dumps({"rows": rows, "totals": totals}, indent=2) + "\n"
    if form == "csv":
        out = io.StringIO()
        names = list(Row.__dataclass_fields__)
        writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        out.write("\n")
        writer = csv.DictWriter(out, fieldnames=list(totals[0]) if totals else ["currency"])
        writer.writeheader()
        writer.writerows(totals)
        return out.getvalue()
    lines = []
    columns = ("reason", "order_id", "currency", "stripe_amount", "ledger", "everflow", "detail")
    if rows:
        widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
        lines.append("  ".join(c.ljust(widths[c]) for c in columns) + "  fix")
        for r in rows:
            lines.append("  ".join(str(r[c]).ljust(widths[c]) for c in columns) + f"  {r['fix']}")
    else:
        lines.append("no differences")
    lines.append("")
    head = (
        "currency",
        "payments",
        "counted",
        "refunded",
        "disputed",
        "posted",
        "no_click",
        "in_everflow",
        "differences",
    )
    table: list[tuple[str, ...]] = [head, *(tuple(str(t[c]) for c in head) for t in totals)]
    widths_t = [max(len(line[i]) for line in table) for i in range(len(head))]
    for line in table:
        lines.append("  ".join(v.rjust(widths_t[i]) for i, v in enumerate(line)))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ reading a stack


def match_settings(environment: Mapping[str, str]) -> Any:
    """The matcher's classify settings from its environment (``match_environment``)."""
    from stripe_everflow.domain.classify import ClassifySettings

    include_tax = environment.get("AMOUNTS_INCLUDE_TAX", "false").strip().lower()
    updates = environment.get("SUBSCRIPTION_UPDATE_INVOICES", "rebill").strip() or "rebill"
    return ClassifySettings(
        click_metadata_key=environment.get("CLICK_ID_METADATA_KEY") or "everflow_transaction_id",
        amounts_include_tax=include_tax in ("true", "1", "yes"),
        subscription_update_invoices="ignore" if updates == "ignore" else "rebill",
    )


def match_environment(access: Any) -> dict[str, str]:
    """MatchPaymentFunction's environment as the stack runs it."""
    return dict(access.function_environment("MatchPaymentFunction"))


PARKED = "parked"
PARKED_CLICK_KNOWN = "parked, a click now known"
UNSENT = "seen, not sent"  # claimed by the matcher, no job: parked until it expired
UNATTRIBUTED = (PARKED, UNSENT)  # the bridge's decision: no click, nothing to post


def parked_orders(
    dynamodb: Any, table: str, settings: Any, now: float, account: str = "default"
) -> dict[str, str]:
    """Order id → ``PARKED`` for each payment parked in AttributionTable (its parked
    message's event, classified), or ``PARKED_CLICK_KNOWN`` when a click is now
    stored for the email or a pin for the customer it is parked under (the matcher
    would match it if it came again), or ``UNSENT`` for money the matcher claimed and
    sent no job for, parked no more (no click came before its parking expired). One
    scan of the table."""
    from stripe_everflow.adapters.dynamodb import from_attributes
    from stripe_everflow.domain.classify import classify_event

    parked: list[tuple[str, str]] = []  # (pk parked under, order id)
    clicks: set[str] = set()
    unsent: set[str] = set()
    claims = f"claim#{account}#conversion#"
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for raw in page.get("Items", []):
            item = from_attributes(raw)
            expires = item.get("expires_at")
            if expires is not None and int(expires) <= now:
                continue
            pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
            if (pk.startswith("email#") and sk == "clicks") or (
                pk.startswith("customer#") and sk == "pin"
            ):
                clicks.add(pk)
            if pk.startswith(claims) and sk == "claim" and not item.get("job_key"):
                unsent.add(pk.removeprefix(claims))
            if not pk.startswith("parked#") or "message" not in item:
                continue
            try:
                message = json.loads(str(item["message"]))
                event = message.get("event") if isinstance(message, dict) else None
                classified = classify_event(event, settings) if isinstance(event, dict) else None
            except (ValueError, TypeError, KeyError):
                continue
            if classified is not None and classified.money_key:
                parked.append((pk, classified.money_key))
    found: dict[str, str] = dict.fromkeys(unsent, UNSENT)
    for pk, order_id in parked:
        known = pk.removeprefix("parked#") in clicks
        if known or found.get(order_id, UNSENT) == UNSENT:
            found[order_id] = PARKED_CLICK_KNOWN if known else PARKED
    return found


def everflow_conversions(
    reports: ConversionReports,
    api_key: str,
    since: int,
    until: int,
    *,
    offer_id: str | None = None,
    advertiser_id: str | None = None,
) -> list[EverflowConversion]:
    """Every conversion and event Everflow reports between ``since`` and ``until``
    (of the offer, else the advertiser, else the whole network), a year at a time,
    paged."""
    found: list[EverflowConversion] = []
    start = since
    while start < until:
        end = min(until, start + REPORT_SPAN - 1)
        page = 1
        while True:
            rows, total = reports.conversion_page(
                api_key,
                start,
                end,
                page=page,
                page_size=REPORT_PAGE_SIZE,
                offer_id=offer_id,
                advertiser_id=advertiser_id,
                events=True,
            )
            found += read_everflow_rows(rows)
            if not rows or page * REPORT_PAGE_SIZE >= total:
                break
            page += 1
        start = end + 1
    return found


def report_filter(
    args: argparse.Namespace, environment: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(offer, advertiser) the conversion report is read for: ``--offer`` or
    ``--advertiser`` when given, else the stack's advertiser (``EverflowAdvertiserId``),
    else none (the whole network). Not the stack's ``EverflowOfferId`` by default: a
    postback with a ``transaction_id`` lands on its click's offer, which may be
    another offer of the advertiser; read for one offer, its conversions would look
    missing."""
    if args.offer or args.advertiser:
        return args.offer, args.advertiser
    return None, environment.get("EVERFLOW_ADVERTISER_ID") or None


# ------------------------------------------------------------------ the command


def _everflow_id(value: str) -> str:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not an Everflow id (digits)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from stripe_everflow_cli.backfill import day_argument

    parser.add_argument(
        "--from",
        dest="date_from",
        type=day_argument,
        required=True,
        metavar="DAY",
        help="first day (UTC), YYYY-MM-DD",
    )
    parser.add_argument(
        "--to",
        dest="date_to",
        type=day_argument,
        required=True,
        metavar="DAY",
        help="last day (UTC), inclusive",
    )
    parser.add_argument("--account", default="default", help="the Stripe account's name")
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="how rows are printed"
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="send what is missing through the pipeline (never a second conversion)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --fix: change nothing (the fix column says what --fix would do)",
    )
    parser.add_argument("--max-rps", type=float, default=20.0, help="Stripe API requests/s")
    parser.add_argument(
        "--stripe-api-base", default=None, help="Stripe's API address (a stand-in's, for tests)"
    )
    parser.add_argument(
        "--everflow-api-base",
        default=None,
        help="Everflow's Network API address (default: the stack's, else api.eflow.team)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--offer",
        type=_everflow_id,
        metavar="ID",
        help="read only this Everflow offer's conversions",
    )
    which.add_argument(
        "--advertiser",
        type=_everflow_id,
        metavar="ID",
        help="read only this Everflow advertiser's conversions "
        "(default: the stack's EverflowAdvertiserId, else the whole network)",
    )
    parser.add_argument("--endpoint", help="the local stack's AWS endpoint URL")
    parser.add_argument("--stack", help="a deployed stack's name")
    parser.add_argument("--region", help="the deployed stack's AWS region")


def run(args: argparse.Namespace) -> int:
    """0: clean; 1: differences; else one line on stderr and the code of what stopped
    it (2 usage, 7 unreachable, 11 Stripe refused, 12 Everflow refused)."""
    from stripe_everflow.domain.errors import EverflowApiError, EverflowUnavailableError

    name = "stripe-everflow reconcile"
    if args.date_to < args.date_from:
        print(f"{name}: --to is before --from", file=sys.stderr)
        return USAGE
    try:
        result = reconcile_period(args)
    except CliError:
        raise
    except (EverflowUnavailableError, EverflowApiError) as error:
        print(f"{name}: Everflow's conversion report: {error}", file=sys.stderr)
        return SERVER_DOWN if isinstance(error, EverflowUnavailableError) else EVERFLOW_REFUSED
    except ValueError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return int(getattr(error, "code", USAGE))
    sys.stdout.write(render(result, args.format))
    return PROBLEM if result.rows else 0


def reconcile_period(args: argparse.Namespace) -> Reconciliation:
    """The reconciliation ``run`` prints (and, with ``--fix``, its repairs). Raises
    ValueError (``code``: the exit code), CliError, EverflowApiError."""
    import stripe

    from stripe_everflow.adapters.everflow.network_api import EverflowNetworkApi
    from stripe_everflow.adapters.stripe_api import StripeReader
    from stripe_everflow.domain.errors import StripeApiError
    from stripe_everflow_cli import backfill
    from stripe_everflow_cli.progress import Progress
    from stripe_everflow_cli.report import read_ledger, read_waiting
    from stripe_everflow_cli.stack_access import stack_access

    access = stack_access(args.endpoint, args.stack, args.region)
    secret = access.cached_secret()
    bridge = secret.get()
    account = bridge.account(args.account)
    if account is None:
        raise backfill.BackfillError(
            f"no Stripe account named {args.account!r} is configured", USAGE
        )
    if not account.api_key:
        raise backfill.BackfillError(
            f"account {args.account!r} has no api_key in the bridge secret", USAGE
        )
    if not bridge.everflow_api_key:
        raise backfill.BackfillError(
            "the bridge secret has no everflow_api_key (reconcile reads Everflow's "
            "conversion report)",
            USAGE,
        )
    environment = match_environment(access)
    settings = match_settings(environment)
    options: dict[str, Any] = {"max_network_retries": 2}
    if args.stripe_api_base:
        options["base_addresses"] = {"api": args.stripe_api_base}
    lister = backfill.StripeLister(
        stripe.StripeClient(account.api_key, **options), max_rps=args.max_rps
    )
    since = int(datetime.combine(args.date_from, datetime.min.time(), UTC).timestamp())
    until = int(datetime.combine(args.date_to, datetime.min.time(), UTC).timestamp()) + DAY
    # the whole period in one listing per kind (pages of 100), oldest first
    progress = Progress("Stripe objects", None)

    def listed(kind: str) -> Iterable[dict[str, Any]]:
        for obj in lister.list(kind, since, until):
            progress.advance()
            yield obj

    found = sorted(
        (
            (int(obj.get("created") or 0), str(obj["id"]), kind, obj)
            for kind in backfill.OBJECT_LISTS
            for obj in listed(kind)
        ),
        key=lambda entry: (entry[0], entry[1]),
    )
    progress.finish()
    events = [event for _, _, kind, obj in found for event in backfill.events_of(kind, obj, lister)]

    reader = StripeReader(args.stripe_api_base)
    interval = 1.0 / args.max_rps if args.max_rps > 0 else 0.0
    paced = {"next": 0.0}

    @functools.cache
    def invoice_of(payment_intent: str) -> str | None:
        # the matcher's own question (basil: the InvoicePayment names the invoice),
        # paced as the listing is
        wait = paced["next"] - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        paced["next"] = time.monotonic() + interval
        try:
            return reader.invoice_of_payment_intent(account.api_key, payment_intent)
        except StripeApiError as error:
            raise backfill.BackfillError(f"Stripe: {error}") from None

    money = stripe_money(events, settings, invoice_of)
    dynamodb = access.target.client("dynamodb")
    entries = read_ledger(dynamodb, access.table("LedgerTable"))
    entries += read_waiting(dynamodb, access.table("AttributionTable"), [args.account])
    conversions, waiting = ledger_conversions(entries, args.account)
    parked = parked_orders(
        dynamodb, access.table("AttributionTable"), settings, time.time(), args.account
    )
    everflow_base = (
        args.everflow_api_base or environment.get("EVERFLOW_API_BASE_URL") or DEFAULT_EVERFLOW_API
    )
    reports = EverflowNetworkApi(everflow_base, None)
    offer, advertiser = report_filter(args, environment)

    def everflow() -> list[EverflowConversion]:
        return everflow_conversions(
            reports,
            bridge.everflow_api_key,
            since,
            int(time.time()) + 60,
            offer_id=offer,
            advertiser_id=advertiser,
        )

    result = reconcile(money, conversions, everflow(), parked=parked, waiting=waiting)
    if args.fix and not args.dry_run and (result.queue or result.resend):
        _fix(access, result, everflow, account, secret)
    return result


def _fix(
    access: Any,
    result: Reconciliation,
    everflow: Any,
    account: Any,
    secret: Any,
) -> None:
    """Queue the payments the ledger never saw; send again the jobs Everflow lost,
    once Everflow, asked again, still has no conversion for their order id."""
    from stripe_everflow.adapters.dynamodb import condition_failed
    from stripe_everflow.adapters.dynamodb.ledger import Ledger
    from stripe_everflow.adapters.sqs import SqsSender
    from stripe_everflow.intake.webhook import queue_event

    if result.queue:
        sender = access.payment_events()
        settings = access.webhook_settings()
        for row in result.rows:
            event = result.queue.get(row.order_id)
            if event is None or row.reason not in ("not_posted", "parked_with_click_known"):
                continue
            outcome = queue_event(
                event,
                account,
                settings=settings,
                secret=secret,
                sender=sender,
                now=time.time(),
                source="reconcile",
            )
            row.fix = "queued" if outcome.status == "accepted" else f"not queued: {outcome.reason}"
    if result.resend:
        present = {c.order_id for c in everflow()}
        ledger = Ledger(access.table("LedgerTable"), access.target.client("dynamodb"))
        postbacks = SqsSender(access.queue_url("PostbackQueue"), access.target.client("sqs"))
        for row in result.rows:
            entry = result.resend.get(row.order_id)
            if entry is None or row.reason != "missing_in_everflow":
                continue
            if row.order_id in present:
                row.fix = "not sent: Everflow has it now"
                continue
            if not entry.get("job") or not entry.get("attempt_id"):
                row.fix = "not sent: the ledger's entry has no job"
                continue
            try:
                ledger.release(
                    str(entry["job_key"]),
                    str(entry["attempt_id"]),
                    int(time.time()),
                    {"last_error": "reconcile: missing in Everflow"},
                    True,  # the poster asks Everflow before sending again
                )
            except Exception as error:
                if not condition_failed(error):
                    raise
                row.fix = "not sent: the ledger's entry changed since it was read"
                continue
            postbacks.send(str(entry["job"]), {})
            row.fix = "sent again"
