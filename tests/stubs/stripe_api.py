"""A local stand-in for the two Stripe API reads the matcher makes, on 127.0.0.1.

GET /v1/customers/{id}, GET /v1/invoice_payments?payment[payment_intent]=…,
GET /v1/checkout/sessions?payment_intent=…, GET /v1/promotion_codes/{id} and
GET /v1/invoices/{id} (its ``discounts``, expanded as the request asks), answered
from what the test put in the fields below; a path under ``refused`` answers 403 as
a restricted key without that permission does, one under ``unavailable`` 503.
Every request is recorded (path, query, Authorization) so tests can assert on them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class StripeApiStub:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # payment intent id → invoice id
    invoice_payments: dict[str, str] = field(default_factory=dict)
    # payment intent id → Checkout Session id
    checkout_sessions: dict[str, str] = field(default_factory=dict)
    # promotion code id → the code customers type
    promotion_codes: dict[str, str] = field(default_factory=dict)
    # invoice id → its discounts, in order: (discount id, promotion code id or None)
    invoice_discounts: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    # path prefixes answered 403 (a restricted key without the permission)
    refused: set[str] = field(default_factory=set)
    # path prefixes answered 503 (Stripe unavailable; the library retries them)
    unavailable: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if any(path.startswith(prefix) for prefix in self.unavailable):
            return 503, {"error": {"type": "api_error", "message": "unavailable"}}
        if any(path.startswith(prefix) for prefix in self.refused):
            return 403, {
                "error": {
                    "type": "invalid_request_error",
                    "message": "The provided key does not have the required permissions.",
                }
            }
        if path.startswith("/v1/promotion_codes/"):
            promo = path.rsplit("/", 1)[1]
            if promo not in self.promotion_codes:
                return 404, _missing("promotion_code", promo)
            return 200, {
                "id": promo,
                "object": "promotion_code",
                "code": self.promotion_codes[promo],
                "active": True,
            }
        if path.startswith("/v1/invoices/"):
            invoice = path.rsplit("/", 1)[1]
            if invoice not in self.invoice_discounts:
                return 404, _missing("invoice", invoice)
            expanded = set(query.get("expand[0]", []) + query.get("expand[]", []))
            discounts: list[Any] = []
            for discount_id, promo in self.invoice_discounts[invoice]:
                if "discounts" not in {e.split(".")[0] for e in expanded}:
                    discounts.append(discount_id)
                    continue
                promotion: Any = promo
                if promo and "discounts.promotion_code" in expanded:
                    promotion = {
                        "id": promo,
                        "object": "promotion_code",
                        "code": self.promotion_codes.get(promo),
                    }
                discounts.append(
                    {"id": discount_id, "object": "discount", "promotion_code": promotion}
                )
            return 200, {"id": invoice, "object": "invoice", "discounts": discounts}
        if path.startswith("/v1/customers/"):
            customer_id = path.rsplit("/", 1)[1]
            if customer_id not in self.customers:
                return 404, {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "message": f"No such customer: '{customer_id}'",
                    }
                }
            return 200, {"id": customer_id, "object": "customer", **self.customers[customer_id]}
        if path == "/v1/invoice_payments":
            intent = query.get("payment[payment_intent]", [""])[0]
            data = []
            if intent in self.invoice_payments:
                data.append(
                    {
                        "id": f"inpay_{intent}",
                        "object": "invoice_payment",
                        "invoice": self.invoice_payments[intent],
                        "payment": {"type": "payment_intent", "payment_intent": intent},
                    }
                )
            return 200, {
                "object": "list",
                "data": data,
                "has_more": False,
                "url": "/v1/invoice_payments",
            }
        if path == "/v1/checkout/sessions":
            intent = query.get("payment_intent", [""])[0]
            sessions = (
                [
                    {
                        "id": self.checkout_sessions[intent],
                        "object": "checkout.session",
                        "payment_intent": intent,
                    }
                ]
                if intent in self.checkout_sessions
                else []
            )
            return 200, {
                "object": "list",
                "data": sessions,
                "has_more": False,
                "url": "/v1/checkout/sessions",
            }
        return 404, {"error": {"type": "invalid_request_error", "message": "unknown path"}}


def _missing(kind: str, object_id: str) -> dict[str, Any]:
    return {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such {kind}: '{object_id}'",
        }
    }


@contextmanager
def running_stripe_stub() -> Iterator[StripeApiStub]:
    stub = StripeApiStub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            query = parse_qs(split.query)
            stub.requests.append(
                {
                    "path": split.path,
                    "query": query,
                    "authorization": self.headers.get("authorization"),
                }
            )
            status, payload = stub.answer(split.path, query)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("request-id", "req_stub")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
