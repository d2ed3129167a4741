"""backfill's own rules, without Stripe: which event each object becomes, the order
they are fed in, and where an interrupted run starts again."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from stripe_everflow.domain.jobs import ClickTarget
from stripe_everflow.matching.matcher import Preview
from stripe_everflow_cli.backfill import Position, _DryRun, backfill, days, events_of
from tests.support import stripe_event

DAY = 86_400


def obj(shape: str, name: str, **fields: Any) -> dict[str, Any]:
    found = copy.deepcopy(stripe_event(shape, name)["data"]["object"])
    found.update(fields)
    return found


class RunInterruptedError(Exception):
    pass


class FakeLister:
    def __init__(self, objects: dict[str, list[dict[str, Any]]], charges: dict[str, Any]) -> None:
        self.objects, self.charges = objects, charges

    def list(self, kind: str, start: int, end: int) -> list[dict[str, Any]]:
        found = [o for o in self.objects.get(kind, []) if start <= o["created"] < end]
        return sorted(found, key=lambda o: -o["created"])  # Stripe lists newest first

    def charge(self, charge_id: str) -> dict[str, Any]:
        return self.charges[charge_id]


@dataclass
class Outcome:
    status: str = "accepted"
    reason: str | None = None


class MemoryCheckpoint:
    def __init__(self) -> None:
        self.position: Position | None = None
        self.writes = 0

    def read(self) -> Position | None:
        return self.position

    def write(self, position: Position) -> None:
        self.position, self.writes = position, self.writes + 1


@pytest.mark.parametrize("shape", ["legacy", "basil"])
def test_each_object_becomes_the_event_stripe_would_have_sent(shape: str) -> None:
    invoice = obj(shape, "invoice.paid.first")
    [event] = events_of("invoices", invoice, None)
    assert (event["type"], event["id"], event["data"]["object"]["id"]) == (
        "invoice.paid",
        f"evt_bf_{invoice['id']}",
        invoice["id"],
    )
    assert event["created"] == invoice["status_transitions"]["paid_at"]
    assert events_of("invoices", invoice | {"status": "open"}, None) == []
    session = obj(shape, "checkout.session.completed.payment")
    assert [e["type"] for e in events_of("checkout_sessions", session, None)] == [
        "checkout.session.completed"
    ]
    intent = obj(shape, "payment_intent.succeeded")
    assert [e["type"] for e in events_of("payment_intents", intent, None)] == [
        "payment_intent.succeeded"
    ]
    # an intent's charge is counted through its intent; a legacy charge by itself
    charge = obj(shape, "charge.succeeded")
    assert events_of("charges", charge | {"payment_intent": "pi_1"}, None) == []
    assert [e["type"] for e in events_of("charges", charge | {"payment_intent": None}, None)] == [
        "charge.succeeded"
    ]


def test_a_refund_becomes_its_charges_refunded_state_now() -> None:
    charge = obj("legacy", "charge.refunded", amount_refunded=1500)
    refund = obj("legacy", "refund.created", charge=charge["id"], status="succeeded")
    lister = FakeLister({}, {charge["id"]: charge})
    [event] = events_of("refunds", refund, lister)  # type: ignore[arg-type]
    assert event["type"] == "charge.refunded"
    assert event["data"]["object"]["amount_refunded"] == 1500
    assert event["created"] == refund["created"]
    # a refund that failed is already out of the charge's amount: nothing replayed
    assert events_of("refunds", refund | {"status": "failed"}, lister) == []  # type: ignore[arg-type]


def test_a_settled_dispute_opens_then_closes() -> None:
    dispute = obj("legacy", "charge.dispute.closed", status="won")
    opened, closed = events_of("disputes", dispute, None)
    assert (opened["type"], closed["type"]) == ("charge.dispute.created", "charge.dispute.closed")
    assert closed["created"] > opened["created"] and opened["id"] != closed["id"]


def test_objects_are_fed_oldest_first_and_a_resumed_run_skips_what_was_fed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stripe_everflow_cli.backfill.FEED_BATCH", 100)  # a position per 100
    base = 1_767_225_600  # 2026-01-01T00:00:00Z
    invoices = [
        obj("legacy", "invoice.paid.first", id=f"in_{n:03d}", created=base + n * 600)
        | {"status_transitions": {"paid_at": base + n * 600}}
        for n in range(250)  # two days and some
    ]
    lister = FakeLister({"invoices": invoices}, {})
    fed_ids: list[str] = []
    interrupt = [True]

    def feed(events: list[dict[str, Any]]) -> list[Outcome]:
        fed_ids.extend(e["data"]["object"]["id"] for e in events)
        if len(fed_ids) >= 120 and interrupt[0]:
            interrupt[0] = False
            raise RunInterruptedError  # the run is interrupted mid-day, once
        return [Outcome() for _ in events]

    checkpoint = MemoryCheckpoint()
    span = list(days(date(2026, 1, 1), date(2026, 1, 3)))
    with pytest.raises(RunInterruptedError):
        backfill(lister, span, feed, checkpoint=checkpoint)  # type: ignore[arg-type]
    assert checkpoint.position is not None
    first_run = list(fed_ids)
    assert first_run == sorted(first_run)  # oldest first
    # When run again, it starts after the last batch written
    fed_ids.clear()
    result = backfill(lister, span, feed, checkpoint=checkpoint)  # type: ignore[arg-type]
    resumed = fed_ids
    assert resumed == sorted(resumed)
    assert set(first_run[:100]) & set(resumed) == set()
    assert set(first_run) | set(resumed) == {i["id"] for i in invoices}
    assert result.skipped == 100
    # And a third run feeds nothing
    fed_ids.clear()
    again = backfill(lister, span, feed, checkpoint=checkpoint)  # type: ignore[arg-type]
    assert fed_ids == [] and again.objects == 0


class FakePreview:
    """AttributionPreview's part a dry run uses: one decision per object id."""

    def __init__(self, decisions: dict[str, Preview]) -> None:
        self.decisions, self.prefetched, self.reads = decisions, 0, 0

    def prefetch(self, events: list[Any]) -> None:
        self.prefetched += 1

    def of(self, account: Any, incoming: Any) -> Preview:
        return self.decisions[incoming.event["data"]["object"]["id"]]


