"""`stripe-everflow report refunds` with refunds that failed, restores waiting for the
API key and payouts prorated: each outcome shown, the totals net of what came back."""

from __future__ import annotations

import json
from typing import Any

from stripe_everflow_cli.report import build_report, prepare_report

T1, T2, T3 = 1770735601, 1771340400, 1771945200  # refunded, failed a week later, again


def entry(job_key: str, action: str, occurred_at: int, **facts: Any) -> dict[str, Any]:
    return {"pk": f"job#{job_key}", "job_key": job_key, "action": action} | {
        "occurred_at": occurred_at,
        "currency": "USD",
        **facts,
    }


def conversion(invoice: str) -> dict[str, Any]:
    return entry(
        f"conversion:default:{invoice}",
        "conversion",
        T1 - 86400,
        amount="49.00",
        status="posted",
        invoice_id=invoice,
    )


def state(charge: str, refunded: str, at: int, invoice: str, **facts: Any) -> dict[str, Any]:
    return entry(
        f"refund:default:{charge}:{refunded}@{at}",
        "refund",
        at,
        amount_refunded=refunded,
        charge_amount="49.00",
        charge_id=charge,
        conversion_job_key=f"conversion:default:{invoice}",
        **facts,
    )


def failure(refund: str, amount: str, charge: str, invoice: str, **facts: Any) -> dict[str, Any]:
    return entry(
        f"refund_failed:default:{refund}",
        "refund_failed",
        T2,
        amount=amount,
        charge_id=charge,
        refund_id=refund,
        conversion_job_key=f"conversion:default:{invoice}",
        **facts,
    )


LEDGER = [
    conversion("in_1"),
    conversion("in_2"),
    conversion("in_3"),
    # in_1: 15.00 refunded (payout prorated), that refund failed, then 10.00 refunded
    state(
        "ch_1",
        "15.00",
        T1,
        "in_1",
        status="adjusted",
        everflow_action="adjust+prorate",
        sale_amount="34.00",
        payout_after="6.94",
    ),
    failure(
        "re_1",
        "15.00",
        "ch_1",
        "in_1",
        status="restored",
        everflow_action="adjust+prorate",
        sale_amount="49.00",
        payout_after="10.00",
    ),
    state(
        "ch_1",
        "10.00",
        T3,
        "in_1",
        status="adjusted",
        everflow_action="adjust+prorate",
        sale_amount="39.00",
        payout_after="7.96",
    ),
    # in_2: refunded in full (reversed), and that refund failed: approved again
    state("ch_2", "49.00", T1, "in_2", status="reversed", everflow_action="reverse"),
    failure("re_2", "49.00", "ch_2", "in_2", status="restored", everflow_action="restore"),
    # in_3: a won dispute, without the API key
    entry(
        "dispute_closed:default:dp_3:won",
        "dispute_closed",
        T3,
        dispute_id="dp_3",
        dispute_status="won",
        charge_id="ch_3",
        conversion_job_key="conversion:default:in_3",
        status="restore_needs_key",
        everflow_action="none",
        needed="restore",
    ),
]


def test_each_outcome_is_shown_with_what_it_did() -> None:
    report = prepare_report("refunds", LEDGER, None, None)
    shown = [
        (r["action"], r["failed"], r["everflow_action"], r["sale_amount_after"], r["status"])
        for r in report.rows
    ]
    assert shown == [
        ("refund", "", "adjustment + payout prorated", "34.00", "adjusted"),
        ("refund", "", "reversal", "", "reversed"),
        ("refund_failed", "15.00", "adjustment + payout prorated", "49.00", "restored"),
        ("refund_failed", "49.00", "restore", "", "restored"),
        ("dispute_closed (won)", "", "restore needs key", "", "restore_needs_key"),
        ("refund", "", "adjustment + payout prorated", "39.00", "adjusted"),
    ]
    assert [r["payout_after"] for r in report.rows if r["payout_after"]] == [
        "6.94",
        "10.00",
        "7.96",
    ]
    assert {r["order_id"] for r in report.rows} == {"in_1", "in_2", "in_3"}


def test_totals_count_what_was_refunded_for_good() -> None:
    totals = json.loads(build_report("refunds", LEDGER, None, None, "json"))["totals"]
    assert totals == {
        "USD": {
            # in_1: 10.00 refunded after the 15.00 refund failed; in_2: nothing kept back
            "refunded": "10.00",
            "charges_refunded": "1",
            "failed_refunds": "2",
            "failed_refunded": "64.00",
            "payouts_prorated": "3",
            "restores_needing_key": "1",
            "dispute_closed": "1",
        }
    }


def test_a_failure_counts_only_against_the_states_before_it() -> None:
    # 24.00 refunded, then the 15.00 refund of it failed: 9.00 refunded for good
    ledger = [
        conversion("in_1"),
        state("ch_1", "15.00", T1, "in_1", status="adjusted", everflow_action="adjust"),
        state("ch_1", "24.00", T1 + 60, "in_1", status="adjusted", everflow_action="adjust"),
        failure("re_1", "15.00", "ch_1", "in_1", status="restored", everflow_action="adjust"),
    ]
    totals = json.loads(build_report("refunds", ledger, None, None, "json"))["totals"]["USD"]
    assert (totals["refunded"], totals["failed_refunded"]) == ("9.00", "15.00")


def test_the_table_names_the_restore_that_needs_the_key() -> None:
    table = build_report("refunds", LEDGER, None, None, "table")
    assert "restore needs key" in table
    assert "restores_needing_key 1" in table and "failed_refunded 64.00" in table
    header = build_report("refunds", LEDGER, None, None, "csv").splitlines()[0]
    assert header.split(",")[7:12] == [
        "failed",
        "currency",
        "everflow_action",
        "sale_amount_after",
        "payout_after",
    ]


def test_an_unreadable_failed_amount_is_named_and_left_out() -> None:
    ledger = [
        *LEDGER,
        failure("re_9", "not money", "ch_9", "in_1", status="restored", everflow_action="adjust"),
    ]
    report = prepare_report("refunds", ledger, None, None)
    assert report.totals["USD"]["failed_refunds"] == "2"
    assert any("refund_failed:default:re_9" in note and "failed" in note for note in report.notes)
