"""MatchPaymentFunction: PaymentEventsQueue → classify, find the click → PostbackQueue.

SQS batches with partial batch failures (Powertools BatchProcessor): a record that
raises is retried alone, and after 5 receives lands in PaymentEventsDLQ. An event
delivered again is matched again and converges on the same result: a payment finds
its conversion claim noting the job it sent and sends nothing, and a refund's or
dispute's job sent twice is posted once (the poster's ledger). After each batch, the
refunds and disputes of its accounts whose wait for their payment has ended are sent
back (at most hourly). The matching rules live in ``stripe_everflow.matching``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stripe_everflow import observability
from stripe_everflow.adapters.aws import client
from stripe_everflow.adapters.dynamodb.rate_limiter import ApiRateLimiter
from stripe_everflow.adapters.dynamodb.store import AttributionStore
from stripe_everflow.adapters.everflow.network_api import EverflowNetworkApi
from stripe_everflow.adapters.secrets import secret_reader
from stripe_everflow.adapters.sqs import SqsSender
from stripe_everflow.adapters.stripe_api import StripeReader
from stripe_everflow.clicks.everflow_source import EverflowLookup
from stripe_everflow.config import MatchSettings
from stripe_everflow.domain.secret import CachedSecret
from stripe_everflow.matching.matcher import CHECKOUT_SESSION_WAIT_SECONDS, Matcher

logger = observability.build_logger("match-payment")
metrics = observability.build_metrics("match-payment")
processor = BatchProcessor(event_type=EventType.SQS)

_COUNTERS = {
    "job": "PostbackJobsEmitted",
    "parked": "PaymentsParked",
    "held": "PaymentsHeldForCheckout",
    "waiting": "RefundsWaitingForPayment",
    "ignored": "EventsIgnored",
    "linked": "PaymentLinksRecorded",
    "click_registered": "StripeClicksRegistered",
}


class _DelayedSends:
    """The SQS client for PaymentEventsQueue's held messages: each sent with
    ``DelaySeconds`` (a payment intent waiting for its Checkout Session)."""

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self._sqs: Any = None

    def send_message(self, **arguments: Any) -> Any:
        if self._sqs is None:
            self._sqs = client("sqs")
        return self._sqs.send_message(DelaySeconds=self._seconds, **arguments)


@dataclass(frozen=True)
class Dependencies:
    matcher: Matcher

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Dependencies:
        settings = MatchSettings.from_environ(environ)
        dynamodb = client("dynamodb")
        store = AttributionStore(settings.attribution_table, dynamodb)
        # Everflow as a click source (asked only with its API key in the secret); its
        # calls take their slots of the Network API budget every worker shares.
        everflow = EverflowLookup(
            EverflowNetworkApi(
                settings.everflow_api_base_url,
                ApiRateLimiter(
                    settings.budget_table, dynamodb, per_second=settings.api_calls_per_second
                )
                if settings.budget_table
                else None,
            ),
            store,
            offer_id=settings.everflow_offer_id,
            advertiser_id=settings.everflow_advertiser_id,
            miss_seconds=settings.everflow_miss_seconds,
        )
        matcher = Matcher(
            settings=settings,
            secret=CachedSecret(
                secret_reader(settings.secret_name), max_age=settings.secret_max_age_seconds
            ),
            store=store,
            postbacks=SqsSender(settings.postback_queue_url),
            payment_events=SqsSender(settings.payment_events_queue_url),
            stripe=StripeReader(settings.stripe_api_base),
            held_events=SqsSender(
                settings.payment_events_queue_url, _DelayedSends(CHECKOUT_SESSION_WAIT_SECONDS)
            ),
            everflow=everflow if "everflow" in settings.click_sources else None,
        )
        return cls(matcher)


@functools.cache
def _production_dependencies() -> Dependencies:
    return Dependencies.from_environ(os.environ)


def handle(event: dict[str, Any], context: Any, dependencies: Dependencies) -> dict[str, Any]:
    matcher = dependencies.matcher
    bodies = [record["body"] for record in event.get("Records", [])]
    try:
        matcher.prefetch(bodies)
    except Exception as error:  # lookups then happen per record; the batch goes on
        logger.warning("batch prefetch failed", error=type(error).__name__)

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        incoming = matcher.read(record.body)
        outcome = matcher.process(incoming).as_dict()
        logger.info("event matched", account=incoming.account, source=incoming.source, **outcome)
        metrics.add_metric(
            name=_COUNTERS.get(outcome["status"], "EventsProcessed"),
            unit=observability.MetricUnit.Count,
            value=1,
        )
        return outcome

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    try:
        swept = matcher.sweep_waiting()
    except Exception as error:  # the batch is done; the next one sweeps again
        logger.warning("sweep of waiting refunds failed", error=type(error).__name__)
    else:
        if swept:
            logger.info("waiting refunds sent back at the end of their wait", count=swept)
    return dict(response)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, _production_dependencies())
