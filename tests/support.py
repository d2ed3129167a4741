"""Helpers shared by the test suites: project paths, events, signing, function loading."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import stripe

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EVENTS = PROJECT_ROOT / "events"
TEST_SECRET = "whsec_test_current_0123456789"
OLD_SECRET = "whsec_test_previous_9876543210"
EU_SECRET = "whsec_test_eu_store_5555"


def stripe_event(shape: str, name: str) -> dict[str, Any]:
    """A Stripe event from events/stripe/<shape>/<name>.json (a fresh copy)."""
    return dict(json.loads((EVENTS / "stripe" / shape / f"{name}.json").read_text("utf-8")))


def body_of(event: dict[str, Any]) -> bytes:
    # Pretty-printed, as Stripe sends it: the signature covers these exact bytes.
    return json.dumps(event, indent=2).encode("utf-8")


def sign(body: bytes, secret: str = TEST_SECRET, timestamp: int | None = None) -> str:
    """A genuine Stripe-Signature header, made by the stripe library itself."""
    return str(
        stripe.WebhookSignature.generate_signature_header(
            body.decode("utf-8"),
            secret,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
    )


def bridge_secret(**overrides: Any) -> dict[str, Any]:
    secret: dict[str, Any] = {
        "stripe_accounts": {
            "default": {"livemode": False, "webhook_secrets": [TEST_SECRET, OLD_SECRET]},
            "eu-store": {"livemode": True, "webhook_secrets": [EU_SECRET]},
        },
        "click_intake_token": "test-click-token",
        "email_hash_key": "test-email-hash-key",
    }
    secret.update(overrides)
    return secret


def http_api_event(
    body: bytes | str | None,
    *,
    signature: str | None = None,
    account: str | None = None,
    base64_body: bool = False,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event for the webhook routes, as API Gateway builds it."""
    import base64

    path, route = "/stripe/webhook", "POST /stripe/webhook"
    if account is not None:
        path, route = f"/stripe/webhook/{account}", "POST /stripe/webhook/{account}"
    all_headers = {"content-type": "application/json; charset=utf-8", "user-agent": "Stripe/1.0"}
    if signature is not None:
        all_headers["stripe-signature"] = signature
    all_headers.update(headers or {})
    raw = body.encode() if isinstance(body, str) else body
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "http": {"method": "POST", "path": path, "sourceIp": "192.0.2.10"},
            "requestId": str(uuid.uuid4()),
            "routeKey": route,
            "stage": "$default",
        },
        "isBase64Encoded": base64_body,
    }
    if raw is not None:
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode("utf-8")
    if account is not None:
        event["pathParameters"] = {"account": account}
    return event


def load_function(name: str) -> ModuleType:
    """A fresh instance of functions/<name>/app.py (its own caches and clients)."""
    path = PROJECT_ROOT / "functions" / name / "app.py"
    module_name = f"function_{name}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
