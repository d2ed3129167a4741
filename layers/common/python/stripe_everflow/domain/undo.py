"""Refunds and disputes reach Everflow: reversals, amount adjustments, restores.

Everflow has no "create refund" call (``../docs``: a full refund is a reversal, a
partial one an amount adjustment). The bridge does not replay refund and dispute
events one by one onto Everflow: each job adds what it learned to the facts the
ledger keeps on the conversion it undoes (``Facts``), the facts decide where the
conversion should stand in Everflow (``target``), and the job makes only the calls
that take it there from where the ledger says it stands now (``plan_calls``). So refund
and dispute states compose, arrive in any order, and a duplicate or a late job makes
no call.

The facts of one charge:

* its refund state: the cumulative refunded amount of the latest ``charge.refunded``
  (by event time; in one second, the larger amount), and the refunds that failed or
  were canceled (``refund.failed``, ``refund.updated``, ``charge.refund.updated``)
  since: what the customer was refunded for good is that amount less the refunds
  that failed after it (``effective_refunded``);
* its disputes: opened, and how each ended.

Where the conversion should stand (``target``):

* refunded in full (for good) → reversed;
* a dispute that reverses (``DisputePolicy=on-created``: from its opening until it
  is won; ``on-lost``: once lost) → reversed;
* refunded in part → ``PartialRefundPolicy``: ``adjust`` → approved with the sale
  amount x what the charge kept (and, ``PartialRefundPayout=prorate``, the payout and
  revenue it had when first adjusted x the same share); without an API key the
  ``PartialRefundFallback`` (``reverse`` or ``record-only``); ``reverse``; or
  ``record-only`` (the amount is left as it is);
* nothing refunded → approved at the full amount (a failed refund or a won dispute
  takes it back there).

The calls (``plan_calls``), in this order: ``reverse`` (a reversal postback), ``restore``
(approve again, Network API), ``adjust`` (the sale amount, Network API), ``prorate``
(payout and revenue, Network API; Everflow takes them on approved conversions only).
Without an API key a plan that needs the Network API makes no call: the job is
recorded ``restore_needs_key`` and the conversion stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stripe_everflow.domain.jobs import PostbackJob
from stripe_everflow.domain.money import currency_exponent

# Everflow calls, in the order a plan makes them.
REVERSE, RESTORE, ADJUST, PRORATE = "reverse", "restore", "adjust", "prorate"
NETWORK_API_STEPS = (RESTORE, ADJUST, PRORATE)
# A plan that needs the Network API, without an Everflow API key: nothing is called.
NEEDS_KEY = "restore_needs_key"
# The job of a refund that failed or was canceled (its money went back to the merchant).
REFUND_FAILED: str = "refund_failed"
# Attributes of the conversion's ledger entry that hold its refund state.
REFUNDED, REFUND_STATE_AT, REFUND_CHARGE = (
    "refunded_minor",
    "refund_state_at",
    "refund_charge_minor",
)
# The payout and revenue Everflow gave the conversion, read before the bridge first
# prorated them, and the ones the bridge set last.
ORIGINAL_PAYOUT, ORIGINAL_REVENUE = "everflow_payout", "everflow_revenue"
PAYOUT_AFTER, REVENUE_AFTER = "payout_after", "revenue_after"


@dataclass(frozen=True)
class EverflowAmounts:
    """What Everflow holds for one conversion (Network API ``GET reporting/conversions/{id}``):
    the partner's payout and the network's revenue, in the offer's currency."""

    payout: Decimal
    revenue: Decimal
    sale_amount: Decimal | None = None
    status: str | None = None


@dataclass(frozen=True)
class Policies:
    """The settings that decide a refund's or dispute's effect (see the README)."""

    partial: str = "adjust"  # PartialRefundPolicy: adjust | reverse | record-only
    fallback: str = "record-only"  # PartialRefundFallback: reverse | record-only
    dispute: str = "on-created"  # DisputePolicy: on-created | on-lost
    payout: str = "offer"  # PartialRefundPayout: offer | prorate
    has_api_key: bool = True  # an Everflow API key, and a Network API to use it on


def net_amount(
    conversion_amount: Decimal | str,
    currency: str,
    charge_amount: Decimal | str,
    refunded: Decimal | str,
) -> Decimal:
    """The conversion's amount after refunds, in proportion to what the charge kept."""
    paid, charge, back = Decimal(conversion_amount), Decimal(charge_amount), Decimal(refunded)
    if charge <= 0:
        return Decimal(0)
    kept = max(Decimal(0), charge - back) / charge
    step = Decimal(1).scaleb(-currency_exponent(currency))
    return (paid * kept).quantize(step, rounding=ROUND_HALF_UP)


