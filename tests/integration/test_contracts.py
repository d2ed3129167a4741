"""The queue contracts end to end: what one function writes on a queue, the next one
reads back field for field — the webhook's and a replay's messages (stripe-event/1)
by the matcher, the matcher's jobs (postback-job/1) by the poster."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from stripe_everflow.domain.jobs import PostbackJob
from stripe_everflow.domain.messages import IncomingEvent
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from tests.integration.conftest import Aws
from tests.integration.pipeline import Poster, build_pipeline
from tests.support import LambdaContext, body_of, http_api_event, load_function, sign, stripe_event

JENNY = "jenny.rosen@example.com"
CLICK = {"email": JENNY, "transaction_id": "ef_tx_1", "offer_id": 12, "affiliate_id": 7}


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


def raw_bodies(aws: Aws, queue: str) -> list[str]:
    """Every message on ``queue`` (consumed), bodies exactly as they were sent."""
    bodies = []
    while True:
        answer = aws.sqs.receive_message(
            QueueUrl=aws.resources.queue_urls[queue], MaxNumberOfMessages=10
        )
        if not answer.get("Messages"):
            return bodies
        for message in answer["Messages"]:
            bodies.append(message["Body"])
            aws.sqs.delete_message(
                QueueUrl=aws.resources.queue_urls[queue], ReceiptHandle=message["ReceiptHandle"]
            )


def read_event(body: str) -> IncomingEvent:
    return IncomingEvent.from_json(body, eventbridge_account="default")


def test_the_webhooks_message_is_read_by_the_matcher_as_written(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the webhook accepted a genuine event
    for name, value in aws.function_environment("StripeWebhookFunction").items():
        monkeypatch.setenv(name, value)
    webhook = load_function("stripe_webhook")
    event = stripe_event("basil", "invoice.paid.first")
    body = body_of(event)
    answer = webhook.lambda_handler(http_api_event(body, signature=sign(body)), LambdaContext())
    assert answer["statusCode"] == 200
    [message] = raw_bodies(aws, "PaymentEventsQueue")

    # When the matcher's reader reads it
    incoming = read_event(message)

    # Then every field is read as the webhook wrote it
    assert incoming.to_json() == message
    assert (incoming.account, incoming.source, incoming.event_id) == (
        "default",
        "webhook",
        event["id"],
    )
    # and the matcher takes it: the payment becomes a job
    pipeline = build_pipeline(aws, monkeypatch)
    pipeline.post_clicks(CLICK)
    assert pipeline.deliver(message) == {"batchItemFailures": []}
    assert [job["job_key"] for job in pipeline.jobs()] == ["conversion:default:in_1QbridgeFirst01"]


def test_a_replayed_parked_payment_is_read_by_the_matcher_as_written(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a payment parked before its click, and the click that sends it back
    pipeline = build_pipeline(aws, monkeypatch)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    pipeline.post_clicks(CLICK)
    [replay] = raw_bodies(aws, "PaymentEventsQueue")

    # When the matcher's reader reads the replay
    incoming = read_event(replay)

    # Then it is read as written, a replay with its own id
    assert incoming.to_json() == replay
    assert incoming.replayed_at is not None and incoming.replay_id
    assert pipeline.deliver(replay) == {"batchItemFailures": []}
    assert len(pipeline.jobs()) == 1


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_every_job_the_matcher_writes_is_read_by_the_poster_as_written(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    # Given payments, a refund and a dispute that the matcher made jobs of
    pipeline = build_pipeline(aws, monkeypatch)
    pipeline.post_clicks(CLICK)
    # basil charges name no invoice: invoice_payment.paid links the renewal's intent to it
    links = ("invoice_payment.paid.first", "invoice_payment.paid.renewal")
    pipeline.deliver_events(
        *(
            stripe_event(shape, name)
            for name in (
                *(links if shape == "basil" else ()),
                "invoice.paid.first",
                "invoice.paid.renewal",
                "payment_intent.succeeded",
                "charge.refunded",
                "charge.dispute.created",
                "charge.dispute.closed",
            )
        )
    )
    written = raw_bodies(aws, "PostbackQueue")
    actions = {json.loads(body)["action"] for body in written}
    assert actions == {"conversion", "refund", "dispute_opened", "dispute_closed"}

    # When the poster reads them
    jobs = [PostbackJob.from_json(body) for body in written]

    # Then each is the job written, field for field
    for job, body in zip(jobs, written, strict=True):
        assert job.to_json() == body
        assert job.as_dict() == json.loads(body)
    # and the poster takes each (conversions before what undoes them), keeping it as written
    poster = Poster(aws, everflow, monkeypatch)
    in_order = sorted(zip(jobs, written, strict=True), key=lambda j: j[0].action != "conversion")
    for job, body in in_order:
        assert poster.deliver(body) == {"batchItemFailures": []}
        assert poster.ledger(job.job_key)["job"] == body
