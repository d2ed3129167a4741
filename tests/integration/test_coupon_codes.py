"""Everflow's coupon_code carries the code customers typed (issue 9, gap 5).

Before this, basil invoices (whose ``discounts`` list replaced
``discount.promotion_code``) sent no coupon_code at all, and the other shapes sent the
promotion code's id (``promo_…``). Now: the code itself, read once with the restricted
key and kept; the id when there is no key; never a lost or delayed conversion for it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cli.stripe_everflow_cli.everflow_standin import EverflowStandIn
from tests.integration.conftest import Aws
from tests.integration.pipeline import Bridge, build_pipeline
from tests.stubs.stripe_api import StripeApiStub, running_stripe_stub
from tests.support import bridge_secret, stripe_event

JENNY = "jenny.rosen@example.com"
PROMO = "promo_1Pgc79B7WZ01zgkWNy4mn5NX"  # ../shared/data promotion_code "FALL20"
DISCOUNT = "di_1Pgc6rB7WZ01zgkW7Al8Fal9"  # ../shared/data discount
CLICK = {"email": JENNY, "transaction_id": "ef_tx_jenny", "offer_id": 12, "affiliate_id": 7}


@pytest.fixture
def stripe_api() -> Iterator[StripeApiStub]:
    with running_stripe_stub() as stub:
        stub.promotion_codes[PROMO] = "FALL20"
        yield stub


def with_key(aws: Aws, api_key: str | None = "rk_test_bridge") -> None:
    secret = bridge_secret()
    if api_key:
        secret["stripe_accounts"]["default"]["api_key"] = api_key
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))


def legacy_invoice(event_id: str, invoice_id: str, promotion: Any = PROMO) -> dict[str, Any]:
    event = copy.deepcopy(stripe_event("legacy", "invoice.paid.first"))
    event["id"] = event_id
    event["data"]["object"].update(
        id=invoice_id, discount={"id": DISCOUNT, "object": "discount", "promotion_code": promotion}
    )
    return event


def basil_invoice(event_id: str, invoice_id: str) -> dict[str, Any]:
    event = copy.deepcopy(stripe_event("basil", "invoice.paid.first"))
    event["id"] = event_id
    event["data"]["object"].update(id=invoice_id, discounts=[DISCOUNT])
    return event


def coupon_codes(jobs: list[dict[str, Any]]) -> list[str | None]:
    return [j["coupon_code"] for j in jobs if j["action"] == "conversion"]


def calls(stripe_api: StripeApiStub, prefix: str) -> int:
    return sum(1 for r in stripe_api.requests if r["path"].startswith(prefix))


def test_legacy_invoice_sends_the_code_and_asks_stripe_once(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, stripe_api: StripeApiStub
) -> None:
    with_key(aws)
    pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
    pipeline.post_clicks(CLICK)
    pipeline.deliver_events(legacy_invoice("evt_1QbridgeCoupon1", "in_1QbridgeCoupon1"))
    assert coupon_codes(pipeline.jobs()) == ["FALL20"]
    # a second invoice with the same promotion code, read by a fresh worker: the code
    # comes from AttributionTable, not from Stripe
    fresh = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
    fresh.deliver_events(legacy_invoice("evt_1QbridgeCoupon2", "in_1QbridgeCoupon2"))
    assert coupon_codes(fresh.jobs()) == ["FALL20"]
    assert calls(stripe_api, "/v1/promotion_codes/") == 1


def test_basil_invoice_resolves_its_discount_through_the_invoice(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, stripe_api: StripeApiStub
) -> None:
    with_key(aws)
    stripe_api.invoice_discounts["in_1QbridgeCoupon1"] = [(DISCOUNT, PROMO)]
    pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
    pipeline.post_clicks(CLICK)
    pipeline.deliver_events(basil_invoice("evt_1QbridgeCoupon1", "in_1QbridgeCoupon1"))
    assert coupon_codes(pipeline.jobs()) == ["FALL20"]
    [request] = [r for r in stripe_api.requests if r["path"].startswith("/v1/invoices/")]
    assert "discounts.promotion_code" in str(request["query"])
    # the subscription's renewal carries the same discount: no second call
    renewal = basil_invoice("evt_1QbridgeCoupon2", "in_1QbridgeCoupon2")
    pipeline.deliver_events(renewal)
    assert coupon_codes(pipeline.jobs()) == ["FALL20"]
    assert calls(stripe_api, "/v1/invoices/") == 1


def test_discount_without_promotion_code_sends_none_and_is_remembered(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, stripe_api: StripeApiStub
) -> None:
    with_key(aws)
    stripe_api.invoice_discounts["in_1QbridgeCoupon1"] = [(DISCOUNT, None)]
    pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
    pipeline.post_clicks(CLICK)
    pipeline.deliver_events(basil_invoice("evt_1QbridgeCoupon1", "in_1QbridgeCoupon1"))
    pipeline.deliver_events(basil_invoice("evt_1QbridgeCoupon2", "in_1QbridgeCoupon2"))
    assert coupon_codes(pipeline.jobs()) == [None, None]
    assert calls(stripe_api, "/v1/invoices/") == 1


def test_without_a_key_the_promotion_codes_id_is_sent(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_key(aws, None)
    pipeline = build_pipeline(aws, monkeypatch)
    pipeline.post_clicks(CLICK)
    pipeline.deliver_events(
        legacy_invoice("evt_1QbridgeCoupon1", "in_1QbridgeCoupon1"),
        # basil names only discounts: nothing a partner could read, nothing sent
        basil_invoice("evt_1QbridgeCoupon2", "in_1QbridgeCoupon2"),
    )
    assert sorted(coupon_codes(pipeline.jobs()), key=str) == [None, PROMO]


def test_a_key_without_the_permission_sends_the_id_and_loses_nothing(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, stripe_api: StripeApiStub
) -> None:
    with_key(aws)
    stripe_api.refused.update({"/v1/promotion_codes/", "/v1/invoices/"})
    pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
    pipeline.post_clicks(CLICK)
    answer = pipeline.deliver_events(
        legacy_invoice("evt_1QbridgeCoupon1", "in_1QbridgeCoupon1"),
        basil_invoice("evt_1QbridgeCoupon2", "in_1QbridgeCoupon2"),
    )
    assert answer == {"batchItemFailures": []}
    assert sorted(coupon_codes(pipeline.jobs()), key=str) == [None, PROMO]


def test_stripe_unavailable_retries_the_record_instead_of_sending_without_the_code(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, stripe_api: StripeApiStub
) -> None:
    with_key(aws)
    stripe_api.unavailable.add("/v1/promotion_codes/")
    pipeline = build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)
    pipeline.post_clicks(CLICK)
    answer = pipeline.deliver_events(
        legacy_invoice("evt_1QbridgeCoupon1", "in_1QbridgeCoupon1"),
        legacy_invoice("evt_1QbridgeCoupon2", "in_1QbridgeCoupon2", promotion=None),
    )
    assert len(answer["batchItemFailures"]) == 1
    assert coupon_codes(pipeline.jobs()) == [None]
    # Stripe is back: the record's retry sends the conversion, with its code
    stripe_api.unavailable.clear()
    pipeline.deliver_events(legacy_invoice("evt_1QbridgeCoupon1", "in_1QbridgeCoupon1"))
    assert coupon_codes(pipeline.jobs()) == ["FALL20"]


def test_one_off_checkout_posts_the_code_to_everflow(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, stripe_api: StripeApiStub
) -> None:
    everflow = EverflowStandIn().start()
    try:
        with_key(aws)
        bridge = Bridge(aws, everflow, monkeypatch, STRIPE_API_BASE=stripe_api.url)
        with_key(aws)  # Bridge wrote its own secret; keep the Stripe key in it
        bridge.pipeline.post_clicks(CLICK)
        session = copy.deepcopy(stripe_event("basil", "checkout.session.completed.payment"))
        session["data"]["object"]["discounts"] = [{"coupon": "Z4OV52SU", "promotion_code": PROMO}]
        bridge.stripe(session)
        [postback] = everflow.postbacks()
        assert dict(postback.query)["coupon_code"] == "FALL20"
    finally:
        everflow.stop()
