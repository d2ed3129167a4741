"""The Everflow stand-in's offer, tracking domain and conversion report endpoints:
the shapes other tests (the click source, doctor) rely on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from stripe_everflow_cli.everflow_standin import EverflowStandIn

DAY = 86_400
JAN_1 = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


def _report(everflow: EverflowStandIn, paging: str = "", **body: Any) -> requests.Response:
    document = {"from": "2026-01-01", "to": "2026-01-31", "timezone_id": 67, **body}
    return requests.post(
        f"{everflow.url}/v1/networks/reporting/conversions{paging}", json=document, timeout=5
    )


def test_the_default_offer_is_set_up_the_way_the_bridge_needs(everflow: EverflowStandIn) -> None:
    answer = requests.get(f"{everflow.url}/v1/networks/offers/1?relationship=all", timeout=5)
    assert answer.status_code == 200
    offer = answer.json()
    assert offer["network_offer_id"] == 1
    assert offer["offer_status"] == "active"
    assert offer["is_email_attribution_enabled"] is True
    entries = offer["relationship"]["payout_revenue"]["entries"]
    rebill = next(e for e in entries if e["network_offer_payout_revenue_id"] == 2)
    assert rebill["is_allow_duplicate_conversion"] is True
    assert rebill["is_email_attribution_default_event"] is True
    assert next(e for e in entries if e["is_default"])["entry_name"] == "Base"
    assert offer["relationship"]["tracking_domain"]["url"] == "tracking.example.local"
    assert offer["relationship"]["advertiser"]["verification_token"] == ""


def test_an_offer_can_be_broken_one_setting_at_a_time(everflow: EverflowStandIn) -> None:
    offer = everflow.network_offer(1)
    assert offer is not None
    entries = offer["relationship"]["payout_revenue"]["entries"]
    entries[1]["is_allow_duplicate_conversion"] = False
    requests.post(
        f"{everflow.url}/__standin/network_offer",
        json={
            "network_offer_id": 1,
            "offer_status": "paused",
            "relationship": {"payout_revenue": {"entries": entries}},
        },
        timeout=5,
    )
    changed = requests.get(f"{everflow.url}/v1/networks/offers/1", timeout=5).json()
    assert changed["offer_status"] == "paused"
    assert (
        changed["relationship"]["payout_revenue"]["entries"][1]["is_allow_duplicate_conversion"]
        is False
    )
    assert changed["relationship"]["advertiser"]["name"] == "Local advertiser"  # kept
    everflow.set_tracking_domain(1, {"url": "elsewhere.example"})
    domain = requests.get(f"{everflow.url}/v1/networks/domains/tracking/1", timeout=5).json()
    assert domain["url"] == "elsewhere.example"
    everflow.set_network_offer(1, {"deleted": True})
    assert requests.get(f"{everflow.url}/v1/networks/offers/1", timeout=5).status_code == 404


def test_a_wrong_api_key_is_refused_once_a_key_is_set(everflow: EverflowStandIn) -> None:
    url = f"{everflow.url}/v1/networks/offers/1"
    assert requests.get(url, timeout=5).status_code == 200
    requests.post(f"{everflow.url}/__standin/api_key", json={"api_key": "right"}, timeout=5)
    wrong = requests.get(url, headers={"X-Eflow-API-Key": "wrong"}, timeout=5)
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Unauthorized"})
    assert requests.get(url, headers={"X-Eflow-API-Key": "right"}, timeout=5).status_code == 200


def test_conversions_by_email_within_the_window(everflow: EverflowStandIn) -> None:
    everflow.add_conversion(
        transaction_id="tx_a",
        email="Jenny@Example.com",
        offer_id=1,
        affiliate_id=7,
        conversion_unix_timestamp=JAN_1 + DAY,
    )
    everflow.add_conversion(
        transaction_id="tx_a",
        email="jenny@example.com",
        offer_id=1,
        is_event=True,
        event="Rebill",
        event_id=2,
        conversion_unix_timestamp=JAN_1 + 2 * DAY,
    )
    everflow.add_conversion(
        transaction_id="tx_old", email="jenny@example.com", conversion_unix_timestamp=JAN_1 - DAY
    )
    everflow.add_conversion(transaction_id="tx_b", email="other@example.com")
    answer = requests.post(
        f"{everflow.url}/v1/networks/reporting/conversions/email",
        json={
            "email": "jenny@example.com",
            "from": "2026-01-01",
            "to": "2026-01-03",
            "timezone_id": 67,
        },
        timeout=5,
    )
    rows = answer.json()["conversions"]
    assert [(r["transaction_id"], r["is_event"]) for r in rows] == [
        ("tx_a", False),
        ("tx_a", True),
    ]
    assert rows[0]["relationship"]["offer"] == {"network_offer_id": 1}
    assert rows[0]["relationship"]["affiliate"] == {"network_affiliate_id": 7}
    assert rows[1]["event"] == "Rebill"
    assert rows[1]["network_offer_payout_revenue_id"] == 2


def test_the_conversion_report_pages_and_filters(everflow: EverflowStandIn) -> None:
    for n in range(5):
        everflow.add_conversion(
            transaction_id=f"tx_{n}",
            email=f"c{n}@example.com" if n != 3 else None,
            offer_id=1,
            conversion_unix_timestamp=JAN_1 + n,
        )
    everflow.add_conversion(
        transaction_id="tx_e", offer_id=1, is_event=True, conversion_unix_timestamp=JAN_1 + 9
    )
    everflow.add_conversion(transaction_id="tx_o", offer_id=2, conversion_unix_timestamp=JAN_1 + 9)
    filters = {"filters": [{"resource_type": "offer", "filter_id_value": "1"}]}
    pages = []
    for page in (1, 2, 3, 4):
        answer = _report(
            everflow,
            f"?page={page}&page_size=2",
            show_conversions=True,
            show_events=False,
            query=filters,
        ).json()
        assert answer["paging"] == {"page": page, "page_size": 2, "total_count": 5}
        pages.append([r["transaction_id"] for r in answer["conversions"]])
    assert pages == [["tx_0", "tx_1"], ["tx_2", "tx_3"], ["tx_4"], []]
    assert (
        _report(everflow, "?page=1", show_events=True, query=filters).json()["paging"][
            "total_count"
        ]
        == 6
    )


def test_the_conversion_report_refuses_what_everflow_refuses(everflow: EverflowStandIn) -> None:
    assert _report(everflow, **{"from": "2024-01-01", "to": "2026-01-01"}).status_code == 400
    assert _report(everflow, **{"from": "yesterday"}).status_code == 400
    assert _report(everflow, "?page=0").status_code == 400


def test_reports_take_scripted_answers(everflow: EverflowStandIn) -> None:
    everflow.add_conversion(
        transaction_id="tx", email="a@example.com", offer_id=1, conversion_unix_timestamp=JAN_1
    )
    everflow.script(
        [{"status": 429}, {"status": 503}, {"status": 200, "body": '{"conversions": []}'}]
    )
    assert _report(everflow).status_code == 429
    assert _report(everflow).status_code == 503
    assert _report(everflow).json() == {"conversions": []}
    assert len(_report(everflow).json()["conversions"]) == 1
