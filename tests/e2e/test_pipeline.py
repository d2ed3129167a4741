"""The whole pipeline on the local stack, as a user tries it: clicks posted to /clicks
and signed Stripe events to the webhook, over HTTP; the consumers running as their SQS
event sources would; what reached Everflow read from the built-in stand-in."""

from __future__ import annotations

import json
import signal
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
    config.write_text(json.dumps({"secret": bridge_secret()}))
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
