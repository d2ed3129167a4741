"""Fuzzing StripeWebhookFunction's real lambda_handler on moto resources.

Properties: never a 5xx for anything signed or unsigned; nothing unsigned is ever
queued; a signed request is queued at most once, and only as a message the matcher
reads and classifies without raising.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stripe_everflow.domain.classify import ClassifySettings, classify_event
from stripe_everflow.domain.messages import read_incoming_event
from stripe_everflow.domain.stripe_events import event_shape_problem
from tests.fuzz.strategies import as_event_text, count, examples, webhook_bodies
from tests.integration.conftest import Aws
from tests.support import EU_SECRET, TEST_SECRET, LambdaContext, load_function, sign


@pytest.fixture
def webhook(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in aws.function_environment("StripeWebhookFunction").items():
        monkeypatch.setenv(name, value)
    return load_function("stripe_webhook")


def signature_for(body: bytes, secret: str, timestamp: int) -> str:
    """Stripe's header: the stripe library's helper for text, the same HMAC for bytes
    that are not UTF-8 (which the helper cannot take)."""
    try:
        return sign(body, secret, timestamp)
    except UnicodeDecodeError:
        mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        return f"t={timestamp},v1={mac.hexdigest()}"


def request(
    body: bytes, headers: dict[str, str], *, account: str | None, base64_body: bool
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event, its body base64-encoded or as text (see
    ``as_event_text``)."""
    route = "POST /stripe/webhook" if account is None else "POST /stripe/webhook/{account}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": "/stripe/webhook" + (f"/{account}" if account is not None else ""),
        "headers": {"content-type": "application/json"} | headers,
        "requestContext": {"http": {"method": "POST"}, "routeKey": route},
        "isBase64Encoded": base64_body,
        "body": base64.b64encode(body).decode() if base64_body else as_event_text(body),
    }
    if account is not None:
        event["pathParameters"] = {"account": account}
    return event


def answer(webhook: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What API Gateway answers: the function's response, or 500 when it raised."""
    try:
        response = webhook.lambda_handler(event, LambdaContext())
    except Exception:
        return 500, {}
    webhook.metrics.clear_metrics()
    return int(response["statusCode"]), json.loads(response["body"])


def _outcome(status: int, reply: dict[str, Any]) -> str:
    if status == 200:
        return f"{reply.get('status')}" + (f":{reply['reason']}" if reply.get("reason") else "")
    return f"{status} {reply.get('error')}"


ACCOUNTS = st.sampled_from([None, None, "default", "eu-store", "nobody", "Default", "a/b"])
BAD_SIGNATURES = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),
    st.sampled_from(["t=1,v1=00", "v1=", "t=,v1=", "t=999999999999999999999999,v1=ab", "t=1"]),
    st.builds(lambda h: f"t={int(time.time())},v1={h}", st.text("0123456789abcdef", max_size=64)),
)


@examples(ci=200, full=3000)
@given(
    body=webhook_bodies(),
    account=ACCOUNTS,
    base64_body=st.booleans(),
    forge=st.sampled_from(["none", "wrong_secret", "other_body", "stale", "future", "garbage"]),
    garbage=BAD_SIGNATURES,
)
def test_unsigned_request_is_refused_and_queues_nothing(
    webhook: ModuleType,
    aws: Aws,
    body: bytes,
    account: str | None,
    base64_body: bool,
    forge: str,
    garbage: str | None,
) -> None:
    now = int(time.time())
    header = {
        "none": None,
        "wrong_secret": signature_for(body, "whsec_not_ours", now),
        "other_body": signature_for(body + b" ", TEST_SECRET, now),
        "stale": signature_for(body, TEST_SECRET, now - 3600),
        "future": signature_for(body, TEST_SECRET, now + 3600),
        "garbage": garbage,
    }[forge]
    headers = {} if header is None else {"stripe-signature": header}
    status, reply = answer(
        webhook, request(body, headers, account=account, base64_body=base64_body)
    )
    count("webhook unsigned", status, f"{status} {reply.get('error')}")
    assert 400 <= status < 500, status
    assert aws.drain("PaymentEventsQueue") == []


@examples(ci=300, full=4000)
@given(
    body=webhook_bodies(),
    account=st.sampled_from([None, "default", "eu-store"]),
    base64_body=st.booleans(),
)
def test_signed_request_is_answered_and_queued_at_most_once(
    webhook: ModuleType, aws: Aws, body: bytes, account: str | None, base64_body: bool
) -> None:
    secret = EU_SECRET if account == "eu-store" else TEST_SECRET
    headers = {"stripe-signature": signature_for(body, secret, int(time.time()))}
    status, reply = answer(
        webhook, request(body, headers, account=account, base64_body=base64_body)
    )
    count("webhook signed", status, _outcome(status, reply))
    assert status < 500, status
    queued = aws.drain("PaymentEventsQueue")
    if reply.get("status") != "accepted":
        assert queued == []
        return
    [message] = queued
    incoming = read_incoming_event(json.dumps(message["Body"]), eventbridge_account="default")
    assert event_shape_problem(incoming.event) is None
    assert incoming.event["id"] == reply["event_id"]
    classify_event(incoming.event, ClassifySettings())
