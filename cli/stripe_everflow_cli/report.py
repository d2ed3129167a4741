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
from collections.abc import Iterable, Sequence
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


def _day(entry: dict[str, Any]) -> date | None:
    moment = entry.get("occurred_at") or entry.get("created_at")
    return datetime.fromtimestamp(int(moment), UTC).date() if moment else None


def in_period(
    entries: Iterable[dict[str, Any]], start: date | None, end: date | None
) -> list[dict[str, Any]]:
    kept = []
    for entry in entries:
        day = _day(entry)
        if day is None or (start and day < start) or (end and day > end):
            continue
        kept.append(entry)
    return sorted(kept, key=lambda e: (int(e.get("occurred_at") or 0), str(e["job_key"])))


def _order_id(entry: dict[str, Any]) -> str:
    return str(
        entry.get("invoice_id") or entry.get("payment_intent_id") or entry.get("charge_id") or ""
    )


def conversion_rows(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "date": str(_day(e)),
            "kind": e.get("kind") or "",
            "order_id": _order_id(e),
            "transaction_id": e.get("transaction_id") or "",
            "amount": e.get("amount") or "",
            "currency": e.get("currency") or "",
            "status": e.get("status") or "",
            "everflow_state": e.get("everflow_state")
            or ("approved" if e.get("status") == "posted" else ""),
            "sale_amount": e.get("sale_amount") or "",
            "conversion_id": e.get("conversion_id") or "",
            "job_key": e["job_key"],
        }
        for e in entries
        if e.get("action") == "conversion"
    ]


COUNTED_REFUND_STATES = ("adjusted", "reversed", "recorded", "not_ours")
_ACTIONS = {
    "reverse": "reversal",
    "adjust": "adjustment",
    "restore": "restore",
    "record": "recorded",
}


def refund_rows(
    entries: Sequence[dict[str, Any]], ledger: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Rows of the refund and dispute ``entries``; their conversions are looked up in
    the whole ``ledger`` (a refund's conversion is usually from an earlier period)."""
    by_key = {e["job_key"]: e for e in (ledger if ledger is not None else entries)}
    rows = []
    for e in entries:
        if e.get("action") not in ("refund", "dispute_opened", "dispute_closed"):
            continue
        conversion = by_key.get(str(e.get("conversion_job_key") or ""), {})
        action = str(e.get("action"))
        if action != "refund":
            action = f"{action} ({e.get('dispute_status')})"
        rows.append(
            {
                "date": str(_day(e)),
                "action": action,
                "charge_id": e.get("charge_id") or "",
                "dispute_id": e.get("dispute_id") or "",
                "order_id": _order_id(conversion) if conversion else "",
                "refunded": e.get("amount_refunded") or "",
                "charge_amount": e.get("charge_amount") or "",
                "currency": e.get("currency") or "",
                "everflow_action": _ACTIONS.get(str(e.get("everflow_action")), "none")
                if e.get("status") not in ("not_ours", "superseded", "nothing_to_undo")
                else e["status"],
                "sale_amount_after": e.get("sale_amount") or "",
                "status": e.get("status") or "",
                "job_key": e["job_key"],
            }
        )
    return rows


def conversion_totals(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per currency: what was posted, and what it counts for after refunds."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row["status"] != "posted":
            continue
        amount = Decimal(str(row["amount"]))
        bucket = totals[row["currency"]]
        bucket["conversions"] += 1
        bucket["posted"] += amount
        if row["everflow_state"] == "reversed":
            net = Decimal(0)
        elif row["sale_amount"]:
            net = Decimal(str(row["sale_amount"]))
        else:
            net = amount
        bucket["net_after_refunds"] += net
    return {c: {k: str(v) for k, v in b.items()} for c, b in sorted(totals.items())}


def refund_totals(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per currency: refunded on attributed conversions (each charge's latest cumulative
    amount), refunded on payments the bridge never reported, and disputes by stage."""
    latest: dict[tuple[str, str, bool], Decimal] = {}
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        # Refund states that took effect (applied at Everflow or recorded), and the
        # refunds of money the bridge never reported, counted apart.
        if row["action"] == "refund" and row["status"] in COUNTED_REFUND_STATES:
            key = (row["currency"], row["charge_id"], row["status"] == "not_ours")
            latest[key] = max(latest.get(key, Decimal(0)), Decimal(str(row["refunded"] or 0)))
        elif row["action"].startswith("dispute"):
            totals[row["currency"]][row["action"].split(" ")[0]] += 1
    for (currency, _, not_ours), amount in latest.items():
        if not_ours:
            totals[currency]["not_ours_refunded"] += amount
        else:
            totals[currency]["refunded"] += amount
            totals[currency]["charges_refunded"] += 1
    return {c: {k: str(v) for k, v in b.items()} for c, b in sorted(totals.items())}


def render(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    totals: dict[str, dict[str, str]],
    fmt: str,
) -> str:
    if fmt == "json":
        return json.dumps({"rows": list(rows), "totals": totals}, indent=2, default=str)
    if fmt == "csv":
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
    return "\n".join(lines)


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def build_report(
    kind: str, entries: Sequence[dict[str, Any]], start: date | None, end: date | None, fmt: str
) -> str:
    period = in_period(entries, start, end)
    if kind == "conversions":
        rows = conversion_rows(period)
        return render(rows, CONVERSION_COLUMNS, conversion_totals(rows), fmt)
    rows = refund_rows(period, entries)
    return render(rows, REFUND_COLUMNS, refund_totals(rows), fmt)
