"""MatchPaymentFunction's DynamoDB writes: how many requests a payment costs, and the
guarantees they keep when writers race, a record fails half-way, or an event comes
twice (moto resources from template.yaml; races staged between the batch's prefetch
and the record's writes, where a concurrent worker would land)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from stripe_everflow.domain.attribution import StoredClick
from stripe_everflow.domain.records import claim_key, pin_key
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline, intake_message
from tests.support import stripe_event

JENNY = "jenny.rosen@example.com"
CUSTOMER = "cus_QbridgeJenny01"
# A batch whose every record fails is retried whole: an ignored companion keeps it partial.
COMPANION = stripe_event("basil", "invoice.paid.renewal") | {"id": "evt_live", "livemode": True}
WRITES = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
}


@pytest.fixture
def pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return build_pipeline(aws, monkeypatch)


class Requests:
    """Every DynamoDB request the matcher's client makes, by operation."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.counts: Counter[str] = Counter()
        client = pipeline.match_deps.matcher.store._db
        client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: self.counts.update([model.name])
        )

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.counts.items() if op in WRITES)

    def clear(self) -> None:
        self.counts.clear()


def click(email: str = JENNY, tx: str = "ef_tx_jenny") -> dict[str, Any]:
    return {"email": email, "transaction_id": tx, "offer_id": 12, "affiliate_id": 7}


def item(aws: Aws, key: tuple[str, str]) -> dict[str, Any] | None:
    answer = aws.dynamodb.get_item(
        TableName="AttributionTable", Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}}
    )
    return answer.get("Item")


# ------------------------------------------------------------------ how many writes


def test_a_new_payment_whose_click_is_known_costs_at_most_three_writes(
    pipeline: Pipeline,
) -> None:
    pipeline.post_clicks(click())
    requests = Requests(pipeline)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    [job] = pipeline.jobs()
    assert (job["kind"], job["target"]["transaction_id"]) == ("initial", "ef_tx_jenny")
    assert requests.writes <= 3, requests.counts


