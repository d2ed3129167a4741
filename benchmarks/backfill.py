"""backfill: Stripe objects through to PaymentEventsQueue, Stripe's latency excluded.

20,000 paid invoices (the basil ``invoice.paid`` of events/, each with its own id,
customer, email and time) are listed from memory instead of Stripe's API, turned into
events and fed through ``intake.webhook.queue_event`` (mode, allow-list, shape, email
hashing, the queue message) exactly as ``stripe-everflow backfill`` feeds them:

* ``into a sink``: the queue is a list in this process — the bridge's own ceiling;
* ``into SQS, 15 ms a request``: ``stack_access.BatchSender`` (SendMessageBatch of
  10, SENDERS requests at once) through a real botocore SQS client — its parameter
  checks, serialization, SigV4 signing and response parsing all run — whose HTTP
  send alone is replaced by an answer after 15 ms, what SQS takes from within its
  region. (A moto server is no model here: it slows down as its queue grows, and
  its own work would share these two cores.)

Goal (issue "History and proof"): ≥ 10,000 objects/s into the queue on this machine,
so that Stripe's own list API — 100 objects a page, about 100 read requests/s in live
mode and 25 in test mode (https://docs.stripe.com/rate-limits), so at best 10,000
and 2,500 objects/s — and not the bridge bounds a real backfill. The ratio column is
the figure over that goal.
"""

from __future__ import annotations

import copy
import json
import re
import time
from datetime import date
from typing import Any

from benchlib import SECRET_JSON, Row, load_invoice_paid_event, median, spread, verdict

OBJECTS = 20_000
ROUNDS = 3
GOAL_PER_SECOND = 10_000.0
SQS_LATENCY = 0.015
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


_ENTRY_IDS = re.compile(rb'"Id": ?"([^"]+)"')


class _Body:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Any:
        yield self.content


def _sqs_answers_after_latency(request: Any, **_: Any) -> Any:
    """botocore's ``before-send`` hook: SQS's answer to a SendMessageBatch (every
    entry accepted), after its in-region latency, instead of the HTTP round trip."""
    from botocore.awsrequest import AWSResponse

    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    entries = [
        {"Id": i.decode(), "MessageId": f"m-{i.decode()}", "MD5OfMessageBody": "-"}
        for i in _ENTRY_IDS.findall(body)
    ]
    time.sleep(SQS_LATENCY)
    answer = json.dumps({"Successful": entries}).encode()
    headers = {"content-type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 200, headers, _Body(answer))


def _slow_sqs() -> Any:
    """An SQS client made as ``StackAccess.payment_events_batch`` makes it."""
    import boto3
    from botocore.config import Config

    sqs = boto3.Session(
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - never leaves this process
        region_name="us-east-1",
    ).client("sqs", config=Config(parameter_validation=False))
    sqs.meta.events.register("before-send.sqs.SendMessageBatch", _sqs_answers_after_latency)
    return sqs


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
    from stripe_everflow_cli.stack_access import SENDERS, BatchSender

    invoices = _invoices()
    sink_rates = [_run(invoices, _Sink()) for _ in range(ROUNDS)]
    sender = BatchSender(_slow_sqs(), "https://sqs.us-east-1.amazonaws.com/1/PaymentEventsQueue")
    try:
        sqs_rates = [_run(invoices, sender) for _ in range(ROUNDS)]
    finally:
        sender.close()
    sqs_rate = median(sqs_rates)
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
            "backfill: objects/s into SQS (15 ms a batch of 10)",
            sqs_rate,
            "objects/s",
            f">= {GOAL_PER_SECOND:,.0f}/s",
            sqs_rate / GOAL_PER_SECOND,
            verdict(sqs_rate >= GOAL_PER_SECOND),
            f"{OBJECTS:,} invoices, SendMessageBatch x {SENDERS} at once, {spread(sqs_rates, 0)}",
        ),
    ]
