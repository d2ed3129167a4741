"""A batch of PostbackQueue records: read once, posted concurrently, in lanes.

Records of one lane run in order, one after another: successive refund states of one
charge must reach Everflow in the order the ledger saw them. Every other record is a
lane of its own, and lanes run concurrently on the executor (the calling thread takes
one lane itself, so a batch of one costs no thread hand-off). A record that cannot be
read or posted gives its exception as its result, never stops the others: the
handler reports it in ``batchItemFailures`` and SQS retries it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from stripe_everflow.domain.errors import JobError
from stripe_everflow.domain.jobs import PostbackJob
from stripe_everflow.posting.outcome import PostOutcome
from stripe_everflow.posting.poster import Poster


@dataclass(frozen=True)
class BatchRecord:
    message_id: str
    body: str


Result = PostOutcome | Exception


@dataclass(frozen=True)
class _Read:
    index: int
    record: BatchRecord
    job: PostbackJob | None
    error: JobError | None


def lane_of(record: BatchRecord, job: PostbackJob | None) -> str:
    """Refunds of one charge share a lane; anything else runs alone."""
    if job is not None and job.action == "refund" and job.stripe.charge_id:
        return f"charge:{job.stripe.charge_id}"
    return f"record:{record.message_id}"


def post_batch(poster: Poster, records: Sequence[BatchRecord], executor: Executor) -> list[Result]:
    """Post every record; returns one result per record, in the records' order: its
    ``PostOutcome``, or the exception it raised (a ``JobError`` for the known cases)."""
    lanes: dict[str, list[_Read]] = {}
    for index, record in enumerate(records):
        try:
            read = _Read(index, record, PostbackJob.from_json(record.body), None)
        except JobError as error:
            read = _Read(index, record, None, error)
        lanes.setdefault(lane_of(record, read.job), []).append(read)
    if not lanes:
        return []

    def run(lane: list[_Read]) -> list[tuple[int, Result]]:
        return [(read.index, _post(poster, read)) for read in lane]

    first, *others = lanes.values()
    pending = [executor.submit(run, lane) for lane in others]
    done = run(first)
    for future in pending:
        done.extend(future.result())
    by_index = dict(done)
    return [by_index[index] for index in range(len(records))]


def _post(poster: Poster, read: _Read) -> Result:
    if read.job is None:
        assert read.error is not None
        return read.error
    try:
        return poster.post_job(read.job, read.record.body)
    except Exception as error:  # one result per record; the batch goes on
        return error
