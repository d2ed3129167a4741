"""MatchPaymentFunction: DynamoDB requests per payment and per SQS batch of 10, and CPU
per event.

The matcher runs in this process through its real ``handle`` (Powertools
BatchProcessor included) against a moto server running in a *child process*, so
``time.process_time`` here counts the function's own work — matching, botocore
serialization and parsing — and none of the stand-in's. Every DynamoDB request the
function's client makes is counted by operation (a botocore hook); a write request
is a PutItem, UpdateItem, DeleteItem, BatchWriteItem or TransactWriteItems, whatever
it holds.

Four streams, each in batches of 10 distinct customers:

* new payments (the common case, and the CPU figure): first invoices of customers
  whose clicks are already known — each claims its money, pins its customer, claims
  the customer's first conversion and sends a job;
* rebills: the next invoice of those customers, already pinned;
* parked payments: first invoices of customers with no click yet;
* delivered again: the new payments' events once more (SQS or Stripe duplicates).

Goals: at most 3 DynamoDB write requests per new payment (issue 8; it was 6: the
idempotency record 2, the conversion and first-conversion claims, the pin, the job
record); lookups batched — at most 2 read requests per batch of 10, not one or more
per record (issue "Attribution").
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchlib import (
    PROJECT_ROOT,
    SECRET_JSON,
    FakeLambdaContext,
    Row,
    free_port,
    function_log,
    load_function_app,
    load_invoice_paid_event,
    median,
    spread,
    start_moto_server,
    stop_process,
    verdict,
)

BATCHES = 20  # of new payments (and of deliveries again)
SMALL_BATCHES = 5  # of rebills and of parked payments
BATCH_SIZE = 10
READ_OPERATIONS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITE_OPERATIONS = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
}


def _free_port() -> int:
    """(for ``posting``, which imports it from here)"""
    return free_port()


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """A moto server in a child process, its output to the benchmark log (for
    ``posting``, which imports it from here)."""
    with function_log() as log:
        return start_moto_server(log)


def _invoice(n: int, *, renewal: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(load_invoice_paid_event())
    invoice = event["data"]["object"]
    invoice.update(
        id=f"in_bench{n}", customer=f"cus_bench{n}", customer_email=f"customer{n}@example.com"
    )
    event["id"] = f"evt_bench{n}"
    if renewal:
        event["id"], invoice["id"] = f"evt_bench_renewal{n}", f"in_bench_renewal{n}"
        invoice["billing_reason"] = "subscription_cycle"
    return event


def _batch(events: list[dict[str, Any]]) -> dict[str, Any]:
    from stripe_everflow_cli.pollers import build_sqs_event

    messages = []
    for event in events:
        body = json.dumps(
            {
                "schema": "stripe-event/1",
                "source": "webhook",
                "account": "default",
                "received_at": int(time.time()),
                "event": event,
            }
        )
        n = len(messages)
        messages.append({"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body})
    return build_sqs_event(messages, "PaymentEventsQueue")


class _Stream:
    """Batches of one kind through ``handle``, with the DynamoDB requests they made."""

    def __init__(self, name: str, operations: Counter[str]) -> None:
        self.name, self._operations = name, operations
        self.counts: Counter[str] = Counter()
        self.batches = 0
        self.cpu_per_event: list[float] = []

    def run(
        self,
        handle: Callable[[dict[str, Any]], dict[str, Any]],
        batches: list[list[dict[str, Any]]],
    ) -> None:
        for events in batches:
            event = _batch(events)
            self._operations.clear()
            started = time.process_time()
            response = handle(event)
            self.cpu_per_event.append((time.process_time() - started) / len(events) * 1e6)
            if response["batchItemFailures"]:
                raise RuntimeError(f"records failed in the matcher benchmark ({self.name})")
            self.counts.update(self._operations)
            self.batches += 1

    def per_batch(self, operations: set[str]) -> float:
        return sum(n for op, n in self.counts.items() if op in operations) / self.batches

    def per_event(self, operations: set[str]) -> float:
        return self.per_batch(operations) / BATCH_SIZE

    def detail(self, operations: set[str]) -> str:
        events = self.batches * BATCH_SIZE
        found = sorted((op, n) for op, n in self.counts.items() if op in operations)
        return ", ".join(f"{op} {n / events:g}" for op, n in found) or "none"


def matcher() -> list[Row]:
    with function_log() as log:
        process, endpoint = start_moto_server(log)
        try:
            streams = _measure(endpoint)
        finally:
            stop_process(process)
    return _rows(*streams)


def _measure(endpoint: str) -> tuple[_Stream, _Stream, _Stream, _Stream]:
    import boto3

    from stripe_everflow.domain.attribution import StoredClick
    from stripe_everflow.domain.emails import email_hash
    from stripe_everflow_cli.provision import provision
    from stripe_everflow_cli.template import function_specs, load_template

    saved = dict(os.environ)
    try:
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": endpoint,
                "POWERTOOLS_METRICS_NAMESPACE": "Bench",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        template = load_template(PROJECT_ROOT / "template.yaml")
        resources = provision(
            template,
            sqs=boto3.client("sqs"),
            dynamodb=boto3.client("dynamodb"),
            secretsmanager=boto3.client("secretsmanager"),
            secret_string=SECRET_JSON,
        )
        [spec] = [s for s in function_specs(template) if s.logical_id == "MatchPaymentFunction"]
        os.environ.update(
            {k: str(v) for k, v in resources.resolver.resolve(spec.environment).items()}
        )
        app = load_function_app("match_payment")
        dependencies = app.Dependencies.from_environ(os.environ)
        store = dependencies.matcher.store
        operations: Counter[str] = Counter()
        store._db.meta.events.register(  # every DynamoDB request of the function's client
            "before-call.dynamodb", lambda model, **_: operations.update([model.name])
        )
        key = json.loads(SECRET_JSON)["email_hash_key"]
        known = range(BATCHES * BATCH_SIZE)
        for n in known:
            store.put_click(
                email_hash(f"customer{n}@example.com", key),
                StoredClick(f"ef_tx_{n}", int(time.time()) - 3600),
            )

        def handle(event: dict[str, Any]) -> dict[str, Any]:
            return dict(app.handle(event, FakeLambdaContext(), dependencies))

        def batches(numbers: range, **kind: bool) -> list[list[dict[str, Any]]]:
            events = [_invoice(n, **kind) for n in numbers]
            return [events[i : i + BATCH_SIZE] for i in range(0, len(events), BATCH_SIZE)]

        handle(_batch([_invoice(n) for n in range(10_000, 10_000 + BATCH_SIZE)]))  # warm-up
        new, rebills = _Stream("new payments", operations), _Stream("rebills", operations)
        parked, again = _Stream("parked", operations), _Stream("delivered again", operations)
        new.run(handle, batches(known))
        rebills.run(handle, batches(range(SMALL_BATCHES * BATCH_SIZE), renewal=True))
        unknown = range(20_000, 20_000 + SMALL_BATCHES * BATCH_SIZE)
        parked.run(handle, batches(unknown))
        again.run(handle, batches(known))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return new, rebills, parked, again


def _rows(new: _Stream, rebills: _Stream, parked: _Stream, again: _Stream) -> list[Row]:
    writes, reads = WRITE_OPERATIONS, READ_OPERATIONS
    new_writes, batch_reads = new.per_event(writes), new.per_batch(reads)
    rows = [
        Row(
            "matcher: DynamoDB write requests per new payment",
            new_writes,
            "requests",
            "<= 3 per payment",
            new_writes / 3,
            verdict(new_writes <= 3),
            f"{new.detail(writes)} (click known; claim, pin, first conversion, job)",
        ),
        Row(
            "matcher: DynamoDB read requests per new payment",
            new.per_event(reads),
            "requests",
            "",
            None,
            "",
            new.detail(reads),
        ),
        Row(
            "matcher: DynamoDB write requests per batch of 10 new payments",
            new.per_batch(writes),
            "requests",
        ),
        Row(
            "matcher: DynamoDB read requests per batch of 10 new payments",
            batch_reads,
            "requests",
            "<= 2 per batch",
            batch_reads / 2,
            verdict(batch_reads <= 2),
            "claims, pins, first conversions, clicks, payment links of the whole batch",
        ),
    ]
    for stream, what in (
        (rebills, "rebill (customer pinned)"),
        (parked, "parked payment (no click yet)"),
        (again, "payment delivered again"),
    ):
        rows.append(
            Row(
                f"matcher: DynamoDB writes / reads per {what}",
                stream.per_event(writes),
                "requests",
                "",
                None,
                "",
                f"reads {stream.per_event(reads):g}; per batch of 10: writes "
                f"{stream.per_batch(writes):g}, reads {stream.per_batch(reads):g}; "
                f"{stream.detail(writes | reads)}",
            )
        )
    rows.append(
        Row(
            "matcher: CPU per new payment (batch of 10)",
            median(new.cpu_per_event),
            "us",
            "",
            None,
            "",
            f"AWS on a local endpoint in another process; {spread(new.cpu_per_event, 0)}",
        )
    )
    return rows
