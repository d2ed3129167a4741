"""Refunds and disputes end to end in process: clicks and Stripe events through the
matcher, jobs through PostEverflowFunction, Everflow from the local stand-in."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow_cli.everflow_standin import EverflowStandIn
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, Poster, build_pipeline
from tests.support import bridge_secret, stripe_event

RENEW_JOB = "conversion:default:in_1QbridgeRenew01"
REFUNDED_AT = 1770735601  # the created of events/'s charge.refunded


def refund_key(
    refunded_minor: int, charge: str = "ch_3QbridgeRenew01", at: int = REFUNDED_AT
) -> str:
    """The job of one refund state: the charge's cumulative refunded amount, and when."""
    return f"refund:default:{charge}:{refunded_minor}@{at}"


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


class Bridge:
    """Matcher and poster wired as SQS would: PostbackQueue drained into the poster."""

    def __init__(
        self,
        aws: Aws,
        everflow: EverflowStandIn,
        monkeypatch: pytest.MonkeyPatch,
        api_key: bool = True,
        **env: str,
    ) -> None:
        secret = bridge_secret()
        if api_key:
            secret["everflow_api_key"] = "ef_api_key"
        aws.secretsmanager.put_secret_value(
            SecretId="BridgeSecret", SecretString=json.dumps(secret)
        )
        self.aws, self.everflow = aws, everflow
        self.pipeline: Pipeline = build_pipeline(aws, monkeypatch, **env)
        self.poster = Poster(aws, everflow, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url, **env)
        self.pipeline.post_clicks({"email": "jenny.rosen@example.com", "transaction_id": "ef_tx_1"})

    def stripe(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        """Deliver events, post what they produce; returns the poster's batch responses."""
        self.pipeline.deliver_events(*events)
        self.pipeline.run_replays()
        return self.post_pending()

    def post_pending(self) -> list[dict[str, Any]]:
        """One job per batch: moto's in-process DynamoDB is not atomic across threads
        (real DynamoDB is), so concurrency is tested apart, with a slow Everflow."""
        return [self.poster.deliver(json.dumps(m["Body"])) for m in self.aws.drain("PostbackQueue")]

    def ledger(self, job_key: str) -> dict[str, Any]:
        return self.poster.ledger(job_key)


@pytest.fixture
def bridge(aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch) -> Bridge:
    return Bridge(aws, everflow, monkeypatch)


def refunded(
    shape: str,
    refunded_minor: int,
    *,
    event_id: str | None = None,
    currency: str = "usd",
    amount: int = 4900,
    created: int | None = None,
) -> dict[str, Any]:
    event = copy.deepcopy(stripe_event(shape, "charge.refunded"))
    event["id"] = event_id or f"evt_refund_{refunded_minor}"
    if created is not None:
        event["created"] = created
    event["data"]["object"].update(
        amount_refunded=refunded_minor,
        refunded=refunded_minor >= amount,
        currency=currency,
        amount=amount,
        amount_captured=amount,
    )
    return event


def renewal(shape: str = "legacy", **changes: Any) -> dict[str, Any]:
    event = stripe_event(shape, "invoice.paid.renewal")
    event["data"]["object"].update(changes)
    return event


def test_full_refund_reverses_the_conversion_by_its_id(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    conversion_id = bridge.ledger(RENEW_JOB)["conversion_id"]
    bridge.stripe(refunded("legacy", 4900))
    [reversal] = everflow.reversals()
    assert dict(reversal.query) == {"nid": "1", "conversion_id": conversion_id}
    assert bridge.ledger(RENEW_JOB)["everflow_state"] == "reversed"
    entry = bridge.ledger(refund_key(4900))
    assert (entry["status"], entry["everflow_action"]) == ("reversed", "reverse")


def test_reversal_falls_back_to_the_order_id(bridge: Bridge, everflow: EverflowStandIn) -> None:
    # Given Everflow answered the conversion without a conversion id
    everflow.script([{"status": 200, "body": "OK"}])
    bridge.stripe(renewal())
    bridge.poster.deps.poster.network_api = None  # and no lookup is possible
    bridge.stripe(refunded("legacy", 4900))
    [reversal] = everflow.reversals()
    assert dict(reversal.query) == {"nid": "1", "order_id": "in_1QbridgeRenew01"}


def test_partial_refunds_compose_then_a_full_refund_reverses(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    conversion_id = bridge.ledger(RENEW_JOB)["conversion_id"]
    bridge.stripe(refunded("legacy", 1500))
    bridge.stripe(refunded("legacy", 2400))
    bridge.stripe(refunded("legacy", 4900))
    amounts = [json.loads(r.body) for r in everflow.api_calls() if r.method == "PUT"]
    assert [a["sale_amount"] for a in amounts] == [34.0, 25.0]
    assert {r.path for r in everflow.api_calls() if r.method == "PUT"} == {
        f"/v1/networks/reporting/conversions/{conversion_id}/saleamount"
    }
    assert all(a["is_event"] is True for a in amounts)
    assert len(everflow.reversals()) == 1


def test_an_older_refund_state_arriving_late_changes_nothing(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 2400))
    bridge.stripe(refunded("legacy", 1500))  # delivered late
    puts = [json.loads(r.body)["sale_amount"] for r in everflow.api_calls() if r.method == "PUT"]
    assert puts == [25.0]
    assert bridge.ledger(refund_key(1500))["status"] == "superseded"


def test_duplicate_refund_events_make_one_call(bridge: Bridge, everflow: EverflowStandIn) -> None:
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500), refunded("legacy", 1500, event_id="evt_dup"))
    bridge.stripe(refunded("legacy", 1500))
    assert len([r for r in everflow.api_calls() if r.method == "PUT"]) == 1


