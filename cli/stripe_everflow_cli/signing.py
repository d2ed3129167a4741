"""Signing Stripe events with a webhook secret, as Stripe does, through the stripe
library's own helper — for the demo, the tests and `stripe-everflow send|sign`."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
import stripe


def serialize_event(event: dict[str, Any]) -> bytes:
    # Stripe sends pretty-printed JSON; the signature covers these exact bytes.
    return json.dumps(event, indent=2).encode("utf-8")


def signature_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    return str(
        stripe.WebhookSignature.generate_signature_header(
            body.decode("utf-8"),
            secret,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
    )


def post_signed(
    url: str,
    body: bytes,
    header: str | None,
    *,
    session: requests.Session | None = None,
    timeout: float = 30.0,
) -> requests.Response:
    """POST a webhook the way Stripe does (JSON body, Stripe-Signature header)."""
    headers = {"content-type": "application/json; charset=utf-8", "user-agent": "Stripe/1.0"}
    if header is not None:
        headers["stripe-signature"] = header
    return (session or requests).post(url, data=body, headers=headers, timeout=timeout)
