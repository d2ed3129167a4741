"""What each Stripe event means for the bridge, in both API shapes.

Every sample event in ``events/stripe/<shape>/`` is classified and checked fact by fact;
the derived cases edit a loaded sample so the rest of the payload stays what Stripe sends.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from stripe_everflow.domain.classify import (
    CarriedClick,
    Classification,
    ClassifySettings,
    classify_event,
)
from tests.support import EVENTS, stripe_event

SHAPES = ("basil", "legacy")
DEFAULT = ClassifySettings()

CUSTOMER = "cus_QbridgeJenny01"
SUBSCRIPTION = "sub_1QbridgeSub001"
EMAIL = "jenny.rosen@example.com"
FIRST_INVOICE, FIRST_INTENT, FIRST_CHARGE = (
    "in_1QbridgeFirst01",
    "pi_3QbridgeFirst01",
    "ch_3QbridgeFirst01",
)
RENEW_INVOICE, RENEW_INTENT, RENEW_CHARGE = (
    "in_1QbridgeRenew01",
    "pi_3QbridgeRenew01",
    "ch_3QbridgeRenew01",
)
ONE_OFF_INTENT, ONE_OFF_CHARGE = "pi_3QbridgeOneOff01", "ch_3QbridgeOneOff01"
SUBSCRIBE_SESSION, ONE_OFF_SESSION = "cs_test_a1QbridgeSubscribe01", "cs_test_a1QbridgeOneOffJpy01"
DISPUTE, REFUND = "dp_1QbridgeDispute01", "re_3QbridgeRenew01"
CHECKOUT_CLICK = CarriedClick("ef_tx_9f1c2a7b", "checkout_client_reference_id")
CUSTOMER_CLICK = CarriedClick("ef_tx_meta_5d2e", "customer_metadata")
ID_FIELDS = (
    "invoice_id",
    "charge_id",
    "payment_intent_id",
    "customer_id",
    "subscription_id",
    "refund_id",
    "dispute_id",
    "checkout_session_id",
)


def sample_files() -> list[tuple[str, str]]:
    return [
        (shape, path.stem)
        for shape in SHAPES
        for path in sorted((EVENTS / "stripe" / shape).glob("*.json"))
    ]


def event_with(shape: str, name: str, **changes: Any) -> dict[str, Any]:
    """A sample event whose ``data.object`` gets ``changes`` (each field must exist)."""
    event = stripe_event(shape, name)
    obj = event["data"]["object"]
    missing = set(changes) - set(obj)
    assert not missing, f"{name} has no field(s) {sorted(missing)}: the sample changed"
    obj.update(changes)
    return event


def classify(event: dict[str, Any], **settings: Any) -> Classification:
    return classify_event(event, ClassifySettings(**settings))


def ids_of(c: Classification) -> dict[str, str | None]:
    return {name: getattr(c.ids, name) for name in ID_FIELDS}


def ids(**present: str) -> dict[str, str | None]:
    return dict.fromkeys(ID_FIELDS) | present


# --------------------------------------------------------------- every sample event

# What each sample means, per shape. `ids` lists every Stripe id the classification
# carries (the others must be None); a fact left out must have its default value.
EXPECTED: dict[str, dict[str, dict[str, Any]]] = {
    "invoice.paid.first": {
        "basil": {
            "action": "payment",
            "kind_hint": "initial",
            "money_key": FIRST_INVOICE,
            "amount_minor": 4900,
            "currency": "USD",
            "email": EMAIL,
            "price_ids": ("price_1QbridgeMonthly",),
            "product_ids": ("prod_QbridgePro",),
            "billing_reason": "subscription_create",
            "occurred_at": 1767225592,  # status_transitions.paid_at, not the event's time
            "ids": ids(
                invoice_id=FIRST_INVOICE, customer_id=CUSTOMER, subscription_id=SUBSCRIPTION
            ),
        },
        "legacy": {
            "action": "payment",
            "kind_hint": "initial",
            "money_key": FIRST_INVOICE,
            "amount_minor": 4900,
            "currency": "USD",
            "email": EMAIL,
            "price_ids": ("price_1QbridgeMonthly",),
            "product_ids": ("prod_QbridgePro",),
            "billing_reason": "subscription_create",
            "occurred_at": 1767225592,
            "ids": ids(
                invoice_id=FIRST_INVOICE,
                charge_id=FIRST_CHARGE,
                payment_intent_id=FIRST_INTENT,
                customer_id=CUSTOMER,
                subscription_id=SUBSCRIPTION,
            ),
        },
    },
    "invoice.paid.renewal": {
        "basil": {
            "action": "payment",
            "kind_hint": "rebill",
            "money_key": RENEW_INVOICE,
            "amount_minor": 4900,
            "currency": "USD",
            "email": EMAIL,
            "price_ids": ("price_1QbridgeMonthly",),
            "product_ids": ("prod_QbridgePro",),
            "billing_reason": "subscription_cycle",
            "occurred_at": 1769907592,
            "ids": ids(
                invoice_id=RENEW_INVOICE, customer_id=CUSTOMER, subscription_id=SUBSCRIPTION
            ),
        },
        "legacy": {
            "action": "payment",
            "kind_hint": "rebill",
            "money_key": RENEW_INVOICE,
            "amount_minor": 4900,
            "currency": "USD",
            "email": EMAIL,
            "price_ids": ("price_1QbridgeMonthly",),
            "product_ids": ("prod_QbridgePro",),
            "billing_reason": "subscription_cycle",
            "occurred_at": 1769907592,
            "ids": ids(
                invoice_id=RENEW_INVOICE,
                charge_id=RENEW_CHARGE,
                payment_intent_id=RENEW_INTENT,
                customer_id=CUSTOMER,
                subscription_id=SUBSCRIPTION,
            ),
        },
    },
    "charge.succeeded": {
        # The subscription's charge: invoice.paid counts that money, never the charge.
        "basil": {
            "action": "ignored",
            "reason": "counted_by_payment_intent",
            "ids": ids(
                charge_id=FIRST_CHARGE, payment_intent_id=FIRST_INTENT, customer_id=CUSTOMER
            ),
        },
        "legacy": {
            "action": "ignored",
            "reason": "counted_by_invoice",
            "ids": ids(
                invoice_id=FIRST_INVOICE,
                charge_id=FIRST_CHARGE,
                payment_intent_id=FIRST_INTENT,
                customer_id=CUSTOMER,
            ),
        },
    },
    "checkout.session.completed": {
        shape: {
            "action": "click_carrier",
            "reason": "counted_by_invoice",
            "email": EMAIL,
            # client_reference_id and metadata hold the same id: carried once.
            "carried_clicks": (CHECKOUT_CLICK,),
            "ids": ids(
                invoice_id=FIRST_INVOICE,
                customer_id=CUSTOMER,
                subscription_id=SUBSCRIPTION,
                checkout_session_id=SUBSCRIBE_SESSION,
            ),
        }
        for shape in SHAPES
    },
    "checkout.session.completed.payment": {
        shape: {
            "action": "payment",
            "money_key": ONE_OFF_INTENT,  # the same key as payment_intent.succeeded
            "amount_minor": 5000,
            "currency": "JPY",
            "email": EMAIL,
            "occurred_at": 1768471196,
            "ids": ids(payment_intent_id=ONE_OFF_INTENT, checkout_session_id=ONE_OFF_SESSION),
        }
        for shape in SHAPES
    },
    "payment_intent.succeeded": {
        shape: {
            "action": "payment",
            "money_key": ONE_OFF_INTENT,
            "amount_minor": 5000,
            "currency": "JPY",
            "email": EMAIL,
            "occurred_at": 1768471195,
            # basil intents do not name their invoice: the matcher must ask.
            "needs_invoice_check": shape == "basil",
            "ids": ids(payment_intent_id=ONE_OFF_INTENT, charge_id=ONE_OFF_CHARGE),
        }
        for shape in SHAPES
    },
    "customer.updated": {
        shape: {
            "action": "click_carrier",
            "email": EMAIL,
            "carried_clicks": (CUSTOMER_CLICK,),
            "ids": ids(customer_id=CUSTOMER),
        }
        for shape in SHAPES
    },
    "charge.refunded": {
        "basil": {
            "action": "refund",
            "money_key": RENEW_INTENT,
            "amount_refunded_minor": 1500,
            "charge_amount_minor": 4900,
            "currency": "USD",
            "occurred_at": 1770735601,
            "ids": ids(
                charge_id=RENEW_CHARGE, payment_intent_id=RENEW_INTENT, customer_id=CUSTOMER
            ),
        },
        "legacy": {
            "action": "refund",
            "money_key": RENEW_INVOICE,
            "amount_refunded_minor": 1500,
            "charge_amount_minor": 4900,
            "currency": "USD",
            "occurred_at": 1770735601,
            "ids": ids(
                invoice_id=RENEW_INVOICE,
                charge_id=RENEW_CHARGE,
                payment_intent_id=RENEW_INTENT,
                customer_id=CUSTOMER,
            ),
        },
    },
    "refund.created": {
        shape: {
            "action": "ignored",
            "reason": "counted_by_charge_refunded",
            "amount_minor": 1500,
            "ids": ids(refund_id=REFUND, charge_id=RENEW_CHARGE, payment_intent_id=RENEW_INTENT),
        }
        for shape in SHAPES
    },
    "charge.dispute.created": {
        shape: {
            "action": "dispute_opened",
            "amount_minor": 4900,
            "currency": "USD",
            "dispute_status": "needs_response",
            "occurred_at": 1768899601,
            "ids": ids(dispute_id=DISPUTE, charge_id=FIRST_CHARGE, payment_intent_id=FIRST_INTENT),
        }
        for shape in SHAPES
    },
    "charge.dispute.closed": {
        shape: {
            "action": "dispute_closed",
            "amount_minor": 4900,
            "currency": "USD",
            "dispute_status": "won",
            "occurred_at": 1772712001,
            "ids": ids(dispute_id=DISPUTE, charge_id=FIRST_CHARGE, payment_intent_id=FIRST_INTENT),
        }
        for shape in SHAPES
    },
    "invoice_payment.paid.first": {
        "basil": {
            "action": "link",
            "ids": ids(invoice_id=FIRST_INVOICE, payment_intent_id=FIRST_INTENT),
        }
    },
    "invoice_payment.paid.renewal": {
        "basil": {
            "action": "link",
            "ids": ids(invoice_id=RENEW_INVOICE, payment_intent_id=RENEW_INTENT),
        }
    },
}

# Facts asserted for every sample: a fact missing from EXPECTED must be its default.
CHECKED_FACTS = {
    "action": None,
    "reason": None,
    "kind_hint": "auto",
    "money_key": None,
    "amount_minor": 0,
    "currency": "",
    "email": None,
    "carried_clicks": (),
    "price_ids": (),
    "product_ids": (),
    "billing_reason": None,
    "needs_invoice_check": False,
    "amount_refunded_minor": None,
    "charge_amount_minor": None,
    "dispute_status": None,
}


@pytest.mark.parametrize(("shape", "name"), sample_files())
def test_every_sample_event_classifies_to_its_documented_meaning(shape: str, name: str) -> None:
    # Given a sample Stripe delivery (a new sample must be added to EXPECTED)
    assert name in EXPECTED, f"events/stripe/{shape}/{name}.json has no expectation"
    expected = EXPECTED[name][shape]
    event = stripe_event(shape, name)

    # When
    c = classify_event(event, DEFAULT)

    # Then
    facts = {fact: getattr(c, fact) for fact in CHECKED_FACTS}
    assert facts == {fact: expected.get(fact, default) for fact, default in CHECKED_FACTS.items()}
    assert ids_of(c) == expected["ids"]
    assert (c.ids.event_id, c.ids.event_type) == (event["id"], event["type"])
    assert c.ids.object_id == event["data"]["object"]["id"]
    if "occurred_at" in expected:
        assert c.occurred_at == expected["occurred_at"]


def test_every_expectation_has_its_sample_file() -> None:
    files = set(sample_files())
    expected = {(shape, name) for name, shapes in EXPECTED.items() for shape in shapes}
    assert expected == files


# Where the two shapes carry different facts, and which: legacy payloads link charge,
# payment intent and invoice directly; basil payloads do not.
SHAPE_DIFFERENCES: dict[str, set[str]] = {
    "invoice.paid.first": {"ids.charge_id", "ids.payment_intent_id"},
    "invoice.paid.renewal": {"ids.charge_id", "ids.payment_intent_id"},
    "charge.succeeded": {"reason", "ids.invoice_id"},
    "charge.refunded": {"money_key", "ids.invoice_id"},
    "payment_intent.succeeded": {"needs_invoice_check"},
}


def flat(c: Classification) -> dict[str, Any]:
    facts = {f.name: getattr(c, f.name) for f in dataclasses.fields(c) if f.name != "ids"}
    facts |= {f"ids.{name}": value for name, value in c.ids.as_dict().items()}
    facts["ids.object_id"] = c.ids.object_id
    del facts["ids.event_id"]  # the same change is two events, one per endpoint
    return facts


@pytest.mark.parametrize(
    "name",
    sorted(
        Path(path).stem
        for path in (EVENTS / "stripe" / "basil").glob("*.json")
        if (EVENTS / "stripe" / "legacy" / Path(path).name).is_file()
    ),
)
def test_both_shapes_classify_alike_except_for_the_links_only_legacy_carries(name: str) -> None:
    # Given the same change delivered to a basil and to a legacy endpoint
    basil = flat(classify_event(stripe_event("basil", name), DEFAULT))
    legacy = flat(classify_event(stripe_event("legacy", name), DEFAULT))

    # Then they differ in exactly the facts the shapes do not share
    differing = {fact for fact in basil if basil[fact] != legacy[fact]}
    assert differing == SHAPE_DIFFERENCES.get(name, set())


@pytest.mark.parametrize("shape", SHAPES)
def test_first_invoice_is_the_same_initial_payment_in_both_shapes(shape: str) -> None:
    c = classify_event(stripe_event(shape, "invoice.paid.first"), DEFAULT)

    assert (c.action, c.kind_hint, c.money_key) == ("payment", "initial", FIRST_INVOICE)
    assert (c.amount_minor, c.currency) == (4900, "USD")
    assert c.ids.subscription_id == SUBSCRIPTION


# --------------------------------------------------------------- invoices


@pytest.mark.parametrize("shape", SHAPES)
def test_zero_amount_invoice_posts_nothing(shape: str) -> None:
    # Given a trial or 100 % coupon invoice
    event = event_with(shape, "invoice.paid.first", amount_paid=0, amount_due=0, total=0)

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", "zero_amount")
    assert c.ids.invoice_id == FIRST_INVOICE


@pytest.mark.parametrize("shape", SHAPES)
def test_subscription_update_invoice_is_a_rebill_by_default(shape: str) -> None:
    event = event_with(shape, "invoice.paid.renewal", billing_reason="subscription_update")

    c = classify(event)

    assert (c.action, c.kind_hint, c.billing_reason) == ("payment", "rebill", "subscription_update")
    assert (c.money_key, c.amount_minor) == (RENEW_INVOICE, 4900)


@pytest.mark.parametrize("shape", SHAPES)
def test_subscription_update_invoice_is_ignored_when_configured(shape: str) -> None:
    event = event_with(shape, "invoice.paid.renewal", billing_reason="subscription_update")

    c = classify(event, subscription_update_invoices="ignore")

    assert c.action == "ignored"
    assert c.reason == "subscription_update_not_counted"


@pytest.mark.parametrize("shape", SHAPES)
def test_manual_invoice_leaves_initial_or_rebill_to_the_customer_history(shape: str) -> None:
    event = event_with(shape, "invoice.paid.renewal", billing_reason="manual")

    c = classify(event)

    assert (c.action, c.kind_hint, c.money_key) == ("payment", "auto", RENEW_INVOICE)


def taxed_invoice(shape: str) -> dict[str, Any]:
    # 4900 net + 1000 tax, all paid
    return event_with(
        shape,
        "invoice.paid.first",
        total=5900,
        total_excluding_tax=4900,
        amount_due=5900,
        amount_paid=5900,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_amount_excludes_tax_by_default(shape: str) -> None:
    assert classify(taxed_invoice(shape)).amount_minor == 4900


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_amount_includes_tax_when_configured(shape: str) -> None:
    assert classify(taxed_invoice(shape), amounts_include_tax=True).amount_minor == 5900


def test_subscription_metadata_click_is_carried_in_both_shapes() -> None:
    # Given the subscription's metadata holds a click id (basil: under parent)
    basil = stripe_event("basil", "invoice.paid.first")
    basil["data"]["object"]["parent"]["subscription_details"]["metadata"] = {
        "everflow_transaction_id": "ef_tx_sub"
    }
    legacy = stripe_event("legacy", "invoice.paid.first")
    legacy["data"]["object"]["subscription_details"]["metadata"] = {
        "everflow_transaction_id": "ef_tx_sub"
    }

    # Then both shapes carry it
    carried = (CarriedClick("ef_tx_sub", "subscription_metadata"),)
    assert classify(basil).carried_clicks == carried
    assert classify(legacy).carried_clicks == carried


# --------------------------------------------------------------- checkout


@pytest.mark.parametrize("shape", SHAPES)
def test_setup_mode_checkout_is_ignored(shape: str) -> None:
    event = event_with(
        shape,
        "checkout.session.completed.payment",
        mode="setup",
        payment_status="no_payment_required",
        payment_intent=None,
        amount_total=None,
        amount_subtotal=None,
    )

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", "setup_mode")


@pytest.mark.parametrize("shape", SHAPES)
def test_unpaid_checkout_waits_for_the_async_payment(shape: str) -> None:
    # Given a bank debit: the session completes before the money arrives
    event = event_with(shape, "checkout.session.completed.payment", payment_status="unpaid")

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", "unpaid_checkout")


@pytest.mark.parametrize("shape", SHAPES)
def test_async_payment_succeeded_counts_the_one_off_checkout(shape: str) -> None:
    event = stripe_event(shape, "checkout.session.completed.payment")
    event["type"] = "checkout.session.async_payment_succeeded"

    c = classify(event)

    assert (c.action, c.money_key, c.amount_minor) == ("payment", ONE_OFF_INTENT, 5000)


@pytest.mark.parametrize("shape", SHAPES)
def test_subscription_checkout_only_carries_its_client_reference_id(shape: str) -> None:
    # Given a subscription Checkout whose click is only in client_reference_id
    event = event_with(
        shape, "checkout.session.completed", client_reference_id="ef_tx_ref_01", metadata={}
    )

    c = classify(event)

    # Then its money is left to invoice.paid and the click is carried
    assert (c.action, c.reason) == ("click_carrier", "counted_by_invoice")
    assert c.carried_clicks == (CarriedClick("ef_tx_ref_01", "checkout_client_reference_id"),)
    assert c.amount_minor == 0


@pytest.mark.parametrize("shape", SHAPES)
def test_checkout_carries_both_clicks_when_reference_and_metadata_differ(shape: str) -> None:
    event = event_with(
        shape,
        "checkout.session.completed",
        client_reference_id="ef_tx_ref_01",
        metadata={"everflow_transaction_id": "ef_tx_meta_02"},
    )

    assert classify(event).carried_clicks == (
        CarriedClick("ef_tx_ref_01", "checkout_client_reference_id"),
        CarriedClick("ef_tx_meta_02", "checkout_metadata"),
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_payment_checkout_that_created_an_invoice_leaves_the_money_to_the_invoice(
    shape: str,
) -> None:
    event = event_with(shape, "checkout.session.completed.payment", invoice="in_1QbridgeOneOff01")

    c = classify(event)

    assert (c.action, c.reason) == ("click_carrier", "counted_by_invoice")
    assert c.ids.invoice_id == "in_1QbridgeOneOff01"


@pytest.mark.parametrize("shape", SHAPES)
def test_click_metadata_key_is_configurable(shape: str) -> None:
    # Given a one-off Checkout tagged under the advertiser's own metadata key
    event = event_with(shape, "checkout.session.completed.payment", metadata={"aff_click": "ef_9"})

    # Then only that key is read
    assert classify(event, click_metadata_key="aff_click").carried_clicks == (
        CarriedClick("ef_9", "checkout_metadata"),
    )
    assert classify(event).carried_clicks == ()


@pytest.mark.parametrize("shape", SHAPES)
def test_checkout_amount_excludes_tax_by_default(shape: str) -> None:
    event = event_with(
        shape,
        "checkout.session.completed.payment",
        amount_total=5500,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 500},
    )

    assert classify(event).amount_minor == 5000
    assert classify(event, amounts_include_tax=True).amount_minor == 5500


@pytest.mark.parametrize("shape", SHAPES)
def test_taxed_one_off_payment_is_left_to_its_checkout_session(shape: str) -> None:
    # Given a one-off Checkout of 5000 + 500 tax, and the intent that paid it
    session = event_with(
        shape,
        "checkout.session.completed.payment",
        amount_total=5500,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 500},
    )
    intent = event_with(shape, "payment_intent.succeeded", amount=5500, amount_received=5500)

    # When both are classified
    from_session, from_intent = classify(session), classify(intent)

    # Then they name the same money; the session knows the tax-excluded amount, and the
    # intent (which cannot know the tax) asks the matcher to check for a session first
    assert from_session.money_key == from_intent.money_key == ONE_OFF_INTENT
    assert from_session.amount_minor == 5000
    assert (from_intent.needs_checkout_check, from_session.needs_checkout_check) == (True, False)


# --------------------------------------------------------------- payment intents, charges


def test_basil_payment_intent_needs_an_invoice_check() -> None:
    c = classify(stripe_event("basil", "payment_intent.succeeded"))

    assert (c.action, c.money_key, c.needs_invoice_check) == ("payment", ONE_OFF_INTENT, True)


def test_legacy_payment_intent_without_invoice_is_one_off_money() -> None:
    event = stripe_event("legacy", "payment_intent.succeeded")
    assert event["data"]["object"]["invoice"] is None

    c = classify(event)

    assert (c.action, c.money_key, c.needs_invoice_check) == ("payment", ONE_OFF_INTENT, False)


def test_legacy_payment_intent_of_an_invoice_only_carries_clicks() -> None:
    event = event_with(
        "legacy",
        "payment_intent.succeeded",
        invoice=FIRST_INVOICE,
        metadata={"everflow_transaction_id": "ef_tx_pi"},
    )

    c = classify(event)

    assert (c.action, c.reason) == ("click_carrier", "counted_by_invoice")
    assert c.ids.invoice_id == FIRST_INVOICE
    assert c.carried_clicks == (CarriedClick("ef_tx_pi", "payment_intent_metadata"),)


@pytest.mark.parametrize("shape", SHAPES)
def test_payment_intent_with_nothing_received_is_ignored(shape: str) -> None:
    event = event_with(shape, "payment_intent.succeeded", amount_received=0)

    assert (classify(event).action, classify(event).reason) == ("ignored", "zero_amount")


def test_charge_of_a_payment_intent_is_counted_by_the_intent() -> None:
    c = classify(stripe_event("basil", "charge.succeeded"))

    assert (c.action, c.reason) == ("ignored", "counted_by_payment_intent")


def test_legacy_charge_of_an_invoice_is_counted_by_the_invoice() -> None:
    c = classify(stripe_event("legacy", "charge.succeeded"))

    assert (c.action, c.reason) == ("ignored", "counted_by_invoice")


@pytest.mark.parametrize("shape", SHAPES)
def test_charge_without_intent_or_invoice_is_a_payment_keyed_by_the_charge(shape: str) -> None:
    # Given a Charges API charge (no PaymentIntent, no invoice)
    event = stripe_event(shape, "charge.succeeded")
    charge = event["data"]["object"]
    charge["payment_intent"] = None
    charge.pop("invoice", None)

    c = classify(event)

    assert (c.action, c.money_key) == ("payment", FIRST_CHARGE)
    assert (c.amount_minor, c.currency, c.email) == (4900, "USD", EMAIL)
    assert c.ids.customer_id == CUSTOMER


def test_uncaptured_charge_is_not_counted_as_a_payment() -> None:
    # Given a Charges API authorization with capture=false
    event = event_with(
        "basil",
        "charge.succeeded",
        payment_intent=None,
        captured=False,
        amount_captured=0,
    )

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", "uncaptured")


# --------------------------------------------------------------- refunds, disputes


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("refund.created", "succeeded"),
        ("refund.updated", "succeeded"),
        ("refund.created", "pending"),
    ],
)
def test_refund_events_are_left_to_charge_refunded(
    shape: str, event_type: str, status: str
) -> None:
    # charge.refunded reports every refund with the charge's cumulative amount;
    # counting refund.* too would count each refund twice
    event = event_with(shape, "refund.created", status=status)
    event["type"] = event_type

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", "counted_by_charge_refunded")
    assert c.ids.refund_id == REFUND


@pytest.mark.parametrize("shape", SHAPES)
def test_partial_charge_refund_carries_cumulative_and_captured_amounts(shape: str) -> None:
    # Given a second partial refund: 3000 of 4900 refunded so far
    event = event_with(shape, "charge.refunded", amount_refunded=3000)

    c = classify(event)

    assert (c.amount_refunded_minor, c.charge_amount_minor) == (3000, 4900)


@pytest.mark.parametrize(
    ("name", "action", "status"),
    [
        ("charge.dispute.created", "dispute_opened", "needs_response"),
        ("charge.dispute.closed", "dispute_closed", "won"),
    ],
)
@pytest.mark.parametrize("shape", SHAPES)
def test_dispute_events_carry_their_status(shape: str, name: str, action: str, status: str) -> None:
    c = classify(stripe_event(shape, name))

    assert (c.action, c.dispute_status, c.ids.dispute_id) == (action, status, DISPUTE)


@pytest.mark.parametrize("shape", SHAPES)
def test_lost_dispute_closes_with_status_lost(shape: str) -> None:
    event = event_with(shape, "charge.dispute.closed", status="lost")

    assert (classify(event).action, classify(event).dispute_status) == ("dispute_closed", "lost")


# --------------------------------------------------------------- carriers, links, others


@pytest.mark.parametrize("shape", SHAPES)
def test_customer_with_a_metadata_click_carries_it(shape: str) -> None:
    c = classify(stripe_event(shape, "customer.updated"))

    assert (c.action, c.carried_clicks, c.email) == ("click_carrier", (CUSTOMER_CLICK,), EMAIL)
    assert c.ids.customer_id == CUSTOMER


@pytest.mark.parametrize("shape", SHAPES)
def test_customer_without_a_click_is_ignored(shape: str) -> None:
    event = event_with(shape, "customer.updated", metadata={})

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", "no_click_id")


@pytest.mark.parametrize("shape", SHAPES)
def test_customer_click_under_a_configured_key(shape: str) -> None:
    event = event_with(shape, "customer.updated", metadata={"aff_click": " ef_tx_7 "})

    assert classify(event, click_metadata_key="aff_click").carried_clicks == (
        CarriedClick("ef_tx_7", "customer_metadata"),
    )
    assert classify(event).action == "ignored"


def test_customer_created_is_read_like_customer_updated() -> None:
    event = stripe_event("basil", "customer.updated")
    event["type"] = "customer.created"

    assert classify(event).carried_clicks == (CUSTOMER_CLICK,)


@pytest.mark.parametrize("shape", SHAPES)
def test_event_type_the_bridge_does_not_use_is_ignored(shape: str) -> None:
    event = stripe_event(shape, "invoice.paid.first")
    event["type"] = "invoice.upcoming"

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", "event_type_not_used")
    assert (c.ids.event_type, c.ids.object_id) == ("invoice.upcoming", FIRST_INVOICE)


def test_invoice_payment_links_the_invoice_to_its_intent() -> None:
    c = classify(stripe_event("basil", "invoice_payment.paid.first"))

    assert c.action == "link"
    assert (c.ids.invoice_id, c.ids.payment_intent_id) == (FIRST_INVOICE, FIRST_INTENT)


def test_invoice_payment_without_a_payment_links_nothing() -> None:
    event = event_with("basil", "invoice_payment.paid.first", payment={"type": "payment_intent"})

    assert (classify(event).action, classify(event).reason) == ("ignored", "no_payment_link")


@pytest.mark.parametrize("status", ["warning_needs_response", "warning_under_review"])
def test_dispute_inquiry_is_not_a_chargeback(status: str) -> None:
    c = classify(event_with("basil", "charge.dispute.created", status=status))

    assert (c.action, c.reason, c.dispute_status) == ("ignored", "dispute_inquiry", status)


def test_closed_inquiry_changes_nothing() -> None:
    c = classify(event_with("legacy", "charge.dispute.closed", status="warning_closed"))

    assert (c.action, c.reason) == ("ignored", "dispute_inquiry")


def test_refund_of_a_bare_charge_is_keyed_by_the_charge() -> None:
    event = event_with("basil", "charge.refunded", payment_intent=None)

    assert classify(event).money_key == event["data"]["object"]["id"]


def test_invoice_partly_paid_from_credit_keeps_its_tax_free_share() -> None:
    # Given 49.00 + 10.00 tax, of which the customer's credit balance paid half
    event = event_with(
        "basil", "invoice.paid.first", total=5900, total_excluding_tax=4900, amount_paid=2950
    )
    # Then the conversion is the tax-free share of what was paid, not paid - all the tax
    assert classify(event).amount_minor == 2450


def test_invoice_whose_payment_was_only_tax_is_not_a_zero_conversion() -> None:
    event = event_with(
        "basil", "invoice.paid.first", total=1000, total_excluding_tax=0, amount_paid=1000
    )
    assert (classify(event).action, classify(event).reason) == ("ignored", "zero_amount")


# ------------------------------------------------------------------ shapes the bridge cannot use
# Each is a genuine sample with one field made odd: the classifier answers "ignored"
# with a reason (the matcher then acknowledges it) and never raises.

PAYMENT_SAMPLES = [
    ("basil", "invoice.paid.first"),
    ("legacy", "invoice.paid.renewal"),
    ("basil", "checkout.session.completed.payment"),
    ("legacy", "payment_intent.succeeded"),
]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": EMAIL}
    for _ in range(depth):
        value = {"a": value}
    return value


def charge_without_links(shape: str, **changes: Any) -> dict[str, Any]:
    """A Charges API charge (no intent, no invoice): counted by charge.succeeded itself."""
    event = stripe_event(shape, "charge.succeeded")
    event["data"]["object"].update(payment_intent=None, **changes)
    if "invoice" in event["data"]["object"]:
        event["data"]["object"]["invoice"] = None
    return event


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": 12345}, "invalid_stripe_id"),
        ({"id": None}, "missing_stripe_id"),
        ({"id": ""}, "missing_stripe_id"),
        ({"id": "in_" + "x" * 3000}, "invalid_stripe_id"),
        ({"id": "in_1#claim"}, "invalid_stripe_id"),
        ({"customer": "cus_" + "x" * 300}, "invalid_stripe_id"),
        ({"customer": {"id": 7}}, "invalid_stripe_id"),
        ({"customer": 42}, "invalid_stripe_id"),
        ({"amount_paid": 10**40}, "amount_out_of_range"),
        ({"amount_paid": -1}, "amount_out_of_range"),
        ({"amount_paid": 10**5000}, "amount_out_of_range"),
        ({"amount_paid": "4900"}, "malformed_field"),
        ({"amount_paid": 49.0}, "malformed_field"),
        ({"total": 10**40}, "amount_out_of_range"),
        ({"lines": "all of them"}, "malformed_field"),
        ({"lines": {"data": 7}}, "malformed_field"),
        ({"lines": {"data": {"a": 1}}}, "malformed_field"),
        ({"lines": {"data": ["line"]}}, "malformed_field"),
        ({"currency": None}, "currency_missing"),
        ({"currency": ""}, "currency_missing"),
        ({"currency": "none"}, "currency_invalid"),
        ({"currency": "zz"}, "currency_invalid"),
        ({"currency": 840}, "currency_invalid"),
        ({"metadata": nested(500)}, "nesting_too_deep"),
        ({"description": "\ud800"}, "invalid_unicode"),
        ({"metadata": {"\udfff": "x"}}, "invalid_unicode"),
        ({"description": "\uffff"}, "invalid_unicode"),
    ],
)
@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_of_an_unusable_shape_is_ignored_with_a_reason(
    shape: str, changes: dict[str, Any], reason: str
) -> None:
    event = stripe_event(shape, "invoice.paid.first")
    event["data"]["object"].update(changes)

    c = classify(event)

    assert (c.action, c.reason) == ("ignored", reason)


@pytest.mark.parametrize(("shape", "name"), PAYMENT_SAMPLES)
def test_no_payment_without_an_iso_currency(shape: str, name: str) -> None:
    for currency, reason in ((None, "currency_missing"), ("dollars", "currency_invalid")):
        c = classify(event_with(shape, name, currency=currency))
        assert (c.action, c.reason) == ("ignored", reason)
    event = stripe_event(shape, name)
    del event["data"]["object"]["currency"]
    assert (classify(event).action, classify(event).reason) == ("ignored", "currency_missing")


def test_charge_payment_without_currency_is_ignored() -> None:
    c = classify(charge_without_links("legacy", currency=None))

    assert (c.action, c.reason) == ("ignored", "currency_missing")


def test_refund_without_currency_is_ignored() -> None:
    c = classify(event_with("basil", "charge.refunded", currency=None))

    assert (c.action, c.reason) == ("ignored", "currency_missing")


def test_dispute_without_currency_still_reverses_its_conversion() -> None:
    # A dispute reverses or restores the conversion whole: no amount is needed
    c = classify(event_with("basil", "charge.dispute.created", currency=None))

    assert (c.action, c.currency) == ("dispute_opened", "")


def test_payment_currency_is_upper_case() -> None:
    assert classify(event_with("basil", "invoice.paid.first", currency="eur")).currency == "EUR"


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "evt",
        {},
        {"id": "evt_1", "type": "invoice.paid"},
        {"id": "evt_1", "type": "invoice.paid", "data": []},
        {"id": "evt_1", "type": "invoice.paid", "data": {"object": "in_1"}},
        {"id": "evt_1", "type": 7, "data": {"object": {}}},
    ],
)
def test_what_is_not_an_event_is_ignored_as_malformed(event: Any) -> None:
    c = classify_event(event, DEFAULT)

    assert (c.action, c.reason) == ("ignored", "malformed_event")


@pytest.mark.parametrize(
    ("event_id", "reason"),
    [
        (None, "missing_stripe_id"),
        (12, "invalid_stripe_id"),
        ("evt_" + "x" * 1100, "invalid_stripe_id"),
    ],
)
def test_event_whose_id_cannot_be_a_key_is_ignored(event_id: Any, reason: str) -> None:
    event = stripe_event("basil", "invoice.paid.first") | {"id": event_id}

    c = classify(event)

    assert (c.action, c.reason, c.ids.event_id) == ("ignored", reason, "")


def test_absurd_times_read_as_absent() -> None:
    event = stripe_event("basil", "invoice.paid.first")
    event["data"]["object"]["status_transitions"]["paid_at"] = 10**40

    assert classify(event).occurred_at == event["created"]

    event["created"] = -5
    assert classify(event).occurred_at == 0


def test_odd_descriptive_values_are_dropped_not_fatal() -> None:
    # (``discount`` is the field of API versions before basil, as the bridge reads it)
    event = event_with("basil", "invoice.paid.first", billing_reason="x" * 3000)
    event["data"]["object"]["discount"] = {"promotion_code": 5}

    c = classify(event)

    assert (c.action, c.billing_reason, c.promotion_code) == ("payment", None, None)


# ------------------------------------------------------------------ click ids Stripe carries

BAD_CLICK_IDS = ["a" * 3000, "a" * 129, "ef tx", "ef_tx&amount=1", "https://x.example/"]


@pytest.mark.parametrize("bad", BAD_CLICK_IDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_customer_with_a_bad_click_id_is_ignored_with_a_reason(shape: str, bad: str) -> None:
    c = classify(event_with(shape, "customer.updated", metadata={"everflow_transaction_id": bad}))

    assert (c.action, c.reason, c.carried_clicks) == ("ignored", "invalid_click_id", ())


@pytest.mark.parametrize("bad", BAD_CLICK_IDS)
def test_payment_with_a_bad_click_id_is_still_a_payment_without_it(bad: str) -> None:
    event = stripe_event("basil", "invoice.paid.first")
    event["data"]["object"]["parent"]["subscription_details"]["metadata"] = {
        "everflow_transaction_id": bad
    }

    c = classify(event)

    assert (c.action, c.carried_clicks) == ("payment", ())


@pytest.mark.parametrize("bad", BAD_CLICK_IDS)
def test_checkout_keeps_only_the_click_ids_that_follow_the_rule(bad: str) -> None:
    event = event_with(
        "basil",
        "checkout.session.completed",
        client_reference_id=bad,
        metadata={"everflow_transaction_id": "ef_tx_good"},
    )

    assert classify(event).carried_clicks == (CarriedClick("ef_tx_good", "checkout_metadata"),)

    event["data"]["object"]["metadata"] = {}
    c = classify(event)
    assert (c.action, c.reason, c.carried_clicks) == ("ignored", "invalid_click_id", ())


def test_a_carried_click_id_is_trimmed() -> None:
    event = event_with(
        "basil", "customer.updated", metadata={"everflow_transaction_id": "  ef_tx_1 "}
    )

    assert classify(event).carried_clicks == (CarriedClick("ef_tx_1", "customer_metadata"),)
