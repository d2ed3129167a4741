"""`stripe-everflow report conversions|refunds`: what the ledger says reached Everflow.

Reads LedgerTable of a deployed stack (``--stack NAME``, resolved through its
CloudFormation outputs) or of the local stack (``--endpoint`` = its AWS endpoint),
keeps the entries whose Stripe time falls in ``[--from, --to]`` (UTC days,
inclusive), and prints them with totals per currency, as a table, CSV or JSON.

* ``conversions``: initial conversions and rebills — status, amount, the Everflow
  conversion id and its state after refunds (reversed / adjusted sale amount).
* ``refunds``: refunds and disputes — the Everflow action taken (reversal,
  adjustment, restore, record only, not ours), the refunded amount and the charge's.
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
    "currency",
    "everflow_action",
    "sale_amount_after",
    "status",
    "job_key",
)


def ledger_client(endpoint: str | None, stack: str | None, region: str | None) -> tuple[Any, str]:
    """A DynamoDB client and the ledger's table name, for the local or a deployed stack."""
    target = resolve_target(endpoint, stack, region)
    table = "LedgerTable" if target.endpoint else target.output("LedgerTableName")
    return target.client("dynamodb"), table


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


COUNTED_REFUND_STATES = ("adjusted", "reversed", "recorded", "not_ours")
_ACTIONS = {
    "reverse": "reversal",
    "adjust": "adjustment",
    "restore": "restore",
    "record": "recorded",
}
_CONVERSION_ACTIONS = ("conversion",)
_REFUND_ACTIONS = ("refund", "dispute_opened", "dispute_closed")
_REPORTED_STATUSES = ("not_ours", "superseded", "nothing_to_undo")


def refund_rows(
    entries: Sequence[dict[str, Any]], ledger: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Rows of the refund and dispute ``entries``; their conversions are looked up in
    the whole ``ledger`` (a refund's conversion is usually from an earlier period)."""
    by_key = {_job_key(e): e for e in (ledger if ledger is not None else entries)}
    rows = []
    for e in entries:
        action = e.get("action")
        if action not in _REFUND_ACTIONS:
            continue
        conversion = by_key.get(_text(e.get("conversion_job_key")), {})
        if action != "refund":
            action = f"{action} ({_text(e.get('dispute_status'))})"
        status = _text(e.get("status"))
        rows.append(
            {
                "date": _date_cell(e),
                "action": action,
                "charge_id": _text(e.get("charge_id")),
                "dispute_id": _text(e.get("dispute_id")),
                "order_id": _order_id(conversion),
                "refunded": _text(e.get("amount_refunded")),
                "charge_amount": _text(e.get("charge_amount")),
                "currency": _text(e.get("currency")),
                "everflow_action": status
                if status in _REPORTED_STATUSES
                else _ACTIONS.get(_text(e.get("everflow_action")), "none"),
                "sale_amount_after": _text(e.get("sale_amount")),
                "status": status,
                "job_key": _job_key(e),
            }
        )
    return rows


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


def refund_totals(
    rows: Sequence[dict[str, Any]], notes: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """Per currency: refunded on attributed conversions (each charge's latest cumulative
    amount), refunded on payments the bridge never reported, and disputes by stage.
    A refund whose amount or currency cannot be read is left out (and named)."""
    latest: dict[tuple[str, str, bool], Decimal] = {}
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        currency = _currency(row["currency"])
        # Refund states that took effect (applied at Everflow or recorded), and the
        # refunds of money the bridge never reported, counted apart.
        if row["action"] == "refund" and row["status"] in COUNTED_REFUND_STATES:
            refunded = _amount(row["refunded"] or 0)
            if currency is None or refunded is None:
                unreadable = [
                    n for n, v in (("currency", currency), ("refunded", refunded)) if v is None
                ]
                _note_left_out(notes, row, unreadable)
                continue
            key = (currency, row["charge_id"], row["status"] == "not_ours")
            latest[key] = max(latest.get(key, Decimal(0)), refunded)
        elif row["action"].startswith("dispute"):
            if currency is None:
                _note_left_out(notes, row, ["currency"])
                continue
            totals[currency][row["action"].split(" ")[0]] += 1
    for (currency, _, not_ours), amount in latest.items():
        if not_ours:
            totals[currency]["not_ours_refunded"] += amount
        else:
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
    rows = refund_rows(period, entries)
    return Report(rows, REFUND_COLUMNS, refund_totals(rows, notes), notes)


def build_report(
    kind: str, entries: Sequence[dict[str, Any]], start: date | None, end: date | None, fmt: str
) -> str:
    return render(prepare_report(kind, entries, start, end), fmt)
