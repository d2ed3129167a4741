"""Refund and dispute states that compose, end to end in process: refunds that fail,
refunds during a dispute, and partners' payouts prorated on partial refunds.

Everflow is the local stand-in, which keeps each conversion's status, sale amount,
payout and revenue as Everflow would: the tests read where a conversion ends up."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow_cli.everflow_standin import EverflowStandIn, StandInConversion
from stripe_everflow_cli.report import build_report, read_ledger
from tests.integration.conftest import Aws
from tests.integration.test_refunds import Bridge, refund_key, refunded, renewal
from tests.support import stripe_event

RENEW_JOB = "conversion:default:in_1QbridgeRenew01"
RENEW_CHARGE = "ch_3QbridgeRenew01"
REFUND_ID = "re_3QbridgeRenew01"  # the refund of events/, created 1770735600
REFUNDED_AT = 1770735601  # its charge.refunded
FAILED_AT = 1771340400  # a week later, the card turned out closed
LATER = 1771945200  # another week


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def bridge(aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch) -> Bridge:
    return Bridge(aws, everflow, monkeypatch)


def refund_failed(
    shape: str,
    amount: int,
    *,
    event_type: str | None = None,
    refund_id: str = REFUND_ID,
    created: int = FAILED_AT,
) -> dict[str, Any]:
    """The refund of events/ failing: ``charge.refund.updated`` for legacy endpoints,
    ``refund.failed`` (and ``refund.updated``) since 2024-10-28."""
    event = copy.deepcopy(stripe_event(shape, "refund.created"))
    event["type"] = event_type or (
        "charge.refund.updated" if shape == "legacy" else "refund.failed"
    )
    event["id"] = f"evt_{refund_id}_{event['type'].replace('.', '_')}_{shape}"
    event["created"] = created
    refund = event["data"]["object"]
    refund.update(id=refund_id, amount=amount, status="failed")
    # What Stripe adds to a Refund that failed (API reference, the Refund object)
    refund["failure_reason"] = "expired_or_canceled_card"
    refund["failure_balance_transaction"] = "txn_3QbridgeRefundFailed01"
    event["data"]["previous_attributes"] = {
        "status": "succeeded",
        "failure_reason": None,
        "failure_balance_transaction": None,
    }
    return event


def dispute(name: str, status: str, event_id: str, created: int) -> dict[str, Any]:
    """The dispute of events/, on the renewal's charge."""
    event = stripe_event("legacy", name)
    event["id"], event["created"] = event_id, created
    event["data"]["object"].update(
        charge=RENEW_CHARGE, payment_intent="pi_3QbridgeRenew01", status=status
    )
    return event


def opened(created: int = REFUNDED_AT - 100) -> dict[str, Any]:
    return dispute("charge.dispute.created", "needs_response", "evt_dp_open", created)


def closed(status: str, created: int = LATER) -> dict[str, Any]:
    return dispute("charge.dispute.closed", status, f"evt_dp_{status}", created)


def in_everflow(bridge: Bridge, everflow: EverflowStandIn) -> StandInConversion:
    """The renewal's conversion as Everflow holds it."""
    found = everflow.conversion(str(bridge.ledger(RENEW_JOB)["conversion_id"]))
    assert found is not None
    return found


def api_writes(everflow: EverflowStandIn) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (r.method, r.path.rsplit("/", 1)[-1], json.loads(r.body))
        for r in everflow.api_calls()
        if r.method in ("PUT", "PATCH")
    ]


# ------------------------------------------------------------------ refunds that fail


@pytest.mark.parametrize("shape", ["legacy", "basil"])
def test_a_failed_full_refund_approves_the_conversion_again(
    bridge: Bridge, everflow: EverflowStandIn, shape: str
) -> None:
    # Given a renewal refunded in full: reversed in Everflow
    if shape == "basil":
        bridge.stripe(stripe_event("basil", "invoice_payment.paid.renewal"))
    bridge.stripe(renewal(shape))
    bridge.stripe(refunded(shape, 4900))
    assert in_everflow(bridge, everflow).status == "rejected"
    # When the refund fails (the customer's card was closed): the money stays
    bridge.stripe(refund_failed(shape, 4900))
    # Then the conversion is approved again, at its full amount
    conversion = in_everflow(bridge, everflow)
    assert (conversion.status, conversion.sale_amount) == ("approved", Decimal("49.0"))
    entry = bridge.ledger(f"refund_failed:default:{REFUND_ID}")
    assert (entry["status"], entry["everflow_action"]) == ("restored", "restore")
    assert bridge.ledger(RENEW_JOB)["everflow_state"] == "approved"


