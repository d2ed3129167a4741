"""The demo's Stripe objects: each event the demo delivers has its object in the
local Stripe API stand-in first (a grown refunded amount as a Refund), and the
deliberately wrong deliveries of act 1 leave nothing there."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from stripe_everflow_cli import demo
from stripe_everflow_cli.stripe_standin import StripeStandIn
from tests.support import PROJECT_ROOT, stripe_event


def holds(standin: StripeStandIn, resource: str) -> dict[str, dict[str, Any]]:
    return dict(standin.collection(resource).objects)


def test_each_event_type_the_demo_sends_is_stored_as_its_object() -> None:
    standin = StripeStandIn()
    stack: Any = SimpleNamespace(stripe=standin)
    for name, resource in (
        ("invoice.paid.first", "invoices"),
        ("checkout.session.completed.payment", "checkout_sessions"),
        ("invoice_payment.paid.first", "invoice_payments"),
        ("charge.dispute.created", "disputes"),
    ):
        event = stripe_event("basil", name)
        demo._stripe_holds(stack, event)
        assert holds(standin, resource) == {event["data"]["object"]["id"]: event["data"]["object"]}
    # a later state of the same object replaces it
    closed = stripe_event("basil", "charge.dispute.closed")
    demo._stripe_holds(stack, closed)
    [dispute] = holds(standin, "disputes").values()
    assert dispute["status"] == "won"


def test_a_charges_refunded_amount_that_grows_is_a_refund_of_the_difference() -> None:
    standin = StripeStandIn()
    stack: Any = SimpleNamespace(stripe=standin)
    event = stripe_event("basil", "charge.refunded")
    for refunded in (1500, 1500, 4900):  # the second is Stripe sending the event again
        again = copy.deepcopy(event)
        again["data"]["object"]["amount_refunded"] = refunded
        demo._stripe_holds(stack, again)
    refunds = sorted(holds(standin, "refunds").values(), key=lambda r: r["amount"])
    assert [(r["amount"], r["charge"], r["status"]) for r in refunds] == [
        (1500, "ch_3QbridgeRenew01", "succeeded"),
        (3400, "ch_3QbridgeRenew01", "succeeded"),
    ]
    assert {r["created"] for r in refunds} == {event["created"]}
    [charge] = holds(standin, "charges").values()
    assert charge["amount_refunded"] == 4900


def test_act_one_stores_only_the_genuine_deliveries_of_the_default_account() -> None:
    steps = demo.build_steps(PROJECT_ROOT)
    stored = [s.title for s in steps if s.event is not None]
    assert stored == ["invoice.paid, valid signature", "same event again (Stripe retry)"]
    assert all(s.path == "/stripe/webhook" and s.expected_status == 200 for s in steps if s.event)


def test_an_event_whose_object_the_demo_cannot_store_is_refused_and_nothing_else_is() -> None:
    standin = StripeStandIn()
    stack: Any = SimpleNamespace(stripe=standin)
    with pytest.raises(ValueError, match=r"customer\.created"):
        demo._stripe_holds(stack, {"type": "customer.created", "data": {"object": {"id": "x"}}})
    assert all(not holds(standin, r) for r in demo.DEMO_RESOURCES)
    # and a stack reading another Stripe gets nothing written
    demo._stripe_holds(SimpleNamespace(stripe=None), stripe_event("basil", "invoice.paid.first"))  # type: ignore[arg-type]
