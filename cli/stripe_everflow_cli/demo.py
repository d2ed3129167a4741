"""`make demo`: a scripted scenario through the local stack, printed as it goes.

Starts the stack on free ports with the built-in test-mode secret, sends Stripe
events the way Stripe would (signed by the stripe library), shows each answer and
what is waiting on PaymentEventsQueue. Exits 1 if any answer is not the expected one,
so the demo doubles as a smoke test of a fresh checkout.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from stripe_everflow_cli.localconfig import (
    LOCAL_EU_WEBHOOK_SECRET,
    LOCAL_WEBHOOK_SECRET,
    load_local_config,
)
from stripe_everflow_cli.signing import post_signed, serialize_event, signature_header
from stripe_everflow_cli.stack import LocalStack, find_project_root


@dataclass(frozen=True)
class Step:
    title: str
    path: str
    body: bytes
    header: str | None
    expected_status: int


def _event(root: Path, shape: str, name: str, **changes: Any) -> dict[str, Any]:
    event = dict(json.loads((root / "events" / "stripe" / shape / name).read_text("utf-8")))
    event.update(changes)
    return event


def _tamper(body: bytes) -> bytes:
    # Raise the paid amount after signing, as an attacker replaying a real event would.
    tampered = body.replace(b'"amount_paid": 4900', b'"amount_paid": 9900', 1)
    assert tampered != body
    return tampered


def build_steps(root: Path, now: Callable[[], float] = time.time) -> list[Step]:
    first = serialize_event(_event(root, "basil", "invoice.paid.first.json"))
    renewal_legacy = serialize_event(_event(root, "legacy", "invoice.paid.renewal.json"))
    live = serialize_event(_event(root, "basil", "invoice.paid.renewal.json", livemode=True))
    unhandled = serialize_event(
        _event(
            root,
            "basil",
            "invoice.paid.first.json",
            id="evt_1QbridgeDemoUpcoming",
            type="invoice.upcoming",
        )
    )
    sign = signature_header
    return [
        Step(
            "invoice.paid, valid signature",
            "/stripe/webhook",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            200,
        ),
        Step(
            "same event, amount changed after signing",
            "/stripe/webhook",
            _tamper(first),
            sign(first, LOCAL_WEBHOOK_SECRET),
            400,
        ),
        Step(
            "same event again (Stripe retry)",
            "/stripe/webhook",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            200,
        ),
        Step(
            "signed 10 minutes ago (replay)",
            "/stripe/webhook",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET, int(now()) - 600),
            400,
        ),
        Step("no Stripe-Signature header", "/stripe/webhook", first, None, 400),
        Step(
            "legacy-shape renewal, account eu-store",
            "/stripe/webhook/eu-store",
            renewal_legacy,
            sign(renewal_legacy, LOCAL_EU_WEBHOOK_SECRET),
            200,
        ),
        Step(
            "signed with another account's secret",
            "/stripe/webhook/eu-store",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            400,
        ),
        Step(
            "unknown account",
            "/stripe/webhook/nobody",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            404,
        ),
        Step(
            "live-mode event at a test-mode account",
            "/stripe/webhook",
            live,
            sign(live, LOCAL_WEBHOOK_SECRET),
            200,
        ),
        Step(
            "event type the bridge does not use",
            "/stripe/webhook",
            unhandled,
            sign(unhandled, LOCAL_WEBHOOK_SECRET),
            200,
        ),
    ]


def _describe(answer: requests.Response) -> str:
    try:
        payload = answer.json()
    except ValueError:
        return answer.text[:80]
    if "error" in payload:
        return f"refused: {payload['error']}"
    if "message" in payload:
        return f"gateway: {payload['message']}"
    if payload.get("status") == "ignored":
        return f"ignored ({payload['reason']}): {payload['event_id']}"
    return f"{payload.get('status')}: {payload.get('event_id')} {payload.get('event_type')}"


def _peek_queue(stack: LocalStack, queue: str) -> list[dict[str, Any]]:
    """Read the queue's messages without consuming them (visibility 0)."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(5):
        answer = stack.sqs.receive_message(
            QueueUrl=stack.resources.queue_urls[queue],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        )
        for message in answer.get("Messages", []):
            seen[message["MessageId"]] = json.loads(message["Body"])
    return list(seen.values())


def run_demo() -> int:
    root = find_project_root()
    config = load_local_config(None, {})
    log_dir = Path(tempfile.mkdtemp(prefix="stripe-everflow-demo-"))
    stack = LocalStack(project_root=root, config=config, port=0, log_path=log_dir / "functions.log")
    print("Starting the local stack (moto + the real handlers)…", flush=True)
    stack.start()
    failures = 0
    try:
        print(f"  webhook: {stack.base_url}/stripe/webhook   AWS (moto): {stack.aws_endpoint}\n")
        print(f"{'#':>2}  {'request':<44} {'answer':>6}  what the bridge did")
        with requests.Session() as session:
            for number, step in enumerate(build_steps(root), start=1):
                answer = post_signed(
                    stack.base_url + step.path, step.body, step.header, session=session
                )
                ok = answer.status_code == step.expected_status
                failures += not ok
                mark = "" if ok else f"   <-- expected {step.expected_status}"
                print(
                    f"{number:>2}  {step.title:<44} {answer.status_code:>6}  "
                    f"{_describe(answer)}{mark}",
                    flush=True,
                )
        messages = _peek_queue(stack, "PaymentEventsQueue")
        print(f"\nPaymentEventsQueue holds {len(messages)} message(s):")
        for body in messages:
            event = body["event"]
            print(
                f"  - {event['id']}  {event['type']:<14} account={body['account']:<9} "
                f"api_version={event['api_version']}"
            )
        print(
            "\nThe retry (#3) is queued again on purpose: the webhook acknowledges every genuine "
            "delivery,\nand the matcher counts each Stripe event id once."
        )
        expected_queued = 3
        if len(messages) != expected_queued:
            print(f"expected {expected_queued} queued messages, found {len(messages)}")
            failures += 1
        print(f"\nFunction logs: {log_dir / 'functions.log'}")
    finally:
        stack.stop()
    print("demo: OK" if not failures else f"demo: {failures} unexpected result(s)")
    return 0 if not failures else 1
