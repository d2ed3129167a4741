"""API Gateway HTTP API (payload 2.0) requests and answers, and the one place where
named errors become HTTP statuses."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stripe_everflow.domain.errors import (
    BodyEncodingError,
    BridgeError,
    ClickFieldError,
    ClickRequestError,
    PayloadTooLargeError,
    QueueUnavailableError,
    RouteNotFoundError,
    SecretUnavailableError,
    StorageUnavailableError,
    UnauthorizedError,
    UnknownAccountError,
    WebhookRejectedError,
)

# Most specific first; the first class the error is an instance of decides.
_STATUS_BY_ERROR: tuple[tuple[type[BridgeError], int], ...] = (
    (PayloadTooLargeError, 413),
    (UnknownAccountError, 404),
    (RouteNotFoundError, 404),
    (WebhookRejectedError, 400),
    (UnauthorizedError, 401),
    (ClickFieldError, 422),
    (ClickRequestError, 400),
    (SecretUnavailableError, 503),
    (QueueUnavailableError, 503),
    (StorageUnavailableError, 503),
)


def status_for(error: BridgeError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


@dataclass(frozen=True)
class HttpRequest:
    route_key: str
    headers: Mapping[str, str]
    path_parameters: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def parse_http_request(event: Mapping[str, Any], *, max_body_bytes: int) -> HttpRequest:
    """Read a payload-2.0 event; the body comes back as the exact bytes sent.

    Raises PayloadTooLargeError before decoding a body that cannot fit, and
    BodyEncodingError for a body flagged base64 that is not, or text that has no
    bytes (a lone surrogate).
    """
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        # 4 base64 characters carry 3 bytes: refuse before decoding what cannot fit.
        if len(raw) > (max_body_bytes + 2) // 3 * 4:
            raise PayloadTooLargeError(f"the body is over {max_body_bytes} bytes")
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BodyEncodingError("the body is flagged base64 but is not") from None
    else:
        try:
            # API Gateway sends bytes that are not UTF-8 base64-encoded; surrogate
            # escapes, should a caller pass some, map back to their bytes.
            body = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise BodyEncodingError("the body is not text: it holds a lone surrogate") from None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return HttpRequest(
        route_key=str(event.get("routeKey", "")),
        headers=headers,
        path_parameters=dict(event.get("pathParameters") or {}),
        body=body,
    )


def json_response(status: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(payload, separators=(",", ":")),
    }


RETRY_LATER = "the bridge could not take this request now; retry later"


def error_response(error: BridgeError) -> dict[str, Any]:
    """The answer to a refused request. A 5xx says only "retry later": its detail (a
    secret's key names, say) is for the logs, never for whoever called."""
    status = status_for(error)
    payload = {"error": error.reason, "message": RETRY_LATER if status >= 500 else str(error)}
    if isinstance(error, ClickFieldError):
        payload["field"] = error.field
    response = json_response(status, payload)
    if isinstance(error, UnauthorizedError):
        response["headers"]["www-authenticate"] = 'Bearer realm="stripe-everflow"'
    return response
