"""Retries of PostEverflowFunction through an Everflow outage, in simulated time: the
real handler on PostbackQueue and PostbackDLQ from moto (template.yaml), LedgerTable
from moto, Everflow from the local stand-in. Time is a clock the test moves: the
poster's, the circuit breaker's and moto's SQS (visibility, receive counts, the
redrive to the DLQ), so six hours pass without waiting."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow.adapters.dynamodb.rate_limiter import BREAKER_KEY, EverflowBreaker
from stripe_everflow.domain.classify import ClassifySettings, classify_event
from stripe_everflow.domain.errors import QueueUnavailableError
from stripe_everflow.domain.jobs import ClickTarget, PostbackJob
from stripe_everflow.posting.batch import Backoff
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from stripe_everflow_cli.pollers import build_sqs_event, settle_batch
from stripe_everflow_cli.template import load_template
from tests.integration.conftest import Aws
from tests.integration.everflow_faults import FlakyNetworkApi
from tests.integration.pipeline import Poster
from tests.support import PROJECT_ROOT, bridge_secret, stripe_event

HOUR = 3600
# PostbackQueue's redrive maxReceiveCount (template.yaml): what a six-hour outage needs.
MAX_RECEIVES = 24
START = 1_767_225_600  # 2026-01-01T00:00:00Z


class SimulatedClock:
    def __init__(self, start: float) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimulatedClock:
    """The simulated clock, moto's SQS on it too (visibility, redrive, retention)."""
    import moto.sqs.models as sqs_models

    simulated = SimulatedClock(START)
    monkeypatch.setattr(sqs_models, "unix_time", lambda dt=None: simulated())
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda dt=None: simulated() * 1000)
    return simulated


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def network_api(everflow: EverflowStandIn) -> Iterator[FlakyNetworkApi]:
    api = FlakyNetworkApi(everflow.url)
    yield api
    api.stop()


def conversion_job(n: int) -> str:
    event = stripe_event("basil", "invoice.paid.first")
    event["data"]["object"]["id"] = f"in_outage{n:03d}"
    c = classify_event(event, ClassifySettings())
    return PostbackJob(
        job_key=f"conversion:default:{c.money_key}",
        action="conversion",
        account="default",
        livemode=False,
        classification=c,
        kind="initial",
        target=ClickTarget(f"ef_tx_{n}", "12", "7", "email_first_touch"),
    ).to_json()


class Lambda:
    """PostEverflowFunction behind an SQS event source mapping, in simulated time: a
    batch of up to 10 visible messages, the handler's failures left on the queue."""

    def __init__(
        self,
        aws: Aws,
        everflow: EverflowStandIn,
        network_api: FlakyNetworkApi,
        clock: SimulatedClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        secret = bridge_secret(everflow_api_key="ef_api_key")
        aws.secretsmanager.put_secret_value(
            SecretId="BridgeSecret", SecretString=json.dumps(secret)
        )
        self.aws, self.clock = aws, clock
        self.queue_url = aws.resources.queue_urls["PostbackQueue"]
        self.dlq_url = aws.resources.queue_urls["PostbackDLQ"]
        redrive = {"deadLetterTargetArn": self._arn(self.dlq_url), "maxReceiveCount": MAX_RECEIVES}
        aws.sqs.set_queue_attributes(
            QueueUrl=self.queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)}
        )
        self.function = Poster(
            aws,
            everflow,
            monkeypatch,
            EVERFLOW_API_BASE_URL=network_api.url,
            POSTBACK_QUEUE_URL=self.queue_url,
        )
        self.function.deps.poster.clock = clock
        jitter = random.Random(10).random  # noqa: S311 - a jitter repeatable in tests
        self.function.deps = dataclasses.replace(self.function.deps, draw=jitter)
        self.receives: Counter[str] = Counter()

    def _arn(self, queue_url: str) -> str:
        answer = self.aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(answer["Attributes"]["QueueArn"])

    def depth(self, queue_url: str) -> int:
        attributes = self.aws.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def poll_once(self) -> int:
        messages = self.aws.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return 0
        for message in messages:
            self.receives[message["MessageId"]] += 1
        app = self.function.app
        response = app.handle(build_sqs_event(messages, "PostbackQueue"), self.function.deps)
        app.metrics.clear_metrics()
        done = settle_batch(messages, response, reports_batch_item_failures=True)
        if done:
            self.aws.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def run_until(self, until: float, step: float = 60) -> None:
        """Poll as the event source mapping does until ``until`` (or the queue is empty)."""
        while self.clock() < until:
            if self.poll_once():
                self.clock.advance(1)  # a batch takes a moment
            elif self.depth(self.queue_url) == 0:
                return
            else:
                self.clock.advance(step)


