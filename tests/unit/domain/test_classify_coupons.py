"""Which promotion code a payment names, in both API shapes (issue: coupon_code).

Before 2025-03-31 an invoice names its promotion code (``promo_…``) on
``discount.promotion_code``; since basil it has only ``discounts``, a list of
discount ids (``di_…``) that webhooks never expand. A one-off Checkout Session lists
``discounts`` as ``{coupon, promotion_code}``. Where a payload carries an expanded
promotion code, its ``code`` is the customer-facing code itself.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stripe_everflow.domain.classify import ClassifySettings, classify_event
from tests.support import stripe_event

PROMO = "promo_1Pgc79B7WZ01zgkWNy4mn5NX"  # ../shared/data promotion_code
DISCOUNT = "di_1Pgc6rB7WZ01zgkW7Al8Fal9"  # ../shared/data discount


def invoice(shape: str, **fields: Any) -> dict[str, Any]:
    event = copy.deepcopy(stripe_event(shape, "invoice.paid.first"))
    event["data"]["object"].update(fields)
    return event


def session(**fields: Any) -> dict[str, Any]:
    event = copy.deepcopy(stripe_event("basil", "checkout.session.completed.payment"))
    event["data"]["object"].update(fields)
    return event


def test_legacy_invoice_names_its_promotion_code_id() -> None:
    event = invoice("legacy", discount={"id": DISCOUNT, "promotion_code": PROMO})
    c = classify_event(event, ClassifySettings())
    assert (c.promotion_code, c.coupon_code, c.discount_ids) == (PROMO, None, ())


def test_basil_invoice_names_its_discounts_for_the_api_to_resolve() -> None:
    other = "di_1QbridgeSecond01"
    event = invoice("basil", discounts=[DISCOUNT, other])
    c = classify_event(event, ClassifySettings())
    assert (c.promotion_code, c.coupon_code, c.discount_ids) == (None, None, (DISCOUNT, other))


def test_expanded_discount_gives_the_code_customers_typed() -> None:
    expanded = {
        "id": DISCOUNT,
        "object": "discount",
        "promotion_code": {"id": PROMO, "object": "promotion_code", "code": "FALL20"},
    }
    c = classify_event(invoice("basil", discounts=[expanded]), ClassifySettings())
    assert (c.promotion_code, c.coupon_code) == (PROMO, "FALL20")


def test_discount_without_promotion_code_names_none() -> None:
    # a coupon applied directly (no code typed): nothing to send
    plain = {"id": DISCOUNT, "object": "discount", "promotion_code": None}
    c = classify_event(invoice("basil", discounts=[plain]), ClassifySettings())
    assert (c.promotion_code, c.coupon_code, c.discount_ids) == (None, None, ())


def test_one_off_checkout_names_its_promotion_code() -> None:
    event = session(discounts=[{"coupon": "Z4OV52SU", "promotion_code": PROMO}])
    c = classify_event(event, ClassifySettings())
    assert c.action == "payment"
    assert (c.promotion_code, c.coupon_code) == (PROMO, None)


@pytest.mark.parametrize(
    "discounts",
    [
        ["not an id"],
        [{"promotion_code": 12}],
        [{"promotion_code": {"id": PROMO, "code": "x" * 300}}],
        "di_notalist",
        [None, 3, {"coupon": "Z4OV52SU"}],
    ],
)
def test_odd_discounts_never_make_an_event_unusable(discounts: Any) -> None:
    c = classify_event(invoice("basil", discounts=discounts), ClassifySettings())
    assert c.action == "payment"
    assert c.coupon_code is None or len(c.coupon_code) <= 255
