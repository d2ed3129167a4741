"""HTTP API payload 2.0 parsing and the error → status mapping."""

from __future__ import annotations

import base64
import json

import pytest

from stripe_everflow.adapters.apigw import error_response, parse_http_request, status_for
from stripe_everflow.domain import errors
from tests.support import http_api_event


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.PayloadTooLargeError("x"), 413),
        (errors.UnknownAccountError("x"), 404),
        (errors.RouteNotFoundError("x"), 404),
        (errors.SignatureMismatchError("x"), 400),
        (errors.TimestampStaleError("x"), 400),
        (errors.BodyNotJsonError("x"), 400),
        (errors.BodyEncodingError("x"), 400),
        (errors.SecretUnavailableError("x"), 503),
        (errors.QueueUnavailableError("x"), 503),
        (errors.ConfigurationError("x"), 500),
    ],
)
def test_each_error_has_its_status(error: errors.BridgeError, status: int) -> None:
    assert status_for(error) == status


def test_error_answer_names_the_reason() -> None:
    answer = error_response(errors.TimestampStaleError("the signed timestamp is old"))
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"]) == {
        "error": "timestamp_stale",
        "message": "the signed timestamp is old",
    }


def test_base64_body_is_decoded_to_the_exact_bytes() -> None:
    raw = '{"a": "é"}\n'.encode()
    request = parse_http_request(http_api_event(raw, base64_body=True), max_body_bytes=1000)
    assert request.body == raw


def test_headers_are_read_case_insensitively() -> None:
    event = http_api_event(b"{}", headers={"Stripe-Signature": "t=1,v1=ab"})
    request = parse_http_request(event, max_body_bytes=1000)
    assert request.header("STRIPE-SIGNATURE") == "t=1,v1=ab"


def test_body_flagged_base64_that_is_not_is_refused() -> None:
    event = http_api_event(b"{}") | {"isBase64Encoded": True, "body": "not base64!"}
    with pytest.raises(errors.BodyEncodingError):
        parse_http_request(event, max_body_bytes=1000)


def test_oversized_base64_body_is_refused_before_decoding() -> None:
    event = http_api_event(b"x" * 2000, base64_body=True)
    with pytest.raises(errors.PayloadTooLargeError):
        parse_http_request(event, max_body_bytes=1000)


def test_base64_body_at_the_limit_is_accepted() -> None:
    event = http_api_event(b"x" * 1000, base64_body=True)
    assert len(base64.b64decode(event["body"])) == 1000
    assert len(parse_http_request(event, max_body_bytes=1000).body) == 1000


def test_missing_body_reads_as_empty() -> None:
    assert parse_http_request(http_api_event(None), max_body_bytes=10).body == b""


def test_body_with_a_lone_surrogate_is_refused_as_not_text() -> None:
    event = http_api_event(b"{}") | {"body": '{"a": "\ud800"}'}
    with pytest.raises(errors.BodyEncodingError):
        parse_http_request(event, max_body_bytes=1000)


def test_surrogate_escaped_body_bytes_are_restored() -> None:
    event = http_api_event(b"{}") | {"body": b'{"a": "\xff"}'.decode("utf-8", "surrogateescape")}
    assert parse_http_request(event, max_body_bytes=1000).body == b'{"a": "\xff"}'


def test_a_5xx_answer_says_retry_later_without_the_detail() -> None:
    # Given a failure whose text names a key of the secret
    error = errors.SecretUnavailableError("stripe_accounts.eu-store.apikey must be a string")
    # When it is answered
    answer = error_response(error)
    # Then the caller learns the reason and to retry, not the secret's shape
    assert answer["statusCode"] == 503
    body = json.loads(answer["body"])
    assert body["error"] == "secret_unavailable"
    assert "eu-store" not in answer["body"] and "retry later" in body["message"]