def test_a_dry_run_line_names_the_amount_counted_and_the_partner_or_why_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stripe_everflow.domain.messages import IncomingEvent
    from stripe_everflow.domain.secret import StripeAccount

    paid = obj("basil", "invoice.paid.first", id="in_paid", customer="cus_a")
    parked = obj("basil", "invoice.paid.first", id="in_parked", customer="cus_b")
    charge = obj("legacy", "charge.refunded", id="ch_refunded", amount_refunded=1500)
    inquiry = obj("legacy", "charge.dispute.closed", id="dp_inquiry", status="warning_closed")
    click = ClickTarget("ef_tx_1", "12", "7", "email_first_touch")
    preview = FakePreview(
        {
            "in_paid": Preview("click", 4900, "USD", target=click),
            "in_parked": Preview("park", 4900, "USD", asks=("stripe_customer",)),
            "ch_refunded": Preview("undo", 1500, "USD"),
            "dp_inquiry": Preview("ignored", 0, "", reason="dispute_inquiry"),
        }
    )
    account = StripeAccount("default", False, ("whsec_x",), api_key="rk_test_x")
    dry = _DryRun(preview, account)
    events = [
        *events_of("invoices", paid, None),
        *events_of("invoices", parked, None),
        *events_of(
            "refunds",
            obj("legacy", "refund.created", charge="ch_refunded", status="succeeded"),
            FakeLister({}, {"ch_refunded": charge}),
        ),
        events_of("disputes", inquiry, None)[0],
    ]
    for event in events:
        dry.send(IncomingEvent("default", "backfill", event, 0).to_json(), {})
    assert capsys.readouterr().out == ""  # printed at the flush, the batch read together
    dry.flush()
    lines = capsys.readouterr().out.splitlines()
    assert preview.prefetched == 1 and len(lines) == 4
    assert lines[0].endswith(
        "customer cus_a  -> 49.00 USD, affiliate 7 click ef_tx_1 (email_first_touch)"
    )
    assert lines[1].endswith(
        "-> 49.00 USD, no click known: would park; would ask Stripe for the customer first"
    )
    assert "charge.refunded" in lines[2] and "1500 USD" in lines[2]
    assert lines[2].endswith("-> 15.00 USD, follows its payment's conversion")
    assert lines[3].endswith("-> ignored: dispute_inquiry")
    dry.close()
    assert capsys.readouterr().out == "dry run: 0 AttributionTable item(s) read, nothing written\n"
