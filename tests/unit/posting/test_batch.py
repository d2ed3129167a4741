"""A batch of PostbackQueue records: each read once, lanes run concurrently, refund
states of one charge in order, one result per record whatever the others do."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow.domain.errors import JobBusyError, MalformedJobError
from stripe_everflow.domain.jobs import ClickTarget, PostbackJob, StripeRefs
from stripe_everflow.posting.batch import BatchRecord, lane_of, post_batch
from stripe_everflow.posting.outcome import PostOutcome


def conversion(n: int) -> PostbackJob:
    return PostbackJob(
        f"conversion:default:in_{n}",
        "conversion",
        "default",
        False,
        target=ClickTarget(f"ef_tx_{n}", None, None, "customer_pin"),
        stripe=StripeRefs(invoice_id=f"in_{n}", charge_id=f"ch_{n}"),
    )


def refund(charge: str, refunded: str) -> PostbackJob:
    return PostbackJob(
        f"refund:default:{charge}:{refunded}",
        "refund",
        "default",
        False,
        amount_refunded=Decimal(refunded),
        stripe=StripeRefs(charge_id=charge),
    )


def records(*jobs: PostbackJob | str) -> list[BatchRecord]:
    return [
        BatchRecord(f"m{i}", job if isinstance(job, str) else job.to_json())
        for i, job in enumerate(jobs)
    ]


class FakePoster:
    """Records what it was given; ``act`` decides each job's fate."""

    def __init__(self, act: Any = None) -> None:
        self.calls: list[tuple[PostbackJob, str]] = []
        self._lock = threading.Lock()
        self._act = act

    def post_job(self, job: PostbackJob, body: str) -> PostOutcome:
        with self._lock:
            self.calls.append((job, body))
        if self._act is not None:
            self._act(job)
        return PostOutcome("posted", job.job_key)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=10) as pool:
        yield pool


def test_each_record_is_read_once_and_posted_with_its_body(executor: ThreadPoolExecutor) -> None:
    batch = records(conversion(1), conversion(2), refund("ch_9", "15.00"))
    poster = FakePoster()

    results = post_batch(poster, batch, executor)  # type: ignore[arg-type]

    assert results == [
        PostOutcome("posted", "conversion:default:in_1"),
        PostOutcome("posted", "conversion:default:in_2"),
        PostOutcome("posted", "refund:default:ch_9:15.00"),
    ]
    assert sorted((job.to_json(), body) for job, body in poster.calls) == sorted(
        (record.body, record.body) for record in batch
    )


def test_records_of_different_lanes_run_at_the_same_time(executor: ThreadPoolExecutor) -> None:
    # Given five jobs that each wait for the four others to be in flight too
    together = threading.Barrier(5, timeout=10)
    poster = FakePoster(act=lambda job: together.wait())

    # When they come in one batch
    results = post_batch(poster, records(*(conversion(n) for n in range(5))), executor)  # type: ignore[arg-type]

    # Then none waited in vain: they ran concurrently
    assert all(isinstance(result, PostOutcome) for result in results)


def test_refund_states_of_one_charge_run_in_order_one_at_a_time(
    executor: ThreadPoolExecutor,
) -> None:
    # Given three refund states of one charge, among other jobs
    in_flight: dict[str, int] = {}
    overlaps = []
    lock = threading.Lock()

    def act(job: PostbackJob) -> None:
        charge = str(job.stripe.charge_id)
        with lock:
            in_flight[charge] = in_flight.get(charge, 0) + 1
            overlaps.append(in_flight[charge] > 1)
        time.sleep(0.01)  # widens the window two states of one charge could share
        with lock:
            in_flight[charge] -= 1

    poster = FakePoster(act)
    batch = records(
        refund("ch_1", "10.00"),
        conversion(5),
        refund("ch_1", "20.00"),
        refund("ch_2", "5.00"),
        refund("ch_1", "49.00"),
    )

    # When the batch is posted
    post_batch(poster, batch, executor)  # type: ignore[arg-type]

    # Then the charge's states reached the poster in the batch's order, never together
    ch_1 = [job.amount_refunded for job, _ in poster.calls if job.stripe.charge_id == "ch_1"]
    assert ch_1 == [Decimal("10.00"), Decimal("20.00"), Decimal("49.00")]
    assert not any(overlaps)


def test_a_record_that_fails_gives_its_error_and_the_others_go_on(
    executor: ThreadPoolExecutor,
) -> None:
    def act(job: PostbackJob) -> None:
        if job.job_key.endswith("in_2"):
            raise JobBusyError("busy")
        if job.job_key.endswith("in_3"):
            raise RuntimeError("unexpected")

    batch = records(conversion(1), "{not json", conversion(2), conversion(3), conversion(4))

    results = post_batch(FakePoster(act), batch, executor)  # type: ignore[arg-type]

    assert [type(result).__name__ for result in results] == [
        "PostOutcome",
        "MalformedJobError",
        "JobBusyError",
        "RuntimeError",
        "PostOutcome",
    ]
    assert isinstance(results[1], MalformedJobError)


def test_an_empty_batch_posts_nothing(executor: ThreadPoolExecutor) -> None:
    assert post_batch(FakePoster(), [], executor) == []  # type: ignore[arg-type]


def test_lanes_are_the_refunded_charge_or_the_record_itself() -> None:
    record = BatchRecord("m7", "")
    assert lane_of(record, refund("ch_1", "1.00")) == "charge:ch_1"
    assert lane_of(record, conversion(1)) == "record:m7"  # a conversion names a charge too
    assert lane_of(record, None) == "record:m7"
