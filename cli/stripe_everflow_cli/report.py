"""`stripe-everflow report conversions|refunds`: what the ledger says reached Everflow.

Reads LedgerTable of a deployed stack (``--stack NAME``, resolved through its
CloudFormation outputs) or of the local stack (``--endpoint`` = its AWS endpoint),
keeps the entries whose Stripe time falls in ``[--from, --to]`` (UTC days,
inclusive), and prints them with totals per currency, as a table, CSV or JSON.

* ``conversions``: initial conversions and rebills — status, amount, the Everflow
  conversion id and its state after refunds (reversed / adjusted sale amount).
* ``refunds``: refunds, refunds that failed, and disputes — the Everflow action
  taken (reversal, restore, adjustment, payout prorated, record only, not ours, restore
  needs the key), the refunded amount and the charge's, the failed refund's amount,
  the sale amount and payout after — and, read from AttributionTable, those still
  waiting for their payment (status ``waiting``: the job they will send, since when,
  and when they give up and are recorded not ours).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from stripe_everflow.adapters.dynamodb import from_attributes
from stripe_everflow.domain.money import currency_exponent
from stripe_everflow.domain.undo import FailedRefund, RefundState, effective_refunded
from stripe_everflow_cli.targets import resolve_target

CONVERSION_COLUMNS = (
    "date",
    "kind",
    "order_id",
    "transaction_id",
    "amount",
    "currency",
    "status",
    "everflow_state",
    "sale_amount",
    "conversion_id",
    "job_key",
)
REFUND_COLUMNS = (
    "date",
    "action",
    "charge_id",
    "dispute_id",
    "order_id",
    "refunded",
    "charge_amount",
    "failed",
    "currency",
    "everflow_action",
    "sale_amount_after",
    "payout_after",
    "status",
    "job_key",
)


def ledger_client(endpoint: str | None, stack: str | None, region: str | None) -> tuple[Any, str]:
    """A DynamoDB client and the ledger's table name, for the local or a deployed stack."""
    target = resolve_target(endpoint, stack, region)
    table = "LedgerTable" if target.endpoint else target.output("LedgerTableName")
    return target.client("dynamodb"), table


def read_entries(
    endpoint: str | None, stack: str | None, region: str | None
) -> list[dict[str, Any]]:
    """The ledger's job entries, and the refunds and disputes waiting for their payment
    (as entries of status ``waiting``) of every account the ledger names."""
    from stripe_everflow_cli.stack_access import StackAccess

    access = StackAccess(resolve_target(endpoint, stack, region), stack)
    dynamodb = access.target.client("dynamodb")
    entries = read_ledger(dynamodb, access.table("LedgerTable"))
    accounts = {str(e["account"]) for e in entries if isinstance(e.get("account"), str)}
    waiting = read_waiting(dynamodb, access.table("AttributionTable"), accounts | {"default"})
    return entries + waiting


def read_waiting(dynamodb: Any, table: str, accounts: Iterable[str]) -> list[dict[str, Any]]:
    """Each refund or dispute of ``accounts`` waiting for its payment, as the ledger
    entry its job will make, with status ``waiting``, ``waiting_since`` and
    ``give_up_at``. An item that cannot be read is kept as an entry naming it."""
    from stripe_everflow.adapters.dynamodb.ledger import entry_of
    from stripe_everflow.adapters.dynamodb.store import AttributionStore
    from stripe_everflow.domain.errors import JobError
    from stripe_everflow.domain.jobs import PostbackJob

    store = AttributionStore(table, dynamodb)
    entries: list[dict[str, Any]] = []
    for account in sorted(accounts):
        for waiting in store.waiting_of(account):
            try:
                entry = entry_of(PostbackJob.from_json(waiting.job))
            except (JobError, ValueError):
                # counted as a waiting refund without amount or currency: named in notes
                entry = {"job_key": f"waiting:{account}:{waiting.event_id}", "action": "refund"}
            entries.append(
                entry
                | {
                    "pk": f"waiting#{account}#{waiting.event_id}",
                    "status": "waiting",
                    "waiting_since": waiting.waiting_since,
                    "give_up_at": waiting.give_up_at,
                }
            )
    return entries


