"""Posting one job to Everflow, exactly once, recording everything in the ledger.

Per job: take it in the ledger (conditional write) → send the postback → record the
answer. Duplicate jobs and redeliveries find the job final and stop; a concurrent
worker finds it leased and retries later. Outcomes:

* 2xx → ``posted``;
* bodyless 204 → ``rejected`` by Everflow: recorded and counted, not retried;
* 429, 5xx, timeout, network error → released as ``retryable`` (in doubt unless the
  request never left or Everflow answered 429); the record fails and is delivered
  again later, after a delay that grows with its receives (``posting.batch``);
* other 4xx → ``failed`` with status and body, and the job is sent to PostbackDLQ
  (a redrive tries it again).

Doubt (``maybe_sent`` in the ledger): a crash after the request left, a timeout, a
5xx or a hang-up once the request was out may hide a conversion Everflow recorded.
The job stays in doubt until a lookup settles it: the next attempt first asks
Everflow (with an API key) whether the click already has a conversion with this
order id, and records that instead of sending again; a lookup that fails leaves the
doubt for the attempt after, its record failing as a failed postback's does (the same
growing delay; a 429, 5xx or no answer counts against the circuit breaker). Residual
window: without an API key (or without a click id, or for base conversions, which
that lookup does not list) the attempt after a doubt sends again, and that one call
may be a duplicate.

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
    PostbackResult,
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


def may_have_reached(result: PostbackResult) -> bool:
    """Whether Everflow may have recorded a postback answered ``retryable``: yes after
    a 5xx, a timeout or a hang-up once the request was out; no after a 429 or a
    request that never left (PostbackClient's "not sent: " errors)."""
    if result.status is not None:
        return result.status != 429
    return not (result.error or "").startswith("not sent: ")


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
        # Whether Everflow may hold this job: an earlier attempt left the doubt
        # ("resume") until a lookup settles it, and this attempt's request adds its own
        # once it may have left. Every way out of this attempt records it.
        in_doubt = began == "resume"
        try:
            if in_doubt:
                known = self._already_recorded(job)
                if known:
                    self.ledger.finish(
                        key,
                        attempt,
                        "posted",
                        now,
                        {"conversion_id": known, "posted_at": now, "recovered_by": "network_api"},
                    )
                    return PostOutcome("posted", key, None, known)
                # A lookup answered that Everflow has nothing, or none can be made
                # (no API key, no click): the residual window the README describes.
                in_doubt = False
            token = self.secret.get().everflow_verification_token
            event_target = self.postback.target_for(job)
            params = conversion_params(job, self.postback, token, event_target)
            in_doubt = True  # from here the request may leave
            url, result = self.client.get(self.postback.base_url, params)
        except EverflowApiError as error:
            self.ledger.release(
                key, attempt, int(self.clock()), {"last_error": f"lookup failed: {error}"}, True
            )
            raise
        except BaseException as error:
            self.ledger.release(
                key, attempt, int(self.clock()), {"last_error": type(error).__name__}, in_doubt
            )
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
            self.ledger.release(key, attempt, done_at, facts, maybe_sent=may_have_reached(result))
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
        """Wait for a slot in ``rate_limiter``, if one is given. The Network API adapter
        takes its slot of the shared budget itself before every call (the function
        gives the poster no ``rate_limiter``), so this is a no-op there."""
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
