"""PostEverflowFunction in process: LedgerTable and PostbackDLQ from moto (template.yaml),
Everflow from the local stand-in on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from stripe_everflow.domain.classify import ClassifySettings, classify_event
from stripe_everflow.domain.jobs import ClickTarget, EmailTarget, PostbackJob, StripeRefs
from stripe_everflow.posting.outcome import PostOutcome
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from tests.integration.conftest import Aws
from tests.integration.everflow_faults import FlakyNetworkApi, HangUp
from tests.integration.pipeline import Poster
from tests.support import bridge_secret, stripe_event


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def poster(aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch) -> Poster:
    return Poster(aws, everflow, monkeypatch)


def job(
    shape: str = "basil",
    name: str = "invoice.paid.first",
    *,
    kind: str = "initial",
    target: ClickTarget | EmailTarget | None = None,
    **changes: Any,
) -> str:
    event = stripe_event(shape, name)
    event["data"]["object"].update(changes)
    c = classify_event(event, ClassifySettings())
    return PostbackJob(
        job_key=f"conversion:default:{c.money_key}",
        action="conversion",
        account="default",
        livemode=False,
        classification=c,
        kind=kind,
        target=target or ClickTarget("ef_tx_1", "12", "7", "email_first_touch"),
    ).to_json()


def test_accepted_postback_is_recorded_as_posted(poster: Poster, everflow: EverflowStandIn) -> None:
    # When a conversion job is delivered
    response = poster.deliver(job())
    # Then Everflow got exactly this postback
    assert response == {"batchItemFailures": []}
    [request] = everflow.postbacks()
    assert request.query == [
        ("nid", "1"),
        ("transaction_id", "ef_tx_1"),
        ("event_id", "2"),
        ("amount", "49.00"),
        ("currency", "USD"),
        ("order_id", "in_1QbridgeFirst01"),
        ("adv1", "initial"),
        ("adv2", "sub_1QbridgeSub001"),
        ("adv3", "price_1QbridgeMonthly"),
    ]
    # and the ledger keeps what was sent, when, the answer and the conversion id
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert entry["status"] == "posted" and entry["http_status"] == 200
    assert entry["conversion_id"] == json.loads(entry["response_body"])["conversion_id"]
    assert entry["sent_url"].startswith(everflow.url + "/?nid=1&transaction_id=ef_tx_1")
    assert entry["posted_at"] and entry["invoice_id"] == "in_1QbridgeFirst01"


def test_duplicate_jobs_and_redeliveries_make_one_call(
    poster: Poster, everflow: EverflowStandIn
) -> None:
    one = job()
    poster.deliver(one, one, one)
    poster.deliver(one)
    assert len(everflow.postbacks()) == 1


def test_concurrent_workers_make_one_call(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two function instances (their ledgers on one atomic DynamoDB, see
    # pipeline.AtomicDynamoDB) and a slow Everflow
    first, second = Poster(aws, everflow, monkeypatch), Poster(aws, everflow, monkeypatch)
    everflow.set_default({"status": 200, "delay": 0.3})
    one = job()
    # When both get the same job at the same moment
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda p: p.deliver(one), (first, second)))
    # Then one posts it, the other backs off (its record is retried later) …
    assert len(everflow.postbacks()) == 1
    assert sorted(len(r["batchItemFailures"]) for r in responses) == [0, 1]
    # … and its retry finds the job done
    assert second.deliver(one) == {"batchItemFailures": []}
    assert len(everflow.postbacks()) == 1


def test_bodyless_204_is_recorded_as_rejected_and_not_retried(
    poster: Poster, everflow: EverflowStandIn
) -> None:
    everflow.script([{"status": 204}])
    assert poster.deliver(job()) == {"batchItemFailures": []}
    assert poster.ledger("conversion:default:in_1QbridgeFirst01")["status"] == "rejected"
    poster.deliver(job())
    assert len(everflow.postbacks()) == 1


@pytest.mark.parametrize(
    "answer", [{"status": 429}, {"status": 500}, {"status": 503}, {"status": 200, "delay": 1.0}]
)
def test_retryable_answers_fail_the_record_for_sqs_to_retry(
    poster: Poster, everflow: EverflowStandIn, answer: dict[str, Any]
) -> None:
    everflow.script([answer])
    response = poster.deliver(job())
    assert len(response["batchItemFailures"]) == 1
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert entry["status"] == "retryable"
    # the redelivery posts it
    assert poster.deliver(job()) == {"batchItemFailures": []}
    assert poster.ledger("conversion:default:in_1QbridgeFirst01")["status"] == "posted"


def test_connection_refused_is_retryable(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given nothing listens where the postbacks go
    poster = Poster(aws, everflow, monkeypatch)
    poster.deps.poster.postback = dataclasses.replace(
        poster.deps.poster.postback, base_url="http://127.0.0.1:9"
    )
    # When a job is delivered, then its record fails and the ledger says why
    response = poster.deliver(job())
    assert len(response["batchItemFailures"]) == 1
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert entry["status"] == "retryable" and "ConnectionRefused" in entry["last_error"]


def test_everflow_down_for_a_while_then_every_conversion_posted_once(
    poster: Poster, everflow: EverflowStandIn
) -> None:
    # Given Everflow fails the next 7 requests
    everflow.script([{"status": 503, "times": 7}])
    jobs = [
        job(),
        job("basil", "invoice.paid.renewal", kind="rebill"),
        job("basil", "checkout.session.completed.payment"),
    ]
    # When SQS keeps redelivering what failed
    pending = list(jobs)
    for _ in range(6):
        response = poster.deliver(*pending)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        pending = [j for i, j in enumerate(pending) if any(f.startswith(f"m{i}-") for f in failed)]
        if not pending:
            break
    # Then each conversion was accepted exactly once
    accepted = [r for r in everflow.postbacks() if r.status == 200]
    assert sorted(dict(r.query)["order_id"] for r in accepted) == [
        "in_1QbridgeFirst01",
        "in_1QbridgeRenew01",
        "pi_3QbridgeOneOff01",
    ]
    assert pending == []


def test_permanent_4xx_goes_to_the_dlq_with_the_reason(
    poster: Poster, everflow: EverflowStandIn, aws: Aws
) -> None:
    everflow.script([{"status": 400, "body": '{"error": "invalid offer"}'}])
    assert poster.deliver(job()) == {"batchItemFailures": []}
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert (entry["status"], entry["http_status"]) == ("failed", 400)
    assert "invalid offer" in entry["response_body"]
    assert entry["failure_reason"] == "Everflow answered 400"
    [dead] = aws.drain("PostbackDLQ")
    assert dead["Body"]["job_key"] == "conversion:default:in_1QbridgeFirst01"
    assert dead["MessageAttributes"]["failure_reason"]["StringValue"] == "Everflow answered 400"


@pytest.mark.parametrize(
    ("name", "changes", "currency", "amount_minor", "expected"),
    [
        ("invoice.paid.first", {}, "usd", 4900, "49.00"),
        ("invoice.paid.first", {}, "jpy", 4900, "4900"),
        ("invoice.paid.first", {}, "kwd", 4900, "4.900"),
        ("invoice.paid.first", {}, "bhd", 1, "0.001"),
    ],
)
def test_amounts_are_exact_in_each_currency(
    poster: Poster,
    everflow: EverflowStandIn,
    name: str,
    changes: dict[str, Any],
    currency: str,
    amount_minor: int,
    expected: str,
) -> None:
    poster.deliver(
        job(
            "basil",
            name,
            currency=currency,
            amount_paid=amount_minor,
            total=amount_minor,
            total_excluding_tax=amount_minor,
            **changes,
        )
    )
    params = dict(everflow.postbacks()[0].query)
    assert (params["amount"], params["currency"]) == (expected, currency.upper())


def test_advertiser_event_replaces_the_offer_event(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    poster = Poster(aws, everflow, monkeypatch, EVERFLOW_ADVERTISER_EVENT_ID="44")
    poster.deliver(job())
    params = dict(everflow.postbacks()[0].query)
    assert params["adv_event_id"] == "44" and "event_id" not in params


def test_price_rules_choose_other_events_for_initial_and_rebill(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = [
        {"price": "price_1QbridgeMonthly", "initial": {"event_id": 7}, "rebill": {"event_id": 8}},
        {"product": "prod_other", "initial": {"event_id": 9}},
    ]
    poster = Poster(aws, everflow, monkeypatch, EVERFLOW_TARGET_RULES=json.dumps(rules))
    poster.deliver(
        job(),
        job("basil", "invoice.paid.renewal", kind="rebill"),
        job("basil", "checkout.session.completed.payment"),
    )
    by_order = {
        dict(r.query)["order_id"]: dict(r.query).get("event_id") for r in everflow.postbacks()
    }
    assert by_order == {
        "in_1QbridgeFirst01": "7",
        "in_1QbridgeRenew01": "8",
        "pi_3QbridgeOneOff01": "2",
    }


def test_verification_token_is_sent_but_never_recorded(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = bridge_secret(everflow_verification_token="tok_s3cret")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    poster = Poster(aws, everflow, monkeypatch)
    poster.deliver(job())
    assert dict(everflow.postbacks()[0].query)["verification_token"] == "tok_s3cret"
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert "tok_s3cret" not in json.dumps(entry, default=str)
    assert "verification_token=REDACTED" in entry["sent_url"]


def test_email_attribution_posts_offer_and_email_without_transaction_id(
    poster: Poster, everflow: EverflowStandIn
) -> None:
    poster.deliver(job(target=EmailTarget("jenny.rosen@example.com")))
    params = dict(everflow.postbacks()[0].query)
    assert (params["oid"], params["email"]) == ("1", "jenny.rosen@example.com")
    assert "transaction_id" not in params


def test_malformed_job_fails_its_record_only(poster: Poster, everflow: EverflowStandIn) -> None:
    response = poster.deliver("{not json", job())
    assert [f["itemIdentifier"][:2] for f in response["batchItemFailures"]] == ["m0"]
    assert len(everflow.postbacks()) == 1


def test_everflow_calls_reuse_connections(poster: Poster, everflow: EverflowStandIn) -> None:
    poster.deliver(job())
    first_connections = set(everflow.connections)
    for n in range(3):
        poster.deliver(job(id=f"in_reuse{n}"))
    assert set(everflow.connections) == first_connections
    assert len(threading.enumerate()) < 60


def _crash_after_everflow_answered(poster: Poster, one: str) -> None:
    """An attempt that took the job and reached Everflow, then died before recording."""
    taken = PostbackJob.from_json(one)
    assert poster.deps.poster.ledger.begin(taken, "crashed-attempt", 1_000, 60) == "go"
    client = poster.deps.poster.client
    client.get(
        poster.everflow.url,
        [
            ("nid", "1"),
            ("transaction_id", "ef_tx_1"),
            ("event_id", "2"),
            ("order_id", "in_1QbridgeFirst01"),
        ],
    )


def test_crash_window_is_closed_through_the_network_api(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an Everflow API key, and a worker that crashed after Everflow recorded the job
    secret = bridge_secret(everflow_api_key="ef_api_key")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    poster = Poster(aws, everflow, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url)
    one = job()
    _crash_after_everflow_answered(poster, one)
    # When the job comes back after the crashed attempt's lease ran out
    poster.deps.poster.clock = lambda: 2_000
    assert poster.deliver(one) == {"batchItemFailures": []}
    # Then Everflow is asked, not posted to again, and the ledger learns the conversion id
    assert len(everflow.postbacks()) == 1
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert (entry["status"], entry["recovered_by"]) == ("posted", "network_api")
    assert entry["conversion_id"] == everflow.postbacks()[0].conversion_id


def test_without_an_api_key_the_crash_window_resends_once(
    poster: Poster, everflow: EverflowStandIn
) -> None:
    one = job()
    _crash_after_everflow_answered(poster, one)
    # a live lease holds the job: the redelivery backs off
    poster.deps.poster.clock = lambda: 1_030
    assert len(poster.deliver(one)["batchItemFailures"]) == 1
    # after the lease, the job is sent again: the one documented duplicate
    poster.deps.poster.clock = lambda: 2_000
    assert poster.deliver(one) == {"batchItemFailures": []}
    assert len(everflow.postbacks()) == 2


# ------------------------------------------------------------------ from the code review


def test_after_a_timeout_everflow_is_asked_before_posting_again(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an API key, and Everflow recording the conversion but answering too late
    secret = bridge_secret(everflow_api_key="ef_api_key")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    poster = Poster(aws, everflow, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url)
    everflow.script([{"status": 200, "delay": 1.0}])
    assert len(poster.deliver(job())["batchItemFailures"]) == 1
    deadline = time.monotonic() + 5  # SQS redelivers minutes later; Everflow has it by then
    while not everflow.postbacks() and time.monotonic() < deadline:
        time.sleep(0.05)
    # When the job comes back, then the lookup finds it and nothing is posted again
    assert poster.deliver(job()) == {"batchItemFailures": []}
    assert len(everflow.postbacks()) == 1
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert (entry["status"], entry["recovered_by"]) == ("posted", "network_api")


def test_a_permanently_refused_job_is_tried_again_when_redriven(
    poster: Poster, everflow: EverflowStandIn
) -> None:
    everflow.script([{"status": 400}])
    poster.deliver(job())
    assert poster.ledger("conversion:default:in_1QbridgeFirst01")["status"] == "failed"
    # the operator fixed the cause and ran `stripe-everflow redrive postbacks`
    assert poster.deliver(job()) == {"batchItemFailures": []}
    assert poster.ledger("conversion:default:in_1QbridgeFirst01")["status"] == "posted"
    assert [r.status for r in everflow.postbacks()] == [400, 200]


def test_an_encoded_verification_token_is_redacted_too(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = bridge_secret(everflow_verification_token="a+b/c=d&e")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    poster = Poster(aws, everflow, monkeypatch)
    poster.deliver(job())
    assert dict(everflow.postbacks()[0].query)["verification_token"] == "a+b/c=d&e"
    sent = poster.ledger("conversion:default:in_1QbridgeFirst01")["sent_url"]
    assert "verification_token=REDACTED" in sent and "a%2Bb" not in sent


# ------------------------------------------------------------------ doubt carried forward


@pytest.fixture
def flaky_api(everflow: EverflowStandIn) -> Iterator[FlakyNetworkApi]:
    api = FlakyNetworkApi(everflow.url)
    yield api
    api.stop()


def _with_api_key(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch, api_url: str
) -> Poster:
    secret = bridge_secret(everflow_api_key="ef_api_key")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    return Poster(aws, everflow, monkeypatch, EVERFLOW_API_BASE_URL=api_url)


def _wait_for_postbacks(everflow: EverflowStandIn, count: int) -> None:
    deadline = time.monotonic() + 5  # SQS redelivers minutes later; Everflow has it by then
    while len(everflow.postbacks()) < count and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("doubt", ["timeout", "503", "crash"])
@pytest.mark.parametrize("lookup_failure", [503, 429, "slow"])
def test_a_job_in_doubt_stays_in_doubt_until_a_lookup_answers(
    aws: Aws,
    everflow: EverflowStandIn,
    flaky_api: FlakyNetworkApi,
    monkeypatch: pytest.MonkeyPatch,
    doubt: str,
    lookup_failure: int | str,
) -> None:
    # Given an API key, and a first attempt that may have reached Everflow
    poster = _with_api_key(aws, everflow, monkeypatch, flaky_api.url)
    network_api = poster.deps.poster.network_api
    network_api._timeouts = (0.5, 0.5)  # a slow lookup times out quickly
    one = job()
    if doubt == "crash":
        _crash_after_everflow_answered(poster, one)
        poster.deps.poster.clock = lambda: 2_000  # the crashed attempt's lease ran out
    else:
        everflow.script([{"status": 200, "delay": 1.0} if doubt == "timeout" else {"status": 503}])
        assert len(poster.deliver(one)["batchItemFailures"]) == 1
        _wait_for_postbacks(everflow, 1)
    sent = len(everflow.postbacks())
    # When the lookups of the next three deliveries fail
    flaky_api.fail(lookup_failure, lookup_failure, lookup_failure)
    for _ in range(3):
        response = poster.deliver(one)
        # Then nothing is posted again while Everflow cannot tell what it holds
        assert len(everflow.postbacks()) == sent
        assert len(response["batchItemFailures"]) == 1
    assert poster.ledger("conversion:default:in_1QbridgeFirst01")["maybe_sent"] is True
    # and once a lookup answers, the conversion is in Everflow exactly once
    assert poster.deliver(one) == {"batchItemFailures": []}
    accepted = [r for r in everflow.postbacks() if r.status == 200]
    assert len(accepted) == 1
    assert [failure for _, _, failure in flaky_api.calls] == [lookup_failure] * 3 + [None]
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert entry["status"] == "posted"
    if doubt != "503":  # after a 503 Everflow held nothing: the lookup says so, it is posted
        assert entry["recovered_by"] == "network_api"


@pytest.mark.parametrize(
    ("where", "maybe_sent"), [("hang-up", True), ("refused", False)], ids=["hang-up", "refused"]
)
def test_a_request_that_left_is_in_doubt_a_refused_one_is_not(
    poster: Poster, where: str, maybe_sent: bool
) -> None:
    # Given a tracking domain that hangs up once it has the request, or refuses it
    server = HangUp()
    try:
        url = server.url if where == "hang-up" else "http://127.0.0.1:9"
        poster.deps.poster.postback = dataclasses.replace(poster.deps.poster.postback, base_url=url)
        # When a job is sent there
        assert len(poster.deliver(job())["batchItemFailures"]) == 1
    finally:
        server.stop()
    # Then the ledger keeps whether Everflow may have it
    entry = poster.ledger("conversion:default:in_1QbridgeFirst01")
    assert (entry["status"], entry["maybe_sent"]) == ("retryable", maybe_sent)


def test_every_release_carries_the_doubt_forward(poster: Poster) -> None:
    ledger = poster.deps.poster.ledger
    one = PostbackJob.from_json(job())
    # a release that does not say the request stayed home keeps the job in doubt …
    assert ledger.begin(one, "a1", 1_000, 60) == "go"
    ledger.release(one.job_key, "a1", 1_001, {"last_error": "lookup failed"})
    assert ledger.begin(one, "a2", 1_002, 60) == "resume"
    # … and so does one after a crashed attempt's lease ran out …
    assert ledger.begin(one, "a3", 2_000, 60) == "resume"
    ledger.release(one.job_key, "a3", 2_001, {"last_error": "lookup failed"})
    assert ledger.begin(one, "a4", 2_002, 60) == "resume"
    # … until an attempt that knows nothing reached Everflow says so
    ledger.release(one.job_key, "a4", 2_003, {"last_error": "429"}, maybe_sent=False)
    assert ledger.begin(one, "a5", 2_004, 60) == "go"


# ------------------------------------------------------------------ the Network API budget


def test_recovery_lookups_go_through_the_shared_network_api_budget(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a budget of 2 Network API calls a second, and five jobs left in doubt
    secret = bridge_secret(everflow_api_key="ef_api_key")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    poster = Poster(
        aws,
        everflow,
        monkeypatch,
        EVERFLOW_API_BASE_URL=everflow.url,
        EVERFLOW_API_CALLS_PER_SECOND="2",
    )
    jobs = [job(id=f"in_budget{n}") for n in range(5)]
    for one in jobs:
        assert poster.deps.poster.ledger.begin(PostbackJob.from_json(one), "crashed", 1_000, 60)
    poster.deps.poster.clock = lambda: 2_000
    # When they are recovered (one a batch: moto's DynamoDB is not atomic across threads)
    for one in jobs:
        assert poster.deliver(one) == {"batchItemFailures": []}
    # Then every lookup took a slot of the budget in LedgerTable, never more than 2 a second
    assert len(everflow.api_calls()) == 5
    windows = [
        int(item["calls"]["N"])
        for item in aws.dynamodb.scan(TableName=aws.resources.table_names["LedgerTable"])["Items"]
        if item["pk"]["S"].startswith("ratelimit#everflow-api#")
    ]
    assert sum(windows) == 5 and max(windows) <= 2


# ------------------------------------------------------------------ per-charge ordering


def test_the_handler_posts_the_refund_states_of_a_charge_in_order_one_at_a_time(
    poster: Poster,
) -> None:
    # Given a poster that notes when each job starts and ends (and takes its time)
    events: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def post_job(job: PostbackJob, body: str) -> PostOutcome:
        with lock:
            events.append(("start", str(job.stripe.charge_id), job.job_key))
        time.sleep(0.02)  # widens the window two states of one charge could share
        with lock:
            events.append(("end", str(job.stripe.charge_id), job.job_key))
        return PostOutcome("recorded", job.job_key)

    poster.deps.poster.post_job = post_job  # type: ignore[method-assign]
    states = [refund_job("ch_1", amount) for amount in (1000, 2000, 4900)]
    # When the refund states of one charge come in one batch, among other jobs
    response = poster.deliver(states[0], job(), states[1], refund_job("ch_2", 500), states[2])
    # Then they were posted in the batch's order, each after the one before had ended
    assert response == {"batchItemFailures": []}
    ch_1 = [(what, key) for what, charge, key in events if charge == "ch_1"]
    keys = [PostbackJob.from_json(s).job_key for s in states]
    assert ch_1 == [(what, key) for key in keys for what in ("start", "end")]


def refund_job(charge: str, refunded_minor: int) -> str:
    return PostbackJob(
        f"refund:default:{charge}:{refunded_minor}",
        "refund",
        "default",
        False,
        amount_refunded=Decimal(refunded_minor) / 100,
        stripe=StripeRefs(charge_id=charge),
    ).to_json()