def prorated(amount: Decimal, kept_minor: int, charge_minor: int, currency: str) -> Decimal:
    """A payout or revenue scaled by the share of the charge the customer kept, to the
    cent (or to the currency's own minor unit when it has more digits)."""
    if charge_minor <= 0:
        return Decimal(0)
    kept = Decimal(min(max(kept_minor, 0), charge_minor)) / Decimal(charge_minor)
    step = Decimal(1).scaleb(-max(2, currency_exponent(currency)))
    return (amount * kept).quantize(step, rounding=ROUND_HALF_UP)


def refund_is_full(job: PostbackJob) -> bool:
    refunded, charge = job.amount_refunded, job.charge_amount
    return refunded is not None and charge is not None and refunded >= charge


def _minor(amount: Decimal | None, currency: str | None) -> int:
    return int((amount or Decimal(0)).scaleb(currency_exponent(currency or "USD")))


def refunded_minor(job: PostbackJob) -> int:
    """The cumulative refunded amount in minor units (for ordering refund states)."""
    return _minor(job.amount_refunded, job.currency)


def charge_minor(job: PostbackJob) -> int:
    """The charge's amount in minor units."""
    return _minor(job.charge_amount, job.currency)


def dispute_outcome_key(job: PostbackJob) -> str:
    """The conversion's ledger attribute that remembers how a dispute ended."""
    return f"dispute_{job.stripe.dispute_id}_outcome"


def dispute_opened_key(job: PostbackJob) -> str:
    """The conversion's ledger attribute that remembers a dispute was opened."""
    return f"dispute_{job.stripe.dispute_id}_opened"


def refund_failure_key(job: PostbackJob) -> str:
    """The conversion's ledger attribute that remembers a refund failed."""
    return f"refund_{job.stripe.refund_id}_failed"


def job_facts(job: PostbackJob) -> dict[str, Any]:
    """What a refund-failure or dispute job adds to its conversion's ledger entry
    (a refund state goes through the ledger's ordered write instead)."""
    if job.action == REFUND_FAILED:
        return {
            refund_failure_key(job): {
                "amount_minor": _minor(job.amount, job.currency),
                "failed_at": job.occurred_at,
            }
        }
    if job.action == "dispute_opened":
        return {dispute_opened_key(job): job.occurred_at or 1}
    if job.action == "dispute_closed":
        return {dispute_outcome_key(job): job.dispute_status or "closed"}
    return {}


# ------------------------------------------------------------------ the facts


@dataclass(frozen=True)
class RefundState:
    """One ``charge.refunded``: when, and the charge's cumulative refunded amount."""

    at: int
    refunded_minor: int

    def is_after(self, other: RefundState) -> bool:
        return (self.at, self.refunded_minor) > (other.at, other.refunded_minor)


@dataclass(frozen=True)
class FailedRefund:
    """A refund that failed (or was canceled): its money went back to the merchant."""

    amount_minor: int
    failed_at: int


def effective_refunded(state: RefundState | None, failures: Iterable[FailedRefund]) -> int:
    """What the customer was refunded for good: the latest state's cumulative amount,
    less the refunds that failed at or after it (one that failed before it is already
    out of its amount, as Stripe takes a failed refund out of ``amount_refunded``)."""
    if state is None:
        return 0
    failed = sum(f.amount_minor for f in failures if f.failed_at >= state.at)
    return max(0, state.refunded_minor - failed)


