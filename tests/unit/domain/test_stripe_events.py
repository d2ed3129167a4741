"""What a queue message or a table key can carry: Stripe ids, nesting, text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from stripe_everflow.domain.stripe_events import (
    MAX_NESTING,
    event_json,
    event_shape_problem,
    is_stripe_id,
)
from tests.support import stripe_event


def _intake_check(value: Any) -> str | None:
    """The intake's form of the check: the problem, or the text that must read back."""
    problem, text = event_json(value)
    if problem is None:
        assert text is not None and json.loads(text) == value
    return problem


# The classifier's walk and the intake's text check answer alike.
CHECKS = pytest.mark.parametrize(
    "check", [event_shape_problem, _intake_check], ids=["walk", "intake"]
)
Check = Callable[[Any], str | None]


def containers(levels: int) -> Any:
    """``levels`` objects and lists, one inside the other."""
    value: Any = "leaf"
    for index in range(levels):
        value = {"a": value} if index % 2 else [value]
    return value


@pytest.mark.parametrize("sample", [("basil", "invoice.paid.first"), ("legacy", "charge.refunded")])
@CHECKS
def test_stripe_samples_travel(sample: tuple[str, str], check: Check) -> None:
    assert check(stripe_event(*sample)) is None


@CHECKS
def test_nesting_up_to_the_limit_travels_and_one_more_level_does_not(check: Check) -> None:
    assert check(containers(MAX_NESTING)) is None
    assert check(containers(MAX_NESTING + 1)) == "nesting_too_deep"


@CHECKS
def test_any_depth_is_measured_without_recursion(check: Check) -> None:
    assert check(containers(100_000)) == "nesting_too_deep"


@pytest.mark.parametrize(
    "value",
    ["\ud800", {"\udfff": 1}, [1, {"a": ["ok", "x\ud800y"]}], "\uffff", {"a": "\ufffe"}],
)
@CHECKS
def test_text_no_queue_can_carry_is_found_in_keys_and_values(value: Any, check: Check) -> None:
    assert check(value) == "invalid_unicode"


@pytest.mark.parametrize("value", ["Zoë 東京 🎉", {"é": ["\U0001f600", None, 1.5, True]}, 10**40])
@CHECKS
def test_ordinary_unicode_and_scalars_travel(value: Any, check: Check) -> None:
    assert check(value) is None


@pytest.mark.parametrize(
    "value", ["in_1QbridgeFirst01", "cs_test_a1Qbridge", "evt_1", "x" * 255, "a-b"]
)
def test_stripe_ids(value: str) -> None:
    assert is_stripe_id(value)


@pytest.mark.parametrize(
    "value", ["", "x" * 256, "in_1#claim", "in 1", "in_1\n", "in_é", None, 12, {"id": "in_1"}]
)
def test_what_cannot_be_a_key_part_is_not_a_stripe_id(value: Any) -> None:
    assert not is_stripe_id(value)


def test_a_value_only_code_can_build_is_not_json() -> None:
    assert event_json({"a": {1, 2}}) == ("not_json", None)
    assert event_json({"amount": 10**5000}) == ("not_json", None)
