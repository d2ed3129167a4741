"""Money: integer minor units from Stripe → exact decimal major units for Everflow.

Never float. Exponents per Stripe's list (docs.stripe.com/currencies): zero-decimal
currencies have no minor unit, three-decimal ones have thousandths; everything else
has cents.
"""

from __future__ import annotations

from decimal import Decimal

ZERO_DECIMAL_CURRENCIES = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL_CURRENCIES = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def currency_exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def to_major_units(minor: int, currency: str) -> Decimal:
    """4900 USD → 49.00; 5000 JPY → 5000; 1500 KWD → 1.500 (all Decimal)."""
    exponent = currency_exponent(currency)
    return Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_amount(minor: int, currency: str) -> str:
    return str(to_major_units(minor, currency))