def test_a_failed_partial_refund_restores_the_sale_amount(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500))
    assert in_everflow(bridge, everflow).sale_amount == Decimal("34.0")
    bridge.stripe(refund_failed("legacy", 1500))
    assert in_everflow(bridge, everflow).sale_amount == Decimal("49.0")
    assert [(m, p, b["sale_amount"]) for m, p, b in api_writes(everflow)] == [
        ("PUT", "saleamount", 34.0),
        ("PUT", "saleamount", 49.0),
    ]
    conversion = bridge.ledger(RENEW_JOB)
    assert (conversion["everflow_state"], conversion["sale_amount"]) == ("approved", "49.00")


def test_every_event_telling_one_failure_makes_one_change(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(stripe_event("basil", "invoice_payment.paid.renewal"), renewal("basil"))
    bridge.stripe(refunded("basil", 1500))
    # refund.updated and refund.failed for the same failure, then a Stripe retry
    bridge.stripe(
        refund_failed("basil", 1500, event_type="refund.updated"),
        refund_failed("basil", 1500),
    )
    bridge.stripe(refund_failed("basil", 1500))
    assert [b["sale_amount"] for _, _, b in api_writes(everflow)] == [34.0, 49.0]


def test_a_failure_delivered_before_its_refund_makes_no_call(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given the failure is processed first (Stripe does not order events)
    bridge.stripe(renewal())
    bridge.stripe(refund_failed("legacy", 1500))
    # When the refund it undoes arrives: it was undone before it is applied
    bridge.stripe(refunded("legacy", 1500, created=REFUNDED_AT))
    # Then Everflow never saw a change
    assert api_writes(everflow) == [] and everflow.reversals() == []
    assert in_everflow(bridge, everflow).sale_amount == Decimal("49.0")


def test_a_refund_after_a_failed_one_counts_though_its_amount_is_lower(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given 15.00 refunded, that refund failed, and 10.00 refunded later: the charge's
    # cumulative refunded went 15.00 -> 0 -> 10.00
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500, created=REFUNDED_AT))
    bridge.stripe(refund_failed("legacy", 1500))
    bridge.stripe(refunded("legacy", 1000, event_id="evt_refund_again", created=LATER))
    # Then Everflow is at what the customer kept: 39.00
    assert in_everflow(bridge, everflow).sale_amount == Decimal("39.0")
    assert bridge.ledger(RENEW_JOB)["sale_amount"] == "39.00"


def test_the_same_amount_refunded_again_after_a_failure_is_a_new_state(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500, created=REFUNDED_AT))
    bridge.stripe(refund_failed("legacy", 1500))
    bridge.stripe(refunded("legacy", 1500, event_id="evt_refund_again", created=LATER))
    assert in_everflow(bridge, everflow).sale_amount == Decimal("34.0")
    assert [b["sale_amount"] for _, _, b in api_writes(everflow)] == [34.0, 49.0, 34.0]


def test_an_older_refund_state_arriving_after_a_failure_changes_nothing(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given 15.00 then 24.00 refunded, and the 15.00 refund failed: 9.00 refunded
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 2400, created=REFUNDED_AT + 60))
    bridge.stripe(refund_failed("legacy", 1500))
    assert in_everflow(bridge, everflow).sale_amount == Decimal("40.0")
    # When the first state arrives late
    bridge.stripe(refunded("legacy", 1500, created=REFUNDED_AT))
    # Then it is stale
    assert in_everflow(bridge, everflow).sale_amount == Decimal("40.0")
    assert bridge.ledger(refund_key(1500))["status"] == "superseded"


