"""The whole pipeline on the local stack, as a user tries it: clicks posted to /clicks
and signed Stripe events to the webhook, over HTTP; the consumers running as their SQS
event sources would; what reached Everflow read from the built-in stand-in."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_local_stack import RunningStack, start_stack
from tests.support import bridge_secret, sign, stripe_event

pytestmark = pytest.mark.e2e
TOKEN = {"authorization": "Bearer test-click-token"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    config = tmp_path_factory.mktemp("config") / "local.config.json"
    # with an Everflow API key: partial refunds become amount adjustments at the stand-in
    config.write_text(json.dumps({"secret": bridge_secret(everflow_api_key="e2e-api-key")}))
    running = start_stack(tmp_path_factory.mktemp("stack"), "--config", str(config))
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(timeout=20)


def deliver(stack: RunningStack, event: dict[str, Any]) -> None:
    body = json.dumps(event, indent=2).encode()
    answer = stack.post("/stripe/webhook", body, sign(body))
    assert answer.status_code == 200, answer.text


def wait_for_postbacks(
    stack: RunningStack, count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    """Postbacks the Everflow stand-in received once ``count`` arrived (or the timeout
    passed), plus any that arrive in the 2 s after: an unexpected extra shows up too."""

    def received() -> list[dict[str, Any]]:
        answer = requests.get(stack.everflow_url + "/__standin/requests", timeout=10)
        return [r for r in answer.json() if r["method"] == "GET" and r["path"] == "/"]

    deadline = time.monotonic() + timeout
    while len(received()) < count and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(2)
    postbacks = received()
    requests.delete(stack.everflow_url + "/__standin/requests", timeout=10)
    return postbacks


def test_clicks_and_webhooks_reach_everflow_exactly_once(stack: RunningStack) -> None:
    # Given a click registered over HTTP
    answer = requests.post(
        stack.url + "/clicks",
        headers=TOKEN,
        timeout=30,
        json={"email": "Jenny.Rosen@example.com", "transaction_id": "ef_tx_e2e", "offer_id": 3},
    )
    assert answer.status_code == 201, answer.text
    # When Stripe sends the first payment, its duplicates and the renewal
    deliver(stack, stripe_event("basil", "invoice.paid.first"))
    deliver(stack, stripe_event("basil", "charge.succeeded"))
    deliver(stack, stripe_event("basil", "invoice.paid.first"))
    deliver(stack, stripe_event("legacy", "invoice.paid.renewal") | {"id": "evt_e2e_renewal"})
    # Then Everflow receives exactly the two conversion postbacks
    postbacks = wait_for_postbacks(stack, 2)
    assert sorted(
        (
            p["params"]["order_id"],
            p["params"]["adv1"],
            p["params"]["amount"],
            p["params"]["currency"],
            p["params"]["transaction_id"],
            p["params"]["nid"],
        )
        for p in postbacks
    ) == [
        ("in_1QbridgeFirst01", "initial", "49.00", "USD", "ef_tx_e2e", "1"),
        ("in_1QbridgeRenew01", "rebill", "49.00", "USD", "ef_tx_e2e", "1"),
    ]


def test_payment_whose_click_arrives_later_is_matched(stack: RunningStack) -> None:
    checkout = stripe_event("basil", "checkout.session.completed.payment")
    checkout["id"] = "evt_e2e_late"
    checkout["data"]["object"]["customer_details"]["email"] = "late.click@example.com"
    checkout["data"]["object"]["payment_intent"] = "pi_e2e_late"
    deliver(stack, checkout)
    assert wait_for_postbacks(stack, 1, timeout=4) == []  # parked: no click yet
    answer = requests.post(
        stack.url + "/clicks",
        headers=TOKEN,
        timeout=30,
        json={"email": "late.click@example.com", "transaction_id": "ef_tx_late"},
    )
    assert answer.json()["replayed_payments"] == 1
    [postback] = wait_for_postbacks(stack, 1)
    params = postback["params"]
    assert (params["order_id"], params["amount"], params["currency"], params["transaction_id"]) == (
        "pi_e2e_late",
        "5000",
        "JPY",
        "ef_tx_late",
    )


def test_stack_logs_hold_no_email(stack: RunningStack) -> None:
    log = Path(stack.log).read_text(encoding="utf-8").lower()
    assert "event matched" in log
    assert "jenny.rosen@example.com" not in log and "late.click@example.com" not in log


def test_refunds_reach_everflow_and_the_report_agrees_to_the_cent(stack: RunningStack) -> None:
    # Given a posted renewal for a click
    requests.post(
        stack.url + "/clicks",
        headers=TOKEN,
        timeout=30,
        json={"email": "refund.me@example.com", "transaction_id": "ef_tx_refund"},
    )
    renewal = stripe_event("legacy", "invoice.paid.renewal")
    renewal["id"] = "evt_e2e_refund_renewal"
    renewal["data"]["object"].update(
        id="in_e2e_refund",
        customer="cus_e2e_refund",
        customer_email="refund.me@example.com",
        charge="ch_e2e_refund",
        payment_intent="pi_e2e_refund",
    )
    deliver(stack, renewal)
    assert len(wait_for_postbacks(stack, 1)) == 1
    # When Stripe reports a partial, then a full refund of its charge
    for cumulative in (1250, 4900):
        refund = stripe_event("legacy", "charge.refunded")
        refund["id"] = f"evt_e2e_refund_{cumulative}"
        refund["data"]["object"].update(
            id="ch_e2e_refund",
            invoice="in_e2e_refund",
            payment_intent="pi_e2e_refund",
            amount_refunded=cumulative,
            refunded=cumulative == 4900,
        )
        deliver(stack, refund)
        time.sleep(1.5)
    # Then Everflow got exactly one adjustment to 36.50 and one reversal
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        calls = requests.get(stack.everflow_url + "/__standin/requests", timeout=10).json()
        reversals = [c for c in calls if c["path"] == "/reversal"]
        if reversals:
            break
        time.sleep(0.3)
    puts = [json.loads(c["body"]) for c in calls if c["method"] == "PUT"]
    assert [p["sale_amount"] for p in puts] == [36.5]
    assert len(reversals) == 1 and "conversion_id" in reversals[0]["params"]
    # and the report says what Stripe says, to the cent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stripe_everflow_cli.main",
            "report",
            "refunds",
            "--endpoint",
            stack.aws_endpoint,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout)
    rows = [r for r in report["rows"] if r["charge_id"] == "ch_e2e_refund"]
    assert [(r["refunded"], r["everflow_action"], r["sale_amount_after"]) for r in rows] == [
        ("12.50", "adjustment", "36.50"),
        ("49.00", "reversal", ""),
    ]
    assert report["totals"]["USD"]["refunded"] == "49.00"