@dataclass(frozen=True)
class DisputeFacts:
    opened: bool = False
    outcome: str | None = None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return int(value)
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@dataclass(frozen=True)
class Facts:
    """What the ledger knows of one conversion: its money, its charge's refunds and
    disputes, and where it stands in Everflow now."""

    amount: Decimal | None = None
    currency: str = "USD"
    charge_minor: int | None = None
    state: RefundState | None = None
    failures: Mapping[str, FailedRefund] = field(default_factory=dict)  # by refund id
    disputes: Mapping[str, DisputeFacts] = field(default_factory=dict)
    # Everflow now, as the ledger recorded the bridge's calls.
    reversed: bool = False
    sale_amount: Decimal | None = None
    original_payout: Decimal | None = None
    original_revenue: Decimal | None = None
    payout: Decimal | None = None
    revenue: Decimal | None = None

    @classmethod
    def of(cls, conversion: Mapping[str, Any]) -> Facts:
        """The facts of a conversion's ledger entry (fields it cannot read are absent)."""
        state = None
        at, refunded = _int(conversion.get(REFUND_STATE_AT)), _int(conversion.get(REFUNDED))
        if refunded is not None:
            state = RefundState(at or 0, refunded)
        failures: dict[str, FailedRefund] = {}
        disputes: dict[str, DisputeFacts] = {}
        for name, value in conversion.items():
            if name.startswith("refund_") and name.endswith("_failed"):
                if isinstance(value, Mapping):
                    failed = _int(value.get("amount_minor"))
                    if failed is not None:
                        failed_at = _int(value.get("failed_at")) or 0
                        refund_id = name.removeprefix("refund_").removesuffix("_failed")
                        failures[refund_id] = FailedRefund(failed, failed_at)
            elif name.startswith("dispute_") and name.endswith(("_opened", "_outcome")):
                dispute_id, _, kind = name.removeprefix("dispute_").rpartition("_")
                known = disputes.get(dispute_id, DisputeFacts())
                if kind == "opened":
                    disputes[dispute_id] = replace(known, opened=True)
                elif isinstance(value, str):
                    disputes[dispute_id] = replace(known, outcome=value)
        amount = _decimal(conversion.get("amount"))
        currency = conversion.get("currency")
        currency = currency if isinstance(currency, str) and currency else "USD"
        charge = _int(conversion.get(REFUND_CHARGE))
        if charge is None and state is not None and amount is not None:
            # Written before the charge was kept: its amount is the conversion's (exactly
            # so without tax), as the refunds that entry saw were applied.
            charge = int(amount.scaleb(currency_exponent(currency)))
        reversed_by = str(conversion.get("reversed_by") or "")
        if reversed_by.startswith("dispute_opened:"):
            # Reversed by a dispute opened before disputes were kept: still open.
            dispute_id = reversed_by.rpartition(":")[2]
            disputes.setdefault(dispute_id, DisputeFacts(opened=True))
        return cls(
            amount=amount,
            currency=currency,
            charge_minor=charge,
            state=state,
            failures=failures,
            disputes=disputes,
            reversed=conversion.get("everflow_state") == "reversed" or bool(reversed_by),
            sale_amount=_decimal(conversion.get("sale_amount")),
            original_payout=_decimal(conversion.get(ORIGINAL_PAYOUT)),
            original_revenue=_decimal(conversion.get(ORIGINAL_REVENUE)),
            payout=_decimal(conversion.get(PAYOUT_AFTER)),
            revenue=_decimal(conversion.get(REVENUE_AFTER)),
        )

    def with_job(self, job: PostbackJob) -> Facts:
        """These facts with what ``job`` tells (as if its ledger write were read back)."""
        if job.action == "refund":
            # A ledger entry without its amount: the charge's stands in for it.
            known = replace(
                self, amount=self.amount if self.amount is not None else job.charge_amount
            )
            state = RefundState(job.occurred_at, refunded_minor(job))
            if self.state is not None and not state.is_after(self.state):
                return replace(known, charge_minor=self.charge_minor or charge_minor(job))
            return replace(known, state=state, charge_minor=charge_minor(job))
        if job.action == REFUND_FAILED:
            failure = FailedRefund(_minor(job.amount, job.currency), job.occurred_at)
            refund_id = str(job.stripe.refund_id)
            return replace(self, failures={**self.failures, refund_id: failure})
        dispute_id = str(job.stripe.dispute_id)
        if job.stripe.dispute_id is None and len(self.disputes) == 1:
            # A charge has one dispute at most: a job that does not name it means it.
            [dispute_id] = self.disputes
        dispute = self.disputes.get(dispute_id, DisputeFacts())
        if job.action == "dispute_opened":
            dispute = replace(dispute, opened=True)
        elif job.action == "dispute_closed":
            dispute = replace(dispute, outcome=job.dispute_status or "closed")
        return replace(self, disputes={**self.disputes, dispute_id: dispute})

    @property
    def refunded(self) -> int:
        return effective_refunded(self.state, self.failures.values())

    @property
    def kept_minor(self) -> int | None:
        """What the customer kept of the charge, when the charge's amount is known."""
        if self.charge_minor is None:
            return None
        return max(0, self.charge_minor - self.refunded)

    @property
    def current_sale_amount(self) -> Decimal | None:
        return self.sale_amount if self.sale_amount is not None else self.amount


# ------------------------------------------------------------------ where to, and how


