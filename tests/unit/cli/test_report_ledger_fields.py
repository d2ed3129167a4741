"""`report conversions|refunds` over a ledger holding a broken entry: every field the
report reads may be absent, wrong-typed, huge or negative. The report never raises,
reports the sound entries as before, and says which entry it could not read."""

from __future__ import annotations

import json
import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow_cli.report import build_report, prepare_report

JAN_1, JAN_3 = 1767225600, 1767398400


def _entry(job_key: str, action: str, occurred_at: Any, **facts: Any) -> dict[str, Any]:
    return {
        "pk": f"job#{job_key}",
        "job_key": job_key,
        "action": action,
        "occurred_at": occurred_at,
        "created_at": occurred_at,
        **facts,
    }


def _conversion(job_key: str = "conversion:default:in_1", **changes: Any) -> dict[str, Any]:
    return (
        _entry(
            job_key,
            "conversion",
            JAN_1,
            kind="initial",
            amount="49.00",
            currency="USD",
            status="posted",
            invoice_id="in_1",
            payment_intent_id="pi_1",
            charge_id="ch_1",
            transaction_id="tx",
            everflow_state="adjusted",
            sale_amount="34.00",
            conversion_id="cv_1",
        )
        | changes
    )


def _refund(job_key: str = "refund:default:ch_1:1500", **changes: Any) -> dict[str, Any]:
    return (
        _entry(
            job_key,
            "refund",
            JAN_3,
            amount_refunded="15.00",
            charge_amount="49.00",
            currency="USD",
            status="adjusted",
            everflow_action="adjust",
            charge_id="ch_1",
            dispute_id="dp_1",
            dispute_status="won",
            sale_amount="34.00",
            conversion_job_key="conversion:default:in_1",
        )
        | changes
    )


SOUND = [_conversion(), _refund()]
SOUND_TOTALS = {
    "conversions": {"conversions": "1", "posted": "49.00", "net_after_refunds": "34.00"},
    "refunds": {"refunded": "15.00", "charges_refunded": "1"},
}

READ_FIELDS = (
    "job_key",
    "action",
    "occurred_at",
    "created_at",
    "kind",
    "invoice_id",
    "payment_intent_id",
    "charge_id",
    "transaction_id",
    "amount",
    "currency",
    "status",
    "everflow_state",
    "sale_amount",
    "conversion_id",
    "conversion_job_key",
    "dispute_status",
    "dispute_id",
    "amount_refunded",
    "charge_amount",
    "everflow_action",
)
ABSENT = object()
BAD_VALUES: list[Any] = [
    ABSENT,
    None,
    "",
    "not a number",
    0,
    -1,
    -(10**20),
    10**20,
    10**400,
    10**5000,
    Decimal("1e40"),
    Decimal("-1e40"),
    Decimal("1e999999"),
    Decimal("-0.5"),
    Decimal("1767225600.5"),
    "1767225600",
    "Infinity",
    "NaN",
    "-49.00",
    True,
    [],
    ["x", 1],
    {"a": 1},
    "x" * 3000,
    "line\nbreak\tand\x00nul",
]


def _value_id(value: Any) -> str:
    if value is ABSENT:
        return "absent"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"int of {len(str(abs(value))) if value < 10**4000 else 'over 4000'} digits"
    return repr(value)[:24]


def _broken(kind: str, field: str, value: Any) -> dict[str, Any]:
    # The broken twin is in another currency and job, so the sound entries' totals
    # (USD) show whether it leaked into them.
    twin = (
        _conversion("conversion:default:in_bad", currency="EUR", invoice_id="in_bad")
        if kind == "conversions"
        else _refund("refund:default:ch_bad:1", currency="EUR", charge_id="ch_bad")
    )
    if value is ABSENT:
        twin.pop(field, None)
    else:
        twin[field] = value
    return twin


def _all_formats(kind: str, ledger: list[dict[str, Any]], **period: Any) -> dict[str, Any]:
    start, end = period.get("start"), period.get("end")
    for fmt in ("table", "csv"):
        assert isinstance(build_report(kind, ledger, start, end, fmt), str)
    report: dict[str, Any] = json.loads(build_report(kind, ledger, start, end, "json"))
    return report


@pytest.mark.parametrize("kind", ["conversions", "refunds"])
@pytest.mark.parametrize("field", READ_FIELDS)
@pytest.mark.parametrize("value", BAD_VALUES, ids=_value_id)
def test_one_broken_field_never_breaks_the_report(kind: str, field: str, value: Any) -> None:
    # Given a ledger with sound entries and one entry whose field is broken
    ledger = [*SOUND, _broken(kind, field, value)]
    # When the report is made, in every format, with and without a period
    report = _all_formats(kind, ledger)
    _all_formats(kind, ledger, start=date(2026, 1, 1), end=date(2026, 1, 31))
    # Then the sound entries are reported as before
    assert report["totals"]["USD"] == SOUND_TOTALS[kind]
    assert all(len(c) == 3 and c.isalpha() and c.isupper() for c in report["totals"])


def test_absurd_timestamp_is_named_and_the_rest_reported() -> None:
    # Given one entry dated 10^20 seconds after 1970 (after datetime's year 9999)
    ledger = [*SOUND, _conversion("conversion:default:in_far", occurred_at=10**20, created_at=None)]
    # When the conversion report is made for January
    report = prepare_report("conversions", ledger, date(2026, 1, 1), date(2026, 1, 31))
    # Then the sound conversion is there, and the entry left out is named with its field
    assert [row["job_key"] for row in report.rows] == ["conversion:default:in_1"]
    assert any("conversion:default:in_far" in n and "occurred_at" in n for n in report.notes)
    assert "conversion:default:in_far" in build_report(
        "conversions", ledger, date(2026, 1, 1), None, "table"
    )


def test_without_a_period_an_undated_entry_is_listed_undated() -> None:
    ledger = [*SOUND, _conversion("conversion:default:in_neg", occurred_at=-5, created_at="x")]
    report = prepare_report("conversions", ledger, None, None)
    dates = {row["job_key"]: row["date"] for row in report.rows}
    assert dates == {"conversion:default:in_1": "2026-01-01", "conversion:default:in_neg": ""}


def test_unreadable_amount_is_left_out_of_the_totals_and_named() -> None:
    ledger = [*SOUND, _conversion("conversion:default:in_huge", amount=Decimal("1e999999"))]
    report = prepare_report("conversions", ledger, None, None)
    assert report.totals["USD"] == SOUND_TOTALS["conversions"]
    assert any("conversion:default:in_huge" in n and "amount" in n for n in report.notes)


def test_entries_broken_many_ways_at_once_never_break_the_report() -> None:
    # A seeded stream of ledgers whose entries have several fields broken together.
    rng = random.Random(10)  # noqa: S311 - a reproducible test stream
    for _ in range(300):
        ledger: list[dict[str, Any]] = []
        for n in range(rng.randint(1, 6)):
            entry = rng.choice([_conversion, _refund])(f"job:{n}")
            for field in rng.sample(READ_FIELDS, rng.randint(1, 6)):
                value = rng.choice(BAD_VALUES)
                if value is ABSENT:
                    entry.pop(field, None)
                else:
                    entry[field] = value
            ledger.append(entry)
        for kind in ("conversions", "refunds"):
            _all_formats(kind, ledger)
            _all_formats(kind, ledger, start=date(2026, 1, 2))