def test_without_an_api_key_a_failed_refund_after_a_reversal_needs_the_key(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no API key, partial refunds reverse (PartialRefundFallback=reverse)
    bridge = Bridge(aws, everflow, monkeypatch, api_key=False, PARTIAL_REFUND_FALLBACK="reverse")
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500))
    assert len(everflow.reversals()) == 1
    # When the refund fails
    [response] = bridge.stripe(refund_failed("legacy", 1500))
    # Then the job is done (not retried, not dead-lettered) and says a restore needs the key
    assert response == {"batchItemFailures": []}
    assert bridge.ledger(f"refund_failed:default:{REFUND_ID}")["status"] == "restore_needs_key"
    assert aws.drain("PostbackDLQ") == []
    assert in_everflow(bridge, everflow).status == "rejected"
    assert bridge.ledger(RENEW_JOB)["everflow_state"] == "reversed"


# ------------------------------------------------------------------ refunds during a dispute


def test_a_partial_refund_during_a_dispute_then_a_won_dispute_leaves_what_was_kept(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given a renewal whose charge is disputed: reversed
    bridge.stripe(renewal())
    bridge.stripe(opened())
    assert in_everflow(bridge, everflow).status == "rejected"
    # When 15.00 is refunded during the dispute: the conversion stays reversed
    bridge.stripe(refunded("legacy", 1500))
    assert api_writes(everflow) == []
    assert bridge.ledger(RENEW_JOB)["everflow_state"] == "reversed"
    # And the dispute is won
    bridge.stripe(closed("won"))
    # Then it is approved again at what the customer kept, not the full amount
    conversion = in_everflow(bridge, everflow)
    assert (conversion.status, conversion.sale_amount) == ("approved", Decimal("34.0"))
    assert [(m, p) for m, p, _ in api_writes(everflow)] == [
        ("PATCH", "conversions"),
        ("PUT", "saleamount"),
    ]
    entry = bridge.ledger(RENEW_JOB)
    assert (entry["everflow_state"], entry["sale_amount"]) == ("adjusted", "34.00")


def test_a_partial_refund_during_a_lost_dispute_leaves_it_reversed(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    bridge.stripe(opened())
    bridge.stripe(refunded("legacy", 1500))
    bridge.stripe(closed("lost"))
    assert in_everflow(bridge, everflow).status == "rejected"
    assert bridge.ledger(RENEW_JOB)["everflow_state"] == "reversed"
    assert api_writes(everflow) == []


def test_a_won_dispute_after_a_partial_refund_keeps_the_adjusted_amount(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given 15.00 refunded first, then a dispute opened and won
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500))
    bridge.stripe(opened(created=FAILED_AT))
    bridge.stripe(closed("won"))
    conversion = in_everflow(bridge, everflow)
    assert (conversion.status, conversion.sale_amount) == ("approved", Decimal("34.0"))
    # the amount was set once; approving again keeps it
    assert [p for _, p, _ in api_writes(everflow)] == ["saleamount", "conversions"]


# ------------------------------------------------------------------ partners' payouts


@pytest.fixture
def prorating(aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch) -> Bridge:
    # A CPA offer: 10.00 to the partner per conversion, revenue the whole sale
    everflow.set_offer({"payout": "10", "revenue_percent": "100"})
    return Bridge(aws, everflow, monkeypatch, PARTIAL_REFUND_PAYOUT="prorate")


def test_by_default_a_partial_refund_leaves_the_payout_to_the_offer(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    everflow.set_offer({"payout": "10", "revenue_percent": "100"})
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500))
    conversion = in_everflow(bridge, everflow)
    assert (conversion.sale_amount, conversion.payout) == (Decimal("34.0"), Decimal("10.0"))
    assert [p for _, p, _ in api_writes(everflow)] == ["saleamount"]


def test_prorate_scales_payout_and_revenue_by_what_the_customer_kept(
    prorating: Bridge, everflow: EverflowStandIn
) -> None:
    prorating.stripe(renewal())
    prorating.stripe(refunded("legacy", 1500))
    conversion = in_everflow(prorating, everflow)
    # 34.00 kept of 49.00: the partner's 10.00 becomes 6.94, the revenue 34.00
    assert (conversion.sale_amount, conversion.payout, conversion.revenue) == (
        Decimal("34.0"),
        Decimal("6.94"),
        Decimal("34.0"),
    )
    [*_, (method, path, body)] = api_writes(everflow)
    assert (method, path, body) == (
        "PUT",
        "payoutrevenue",
        {"payout": 6.94, "revenue": 34.0, "is_event": True},
    )
    entry = prorating.ledger(refund_key(1500))
    assert (entry["everflow_action"], entry["payout_after"]) == ("adjust+prorate", "6.94")


