"""Refund and dispute jobs applied to the conversion they undo: reverse, adjust the
sale amount, approve again, or only record — as ``domain.undo`` plans it.

Like conversions, each job is taken in the ledger first, so a duplicate or a
redelivery changes nothing; a job whose conversion is not posted yet is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    from stripe_everflow.posting.poster import Poster


def apply_undo(poster: Poster, job: PostbackJob, body: str) -> PostOutcome:
    """Reverse, adjust or restore the conversion a refund/dispute job names."""
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
    if job.action == "refund" and not poster.ledger.raise_refunded(
        conversion_key, undo.refunded_minor(job)
    ):
        poster.ledger.finish(key, attempt, "superseded", now, {"everflow_action": "none"})
        return PostOutcome("superseded", key)
    secret = poster.secret.get()
    step = undo.plan(
        job,
        partial_policy=poster.settings.partial_refund_policy,
        fallback=poster.settings.partial_refund_fallback,
        dispute_policy=poster.settings.dispute_policy,
        has_api_key=bool(secret.everflow_api_key),
        conversion=conversion.item,
    )
    try:
        facts = _apply(
            poster,
            step,
            job,
            conversion.item,
            secret.everflow_api_key,
            secret.everflow_verification_token,
        )
    except (EverflowRetryableError, EverflowApiError) as error:
        poster.ledger.release(key, attempt, int(poster.clock()), {"last_error": str(error)})
        raise
    done_at = int(poster.clock())
    if facts.get("permanent_failure"):
        reason = str(facts.pop("permanent_failure"))
        poster.ledger.finish(key, attempt, "failed", done_at, facts | {"failure_reason": reason})
        poster.dead_letters.send(body, {"job_key": key, "failure_reason": reason})
        return PostOutcome("failed", key, facts.get("http_status"))
    status = {"reverse": "reversed", "adjust": "adjusted", "restore": "restored"}.get(
        step, "recorded"
    )
    poster.ledger.finish(
        key,
        attempt,
        status,
        done_at,
        facts | {"conversion_job_key": conversion_key, "everflow_action": step},
    )
    poster.ledger.annotate(conversion_key, _conversion_state(step, job, facts))
    return PostOutcome(status, key, facts.get("http_status"))


def _conversion_state(step: str, job: PostbackJob, facts: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if job.action == "dispute_closed":
        state[undo.dispute_outcome_key(job)] = job.dispute_status
    if step == "reverse":
        state |= {"everflow_state": "reversed", "reversed_by": job.job_key}
    elif step == "adjust":
        state |= {"everflow_state": "adjusted", "sale_amount": facts.get("sale_amount")}
    elif step == "restore":
        state |= {
            "everflow_state": "approved",
            "reversed_by": "",
            "restored_by": job.job_key,
        }
    return state


def _conversion_id(
    poster: Poster, conversion: Mapping[str, Any], order_id: str | None, api_key: str | None
) -> str | None:
    if conversion.get("conversion_id"):
        return str(conversion["conversion_id"])
    if not api_key or poster.network_api is None or not conversion.get("transaction_id"):
        return None
    poster.throttle()
    for recorded in poster.network_api.events_of_transaction(
        api_key, str(conversion["transaction_id"])
    ):
        if recorded.order_id and recorded.order_id == order_id:
            return recorded.conversion_id
    return None


def _apply(
    poster: Poster,
    step: str,
    job: PostbackJob,
    conversion: Mapping[str, Any],
    api_key: str | None,
    token: str | None,
) -> dict[str, Any]:
    """Make the Everflow call for ``step``; returns the facts to record.

    Raises EverflowRetryableError / EverflowApiError for retryable failures."""
    if step == "record":
        return {}
    # The conversion's own job, as the ledger keeps it: its order id is Everflow's.
    order_id = PostbackJob.from_json(str(conversion["job"])).order_id
    conversion_id = _conversion_id(poster, conversion, order_id, api_key)
    if step == "reverse":
        params = reversal_params(poster.settings.network_id, conversion_id, order_id, token)
        url, result = poster.client.get(poster.postback.base_url, params, path="/reversal")
        facts: dict[str, Any] = {
            "sent_url": redact_url(url, token),
            "http_status": result.status,
            "response_body": result.body,
            "last_error": result.error,
        }
        if result.outcome == "retryable":
            raise EverflowRetryableError(f"reversal answered {result.status or result.error}")
        if result.outcome == "permanent":
            facts["permanent_failure"] = f"Everflow answered {result.status}"
        return facts
    if not api_key or poster.network_api is None:
        # Adjusting or approving again takes the Network API; retrying will not
        # bring a key, so the job waits in PostbackDLQ for a redrive once it is set.
        what = "adjust its amount" if step == "adjust" else "approve it again"
        return {
            "permanent_failure": f"everflow_api_key is needed to {what}",
            "conversion_id": conversion_id,
        }
    if not conversion_id:
        raise EverflowApiError("the conversion id is not known to Everflow yet")
    if step == "adjust":
        amount = undo.net_amount(
            str(conversion["amount"]),
            str(conversion["currency"]),
            job.charge_amount or Decimal(0),
            job.amount_refunded or Decimal(0),
        )
        poster.throttle()
        poster.network_api.set_sale_amount(
            api_key, conversion_id, str(amount), bool(conversion.get("is_event", True))
        )
        return {"sale_amount": str(amount), "conversion_id": conversion_id}
    poster.throttle()
    poster.network_api.set_status(api_key, [conversion_id], "approved")
    return {"conversion_id": conversion_id}
