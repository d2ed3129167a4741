"""SyncClicksFunction: Everflow's conversion report → clicks, on a schedule.

EventBridge invokes it every ``EverflowSyncSchedule`` (default 5 minutes) while
``ClickSources`` names ``everflow``. A run without the Everflow API key in the secret
does nothing (``skipped``). Otherwise it reads the report from its checkpoint
(``clicks.everflow_source.EverflowSync``), stores every base conversion that carries
an email as a click, replays the payments parked for those emails, and moves the
checkpoint. A failure raises: the checkpoint stays and the next run reads the same
window again (every write is idempotent).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stripe_everflow import observability
from stripe_everflow.adapters.aws import client
from stripe_everflow.adapters.dynamodb.rate_limiter import ApiRateLimiter
from stripe_everflow.adapters.dynamodb.store import AttributionStore
from stripe_everflow.adapters.everflow.network_api import EverflowNetworkApi
from stripe_everflow.adapters.secrets import secret_reader
from stripe_everflow.adapters.sqs import SqsSender
from stripe_everflow.clicks.everflow_source import EverflowSync, SyncOutcome
from stripe_everflow.config import SyncSettings
from stripe_everflow.domain.secret import CachedSecret

logger = observability.build_logger("sync-clicks")
metrics = observability.build_metrics("sync-clicks")


@dataclass(frozen=True)
class Dependencies:
    settings: SyncSettings
    secret: CachedSecret
    sync: EverflowSync

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Dependencies:
        settings = SyncSettings.from_environ(environ)
        dynamodb = client("dynamodb")
        budget = (
            ApiRateLimiter(
                settings.budget_table, dynamodb, per_second=settings.api_calls_per_second
            )
            if settings.budget_table
            else None
        )
        sync = EverflowSync(
            EverflowNetworkApi(settings.api_base_url, budget),
            AttributionStore(settings.attribution_table, dynamodb),
            SqsSender(settings.payment_events_queue_url),
            offer_id=settings.offer_id,
            advertiser_id=settings.advertiser_id,
            overlap_seconds=settings.overlap_seconds,
            first_sync_days=settings.first_sync_days,
            page_size=settings.page_size,
            max_rows=settings.max_rows_per_run,
        )
        secret = CachedSecret(
            secret_reader(settings.secret_name), max_age=settings.secret_max_age_seconds
        )
        return cls(settings, secret, sync)


@functools.cache
def _production_dependencies() -> Dependencies:
    return Dependencies.from_environ(os.environ)


def handle(event: Any, context: Any, dependencies: Dependencies) -> dict[str, Any]:
    if "everflow" not in dependencies.settings.click_sources:
        outcome = SyncOutcome("skipped", reason="everflow_not_a_click_source")
    else:
        secret = dependencies.secret.get()
        if not secret.everflow_api_key:
            outcome = SyncOutcome("skipped", reason="no_everflow_api_key")
        elif not secret.email_hash_key:
            outcome = SyncOutcome("skipped", reason="no_email_hash_key")
        else:
            outcome = dependencies.sync.run(secret.everflow_api_key, secret.email_hash_key)
    facts = outcome.as_dict()
    logger.info("everflow clicks synced", **facts)
    if outcome.status == "synced":
        unit = observability.MetricUnit.Count
        metrics.add_metric(name="EverflowClicksSynced", unit=unit, value=outcome.registered)
        metrics.add_metric(name="EverflowSyncReplays", unit=unit, value=outcome.replayed)
    return facts


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, _production_dependencies())
