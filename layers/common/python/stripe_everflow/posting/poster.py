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

Refund and dispute jobs are applied by ``posting.refunds``. Jobs are
read once, as ``PostbackJob`` (``domain.jobs``), the contract the matcher writes.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from stripe_everflow.config import PostSettings
from stripe_everflow.domain.errors import (
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
)
from stripe_everflow.domain.secret import CachedSecret
from stripe_everflow.ports import MessageSender
from stripe_everflow.ports.everflow import Ledger, NetworkApi, PostbackClient, RateLimiter
from stripe_everflow.posting.outcome import PostOutcome
from stripe_everflow.posting.refunds import apply_undo


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

    def attempt_id(self) -> str:
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
            return apply_undo(self, job, body)
        key = job.job_key
        attempt = self.attempt_id()
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

    def throttle(self) -> None:
        """Wait for a slot in the Network API budget shared by every worker."""
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
