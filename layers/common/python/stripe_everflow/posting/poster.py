"""Posting one job to Everflow, exactly once, recording everything in the ledger.

Per job: take it in the ledger (conditional write) → send the postback → record the
answer. Duplicate jobs and redeliveries find the job final and stop; a concurrent
worker finds it leased and retries later. Outcomes:

* 2xx → ``posted``;
* bodyless 204 → ``rejected`` by Everflow: recorded and counted, not retried;
* 429, 5xx, timeout, connection error → released as ``retryable``; the record fails
  and SQS redelivers it (after 5 receives it lands in PostbackDLQ);
* other 4xx → ``failed`` with status and body, and the job is sent to PostbackDLQ
  (a redrive tries it again).

Residual window: a crash after Everflow answered and before the ledger recorded it
leaves the job ``sending``, and a timeout or 5xx leaves the same doubt
(``maybe_sent``); the next attempt takes it again. With an Everflow API key the
bridge first asks Everflow whether the click already has a conversion with this
order id, and records that instead of sending again; without one (or for base
conversions, which that lookup does not list) it sends again, and that one call may
be a duplicate.

Refund and dispute jobs (``_undo``) follow ``stripe_everflow.domain.undo``. Jobs are
read once, as ``PostbackJob`` (``domain.jobs``), the contract the matcher writes.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stripe_everflow.config import PostSettings
from stripe_everflow.domain import undo
from stripe_everflow.domain.errors import (
    ConversionNotPostedError,
    EverflowApiError,
    EverflowRetryableError,
    JobBusyError,
)
from stripe_everflow.domain.jobs import UNDO_ACTIONS, PostbackJob
from stripe_everflow.domain.postback import (
    EventTarget,
    PostbackSettings,
    conversion_params,
    parse_adv_params,
    parse_target_rules,
    redact_url,
    reversal_params,
)
from stripe_everflow.domain.secret import CachedSecret
from stripe_everflow.ports import MessageSender
from stripe_everflow.ports.everflow import Ledger, NetworkApi, PostbackClient, RateLimiter


def postback_settings(settings: PostSettings) -> PostbackSettings:
    """Raises ConfigurationError for malformed target rules or adv mappings."""
    return PostbackSettings(
        base_url=settings.postback_base_url,
        network_id=settings.network_id,
        default_target=EventTarget(
            event_id=settings.event_id,
            advertiser_event_id=settings.advertiser_event_id,
            offer_id=settings.offer_id,
        ),
        rules=parse_target_rules(settings.target_rules),
        adv_params=parse_adv_params(settings.adv_params),
    )


@dataclass(frozen=True)
class PostOutcome:
    # posted | rejected | failed | duplicate; for refunds and disputes also reversed |
    # adjusted | restored | recorded | not_ours | nothing_to_undo | superseded
    status: str
    job_key: str
    http_status: int | None = None
    conversion_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Poster:
    settings: PostSettings
    postback: PostbackSettings
    secret: CachedSecret
    ledger: Ledger
    client: PostbackClient
    dead_letters: MessageSender
    network_api: NetworkApi | None = None
    rate_limiter: RateLimiter | None = None
    clock: Callable[[], float] = time.time
    # Attempt ids fence the ledger's writes: a random id per worker and a counter
    # (thread-safe), not a uuid4 per attempt (a system call each).
    _worker: str = field(default_factory=lambda: uuid.uuid4().hex, init=False, repr=False)
    _attempts: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    def _attempt_id(self) -> str:
        return f"{self._worker}-{next(self._attempts)}"

    def _already_recorded(self, job: PostbackJob) -> str | None:
        """The conversion id Everflow holds for this job, if the API can tell."""
        api_key = self.secret.get().everflow_api_key
        transaction_id = job.transaction_id
        if self.network_api is None or not api_key or not transaction_id:
            return None
        order_id = job.order_id
        for conversion in self.network_api.events_of_transaction(api_key, transaction_id):
            if order_id and conversion.order_id == order_id:
                return conversion.conversion_id
        return None

    def post(self, body: str) -> PostOutcome:
        """Read and send one PostbackQueue message. Raises JobError subclasses (the
        record fails and is retried), MalformedJobError for a message that is not a job."""
        return self.post_job(PostbackJob.from_json(body), body)

    def post_job(self, job: PostbackJob, body: str) -> PostOutcome:
        """Send one job read from ``body`` (the message, sent as is to PostbackDLQ when
        Everflow refuses it for good). Raises JobError subclasses (retried)."""
        if job.action in UNDO_ACTIONS:
            return self._undo(job, body)
        key = job.job_key
        attempt = self._attempt_id()
        now = int(self.clock())
        began = self.ledger.begin(job, attempt, now, self.settings.lease_seconds)
        if began == "done":
            return PostOutcome("duplicate", key)
        if began == "busy":
            raise JobBusyError(f"{key} is being sent by another worker")
        if began == "resume":
            try:
                known = self._already_recorded(job)
            except EverflowApiError:
                self.ledger.release(key, attempt, now, {"last_error": "lookup failed"})
                raise
            if known:
                self.ledger.finish(
                    key,
                    attempt,
                    "posted",
                    now,
                    {"conversion_id": known, "posted_at": now, "recovered_by": "network_api"},
                )
                return PostOutcome("posted", key, None, known)
        token = self.secret.get().everflow_verification_token
        event_target = self.postback.target_for(job)
        try:
            url, result = self.client.get(
                self.postback.base_url,
                conversion_params(job, self.postback, token, event_target),
            )
        except Exception:
            self.ledger.release(key, attempt, int(self.clock()), {"last_error": "crash"})
            raise
        facts = {
            "is_event": bool(event_target.event_id or event_target.advertiser_event_id),
            "sent_url": redact_url(url, token),
            "http_status": result.status,
            "response_body": result.body,
            "conversion_id": result.conversion_id,
            "last_error": result.error,
        }
        done_at = int(self.clock())
        if result.outcome == "retryable":
            # A timeout or a 5xx may hide a recorded conversion; a 429 or a refused
            # connection means Everflow did not take it.
            maybe_sent = (result.status or 0) >= 500 or (result.error or "").startswith("timeout")
            self.ledger.release(key, attempt, done_at, facts, maybe_sent=maybe_sent)
            raise EverflowRetryableError(
                f"Everflow answered {result.status or result.error}: retried by SQS"
            )
        if result.outcome == "posted":
            self.ledger.finish(key, attempt, "posted", done_at, facts | {"posted_at": done_at})
        elif result.outcome == "rejected":
            self.ledger.finish(key, attempt, "rejected", done_at, facts)
        else:
            reason = f"Everflow answered {result.status}"
            self.ledger.finish(key, attempt, "failed", done_at, facts | {"failure_reason": reason})
            self.dead_letters.send(body, {"job_key": key, "failure_reason": reason})
        status = {"posted": "posted", "rejected": "rejected"}.get(result.outcome, "failed")
        return PostOutcome(status, key, result.status, result.conversion_id)

    # ------------------------------------------------------------ refunds, disputes

    def _undo(self, job: PostbackJob, body: str) -> PostOutcome:
        """Reverse, adjust or restore the conversion a refund/dispute job names."""
        key = job.job_key
        attempt, now = self._attempt_id(), int(self.clock())
        began = self.ledger.begin(job, attempt, now, self.settings.lease_seconds)
        if began == "done":
            return PostOutcome("duplicate", key)
        if began == "busy":
            raise JobBusyError(f"{key} is being sent by another worker")
        conversion_key = job.conversion_job_key
        if not conversion_key:
            self.ledger.finish(key, attempt, "not_ours", now, {"everflow_action": "none"})
            return PostOutcome("not_ours", key)
        conversion = self.ledger.get(conversion_key)
        if conversion is None or conversion.status in ("sending", "retryable"):
            self.ledger.release(key, attempt, now, {"last_error": "conversion not posted yet"})
            raise ConversionNotPostedError(f"{conversion_key} is not posted yet")
        if conversion.status != "posted":
            # Everflow rejected or never took the conversion: nothing there to undo.
            self.ledger.finish(
                key, attempt, "nothing_to_undo", now, {"conversion_status": conversion.status}
            )
            return PostOutcome("nothing_to_undo", key)
        if job.action == "refund" and not self.ledger.raise_refunded(
            conversion_key, undo.refunded_minor(job)
        ):
            self.ledger.finish(key, attempt, "superseded", now, {"everflow_action": "none"})
            return PostOutcome("superseded", key)
        secret = self.secret.get()
        step = undo.plan(
            job,
            partial_policy=self.settings.partial_refund_policy,
            fallback=self.settings.partial_refund_fallback,
            dispute_policy=self.settings.dispute_policy,
            has_api_key=bool(secret.everflow_api_key),
            conversion=conversion.item,
        )
        try:
            facts = self._apply(
                step,
                job,
                conversion.item,
                secret.everflow_api_key,
                secret.everflow_verification_token,
            )
        except (EverflowRetryableError, EverflowApiError) as error:
            self.ledger.release(key, attempt, int(self.clock()), {"last_error": str(error)})
            raise
        done_at = int(self.clock())
        if facts.get("permanent_failure"):
            reason = str(facts.pop("permanent_failure"))
            self.ledger.finish(key, attempt, "failed", done_at, facts | {"failure_reason": reason})
            self.dead_letters.send(body, {"job_key": key, "failure_reason": reason})
            return PostOutcome("failed", key, facts.get("http_status"))
        status = {"reverse": "reversed", "adjust": "adjusted", "restore": "restored"}.get(
            step, "recorded"
        )
        self.ledger.finish(
            key,
            attempt,
            status,
            done_at,
            facts | {"conversion_job_key": conversion_key, "everflow_action": step},
        )
        self.ledger.annotate(conversion_key, self._conversion_state(step, job, facts))
        return PostOutcome(status, key, facts.get("http_status"))

    def _conversion_state(
        self, step: str, job: PostbackJob, facts: dict[str, Any]
    ) -> dict[str, Any]:
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
        self, conversion: Mapping[str, Any], order_id: str | None, api_key: str | None
    ) -> str | None:
        if conversion.get("conversion_id"):
            return str(conversion["conversion_id"])
        if not api_key or self.network_api is None or not conversion.get("transaction_id"):
            return None
        self._throttle()
        for recorded in self.network_api.events_of_transaction(
            api_key, str(conversion["transaction_id"])
        ):
            if recorded.order_id and recorded.order_id == order_id:
                return recorded.conversion_id
        return None

    def _throttle(self) -> None:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()

    def _apply(
        self,
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
        conversion_id = self._conversion_id(conversion, order_id, api_key)
        if step == "reverse":
            params = reversal_params(self.settings.network_id, conversion_id, order_id, token)
            url, result = self.client.get(self.postback.base_url, params, path="/reversal")
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
        if not api_key or self.network_api is None:
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
            self._throttle()
            self.network_api.set_sale_amount(
                api_key, conversion_id, str(amount), bool(conversion.get("is_event", True))
            )
            return {"sale_amount": str(amount), "conversion_id": conversion_id}
        self._throttle()
        self.network_api.set_status(api_key, [conversion_id], "approved")
        return {"conversion_id": conversion_id}