def test_a_rebill_of_a_pinned_customer_costs_at_most_two_writes(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    requests = Requests(pipeline)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.renewal"))
    [_, renewal] = pipeline.jobs()
    assert (renewal["kind"], renewal["target"]["matched_by"]) == ("rebill", "customer_pin")
    assert requests.writes <= 2, requests.counts


def test_parking_a_payment_costs_at_most_two_writes(pipeline: Pipeline) -> None:
    requests = Requests(pipeline)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert pipeline.jobs() == []
    assert requests.writes <= 2, requests.counts


def test_an_event_delivered_again_after_its_job_was_sent_writes_nothing(
    pipeline: Pipeline,
) -> None:
    pipeline.post_clicks(click())
    event = stripe_event("basil", "invoice.paid.first")
    pipeline.deliver_events(event)
    requests = Requests(pipeline)
    assert pipeline.deliver_events(event, event) == {"batchItemFailures": []}
    assert len(pipeline.jobs()) == 1
    assert requests.writes == 0, requests.counts


def test_refunds_of_counted_money_and_ignored_events_write_nothing(pipeline: Pipeline) -> None:
    pipeline.post_clicks(click())
    pipeline.deliver_events(
        stripe_event("legacy", "invoice.paid.first"), stripe_event("legacy", "invoice.paid.renewal")
    )
    assert len(pipeline.jobs()) == 2
    requests = Requests(pipeline)
    pipeline.deliver_events(
        stripe_event("legacy", "charge.refunded"),
        stripe_event("legacy", "charge.dispute.created"),
        stripe_event("basil", "invoice.paid.first") | {"livemode": True},
    )
    assert len(pipeline.jobs()) == 2
    assert requests.writes == 0, requests.counts


def test_a_refund_that_waits_for_its_payment_costs_at_most_two_writes(pipeline: Pipeline) -> None:
    requests = Requests(pipeline)
    pipeline.deliver_events(stripe_event("basil", "charge.refunded"))
    assert pipeline.jobs() == []
    # itself with its registrations, and the account's sweep record
    assert requests.writes <= 2, requests.counts


def test_a_conversion_sent_with_refunds_waiting_on_it_costs_at_most_three_writes(
    pipeline: Pipeline,
) -> None:
    pipeline.post_clicks(click())
    pipeline.deliver_events(stripe_event("legacy", "charge.refunded"))
    requests = Requests(pipeline)
    pipeline.deliver_events(stripe_event("legacy", "invoice.paid.renewal"))
    assert [j["action"] for j in pipeline.jobs()] == ["conversion"]
    # the claim; the job (refused once: a refund waits on the claim); the refund taken off
    assert requests.writes <= 4, requests.counts
    assert pipeline.run_replays() == 1
    assert [j["action"] for j in pipeline.jobs()] == ["refund"]


# ------------------------------------------------------------------ races


def staged(pipeline: Pipeline, event: dict[str, Any]) -> tuple[Any, str]:
    """The matcher with its batch prefetch done for ``event``, not processed yet."""
    matcher = pipeline.match_deps.matcher
    body = intake_message(event)
    matcher.prefetch([body])
    return matcher, body


def test_a_pin_set_by_a_concurrent_worker_wins(pipeline: Pipeline, aws: Aws) -> None:
    pipeline.post_clicks(click())
    matcher, body = staged(pipeline, stripe_event("basil", "invoice.paid.first"))
    # Between the prefetch and the writes, another worker pins jenny to another click
    matcher.store.pin_customer("default", CUSTOMER, StoredClick("ef_tx_rival", 1767225000), 1)
    outcome = matcher.process(matcher.read(body))
    [job] = pipeline.jobs()
    assert (outcome.status, job["target"]["transaction_id"], job["target"]["matched_by"]) == (
        "job",
        "ef_tx_rival",
        "customer_pin",
    )
    assert job["kind"] == "initial"
    assert item(aws, pin_key("default", CUSTOMER))["transaction_id"]["S"] == "ef_tx_rival"


def test_a_first_conversion_taken_by_a_concurrent_payment_makes_this_one_a_rebill(
    pipeline: Pipeline, aws: Aws
) -> None:
    pipeline.post_clicks(click())
    invoice = stripe_event("basil", "invoice.paid.first")
    invoice["data"]["object"]["billing_reason"] = "manual"  # initial or rebill: decided here
    matcher, body = staged(pipeline, invoice)
    aws.dynamodb.put_item(
        TableName="AttributionTable",
        Item={
            "pk": {"S": claim_key("default", f"first-conversion#{CUSTOMER}")[0]},
            "sk": {"S": "claim"},
            "owner": {"S": "in_concurrent"},
        },
    )
    matcher.process(matcher.read(body))
    [job] = pipeline.jobs()
    assert (job["kind"], job["target"]["transaction_id"]) == ("rebill", "ef_tx_jenny")


def test_a_pin_and_a_first_conversion_both_taken_meanwhile_are_both_respected(
    pipeline: Pipeline, aws: Aws
) -> None:
    pipeline.post_clicks(click())
    invoice = stripe_event("basil", "invoice.paid.first")
    invoice["data"]["object"]["billing_reason"] = "manual"
    matcher, body = staged(pipeline, invoice)
    matcher.store.pin_customer("default", CUSTOMER, StoredClick("ef_tx_rival", 1767225000), 1)
    aws.dynamodb.put_item(
        TableName="AttributionTable",
        Item={
            "pk": {"S": claim_key("default", f"first-conversion#{CUSTOMER}")[0]},
            "sk": {"S": "claim"},
            "owner": {"S": "in_concurrent"},
        },
    )
    matcher.process(matcher.read(body))
    [job] = pipeline.jobs()
    assert (job["kind"], job["target"]["transaction_id"], job["target"]["matched_by"]) == (
        "rebill",
        "ef_tx_rival",
        "customer_pin",
    )


def test_a_transaction_conflict_fails_the_record_for_a_retry(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    pipeline.post_clicks(click())
    store = pipeline.match_deps.matcher.store
    transact = store._db.transact_write_items
    conflicts = iter(
        [
            ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [
                        {"Code": "None"},
                        {"Code": "TransactionConflict", "Message": "conflict"},
                        {"Code": "None"},
                    ],
                },
                "TransactWriteItems",
            )
        ]
    )

    def conflicting(**kwargs: Any) -> Any:
        error = next(conflicts, None)
        if error:
            raise error
        return transact(**kwargs)

    monkeypatch.setattr(store._db, "transact_write_items", conflicting)
    event = stripe_event("basil", "invoice.paid.first")
    assert len(pipeline.deliver_events(event, COMPANION)["batchItemFailures"]) == 1
    assert pipeline.jobs() == []
    assert pipeline.deliver_events(event) == {"batchItemFailures": []}
    [job] = pipeline.jobs()
    assert (job["kind"], job["target"]["transaction_id"]) == ("initial", "ef_tx_jenny")