def test_prorated_partial_refunds_compose_from_the_original_payout(
    prorating: Bridge, everflow: EverflowStandIn
) -> None:
    prorating.stripe(renewal())
    prorating.stripe(refunded("legacy", 1500, created=REFUNDED_AT))
    prorating.stripe(refunded("legacy", 2400, created=REFUNDED_AT + 60))
    conversion = in_everflow(prorating, everflow)
    # 25.00 kept of 49.00: 10.00 x 25 / 49
    assert (conversion.payout, conversion.revenue) == (Decimal("5.1"), Decimal("25.0"))
    # Everflow's own payout is read once, before the first change
    reads = [r for r in everflow.api_calls() if r.method == "GET" and "/conversions/" in r.path]
    assert len(reads) == 1


def test_a_failed_refund_gives_the_partner_the_full_payout_back(
    prorating: Bridge, everflow: EverflowStandIn
) -> None:
    prorating.stripe(renewal())
    prorating.stripe(refunded("legacy", 1500))
    prorating.stripe(refund_failed("legacy", 1500))
    conversion = in_everflow(prorating, everflow)
    assert (conversion.sale_amount, conversion.payout, conversion.revenue) == (
        Decimal("49.0"),
        Decimal("10.0"),
        Decimal("49.0"),
    )
    entry = prorating.ledger(f"refund_failed:default:{REFUND_ID}")
    assert (entry["status"], entry["everflow_action"]) == ("restored", "adjust+prorate")


def test_a_won_dispute_prorates_only_once_the_conversion_is_approved_again(
    prorating: Bridge, everflow: EverflowStandIn
) -> None:
    # Everflow takes a payout and revenue on approved conversions only
    prorating.stripe(renewal())
    prorating.stripe(opened())
    prorating.stripe(refunded("legacy", 1500))
    prorating.stripe(closed("won"))
    conversion = in_everflow(prorating, everflow)
    assert (conversion.status, conversion.sale_amount, conversion.payout) == (
        "approved",
        Decimal("34.0"),
        Decimal("6.94"),
    )
    assert [p for _, p, _ in api_writes(everflow)] == ["conversions", "saleamount", "payoutrevenue"]


def test_a_full_refund_after_a_prorated_one_reverses(
    prorating: Bridge, everflow: EverflowStandIn
) -> None:
    prorating.stripe(renewal())
    prorating.stripe(refunded("legacy", 1500, created=REFUNDED_AT))
    prorating.stripe(refunded("legacy", 4900, created=REFUNDED_AT + 60))
    assert in_everflow(prorating, everflow).status == "rejected"
    assert [p for _, p, _ in api_writes(everflow)] == ["saleamount", "payoutrevenue"]


# ------------------------------------------------------------------ the report


def test_the_refund_report_reads_each_outcome_from_the_ledger(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given payouts prorated, a refund that failed and a later one; and on another
    # conversion a won dispute without the API key
    everflow.set_offer({"payout": "10", "revenue_percent": "100"})
    bridge = Bridge(aws, everflow, monkeypatch, PARTIAL_REFUND_PAYOUT="prorate")
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500, created=REFUNDED_AT))
    bridge.stripe(refund_failed("legacy", 1500))
    bridge.stripe(refunded("legacy", 1000, event_id="evt_refund_again", created=LATER))
    # When the refunds report is made from LedgerTable
    table = aws.resources.table_names["LedgerTable"]
    report = json.loads(
        build_report("refunds", read_ledger(aws.dynamodb, table), None, None, "json")
    )
    # Then each outcome is there, and the totals are net of the failed refund
    rows = [(r["action"], r["everflow_action"], r["status"]) for r in report["rows"]]
    assert rows == [
        ("refund", "adjustment + payout prorated", "adjusted"),
        ("refund_failed", "adjustment + payout prorated", "restored"),
        ("refund", "adjustment + payout prorated", "adjusted"),
    ]
    assert [r["payout_after"] for r in report["rows"]] == ["6.94", "10.00", "7.96"]
    assert report["totals"]["USD"] == {
        "refunded": "10.00",
        "charges_refunded": "1",
        "failed_refunds": "1",
        "failed_refunded": "15.00",
        "payouts_prorated": "3",
    }
