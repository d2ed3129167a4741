"""The Stripe events that tell a refund failed reach the undo path as one job each:
``refund.failed``, ``refund.updated`` and ``charge.refund.updated`` with a failed or
canceled refund; a refund that succeeded is still counted by ``charge.refunded``."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow.domain.classify import ClassifySettings, classify_event
from stripe_everflow.domain.jobs import PostbackJob
from tests.support import stripe_event

FAILED_AT = 1771340400


def refund_event(shape: str, event_type: str, status: str) -> dict[str, Any]:
    event = copy.deepcopy(stripe_event(shape, "refund.created"))
    event.update(type=event_type, created=FAILED_AT)
    event["data"]["object"]["status"] = status
    if status == "failed":
        # What Stripe adds to a Refund that failed (API reference, the Refund object)
        event["data"]["object"]["failure_reason"] = "expired_or_canceled_card"
    return event


@pytest.mark.parametrize(
    ("shape", "event_type", "status"),
    [
        ("legacy", "charge.refund.updated", "failed"),
        ("basil", "refund.failed", "failed"),
        ("basil", "refund.updated", "failed"),
        ("basil", "refund.updated", "canceled"),
    ],
)
def test_a_refund_that_gave_nothing_back_is_a_refund_failed_job(
    shape: str, event_type: str, status: str
) -> None:
    c = classify_event(refund_event(shape, event_type, status), ClassifySettings())
    assert c.action == "refund_failed"
    assert (c.ids.refund_id, c.ids.charge_id, c.ids.payment_intent_id) == (
        "re_3QbridgeRenew01",
        "ch_3QbridgeRenew01",
        "pi_3QbridgeRenew01",
    )
    assert (c.amount_minor, c.currency, c.occurred_at) == (1500, "USD", FAILED_AT)
    job = PostbackJob("refund_failed:default:re_3QbridgeRenew01", c.action, "default", False, c)  # type: ignore[arg-type]
    assert PostbackJob.from_json(job.to_json()).amount == Decimal("15.00")


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("refund.created", "succeeded"),
        ("refund.updated", "succeeded"),
        ("refund.updated", "pending"),
    ],
)
def test_a_refund_that_stands_is_counted_by_charge_refunded(event_type: str, status: str) -> None:
    c = classify_event(refund_event("basil", event_type, status), ClassifySettings())
    assert (c.action, c.reason) == ("ignored", "counted_by_charge_refunded")
