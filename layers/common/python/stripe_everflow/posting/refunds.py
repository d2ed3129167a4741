"""Refund, refund-failure and dispute jobs applied to the conversion they undo.

Like conversions, each job is taken in the ledger first, so a duplicate or a
redelivery changes nothing; a job whose conversion is not posted yet is retried.
Then the job adds what it tells to the facts the ledger keeps on the conversion (a
refund state through an ordered write: a stale one is ``superseded``), and
``domain.undo`` decides the Everflow calls that take the conversion where those facts
say it should stand: reverse, approve again, set the sale amount, prorate the payout.
Each call's effect is recorded on the conversion as soon as Everflow took it, so a
retried job makes only the calls still missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from stripe_everflow.domain import undo
from stripe_everflow.domain.errors import (
    ConversionNotPostedError,
    EverflowApiError,
    EverflowRetryableError,
    JobBusyError,
)
from stripe_everflow.domain.jobs import PostbackJob
from stripe_everflow.domain.postback import redact_url, reversal_params
from stripe_everflow.posting.outcome import PostOutcome

if TYPE_CHECKING:
    from stripe_everflow.ports.everflow import Ledger, NetworkApi
    from stripe_everflow.posting.poster import Poster


def apply_undo(poster: Poster, job: PostbackJob, body: str) -> PostOutcome:
    """Take the conversion a refund/refund-failure/dispute job names where its facts
    say it should stand in Everflow. Raises ConversionNotPostedError (its conversion is
    not posted yet), EverflowRetryableError / EverflowApiError (retried), JobBusyError."""
    key = job.job_key
    attempt, now = poster.attempt_id(), int(poster.clock())
    began = poster.ledger.begin(job, attempt, now, poster.settings.lease_seconds)
    if began == "done":
        return PostOutcome("duplicate", key)
    if began == "busy":
        raise JobBusyError(f"{key} is being sent by another worker")
    conversion_key = job.conversion_job_key
    if not conversion_key:
        poster.ledger.finish(key, attempt, "not_ours", now, {"everflow_action": "none"})
        return PostOutcome("not_ours", key)
    conversion = poster.ledger.get(conversion_key)
    if conversion is None or conversion.status in ("sending", "retryable"):
        poster.ledger.release(key, attempt, now, {"last_error": "conversion not posted yet"})
        raise ConversionNotPostedError(f"{conversion_key} is not posted yet")
    if conversion.status != "posted":
        # Everflow rejected or never took the conversion: nothing there to undo.
        poster.ledger.finish(
            key, attempt, "nothing_to_undo", now, {"conversion_status": conversion.status}
        )
        return PostOutcome("nothing_to_undo", key)
    if job.action == "refund":
        if not _advance_refund_state(poster.ledger, conversion_key, job):
            poster.ledger.finish(key, attempt, "superseded", now, {"everflow_action": "none"})
            return PostOutcome("superseded", key)
    else:
        poster.ledger.annotate(conversion_key, undo.job_facts(job))
    # Read back: the facts other jobs of this conversion wrote meanwhile count too.
    conversion = poster.ledger.get(conversion_key) or conversion
    secret = poster.secret.get()
    policies = undo.Policies(
        partial=poster.settings.partial_refund_policy,
        fallback=poster.settings.partial_refund_fallback,
        dispute=poster.settings.dispute_policy,
        payout=poster.settings.partial_refund_payout,
        has_api_key=bool(secret.everflow_api_key) and poster.network_api is not None,
    )
    facts = undo.Facts.of(conversion.item).with_job(job)
    plan = undo.plan_calls(facts, policies)
    done: dict[str, Any] = {"conversion_job_key": conversion_key}
    if plan.needs_api_key and not policies.has_api_key:
        # Retrying will not bring a key: recorded for the report, no Everflow call.
        # Delivered again once the key is set, the job restores.
        poster.ledger.finish(
            key,
            attempt,
            undo.NEEDS_KEY,
            now,
            done | {"everflow_action": "none", "needed": "+".join(plan.steps)},
        )
        return PostOutcome(undo.NEEDS_KEY, key)
    calls = _Calls(poster, job, conversion_key, conversion.item, secret.everflow_api_key)
    try:
        calls.make(plan, facts)
    except (EverflowRetryableError, EverflowApiError) as error:
        poster.ledger.release(key, attempt, int(poster.clock()), {"last_error": str(error)})
        raise
    done_at = int(poster.clock())
    if calls.permanent_failure:
        reason = calls.permanent_failure
        poster.ledger.finish(
            key, attempt, "failed", done_at, calls.facts | {"failure_reason": reason}
        )
        poster.dead_letters.send(body, {"job_key": key, "failure_reason": reason})
        return PostOutcome("failed", key, calls.facts.get("http_status"))
    status = plan.status(facts)
    poster.ledger.finish(
        key,
        attempt,
        status,
        done_at,
        calls.facts | done | {"everflow_action": "+".join(plan.steps) or "record"},
    )
    return PostOutcome(status, key, calls.facts.get("http_status"))


def _advance_refund_state(ledger: Ledger, conversion_key: str, job: PostbackJob) -> bool:
    """Make the job's refund state the conversion's; False when a later one is in."""
    return ledger.advance_refund_state(
        conversion_key, job.occurred_at, undo.refunded_minor(job), undo.charge_minor(job)
    )


class _Calls:
    """The Everflow calls of one job, each recorded on the conversion once made."""

    def __init__(
        self,
        poster: Poster,
        job: PostbackJob,
        conversion_key: str,
        conversion: Mapping[str, Any],
        api_key: str | None,
    ) -> None:
        self._poster, self._job, self._key = poster, job, conversion_key
        self._conversion = conversion
        self._api_key = api_key
        self._is_event = bool(conversion.get("is_event", True))
        self._conversion_id: str | None = None
        self.facts: dict[str, Any] = {}
        self.permanent_failure: str | None = None
        # Where the conversion stands in Everflow, as the calls move it.
        facts = undo.Facts.of(conversion)
        self._reversed, self._sale_amount = facts.reversed, facts.current_sale_amount
        self._amount = facts.amount

    def make(self, plan: undo.Plan, facts: undo.Facts) -> None:
        """Make the plan's calls in order; stops at a permanent refusal."""
        goal = plan.target
        if undo.PRORATE in plan.steps and facts.original_payout is None:
            # Everflow's own payout and revenue, read once, before any change of this
            # job: a new sale amount might move them (Everflow does not say).
            facts = self._read_originals(facts)
        for step in plan.steps:
            if self.permanent_failure:
                return
            if step == undo.REVERSE:
                self._reverse()
            elif step == undo.RESTORE:
                self._restore()
            elif step == undo.ADJUST:
                assert goal.sale_amount is not None
                self._adjust(goal.sale_amount)
            elif step == undo.PRORATE:
                assert goal.share is not None
                self._prorate(facts, goal.share)

    # ------------------------------------------------------------ the calls

    def _order_id(self) -> str | None:
        # The conversion's own job, as the ledger keeps it: its order id is Everflow's.
        return PostbackJob.from_json(str(self._conversion["job"])).order_id

    def _conversion_id_or_none(self) -> str | None:
        if self._conversion_id:
            return self._conversion_id
        conversion, poster = self._conversion, self._poster
        if conversion.get("conversion_id"):
            self._conversion_id = str(conversion["conversion_id"])
        elif self._api_key and poster.network_api is not None and conversion.get("transaction_id"):
            order_id = self._order_id()
            for recorded in poster.network_api.events_of_transaction(
                self._api_key, str(conversion["transaction_id"])
            ):
                if recorded.order_id and recorded.order_id == order_id:
                    self._conversion_id = recorded.conversion_id
        if self._conversion_id:
            self.facts["conversion_id"] = self._conversion_id
        return self._conversion_id

    def _network_api(self) -> tuple[NetworkApi, str, str]:
        """The Network API, the key and the conversion id (raises EverflowApiError
        while Everflow cannot name the conversion yet: retried)."""
        api, key = self._poster.network_api, self._api_key
        assert api is not None and key  # a plan with Network API calls has both
        conversion_id = self._conversion_id_or_none()
        if not conversion_id:
            raise EverflowApiError("the conversion id is not known to Everflow yet")
        return api, key, conversion_id

    def _record(self, state: dict[str, Any]) -> None:
        state["everflow_state"] = undo.everflow_state(
            self._reversed, self._sale_amount, self._amount
        )
        self._poster.ledger.annotate(self._key, state)

    def _reverse(self) -> None:
        poster, token = self._poster, self._poster.secret.get().everflow_verification_token
        conversion_id = self._conversion_id_or_none()
        params = reversal_params(poster.settings.network_id, conversion_id, self._order_id(), token)
        url, result = poster.client.get(poster.postback.base_url, params, path="/reversal")
        self.facts |= {
            "sent_url": redact_url(url, token),
            "http_status": result.status,
            "response_body": result.body,
            "last_error": result.error,
        }
        if result.outcome == "retryable":
            raise EverflowRetryableError(f"reversal answered {result.status or result.error}")
        if result.outcome == "permanent":
            self.permanent_failure = f"Everflow answered {result.status}"
            return
        self._reversed = True
        self._record({"reversed_by": self._job.job_key})

    def _restore(self) -> None:
        api, key, conversion_id = self._network_api()
        api.set_status(key, [conversion_id], "approved")
        self._reversed = False
        self._record({"reversed_by": "", "restored_by": self._job.job_key})

    def _adjust(self, amount: Decimal) -> None:
        api, key, conversion_id = self._network_api()
        api.set_sale_amount(key, conversion_id, str(amount), self._is_event)
        self._sale_amount = amount
        self.facts["sale_amount"] = str(amount)
        self._record({"sale_amount": str(amount)})

    def _read_originals(self, facts: undo.Facts) -> undo.Facts:
        api, key, conversion_id = self._network_api()
        amounts = api.conversion_amounts(key, conversion_id)
        self._poster.ledger.annotate(
            self._key,
            {
                undo.ORIGINAL_PAYOUT: str(amounts.payout),
                undo.ORIGINAL_REVENUE: str(amounts.revenue),
            },
        )
        return replace(facts, original_payout=amounts.payout, original_revenue=amounts.revenue)

    def _prorate(self, facts: undo.Facts, share: tuple[int, int]) -> None:
        payout, revenue = undo.prorated_amounts(facts, share)
        if (payout, revenue) != (facts.payout, facts.revenue):
            api, key, conversion_id = self._network_api()
            api.set_payout_revenue(key, conversion_id, str(payout), str(revenue), self._is_event)
            self._record({undo.PAYOUT_AFTER: str(payout), undo.REVENUE_AFTER: str(revenue)})
        self.facts |= {undo.PAYOUT_AFTER: str(payout), undo.REVENUE_AFTER: str(revenue)}
