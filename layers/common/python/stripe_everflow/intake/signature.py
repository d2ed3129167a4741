"""Stripe-Signature verification over the raw request body.

Implemented on the standard library (the same algorithm as
``stripe.WebhookSignature.verify_header``) for two reasons: importing the stripe
package would add tens of milliseconds to the webhook function's cold start, and the
library accepts one secret and only bounds the past — the bridge needs every active
secret of an account (rolling) and refuses timestamps in the future as well.

Header: ``t=<unix seconds>,v1=<hex>[,v1=<hex>…]``; the signature is
HMAC-SHA256(secret, ``b"<t>." + raw body``). Only ``v1`` counts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from stripe_everflow.domain.errors import (
    SignatureHeaderMalformedError,
    SignatureHeaderMissingError,
    SignatureMismatchError,
    SignatureSchemeMissingError,
    TimestampFutureError,
    TimestampStaleError,
)

SIGNATURE_SCHEME = "v1"
# A header longer than this is not something Stripe sends (one v1 per active secret).
MAX_HEADER_LENGTH = 4096


def parse_signature_header(header: str | None) -> tuple[int, list[bytes]]:
    """Split the header into its timestamp and its v1 signatures.

    Raises SignatureHeaderMissingError, SignatureHeaderMalformedError (no integer
    ``t``) or SignatureSchemeMissingError (no ``v1``). None of them is retried.
    """
    if header is None or not header.strip():
        raise SignatureHeaderMissingError("the Stripe-Signature header is missing")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureHeaderMalformedError("the Stripe-Signature header is too long")
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, separator, value = item.strip().partition("=")
        if not separator:
            continue
        if key == "t":
            if not value.isascii() or not value.isdigit():
                raise SignatureHeaderMalformedError(
                    "the Stripe-Signature timestamp is not a number"
                )
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            # Only hex can match; anything else is kept as bytes that never will.
            signatures.append(value.encode("utf-8", "surrogatepass"))
    if timestamp is None:
        raise SignatureHeaderMalformedError("the Stripe-Signature header has no timestamp (t=)")
    if not signatures:
        raise SignatureSchemeMissingError("the Stripe-Signature header has no v1 signature")
    return timestamp, signatures


def compute_signature(body: bytes, timestamp: int, secret: str) -> bytes:
    signed_payload = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed_payload, hashlib.sha256).hexdigest().encode()


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: int,
) -> int:
    """Verify the request and return its signed timestamp.

    A request is genuine when any ``v1`` signature matches any of ``secrets``; it is
    fresh when its timestamp lies within ``tolerance`` seconds of ``now`` on either
    side. Raises (never retried): the header errors of ``parse_signature_header``,
    SignatureMismatchError, TimestampStaleError, TimestampFutureError.
    """
    if tolerance <= 0:
        raise ValueError("tolerance must be positive: 0 would accept replayed requests")
    timestamp, signatures = parse_signature_header(header)
    expected = [compute_signature(body, timestamp, secret) for secret in secrets]
    if not any(
        hmac.compare_digest(mine, candidate) for mine in expected for candidate in signatures
    ):
        raise SignatureMismatchError("no v1 signature matches an active webhook secret")
    if timestamp < now - tolerance:
        raise TimestampStaleError(f"the signed timestamp is more than {tolerance} s old")
    if timestamp > now + tolerance:
        raise TimestampFutureError(f"the signed timestamp is more than {tolerance} s ahead")
    return timestamp
