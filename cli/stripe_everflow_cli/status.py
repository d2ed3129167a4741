"""`stripe-everflow status`: a stack at a glance, read-only.

* the queues and their DLQs: messages waiting, in flight and delayed (a deployed
  stack: also the age of the oldest message, from CloudWatch);
* the ledger: conversions posted (and their amounts by currency), rejected by
  Everflow, not settled yet (sending, retryable, failed), refunds and disputes —
  today and this month (UTC);
* the last event the bridge handled (the newest ledger entry or parked payment);
* payments parked waiting for their click, and refunds and disputes waiting for
  their payment.

Reads SQS, LedgerTable and AttributionTable (a scan of its parked items) of the
local stack or of ``--stack NAME``; ``--format json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from stripe_everflow_cli.targets import StackTarget, resolve_target

QUEUES = ("PaymentEventsQueue", "PaymentEventsDLQ", "PostbackQueue", "PostbackDLQ")
UNSETTLED = ("sending", "retryable", "failed")
PARKED_PREFIXES = ("parked#email#", "parked#customer#")
WAITING_PREFIX = "parked#undo#"


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: int | None = None  # deployed stacks only (CloudWatch)


@dataclass
class LedgerTotals:
    posted: int = 0
    posted_amounts: dict[str, str] = field(default_factory=dict)
    rejected: int = 0
    unsettled: int = 0
    refunds_and_disputes: int = 0


@dataclass(frozen=True)
class LastEvent:
    at: int
    what: str


@dataclass(frozen=True)
class StackStatus:
    stack: str
    queues: list[QueueDepth]
    today: LedgerTotals
    this_month: LedgerTotals
    last_event: LastEvent | None
    parked_payments: int
    oldest_parked_at: int | None
    waiting_refunds: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=["table", "json"], default="table", help="output format"
    )


def run(args: argparse.Namespace, target: StackTarget | None = None) -> int:
    target = target or resolve_target(args.endpoint, args.stack, args.region)
    found = collect_status(target, now=time.time())
    print(json.dumps(asdict(found), indent=2) if args.format == "json" else render(found))
    return 0


# ---------------------------------------------------------------- reading


def queue_depths(target: StackTarget, cloudwatch: Any | None = None) -> list[QueueDepth]:
    sqs = target.client("sqs")
    depths = []
    for name in QUEUES:
        url = target.queue_url(sqs, name)
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        depths.append(
            QueueDepth(
                name=name,
                visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
                oldest_age_seconds=(
                    None if cloudwatch is None else oldest_message_age(cloudwatch, url)
                ),
            )
        )
    return depths


def oldest_message_age(cloudwatch: Any, queue_url: str, now: float | None = None) -> int | None:
    """The queue's ApproximateAgeOfOldestMessage over the last 10 minutes (the
    newest datapoint), or None when CloudWatch has none."""
    end = datetime.fromtimestamp(now or time.time(), UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_url.rstrip("/").rsplit("/", 1)[-1]}],
        StartTime=datetime.fromtimestamp(end.timestamp() - 600, UTC),
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return int(points[-1]["Maximum"]) if points else None


def ledger_entries(target: StackTarget) -> list[dict[str, Any]]:
    from stripe_everflow_cli.report import read_ledger

    return read_ledger(target.client("dynamodb"), target.resource("LedgerTable"))


def parked_items(target: StackTarget) -> list[dict[str, Any]]:
    """AttributionTable's parked payments and waiting refunds (keys and times only)."""
    from stripe_everflow.adapters.dynamodb import from_attributes

    dynamodb = target.client("dynamodb")
    items = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=target.resource("AttributionTable"),
        FilterExpression="begins_with(pk, :parked)",
        ExpressionAttributeValues={":parked": {"S": "parked#"}},
        ProjectionExpression="pk, sk, expires_at, parked_at, waiting_since",
    ):
        items += [from_attributes(raw) for raw in page.get("Items", [])]
    return items


def collect_status(target: StackTarget, now: float) -> StackStatus:
    cloudwatch = None if target.local else target.client("cloudwatch")
    entries = ledger_entries(target)
    parked = parked_items(target)
    today = datetime.fromtimestamp(now, UTC).date()
    parked_ids, oldest_parked = live_parked(parked, now)
    return StackStatus(
        stack=target.name,
        queues=queue_depths(target, cloudwatch),
        today=ledger_totals(entries, today, today),
        this_month=ledger_totals(entries, today.replace(day=1), today),
        last_event=last_event(entries, parked),
        parked_payments=len(parked_ids),
        oldest_parked_at=oldest_parked,
        waiting_refunds=sum(
            1
            for item in parked
            if str(item.get("pk", "")).startswith(WAITING_PREFIX)
            and not str(item.get("sk", "")).startswith("#")
            and _live(item, now)
        ),
    )


