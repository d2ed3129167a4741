"""PostEverflowFunction: PostbackQueue → Everflow, exactly once per job.

``stripe_everflow.posting.batch`` posts the records of a batch concurrently (refund
states of one charge in order) over keep-alive connections, unless the circuit
breaker over Everflow holds the batch; here each outcome is logged and counted, each
record that failed is reported in ``batchItemFailures`` for SQS to retry alone, and
its next delivery is pushed back (ChangeMessageVisibility) by a delay that grows with
its receive count.
"""

from __future__ import annotations

import functools
import os
import random
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stripe_everflow import observability
from stripe_everflow.adapters.aws import client
from stripe_everflow.adapters.dynamodb.ledger import Ledger
from stripe_everflow.adapters.dynamodb.rate_limiter import ApiRateLimiter, EverflowBreaker
from stripe_everflow.adapters.everflow.network_api import EverflowNetworkApi
from stripe_everflow.adapters.everflow.postbacks import EverflowClient
from stripe_everflow.adapters.secrets import secret_reader
from stripe_everflow.adapters.sqs import SqsSender
from stripe_everflow.config import PostSettings
from stripe_everflow.domain.errors import (
    BridgeError,
    EverflowCircuitOpenError,
    QueueUnavailableError,
)
from stripe_everflow.domain.secret import CachedSecret
from stripe_everflow.ports import RetryScheduler
from stripe_everflow.ports.everflow import CircuitBreaker
from stripe_everflow.posting.batch import Backoff, BatchRecord, post_batch, retry_delays
from stripe_everflow.posting.outcome import PostOutcome
from stripe_everflow.posting.poster import Poster, postback_settings

logger = observability.build_logger("post-everflow")
metrics = observability.build_metrics("post-everflow")
MAX_PARALLEL_POSTS = 10

_COUNTERS = {
    "posted": "ConversionsPosted",
    "reversed": "ConversionsReversed",
    "adjusted": "ConversionsAdjusted",
    "restored": "ConversionsRestored",
    "recorded": "RefundsRecordedOnly",
    "not_ours": "RefundsNotOurs",
    "nothing_to_undo": "RefundsNothingToUndo",
    "superseded": "RefundsSuperseded",
    # A won dispute without the Everflow API key: the conversion stays reversed.
    "restore_needs_key": "RestoresNeedingApiKey",
    "rejected": "ConversionsRejectedByEverflow",
    "failed": "PostbacksFailedPermanently",
    "duplicate": "DuplicateJobsSkipped",
}


@dataclass(frozen=True)
class Dependencies:
    poster: Poster
    pool: ThreadPoolExecutor
    # Where failed records' next deliveries are pushed back (PostbackQueue); without
    # it they come back after the queue's visibility timeout.
    retries: RetryScheduler | None = None
    backoff: Backoff = field(default_factory=Backoff)
    breaker: CircuitBreaker | None = None
    draw: Callable[[], float] = random.SystemRandom().random

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Dependencies:
        settings = PostSettings.from_environ(environ)
        dynamodb = client("dynamodb")
        poster = Poster(
            settings=settings,
            postback=postback_settings(settings),
            secret=CachedSecret(
                secret_reader(settings.secret_name), max_age=settings.secret_max_age_seconds
            ),
            ledger=Ledger(settings.ledger_table, dynamodb),
            client=EverflowClient(pool_size=MAX_PARALLEL_POSTS),
            dead_letters=SqsSender(settings.postback_dlq_url),
            # Every Network API call takes its slot of the shared budget in the adapter.
            network_api=EverflowNetworkApi(
                settings.api_base_url,
                ApiRateLimiter(
                    settings.ledger_table, dynamodb, per_second=settings.api_calls_per_second
                ),
            ),
        )
        return cls(
            poster,
            ThreadPoolExecutor(max_workers=MAX_PARALLEL_POSTS),
            retries=SqsSender(settings.postback_queue_url),
            backoff=Backoff(
                first_seconds=settings.retry_first_delay_seconds,
                max_seconds=settings.retry_max_delay_seconds,
            ),
            breaker=EverflowBreaker(
                settings.ledger_table,
                dynamodb,
                threshold=settings.breaker_threshold,
                cooldown_seconds=settings.breaker_cooldown_seconds,
            ),
        )


@functools.cache
def _production_dependencies() -> Dependencies:
    return Dependencies.from_environ(os.environ)


def _receive_count(record: Mapping[str, Any]) -> int:
    try:
        return max(1, int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)))
    except (TypeError, ValueError, AttributeError):
        return 1


def handle(event: Mapping[str, Any], dependencies: Dependencies) -> dict[str, Any]:
    records = list(event.get("Records", []))
    batch = [
        BatchRecord(
            record["messageId"],
            record["body"],
            record.get("receiptHandle", ""),
            _receive_count(record),
        )
        for record in records
    ]
    results = post_batch(dependencies.poster, batch, dependencies.pool, dependencies.breaker)
    failures = []
    counts: Counter[str] = Counter()
    for record, result in zip(records, results, strict=True):
        if isinstance(result, PostOutcome):
            logger.info("postback done", message_id=record["messageId"], **result.as_dict())
            counts[_COUNTERS.get(result.status, "PostbacksDone")] += 1
            continue
        reason = result.reason if isinstance(result, BridgeError) else type(result).__name__
        logger.warning(
            "postback will be retried",
            message_id=record["messageId"],
            reason=reason,
            detail=str(result),
        )
        counts["PostbacksRetried"] += 1
        if isinstance(result, EverflowCircuitOpenError):
            counts["PostbacksHeldByBreaker"] += 1
        failures.append({"itemIdentifier": record["messageId"]})
    if failures and dependencies.retries is not None:
        delays = retry_delays(batch, results, dependencies.backoff, dependencies.draw)
        try:
            dependencies.retries.change_visibility(delays)
        except QueueUnavailableError as error:  # they come back after the visibility timeout
            logger.warning("retry delays not set", reason=error.reason, detail=str(error))
    for name, count in counts.items():  # one value per counter and batch
        metrics.add_metric(name=name, unit=observability.MetricUnit.Count, value=count)
    return {"batchItemFailures": failures}


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, _production_dependencies())