def test_money_claimed_by_a_concurrent_source_is_a_duplicate_and_writes_no_pin(
    pipeline: Pipeline, aws: Aws
) -> None:
    pipeline.post_clicks(click())
    matcher, body = staged(pipeline, stripe_event("basil", "invoice.paid.first"))
    aws.dynamodb.put_item(
        TableName="AttributionTable",
        Item={
            "pk": {"S": claim_key("default", "conversion#in_1QbridgeFirst01")[0]},
            "sk": {"S": "claim"},
            "owner": {"S": "evt_other_source"},
        },
    )
    outcome = matcher.process(matcher.read(body))
    assert (outcome.status, outcome.reason) == ("ignored", "duplicate_source")
    assert pipeline.jobs() == []
    assert item(aws, pin_key("default", CUSTOMER)) is None
    assert item(aws, claim_key("default", f"first-conversion#{CUSTOMER}")) is None


# ------------------------------------------------------------------ failures half-way


def test_a_record_that_fails_before_its_job_is_sent_sends_it_on_retry(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.post_clicks(click())
    postbacks = pipeline.match_deps.matcher.postbacks
    send = postbacks.send
    failures = iter([RuntimeError("SQS unavailable")])

    def flaky(*args: Any, **kwargs: Any) -> Any:
        error = next(failures, None)
        if error:
            raise error
        return send(*args, **kwargs)

    monkeypatch.setattr(postbacks, "send", flaky)
    event = stripe_event("basil", "invoice.paid.first")
    assert len(pipeline.deliver_events(event, COMPANION)["batchItemFailures"]) == 1
    assert pipeline.jobs() == []
    assert pipeline.deliver_events(event) == {"batchItemFailures": []}
    [job] = pipeline.jobs()
    assert (job["kind"], job["target"]["transaction_id"], job["target"]["matched_by"]) == (
        "initial",
        "ef_tx_jenny",
        "email_first_touch",
    )


def test_a_record_that_fails_after_its_job_was_sent_sends_the_same_job_again(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.post_clicks(click())
    store = pipeline.match_deps.matcher.store
    record = store.record_conversion
    failures = iter([RuntimeError("DynamoDB unavailable")])

    def flaky(*args: Any, **kwargs: Any) -> Any:
        error = next(failures, None)
        if error:
            raise error
        return record(*args, **kwargs)

    monkeypatch.setattr(store, "record_conversion", flaky)
    event = stripe_event("basil", "invoice.paid.first")
    assert len(pipeline.deliver_events(event, COMPANION)["batchItemFailures"]) == 1
    assert pipeline.deliver_events(event) == {"batchItemFailures": []}
    pipeline.deliver_events(event)
    # the documented duplicate: the same job twice, which the poster's ledger posts once
    first, again = pipeline.jobs()
    assert first == again


def test_a_replayed_payment_is_matched_after_its_parked_pass(pipeline: Pipeline) -> None:
    event = stripe_event("basil", "invoice.paid.first")
    pipeline.deliver_events(event)
    pipeline.post_clicks(click())
    assert pipeline.run_replays() == 1
    # the original delivered once more: its money is sent, it parks nothing again
    pipeline.deliver_events(event)
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_jenny"
    assert pipeline.post_clicks(click(tx="ef_tx_other"))[1]["replayed_payments"] == 0


def test_a_payment_parked_for_a_customer_while_another_pins_it_is_released(
    pipeline: Pipeline,
) -> None:
    # Given a renewal matched by email, its batch read before a payment of the same
    # customer parks (that one without an email: parked under the customer only)
    pipeline.post_clicks(click())
    matcher, body = staged(pipeline, stripe_event("basil", "invoice.paid.renewal"))
    first = stripe_event("basil", "invoice.paid.first")
    first["data"]["object"]["customer_email"] = None
    assert pipeline.deliver_events(first) == {"batchItemFailures": []}
    assert pipeline.jobs() == []
    # When the renewal pins the customer
    outcome = matcher.process(matcher.read(body))
    # Then its pin, written knowing a payment is parked for the customer, releases it
    assert (outcome.status, outcome.replayed) == ("job", 1)
    pipeline.run_replays()
    assert sorted((j["kind"], j["target"]["matched_by"]) for j in pipeline.jobs()) == [
        ("initial", "customer_pin"),
        ("rebill", "email_first_touch"),
    ]
