"""ClickIntakeFunction: POST /clicks — learn email → click (and Stripe customer → click).

Bearer token from the bridge secret; one click or a JSON list of clicks; every item
validated before anything is stored. A click for an email (or customer) with
payments waiting sends those payments back to PaymentEventsQueue.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stripe_everflow import observability
from stripe_everflow.adapters.apigw import error_response, json_response, parse_http_request
from stripe_everflow.adapters.aws import client, storage_errors
from stripe_everflow.adapters.dynamodb.store import AttributionStore
from stripe_everflow.adapters.secrets import secret_reader
from stripe_everflow.adapters.sqs import SqsSender
from stripe_everflow.clicks.register import check_bearer_token, parse_click_request, register_clicks
from stripe_everflow.config import ClickSettings
from stripe_everflow.domain.errors import BridgeError, RouteNotFoundError, StorageUnavailableError
from stripe_everflow.domain.secret import CachedSecret
from stripe_everflow.ports import MessageSender

logger = observability.build_logger("click-intake")
metrics = observability.build_metrics("click-intake")


@dataclass(frozen=True)
class Dependencies:
    settings: ClickSettings
    secret: CachedSecret
    store: AttributionStore
    payment_events: MessageSender

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Dependencies:
        settings = ClickSettings.from_environ(environ)
        return cls(
            settings=settings,
            secret=CachedSecret(
                secret_reader(settings.secret_name), max_age=settings.secret_max_age_seconds
            ),
            store=AttributionStore(settings.attribution_table, client("dynamodb")),
            payment_events=SqsSender(settings.payment_events_queue_url),
        )


@functools.cache
def _production_dependencies() -> Dependencies:
    return Dependencies.from_environ(os.environ)


def handle(event: Mapping[str, Any], dependencies: Dependencies) -> dict[str, Any]:
    """Answer one POST /clicks; every outcome is logged and counted once."""
    settings = dependencies.settings
    try:
        if event.get("routeKey") != "POST /clicks":
            raise RouteNotFoundError("no such route")
        http = parse_http_request(event, max_body_bytes=settings.max_body_bytes)
        secret = dependencies.secret.get()
        check_bearer_token(http.header("authorization"), secret)
        clicks, batch = parse_click_request(
            http.body,
            secret=secret,
            max_clicks=settings.max_clicks_per_request,
            max_body_bytes=settings.max_body_bytes,
            now=int(time.time()),
        )
        try:
            results, replayed = register_clicks(
                clicks,
                store=dependencies.store,
                payment_events=dependencies.payment_events,
                clock=time.time,
            )
        except storage_errors() as error:
            raise StorageUnavailableError(f"AttributionTable: {type(error).__name__}") from error
    except BridgeError as error:
        response = error_response(error)
        logger.warning(
            "clicks refused",
            reason=error.reason,
            status=response["statusCode"],
            field=getattr(error, "field", None),
        )
        observability.count(metrics, "ClickRequestsRejected", reason=error.reason)
        return response
    stored = sum(result.status == "stored" for result in results)
    logger.info(
        "clicks registered",
        stored=stored,
        already_stored=len(results) - stored,
        replayed_payments=replayed,
    )
    metrics.add_metric(name="ClicksStored", unit=observability.MetricUnit.Count, value=stored)
    metrics.add_metric(
        name="ParkedPaymentsReplayed", unit=observability.MetricUnit.Count, value=replayed
    )
    items = [{"transaction_id": r.transaction_id, "status": r.status} for r in results]
    body: dict[str, Any] = {
        "stored": stored,
        "already_stored": len(results) - stored,
        "replayed_payments": replayed,
    }
    body |= {"clicks": items} if batch else items[0]
    return json_response(201 if stored else 200, body)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, _production_dependencies())
