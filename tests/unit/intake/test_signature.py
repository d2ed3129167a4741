"""The Stripe-Signature checklist (after stripe-python's tests/test_webhook.py)."""

from __future__ import annotations

import time

import pytest
import stripe

from stripe_everflow.domain.errors import (
    SignatureHeaderMalformedError,
    SignatureHeaderMissingError,
    SignatureMismatchError,
    SignatureSchemeMissingError,
    TimestampFutureError,
    TimestampStaleError,
)
from stripe_everflow.intake.signature import verify_signature
from tests.support import OLD_SECRET, TEST_SECRET, body_of, sign, stripe_event

NOW = 1_767_225_600
BODY = body_of(stripe_event("basil", "invoice.paid.first"))


def verify(body: bytes, header: str | None, secrets: tuple[str, ...] = (TEST_SECRET,)) -> int:
    return verify_signature(body, header, secrets, now=NOW, tolerance=300)


def test_accepts_a_header_made_by_the_stripe_library() -> None:
    # Given a body signed now, as Stripe signs it
    now = int(time.time())
    header = sign(BODY, TEST_SECRET, now)
    # When / Then it verifies and yields the signed timestamp
    assert verify_signature(BODY, header, (TEST_SECRET,), now=now, tolerance=300) == now
    # and the stripe library agrees with our verdict on the same input
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, TEST_SECRET, 300)


def test_accepts_when_any_of_several_v1_signatures_matches() -> None:
    good = sign(BODY, TEST_SECRET, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good},v1={'f' * 64}"
    assert verify(BODY, header) == NOW


def test_accepts_a_signature_from_the_previous_secret_while_rolling() -> None:
    header = sign(BODY, OLD_SECRET, NOW)
    assert verify(BODY, header, (TEST_SECRET, OLD_SECRET)) == NOW


def test_accepts_the_two_signatures_stripe_sends_while_rolling() -> None:
    new, old = sign(BODY, TEST_SECRET, NOW), sign(BODY, OLD_SECRET, NOW)
    header = f"{new},{old.split(',')[1]}"
    assert verify(BODY, header, (OLD_SECRET,)) == NOW


def test_rejects_a_signature_made_with_another_secret() -> None:
    header = sign(BODY, "whsec_someone_else", NOW)
    with pytest.raises(SignatureMismatchError):
        verify(BODY, header)


def test_rejects_a_body_with_one_byte_changed() -> None:
    header = sign(BODY, TEST_SECRET, NOW)
    tampered = BODY.replace(b'"amount_paid": 4900', b'"amount_paid": 4901')
    assert tampered != BODY
    with pytest.raises(SignatureMismatchError):
        verify(tampered, header)


def test_rejects_a_reserialized_body() -> None:
    # Signature covers the raw bytes: the same JSON, compacted, is a different body.
    header = sign(BODY, TEST_SECRET, NOW)
    compact = BODY.replace(b"\n", b"").replace(b"  ", b"")
    with pytest.raises(SignatureMismatchError):
        verify(compact, header)


def test_rejects_a_timestamp_older_than_the_tolerance() -> None:
    header = sign(BODY, TEST_SECRET, NOW - 301)
    with pytest.raises(TimestampStaleError):
        verify(BODY, header)


def test_accepts_a_timestamp_exactly_at_the_tolerance() -> None:
    assert verify(BODY, sign(BODY, TEST_SECRET, NOW - 300)) == NOW - 300
    assert verify(BODY, sign(BODY, TEST_SECRET, NOW + 300)) == NOW + 300


def test_rejects_a_timestamp_in_the_future() -> None:
    header = sign(BODY, TEST_SECRET, NOW + 301)
    with pytest.raises(TimestampFutureError):
        verify(BODY, header)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_rejects_a_missing_header(header: str | None) -> None:
    with pytest.raises(SignatureHeaderMissingError):
        verify(BODY, header)


def test_rejects_a_header_without_timestamp() -> None:
    signature = sign(BODY, TEST_SECRET, NOW).split(",")[1]
    with pytest.raises(SignatureHeaderMalformedError):
        verify(BODY, signature)


@pytest.mark.parametrize("timestamp", ["abc", "-5", "1.5", "١٢٣"])
def test_rejects_a_timestamp_that_is_not_a_number(timestamp: str) -> None:
    with pytest.raises(SignatureHeaderMalformedError):
        verify(BODY, f"t={timestamp},v1={'0' * 64}")


def test_rejects_a_header_with_other_schemes_only() -> None:
    v1 = sign(BODY, TEST_SECRET, NOW).split(",")[1].removeprefix("v1=")
    with pytest.raises(SignatureSchemeMissingError):
        verify(BODY, f"t={NOW},v0={v1},v2={v1}")


def test_rejects_non_ascii_signature_without_crashing() -> None:
    with pytest.raises(SignatureMismatchError):
        verify(BODY, f"t={NOW},v1=é{'0' * 63}")


def test_rejects_an_overlong_header() -> None:
    with pytest.raises(SignatureHeaderMalformedError):
        verify(BODY, f"t={NOW}," + ",".join(["v1=" + "0" * 64] * 100))


def test_refuses_a_zero_tolerance() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        verify_signature(BODY, sign(BODY, TEST_SECRET, NOW), (TEST_SECRET,), now=NOW, tolerance=0)


@pytest.mark.parametrize("value", ["\ud800", "\udcff" * 64, "é" * 64])
def test_rejects_a_signature_without_bytes_without_crashing(value: str) -> None:
    with pytest.raises(SignatureMismatchError):
        verify(BODY, f"t={NOW},v1={value}")
