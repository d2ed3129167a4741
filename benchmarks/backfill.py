"""backfill: Stripe objects through to PaymentEventsQueue, Stripe's latency excluded.

20,000 paid invoices (the basil ``invoice.paid`` of events/, each with its own id,
customer, email and time) are listed from memory instead of Stripe's API, turned into
events and fed through ``intake.webhook.queue_event`` (mode, allow-list, shape, email
hashing, the queue message) exactly as ``stripe-everflow backfill`` feeds them:

* ``into a sink``: the queue is a list in this process — the bridge's own ceiling;
* ``into SQS (moto)``: SendMessageBatch requests of 10 to a moto server in another
  process (``stack_access.BatchSender``), one sender, no concurrency — the queue's
  latency is counted here, a real SQS answers in about the same time per batch.

Goal (issue "History and proof"): ≥ 10,000 objects/s into the queue on this machine,
so that Stripe's own list API — 100 objects a page, about 100 read requests/s in live
mode and 25 in test mode (https://docs.stripe.com/rate-limits), so at best 10,000
and 2,500 objects/s — and not the bridge bounds a real backfill. The ratio column is
the figure over that goal.
"""

from __future__ import annotations

import copy
import time
from datetime import date
from typing import Any

from benchlib import SECRET_JSON, Row, load_invoice_paid_event, median, spread, verdict
from matcher import _start_moto

OBJECTS = 20_000
ROUNDS = 3
GOAL_PER_SECOND = 10_000.0
START = 1_767_225_600  # 2026-01-01T00:00:00Z


class _Lister:
    def __init__(self, invoices: list[dict[str, Any]]) -> None:
        self.invoices = invoices
        self.requests = 0

    def list(self, kind: str, start: int, end: int) -> list[dict[str, Any]]:
        if kind != "invoices":
            return []
        return [i for i in self.invoices if start <= i["created"] < end]

    def charge(self, charge_id: str) -> dict[str, Any]:
        raise AssertionError("no refunds in this run")


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    def send(self, body: str, attributes: dict[str, str]) -> str:
        self.count += 1
        return "sink"

    def flush(self) -> None:
        return None


def _invoices() -> list[dict[str, Any]]:
    template = load_invoice_paid_event()["data"]["object"]
    invoices = []
    for n in range(OBJECTS):
        invoice = copy.deepcopy(template)
        moment = START + n * 30  # 20,000 over about a week
        invoice.update(
            id=f"in_bench{n:07d}",
            customer=f"cus_bench{n:07d}",
            customer_email=f"customer{n}@example.com",
            created=moment,
        )
        invoice["status_transitions"]["paid_at"] = moment
        invoices.append(invoice)
    return invoices


def _run(invoices: list[dict[str, Any]], sender: Any) -> float:
    """Objects per second of one backfill over the invoices into ``sender``."""
    from stripe_everflow.config import WebhookSettings
    from stripe_everflow.domain.secret import CachedSecret
    from stripe_everflow.intake.webhook import queue_event
    from stripe_everflow_cli.backfill import backfill as run_backfill
    from stripe_everflow_cli.backfill import days

    secret = CachedSecret(lambda: SECRET_JSON, max_age=float("inf"))
    account = secret.get().account("default")
    assert account is not None
    settings = WebhookSettings.from_environ(
        # emails hashed before queueing: the default, and the costlier path
        {
            "BRIDGE_SECRET_NAME": "s",
            "PAYMENT_EVENTS_QUEUE_URL": "https://sqs/q",
            "CLICK_SOURCES": "api,stripe",
        }
    )

    def feed(events: list[dict[str, Any]]) -> list[Any]:
        outcomes = [
            queue_event(
                e, account, settings=settings, secret=secret, sender=sender, now=0.0,
                source="backfill",
            )
            for e in events
        ]  # fmt: skip
        sender.flush()
        return outcomes

    started = time.perf_counter()
    fed = run_backfill(
        _Lister(invoices),  # type: ignore[arg-type]
        days(date(2026, 1, 1), date(2026, 1, 8)),
        feed,
        checkpoint=None,
    )
    elapsed = time.perf_counter() - started
    assert fed.objects == len(invoices) and fed.accepted == len(invoices), fed
    return fed.objects / elapsed


def backfill() -> list[Row]:
    from stripe_everflow_cli.stack_access import BatchSender

    invoices = _invoices()
    sink_rates = [_run(invoices, _Sink()) for _ in range(ROUNDS)]
    process, endpoint = _start_moto()
    try:
        import boto3

        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106
        )
        url = sqs.create_queue(QueueName="PaymentEventsQueue")["QueueUrl"]
        sqs_rate = _run(invoices[:5_000], BatchSender(sqs, url))
    finally:
        process.terminate()
    sink = median(sink_rates)
    return [
        Row(
            "backfill: objects/s into the queue (sink)",
            sink,
            "objects/s",
            f">= {GOAL_PER_SECOND:,.0f}/s",
            sink / GOAL_PER_SECOND,
            verdict(sink >= GOAL_PER_SECOND),
            f"{OBJECTS:,} invoices, Stripe's latency excluded, {spread(sink_rates, 0)}",
        ),
        Row(
            "backfill: objects/s into SQS (moto, batches of 10)",
            sqs_rate,
            "objects/s",
            "",
            sqs_rate / GOAL_PER_SECOND,
            "",
            "5,000 invoices, one sender; a moto server in another process",
        ),
    ]
