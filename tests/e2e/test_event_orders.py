"""Stripe's events out of order, on the local stack as a user runs it: signed webhooks
and clicks over HTTP, the consumers running as their SQS event sources would, what
reached Everflow read from the built-in stand-in. One scenario per way money went
missing or came out wrong; each renames the events/ ids it uses, so scenarios share
the stack without meeting.

The stack runs without a Stripe restricted key (a payment intent then waits for its
Checkout Session) and with an Everflow API key (a won dispute approves again)."""

from __future__ import annotations

import copy
import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.test_local_stack import RunningStack, start_stack
from tests.support import bridge_secret, sign, stripe_event

pytestmark = pytest.mark.e2e
TOKEN = {"authorization": "Bearer test-click-token"}
# The fixture ids a scenario renames (the suffix keeps them valid Stripe ids).
_IDS = (
    "QbridgeFirst01",
    "QbridgeRenew01",
    "QbridgeOneOff01",
    "QbridgeJenny01",
    "QbridgeDispute01",
    "QbridgeSub001",
    "a1QbridgeOneOffJpy01",
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    config = tmp_path_factory.mktemp("config") / "local.config.json"
    config.write_text(json.dumps({"secret": bridge_secret(everflow_api_key="e2e-api-key")}))
    running = start_stack(tmp_path_factory.mktemp("stack"), "--config", str(config))
    yield running
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(timeout=20)


def renamed(event: dict[str, Any], tag: str) -> dict[str, Any]:
    """``event`` with its own id, and the scenario's objects and email, renamed by ``tag``."""
    text = json.dumps(event)
    for stripe_id in _IDS:
        text = text.replace(stripe_id, f"{stripe_id}{tag}")
    text = text.replace("jenny.rosen@example.com", f"{tag.lower()}@example.com")
    copied = json.loads(text)
    copied["id"] = f"{event['id']}{tag}"
    return dict(copied)


def deliver(stack: RunningStack, event: dict[str, Any]) -> None:
    body = json.dumps(event, indent=2).encode()
    answer = stack.post("/stripe/webhook", body, sign(body))
    assert answer.status_code == 200, answer.text


def post_click(stack: RunningStack, tag: str, **more: Any) -> dict[str, Any]:
    click = {"email": f"{tag.lower()}@example.com", "transaction_id": f"ef_tx_{tag.lower()}"}
    answer = requests.post(stack.url + "/clicks", headers=TOKEN, timeout=30, json=click | more)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


def forget_everflow(stack: RunningStack) -> None:
    requests.delete(stack.everflow_url + "/__standin/requests", timeout=10)


def everflow_calls(
    stack: RunningStack, postbacks: int, reversals: int = 0, timeout: float = 40
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The postbacks and reversals the stand-in received once as many as expected came
    (or the timeout passed), plus any in the 2 s after: an extra one shows up too."""

    def received() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        calls = requests.get(stack.everflow_url + "/__standin/requests", timeout=10).json()
        return (
            [c for c in calls if c["method"] == "GET" and c["path"] == "/"],
            [c for c in calls if c["path"] == "/reversal"],
        )

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got_postbacks, got_reversals = received()
        if len(got_postbacks) >= postbacks and len(got_reversals) >= reversals:
            break
        time.sleep(0.3)
    time.sleep(2)
    return received()


def one_off(shape: str, tag: str, *, receipt_email: bool) -> list[dict[str, Any]]:
    """A one-off Checkout of 5000 JPY + 1000 tax by a customer: its intent, then its
    session (Stripe's usual order)."""
    intent = copy.deepcopy(stripe_event(shape, "payment_intent.succeeded"))
    intent["data"]["object"].update(
        amount=6000,
        amount_received=6000,
        customer="cus_QbridgeJenny01",
        receipt_email="jenny.rosen@example.com" if receipt_email else None,
    )
    session = copy.deepcopy(stripe_event(shape, "checkout.session.completed.payment"))
    session["data"]["object"].update(
        customer="cus_QbridgeJenny01",
        amount_subtotal=5000,
        amount_total=6000,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 1000},
    )
    return [renamed(intent, tag), renamed(session, tag)]


@pytest.mark.parametrize("shape", ["legacy", "basil"])
def test_a_checkout_sale_whose_intent_has_no_email_is_reported_by_its_session(
    stack: RunningStack, shape: str
) -> None:
    # Given a click, and a Checkout sale whose intent comes first without an email
    tag = f"D1{shape[0].upper()}"
    forget_everflow(stack)
    post_click(stack, tag)
    for event in one_off(shape, tag, receipt_email=False):
        deliver(stack, event)
    # Then Everflow gets the sale once, from the session: no tax, the click's
    [postback], _ = everflow_calls(stack, 1)
    params = postback["params"]
    assert (params["order_id"], params["amount"], params["transaction_id"]) == (
        f"pi_3QbridgeOneOff01{tag}",
        "5000",
        f"ef_tx_{tag.lower()}",
    )


@pytest.mark.parametrize("shape", ["legacy", "basil"])
def test_a_taxed_checkout_sale_is_reported_without_tax_though_its_intent_could_match(
    stack: RunningStack, shape: str
) -> None:
    # Given a click for the intent's receipt email: the intent alone could be counted
    tag = f"D2{shape[0].upper()}"
    forget_everflow(stack)
    post_click(stack, tag)
    for event in one_off(shape, tag, receipt_email=True):
        deliver(stack, event)
    # Then the session decides the amount: 5000 of the 6000 paid
    [postback], _ = everflow_calls(stack, 1)
    assert (postback["params"]["amount"], postback["params"]["currency"]) == ("5000", "JPY")


@pytest.mark.parametrize("shape", ["legacy", "basil"])
def test_a_refund_processed_before_its_invoice_reverses_the_conversion(
    stack: RunningStack, shape: str
) -> None:
    tag = f"D3{shape[0].upper()}"
    forget_everflow(stack)
    post_click(stack, tag)
    # Given the full refund of the renewal is processed first
    refund = stripe_event(shape, "charge.refunded")
    refund["data"]["object"].update(amount_refunded=4900, refunded=True)
    deliver(stack, renamed(refund, tag))
    assert everflow_calls(stack, 1, timeout=3) == ([], [])
    # When the invoice comes (basil: the link from its intent last)
    deliver(stack, renamed(stripe_event(shape, "invoice.paid.renewal"), tag))
    if shape == "basil":
        deliver(stack, renamed(stripe_event(shape, "invoice_payment.paid.renewal"), tag))
    # Then Everflow records the conversion, then its reversal, each once
    postbacks, reversals = everflow_calls(stack, 1, 1)
    assert [p["params"]["order_id"] for p in postbacks] == [f"in_1QbridgeRenew01{tag}"]
    assert len(reversals) == 1 and "conversion_id" in reversals[0]["params"]


@pytest.mark.parametrize("shape", ["legacy", "basil"])
def test_a_dispute_opened_before_its_payment_reverses_and_a_win_restores(
    stack: RunningStack, shape: str
) -> None:
    tag = f"DP{shape[0].upper()}"
    forget_everflow(stack)
    post_click(stack, tag)
    deliver(stack, renamed(stripe_event(shape, "charge.dispute.created"), tag))
    if shape == "basil":
        deliver(stack, renamed(stripe_event(shape, "invoice_payment.paid.first"), tag))
    deliver(stack, renamed(stripe_event(shape, "invoice.paid.first"), tag))
    postbacks, reversals = everflow_calls(stack, 1, 1)
    assert (len(postbacks), len(reversals)) == (1, 1)
    # and the won dispute approves the conversion again
    deliver(stack, renamed(stripe_event(shape, "charge.dispute.closed"), tag))
    deadline = time.monotonic() + 30
    patches: list[dict[str, Any]] = []
    while not patches and time.monotonic() < deadline:
        calls = requests.get(stack.everflow_url + "/__standin/requests", timeout=10).json()
        patches = [c for c in calls if c["method"] == "PATCH"]
        time.sleep(0.3)
    assert len(patches) == 1


def test_a_refund_of_a_parked_payment_is_applied_once_its_click_arrives(
    stack: RunningStack,
) -> None:
    tag = "G7"
    forget_everflow(stack)
    # Given a renewal with no click (parked), then its full refund
    deliver(stack, renamed(stripe_event("legacy", "invoice.paid.renewal"), tag))
    refund = stripe_event("legacy", "charge.refunded")
    refund["data"]["object"].update(amount_refunded=4900, refunded=True)
    deliver(stack, renamed(refund, tag))
    assert everflow_calls(stack, 1, timeout=3) == ([], [])
    # When the click arrives
    assert post_click(stack, tag)["replayed_payments"] == 1
    # Then the conversion is posted and the refund reverses it
    postbacks, reversals = everflow_calls(stack, 1, 1)
    assert (len(postbacks), len(reversals)) == (1, 1)


@pytest.mark.parametrize("shape", ["legacy", "basil"])
def test_a_click_carried_by_a_later_invoice_releases_the_parked_first_payment(
    stack: RunningStack, shape: str
) -> None:
    tag = f"P4{shape[0].upper()}"
    forget_everflow(stack)
    # Given the first invoice with no click anywhere: parked
    deliver(stack, renamed(stripe_event(shape, "invoice.paid.first"), tag))
    assert everflow_calls(stack, 1, timeout=3) == ([], [])
    # When the renewal's subscription metadata carries the click id
    renewal = renamed(stripe_event(shape, "invoice.paid.renewal"), tag)
    invoice = renewal["data"]["object"]
    details = (
        invoice["parent"]["subscription_details"]
        if shape == "basil"
        else invoice["subscription_details"]
    )
    details["metadata"] = {"everflow_transaction_id": f"ef_tx_sub_{tag.lower()}"}
    deliver(stack, renewal)
    # Then both payments reach Everflow, for that click
    postbacks, _ = everflow_calls(stack, 2)
    assert sorted(
        (p["params"]["order_id"], p["params"]["adv1"], p["params"]["transaction_id"])
        for p in postbacks
    ) == [
        (f"in_1QbridgeFirst01{tag}", "initial", f"ef_tx_sub_{tag.lower()}"),
        (f"in_1QbridgeRenew01{tag}", "rebill", f"ef_tx_sub_{tag.lower()}"),
    ]
