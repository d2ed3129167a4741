"""PostEverflowFunction: PostbackQueue → Everflow, exactly once per job.

The records of a batch are posted concurrently over one keep-alive session per
process, except successive refund states of one charge, which go in order. Each
record that raises is reported in ``batchItemFailures`` and retried alone by SQS.
The rules live in ``stripe_everflow.posting``.
"""

from __future__ import annotations

import functools
import json
import os
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
from stripe_everflow.posting.poster import Poster, PostOutcome, postback_settings

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
            network_api=EverflowNetworkApi(settings.api_base_url),
            rate_limiter=ApiRateLimiter(
                settings.ledger_table, dynamodb, per_second=settings.api_calls_per_second
            ),
        )
        return cls(poster, ThreadPoolExecutor(max_workers=MAX_PARALLEL_POSTS))


@functools.cache
def _production_dependencies() -> Dependencies:
    return Dependencies.from_environ(os.environ)


def _post(poster: Poster, record: Mapping[str, Any]) -> PostOutcome | BridgeError | Exception:
    try:
        return poster.post(record["body"])
    except Exception as error:  # reported per record below; the batch goes on
        return error


def _lane(record: Mapping[str, Any]) -> str:
    """Records of one lane run in order: successive refund states of one charge must
    reach Everflow in the order the ledger saw them. Everything else runs alone."""
    try:
        job = json.loads(record["body"])
        charge = job["stripe"]["charge_id"] if job.get("action") == "refund" else None
    except (ValueError, KeyError, TypeError):
        charge = None
    return f"charge:{charge}" if charge else f"record:{record['messageId']}"


def handle(event: Mapping[str, Any], dependencies: Dependencies) -> dict[str, Any]:
    records = list(event.get("Records", []))
    lanes: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        lanes.setdefault(_lane(record), []).append(record)

    def run(lane: list[Mapping[str, Any]]) -> list[Any]:
        return [_post(dependencies.poster, record) for record in lane]

    outcomes = {}
    for lane, results_of_lane in zip(
        lanes.values(), dependencies.pool.map(run, lanes.values()), strict=True
    ):
        for record, result in zip(lane, results_of_lane, strict=True):
            outcomes[record["messageId"]] = result
    results = [outcomes[record["messageId"]] for record in records]
    failures = []
    for record, result in zip(records, results, strict=True):
        if isinstance(result, PostOutcome):
            logger.info("postback done", message_id=record["messageId"], **result.as_dict())
            metrics.add_metric(
                name=_COUNTERS[result.status], unit=observability.MetricUnit.Count, value=1
            )
            continue
        reason = result.reason if isinstance(result, BridgeError) else type(result).__name__
        logger.warning(
            "postback will be retried",
            message_id=record["messageId"],
            reason=reason,
            detail=str(result),
        )
        metrics.add_metric(name="PostbacksRetried", unit=observability.MetricUnit.Count, value=1)
        failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, _production_dependencies())
