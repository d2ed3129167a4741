"""StripeWebhookFunction: POST /stripe/webhook and POST /stripe/webhook/{account}.

Verifies Stripe's signature over the raw body, drops what the bridge does not act
on with a 200, and answers 200 to an event only after it is on PaymentEventsQueue.
Rules live in ``stripe_everflow.intake``; this module wires and maps.

Whatever fails on the bridge's side — its own named errors or anything unforeseen,
settings included — is answered 5xx (Stripe retries), counted as WebhooksFailed (the
template's alarm) and logged; the answer says what kind of failure, never its detail,
which stays in the logs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from stripe_everflow import observability
from stripe_everflow.adapters.apigw import error_response, json_response, parse_http_request
from stripe_everflow.adapters.secrets import secret_reader
from stripe_everflow.adapters.sqs import SqsSender
from stripe_everflow.config import WebhookSettings
from stripe_everflow.domain.errors import BridgeError, RouteNotFoundError
from stripe_everflow.domain.secret import DEFAULT_ACCOUNT, CachedSecret
from stripe_everflow.intake.webhook import WebhookRequest, accept_stripe_webhook
from stripe_everflow.ports import MessageSender

ROUTES = {"POST /stripe/webhook", "POST /stripe/webhook/{account}"}
# What a 5xx answer says: anyone may post here, and the detail (a secret's key names,
# an AWS error) is for the logs.
RETRY_LATER = "the bridge could not take this event now; retry later"

logger = observability.build_logger("stripe-webhook")
metrics = observability.build_metrics("stripe-webhook")


class Dependencies(NamedTuple):
    """What the handler works with (a NamedTuple: no dataclass code generated at cold start)."""

    settings: WebhookSettings
    secret: CachedSecret
    sender: MessageSender

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Dependencies:
        settings = WebhookSettings.from_environ(environ)
        return cls(
            settings=settings,
            secret=CachedSecret(
                secret_reader(settings.secret_name), max_age=settings.secret_max_age_seconds
            ),
            sender=SqsSender(settings.payment_events_queue_url),
        )


@functools.cache
def _production_dependencies() -> Dependencies:
    return Dependencies.from_environ(os.environ)


def handle(event: Mapping[str, Any], dependencies: Dependencies) -> dict[str, Any]:
    """Answer one HTTP API request; every outcome is logged and counted once."""
    try:
        if event.get("routeKey") not in ROUTES:
            raise RouteNotFoundError("no such route")
        http = parse_http_request(event, max_body_bytes=dependencies.settings.max_body_bytes)
        request = WebhookRequest(
            account=http.path_parameters.get("account", DEFAULT_ACCOUNT),
            body=http.body,
            signature_header=http.header("stripe-signature"),
        )
        outcome = accept_stripe_webhook(
            request,
            settings=dependencies.settings,
            secret=dependencies.secret,
            sender=dependencies.sender,
        )
    except BridgeError as error:
        response = error_response(error)
        if response["statusCode"] >= 500:
            return _failed(error, error.reason, response["statusCode"])
        logger.warning("webhook refused", reason=error.reason, detail=str(error))
        observability.count(metrics, "WebhooksRejected", reason=error.reason)
        return response
    except Exception as error:  # unforeseen: still an answer Stripe retries, and counted
        return _failed(error, "internal_error", 500)
    log_keys: dict[str, Any] = {"event_id": outcome.event_id, "event_type": outcome.event_type}
    if outcome.status == "ignored":
        logger.info("webhook ignored", reason=outcome.reason, **log_keys)
        observability.count(metrics, "WebhooksIgnored", reason=outcome.reason)
        return json_response(200, {"status": "ignored", "reason": outcome.reason, **log_keys})
    logger.info(
        "webhook accepted", account=request.account, message_id=outcome.message_id, **log_keys
    )
    observability.count(metrics, "WebhooksAccepted")
    return json_response(200, {"status": "accepted", **log_keys})


def _failed(error: Exception, reason: str, status: int) -> dict[str, Any]:
    """A failure on the bridge's side: logged with its detail, counted, answered without."""
    import traceback  # here, on the error path: at the top it costs every cold start

    frames = traceback.extract_tb(error.__traceback__)
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else None
    if isinstance(error, BridgeError):
        logger.error("webhook not accepted", reason=reason, detail=str(error))
    else:  # its message may quote anything it was handed: the type and place only
        logger.error("webhook failed", reason=reason, error=type(error).__name__, where=where)
    # No Reason dimension: the template's alarm watches this counter by service.
    observability.count(metrics, "WebhooksFailed")
    return json_response(status, {"error": reason, "message": RETRY_LATER})


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        dependencies = _production_dependencies()
    except BridgeError as error:  # the settings: refused at every request until fixed
        return _failed(error, error.reason, 500)
    except Exception as error:
        return _failed(error, "internal_error", 500)
    return handle(event, dependencies)
