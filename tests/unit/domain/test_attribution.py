"""Which of an email's clicks a payment goes to: policy, window, order, ties."""

from __future__ import annotations

import itertools

import pytest

from stripe_everflow.domain.attribution import (
    DAY,
    Policy,
    StoredClick,
    choose_click,
    read_transaction_id,
)

PAID_AT = 1_769_907_592  # the renewal's paid_at


def click(transaction_id: str, days_before_payment: float) -> StoredClick:
    return StoredClick(transaction_id, PAID_AT - int(days_before_payment * DAY))


EARLY = click("ef_early", 20)
MIDDLE = click("ef_middle", 10)
LATE = click("ef_late", 1)
AFTER = click("ef_after", -2)  # reported two days after the payment


@pytest.mark.parametrize("clicks", list(itertools.permutations([EARLY, MIDDLE, LATE])))
def test_first_touch_takes_the_earliest_click_whatever_the_stored_order(
    clicks: tuple[StoredClick, ...],
) -> None:
    assert choose_click(clicks, paid_at=PAID_AT, policy="first-touch", window_days=0) == EARLY


@pytest.mark.parametrize("clicks", list(itertools.permutations([EARLY, MIDDLE, LATE])))
def test_last_touch_takes_the_latest_click_whatever_the_stored_order(
    clicks: tuple[StoredClick, ...],
) -> None:
    assert choose_click(clicks, paid_at=PAID_AT, policy="last-touch", window_days=0) == LATE


def test_last_touch_ignores_clicks_after_the_payment_when_one_came_before() -> None:
    # Given a click before the payment and a later one reported after it
    clicks = [MIDDLE, AFTER]

    # Then the payment goes to the click that led to it
    assert choose_click(clicks, paid_at=PAID_AT, policy="last-touch", window_days=0) == MIDDLE


def test_click_reported_after_the_payment_still_counts() -> None:
    # Given the payment reached Stripe before the sign-up postback reached the bridge
    clicks = [AFTER]

    policies: tuple[Policy, ...] = ("first-touch", "last-touch")
    for policy in policies:
        assert choose_click(clicks, paid_at=PAID_AT, policy=policy, window_days=30) == AFTER


def test_last_touch_takes_the_earliest_when_every_click_is_after_the_payment() -> None:
    later = click("ef_later", -5)

    assert choose_click([later, AFTER], paid_at=PAID_AT, policy="last-touch", window_days=0) == (
        AFTER
    )


def test_window_zero_means_no_limit() -> None:
    ancient = click("ef_ancient", 3650)

    assert choose_click([ancient], paid_at=PAID_AT, policy="first-touch", window_days=0) == ancient


def test_click_older_than_the_window_is_excluded() -> None:
    # Given a 30-day window and a click 31 days before the payment
    old = click("ef_old", 31)

    assert choose_click([old], paid_at=PAID_AT, policy="first-touch", window_days=30) is None
    assert choose_click([old], paid_at=PAID_AT, policy="last-touch", window_days=30) is None


def test_click_exactly_at_the_window_edge_is_included() -> None:
    edge = click("ef_edge", 30)

    assert choose_click([edge], paid_at=PAID_AT, policy="first-touch", window_days=30) == edge


def test_click_one_second_past_the_window_edge_is_excluded() -> None:
    past = StoredClick("ef_past", PAID_AT - 30 * DAY - 1)

    assert choose_click([past], paid_at=PAID_AT, policy="first-touch", window_days=30) is None


def test_first_touch_takes_the_earliest_click_inside_the_window() -> None:
    # Given the earliest click fell out of the window
    old = click("ef_old", 31)

    assert choose_click(
        [old, MIDDLE, LATE], paid_at=PAID_AT, policy="first-touch", window_days=30
    ) == (MIDDLE)


@pytest.mark.parametrize("policy", ["first-touch", "last-touch"])
def test_simultaneous_clicks_break_ties_on_transaction_id_on_every_retry(policy: Policy) -> None:
    # Given two clicks at the same second, stored in either order
    a = StoredClick("ef_aaa", PAID_AT - DAY)
    b = StoredClick("ef_bbb", PAID_AT - DAY)

    chosen = {
        choose_click(order, paid_at=PAID_AT, policy=policy, window_days=0)
        for order in ([a, b], [b, a])
    }

    # Then the same click wins both times
    assert len(chosen) == 1
    assert chosen <= {a, b}


def test_tie_break_picks_the_lowest_id_first_touch_and_highest_last_touch() -> None:
    a = StoredClick("ef_aaa", PAID_AT - DAY)
    b = StoredClick("ef_bbb", PAID_AT - DAY)

    assert choose_click([b, a], paid_at=PAID_AT, policy="first-touch", window_days=0) == a
    assert choose_click([a, b], paid_at=PAID_AT, policy="last-touch", window_days=0) == b


@pytest.mark.parametrize("policy", ["first-touch", "last-touch"])
def test_no_clicks_means_no_match(policy: Policy) -> None:
    assert choose_click([], paid_at=PAID_AT, policy=policy, window_days=0) is None


def test_stored_click_round_trips_through_its_table_item() -> None:
    stored = StoredClick("ef_tx_1", PAID_AT, offer_id="12", affiliate_id="7", source="import")

    assert StoredClick.from_item(stored.as_item()) == stored
    assert "offer_id" not in StoredClick("ef_tx_2", PAID_AT).as_item()


# --------------------------------------------------------------- the click-id rule


@pytest.mark.parametrize(
    ("raw", "read"),
    [
        ("ef_tx_9f1c2a7b", "ef_tx_9f1c2a7b"),
        ("  ef_tx_9f1c2a7b\n", "ef_tx_9f1c2a7b"),  # trimmed, as POST /clicks does
        ("a" * 128, "a" * 128),
        ("A.b_c:d~e-f", "A.b_c:d~e-f"),
    ],
)
def test_a_click_id_is_read_trimmed(raw: str, read: str) -> None:
    assert read_transaction_id(raw) == read


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "a" * 129,
        "a" * 3000,
        "ef tx",
        "ef_tx&amount=1000",
        "https://evil.example/",
        "ef_tx\n2",
        "ef_tx_\ud800",
        "é",
        None,
        12345,
        ["ef_tx"],
        {"id": "ef_tx"},
    ],
)
def test_what_breaks_the_click_id_rule_reads_as_no_click_id(raw: object) -> None:
    assert read_transaction_id(raw) is None