def test_a_six_hour_outage_drains_by_itself_exactly_once(
    aws: Aws,
    everflow: EverflowStandIn,
    network_api: FlakyNetworkApi,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given forty conversions queued as Everflow goes down, postbacks and Network API alike
    function = Lambda(aws, everflow, network_api, clock, monkeypatch)
    jobs = [conversion_job(n) for n in range(40)]
    for body in jobs:
        aws.sqs.send_message(QueueUrl=function.queue_url, MessageBody=body)
    everflow.set_default({"status": 503})
    network_api.down = True

    # When the function keeps receiving them for six hours
    recovery = START + 6 * HOUR
    function.run_until(recovery)
    during_outage = len(everflow.postbacks()) + len(network_api.calls)
    assert function.depth(function.queue_url) == len(jobs)  # all still there, none lost
    # and Everflow comes back
    everflow.set_default({"status": 200})
    network_api.down = False
    function.run_until(recovery + 3 * HOUR)

    # Then the queue drained by itself, and none of the jobs went to the DLQ
    assert function.depth(function.queue_url) == 0
    assert function.depth(function.dlq_url) == 0
    assert clock() - recovery <= 2 * HOUR
    # each conversion is in Everflow exactly once, and so says the ledger
    accepted = Counter(dict(r.query)["order_id"] for r in everflow.postbacks() if r.status == 200)
    assert accepted == Counter({f"in_outage{n:03d}": 1 for n in range(len(jobs))})
    for n in range(len(jobs)):
        entry = function.function.ledger(f"conversion:default:in_outage{n:03d}")
        assert entry["status"] == "posted"
    # while Everflow was down the breaker let through a first run of failures, then one
    # probe per cool-down (without it, each job would have called at each receive)
    assert during_outage <= most_calls_while_down(6 * HOUR)
    # and the retries grew: no job was received more than the redrive allows
    assert max(function.receives.values()) < MAX_RECEIVES
    print(
        f"outage 6 h, {len(jobs)} jobs: {during_outage} Everflow calls while down, "
        f"drained {(clock() - recovery) / 60:.0f} min after recovery, "
        f"at most {max(function.receives.values())} receives of {MAX_RECEIVES}"
    )


def most_calls_while_down(seconds: int) -> int:
    """The breaker's defaults: 10 failures open it, then one probe per cool-down
    (60 s, doubling up to 15 min) for as long as Everflow stays down."""
    calls, elapsed, openings = 10, 0, 0
    while True:
        elapsed += min(900, 60 * 2**openings)
        if elapsed > seconds:
            return calls
        calls, openings = calls + 1, openings + 1


def test_the_template_keeps_a_job_through_a_six_hour_outage() -> None:
    # Given the queue the poster reads and the backoff it applies
    template = load_template(PROJECT_ROOT / "template.yaml")
    queue = template["Resources"]["PostbackQueue"]["Properties"]
    receives = int(queue["RedrivePolicy"]["maxReceiveCount"])
    # Then a job failing every receive stays out of the DLQ for six hours, with room for
    # the breaker's longest cool-down after Everflow is back, even at the shortest delays
    assert Backoff().least_time_before(receives) >= 6 * HOUR + 900
    assert receives == MAX_RECEIVES


def test_each_failed_record_comes_back_later_the_more_it_failed(
    aws: Aws,
    everflow: EverflowStandIn,
    network_api: FlakyNetworkApi,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a job, an Everflow answering 429 (nothing sent, no doubt), and the
    # shortest draw of the jitter: delays of 15 s, 30 s, 60 s …
    function = Lambda(aws, everflow, network_api, clock, monkeypatch)
    function.function.deps = dataclasses.replace(function.function.deps, draw=lambda: 0.0)
    aws.sqs.send_message(QueueUrl=function.queue_url, MessageBody=conversion_job(1))
    everflow.set_default({"status": 429})
    for delay in (15, 30, 60):
        # When its delivery fails
        assert function.poll_once() == 1
        # Then it stays away for its delay (not the queue's 360 s) and comes back
        clock.advance(delay - 1)
        assert function.poll_once() == 0
        clock.advance(2)
        everflow.set_default({"status": 200} if delay == 60 else {"status": 429})
    assert function.poll_once() == 1
    assert function.depth(function.queue_url) == 0
    assert [r.status for r in everflow.postbacks()] == [429, 429, 429, 200]


def test_a_failed_delay_leaves_the_record_to_the_visibility_timeout(
    aws: Aws,
    everflow: EverflowStandIn,
    network_api: FlakyNetworkApi,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Unavailable:
        def change_visibility(self, delays: Any) -> int:
            raise QueueUnavailableError("ChangeMessageVisibilityBatch failed: EndpointError")

    function = Lambda(aws, everflow, network_api, clock, monkeypatch)
    function.function.deps = dataclasses.replace(function.function.deps, retries=Unavailable())
    aws.sqs.send_message(QueueUrl=function.queue_url, MessageBody=conversion_job(1))
    everflow.set_default({"status": 503})
    # the record fails as it should; it comes back after the queue's own 360 s
    assert function.poll_once() == 1
    clock.advance(359)
    assert function.poll_once() == 0
    clock.advance(2)
    assert function.poll_once() == 1


# ------------------------------------------------------------------ the breaker itself


class CountingDynamoDB:
    """moto's DynamoDB client, counting the calls made."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self._dynamodb, name)


def _breakers(aws: Aws, count: int = 2) -> list[EverflowBreaker]:
    table = aws.resources.table_names["LedgerTable"]
    return [
        EverflowBreaker(
            table, aws.dynamodb, threshold=3, cooldown_seconds=60, max_cooldown_seconds=90
        )
        for _ in range(count)
    ]


def test_the_breaker_opens_after_a_run_of_failures_across_workers(aws: Aws) -> None:
    one, two = _breakers(aws)
    assert one.admit(1_000) == "closed"
    one.record(1_000, answered=0, failed=2)
    assert two.admit(1_001) == "closed"
    # the third failure in a row, on another worker, opens it for everyone
    two.record(1_001, answered=0, failed=1)
    assert one.admit(1_002) == "open"
    assert two.admit(1_060) == "open"


def test_an_answer_from_everflow_resets_the_run(aws: Aws) -> None:
    [one] = _breakers(aws, 1)
    one.admit(1_000)
    one.record(1_000, answered=0, failed=2)
    one.admit(1_001)
    one.record(1_001, answered=1, failed=1)  # Everflow answered: not a run of failures
    one.admit(1_002)
    one.record(1_002, answered=0, failed=2)
    assert one.admit(1_003) == "closed"


def test_after_the_cool_down_one_probe_goes_and_its_answer_closes_the_breaker(
    aws: Aws,
) -> None:
    one, two = _breakers(aws)
    one.admit(1_000)
    one.record(1_000, answered=0, failed=3)  # open until 1_060
    # after the cool-down one worker probes, the others wait
    assert one.admit(1_060) == "probe"
    assert two.admit(1_061) == "open"
    # a failed probe opens it again, for a longer cool-down (90 s)
    one.record(1_061, answered=0, failed=1)
    assert two.admit(1_150) == "open"
    assert two.admit(1_151) == "probe"
    # a probe that made no call gives the probe back
    two.record(1_152, answered=0, failed=0)
    assert one.admit(1_153) == "probe"
    # a probe Everflow answered closes it for everyone
    one.record(1_154, answered=1, failed=0)
    assert two.admit(1_155) == "closed"
    assert one.admit(1_156) == "closed"


def test_a_healthy_stream_costs_no_write_and_a_read_every_few_seconds(aws: Aws) -> None:
    counting = CountingDynamoDB(aws.dynamodb)
    breaker = EverflowBreaker(aws.resources.table_names["LedgerTable"], counting)
    for second in range(1_000, 1_060):
        assert breaker.admit(second) == "closed"
        breaker.record(second, answered=10, failed=0)
    assert counting.calls == Counter({"get_item": 12})
    item = aws.dynamodb.get_item(
        TableName=aws.resources.table_names["LedgerTable"], Key=BREAKER_KEY
    )
    assert "Item" not in item


def test_a_breaker_that_cannot_reach_its_table_lets_batches_through(aws: Aws) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        def __getattr__(self, name: str) -> Any:
            def call(**kwargs: Any) -> Any:
                raise EndpointConnectionError(endpoint_url="https://dynamodb.invalid")

            return call

    breaker = EverflowBreaker(aws.resources.table_names["LedgerTable"], Unreachable())
    assert breaker.admit(1_000) == "closed"
    breaker.record(1_000, answered=0, failed=10)  # not counted, nothing raised
    assert breaker.admit(1_001) == "closed"


def test_a_job_in_doubt_rides_out_an_outage_as_long_as_a_plain_failing_one(
    aws: Aws,
    everflow: EverflowStandIn,
    network_api: FlakyNetworkApi,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a job in doubt (its first postback answered 502: Everflow may hold it)
    function = Lambda(aws, everflow, network_api, clock, monkeypatch)
    doubt, plain = conversion_job(1), conversion_job(2)
    aws.sqs.send_message(QueueUrl=function.queue_url, MessageBody=doubt)
    everflow.set_default({"status": 502})
    assert function.poll_once() == 1
    assert function.function.ledger("conversion:default:in_outage001")["maybe_sent"] is True
    # and a plain job, as Everflow goes down for longer than any record rides out: the
    # Network API answers 503 (the doubt cannot be settled), postbacks 429 (no doubt)
    aws.sqs.send_message(QueueUrl=function.queue_url, MessageBody=plain)
    everflow.set_default({"status": 429})
    network_api.down = True
    first_failed = {"in_outage001": clock(), "in_outage002": None}
    seen: dict[str, float] = {}
    handle = function.function.app.handle

    def noting(event: dict[str, Any], deps: Any) -> Any:
        for record in event["Records"]:
            order = json.loads(record["body"])["job_key"].rsplit(":", 1)[-1]
            first_failed[order] = first_failed[order] or clock()
            seen[order] = clock()
        return handle(event, deps)

    monkeypatch.setattr(function.function.app, "handle", noting)

    # When the function keeps receiving them until both are set aside
    function.run_until(START + 2 * ride_out())

    # Then both went to PostbackDLQ after every receive, the job in doubt never sent
    # again while its lookup failed, and neither before the documented ride-out time
    assert function.depth(function.queue_url) == 0
    assert function.depth(function.dlq_url) == 2
    assert sorted(function.receives.values()) == [MAX_RECEIVES, MAX_RECEIVES]
    sent = Counter(dict(r.query)["order_id"] for r in everflow.postbacks())
    assert sent["in_outage001"] == 1
    for order, since in first_failed.items():
        assert since is not None
        assert seen[order] - since >= ride_out(), order


def ride_out() -> int:
    return Backoff().least_time_before(MAX_RECEIVES)
