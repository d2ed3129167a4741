"""MatchPaymentFunction: DynamoDB requests per SQS batch of 10, and CPU per event.

The matcher runs in this process through its real ``handle`` (Powertools
BatchProcessor and idempotency included) against a moto server running in a *child
process*, so ``time.process_time`` here counts the function's own work — matching,
botocore serialization and parsing — and none of the stand-in's. Each batch holds
ten first invoices of ten customers whose clicks are already known: the common case
of a batch full of payments to attribute.

Goal (issue "Attribution"): lookups batched — at most 2 DynamoDB read requests per
batch of 10 for pins, clicks and payment links, not one or more per record.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from benchlib import (
    PROJECT_ROOT,
    SECRET_JSON,
    FakeLambdaContext,
    Row,
    load_function_app,
    load_invoice_paid_event,
    median,
    spread,
    verdict,
)

BATCHES = 20
BATCH_SIZE = 10
READ_OPERATIONS = {"GetItem", "BatchGetItem", "Query", "Scan"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, endpoint
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the moto server did not start")


def _batch(start: int) -> dict[str, Any]:
    from stripe_everflow_cli.pollers import build_sqs_event

    template = load_invoice_paid_event()
    messages = []
    for n in range(start, start + BATCH_SIZE):
        event = copy.deepcopy(template)
        event["id"] = f"evt_bench{n}"
        invoice = event["data"]["object"]
        invoice.update(
            id=f"in_bench{n}", customer=f"cus_bench{n}", customer_email=f"customer{n}@example.com"
        )
        body = json.dumps(
            {
                "schema": "stripe-event/1",
                "source": "webhook",
                "account": "default",
                "received_at": int(time.time()),
                "event": event,
            }
        )
        messages.append({"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body})
    return build_sqs_event(messages, "PaymentEventsQueue")


def matcher() -> list[Row]:
    import boto3

    from stripe_everflow.domain.attribution import StoredClick
    from stripe_everflow.domain.emails import email_hash
    from stripe_everflow_cli.provision import provision
    from stripe_everflow_cli.template import function_specs, load_template

    process, endpoint = _start_moto()
    saved = dict(os.environ)
    try:
        credentials = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "POWERTOOLS_METRICS_NAMESPACE": "Bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        os.environ.update(credentials)
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
        store._db.meta.events.register(  # counts every DynamoDB call, idempotency's too
            "before-call.dynamodb", lambda model, **_: operations.update([model.name])
        )
        key = json.loads(SECRET_JSON)["email_hash_key"]
        for n in range(BATCHES * BATCH_SIZE):
            store.put_click(
                email_hash(f"customer{n}@example.com", key),
                StoredClick(f"ef_tx_{n}", int(time.time()) - 3600),
            )
        app.handle(_batch(10_000), FakeLambdaContext(), dependencies)  # warm: clients, secret
        operations.clear()
        lookups_before = store.read_requests
        cpu_per_event, failures = [], 0
        for b in range(BATCHES):
            event = _batch(b * BATCH_SIZE)
            started = time.process_time()
            response = app.handle(event, FakeLambdaContext(), dependencies)
            cpu_per_event.append((time.process_time() - started) / BATCH_SIZE * 1e6)
            failures += len(response["batchItemFailures"])
        lookups = (store.read_requests - lookups_before) / BATCHES
        reads = sum(operations[o] for o in READ_OPERATIONS) / BATCHES
        total = sum(operations.values()) / BATCHES
        detail = ", ".join(
            f"{name} {count / BATCHES:g}" for name, count in sorted(operations.items())
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        process.terminate()
        process.wait(timeout=10)
    if failures:
        raise RuntimeError(f"{failures} records failed in the matcher benchmark")
    return [
        Row(
            "matcher: DynamoDB reads for lookups per batch of 10",
            lookups,
            "requests",
            "<= 2 per batch",
            lookups / 2,
            verdict(lookups <= 2),
            "pins + clicks + payment links of the whole batch",
        ),
        Row(
            "matcher: DynamoDB requests per batch of 10 (all)",
            total,
            "requests",
            "",
            None,
            "",
            f"reads {reads:g}: {detail}",
        ),
        Row(
            "matcher: CPU per event (batch of 10)",
            median(cpu_per_event),
            "us",
            "",
            None,
            "",
            f"AWS on a local endpoint in another process; {spread(cpu_per_event, 0)}",
        ),
    ]
