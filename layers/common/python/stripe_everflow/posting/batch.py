"""A batch of PostbackQueue records: read once, posted concurrently, in lanes; held
while Everflow is failing; and when each failed record comes back.

Records of one lane run in order, one after another: the refund states, refund
failures and disputes of one conversion must reach Everflow in the order the ledger
saw them. Every other record is a lane of its own, and lanes run concurrently on the
executor (the calling thread takes one lane itself, so a batch of one costs no
thread hand-off). A record that cannot be
read or posted gives its exception as its result, never stops the others: the
handler reports it in ``batchItemFailures`` and it is delivered again alone.

The circuit breaker (shared by every worker) is asked once per batch. Closed: the
batch is posted and what Everflow made of its calls is reported back. Open: every
record is held (``EverflowCircuitOpenError``) without touching the ledger or
Everflow. Probe: records are posted one at a time until one reaches Everflow; if it
answers the rest of the batch goes on, if it fails the rest is held.

A failed record comes back after ``Backoff.delay`` of its receive count, whatever
failed it (a postback, the lookup of a job in doubt, a lease held elsewhere, the
Network API budget, the breaker's hold): doubling, capped, and drawn at random in its
upper half so that the records of one outage do not all return at once. So every
record stays out of PostbackDLQ at least ``Backoff.least_time_before`` its receives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from stripe_everflow.domain.errors import (
    EverflowCircuitOpenError,
    EverflowRetryableError,
    EverflowUnavailableError,
    JobError,
)
from stripe_everflow.domain.jobs import UNDO_ACTIONS, PostbackJob
from stripe_everflow.ports.everflow import CircuitBreaker
from stripe_everflow.posting.outcome import PostOutcome
from stripe_everflow.posting.poster import Poster

# SQS keeps a received message invisible for at most 12 hours.
MAX_DELAY_SECONDS = 43200
# Outcomes that mean Everflow was called and answered (besides any with an HTTP status).
_ANSWERED = frozenset({"posted", "rejected", "reversed", "adjusted", "restored"})


@dataclass(frozen=True)
class BatchRecord:
    message_id: str
    body: str
    receipt_handle: str = ""
    receive_count: int = 1


Result = PostOutcome | Exception


@dataclass(frozen=True)
class Backoff:
    """When a failed record comes back: ``first_seconds`` after its first receive,
    doubling with each receive up to ``max_seconds``; the delay is drawn uniformly in
    the upper half of that ceiling (at least half of it always passes)."""

    first_seconds: int = 30
    max_seconds: int = 3600

    def ceiling(self, receive_count: int) -> int:
        doublings = min(max(receive_count, 1) - 1, 30)
        return min(self.first_seconds << doublings, self.max_seconds, MAX_DELAY_SECONDS)

    def delay(self, receive_count: int, draw: float) -> int:
        """Seconds until the record comes back; ``draw`` is uniform in [0, 1)."""
        ceiling = self.ceiling(receive_count)
        return max(1, math.ceil(ceiling * (1 + min(max(draw, 0.0), 1.0)) / 2))

    def least_time_before(self, receives: int) -> int:
        """The least time a record failing every receive is kept out of the DLQ by
        ``receives`` receives (maxReceiveCount): the shortest delays of the first
        ``receives - 1`` of them, since the last receive is the one that must succeed."""
        return sum(-(-self.ceiling(n) // 2) for n in range(1, receives))


@dataclass(frozen=True)
class _Read:
    index: int
    record: BatchRecord
    job: PostbackJob | None
    error: JobError | None


def lane_of(record: BatchRecord, job: PostbackJob | None) -> str:
    """Refunds, refund failures and disputes of one conversion share a lane (each
    reads and changes where the conversion stands in Everflow); refunds of money the
    bridge never counted share their charge's; anything else runs alone."""
    if job is not None and job.action in UNDO_ACTIONS:
        if job.conversion_job_key:
            return f"conversion:{job.conversion_job_key}"
        if job.stripe.charge_id:
            return f"charge:{job.stripe.charge_id}"
    return f"record:{record.message_id}"


def post_batch(
    poster: Poster,
    records: Sequence[BatchRecord],
    executor: Executor,
    breaker: CircuitBreaker | None = None,
) -> list[Result]:
    """Post every record; returns one result per record, in the records' order: its
    ``PostOutcome``, or the exception it raised (a ``JobError`` for the known cases)."""
    if not records:
        return []
    admission = breaker.admit(int(poster.clock())) if breaker is not None else "closed"
    if admission == "open":
        return [_held() for _ in records]
    lanes: dict[str, list[_Read]] = {}
    for index, record in enumerate(records):
        try:
            read = _Read(index, record, PostbackJob.from_json(record.body), None)
        except JobError as error:
            read = _Read(index, record, None, error)
        lanes.setdefault(lane_of(record, read.job), []).append(read)

    done: list[tuple[int, Result]] = []
    pending = list(lanes.values())
    if admission == "probe":
        verdict = None
        while pending and verdict is None:
            lane = pending[0]
            read = lane.pop(0)
            result = _post(poster, read)
            done.append((read.index, result))
            verdict = everflow_verdict(result)
            if not lane:
                pending.pop(0)
        if verdict == "failed":
            done += [(read.index, _held()) for lane in pending for read in lane]
            pending = []

    def run(lane: list[_Read]) -> list[tuple[int, Result]]:
        return [(read.index, _post(poster, read)) for read in lane]

    if pending:
        first, *others = pending
        futures = [executor.submit(run, lane) for lane in others]
        done += run(first)
        for future in futures:
            done.extend(future.result())
    if breaker is not None:
        verdicts = [everflow_verdict(result) for _, result in done]
        breaker.record(int(poster.clock()), verdicts.count("answered"), verdicts.count("failed"))
    by_index = dict(done)
    return [by_index[index] for index in range(len(records))]


def everflow_verdict(result: Result) -> str | None:
    """What a record's result says of Everflow: "answered" (it was called and
    answered, a refusal included), "failed" (429, 5xx, no answer), or None (no call
    decided it: a duplicate, a busy job, a lookup the budget held back …)."""
    if isinstance(result, EverflowRetryableError | EverflowUnavailableError):
        return "failed"
    if isinstance(result, PostOutcome) and (
        result.http_status is not None or result.status in _ANSWERED
    ):
        return "answered"
    return None


def retry_delays(
    records: Sequence[BatchRecord],
    results: Sequence[Result],
    backoff: Backoff,
    draw: Callable[[], float],
) -> list[tuple[str, int]]:
    """(receipt handle, seconds) for each record that failed: when it comes back."""
    return [
        (record.receipt_handle, backoff.delay(record.receive_count, draw()))
        for record, result in zip(records, results, strict=True)
        if isinstance(result, Exception) and record.receipt_handle
    ]


def _held() -> EverflowCircuitOpenError:
    return EverflowCircuitOpenError("Everflow has been failing: held without calling it")


def _post(poster: Poster, read: _Read) -> Result:
    if read.job is None:
        assert read.error is not None
        return read.error
    try:
        return poster.post_job(read.job, read.record.body)
    except Exception as error:  # one result per record; the batch goes on
        return error
