"""Click intake validation: what POST /clicks accepts, and the field it names when not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stripe_everflow.clicks.register import (
    BodyMalformedError,
    ClickInput,
    check_bearer_token,
    parse_click,
    parse_click_request,
)
from stripe_everflow.domain.attribution import StoredClick
from stripe_everflow.domain.emails import email_hash
from stripe_everflow.domain.errors import (
    ClickFieldError,
    PayloadTooLargeError,
    SecretUnavailableError,
    UnauthorizedError,
)
from stripe_everflow.domain.secret import BridgeSecret, parse_bridge_secret
from tests.support import bridge_secret

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
HASH_KEY = "test-email-hash-key"
TOKEN = "test-click-token"
ACCOUNTS = ("default", "eu-store")
CLICK: dict[str, Any] = {"email": "jenny.rosen@example.com", "transaction_id": "ef_tx_9f1c2a7b"}


def secret(**overrides: Any) -> BridgeSecret:
    return parse_bridge_secret(json.dumps(bridge_secret(**overrides)))


def body(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


def parse_request(
    raw: bytes, *, the_secret: BridgeSecret | None = None, max_clicks: int = 3
) -> tuple[list[ClickInput], bool]:
    return parse_click_request(
        raw,
        secret=the_secret or secret(),
        max_clicks=max_clicks,
        max_body_bytes=4096,
        now=NOW,
    )


def parse_one(**fields: Any) -> ClickInput:
    return parse_click(CLICK | fields, hash_key=HASH_KEY, accounts=ACCOUNTS, now=NOW)


def field_error(**fields: Any) -> ClickFieldError:
    with pytest.raises(ClickFieldError) as caught:
        parse_one(**fields)
    return caught.value


# --------------------------------------------------------------- accepted clicks


def test_single_click_is_parsed_with_defaults() -> None:
    # When
    clicks, batch = parse_request(body(CLICK))

    # Then
    assert batch is False
    assert clicks == [
        ClickInput(
            email_hash=email_hash("jenny.rosen@example.com", HASH_KEY),
            click=StoredClick("ef_tx_9f1c2a7b", occurred_at=NOW, source="api"),
            stripe_customer_id=None,
            stripe_account="default",
        )
    ]


def test_every_optional_field_is_kept() -> None:
    item = parse_one(
        offer_id=12,
        affiliate_id="7",
        stripe_customer_id="cus_QbridgeJenny01",
        stripe_account="eu-store",
        occurred_at="2025-12-31T23:58:00Z",
    )

    assert item.click == StoredClick("ef_tx_9f1c2a7b", 1767225480, offer_id="12", affiliate_id="7")
    assert (item.stripe_customer_id, item.stripe_account) == ("cus_QbridgeJenny01", "eu-store")


def test_batch_of_clicks_is_parsed_in_order() -> None:
    second = {"email": "sam@example.org", "transaction_id": "ef_tx_2", "occurred_at": NOW - 60}

    clicks, batch = parse_request(body([CLICK, second]))

    assert batch is True
    assert [c.click.transaction_id for c in clicks] == ["ef_tx_9f1c2a7b", "ef_tx_2"]
    assert clicks[1].click.occurred_at == NOW - 60


def test_email_is_normalized_before_hashing() -> None:
    # Given the same address in another case and with spaces around it
    plain = parse_one(email="jenny.rosen@example.com")
    shouted = parse_one(email="  Jenny.ROSEN@Example.COM \t")

    # Then both hash alike, and the hash is not the address
    assert shouted.email_hash == plain.email_hash
    assert "jenny" not in plain.email_hash


def test_transaction_id_is_trimmed() -> None:
    assert parse_one(transaction_id="  ef_tx_1  ").click.transaction_id == "ef_tx_1"


def test_occurred_at_with_offset_is_read_as_that_instant() -> None:
    assert parse_one(occurred_at="2026-01-01T01:00:00+01:00").click.occurred_at == NOW


def test_occurred_at_up_to_a_day_ahead_is_tolerated() -> None:
    # Clocks of the advertiser's site may run ahead
    assert parse_one(occurred_at=NOW + 86_400).click.occurred_at == NOW + 86_400


# --------------------------------------------------------------- refused fields


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": 42}, "email"),
        ({"email": None}, "email"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"transaction_id": "   "}, "transaction_id"),
        ({"transaction_id": None}, "transaction_id"),
        ({"transaction_id": "x" * 129}, "transaction_id"),
        ({"transaction_id": "ef tx"}, "transaction_id"),
        ({"transaction_id": "ef/tx"}, "transaction_id"),
        ({"transaction_id": "ef_tx<script>"}, "transaction_id"),
        ({"offer_id": "abc"}, "offer_id"),
        ({"offer_id": True}, "offer_id"),
        ({"offer_id": -3}, "offer_id"),
        ({"offer_id": 1.5}, "offer_id"),
        ({"affiliate_id": "7a"}, "affiliate_id"),
        ({"stripe_customer_id": "cust_123"}, "stripe_customer_id"),
        ({"stripe_customer_id": "acct_1QbridgeDemo01"}, "stripe_customer_id"),
        ({"stripe_customer_id": 12}, "stripe_customer_id"),
        ({"stripe_account": "us-store"}, "stripe_account"),
        ({"stripe_account": "Default"}, "stripe_account"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),
        ({"occurred_at": "2026-01-01"}, "occurred_at"),
        ({"occurred_at": NOW + 86_401}, "occurred_at"),
        ({"occurred_at": "2026-01-03T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": 0}, "occurred_at"),
        ({"occurred_at": True}, "occurred_at"),
        ({"occurred_at": 1767225600.5}, "occurred_at"),
        ({"amount": 49}, "amount"),
    ],
)
def test_bad_field_is_named(fields: dict[str, Any], field: str) -> None:
    assert field_error(**fields).field == field


def test_missing_required_fields_are_named() -> None:
    def error_for(raw: dict[str, Any]) -> str:
        with pytest.raises(ClickFieldError) as caught:
            parse_click(raw, hash_key=HASH_KEY, accounts=ACCOUNTS, now=NOW)
        return caught.value.field

    assert error_for({"transaction_id": "ef_tx_1"}) == "email"
    assert error_for({"email": "jenny.rosen@example.com"}) == "transaction_id"


def test_transaction_id_of_128_characters_is_accepted() -> None:
    assert parse_one(transaction_id="x" * 128).click.transaction_id == "x" * 128


def test_naive_time_says_the_time_zone_is_missing() -> None:
    error = field_error(occurred_at="2026-01-01T00:00:00")

    assert "time zone" in error.problem


def test_click_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ClickFieldError) as caught:
        parse_request(body("jenny.rosen@example.com"))

    assert caught.value.field == "click"


# --------------------------------------------------------------- batches and bodies


def test_batch_error_names_the_item_and_its_field() -> None:
    # Given a batch whose third click has a bad offer id
    bad = CLICK | {"transaction_id": "ef_tx_3", "offer_id": "twelve"}

    with pytest.raises(ClickFieldError) as caught:
        parse_request(body([CLICK, CLICK, bad]))

    # Then the error points at it
    assert caught.value.field == "clicks[2].offer_id"
    assert caught.value.reason == "invalid_field"


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ClickFieldError) as caught:
        parse_request(b"[]")

    assert caught.value.field == "clicks"


def test_batch_over_the_maximum_is_too_large() -> None:
    with pytest.raises(PayloadTooLargeError):
        parse_request(body([CLICK] * 4), max_clicks=3)


def test_batch_at_the_maximum_is_accepted() -> None:
    clicks, _ = parse_request(body([CLICK] * 3), max_clicks=3)

    assert len(clicks) == 3


def test_body_over_the_byte_limit_is_too_large() -> None:
    raw = body(CLICK)

    with pytest.raises(PayloadTooLargeError):
        parse_click_request(
            raw, secret=secret(), max_clicks=3, max_body_bytes=len(raw) - 1, now=NOW
        )
    assert parse_click_request(raw, secret=secret(), max_clicks=3, max_body_bytes=len(raw), now=NOW)


@pytest.mark.parametrize("raw", [b"", b"{", b"email=jenny", b"\xff\xfe{}"])
def test_body_that_is_not_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(BodyMalformedError):
        parse_request(raw)


def test_missing_email_hash_key_closes_the_intake() -> None:
    # Given a secret without the key that hashes emails
    keyless = secret(email_hash_key=None)

    with pytest.raises(SecretUnavailableError):
        parse_request(body(CLICK), the_secret=keyless)


def test_click_for_an_account_the_secret_names_is_accepted() -> None:
    clicks, _ = parse_request(body(CLICK | {"stripe_account": "eu-store"}))

    assert clicks[0].stripe_account == "eu-store"


# --------------------------------------------------------------- bearer token


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"  Bearer   {TOKEN}  "])
def test_right_bearer_token_is_accepted(header: str) -> None:
    check_bearer_token(header, secret())


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        f"Token {TOKEN}",
        "Bearer t\u00f6ken",
    ],
)
def test_wrong_or_missing_bearer_token_is_unauthorized(header: str | None) -> None:
    with pytest.raises(UnauthorizedError):
        check_bearer_token(header, secret())


@pytest.mark.parametrize("missing", [None, ""])
def test_no_configured_token_closes_the_intake(missing: str | None) -> None:
    # Given a secret without a click-intake token, even an empty header must not pass
    no_token = secret(click_intake_token=missing)

    for header in (None, "", "Bearer ", f"Bearer {TOKEN}"):
        with pytest.raises(SecretUnavailableError):
            check_bearer_token(header, no_token)


# ------------------------------------------------------------------ hostile text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "jenny\ud800@example.com"}, "email"),
        ({"email": "jenny\x00@example.com"}, "email"),
        ({"transaction_id": "ef_tx_\ud800"}, "transaction_id"),
        ({"transaction_id": "ef_tx\n2"}, "transaction_id"),
        ({"stripe_customer_id": "cus_1\n"}, "stripe_customer_id"),
        ({"offer_id": "12\n"}, "offer_id"),
        ({"occurred_at": "\ud800"}, "occurred_at"),
    ],
)
def test_text_that_is_not_clean_is_refused_naming_the_field(
    fields: dict[str, Any], field: str
) -> None:
    assert field_error(**fields).field == field


@pytest.mark.parametrize("name", ["\ud800", "x" * 5000, "a b", "é"])
def test_an_unknown_field_with_an_odd_name_is_not_echoed(name: str) -> None:
    error = field_error(**{name: 1})
    assert (error.field, error.problem) == ("click", "has a field that is not a known field")


def test_an_unknown_field_with_a_plain_name_is_named() -> None:
    assert field_error(colour="red").field == "colour"


def test_a_token_without_bytes_is_unauthorized_not_a_crash() -> None:
    with pytest.raises(UnauthorizedError):
        check_bearer_token("Bearer \ud800", secret())
