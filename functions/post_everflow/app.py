"""PostEverflowFunction: PostbackQueue → Everflow, exactly once per job.

``stripe_everflow.posting.batch`` posts the records of a batch concurrently (refund
states of one charge in order) over keep-alive connections; here each outcome is
logged and counted, and each record that failed is reported in
``batchItemFailures`` for SQS to retry alone.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from stripe_everflow import observability
from stripe_everflow.adapters.aws import client
from stripe_everflow.adapters.dynamodb.ledger import Ledger
from stripe_everflow.adapters.dynamodb.rate_limiter import ApiRateLimiter
from stripe_everflow.adapters.everflow.network_api import EverflowNetworkApi
from stripe_everflow.adapters.everflow.postbacks import EverflowClient
from stripe_everflow.adapters.secrets import secret_reader
from stripe_everflow.adapters.sqs import SqsSender
from stripe_everflow.config import PostSettings
from stripe_everflow.domain.errors import BridgeError
from stripe_everflow.domain.secret import CachedSecret
from stripe_everflow.posting.batch import BatchRecord, post_batch
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
    "rejected": "ConversionsRejectedByEverflow",
    "failed": "PostbacksFailedPermanently",
    "duplicate": "DuplicateJobsSkipped",
}


@dataclass(frozen=True)
class Dependencies:
    poster: Poster
    pool: ThreadPoolExecutor

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
        return cls(poster, ThreadPoolExecutor(max_workers=MAX_PARALLEL_POSTS))


@functools.cache
def _production_dependencies() -> Dependencies:
    return Dependencies.from_environ(os.environ)


def handle(event: Mapping[str, Any], dependencies: Dependencies) -> dict[str, Any]:
    records = list(event.get("Records", []))
    results = post_batch(
        dependencies.poster,
        [BatchRecord(record["messageId"], record["body"]) for record in records],
        dependencies.pool,
    )
    failures = []
    counts: Counter[str] = Counter()
    for record, result in zip(records, results, strict=True):
        if isinstance(result, PostOutcome):
            logger.info("postback done", message_id=record["messageId"], **result.as_dict())
            counts[_COUNTERS[result.status]] += 1
            continue
        reason = result.reason if isinstance(result, BridgeError) else type(result).__name__
        logger.warning(
            "postback will be retried",
            message_id=record["messageId"],
            reason=reason,
            detail=str(result),
        )
        counts["PostbacksRetried"] += 1
        failures.append({"itemIdentifier": record["messageId"]})
    for name, count in counts.items():  # one value per counter and batch
        metrics.add_metric(name=name, unit=observability.MetricUnit.Count, value=count)
    return {"batchItemFailures": failures}


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, _production_dependencies())
