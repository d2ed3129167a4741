"""Everflow as a click source, the lookup on a miss: MatchPaymentFunction in process on
moto, the Network API from the Everflow stand-in. The answer becomes a stored click;
"knows none" is remembered for a while and parks the payment; an outage or a 429
fails the record (SQS retries it) and parks nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow.domain.emails import email_hash, normalize_email
from stripe_everflow.domain.records import email_key, parked_email_pk
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from stripe_everflow_cli.provision import secret_parts
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline
from tests.support import bridge_secret, stripe_event

JENNY = "jenny.rosen@example.com"
JENNY_HASH = email_hash(normalize_email(JENNY), "test-email-hash-key")
DAY = 86_400
PAID_AT = 1_767_225_592  # invoice.paid.first's status_transitions.paid_at
NOW = PAID_AT + 600  # the bridge sees the payment ten minutes after it
EMAIL_REPORT = "/v1/networks/reporting/conversions/email"


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


def with_api_key(aws: Aws, api_key: str | None = "ef-api-key") -> None:
    document = bridge_secret(**({"everflow_api_key": api_key} if api_key else {}))
    for logical_id, text in secret_parts(json.dumps(document)).items():
        aws.secretsmanager.put_secret_value(
            SecretId=aws.resources.secret_arns[logical_id], SecretString=text
        )


def make_pipeline(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    api_key: str | None = "ef-api-key",
    **env: str,
) -> Pipeline:
    with_api_key(aws, api_key)
    env = {"CLICK_SOURCES": "api,stripe,everflow", **env}
    pipeline = build_pipeline(aws, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url, **env)
    at(pipeline, NOW)
    return pipeline


def at(pipeline: Pipeline, moment: int) -> None:
    """The matcher's, the lookup's and the store's clocks, at ``moment``."""
    matcher = pipeline.match_deps.matcher
    matcher.clock = lambda: moment
    matcher.store._clock = lambda: moment
    if matcher.everflow is not None:
        matcher.everflow.clock = lambda: moment


def signed_up(everflow: EverflowStandIn, tx: str = "ef_tx_jenny", **more: Any) -> str:
    """Everflow recorded jenny's sign-up (its step 1: the conversion with her email)."""
    fields = {
        "transaction_id": tx,
        "email": JENNY,
        "offer_id": 1,
        "affiliate_id": 7,
        "click_unix_timestamp": PAID_AT - 2 * DAY,
        "conversion_unix_timestamp": PAID_AT - DAY,
    }
    return everflow.add_conversion(**(fields | more))


def lookups(everflow: EverflowStandIn) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in everflow.requests(EMAIL_REPORT)]