def read_ledger(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every job entry of the ledger (links and rate-limit windows left out)."""
    entries: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for raw in page.get("Items", []):
            item = from_attributes(raw)
            if str(item.get("pk", "")).startswith("job#"):
                entries.append(item)
    return entries


# The ledger is read as it is, not as it should be: an entry written by an older
# version, edited by hand or damaged must not stop the report. Every field is read
# through these, and what cannot be read is named in the report's notes.
_LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, datetime's last second
_MAX_AMOUNT = Decimal(10) ** 15  # far above any real payment, far below Decimal's limits
_CURRENCY_LENGTH = 3
_LARGEST_NUMBER = 10**38  # DynamoDB numbers have at most 38 digits


def _text(value: Any) -> str:
    """A cell's text: strings and numbers as they are (control characters shown as
    ``?``), anything else (absent, a list, an object, a boolean) empty."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int) and abs(value) >= _LARGEST_NUMBER:
        return ""  # not a DynamoDB number, and past what str() of an int may convert
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return "".join(ch if ch.isprintable() else "?" for ch in value)
    return ""


def _timestamp(value: Any) -> int | None:
    """Unix seconds between 1970 and 9999, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or abs(value) > _LATEST_TIMESTAMP:
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _LATEST_TIMESTAMP:
        return value
    return None


def _amount(value: Any) -> Decimal | None:
    """A money amount (a decimal string or number, 0 or more), else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (ArithmeticError, ValueError):
        return None
    if not amount.is_finite() or not 0 <= amount < _MAX_AMOUNT:
        return None
    return amount