def test_refund_before_its_conversion_is_posted_waits_for_it(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # Given the conversion's postback keeps failing for now
    everflow.script([{"status": 503, "times": 2}])
    bridge.pipeline.deliver_events(renewal())
    conversion_job = bridge.aws.drain("PostbackQueue")
    assert (
        len(bridge.poster.deliver(json.dumps(conversion_job[0]["Body"]))["batchItemFailures"]) == 1
    )
    # When the full refund arrives, it fails its record (SQS will retry it)
    [response] = bridge.stripe(refunded("legacy", 4900))
    assert len(response["batchItemFailures"]) == 1
    assert everflow.reversals() == []
    refund_job = json.dumps(json.loads(bridge.ledger(refund_key(4900))["job"]))
    # Then once the conversion is posted, the retried refund reverses it
    bridge.poster.deliver(json.dumps(conversion_job[0]["Body"]))
    bridge.poster.deliver(json.dumps(conversion_job[0]["Body"]))
    assert bridge.poster.deliver(refund_job) == {"batchItemFailures": []}
    assert len(everflow.reversals()) == 1


def test_refund_of_a_payment_never_attributed_is_not_ours(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    other = refunded("legacy", 4900)
    other["data"]["object"].update(
        id="ch_unknown", invoice="in_unknown", payment_intent="pi_unknown"
    )
    # The payment may still come (Stripe does not order events): the refund waits in
    # the matcher, and nothing of it reaches the poster or Everflow.
    assert bridge.stripe(other) == []
    assert bridge.poster.deps.poster.ledger.get(refund_key(4900, "ch_unknown")) is None
    assert everflow.reversals() == [] and everflow.api_calls() == []


@pytest.mark.parametrize(
    ("currency", "amount", "refund", "expected"),
    [("jpy", 5000, 1200, 3800.0), ("kwd", 4900, 1225, 3.675)],
)
def test_partial_refunds_in_zero_and_three_decimal_currencies(
    bridge: Bridge,
    everflow: EverflowStandIn,
    currency: str,
    amount: int,
    refund: int,
    expected: float,
) -> None:
    bridge.stripe(
        renewal(currency=currency, amount_paid=amount, total=amount, total_excluding_tax=amount)
    )
    bridge.stripe(refunded("legacy", refund, currency=currency, amount=amount))
    [put] = [json.loads(r.body) for r in everflow.api_calls() if r.method == "PUT"]
    assert put["sale_amount"] == expected


def test_basil_refund_finds_its_invoice_through_the_payment_link(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    # basil: the charge names no invoice; invoice_payment.paid links its intent to it
    bridge.stripe(stripe_event("basil", "invoice_payment.paid.renewal"), renewal("basil"))
    bridge.stripe(refunded("basil", 4900))
    assert len(everflow.reversals()) == 1


def test_dispute_opened_reverses_and_a_won_dispute_restores(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    first = stripe_event("legacy", "invoice.paid.first")
    bridge.stripe(first)
    conversion_id = bridge.ledger("conversion:default:in_1QbridgeFirst01")["conversion_id"]
    bridge.stripe(stripe_event("legacy", "charge.dispute.created"))
    assert len(everflow.reversals()) == 1
    bridge.stripe(stripe_event("legacy", "charge.dispute.closed"))  # won
    [patch] = [r for r in everflow.api_calls() if r.method == "PATCH"]
    assert json.loads(patch.body) == {
        "conversion_ids": [conversion_id],
        "conversion_status": "approved",
    }
    assert bridge.ledger("conversion:default:in_1QbridgeFirst01")["everflow_state"] == "approved"


def test_with_on_lost_only_a_lost_dispute_reverses(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = Bridge(aws, everflow, monkeypatch, DISPUTE_POLICY="on-lost")
    bridge.stripe(stripe_event("legacy", "invoice.paid.first"))
    bridge.stripe(stripe_event("legacy", "charge.dispute.created"))
    assert everflow.reversals() == []
    lost = stripe_event("legacy", "charge.dispute.closed")
    lost["id"] = "evt_dispute_lost"
    lost["data"]["object"]["status"] = "lost"
    bridge.stripe(lost)
    assert len(everflow.reversals()) == 1


@pytest.mark.parametrize(("fallback", "reversals"), [("record-only", 0), ("reverse", 1)])
def test_without_an_api_key_partial_refunds_follow_the_fallback(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    fallback: str,
    reversals: int,
) -> None:
    bridge = Bridge(aws, everflow, monkeypatch, api_key=False, PARTIAL_REFUND_FALLBACK=fallback)
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500))
    assert len(everflow.reversals()) == reversals
    assert everflow.api_calls() == []
    expected = "recorded" if fallback == "record-only" else "reversed"
    assert bridge.ledger(refund_key(1500))["status"] == expected


# ------------------------------------------------------------------ from the code review


def _dispute(name: str, status: str, event_id: str) -> dict[str, Any]:
    event = stripe_event("legacy", name)
    event["id"] = event_id
    event["data"]["object"].update(
        charge="ch_3QbridgeRenew01", payment_intent="pi_3QbridgeRenew01", status=status
    )
    return event


def test_a_won_dispute_never_reapproves_a_refunded_conversion(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 4900))
    bridge.stripe(_dispute("charge.dispute.created", "needs_response", "evt_dp_open"))
    bridge.stripe(_dispute("charge.dispute.closed", "won", "evt_dp_won"))
    assert [r for r in everflow.api_calls() if r.method == "PATCH"] == []
    assert bridge.ledger(RENEW_JOB)["everflow_state"] == "reversed"


def test_a_dispute_closed_before_it_is_seen_opened_keeps_its_outcome(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    bridge.stripe(_dispute("charge.dispute.closed", "won", "evt_dp_won"))
    bridge.stripe(_dispute("charge.dispute.created", "needs_response", "evt_dp_open"))
    assert everflow.reversals() == []
    assert bridge.ledger(RENEW_JOB).get("everflow_state") in (None, "approved")


def test_finished_refund_jobs_delivered_again_are_acknowledged(
    bridge: Bridge, everflow: EverflowStandIn
) -> None:
    bridge.stripe(renewal())
    bridge.stripe(refunded("legacy", 1500))
    again = json.dumps(json.loads(bridge.ledger(refund_key(1500))["job"]))
    assert bridge.poster.deliver(again) == {"batchItemFailures": []}
    assert len([r for r in everflow.api_calls() if r.method == "PUT"]) == 1


def test_refund_of_a_parked_payment_waits_for_its_conversion(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = Bridge(aws, everflow, monkeypatch)
    # Given a renewal of a customer with no click yet: parked
    parked = renewal(customer="cus_later", customer_email="later@example.com")
    bridge.stripe(parked)
    # When it is refunded in full before the click arrives, the refund waits with it …
    assert bridge.stripe(refunded("legacy", 4900)) == []
    assert everflow.reversals() == []
    # … and once the click matches the payment, the refund follows it and reverses it
    bridge.pipeline.post_clicks({"email": "later@example.com", "transaction_id": "ef_tx_later"})
    while bridge.pipeline.run_replays():
        bridge.post_pending()
    bridge.post_pending()
    assert bridge.ledger(RENEW_JOB)["status"] == "posted"
    assert bridge.ledger(refund_key(4900))["status"] == "reversed"
    assert len(everflow.reversals()) == 1


def test_without_an_api_key_a_won_dispute_is_recorded_as_needing_the_key(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no Everflow API key, and a chargeback that reversed a conversion
    bridge = Bridge(aws, everflow, monkeypatch, api_key=False)
    bridge.stripe(stripe_event("legacy", "invoice.paid.first"))
    bridge.stripe(stripe_event("legacy", "charge.dispute.created"))
    assert len(everflow.reversals()) == 1
    # When the dispute is won: approving the conversion again needs the Network API
    responses = bridge.stripe(stripe_event("legacy", "charge.dispute.closed"))
    # Then the job is done, not retried in vain nor dead-lettered: its outcome says a
    # restore needs the key, and the conversion stays reversed
    assert responses == [{"batchItemFailures": []}]
    entry = bridge.ledger("dispute_closed:default:dp_1QbridgeDispute01:won")
    assert (entry["status"], entry["needed"]) == ("restore_needs_key", "restore")
    assert aws.drain("PostbackDLQ") == []
    assert everflow.api_calls() == []
    conversion = bridge.ledger("conversion:default:in_1QbridgeFirst01")
    assert conversion["everflow_state"] == "reversed"


def test_a_job_that_needed_the_key_restores_when_delivered_again_with_it(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a won dispute recorded as needing the API key
    bridge = Bridge(aws, everflow, monkeypatch, api_key=False)
    bridge.stripe(stripe_event("legacy", "invoice.paid.first"))
    bridge.stripe(stripe_event("legacy", "charge.dispute.created"))
    bridge.stripe(stripe_event("legacy", "charge.dispute.closed"))
    won = bridge.ledger("dispute_closed:default:dp_1QbridgeDispute01:won")
    # When the key is set and the job is delivered again (to a fresh instance)
    secret = bridge_secret(everflow_api_key="ef_api_key")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    bridge.poster = Poster(aws, everflow, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url)
    assert bridge.poster.deliver(json.dumps(json.loads(won["job"]))) == {"batchItemFailures": []}
    # Then the conversion is approved again
    [patch] = [r for r in everflow.api_calls() if r.method == "PATCH"]
    assert json.loads(patch.body)["conversion_status"] == "approved"
    assert bridge.ledger(won["job_key"])["status"] == "restored"
    assert bridge.ledger("conversion:default:in_1QbridgeFirst01")["everflow_state"] == "approved"
