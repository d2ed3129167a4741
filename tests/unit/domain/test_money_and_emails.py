"""Money in exact major units for Everflow; emails normalized and kept only as keyed hashes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stripe_everflow.domain.emails import email_hash, normalize_email, redact_emails, try_email_hash
from stripe_everflow.domain.errors import ClickFieldError
from stripe_everflow.domain.money import (
    ISO_4217_CURRENCIES,
    MAX_AMOUNT_MINOR,
    THREE_DECIMAL_CURRENCIES,
    ZERO_DECIMAL_CURRENCIES,
    currency_exponent,
    format_amount,
    iso_currency,
    to_major_units,
)

KEY = "test-email-hash-key"

# --------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (4900, "USD", "49.00"),
        (1, "USD", "0.01"),
        (1500, "EUR", "15.00"),
        (99_999_999, "USD", "999999.99"),
        (5000, "JPY", "5000"),  # zero-decimal: 5000 means 5000 yen
        (1, "KRW", "1"),
        (120_000, "VND", "120000"),
        (1500, "KWD", "1.500"),  # three-decimal
        (1, "BHD", "0.001"),
        (12_345, "TND", "12.345"),
    ],
)
def test_amount_is_formatted_in_the_currency_major_unit(
    minor: int, currency: str, text: str
) -> None:
    assert format_amount(minor, currency) == text


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(4900, "usd", "49.00"), (5000, "jpy", "5000"), (1500, "kwd", "1.500"), (1, "Bhd", "0.001")],
)
def test_currency_code_case_does_not_matter(minor: int, currency: str, text: str) -> None:
    # Stripe sends lowercase codes
    assert format_amount(minor, currency) == text


@pytest.mark.parametrize(("currency", "text"), [("USD", "0.00"), ("JPY", "0"), ("KWD", "0.000")])
def test_zero_keeps_the_currency_decimals(currency: str, text: str) -> None:
    assert format_amount(0, currency) == text


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(-4900, "USD", "-49.00"), (-5000, "JPY", "-5000"), (-1500, "KWD", "-1.500")],
)
def test_negative_amounts_are_exact(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text


def test_major_units_are_exact_decimals_never_floats() -> None:
    # 0.1 + 0.2 style errors cannot happen: 10 + 20 cents is exactly 0.30
    total = to_major_units(10, "usd") + to_major_units(20, "usd")

    assert isinstance(total, Decimal)
    assert total == Decimal("0.30")
    assert str(to_major_units(1999, "usd")) == "19.99"


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("USD", 2), ("eur", 2), ("JPY", 0), ("krw", 0), ("XOF", 0), ("KWD", 3), ("omr", 3)],
)
def test_currency_exponent_follows_stripes_table(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


# --------------------------------------------------------------- emails


@pytest.mark.parametrize(
    "raw",
    [
        "jenny.rosen@example.com",
        "Jenny.Rosen@Example.com",
        "  JENNY.ROSEN@EXAMPLE.COM  ",
        "\tjenny.rosen@example.com\n",
    ],
)
def test_email_is_trimmed_and_lowercased(raw: str) -> None:
    assert normalize_email(raw) == "jenny.rosen@example.com"


def test_plus_addresses_are_kept_as_given() -> None:
    # A tag may be how the advertiser tells accounts apart: the bridge does not strip it
    assert normalize_email("Jenny+Promo@Example.com") == "jenny+promo@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "jenny.rosen",
        "jenny.rosen@",
        "@example.com",
        "jenny@example",
        "jenny@example.",
        "jenny rosen@example.com",
        "jenny@@example.com",
        "jenny@exa@mple.com",
        "a" * 65 + "@example.com",
        "jenny@" + "a" * 250 + ".com",
    ],
)
def test_what_is_not_an_email_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(ClickFieldError) as caught:
        normalize_email(raw)

    assert caught.value.field == "email"


def test_email_hash_is_deterministic_hex() -> None:
    first = email_hash("jenny.rosen@example.com", KEY)

    assert first == email_hash("jenny.rosen@example.com", KEY)
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_email_hash_depends_on_the_key() -> None:
    # Without the key, a hash cannot be recomputed from a guessed address
    assert email_hash("jenny.rosen@example.com", KEY) != email_hash(
        "jenny.rosen@example.com", "another-key"
    )


def test_email_hash_differs_between_addresses() -> None:
    assert email_hash("jenny.rosen@example.com", KEY) != email_hash("jenny.rose@example.com", KEY)


def test_email_hash_is_the_hmac_sha256_of_the_address() -> None:
    import hashlib
    import hmac

    expected = hmac.new(KEY.encode(), b"jenny.rosen@example.com", hashlib.sha256).hexdigest()

    assert email_hash("jenny.rosen@example.com", KEY) == expected


def test_payload_email_hashes_like_the_normalized_click_email() -> None:
    # A Stripe payload's email in any case matches the click registered for it
    assert try_email_hash(" Jenny.Rosen@Example.COM", KEY) == email_hash(
        "jenny.rosen@example.com", KEY
    )


@pytest.mark.parametrize("raw", [None, "", "   ", "not an email", "jenny@", "@example.com"])
def test_try_email_hash_gives_none_for_junk(raw: str | None) -> None:
    assert try_email_hash(raw, KEY) is None


def test_redacted_payload_email_hashes_like_the_plain_email() -> None:
    # Given a payload whose email was redacted before it was queued
    redacted = redact_emails({"customer_email": " Jenny.Rosen@Example.com"}, KEY)["customer_email"]

    # Then the address is gone and the hash still matches the click's
    assert "jenny" not in redacted.lower()
    assert try_email_hash(redacted, KEY) == email_hash("jenny.rosen@example.com", KEY)


@pytest.mark.parametrize("raw", ["emailhash:not-a-hash", "emailhash:"])
def test_try_email_hash_refuses_a_malformed_redacted_value(raw: str) -> None:
    assert try_email_hash(raw, KEY) is None


# --------------------------------------------------------------- currencies


@pytest.mark.parametrize(("raw", "code"), [("usd", "USD"), ("EUR", "EUR"), ("jpy", "JPY")])
def test_an_iso_currency_is_read_upper_case(raw: str, code: str) -> None:
    assert iso_currency(raw) == code


@pytest.mark.parametrize(
    "raw", [None, "", "none", "zz", "usdollar", "XXX", "XAU", " usd", 840, ["usd"], "\ud800sd"]
)
def test_what_is_not_an_iso_currency_reads_as_none(raw: object) -> None:
    assert iso_currency(raw) is None


def test_every_currency_with_a_special_exponent_is_an_iso_currency() -> None:
    assert ZERO_DECIMAL_CURRENCIES <= ISO_4217_CURRENCIES
    assert THREE_DECIMAL_CURRENCIES <= ISO_4217_CURRENCIES


def test_the_largest_amount_stays_exact_in_every_currency() -> None:
    for currency in ISO_4217_CURRENCIES:
        assert to_major_units(MAX_AMOUNT_MINOR, currency).scaleb(
            currency_exponent(currency)
        ) == Decimal(MAX_AMOUNT_MINOR)


# --------------------------------------------------------------- hostile text


def nested(depth: int, leaf: object) -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": [value]}
    return value


def test_redaction_reaches_any_depth_without_recursion() -> None:
    # Given an email 5,000 levels down (Python's recursion limit is 1,000)
    value = nested(5000, "Jenny.Rosen@Example.com")
    # When redacting
    redacted = redact_emails(value, KEY)
    # Then the copy has the same shape and the email is hashed
    for _ in range(5000):
        assert isinstance(redacted, dict)
        [redacted] = redacted["a"]
    assert redacted == "emailhash:" + email_hash("jenny.rosen@example.com", KEY)


def test_redaction_keeps_order_and_everything_that_is_not_an_email() -> None:
    value = {"b": [1, None, True, 2.5, "x@y"], "a": {"email": "jenny@example.com"}}
    redacted = redact_emails(value, KEY)
    assert list(redacted) == ["b", "a"]
    assert redacted["b"] == [1, None, True, 2.5, "x@y"]
    assert redacted["a"]["email"] == "emailhash:" + email_hash("jenny@example.com", KEY)


def test_an_email_with_a_lone_surrogate_is_still_never_left_plain() -> None:
    redacted = redact_emails({"email": "jenny\ud800@example.com"}, KEY)
    assert redacted["email"].startswith("emailhash:")


@pytest.mark.parametrize(
    "raw", ["jenny\ud800@example.com", "jenny\x00@example.com", "jenny@exa\u200bmple.com\x07"]
)
def test_an_address_with_unprintable_text_is_refused(raw: str) -> None:
    with pytest.raises(ClickFieldError):
        normalize_email(raw)
    assert try_email_hash(raw, KEY) is None


@pytest.mark.parametrize(
    "raw", [12345, ["jenny@example.com"], {"email": "x"}, b"jenny@example.com"]
)
def test_try_email_hash_gives_none_for_what_is_not_text(raw: object) -> None:
    assert try_email_hash(raw, KEY) is None


def test_try_email_hash_refuses_a_redacted_value_with_a_trailing_newline() -> None:
    assert try_email_hash("emailhash:" + "a" * 64 + "\n", KEY) is None


def test_an_address_used_as_a_key_is_hashed_too() -> None:
    redacted = redact_emails({"metadata": {"Jenny@Example.com": "vip"}}, KEY)
    assert redacted == {"metadata": {"emailhash:" + email_hash("jenny@example.com", KEY): "vip"}}
