"""Reading Stripe's API with an account's restricted key (the stripe library).

Only what the matcher needs when a payload is not enough: a Customer's email and
metadata, whether a payment intent paid an invoice (basil and later), whether it
belongs to a Checkout Session, and the code customers type for a promotion code.
Network calls time out after 10 s and are retried twice by the library (it
honours Stripe's idempotent GETs); anything else raises StripeApiError, which fails
the record so SQS retries it — or StripeRefusedError where Stripe answered for good
(the key lacks the permission, the object does not exist).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from stripe_everflow.domain.errors import StripeApiError, StripeRefusedError
from stripe_everflow.ports.attribution import CustomerFacts

STRIPE_TIMEOUT_SECONDS = 10
STRIPE_MAX_NETWORK_RETRIES = 2


class StripeReader:
    """One reader per process; a client per API key (accounts have their own keys)."""

    def __init__(self, api_base: str | None = None) -> None:
        self._api_base = api_base

    @functools.cache  # noqa: B019 - one reader lives for the process; keys are few
    def _client(self, api_key: str) -> Any:
        import stripe

        options: dict[str, Any] = {
            "max_network_retries": STRIPE_MAX_NETWORK_RETRIES,
            "http_client": stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS),
        }
        if self._api_base:
            options["base_addresses"] = {"api": self._api_base}
        return stripe.StripeClient(api_key, **options)

    def customer(self, api_key: str, customer_id: str) -> CustomerFacts:
        """The customer's email and metadata. Raises StripeApiError (retried)."""
        import stripe

        try:
            customer = self._client(api_key).v1.customers.retrieve(customer_id)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return CustomerFacts(email=None, metadata={}, deleted=True)
            raise StripeApiError(
                f"customer lookup refused: {error.code or error.http_status}"
            ) from error
        except stripe.StripeError as error:
            raise StripeApiError(f"customer lookup failed: {type(error).__name__}") from error
        values = customer.to_dict() if hasattr(customer, "to_dict") else dict(customer)
        metadata = values.get("metadata") or {}
        return CustomerFacts(
            email=values.get("email") or None,
            metadata={str(k): str(v) for k, v in metadata.items()},
            deleted=bool(values.get("deleted")),
        )

    def invoice_of_payment_intent(self, api_key: str, payment_intent_id: str) -> str | None:
        """The invoice a payment intent paid, or None for a one-off payment."""
        import stripe

        try:
            page = self._client(api_key).v1.invoice_payments.list(
                params={
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                    "limit": 1,
                }
            )
        except stripe.StripeError as error:
            raise StripeApiError(
                f"invoice payment lookup failed: {type(error).__name__}"
            ) from error
        data = page.to_dict().get("data", []) if hasattr(page, "to_dict") else page["data"]
        for payment in data:
            invoice = payment.get("invoice")
            if isinstance(invoice, str):
                return invoice
            if isinstance(invoice, Mapping) and isinstance(invoice.get("id"), str):
                return str(invoice["id"])
        return None

    def checkout_session_of_payment_intent(
        self, api_key: str, payment_intent_id: str
    ) -> str | None:
        """The Checkout Session that created a payment intent, or None."""
        import stripe

        try:
            page = self._client(api_key).v1.checkout.sessions.list(
                params={"payment_intent": payment_intent_id, "limit": 1}
            )
        except stripe.StripeError as error:
            raise StripeApiError(
                f"checkout session lookup failed: {type(error).__name__}"
            ) from error
        data = page.to_dict().get("data", []) if hasattr(page, "to_dict") else page["data"]
        for session in data:
            if isinstance(session.get("id"), str):
                return str(session["id"])
        return None

    def promotion_code(self, api_key: str, promotion_code_id: str) -> str:
        """The code customers type (``FALL20``) for a promotion code id."""
        import stripe

        try:
            promotion = self._client(api_key).v1.promotion_codes.retrieve(promotion_code_id)
        except stripe.StripeError as error:
            raise _failure("promotion code lookup", error) from error
        code = _values(promotion).get("code")
        if not isinstance(code, str) or not code:
            raise StripeRefusedError("promotion code lookup: no code in Stripe's answer")
        return code

    def invoice_promotion_codes(
        self, api_key: str, invoice_id: str
    ) -> dict[str, tuple[str | None, str | None]]:
        """Each of an invoice's discounts (basil invoices name only their ids): discount
        id → (promotion code id, its code), both None for a coupon applied as is."""
        import stripe

        try:
            invoice = self._client(api_key).v1.invoices.retrieve(
                invoice_id, params={"expand": ["discounts.promotion_code"]}
            )
        except stripe.StripeError as error:
            raise _failure("invoice discounts lookup", error) from error
        codes: dict[str, tuple[str | None, str | None]] = {}
        for discount in _values(invoice).get("discounts") or []:
            if not isinstance(discount, Mapping) or not isinstance(discount.get("id"), str):
                continue
            promotion = discount.get("promotion_code")
            if isinstance(promotion, Mapping):
                code = promotion.get("code")
                codes[discount["id"]] = (
                    str(promotion.get("id")),
                    code if isinstance(code, str) and code else None,
                )
            else:
                codes[discount["id"]] = (promotion if isinstance(promotion, str) else None, None)
        return codes


def _values(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _failure(what: str, error: Exception) -> StripeApiError:
    """StripeRefusedError when Stripe answered for good (401, 403, 404), else
    StripeApiError (retried)."""
    import stripe

    status = getattr(error, "http_status", None)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)) or status in (
        401,
        403,
        404,
    ):
        return StripeRefusedError(f"{what} refused: {status or type(error).__name__}")
    return StripeApiError(f"{what} failed: {type(error).__name__}")