def _currency(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == _CURRENCY_LENGTH and value.isalpha():
        return value.upper() if value.isascii() else None
    return None


def _job_key(entry: Mapping[str, Any]) -> str:
    return _text(entry.get("job_key")) or _text(entry.get("pk")).removeprefix("job#")


def _moment(entry: Mapping[str, Any], notes: list[str] | None = None) -> int | None:
    """When the Stripe event happened (``occurred_at``), else when the ledger first
    saw the job (``created_at``), else None; a fallback is noted."""
    for name in ("occurred_at", "created_at"):
        moment = _timestamp(entry.get(name))
        if moment is not None:
            if name != "occurred_at" and notes is not None:
                notes.append(f"{_job_key(entry)}: occurred_at unreadable, dated by {name}")
            return moment
    return None


def _day(entry: Mapping[str, Any]) -> date | None:
    moment = _moment(entry)
    return None if moment is None else datetime.fromtimestamp(moment, UTC).date()


def _split_by_period(
    entries: Iterable[dict[str, Any]], start: date | None, end: date | None, notes: list[str]
) -> list[dict[str, Any]]:
    kept = []
    for entry in entries:
        moment = _moment(entry, notes)
        if moment is None:
            if start or end:
                notes.append(
                    f"{_job_key(entry)}: occurred_at and created_at unreadable,"
                    " left out of the period"
                )
                continue
            notes.append(f"{_job_key(entry)}: occurred_at and created_at unreadable, undated")
            kept.append(entry)
            continue
        day = datetime.fromtimestamp(moment, UTC).date()
        if (start and day < start) or (end and day > end):
            continue
        kept.append(entry)
    # Undated entries (kept only without a period) come last.
    return sorted(kept, key=lambda e: (_moment(e) is None, _moment(e) or 0, _job_key(e)))


def in_period(
    entries: Iterable[dict[str, Any]], start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """The entries whose day falls in ``[start, end]``, in time order."""
    return _split_by_period(entries, start, end, [])


def _date_cell(entry: Mapping[str, Any]) -> str:
    day = _day(entry)
    return "" if day is None else day.isoformat()


def _order_id(entry: Mapping[str, Any]) -> str:
    for name in ("invoice_id", "payment_intent_id", "charge_id"):
        value = _text(entry.get(name))
        if value:
            return value
    return ""


def conversion_rows(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "date": _date_cell(e),
            "kind": _text(e.get("kind")),
            "order_id": _order_id(e),
            "transaction_id": _text(e.get("transaction_id")),
            "amount": _text(e.get("amount")),
            "currency": _text(e.get("currency")),
            "status": _text(e.get("status")),
            "everflow_state": _text(e.get("everflow_state"))
            or ("approved" if e.get("status") == "posted" else ""),
            "sale_amount": _text(e.get("sale_amount")),
            "conversion_id": _text(e.get("conversion_id")),
            "job_key": _job_key(e),
        }
        for e in entries
        if e.get("action") in _CONVERSION_ACTIONS
    ]


# The states of refund, refund-failure and dispute jobs that took effect: applied at
# Everflow, recorded, or waiting for the API key (the ledger counts them), and the ones
# of money the bridge never reported, counted apart.
COUNTED_REFUND_STATES = (
    "adjusted",
    "reversed",
    "restored",
    "recorded",
    "restore_needs_key",
    "not_ours",
)
_ACTIONS = {
    "reverse": "reversal",
    "adjust": "adjustment",
    "restore": "restore",
    "prorate": "payout prorated",
    "record": "recorded",
}
_CONVERSION_ACTIONS = ("conversion",)
_REFUND_ACTIONS = ("refund", "refund_failed", "dispute_opened", "dispute_closed")
_REPORTED_STATUSES = {
    "not_ours": "not_ours",
    "superseded": "superseded",
    "nothing_to_undo": "nothing_to_undo",
    "restore_needs_key": "restore needs key",
    "waiting": "none yet: waits for its payment",
}


def _everflow_action(entry: Mapping[str, Any]) -> str:
    """The calls a job made, in order ("restore + adjustment"), or why it made none."""
    status = _text(entry.get("status"))
    if status in _REPORTED_STATUSES:
        return _REPORTED_STATUSES[status]
    steps = _text(entry.get("everflow_action")).split("+")
    labels = [_ACTIONS.get(step) for step in steps]
    return " + ".join(label for label in labels if label) or "none"


def _refund_row(e: Mapping[str, Any], by_key: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    conversion = by_key.get(_text(e.get("conversion_job_key")), {})
    action = _text(e.get("action"))
    if action.startswith("dispute"):
        action = f"{action} ({_text(e.get('dispute_status'))})"
    return {
        "date": _date_cell(e),
        "action": action,
        "charge_id": _text(e.get("charge_id")),
        "dispute_id": _text(e.get("dispute_id")),
        "order_id": _order_id(conversion),
        "refunded": _text(e.get("amount_refunded")),
        "charge_amount": _text(e.get("charge_amount")),
        # A refund that failed: the amount it gave back.
        "failed": _text(e.get("amount")) if action == "refund_failed" else "",
        "currency": _text(e.get("currency")),
        "everflow_action": _everflow_action(e),
        "sale_amount_after": _text(e.get("sale_amount")),
        "payout_after": _text(e.get("payout_after")),
        "status": _text(e.get("status")),
        "job_key": _job_key(e),
    }


def refund_rows(
    entries: Sequence[dict[str, Any]], ledger: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Rows of the refund, refund-failure and dispute ``entries``; their conversions
    are looked up in the whole ``ledger`` (a refund's conversion is usually from an
    earlier period)."""
    by_key = {_job_key(e): e for e in (ledger if ledger is not None else entries)}
    return [_refund_row(e, by_key) for e in entries if e.get("action") in _REFUND_ACTIONS]


def conversion_totals(
    rows: Sequence[dict[str, Any]], notes: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """Per currency: what was posted, and what it counts for after refunds. A posted
    conversion whose amount, currency or sale amount cannot be read is left out (and
    named in ``notes``)."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row["status"] != "posted":
            continue
        amount, currency = _amount(row["amount"]), _currency(row["currency"])
        sale_amount = _amount(row["sale_amount"]) if row["sale_amount"] else amount
        if amount is None or currency is None or sale_amount is None:
            unreadable = [n for n, v in (("amount", amount), ("currency", currency)) if v is None]
            if row["sale_amount"] and _amount(row["sale_amount"]) is None:
                unreadable.append("sale_amount")
            _note_left_out(notes, row, unreadable)
            continue
        bucket = totals[currency]
        bucket["conversions"] += 1
        bucket["posted"] += amount
        bucket["net_after_refunds"] += (
            Decimal(0) if row["everflow_state"] == "reversed" else sale_amount
        )
    return {c: {k: str(v) for k, v in b.items()} for c, b in sorted(totals.items())}


def _minor(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(currency_exponent(currency)))


def refund_totals(
    rows: Sequence[dict[str, Any]],
    notes: list[str] | None = None,
    moments: Sequence[int | None] | None = None,
) -> dict[str, dict[str, str]]:
    """Per currency: refunded for good on attributed conversions — per charge, its
    latest cumulative refunded amount (by time, as the poster orders refund states)
    less the refunds that failed at or after it —, the same for payments the bridge
    never reported, the refunds that failed and the money they gave back, restores
    waiting for the API key, payouts prorated, disputes by stage, and the refunds and
    disputes still waiting for their payment (counted apart). ``moments``:
    each row's time (else the rows are taken in order). A row whose amount or currency
    cannot be read is left out (and named)."""
    latest: dict[tuple[str, str, bool], RefundState] = {}
    failures: dict[tuple[str, str, bool], list[FailedRefund]] = defaultdict(list)
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for index, row in enumerate(rows):
        currency = _currency(row["currency"])
        moment = (moments[index] if moments is not None else None) or index
        counted = row["status"] in COUNTED_REFUND_STATES
        if row["status"] == "waiting":
            # Not applied anywhere yet: counted apart, never in what was refunded.
            if currency is None:
                _note_left_out(notes, row, ["currency"])
                continue
            kind = "disputes_waiting" if row["action"].startswith("dispute") else "refunds_waiting"
            totals[currency][kind] += 1
            continue
        if row["action"] in ("refund", "refund_failed") and counted:
            field_name = "refunded" if row["action"] == "refund" else "failed"
            amount = _amount(row[field_name] or 0)
            if currency is None or amount is None:
                unreadable = [
                    n for n, v in (("currency", currency), (field_name, amount)) if v is None
                ]
                _note_left_out(notes, row, unreadable)
                continue
            key = (currency, row["charge_id"], row["status"] == "not_ours")
            minor = _minor(amount, currency)
            if row["action"] == "refund":
                state = RefundState(moment, minor)
                if key not in latest or state.is_after(latest[key]):
                    latest[key] = state
            else:
                failures[key].append(FailedRefund(minor, moment))
                if row["status"] != "not_ours":
                    totals[currency]["failed_refunds"] += 1
                    totals[currency]["failed_refunded"] += amount
        elif row["action"].startswith("dispute"):
            if currency is None:
                _note_left_out(notes, row, ["currency"])
                continue
            totals[currency][row["action"].split(" ")[0]] += 1
        if currency is not None and row["status"] == "restore_needs_key":
            totals[currency]["restores_needing_key"] += 1
        if currency is not None and "payout prorated" in row["everflow_action"]:
            totals[currency]["payouts_prorated"] += 1
    for key in sorted(set(latest) | set(failures)):
        currency, _, not_ours = key
        minor = effective_refunded(latest.get(key), failures.get(key, ()))
        amount = Decimal(minor).scaleb(-currency_exponent(currency))
        if not_ours:
            totals[currency]["not_ours_refunded"] += amount
        elif minor > 0:
            totals[currency]["refunded"] += amount
            totals[currency]["charges_refunded"] += 1
    return {c: {k: str(v) for k, v in b.items()} for c, b in sorted(totals.items())}


def _note_left_out(notes: list[str] | None, row: Mapping[str, Any], fields: list[str]) -> None:
    if notes is not None:
        notes.append(f"{row['job_key']}: {', '.join(fields)} unreadable, left out of the totals")


@dataclass(frozen=True)
class Report:
    rows: list[dict[str, Any]]
    columns: Sequence[str]
    totals: dict[str, dict[str, str]]
    # What could not be read in the ledger, one line per entry and reason.
    notes: list[str] = field(default_factory=list)


def render(report: Report, fmt: str) -> str:
    rows, columns, totals = report.rows, report.columns, report.totals
    if fmt == "json":
        document: dict[str, Any] = {"rows": rows, "totals": totals}
        if report.notes:
            document["notes"] = report.notes
        return json.dumps(document, indent=2, default=str)
    if fmt == "csv":
        # The notes would break the CSV: the command prints them on stderr.
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    lines.append("")
    lines.append("totals per currency:" if totals else "no entries in this period")
    for currency, values in totals.items():
        lines.append(f"  {currency}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    if report.notes:
        lines.append("")
        lines.append("ledger entries not fully read:")
        lines += [f"  {note}" for note in report.notes]
    return "\n".join(lines)


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def prepare_report(
    kind: str, entries: Sequence[dict[str, Any]], start: date | None, end: date | None
) -> Report:
    """The rows and totals of ``kind`` for ``[start, end]``; never raises on what
    the ledger holds (an unreadable entry or field is named in ``notes``)."""
    notes: list[str] = []
    actions = _CONVERSION_ACTIONS if kind == "conversions" else _REFUND_ACTIONS
    period = _split_by_period((e for e in entries if e.get("action") in actions), start, end, notes)
    if kind == "conversions":
        rows = conversion_rows(period)
        return Report(rows, CONVERSION_COLUMNS, conversion_totals(rows, notes), notes)
    rows = refund_rows(period, entries)  # one per entry of the period, in its order
    moments = [_moment(e) for e in period]
    return Report(rows, REFUND_COLUMNS, refund_totals(rows, notes, moments), notes)


def build_report(
    kind: str, entries: Sequence[dict[str, Any]], start: date | None, end: date | None, fmt: str
) -> str:
    return render(prepare_report(kind, entries, start, end), fmt)
