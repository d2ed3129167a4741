"""Refunds and disputes reach Everflow: reversals, amount adjustments, restores.

Everflow has no "create refund" call (``../docs``: a full refund is a reversal, a
partial one an amount adjustment). For a refund or dispute job of a posted conversion:

* full refund (the charge's cumulative refunded = its amount) → reversal postback
  keyed by ``conversion_id`` when known, else ``order_id``;
* partial refund → with an Everflow API key (policy ``adjust``) the conversion's sale
  amount is set to its amount x (charge - refunded so far) / charge — exactly
  paid - refunded when there is no tax — so partial refunds compose and arrive in any
  order (a stale state is skipped); without a key, the configured fallback
  (``reverse`` or ``record-only``); policy ``reverse``/``record-only`` apply always;
* dispute opened → reversal (policy ``on-created``), or nothing until lost
  (``on-lost``); dispute won → the reversed conversion is approved again (API key
  needed: without one the job fails for good and waits in PostbackDLQ, saying so);
  dispute lost under ``on-lost`` → reversal.

A job whose conversion is not posted yet fails (SQS retries it, then it waits in
PostbackDLQ); a job for money the bridge never reported is recorded ``not_ours``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stripe_everflow.domain.jobs import PostbackJob
from stripe_everflow.domain.money import currency_exponent


@dataclass(frozen=True)
class EverflowAmounts:
    """What Everflow holds for one conversion (Network API ``GET reporting/conversions/{id}``):
    the partner's payout and the network's revenue, in the offer's currency."""

    payout: Decimal
    revenue: Decimal
    sale_amount: Decimal | None = None
    status: str | None = None


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


def refund_is_full(job: PostbackJob) -> bool:
    refunded, charge = job.amount_refunded, job.charge_amount
    return refunded is not None and charge is not None and refunded >= charge


def refunded_minor(job: PostbackJob) -> int:
    """The cumulative refunded amount in minor units (for ordering refund states)."""
    amount = job.amount_refunded or Decimal(0)
    return int(amount.scaleb(currency_exponent(job.currency or "USD")))


def plan(
    job: PostbackJob,
    *,
    partial_policy: str,
    fallback: str,
    dispute_policy: str,
    has_api_key: bool,
    conversion: Mapping[str, Any],
) -> str:
    """What to do for one refund or dispute job: ``reverse``, ``adjust``, ``restore``
    or ``record`` (ledger only)."""
    action = job.action
    if action == "refund":
        if refund_is_full(job):
            return "reverse"
        policy = partial_policy
        if policy == "adjust" and not has_api_key:
            policy = fallback
        return {"adjust": "adjust", "reverse": "reverse"}.get(policy, "record")
    if action == "dispute_opened":
        if conversion.get(dispute_outcome_key(job)):
            return "record"  # the dispute's close arrived first: its outcome stands
        if conversion.get("everflow_state") == "reversed":
            return "record"  # already reversed (refunded): nothing for a win to restore
        return "reverse" if dispute_policy == "on-created" else "record"
    status = job.dispute_status
    reversed_by = str(conversion.get("reversed_by") or "")
    if status == "won":
        # Approve again only what this dispute reversed, never a refunded conversion.
        return "restore" if reversed_by.startswith("dispute_opened:") else "record"
    if status == "lost":
        return "record" if reversed_by else "reverse"
    return "record"


def dispute_outcome_key(job: PostbackJob) -> str:
    """The conversion's ledger attribute that remembers how a dispute ended."""
    return f"dispute_{job.stripe.dispute_id}_outcome"
