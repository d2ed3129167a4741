"""A batch of PostbackQueue records: each read once, lanes run concurrently, refund
states of one charge in order, one result per record whatever the others do; the
circuit breaker's admission (held, probe, posted) and the retry delays."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow.domain.errors import (
    EverflowApiError,
    EverflowCircuitOpenError,
    EverflowRetryableError,
    EverflowUnavailableError,
    JobBusyError,
    MalformedJobError,
)
from stripe_everflow.domain.jobs import ClickTarget, PostbackJob, StripeRefs
from stripe_everflow.posting.batch import Backoff, BatchRecord, lane_of, post_batch, retry_delays
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

    def clock(self) -> float:
        return 1_000.0

    def __init__(self, act: Any = None) -> None:
        self.calls: list[tuple[PostbackJob, str]] = []
        self._lock = threading.Lock()
        self._act = act

    def post_job(self, job: PostbackJob, body: str) -> PostOutcome:
        with self._lock:
            self.calls.append((job, body))
        if self._act is not None:
            answer = self._act(job)
            if isinstance(answer, PostOutcome):
                return answer
        return PostOutcome("posted", job.job_key, 200)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=10) as pool:
        yield pool


def test_each_record_is_read_once_and_posted_with_its_body(executor: ThreadPoolExecutor) -> None:
    batch = records(conversion(1), conversion(2), refund("ch_9", "15.00"))
    poster = FakePoster()

    results = post_batch(poster, batch, executor)  # type: ignore[arg-type]

    assert results == [
        PostOutcome("posted", "conversion:default:in_1", 200),
        PostOutcome("posted", "conversion:default:in_2", 200),
        PostOutcome("posted", "refund:default:ch_9:15.00", 200),
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


# ------------------------------------------------------------------ the circuit breaker


class FakeBreaker:
    def __init__(self, admission: str) -> None:
        self.admission = admission
        self.recorded: list[tuple[int, int]] = []

    def admit(self, now: int) -> str:
        return self.admission

    def record(self, now: int, answered: int, failed: int) -> None:
        self.recorded.append((answered, failed))


def _everflow_down(job: PostbackJob) -> None:
    raise EverflowRetryableError("Everflow answered 503: retried by SQS")


def test_an_open_breaker_holds_every_record_without_posting_it(
    executor: ThreadPoolExecutor,
) -> None:
    poster, breaker = FakePoster(), FakeBreaker("open")

    results = post_batch(poster, records(conversion(1), conversion(2)), executor, breaker)  # type: ignore[arg-type]

    assert [type(r) for r in results] == [EverflowCircuitOpenError] * 2
    assert poster.calls == [] and breaker.recorded == []


def test_a_closed_breaker_hears_what_everflow_made_of_the_batch(
    executor: ThreadPoolExecutor,
) -> None:
    def act(job: PostbackJob) -> Any:
        if job.job_key.endswith(("in_1", "in_2")):
            _everflow_down(job)
        if job.job_key.endswith("in_3"):
            return PostOutcome("duplicate", job.job_key)  # no call made
        if job.job_key.endswith("in_4"):
            raise EverflowUnavailableError("GET /reporting/events/ef_tx_4: HTTP 503")
        return None

    breaker = FakeBreaker("closed")
    batch = records(*(conversion(n) for n in range(1, 7)))

    post_batch(FakePoster(act), batch, executor, breaker)  # type: ignore[arg-type]

    assert breaker.recorded == [(2, 3)]  # in_5, in_6 answered; in_1, in_2, in_4 failed


@pytest.mark.parametrize(("everflow", "posted"), [("up", 4), ("down", 1)])
def test_a_probe_posts_one_record_then_the_batch_goes_on_or_is_held(
    executor: ThreadPoolExecutor, everflow: str, posted: int
) -> None:
    poster = FakePoster(_everflow_down if everflow == "down" else None)
    breaker = FakeBreaker("probe")

    results = post_batch(poster, records(*(conversion(n) for n in range(4))), executor, breaker)  # type: ignore[arg-type]

    assert len(poster.calls) == posted
    held = [r for r in results if isinstance(r, EverflowCircuitOpenError)]
    assert len(held) == 4 - posted
    assert breaker.recorded == ([(4, 0)] if everflow == "up" else [(0, 1)])


def test_a_probe_goes_on_past_records_that_make_no_call(executor: ThreadPoolExecutor) -> None:
    def act(job: PostbackJob) -> Any:
        if job.job_key.endswith("in_0"):
            return PostOutcome("duplicate", job.job_key)
        _everflow_down(job)

    poster, breaker = FakePoster(act), FakeBreaker("probe")

    results = post_batch(poster, records(*(conversion(n) for n in range(3))), executor, breaker)  # type: ignore[arg-type]

    assert [type(r).__name__ for r in results] == [
        "PostOutcome",
        "EverflowRetryableError",
        "EverflowCircuitOpenError",
    ]
    assert breaker.recorded == [(0, 1)]


def test_a_probe_keeps_the_order_of_a_charge(executor: ThreadPoolExecutor) -> None:
    poster, breaker = FakePoster(), FakeBreaker("probe")
    batch = records(refund("ch_1", "10.00"), refund("ch_1", "20.00"), refund("ch_1", "30.00"))

    post_batch(poster, batch, executor, breaker)  # type: ignore[arg-type]

    assert [job.amount_refunded for job, _ in poster.calls] == [
        Decimal("10.00"),
        Decimal("20.00"),
        Decimal("30.00"),
    ]


# ------------------------------------------------------------------ retry delays


def test_delays_double_with_each_receive_up_to_the_cap() -> None:
    backoff = Backoff(first_seconds=30, max_seconds=3600)
    ceilings = [backoff.ceiling(n) for n in range(1, 11)]
    assert ceilings == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert backoff.ceiling(10_000) == 3600
    assert Backoff(first_seconds=30, max_seconds=10**6).ceiling(10_000) == 43200  # SQS's 12 h


@pytest.mark.parametrize("receive_count", [1, 2, 5, 8, 30])
def test_a_delay_is_drawn_in_the_upper_half_of_its_ceiling(receive_count: int) -> None:
    backoff = Backoff()
    ceiling = backoff.ceiling(receive_count)
    low, high = backoff.delay(receive_count, 0.0), backoff.delay(receive_count, 0.999999)
    assert low == -(-ceiling // 2) and ceiling - 1 <= high <= ceiling
    assert backoff.delay(receive_count, 0.5) == -(-3 * ceiling // 4)


def test_the_least_time_a_record_is_kept_by_its_receives() -> None:
    # 15 + 30 + 60 + … + 960, then 1800 s for each further receive but the last
    assert Backoff().least_time_before(8) == 1905
    assert Backoff().least_time_before(24) == 1905 + 16 * 1800


def test_only_failed_records_are_delayed_by_their_receive_count() -> None:
    batch = [
        BatchRecord("m0", "", "r0", 1),
        BatchRecord("m1", "", "r1", 3),
        BatchRecord("m2", "", "r2", 9),
    ]
    results: list[Any] = [
        EverflowRetryableError("503"),
        PostOutcome("posted", "k"),
        EverflowCircuitOpenError("held"),
    ]
    assert retry_delays(batch, results, Backoff(), lambda: 0.0) == [("r0", 15), ("r2", 1800)]


# Every way a record fails while Everflow is down, and whether Everflow's answer (or
# its silence) decided it: those count against the breaker, the others are no call.
FAILURES_WHILE_DOWN: list[tuple[str, Exception, int]] = [
    ("postback 5xx or timeout", EverflowRetryableError("Everflow answered 503"), 1),
    ("postback 429", EverflowRetryableError("Everflow answered 429"), 1),
    ("lookup of a job in doubt failed", EverflowUnavailableError("GET …: HTTP 503"), 1),
    ("Network API budget exhausted", EverflowApiError("the rate limit stayed exhausted"), 0),
    ("leased by another worker", JobBusyError("being sent by another worker"), 0),
]


@pytest.mark.parametrize(
    ("failure", "receive_count"),
    [(f, n) for f in FAILURES_WHILE_DOWN for n in (1, 8, 23)],
    ids=lambda v: v[0] if isinstance(v, tuple) else str(v),
)
def test_every_kind_of_failure_comes_back_after_the_same_delay(
    executor: ThreadPoolExecutor, failure: tuple[str, Exception, int], receive_count: int
) -> None:
    # Given a record on its nth receive that fails this way, and one held by the breaker
    _, error, counted = failure

    def fail(job: PostbackJob) -> None:
        raise error

    breaker = FakeBreaker("closed")
    batch = [BatchRecord("m0", conversion(1).to_json(), "r0", receive_count)]
    results = post_batch(FakePoster(fail), batch, executor, breaker)  # type: ignore[arg-type]
    held = post_batch(FakePoster(), batch, executor, FakeBreaker("open"))  # type: ignore[arg-type]
    # Then it comes back after its receive count's delay, as a held record does
    backoff, draw = Backoff(), 0.37
    expected = [("r0", backoff.delay(receive_count, draw))]
    assert retry_delays(batch, results, backoff, lambda: draw) == expected
    assert retry_delays(batch, held, backoff, lambda: draw) == expected
    # and it counts against Everflow in the breaker only when Everflow failed the call
    assert breaker.recorded == [(0, counted)]