# ---------------------------------------------------------------- reckoning


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _live(item: Mapping[str, Any], now: float) -> bool:
    expires = _number(item.get("expires_at"))
    return expires is None or expires > now


def live_parked(items: Iterable[Mapping[str, Any]], now: float) -> tuple[set[str], int | None]:
    """The event ids of the payments parked (one payment is parked under its email and
    its customer: counted once), and when the oldest was parked."""
    ids: set[str] = set()
    oldest: int | None = None
    for item in items:
        pk = str(item.get("pk", ""))
        if not pk.startswith(PARKED_PREFIXES) or not _live(item, now):
            continue
        ids.add(str(item.get("sk", "")))
        at = _number(item.get("parked_at"))
        if at is not None and (oldest is None or at < oldest):
            oldest = at
    return ids, oldest


def ledger_totals(entries: Iterable[dict[str, Any]], start: date, end: date) -> LedgerTotals:
    from stripe_everflow_cli.report import in_period

    totals = LedgerTotals()
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for entry in in_period(entries, start, end):
        status = entry.get("status")
        if entry.get("action") != "conversion":
            totals.refunds_and_disputes += 1
            continue
        if status == "posted":
            totals.posted += 1
            currency = entry.get("currency")
            try:
                amount = Decimal(str(entry.get("amount")))
            except (InvalidOperation, ValueError):
                continue
            if isinstance(currency, str) and amount.is_finite():
                amounts[currency.upper()] += amount
        elif status == "rejected":
            totals.rejected += 1
        elif status in UNSETTLED:
            totals.unsettled += 1
    totals.posted_amounts = {c: format(a, "f") for c, a in sorted(amounts.items())}
    return totals


def last_event(
    entries: Iterable[Mapping[str, Any]], parked: Iterable[Mapping[str, Any]]
) -> LastEvent | None:
    """The newest thing the bridge did with an event: a ledger entry made, or a
    payment parked."""
    newest: LastEvent | None = None
    for entry in entries:
        at = _number(entry.get("created_at"))
        if at is not None and (newest is None or at > newest.at):
            kind = entry.get("kind") or entry.get("action") or "job"
            newest = LastEvent(at, f"{kind} {entry.get('status', '')}".strip())
    for item in parked:
        at = _number(item.get("parked_at"))
        parked_payment = str(item.get("pk", "")).startswith(PARKED_PREFIXES)
        if at is not None and parked_payment and (newest is None or at > newest.at):
            newest = LastEvent(at, "payment parked")
    return newest


# ---------------------------------------------------------------- showing


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def when(at: int, now: float) -> str:
    moment = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{moment} ({ago(now - at)} ago)"


def _totals_line(label: str, totals: LedgerTotals) -> str:
    money = ", ".join(f"{a} {c}" for c, a in totals.posted_amounts.items()) or "nothing"
    return (
        f"  {label:<11} {totals.posted} posted ({money}), {totals.rejected} rejected by"
        f" Everflow, {totals.unsettled} not settled, {totals.refunds_and_disputes}"
        " refunds/disputes"
    )


def render(found: StackStatus, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [f"stack: {found.stack}", "queues (waiting / in flight / delayed):"]
    for queue in found.queues:
        age = (
            "" if queue.oldest_age_seconds is None else f"  oldest {ago(queue.oldest_age_seconds)}"
        )
        flag = (
            "  ← look at it (stripe-everflow redrive)"
            if queue.name.endswith("DLQ") and (queue.visible or queue.in_flight or queue.delayed)
            else ""
        )
        lines.append(
            f"  {queue.name:<20} {queue.visible:>6} / {queue.in_flight:>4} / {queue.delayed:>4}"
            f"{age}{flag}"
        )
    lines.append("ledger (UTC):")
    lines.append(_totals_line("today", found.today))
    lines.append(_totals_line("this month", found.this_month))
    lines.append(
        "last event:  "
        + (
            "none yet"
            if found.last_event is None
            else f"{when(found.last_event.at, now)}, {found.last_event.what}"
        )
    )
    parked = f"parked:      {found.parked_payments} payment(s) waiting for their click"
    if found.oldest_parked_at is not None:
        parked += f", oldest since {when(found.oldest_parked_at, now)}"
    lines.append(parked)
    lines.append(f"waiting:     {found.waiting_refunds} refund(s)/dispute(s) waiting for payment")
    return "\n".join(lines)


def count_statuses(entries: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Ledger entries by status (for doctor)."""
    return Counter(str(e.get("status", "")) for e in entries)
