"""Everflow's report rows as clicks, and the lookup's window, without a network."""

from __future__ import annotations

from typing import Any

import pytest

from stripe_everflow.adapters.everflow.network_api import read_reported_conversion, report_time
from stripe_everflow.clicks.everflow_source import (
    MAX_LOOKBACK_SECONDS,
    EverflowLookup,
    click_of,
)
from stripe_everflow.domain.attribution import StoredClick
from stripe_everflow.ports.everflow import ReportedConversion

DAY = 86_400
PAID_AT = 1_767_225_592


def row(**changes: Any) -> ReportedConversion:
    fields: dict[str, Any] = {
        "conversion_id": "c1",
        "transaction_id": "ef_tx_1",
        "email": "jenny@example.com",
        "is_event": False,
        "converted_at": PAID_AT - DAY,
        "clicked_at": PAID_AT - 2 * DAY,
        "offer_id": "1",
        "affiliate_id": "7",
        "advertiser_id": "3",
        "status": "approved",
    }
    return ReportedConversion(**(fields | changes))


def test_a_base_conversion_of_the_offer_is_a_click_at_its_click_time() -> None:
    assert click_of(row(), offer_id="1", advertiser_id=None) == StoredClick(
        "ef_tx_1", PAID_AT - 2 * DAY, "1", "7", "everflow"
    )
    assert click_of(row(clicked_at=None), offer_id="1", advertiser_id=None).occurred_at == (  # type: ignore[union-attr]
        PAID_AT - DAY
    )


@pytest.mark.parametrize(
    ("changes", "offer_id", "advertiser_id"),
    [
        ({"is_event": True}, "1", None),
        ({"transaction_id": None}, "1", None),
        ({"transaction_id": "not a click id"}, "1", None),
        ({"status": "rejected"}, "1", None),
        ({"status": "INVALID"}, "1", None),
        ({"offer_id": "9"}, "1", None),
        ({"advertiser_id": "4"}, None, "3"),
    ],
)
def test_what_is_not_a_click(
    changes: dict[str, Any], offer_id: str | None, advertiser_id: str | None
) -> None:
    assert click_of(row(**changes), offer_id=offer_id, advertiser_id=advertiser_id) is None


def test_without_offer_or_advertiser_any_base_conversion_counts() -> None:
    assert click_of(row(offer_id="9", advertiser_id="4"), offer_id=None, advertiser_id=None)


def test_report_rows_are_read_leniently() -> None:
    found = read_reported_conversion(
        {
            "conversion_id": 123,
            "transaction_id": "ef_tx_1",
            "email": " Jenny@Example.com ",
            "is_event": False,
            "conversion_unix_timestamp": PAID_AT,
            "click_unix_timestamp": 0,
            "status": "approved",
            "relationship": {
                "offer": {"network_offer_id": 1},
                "affiliate": {"network_affiliate_id": 7},
                "advertiser": None,
            },
        }
    )
    assert found == ReportedConversion(
        "123", "ef_tx_1", "Jenny@Example.com", False, PAID_AT, None, "1", "7", None, "approved"
    )
    assert read_reported_conversion({"conversion_id": "x"}) is None  # no time
    assert read_reported_conversion("not a row") is None
    assert report_time(PAID_AT) == "2025-12-31 23:59:52"


class Reports:
    def __init__(self, rows: list[ReportedConversion]) -> None:
        self.rows = rows
        self.asked: list[tuple[str, int, int]] = []

    def conversions_by_email(
        self, api_key: str, email: str, since: int, until: int
    ) -> list[ReportedConversion]:
        self.asked.append((email, since, until))
        return self.rows

    def conversion_page(self, *args: Any, **kwargs: Any) -> tuple[list[ReportedConversion], int]:
        raise AssertionError("not used")


class Store:
    def __init__(self) -> None:
        self.clicks: list[StoredClick] = []
        self.misses: list[tuple[str, int]] = []

    def put_click(self, email_hash: str, click: StoredClick) -> bool:
        self.clicks.append(click)
        return True

    def note_everflow_miss(self, email_hash: str, until: int) -> None:
        self.misses.append((email_hash, until))


def lookup(rows: list[ReportedConversion], now: int) -> tuple[EverflowLookup, Reports, Store]:
    reports, store = Reports(rows), Store()
    found = EverflowLookup(reports, store, offer_id="1", miss_seconds=300, clock=lambda: now)  # type: ignore[arg-type]
    return found, reports, store


def test_the_lookup_asks_for_the_window_before_the_payment_up_to_now() -> None:
    found, reports, store = lookup([], PAID_AT + 60)
    assert (
        found.find(
            "k", "jenny@example.com", "h", paid_at=PAID_AT, policy="first-touch", window_days=30
        )
        is None
    )
    assert reports.asked == [("jenny@example.com", PAID_AT - 30 * DAY, PAID_AT + 60)]
    assert store.misses == [("h", PAID_AT + 360)]


def test_without_a_window_the_lookup_asks_for_what_everflow_reports() -> None:
    found, reports, _ = lookup([], PAID_AT + 400 * DAY)
    found.find("k", "j@example.com", "h", paid_at=PAID_AT, policy="first-touch", window_days=0)
    [(_, since, until)] = reports.asked
    assert until - since == MAX_LOOKBACK_SECONDS  # Everflow reports 365 days back at most


def test_known_clicks_take_part_in_the_choice() -> None:
    earlier = StoredClick("ef_tx_api", PAID_AT - 5 * DAY, source="api")
    found, _, store = lookup([row()], PAID_AT)
    chosen = found.find(
        "k",
        "j@example.com",
        "h",
        paid_at=PAID_AT,
        policy="first-touch",
        window_days=0,
        known=[earlier],
    )
    assert chosen == earlier and [c.transaction_id for c in store.clicks] == ["ef_tx_1"]
    assert store.misses == []
