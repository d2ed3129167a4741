"""StripeWebhookFunction's real lambda_handler, in process, against moto resources
created from template.yaml."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from stripe_everflow.domain.emails import redact_emails
from tests.integration.conftest import Aws
from tests.support import (
    EU_SECRET,
    TEST_SECRET,
    LambdaContext,
    body_of,
    http_api_event,
    load_function,
    sign,
    stripe_event,
)


@pytest.fixture
def webhook(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in aws.function_environment("StripeWebhookFunction").items():
        monkeypatch.setenv(name, value)
    return load_function("stripe_webhook")


@contextmanager
def captured_logs(webhook: ModuleType) -> Iterator[io.StringIO]:
    """What the function logs meanwhile, from INFO up. Its logger is process-wide (one
    per service name): an earlier test may have left it at another level, or its
    handler on a closed output (swapped here, not flushed)."""
    handler, logs = webhook.logger.registered_handler, io.StringIO()
    previous, handler.stream = handler.stream, logs
    level = webhook.logger.log_level
    webhook.logger.setLevel(logging.INFO)
    try:
        yield logs
    finally:
        handler.stream = previous
        webhook.logger.setLevel(level)


def invoke(webhook: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = webhook.lambda_handler(event, LambdaContext())
    return answer["statusCode"], json.loads(answer["body"])


def test_genuine_event_is_answered_200_and_queued_once(webhook: ModuleType, aws: Aws) -> None:
    # Given a genuine invoice.paid, signed now
    event = stripe_event("basil", "invoice.paid.first")
    body = body_of(event)
    # When Stripe delivers it
    status, answer = invoke(webhook, http_api_event(body, signature=sign(body)))
    # Then it is acknowledged and exactly one message holds it
    assert (status, answer["status"], answer["event_id"]) == (200, "accepted", event["id"])
    [message] = aws.drain("PaymentEventsQueue")
    assert message["Body"]["event"] == redact_emails(event, "test-email-hash-key")
    assert "jenny.rosen@example.com" not in json.dumps(message["Body"])
    assert message["Body"]["account"] == "default"
    assert message["MessageAttributes"]["event_type"]["StringValue"] == "invoice.paid"


def test_base64_encoded_body_is_verified_over_the_decoded_bytes(
    webhook: ModuleType, aws: Aws
) -> None:
    body = body_of(stripe_event("legacy", "charge.refunded"))
    status, _ = invoke(webhook, http_api_event(body, signature=sign(body), base64_body=True))
    assert status == 200
    assert len(aws.drain("PaymentEventsQueue")) == 1


def test_named_account_route(webhook: ModuleType, aws: Aws) -> None:
    body = body_of(stripe_event("basil", "refund.created") | {"livemode": True})
    status, _ = invoke(
        webhook, http_api_event(body, signature=sign(body, EU_SECRET), account="eu-store")
    )
    assert status == 200
    [message] = aws.drain("PaymentEventsQueue")
    assert message["Body"]["account"] == "eu-store"


def _bad_requests() -> list[tuple[str, dict[str, Any], int, str]]:
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    now = int(time.time())
    garbage = b"this is not json"
    customer = json.dumps({"object": "customer", "id": "cus_1"}).encode()
    return [
        ("no signature", http_api_event(body), 400, "signature_header_missing"),
        (
            "wrong secret",
            http_api_event(body, signature=sign(body, "whsec_wrong")),
            400,
            "signature_mismatch",
        ),
        (
            "stale",
            http_api_event(body, signature=sign(body, TEST_SECRET, now - 600)),
            400,
            "timestamp_stale",
        ),
        (
            "future",
            http_api_event(body, signature=sign(body, TEST_SECRET, now + 600)),
            400,
            "timestamp_in_future",
        ),
        (
            "no t=",
            http_api_event(body, signature=sign(body).split(",")[1]),
            400,
            "signature_header_malformed",
        ),
        (
            "v0 only",
            http_api_event(body, signature=sign(body).replace("v1=", "v0=")),
            400,
            "signature_scheme_missing",
        ),
        ("not json", http_api_event(garbage, signature=sign(garbage)), 400, "body_not_json"),
        (
            "not an event",
            http_api_event(customer, signature=sign(customer)),
            400,
            "not_a_stripe_event",
        ),
        (
            "unknown account",
            http_api_event(body, signature=sign(body), account="nobody"),
            404,
            "unknown_account",
        ),
        (
            "unknown route",
            http_api_event(body, signature=sign(body)) | {"routeKey": "GET /x"},
            404,
            "route_not_found",
        ),
        (
            "too large",
            http_api_event(b"x" * 300_000, signature=sign(b"x" * 300_000)),
            413,
            "payload_too_large",
        ),
        (
            "bad base64",
            http_api_event(body, signature=sign(body)) | {"isBase64Encoded": True},
            400,
            "body_encoding_invalid",
        ),
    ]


# Only the case names are taken at collection: each request is signed when its test
# runs, so a run that starts more than the 300 s tolerance after collection still holds.
@pytest.mark.parametrize("case", [c[0] for c in _bad_requests()])
def test_bad_request_gets_its_status_and_queues_nothing(
    webhook: ModuleType, aws: Aws, case: str
) -> None:
    [(event, status, reason)] = [(e, s, r) for c, e, s, r in _bad_requests() if c == case]
    answered, answer = invoke(webhook, event)
    assert (answered, answer["error"]) == (status, reason)
    assert answer["message"]
    assert aws.drain("PaymentEventsQueue") == []


def test_queue_failure_answers_503_so_stripe_retries(webhook: ModuleType, aws: Aws) -> None:
    # Given the queue cannot be reached
    aws.sqs.delete_queue(QueueUrl=aws.resources.queue_urls["PaymentEventsQueue"])
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    # When / Then
    status, answer = invoke(webhook, http_api_event(body, signature=sign(body)))
    assert (status, answer["error"]) == (503, "queue_unavailable")


def test_unconfigured_secret_answers_503(webhook: ModuleType, aws: Aws) -> None:
    # Given a freshly deployed stack: the secret has no Stripe account yet
    aws.secretsmanager.put_secret_value(
        SecretId="StripeWebhookSecret",
        SecretString='{"stripe_accounts": {}, "email_hash_key": "k"}',
    )
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    status, answer = invoke(webhook, http_api_event(body, signature=sign(body)))
    assert (status, answer["error"]) == (503, "secret_unavailable")
    assert aws.drain("PaymentEventsQueue") == []


def test_logs_and_metrics_hold_no_body_signature_secret_or_email(
    capsys: pytest.CaptureFixture[str], webhook: ModuleType, aws: Aws
) -> None:
    # Given one accepted and one refused delivery
    event = stripe_event("basil", "invoice.paid.first")
    body = body_of(event)
    header = sign(body)
    with captured_logs(webhook) as logs:
        invoke(webhook, http_api_event(body, signature=header))
        invoke(webhook, http_api_event(body, signature=sign(body, "whsec_wrong")))
    # When reading everything the function logged and printed
    output = logs.getvalue() + capsys.readouterr().out
    # Then the outcome is there, but not the payload or credentials
    assert "webhook accepted" in output and "signature_mismatch" in output
    for forbidden in (
        header.split("v1=")[1],
        TEST_SECRET,
        "jenny.rosen@example.com",
        '"amount_paid"',
    ):
        assert forbidden not in output


def test_outcomes_are_counted_as_metrics(
    capsys: pytest.CaptureFixture[str], webhook: ModuleType, aws: Aws
) -> None:
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    invoke(webhook, http_api_event(body, signature=sign(body)))
    invoke(webhook, http_api_event(body))
    ignored = body_of(stripe_event("basil", "invoice.paid.first") | {"type": "invoice.upcoming"})
    invoke(webhook, http_api_event(ignored, signature=sign(ignored)))
    emf = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "_aws" in line
    ]
    counted = {
        (m, doc.get("Reason"))
        for doc in emf
        for d in doc["_aws"]["CloudWatchMetrics"]
        for m in [x["Name"] for x in d["Metrics"]]
    }
    assert ("WebhooksAccepted", None) in counted
    assert ("WebhooksRejected", "signature_header_missing") in counted
    assert ("WebhooksIgnored", "event_type_not_handled") in counted


def _emitted_metrics(output: str) -> set[str]:
    return {
        metric["Name"]
        for line in output.splitlines()
        if line.startswith("{") and "_aws" in line
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }


class _BrokenSender:
    """A queue client failing in a way the bridge never named."""

    def send(self, body: str, attributes: dict[str, str]) -> str:
        raise KeyError("MessageId of whsec_should_not_leak")


def test_an_unforeseen_error_answers_500_is_counted_and_leaks_nothing(
    capsys: pytest.CaptureFixture[str], webhook: ModuleType, aws: Aws
) -> None:
    # Given a webhook whose queue client fails with an error of no known kind
    dependencies = webhook._production_dependencies()._replace(sender=_BrokenSender())
    webhook._production_dependencies = lambda: dependencies
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    # When Stripe delivers a genuine event
    with captured_logs(webhook) as logs:
        status, answer = invoke(webhook, http_api_event(body, signature=sign(body)))
    # Then Stripe gets a 500 to retry, saying nothing of the cause
    assert (status, answer["error"]) == (500, "internal_error")
    assert "KeyError" not in json.dumps(answer) and "whsec" not in json.dumps(answer)
    # And the failure is counted where the alarm watches, and logged with where it was
    output = capsys.readouterr().out
    assert "WebhooksFailed" in _emitted_metrics(output)
    [failure] = [json.loads(line) for line in logs.getvalue().splitlines() if "KeyError" in line]
    # (the innermost frame: here, the sender above)
    assert failure["level"] == "ERROR"
    assert failure["where"].startswith("test_webhook_handler.py:")
    assert "whsec_should_not_leak" not in logs.getvalue()


def test_settings_that_cannot_be_read_answer_500_and_are_counted(
    capsys: pytest.CaptureFixture[str], webhook: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function whose environment is broken (the settings refuse it)
    monkeypatch.setenv("MAX_WEBHOOK_BODY_BYTES", "lots")
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    # When a webhook arrives, Then it is a counted failure, not a crash of the function
    status, answer = invoke(webhook, http_api_event(body, signature=sign(body)))
    assert (status, answer["error"]) == (500, "configuration_error")
    assert "MAX_WEBHOOK_BODY_BYTES" not in answer["message"]
    assert "WebhooksFailed" in _emitted_metrics(capsys.readouterr().out)


def test_a_malformed_secret_answers_503_without_naming_its_keys(
    webhook: ModuleType, aws: Aws
) -> None:
    # Given a webhook secret with a misspelled key (an operator's slip)
    aws.secretsmanager.put_secret_value(
        SecretId="StripeWebhookSecret",
        SecretString=json.dumps(
            {
                "stripe_accounts": {"default": {"livemode": False, "webhook_secrets": ["w"]}},
                "email_hash_keys": "k",
            }
        ),
    )
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    # When anyone posts to the webhook
    status, answer = invoke(webhook, http_api_event(body, signature=sign(body)))
    # Then it is told to retry, and nothing of the secret's layout
    assert (status, answer["error"]) == (503, "secret_unavailable")
    assert "email_hash" not in answer["message"] and "stripe_accounts" not in answer["message"]


def test_the_webhook_reads_only_its_own_secret(
    webhook: ModuleType, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the bridge secret (API keys) cannot be read at all
    aws.secretsmanager.delete_secret(SecretId="BridgeSecret", ForceDeleteWithoutRecovery=True)
    body = body_of(stripe_event("basil", "invoice.paid.first"))
    # When Stripe delivers an event, Then it is taken as before
    status, answer = invoke(webhook, http_api_event(body, signature=sign(body)))
    assert (status, answer["status"]) == (200, "accepted")
    assert len(aws.drain("PaymentEventsQueue")) == 1
