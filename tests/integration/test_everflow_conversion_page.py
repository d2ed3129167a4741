"""``EverflowNetworkApi.conversion_page`` as ``reconcile`` pages it: each row's
``order_id`` and ``sale_amount``, the post-conversion events with ``events=True``,
and the offer or advertiser filter; against the Everflow stand-in's report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from stripe_everflow.adapters.everflow.network_api import (
    EverflowNetworkApi,
    read_reported_conversion,
)
from stripe_everflow_cli.everflow_standin import EverflowStandIn

JAN_1 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


def record(everflow: EverflowStandIn) -> None:
    common = {"conversion_unix_timestamp": JAN_1 + DAY, "status": "approved"}
    everflow.add_conversion(
        conversion_id="c1",
        order_id="in_1",
        sale_amount="49.5",
        offer_id="1",
        advertiser_id="5",
        **common,
    )
    everflow.add_conversion(
        conversion_id="c2",
        order_id="in_2",
        sale_amount=10,
        is_event=True,
        offer_id="1",
        advertiser_id="5",
        **common,
    )
    everflow.add_conversion(
        conversion_id="c3",
        order_id="in_3",
        sale_amount=7,
        offer_id="30",
        advertiser_id="6",
        **common,
    )


def page(api: EverflowNetworkApi, **options: object) -> tuple[dict[str, object], int]:
    rows, total = api.conversion_page(
        "key",
        JAN_1,
        JAN_1 + 31 * DAY,
        page=1,
        page_size=50,
        **options,  # type: ignore[arg-type]
    )
    return {r.conversion_id: (r.order_id, r.sale_amount, r.is_event) for r in rows}, total


def test_rows_carry_order_id_and_sale_amount_and_events_are_read_on_request(
    everflow: EverflowStandIn,
) -> None:
    record(everflow)
    api = EverflowNetworkApi(everflow.url, None)
    # base conversions only, as the click source reads them (unchanged default)
    assert page(api) == (
        {"c1": ("in_1", Decimal("49.5"), False), "c3": ("in_3", Decimal("7"), False)},
        2,
    )
    assert page(api, events=True) == (
        {
            "c1": ("in_1", Decimal("49.5"), False),
            "c2": ("in_2", Decimal("10"), True),
            "c3": ("in_3", Decimal("7"), False),
        },
        3,
    )
    # filtered to an offer, else an advertiser
    assert set(page(api, events=True, offer_id="30")[0]) == {"c3"}
    assert set(page(api, events=True, advertiser_id="5")[0]) == {"c1", "c2"}
    bodies = [json.loads(r.body) for r in everflow.api_calls()]
    assert [b["show_events"] for b in bodies] == [False, True, True, True]
    assert bodies[-1]["query"] == {
        "filters": [{"resource_type": "advertiser", "filter_id_value": "5"}]
    }


def test_a_row_without_order_id_or_with_an_unreadable_amount_has_none() -> None:
    base = {"conversion_id": "c1", "conversion_unix_timestamp": JAN_1}
    found = read_reported_conversion({**base, "order_id": "", "sale_amount": "lots"})
    assert found is not None and found.order_id is None and found.sale_amount is None
    found = read_reported_conversion({**base, "order_id": 12, "sale_amount": True})
    assert found is not None and found.order_id == "12" and found.sale_amount is None
    assert read_reported_conversion({**base, "sale_amount": "NaN"}).sale_amount is None  # type: ignore[union-attr]
