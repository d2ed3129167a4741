"""reconcile's comparison (issue 12): which difference each order is, what --fix may
do with it, the totals, the three formats, and the parked payments read from
AttributionTable."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from stripe_everflow.domain.classify import ClassifySettings
from stripe_everflow_cli import reconcile
from stripe_everflow_cli.reconcile import (
    PARKED,
    PARKED_CLICK_KNOWN,
    UNSENT,
    EverflowConversion,
    StripeMoney,
)
from tests.support import stripe_event


def money(order: str, amount: int = 4900, **more: Any) -> StripeMoney:
    return StripeMoney(order, "USD", amount, {"id": f"evt_{order}"}, **more)


def posted(order: str, amount: str = "49.00", status: str = "posted") -> dict[str, Any]:
    return {"invoice_id": order, "action": "conversion", "status": status, "amount": amount}


def held(order: str, amount: str = "49", status: str = "approved", n: int = 1) -> Any:
    return EverflowConversion(f"c{n}_{order}", order, Decimal(amount), status)


def reasons(result: reconcile.Reconciliation) -> dict[str, str]:
    return {row.order_id: row.reason for row in result.rows}


def test_an_order_in_stripe_the_ledger_and_everflow_once_is_clean() -> None:
    result = reconcile.reconcile({"in_1": money("in_1")}, {"in_1": posted("in_1")}, [held("in_1")])
    assert result.rows == []
    totals = result.totals["USD"]
    assert (totals.counted, totals.posted, totals.in_everflow) == (Decimal("49.00"),) * 3


def test_each_difference_has_its_reason_and_only_the_repairable_a_fix() -> None:
    stripe = {
        o: money(o)
        for o in ("in_missing", "in_never", "in_failed", "in_twice", "in_ledger", "in_ef")
    }
    stripe["in_refunded"] = money("in_refunded", refunded_minor=4900, charge_minor=4900)
    stripe["in_lost"] = money("in_lost", dispute_lost=True)
    ledger = {
        "in_missing": posted("in_missing"),
        "in_failed": posted("in_failed", status="failed"),
        "in_twice": posted("in_twice"),
        "in_ledger": posted("in_ledger", amount="40.00"),
        "in_ef": posted("in_ef"),
        "in_refunded": posted("in_refunded"),
        "in_lost": posted("in_lost"),
    }
    everflow = [
        held("in_twice"),
        held("in_twice", n=2),
        held("in_ledger"),
        held("in_ef", amount="39"),
        held("in_refunded"),
        held("in_lost"),
    ]
    result = reconcile.reconcile(stripe, ledger, everflow)
    assert reasons(result) == {
        "in_missing": "missing_in_everflow",
        "in_never": "not_posted",
        "in_failed": "not_posted",
        "in_twice": "posted_twice",
        "in_ledger": "amount_differs",
        "in_ef": "amount_differs",
        "in_refunded": "refunded_in_stripe_approved_in_everflow",
        "in_lost": "refunded_in_stripe_approved_in_everflow",
    }
    assert set(result.queue) == {"in_never"}
    assert set(result.resend) == {"in_missing"}
    fixes = {row.order_id: row.fix for row in result.rows if row.fix != "-"}
    assert set(fixes) == {"in_missing", "in_never"}
    assert result.totals["USD"].differences == 8


def test_a_rejected_duplicate_or_a_reversed_refund_is_no_difference() -> None:
    stripe = {
        "in_dup": money("in_dup"),
        "in_refunded": money("in_refunded", refunded_minor=4900, charge_minor=4900),
        "in_early": money("in_early", refunded_minor=4900, charge_minor=4900),
    }
    ledger = {"in_dup": posted("in_dup"), "in_refunded": posted("in_refunded")}
    everflow = [
        held("in_dup"),
        held("in_dup", status="rejected", n=2),
        held("in_refunded", status="rejected"),
    ]
    # in_early: refunded in full before it was posted, nothing owed
    assert reconcile.reconcile(stripe, ledger, everflow).rows == []


def test_a_partial_refund_accepts_the_original_or_the_prorated_sale_amount() -> None:
    partial = {"refunded_minor": 1500, "charge_minor": 4900}
    stripe = {o: money(o, **partial) for o in ("in_a", "in_b", "in_c")}
    ledger = {o: posted(o) for o in stripe}
    everflow = [held("in_a", "49.00"), held("in_b", "34.00"), held("in_c", "30.00")]
    assert reasons(reconcile.reconcile(stripe, ledger, everflow)) == {"in_c": "amount_differs"}


def test_a_parked_payment_is_no_difference_unless_its_click_is_now_known() -> None:
    stripe = {o: money(o) for o in ("in_parked", "in_expired", "in_known", "in_waiting")}
    result = reconcile.reconcile(
        stripe,
        {},
        [],
        parked={"in_parked": PARKED, "in_expired": UNSENT, "in_known": PARKED_CLICK_KNOWN},
        waiting={"in_waiting"},
    )
    # no click: the bridge's decision, counted apart
    assert reasons(result) == {
        "in_known": "parked_with_click_known",
        "in_waiting": "not_posted",
    }
    assert result.totals["USD"].unattributed == Decimal("98.00")
    rows = {row.order_id: row for row in result.rows}
    assert rows["in_waiting"].ledger == "waiting"
    assert set(result.queue) == {"in_known", "in_waiting"}


def test_the_three_formats_carry_rows_and_totals() -> None:
    result = reconcile.reconcile({"in_1": money("in_1"), "in_2": money("in_2")}, {}, [])
    document = json.loads(reconcile.render(result, "json"))
    assert [r["order_id"] for r in document["rows"]] == ["in_1", "in_2"]
    assert document["totals"] == [
        {
            "currency": "USD",
            "payments": 2,
            "counted": "98.00",
            "refunded": "0.00",
            "disputed": "0.00",
            "posted": "0.00",
            "no_click": "0.00",
            "in_everflow": "0.00",
            "differences": 2,
        }
    ]
    rows_text, totals_text = reconcile.render(result, "csv").split("\n\n")
    assert [r["reason"] for r in csv.DictReader(io.StringIO(rows_text))] == ["not_posted"] * 2
    assert next(csv.DictReader(io.StringIO(totals_text)))["counted"] == "98.00"
    table = reconcile.render(result, "table")
    assert table.splitlines()[0].split()[:3] == ["reason", "order_id", "currency"]
    assert "98.00" in table.splitlines()[-1]
    clean = reconcile.render(reconcile.reconcile({}, {}, []), "table")
    assert clean.startswith("no differences")


def test_stripe_money_counts_an_order_once_and_finds_a_basil_refunds_invoice() -> None:
    settings = ClassifySettings()
    invoice = stripe_event("basil", "invoice.paid.first")
    refunded = stripe_event("basil", "charge.refunded")
    charge = refunded["data"]["object"]
    found = reconcile.stripe_money(
        [invoice, invoice, refunded],
        settings,
        lambda intent: "in_1QbridgeFirst01" if intent == charge["payment_intent"] else None,
    )
    [(order, counted)] = found.items()
    assert order == "in_1QbridgeFirst01" and counted.amount_minor == 4900
    assert (counted.refunded_minor, counted.charge_minor) == (1500, 4900)
    assert not counted.fully_refunded


class Scan:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def get_paginator(self, name: str) -> Any:
        assert name == "scan"
        return self

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return [{"Items": self.items}]


def test_parked_payments_are_read_with_whether_a_click_is_now_known() -> None:
    def parked_item(pk: str, event: dict[str, Any], expires: int = 2_000) -> dict[str, Any]:
        message = json.dumps({"event": event})
        return {
            "pk": {"S": pk},
            "sk": {"S": event["id"]},
            "message": {"S": message},
            "expires_at": {"N": str(expires)},
        }

    first = stripe_event("basil", "invoice.paid.first")
    renewal = stripe_event("basil", "invoice.paid.renewal")
    gone = stripe_event("basil", "payment_intent.succeeded")
    items = [
        parked_item("parked#email#h1", first),
        parked_item("parked#email#h2", renewal),
        parked_item("parked#email#h3", gone, expires=500),
        {"pk": {"S": "email#h2"}, "sk": {"S": "clicks"}},
        # claimed: a parked one, an expired one, a sent one
        {"pk": {"S": f"claim#default#conversion#{first['data']['object']['id']}"}},
        {"pk": {"S": "claim#default#conversion#in_expired"}},
        {"pk": {"S": "claim#default#conversion#in_sent"}, "job_key": {"S": "conversion:x"}},
    ]
    for item in items[-3:]:
        item["sk"] = {"S": "claim"}
    found = reconcile.parked_orders(Scan(items), "AttributionTable", ClassifySettings(), 1_000)
    assert found == {
        first["data"]["object"]["id"]: PARKED,
        renewal["data"]["object"]["id"]: PARKED_CLICK_KNOWN,
        "in_expired": UNSENT,
    }


def test_a_checkout_session_counts_its_intent_and_an_invoices_intent_is_the_invoices() -> None:
    settings = ClassifySettings()
    intent = stripe_event("basil", "payment_intent.succeeded")
    session = stripe_event("basil", "checkout.session.completed.payment")
    found = reconcile.stripe_money([intent, session], settings)
    [(order, counted)] = found.items()
    assert order == "pi_3QbridgeOneOff01"
    assert counted.event["type"] == "checkout.session.completed"
    # the same intent, paying an invoice (basil: only the InvoicePayment says so)
    assert reconcile.stripe_money([intent], settings, lambda _: "in_1") == {}