def conversion_targets(jobs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted(
        (j["kind"], j["target"]["transaction_id"], j["target"]["matched_by"])
        for j in jobs
        if j["action"] == "conversion"
    )


def parked(pipeline: Pipeline) -> list[Any]:
    return pipeline.match_deps.matcher.store.parked(parked_email_pk(JENNY_HASH))


def failed(response: dict[str, Any]) -> int:
    return len(response.get("batchItemFailures", []))


def delivered_in_vain(pipeline: Pipeline, event: dict[str, Any]) -> bool:
    """Deliver a batch of one event; True when its record failed (a batch whose every
    record fails raises from the handler: Lambda then fails the whole batch)."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    try:
        return failed(pipeline.deliver_events(event)) == 1
    except BatchProcessingError:
        return True


def test_a_miss_asks_everflow_once_and_the_click_it_knows_is_stored(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Everflow recorded jenny's sign-up with her email (and a rebill event on it,
    # and a sign-up on another offer), and no click was posted to the bridge
    signed_up(everflow)
    signed_up(everflow, is_event=True, event="Rebill", conversion_unix_timestamp=PAID_AT - 3600)
    signed_up(everflow, tx="ef_tx_other_offer", offer_id=9, conversion_unix_timestamp=PAID_AT)
    pipeline = make_pipeline(aws, everflow, monkeypatch)
    # When her first invoice and her renewal are paid
    assert failed(pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))) == 0
    assert failed(pipeline.deliver_events(stripe_event("basil", "invoice.paid.renewal"))) == 0
    # Then the first payment went to the base conversion's click on the offer, the
    # renewal to the pin it set
    jobs = pipeline.jobs()
    assert conversion_targets(jobs) == [
        ("initial", "ef_tx_jenny", "everflow_lookup"),
        ("rebill", "ef_tx_jenny", "customer_pin"),
    ]
    first = next(j for j in jobs if j["kind"] == "initial")
    assert (first["target"]["offer_id"], first["target"]["affiliate_id"]) == ("1", "7")
    # and Everflow was asked once, by email, with the API key
    [request] = everflow.requests(EMAIL_REPORT)
    body = json.loads(request.body)
    assert body["email"] == JENNY and body["timezone_id"] == 67
    # and the click is stored under the email's hash, as Everflow's
    stored = pipeline.match_deps.matcher.store.get(email_key(JENNY_HASH))
    assert stored["clicks"]["ef_tx_jenny"]["source"] == "everflow"
    assert stored["clicks"]["ef_tx_jenny"]["occurred_at"] == PAID_AT - 2 * DAY
    assert "ef_tx_other_offer" not in stored["clicks"]


def test_the_next_payment_of_the_email_costs_no_call(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_up(everflow)
    pipeline = make_pipeline(aws, everflow, monkeypatch)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    # a payment of the same email by another customer (no pin to follow)
    other = stripe_event("basil", "invoice.paid.renewal")
    other["id"] = "evt_1QbridgeOtherCustomer"
    invoice = other["data"]["object"]
    invoice["id"], invoice["customer"] = "in_1QbridgeOther01", "cus_QbridgeOther01"
    pipeline.deliver_events(other)
    assert [t[1:] for t in conversion_targets(pipeline.jobs())] == [
        ("ef_tx_jenny", "everflow_lookup"),
        ("ef_tx_jenny", "email_first_touch"),
    ]
    assert len(lookups(everflow)) == 1


@pytest.mark.parametrize(
    ("policy", "expected"), [("first-touch", "ef_tx_early"), ("last-touch", "ef_tx_late")]
)
def test_the_attribution_policy_picks_among_everflows_clicks(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    expected: str,
) -> None:
    signed_up(everflow, tx="ef_tx_late", click_unix_timestamp=PAID_AT - DAY)
    signed_up(everflow, tx="ef_tx_early", click_unix_timestamp=PAID_AT - 9 * DAY)
    pipeline = make_pipeline(aws, everflow, monkeypatch, ATTRIBUTION_POLICY=policy)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert conversion_targets(pipeline.jobs()) == [("initial", expected, "everflow_lookup")]
    # both are stored: a later payment chooses among them without asking again
    stored = pipeline.match_deps.matcher.store.get(email_key(JENNY_HASH))
    assert set(stored["clicks"]) == {"ef_tx_early", "ef_tx_late"}


def test_the_lookup_asks_only_within_the_attribution_window(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given jenny's only sign-up is 40 days before her payment, the window 30 days
    signed_up(
        everflow,
        click_unix_timestamp=PAID_AT - 41 * DAY,
        conversion_unix_timestamp=PAID_AT - 40 * DAY,
    )
    pipeline = make_pipeline(aws, everflow, monkeypatch, ATTRIBUTION_WINDOW_DAYS="30")
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    # Then Everflow was asked from 30 days before the payment, knew nothing then, and
    # the payment waits
    [body] = lookups(everflow)
    assert body["from"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(PAID_AT - 30 * DAY))
    assert pipeline.jobs() == []
    assert len(parked(pipeline)) == 1


def test_a_click_inside_the_query_but_outside_the_window_does_not_count(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # converted within the window, but clicked before it
    signed_up(
        everflow,
        click_unix_timestamp=PAID_AT - 45 * DAY,
        conversion_unix_timestamp=PAID_AT - 2 * DAY,
    )
    pipeline = make_pipeline(aws, everflow, monkeypatch, ATTRIBUTION_WINDOW_DAYS="30")
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert pipeline.jobs() == []
    assert len(parked(pipeline)) == 1


def test_a_miss_is_remembered_so_a_burst_asks_once(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Everflow knows no click for jenny
    pipeline = make_pipeline(aws, everflow, monkeypatch)
    # When her first invoice and a retry of another event come in one batch, then
    # her renewal in the next
    first = stripe_event("basil", "invoice.paid.first")
    pipeline.deliver_events(first, first)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.renewal"))
    # Then Everflow was asked once, and both payments wait for a click
    assert len(lookups(everflow)) == 1
    assert pipeline.jobs() == []
    assert len(parked(pipeline)) == 2
    # And once the remembered miss has expired, the next payment asks again
    at(pipeline, NOW + 301)
    again = stripe_event("basil", "invoice.paid.renewal")
    again["id"] = "evt_1QbridgeRenewAgain"
    again["data"]["object"]["id"] = "in_1QbridgeRenew02"
    pipeline.deliver_events(again)
    assert len(lookups(everflow)) == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_everflow_unavailable_fails_the_record_and_parks_nothing(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    signed_up(everflow)
    pipeline = make_pipeline(aws, everflow, monkeypatch)
    everflow.script([{"status": status}])
    # When Everflow answers the lookup with an error
    # Then the record failed (SQS delivers it again), nothing was parked or sent, and
    # no miss was remembered
    assert delivered_in_vain(pipeline, stripe_event("basil", "invoice.paid.first"))
    assert pipeline.jobs() == [] and parked(pipeline) == []
    # And when SQS delivers it again, Everflow answers and the payment is matched
    assert failed(pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))) == 0
    assert conversion_targets(pipeline.jobs()) == [("initial", "ef_tx_jenny", "everflow_lookup")]


def test_no_answer_at_all_fails_the_record(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a port nothing listens on
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with_api_key(aws)
    pipeline = build_pipeline(
        aws, monkeypatch, EVERFLOW_API_BASE_URL=url, CLICK_SOURCES="api,stripe,everflow"
    )
    at(pipeline, NOW)
    assert delivered_in_vain(pipeline, stripe_event("basil", "invoice.paid.first"))
    assert pipeline.jobs() == [] and parked(pipeline) == []


@pytest.mark.parametrize(
    ("api_key", "env"),
    [(None, {}), ("ef-api-key", {"CLICK_SOURCES": "api,stripe"})],
    ids=["no-api-key", "everflow-not-a-source"],
)
def test_everflow_is_not_asked_without_a_key_or_when_not_a_source(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    api_key: str | None,
    env: dict[str, str],
) -> None:
    signed_up(everflow)
    pipeline = make_pipeline(aws, everflow, monkeypatch, api_key=api_key, **env)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert everflow.api_calls() == []
    assert pipeline.jobs() == [] and len(parked(pipeline)) == 1


def test_clicks_of_a_source_that_is_off_are_disregarded(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a click posted to POST /clicks while only Everflow and Stripe are sources
    pipeline = make_pipeline(aws, everflow, monkeypatch, CLICK_SOURCES="stripe,everflow")
    click = {"email": JENNY, "transaction_id": "ef_tx_api", "offer_id": 12}
    assert pipeline.post_clicks(click)[0] == 201
    signed_up(everflow)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    # Then Everflow's click attributes the payment, not the posted one
    assert conversion_targets(pipeline.jobs()) == [("initial", "ef_tx_jenny", "everflow_lookup")]


def test_a_hashed_email_is_not_looked_up(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a parked payment replayed carries its email's hash only)
    from stripe_everflow.domain.emails import redact_emails

    signed_up(everflow)
    pipeline = make_pipeline(aws, everflow, monkeypatch)
    event = redact_emails(stripe_event("basil", "invoice.paid.first"), "test-email-hash-key")
    pipeline.deliver_events(event)
    assert everflow.api_calls() == []
    assert len(parked(pipeline)) == 1


def test_a_hashed_email_is_looked_up_by_the_stripe_customers_address(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the webhook queued the event with its email hashed, and a restricted key
    # lets the matcher read the customer from Stripe
    from stripe_everflow.domain.emails import redact_emails
    from tests.stubs.stripe_api import running_stripe_stub

    signed_up(everflow)
    with running_stripe_stub() as stripe_api:
        stripe_api.customers["cus_QbridgeJenny01"] = {"email": JENNY, "metadata": {}}
        document = bridge_secret(everflow_api_key="ef-api-key")
        document["stripe_accounts"]["default"]["api_key"] = "rk_test_bridge"
        for logical_id, text in secret_parts(json.dumps(document)).items():
            aws.secretsmanager.put_secret_value(
                SecretId=aws.resources.secret_arns[logical_id], SecretString=text
            )
        pipeline = build_pipeline(
            aws,
            monkeypatch,
            EVERFLOW_API_BASE_URL=everflow.url,
            STRIPE_API_BASE=stripe_api.url,
            CLICK_SOURCES="api,stripe,everflow",
        )
        at(pipeline, NOW)
        event = redact_emails(stripe_event("basil", "invoice.paid.first"), "test-email-hash-key")
        pipeline.deliver_events(event)
    # Then Everflow was asked about the customer's address, and its click matched
    assert [body["email"] for body in lookups(everflow)] == [JENNY]
    assert conversion_targets(pipeline.jobs()) == [("initial", "ef_tx_jenny", "everflow_lookup")]


def test_everflow_is_not_a_source_by_default(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ClickSources defaults to api,stripe: an API key alone changes nothing
    signed_up(everflow)
    with_api_key(aws)
    pipeline = build_pipeline(aws, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url)
    at(pipeline, NOW)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert everflow.api_calls() == [] and len(parked(pipeline)) == 1
