"""The classifier's promise, as properties: whatever the shape, it returns a decision
the rest of the bridge can act on — and never raises.

Over Stripe's own objects (the samples in ``events/stripe/``) with fields removed,
retyped and enlarged, and over arbitrary values handed in as an event.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, get_args

from hypothesis import given
from hypothesis import strategies as st

from stripe_everflow.domain.attribution import read_transaction_id
from stripe_everflow.domain.classify import (
    MAX_TIMESTAMP,
    Action,
    Classification,
    ClassifySettings,
    classify_event,
)
from stripe_everflow.domain.emails import REDACTED_PREFIX, redact_emails, try_email_hash
from stripe_everflow.domain.money import ISO_4217_CURRENCIES, MAX_AMOUNT_MINOR, format_amount
from stripe_everflow.domain.stripe_events import event_shape_problem, is_stripe_id
from tests.fuzz.strategies import count, examples, json_values, mutated_events

SETTINGS = (
    ClassifySettings(),
    ClassifySettings(amounts_include_tax=True, subscription_update_invoices="ignore"),
)
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


def assert_usable(c: Classification) -> None:
    """What the matcher and the poster rely on, whatever the event was."""
    assert isinstance(c, Classification)
    assert c.action in get_args(Action)
    if c.action == "ignored":
        assert c.reason, "an ignored event always says why"
    else:
        assert is_stripe_id(c.ids.event_id) and is_stripe_id(c.ids.object_id)
    # Every id can be a DynamoDB key part.
    for name in ID_FIELDS:
        value = getattr(c.ids, name)
        assert value is None or is_stripe_id(value), (name, value)
    assert c.ids.event_id == "" or is_stripe_id(c.ids.event_id)
    if c.action == "payment":
        assert c.money_key is not None and is_stripe_id(c.money_key)
        assert c.currency in ISO_4217_CURRENCIES
        assert 0 < c.amount_minor <= MAX_AMOUNT_MINOR
        format_amount(c.amount_minor, c.currency)  # exact, in every currency
    if c.action == "refund":
        assert c.currency in ISO_4217_CURRENCIES
        for amount in (c.amount_refunded_minor, c.charge_amount_minor):
            assert amount is not None and 0 <= amount <= MAX_AMOUNT_MINOR
            format_amount(amount, c.currency)
    if c.action in ("dispute_opened", "dispute_closed"):
        assert c.currency == "" or c.currency in ISO_4217_CURRENCIES
        assert 0 <= c.amount_minor <= MAX_AMOUNT_MINOR
    # Click ids follow the rule of POST /clicks.
    for click in c.carried_clicks:
        assert read_transaction_id(click.transaction_id) == click.transaction_id
    assert 0 <= c.occurred_at <= MAX_TIMESTAMP
    assert c.email is None or isinstance(c.email, str)
    for label in (*c.price_ids, *c.product_ids, c.promotion_code, c.billing_reason):
        assert label is None or (len(label) <= 255 and label.isprintable())
    # Whatever the matcher puts in a queue or a table from it can be encoded.
    json.dumps(dataclasses.asdict(c), ensure_ascii=False).encode("utf-8")


@examples(ci=300, full=3000)
@given(event=mutated_events(python=True))
def test_classifier_decides_on_any_variation_of_stripe_objects(event: dict[str, Any]) -> None:
    count("classifier")
    for settings in SETTINGS:
        assert_usable(classify_event(event, settings))


@examples(ci=200, full=1000)
@given(value=json_values(python=True))
def test_classifier_decides_on_anything_handed_in_as_an_event(value: Any) -> None:
    count("classifier")
    c = classify_event(value, SETTINGS[0])
    assert (c.action, c.reason) == ("ignored", "malformed_event") or isinstance(value, dict)
    assert_usable(c)


def _strings(value: Any) -> list[str]:
    """Every string of a JSON value, keys included."""
    found, stack = [], [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
            found.extend(name for name in node if isinstance(name, str))
        elif isinstance(node, list):
            stack.extend(node)
    return found


@examples(ci=200, full=1000)
@given(event=mutated_events(), key=st.text(min_size=1, max_size=8))
def test_redaction_leaves_no_address_and_never_raises(event: dict[str, Any], key: str) -> None:
    count("classifier")
    event_shape_problem(event)
    redacted = redact_emails(event, key)
    for text in _strings(redacted):
        assert text.startswith(REDACTED_PREFIX) or try_email_hash(text, key) is None, text
    assert redact_emails(redacted, key) == redacted  # a hash is never hashed again
