"""Click intake: the advertiser (or an Everflow postback) reports email → click.

Body: one click object, or a JSON list of them (at most ``max_clicks``)::

    {"email": "jenny@example.com", "transaction_id": "…", "offer_id": 12,
     "affiliate_id": 7, "stripe_customer_id": "cus_…", "stripe_account": "default",
     "occurred_at": 1767225600 | "2026-01-01T00:00:00Z"}

``email`` and ``transaction_id`` are required. Every click of a request is validated
before anything is written: one bad item refuses the whole request.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stripe_everflow.domain.attribution import (
    TRANSACTION_ID_RULE,
    StoredClick,
    read_transaction_id,
)
from stripe_everflow.domain.emails import email_hash, normalize_email
from stripe_everflow.domain.errors import (
    ClickFieldError,
    ClickRequestError,
    PayloadTooLargeError,
    SecretUnavailableError,
    UnauthorizedError,
)
from stripe_everflow.domain.records import parked_customer_pk, parked_email_pk
from stripe_everflow.domain.secret import ACCOUNT_NAME_PATTERN, DEFAULT_ACCOUNT, BridgeSecret
from stripe_everflow.parking import replay_parked
from stripe_everflow.ports import MessageSender
from stripe_everflow.ports.attribution import AttributionStore

FIELDS = {
    "email",
    "transaction_id",
    "offer_id",
    "affiliate_id",
    "stripe_customer_id",
    "stripe_account",
    "occurred_at",
}
_NUMERIC_ID = re.compile(r"[0-9]{1,18}")
_CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{1,64}")
# An unknown field is named back only when its name is plain: never echo 5,000
# characters or text without a UTF-8 form.
_PLAIN_FIELD_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
MAX_FUTURE_SKEW_SECONDS = 86_400


class BodyMalformedError(ClickRequestError):
    reason = "body_not_json"


@dataclass(frozen=True)
class ClickInput:
    email_hash: str
    click: StoredClick
    stripe_customer_id: str | None
    stripe_account: str


@dataclass(frozen=True)
class ClickResult:
    transaction_id: str
    status: str  # stored | already_stored


def check_bearer_token(authorization: str | None, secret: BridgeSecret) -> None:
    """Constant-time check of ``Authorization: Bearer <token>``.

    Raises UnauthorizedError; SecretUnavailableError when no token is configured
    (the intake is closed, not open).
    """
    if not secret.click_intake_token:
        raise SecretUnavailableError("click_intake_token is missing from the bridge secret")
    scheme, _, token = (authorization or "").strip().partition(" ")
    expected = secret.click_intake_token.encode("utf-8")
    given = token.strip().encode("utf-8", "surrogatepass")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
        raise UnauthorizedError("missing or wrong bearer token")


def _optional_numeric_id(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or not _NUMERIC_ID.fullmatch(str(value))
    ):
        raise ClickFieldError(name, "must be an Everflow numeric id")
    return str(value)


def _occurred_at(raw: dict[str, Any], now: int) -> int:
    value = raw.get("occurred_at")
    if value is None:
        return now
    if isinstance(value, bool):
        raise ClickFieldError("occurred_at", "must be unix seconds or an ISO 8601 time")
    if isinstance(value, int):
        moment = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ClickFieldError(
                "occurred_at", "must be unix seconds or an ISO 8601 time"
            ) from None
        if parsed.tzinfo is None:
            raise ClickFieldError("occurred_at", "must include a time zone")
        moment = int(parsed.timestamp())
    else:
        raise ClickFieldError("occurred_at", "must be unix seconds or an ISO 8601 time")
    if moment <= 0 or moment > now + MAX_FUTURE_SKEW_SECONDS:
        raise ClickFieldError("occurred_at", "is not a plausible time")
    return moment


def parse_click(raw: Any, *, hash_key: str, accounts: Sequence[str], now: int) -> ClickInput:
    """Validate one click; raises ClickFieldError naming the field."""
    if not isinstance(raw, dict):
        raise ClickFieldError("click", "must be a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        name = unknown[0]
        if not _PLAIN_FIELD_NAME.fullmatch(name):
            raise ClickFieldError("click", "has a field that is not a known field")
        raise ClickFieldError(name, "is not a known field")
    email = raw.get("email")
    if not isinstance(email, str):
        raise ClickFieldError("email", "is required and must be a string")
    normalized = normalize_email(email)
    raw_transaction_id = raw.get("transaction_id")
    if not isinstance(raw_transaction_id, str) or not raw_transaction_id.strip():
        raise ClickFieldError("transaction_id", "is required and must be a non-empty string")
    # The one rule for click ids, shared with those Stripe carries in metadata.
    transaction_id = read_transaction_id(raw_transaction_id)
    if transaction_id is None:
        raise ClickFieldError("transaction_id", f"must be {TRANSACTION_ID_RULE}")
    customer = raw.get("stripe_customer_id")
    if customer is not None and (
        not isinstance(customer, str) or not _CUSTOMER_ID.fullmatch(customer)
    ):
        raise ClickFieldError("stripe_customer_id", "must be a Stripe customer id (cus_…)")
    account = raw.get("stripe_account", DEFAULT_ACCOUNT)
    if (
        not isinstance(account, str)
        or not ACCOUNT_NAME_PATTERN.match(account)
        or account not in accounts
    ):
        raise ClickFieldError("stripe_account", "is not a configured Stripe account")
    return ClickInput(
        email_hash=email_hash(normalized, hash_key),
        click=StoredClick(
            transaction_id=transaction_id,
            occurred_at=_occurred_at(raw, now),
            offer_id=_optional_numeric_id(raw, "offer_id"),
            affiliate_id=_optional_numeric_id(raw, "affiliate_id"),
            source="api",
        ),
        stripe_customer_id=customer,
        stripe_account=account,
    )


def parse_click_request(
    body: bytes, *, secret: BridgeSecret, max_clicks: int, max_body_bytes: int, now: int
) -> tuple[list[ClickInput], bool]:
    """Every click of a request, validated; returns (clicks, was_a_batch).

    Raises PayloadTooLargeError, BodyMalformedError or ClickFieldError (with the
    item's index in a batch). Nothing is written by this function.
    """
    if len(body) > max_body_bytes:
        raise PayloadTooLargeError(f"the body is over {max_body_bytes} bytes")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise BodyMalformedError("the body is not valid JSON") from None
    if not secret.email_hash_key:
        raise SecretUnavailableError("email_hash_key is missing from the bridge secret")
    accounts = list(secret.stripe_accounts)
    if isinstance(document, list):
        if not document:
            raise ClickFieldError("clicks", "must hold at least one click")
        if len(document) > max_clicks:
            raise PayloadTooLargeError(f"a batch holds at most {max_clicks} clicks")
        clicks = []
        for index, raw in enumerate(document):
            try:
                clicks.append(
                    parse_click(raw, hash_key=secret.email_hash_key, accounts=accounts, now=now)
                )
            except ClickFieldError as error:
                raise error.at(index) from None
        return clicks, True
    return [
        parse_click(document, hash_key=secret.email_hash_key, accounts=accounts, now=now)
    ], False


def register_clicks(
    clicks: Sequence[ClickInput],
    *,
    store: AttributionStore,
    payment_events: MessageSender,
    clock: Callable[[], float],
) -> tuple[list[ClickResult], int]:
    """Store clicks (idempotently), pin customers, replay payments that waited.

    Returns each click's status and how many parked payments went back to
    PaymentEventsQueue. AWS errors propagate (the caller answers 503; a resend is
    safe: every write is idempotent).
    """
    now = int(clock())
    results, parked_pks = [], []
    for item in clicks:
        new = store.put_click(item.email_hash, item.click)
        results.append(
            ClickResult(item.click.transaction_id, "stored" if new else "already_stored")
        )
        parked_pks.append(parked_email_pk(item.email_hash))
        if item.stripe_customer_id:
            store.pin_customer(item.stripe_account, item.stripe_customer_id, item.click, now)
            parked_pks.append(parked_customer_pk(item.stripe_account, item.stripe_customer_id))
    replayed = replay_parked(store, payment_events, dict.fromkeys(parked_pks), now)
    return results, replayed
