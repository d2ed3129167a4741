"""The local stack as a user runs it: `stripe-everflow local` in its own process,
real HTTP on 127.0.0.1, Stripe requests signed by the stripe library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from stripe_everflow.domain.emails import redact_emails
from tests.support import EU_SECRET, PROJECT_ROOT, body_of, bridge_secret, sign, stripe_event

pytestmark = pytest.mark.e2e


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    url: str
    sqs: Any
    queue_url: str
    log: Path
    everflow_url: str
    aws_endpoint: str

    def post(self, path: str, body: bytes, signature: str | None) -> requests.Response:
        headers = {"content-type": "application/json; charset=utf-8"}
        if signature is not None:
            headers["stripe-signature"] = signature
        return requests.post(self.url + path, data=body, headers=headers, timeout=30)

    def drain(self) -> list[dict[str, Any]]:
        bodies = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


def start_stack(tmp: Path, *extra: str, env: dict[str, str] | None = None) -> RunningStack:
    ready, log = tmp / "ready.json", tmp / "functions.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_everflow_cli.main",
            "local",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            "--log-file",
            str(log),
            *extra,
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"the local stack did not start:\n{output}")
        time.sleep(0.1)
    urls = json.loads(ready.read_text())
    sqs = boto3.client(
        "sqs",
        endpoint_url=urls["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    queue_url = sqs.get_queue_url(QueueName="PaymentEventsQueue")["QueueUrl"]
    return RunningStack(
        process, urls["url"], sqs, queue_url, log, urls["everflow_url"], urls["aws_endpoint"]
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    config = tmp_path_factory.mktemp("config") / "local.config.json"
    config.write_text(json.dumps({"secret": bridge_secret()}))
    # Intake only: messages stay on PaymentEventsQueue for the test to read.
    running = start_stack(
        tmp_path_factory.mktemp("stack"), "--config", str(config), "--no-consumers"
    )
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(timeout=20)


def test_health_lists_the_functions_and_queues(stack: RunningStack) -> None:
    answer = requests.get(stack.url + "/health", timeout=10)
    assert answer.status_code == 200
    health = answer.json()
    assert "StripeWebhookFunction" in health["functions"]
    assert "POST /stripe/webhook/{account}" in health["routes"]
    assert {"PaymentEventsQueue", "PaymentEventsDLQ", "PostbackQueue", "PostbackDLQ"} <= set(
        health["queues"]
    )


def test_signed_event_gets_200_and_exactly_one_message(stack: RunningStack) -> None:
    stack.drain()
    event = stripe_event("basil", "invoice.paid.first")
    body = body_of(event)
    answer = stack.post("/stripe/webhook", body, sign(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"
    [message] = stack.drain()
    assert message["event"] == redact_emails(event, bridge_secret()["email_hash_key"])


def test_named_account_with_its_own_secret(stack: RunningStack) -> None:
    stack.drain()
    body = body_of(stripe_event("legacy", "charge.dispute.created") | {"livemode": True})
    answer = stack.post("/stripe/webhook/eu-store", body, sign(body, EU_SECRET))
    assert answer.status_code == 200, answer.text
    assert [m["account"] for m in stack.drain()] == ["eu-store"]


def _bad() -> list[tuple[str, str, bytes, str | None, int]]:
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    now = int(time.time())
    big = b'{"x": "' + b"y" * 300_000 + b'"}'
    return [
        ("no signature", "/stripe/webhook", body, None, 400),
        ("wrong secret", "/stripe/webhook", body, sign(body, "whsec_wrong"), 400),
        ("tampered", "/stripe/webhook", body.replace(b"4900", b"4901", 1), sign(body), 400),
        ("stale", "/stripe/webhook", body, sign(body, timestamp=now - 301 - 5), 400),
        ("future", "/stripe/webhook", body, sign(body, timestamp=now + 301 + 5), 400),
        ("not json", "/stripe/webhook", b"hello", sign(b"hello"), 400),
        (
            "not an event",
            "/stripe/webhook",
            b'{"object": "charge"}',
            sign(b'{"object": "charge"}'),
            400,
        ),
        ("unknown account", "/stripe/webhook/nobody", body, sign(body), 404),
        ("unknown route", "/stripe/hook", body, sign(body), 404),
        ("too large", "/stripe/webhook", big, sign(big), 413),
    ]


# Only the case names are taken at collection: each request is signed when its test
# runs, so a run that starts more than the 300 s tolerance after collection still holds.
@pytest.mark.parametrize("case", [b[0] for b in _bad()])
def test_bad_request_gets_its_status_and_queues_nothing(stack: RunningStack, case: str) -> None:
    [(path, body, signature, status)] = [(p, b, s, st) for c, p, b, s, st in _bad() if c == case]
    stack.drain()
    answer = stack.post(path, body, signature)
    assert answer.status_code == status, answer.text
    assert stack.drain() == []


def test_stack_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    running = start_stack(tmp_path)
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=20) == 0
    output = running.process.stdout.read().decode() if running.process.stdout else ""
    assert "whsec_local_bridge_demo_secret" in output  # the local signing secret is printed
    assert "stopped." in output


def test_the_functions_read_stripe_from_the_built_in_stripe_api_stand_in(
    tmp_path: Path,
) -> None:
    # Given a local stack whose account has a restricted key (and no Stripe at hand)
    secret = bridge_secret()
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_local"
    config = tmp_path / "local.config.json"
    config.write_text(json.dumps({"secret": secret}))
    running = start_stack(tmp_path, "--config", str(config))
    try:
        urls = json.loads((tmp_path / "ready.json").read_text())
        stripe_url = urls["stripe_url"]
        # When a payment whose customer is not pinned arrives
        event = stripe_event("basil", "invoice.paid.first")
        body = body_of(event)
        assert running.post("/stripe/webhook", body, sign(body)).status_code == 200
        # Then the matcher reads the customer from the stand-in, with the account's key
        deadline, seen = time.monotonic() + 30, []
        while time.monotonic() < deadline and not seen:
            calls = requests.get(stripe_url + "/__standin/requests", timeout=10).json()
            seen = [c for c in calls if c["path"].startswith("/v1/customers/")]
            time.sleep(0.3)
        assert seen, "the matcher made no Stripe call to the stand-in"
        assert seen[0]["path"] == f"/v1/customers/{event['data']['object']['customer']}"
    finally:
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=20)