@dataclass(frozen=True)
class Target:
    """Where the conversion should stand in Everflow."""

    reversed: bool
    # The sale amount it should have (None: leave it as it is).
    sale_amount: Decimal | None = None
    # Prorate payout and revenue to this share of the charge (kept, charge), if set.
    share: tuple[int, int] | None = None
    reason: str = ""  # why reversed: "refund" | "dispute"


def _dispute_reverses(dispute: DisputeFacts, policy: str) -> bool:
    if dispute.outcome == "lost":
        return True
    if dispute.outcome == "won":
        return False
    return policy == "on-created"


def target(facts: Facts, policies: Policies) -> Target:
    """Where the conversion should stand, given everything known of its charge."""
    charge, refunded = facts.charge_minor, facts.refunded
    if charge is not None and refunded >= charge > 0:
        return Target(True, reason="refund")
    if any(_dispute_reverses(d, policies.dispute) for d in facts.disputes.values()):
        return Target(True, reason="dispute")
    if refunded <= 0 or charge is None or charge <= 0:
        return Target(False, facts.amount, (1, 1))
    policy = policies.partial
    if policy == "adjust" and not policies.has_api_key:
        policy = policies.fallback
    if policy == "reverse":
        return Target(True, reason="refund")
    if policy != "adjust":
        return Target(False)  # record-only: Everflow keeps what it has
    kept = charge - refunded
    amount = None
    if facts.amount is not None:
        amount = net_amount(facts.amount, facts.currency, Decimal(charge), Decimal(refunded))
    return Target(False, amount, (kept, charge))


@dataclass(frozen=True)
class Plan:
    """The Everflow calls that take the conversion from where it stands to ``target``."""

    steps: tuple[str, ...]
    target: Target

    @property
    def needs_api_key(self) -> bool:
        return any(step in NETWORK_API_STEPS for step in self.steps)

    def status(self, facts: Facts) -> str:
        """The job's ledger status once the plan is made."""
        if not self.steps:
            return "recorded"
        if REVERSE in self.steps:
            return "reversed"
        before, after = facts.current_sale_amount, self.target.sale_amount
        if RESTORE in self.steps or (
            ADJUST in self.steps and before is not None and after is not None and after > before
        ):
            return "restored"
        return "adjusted"


def plan_calls(facts: Facts, policies: Policies) -> Plan:
    """The calls to make, in order (see the module's docstring)."""
    goal = target(facts, policies)
    if goal.reversed:
        return Plan(() if facts.reversed else (REVERSE,), goal)
    steps = [RESTORE] if facts.reversed else []
    if goal.sale_amount is not None and goal.sale_amount != facts.current_sale_amount:
        steps.append(ADJUST)
    if policies.payout == "prorate" and goal.share is not None and policies.has_api_key:
        kept, charge = goal.share
        if facts.original_payout is None or facts.original_revenue is None:
            # Never prorated: read Everflow's payout and revenue first, unless the
            # customer kept everything (they are Everflow's own then).
            if kept < charge:
                steps.append(PRORATE)
        elif (facts.payout, facts.revenue) != prorated_amounts(facts, goal.share):
            steps.append(PRORATE)
    return Plan(tuple(steps), goal)


def prorated_amounts(facts: Facts, share: tuple[int, int]) -> tuple[Decimal, Decimal]:
    """The payout and revenue for ``share`` of the charge, from the original ones."""
    kept, charge = share
    payout, revenue = facts.original_payout, facts.original_revenue
    assert payout is not None and revenue is not None
    return (
        prorated(payout, kept, charge, facts.currency),
        prorated(revenue, kept, charge, facts.currency),
    )


def everflow_state(reversed_: bool, sale_amount: Decimal | None, amount: Decimal | None) -> str:
    """How the conversion reads in the reports: reversed, adjusted or approved."""
    if reversed_:
        return "reversed"
    if sale_amount is not None and amount is not None and sale_amount != amount:
        return "adjusted"
    return "approved"


def plan(
    job: PostbackJob,
    *,
    partial_policy: str,
    fallback: str,
    dispute_policy: str,
    has_api_key: bool,
    conversion: Mapping[str, Any],
) -> str:
    """The first call ``job`` makes on ``conversion``: ``reverse``, ``adjust``,
    ``restore``, ``prorate``, or ``record`` (no call)."""
    policies = Policies(partial_policy, fallback, dispute_policy, "offer", has_api_key)
    facts = Facts.of(conversion).with_job(job)
    steps = plan_calls(facts, policies).steps
    return steps[0] if steps else "record"
