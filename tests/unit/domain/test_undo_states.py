"""Where a conversion should stand in Everflow once refunds, refund failures and
disputes compose, and the calls that take it there (``domain.undo``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow.domain.jobs import PostbackJob, StripeRefs
from stripe_everflow.domain.undo import (
    ADJUST,
    PRORATE,
    RESTORE,
    REVERSE,
    Facts,
    FailedRefund,
    Policies,
    RefundState,
    effective_refunded,
    job_facts,
    plan_calls,
    prorated,
    target,
)

REFUNDED_AT, FAILED_AT, LATER = 1_770_735_601, 1_771_340_400, 1_771_945_200
CONVERSION: dict[str, Any] = {"amount": "49.00", "currency": "USD"}
KEY = Policies()
NO_KEY = Policies(has_api_key=False)
PRORATE_POLICY = Policies(payout="prorate")


def job(action: str, **fields: Any) -> PostbackJob:
    return PostbackJob(f"{action}:default:x", action, "default", False, **fields)  # type: ignore[arg-type]


def refund(minor: int, at: int = REFUNDED_AT, charge: int = 4900) -> PostbackJob:
    return job(
        "refund",
        amount_refunded=Decimal(minor) / 100,
        charge_amount=Decimal(charge) / 100,
        currency="USD",
        occurred_at=at,
        stripe=StripeRefs(charge_id="ch_1"),
    )


def failed(minor: int, refund_id: str = "re_1", at: int = FAILED_AT) -> PostbackJob:
    return job(
        "refund_failed",
        amount=Decimal(minor) / 100,
        currency="USD",
        occurred_at=at,
        stripe=StripeRefs(charge_id="ch_1", refund_id=refund_id),
    )


def dispute(action: str, status: str | None = None) -> PostbackJob:
    return job(action, dispute_status=status, stripe=StripeRefs(dispute_id="dp_1"))


def facts_after(*jobs: PostbackJob, **conversion: Any) -> Facts:
    facts = Facts.of(CONVERSION | conversion)
    for one in jobs:
        facts = facts.with_job(one)
    return facts


# ------------------------------------------------------------------ what was refunded


def test_a_failure_counts_against_the_states_before_it_only() -> None:
    state = RefundState(REFUNDED_AT, 2400)
    assert effective_refunded(state, [FailedRefund(1500, FAILED_AT)]) == 900
    # a state after the failure no longer holds the failed refund (Stripe took it out)
    assert effective_refunded(RefundState(LATER, 1000), [FailedRefund(1500, FAILED_AT)]) == 1000
    # the same second: the refund may have failed at once, so it counts
    assert effective_refunded(state, [FailedRefund(1500, REFUNDED_AT)]) == 900
    assert effective_refunded(state, [FailedRefund(4900, FAILED_AT)]) == 0
    assert effective_refunded(None, [FailedRefund(1500, FAILED_AT)]) == 0


def test_refund_states_are_ordered_by_time_then_amount() -> None:
    assert RefundState(LATER, 1000).is_after(RefundState(REFUNDED_AT, 1500))
    assert RefundState(REFUNDED_AT, 2400).is_after(RefundState(REFUNDED_AT, 1500))
    assert not RefundState(REFUNDED_AT, 1500).is_after(RefundState(REFUNDED_AT, 1500))
    # an older state changes nothing
    facts = facts_after(refund(2400, at=LATER), refund(1500))
    assert facts.state == RefundState(LATER, 2400)


def test_the_ledger_facts_are_read_back_and_a_job_already_in_them_counts_once() -> None:
    entry = {
        "refunded_minor": Decimal(1500),
        "refund_state_at": Decimal(REFUNDED_AT),
        "refund_charge_minor": Decimal(4900),
        "refund_re_1_failed": {"amount_minor": Decimal(1500), "failed_at": Decimal(FAILED_AT)},
        "dispute_dp_1_opened": Decimal(REFUNDED_AT),
        "dispute_dp_1_outcome": "won",
        "reversed_by": "dispute_opened:default:dp_1",
        "sale_amount": "34.00",
    }
    facts = facts_after(failed(1500), **entry)
    assert facts.refunded == 0 and facts.kept_minor == 4900
    assert dict(facts.disputes)["dp_1"].outcome == "won"
    assert facts.reversed and facts.current_sale_amount == Decimal("34.00")


def test_an_unreadable_ledger_fact_is_left_out() -> None:
    facts = Facts.of(
        CONVERSION | {"refund_re_1_failed": "garbage", "refunded_minor": "x", "sale_amount": "NaN"}
    )
    assert (facts.failures, facts.state, facts.sale_amount) == ({}, None, None)


def test_job_facts_name_the_refund_and_the_dispute() -> None:
    assert job_facts(failed(1500)) == {
        "refund_re_1_failed": {"amount_minor": 1500, "failed_at": FAILED_AT}
    }
    assert job_facts(dispute("dispute_closed", "won")) == {"dispute_dp_1_outcome": "won"}
    assert list(job_facts(dispute("dispute_opened"))) == ["dispute_dp_1_opened"]
    assert job_facts(refund(1500)) == {}


# ------------------------------------------------------------------ where it should stand


@pytest.mark.parametrize(
    ("jobs", "policies", "reversed_", "sale_amount"),
    [
        ((refund(4900),), KEY, True, None),
        ((refund(1500),), KEY, False, Decimal("34.00")),
        ((refund(1500),), NO_KEY, False, None),  # record-only: left as it is
        ((refund(1500),), Policies(has_api_key=False, fallback="reverse"), True, None),
        ((refund(1500),), Policies(partial="reverse"), True, None),
        ((refund(1500), failed(1500)), KEY, False, Decimal("49.00")),
        ((refund(4900), failed(4900)), KEY, False, Decimal("49.00")),
        ((dispute("dispute_opened"),), KEY, True, None),
        ((dispute("dispute_opened"),), Policies(dispute="on-lost"), False, Decimal("49.00")),
        ((dispute("dispute_closed", "lost"),), Policies(dispute="on-lost"), True, None),
        ((dispute("dispute_opened"), refund(1500)), KEY, True, None),
        (
            (dispute("dispute_opened"), refund(1500), dispute("dispute_closed", "won")),
            KEY,
            False,
            Decimal("34.00"),
        ),
        ((dispute("dispute_closed", "won"), refund(4900)), KEY, True, None),
    ],
)
def test_the_target_composes_refunds_failures_and_disputes(
    jobs: tuple[PostbackJob, ...], policies: Policies, reversed_: bool, sale_amount: Decimal | None
) -> None:
    goal = target(facts_after(*jobs), policies)
    assert (goal.reversed, goal.sale_amount) == (reversed_, sale_amount)


# ------------------------------------------------------------------ the calls


def test_a_failed_refund_after_a_reversal_approves_again() -> None:
    reversed_ = {"everflow_state": "reversed", "reversed_by": "refund:default:ch_1:4900@1"}
    facts = facts_after(refund(4900), failed(4900), **reversed_)
    plan = plan_calls(facts, KEY)
    assert plan.steps == (RESTORE,)
    assert plan.status(facts) == "restored"
    assert plan.needs_api_key


def test_a_failed_partial_refund_raises_the_amount_back() -> None:
    facts = facts_after(refund(1500), failed(1500), sale_amount="34.00")
    plan = plan_calls(facts, KEY)
    assert plan.steps == (ADJUST,) and plan.target.sale_amount == Decimal("49.00")
    assert plan.status(facts) == "restored"
    assert plan_calls(facts_after(refund(1500)), KEY).status(facts_after(refund(1500))) == (
        "adjusted"
    )


def test_a_won_dispute_after_a_refund_during_it_approves_then_adjusts() -> None:
    facts = facts_after(
        dispute("dispute_opened"),
        refund(1500),
        dispute("dispute_closed", "won"),
        everflow_state="reversed",
    )
    assert plan_calls(facts, KEY).steps == (RESTORE, ADJUST)


def test_nothing_to_do_makes_no_call() -> None:
    facts = facts_after(refund(1500), sale_amount="34.00")
    assert plan_calls(facts, KEY).steps == ()
    assert plan_calls(facts, KEY).status(facts) == "recorded"
    already = facts_after(dispute("dispute_opened"), everflow_state="reversed")
    assert plan_calls(already, KEY).steps == ()


def test_without_a_key_a_restore_needs_the_key_but_a_reversal_does_not() -> None:
    reversed_ = facts_after(dispute("dispute_closed", "won"), everflow_state="reversed")
    assert plan_calls(reversed_, NO_KEY).needs_api_key
    assert not plan_calls(facts_after(refund(4900)), NO_KEY).needs_api_key
    assert plan_calls(facts_after(refund(4900)), NO_KEY).steps == (REVERSE,)


def test_prorate_reads_everflow_once_then_sets_payout_from_the_originals() -> None:
    first = facts_after(refund(1500))
    assert plan_calls(first, PRORATE_POLICY).steps == (ADJUST, PRORATE)
    assert plan_calls(first, KEY).steps == (ADJUST,)  # PartialRefundPayout=offer
    # nothing refunded, never prorated: Everflow's own payout stands
    assert plan_calls(facts_after(), PRORATE_POLICY).steps == ()
    known = {"everflow_payout": "10.00", "everflow_revenue": "49.00", "sale_amount": "34.00"}
    done = facts_after(refund(1500), payout_after="6.94", revenue_after="34.00", **known)
    assert plan_calls(done, PRORATE_POLICY).steps == ()
    back = facts_after(refund(1500), failed(1500), payout_after="6.94", **known)
    assert plan_calls(back, PRORATE_POLICY).steps == (ADJUST, PRORATE)


@pytest.mark.parametrize(
    ("amount", "kept", "charge", "currency", "expected"),
    [
        ("10.00", 3400, 4900, "USD", "6.94"),
        ("10.00", 2500, 4900, "USD", "5.10"),
        ("49.00", 3400, 4900, "USD", "34.00"),
        ("500", 3800, 5000, "JPY", "380.00"),  # the offer's currency may have cents
        ("4.900", 3675, 4900, "KWD", "3.675"),
        ("10.00", 0, 4900, "USD", "0.00"),
        ("10.00", 6000, 4900, "USD", "10.00"),
    ],
)
def test_prorated_amounts_are_scaled_and_rounded_half_up(
    amount: str, kept: int, charge: int, currency: str, expected: str
) -> None:
    assert prorated(Decimal(amount), kept, charge, currency) == Decimal(expected)


# ------------------------------------------------------------------ entries written before


def test_an_entry_adjusted_before_charges_were_kept_reads_its_amount_as_the_charge() -> None:
    # Written by an earlier version: the refunded mark, no charge, no moment
    older = {"refunded_minor": Decimal(1500), "everflow_state": "adjusted", "sale_amount": "34.00"}
    won = facts_after(dispute("dispute_closed", "won"), **older)
    assert plan_calls(won, KEY).steps == ()  # stays at 34.00, not raised to 49.00
    refunded_in_full = {"refunded_minor": Decimal(4900), "everflow_state": "reversed"}
    assert (
        plan_calls(facts_after(dispute("dispute_closed", "won"), **refunded_in_full), KEY).steps
        == ()
    )


def test_an_entry_reversed_by_a_dispute_before_disputes_were_kept_stays_reversed() -> None:
    older = {"everflow_state": "reversed", "reversed_by": "dispute_opened:default:dp_1"}
    assert plan_calls(facts_after(refund(1500), **older), KEY).steps == ()
    won = facts_after(refund(1500), dispute("dispute_closed", "won"), **older)
    assert plan_calls(won, KEY).steps == (RESTORE, ADJUST)
