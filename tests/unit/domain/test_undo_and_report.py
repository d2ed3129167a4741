"""What a refund or dispute does to a conversion, and the report's arithmetic."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow.domain.jobs import PostbackJob, StripeRefs
from stripe_everflow.domain.undo import (
    dispute_outcome_key,
    net_amount,
    plan,
    refund_is_full,
    refunded_minor,
)
from stripe_everflow_cli.report import build_report, in_period


@pytest.mark.parametrize(
    ("conversion", "currency", "charge", "refunded", "expected"),
    [
        ("49.00", "USD", "49.00", "15.00", "34.00"),  # no tax: paid - refunded
        ("49.00", "USD", "49.00", "49.00", "0.00"),
        ("50.00", "USD", "55.00", "11.00", "40.00"),  # tax excluded: in proportion
        ("5000", "JPY", "5000", "1200", "3800"),
        ("4.900", "KWD", "4.900", "1.225", "3.675"),
        ("10.00", "USD", "30.00", "10.00", "6.67"),  # rounds half up to the cent
    ],
)
def test_net_amount_keeps_what_the_charge_kept(
    conversion: str, currency: str, charge: str, refunded: str, expected: str
) -> None:
    assert net_amount(conversion, currency, charge, refunded) == Decimal(expected)


def undo_job(action: str, **fields: Any) -> PostbackJob:
    return PostbackJob(f"{action}:default:x", action, "default", False, **fields)  # type: ignore[arg-type]


def refund(refunded: str, charge: str = "49.00", currency: str = "USD") -> PostbackJob:
    return undo_job(
        "refund",
        amount_refunded=Decimal(refunded),
        charge_amount=Decimal(charge),
        currency=currency,
    )


def test_full_refund_is_refunded_at_least_the_charge() -> None:
    assert refund_is_full(refund("49.00"))
    assert not refund_is_full(refund("48.99"))
    assert not refund_is_full(undo_job("refund"))
    assert refunded_minor(refund("1.225", "4.900", "KWD")) == 1225
    assert refunded_minor(undo_job("refund")) == 0


def _plan(job: PostbackJob, conversion: dict[str, Any] | None = None, **kw: Any) -> str:
    settings = {
        "partial_policy": "adjust",
        "fallback": "record-only",
        "dispute_policy": "on-created",
        "has_api_key": True,
    }
    return plan(job, conversion=conversion or {}, **(settings | kw))


PARTIAL = refund("10.00")
FULL = refund("49.00")


@pytest.mark.parametrize(
    ("job", "settings", "expected"),
    [
        (FULL, {}, "reverse"),
        (FULL, {"partial_policy": "record-only"}, "reverse"),
        (PARTIAL, {}, "adjust"),
        (PARTIAL, {"has_api_key": False}, "record"),
        (PARTIAL, {"has_api_key": False, "fallback": "reverse"}, "reverse"),
        (PARTIAL, {"partial_policy": "reverse"}, "reverse"),
        (PARTIAL, {"partial_policy": "record-only"}, "record"),
        (undo_job("dispute_opened"), {}, "reverse"),
        (undo_job("dispute_opened"), {"dispute_policy": "on-lost"}, "record"),
    ],
)
def test_plan_follows_the_policies(
    job: PostbackJob, settings: dict[str, Any], expected: str
) -> None:
    assert _plan(job, **settings) == expected


def test_a_dispute_opened_after_its_close_or_a_refund_changes_nothing() -> None:
    opened = undo_job("dispute_opened", stripe=StripeRefs(dispute_id="dp_1"))
    assert dispute_outcome_key(opened) == "dispute_dp_1_outcome"
    assert _plan(opened, {"dispute_dp_1_outcome": "won"}) == "record"
    assert _plan(opened, {"everflow_state": "reversed"}) == "record"


def test_dispute_outcomes_depend_on_what_was_done_at_creation() -> None:
    won, lost = (undo_job("dispute_closed", dispute_status=s) for s in ("won", "lost"))
    reversed_ = {"reversed_by": "dispute_opened:default:dp_1"}
    assert _plan(won, reversed_) == "restore"
    assert _plan(won, {}) == "record"
    assert _plan(lost, reversed_) == "record"
    assert _plan(lost, {}) == "reverse"


def entry(job_key: str, action: str, occurred_at: int, **facts: Any) -> dict[str, Any]:
    return {
        "pk": f"job#{job_key}",
        "job_key": job_key,
        "action": action,
        "occurred_at": occurred_at,
        **facts,
    }


LEDGER = [
    entry(
        "conversion:default:in_1",
        "conversion",
        1767225600,
        kind="initial",
        amount="49.00",
        currency="USD",
        status="posted",
        invoice_id="in_1",
        transaction_id="tx",
        everflow_state="adjusted",
        sale_amount="34.00",
    ),
    entry(
        "conversion:default:pi_2",
        "conversion",
        1767312000,
        kind="initial",
        amount="5000",
        currency="JPY",
        status="posted",
        payment_intent_id="pi_2",
        everflow_state="reversed",
    ),
    entry(
        "refund:default:ch_1:1500",
        "refund",
        1767398400,
        amount_refunded="15.00",
        charge_amount="49.00",
        currency="USD",
        status="adjusted",
        everflow_action="adjust",
        charge_id="ch_1",
        sale_amount="34.00",
        conversion_job_key="conversion:default:in_1",
    ),
    entry(
        "refund:default:ch_1:900",
        "refund",
        1767398500,
        amount_refunded="9.00",
        charge_amount="49.00",
        currency="USD",
        status="superseded",
        charge_id="ch_1",
        conversion_job_key="conversion:default:in_1",
    ),
    entry(
        "refund:default:ch_9:4900",
        "refund",
        1767398600,
        amount_refunded="49.00",
        charge_amount="49.00",
        currency="USD",
        status="not_ours",
        charge_id="ch_9",
    ),
]


def test_refund_report_totals_each_charge_once_at_its_latest_amount() -> None:
    report = json.loads(build_report("refunds", LEDGER, None, None, "json"))
    assert report["totals"]["USD"] == {
        "refunded": "15.00",
        "charges_refunded": "1",
        "not_ours_refunded": "49.00",
    }
    actions = [row["everflow_action"] for row in report["rows"]]
    assert actions == ["adjustment", "superseded", "not_ours"]
    assert report["rows"][0]["order_id"] == "in_1"


def test_conversion_report_nets_refunds() -> None:
    report = json.loads(build_report("conversions", LEDGER, None, None, "json"))
    assert report["totals"] == {
        "JPY": {"conversions": "1", "posted": "5000", "net_after_refunds": "0"},
        "USD": {"conversions": "1", "posted": "49.00", "net_after_refunds": "34.00"},
    }


def test_period_is_inclusive_in_utc_days() -> None:
    kept = in_period(LEDGER, date(2026, 1, 2), date(2026, 1, 2))
    assert [e["job_key"] for e in kept] == ["conversion:default:pi_2"]


def test_csv_and_table_formats() -> None:
    csv_text = build_report("conversions", LEDGER, None, None, "csv")
    assert csv_text.splitlines()[0].startswith("date,kind,order_id")
    table = build_report("refunds", LEDGER, None, None, "table")
    assert "totals per currency:" in table and "USD: refunded 15.00" in table
    assert "no entries in this period" in build_report("refunds", [], None, None, "table")


def test_refund_of_a_conversion_from_an_earlier_period_names_its_order() -> None:
    # the refund is in January 3rd; its conversion on January 1st, outside the period
    report = json.loads(build_report("refunds", LEDGER, date(2026, 1, 3), None, "json"))
    assert report["rows"][0]["order_id"] == "in_1"
