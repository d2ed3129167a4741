"""`report refunds` shows the refunds and disputes that wait for their payment (issue
9): each as a row of status ``waiting``, counted apart in the totals and never in
what was refunded; once their payment is counted they show as applied instead."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow_cli.everflow_standin import EverflowStandIn
from stripe_everflow_cli.report import prepare_report, read_ledger, read_waiting
from tests.integration.conftest import Aws
from tests.integration.pipeline import Bridge
from tests.support import stripe_event

CLICK = {
    "email": "jenny.rosen@example.com",
    "transaction_id": "ef_tx_jenny",
    "offer_id": 12,
    "affiliate_id": 7,
}


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


def refunds_report(aws: Aws) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    entries = read_ledger(aws.dynamodb, "LedgerTable")
    entries += read_waiting(aws.dynamodb, "AttributionTable", {"default"})
    report = prepare_report("refunds", entries, None, None)
    assert report.notes == []
    return report.rows, report.totals


def test_refunds_and_disputes_waiting_for_their_payment_are_reported_apart(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = Bridge(aws, everflow, monkeypatch)
    # Given a partial refund of the renewal and a dispute of the first invoice, before
    # the bridge counted either payment
    refund = copy.deepcopy(stripe_event("legacy", "charge.refunded"))
    refund["data"]["object"].update(amount_refunded=1500, refunded=False)
    bridge.stripe(refund, stripe_event("legacy", "charge.dispute.created"))
    rows, totals = refunds_report(aws)
    # Then both are rows that wait, with the amounts they will apply
    assert sorted((r["action"], r["status"], r["everflow_action"]) for r in rows) == [
        ("dispute_opened (needs_response)", "waiting", "none yet: waits for its payment"),
        ("refund", "waiting", "none yet: waits for its payment"),
    ]
    [waiting_refund] = [r for r in rows if r["action"] == "refund"]
    assert (waiting_refund["refunded"], waiting_refund["currency"]) == ("15.00", "USD")
    assert totals == {"USD": {"refunds_waiting": "1", "disputes_waiting": "1"}}
    # When both payments are counted (their click known), they are applied and shown so
    bridge.pipeline.post_clicks(CLICK)
    bridge.stripe(stripe_event("legacy", "invoice.paid.first"))
    bridge.stripe(stripe_event("legacy", "invoice.paid.renewal"))
    rows, totals = refunds_report(aws)
    assert sorted((r["action"], r["status"]) for r in rows) == [
        ("dispute_opened (needs_response)", "reversed"),
        ("refund", "adjusted"),
    ]
    assert totals["USD"]["refunded"] == "15.00"
    assert "refunds_waiting" not in totals["USD"] and "disputes_waiting" not in totals["USD"]
