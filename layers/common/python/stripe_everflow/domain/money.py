"""Money: integer minor units from Stripe → exact decimal major units for Everflow.

Never float. Exponents per Stripe's list (docs.stripe.com/currencies): zero-decimal
currencies have no minor unit, three-decimal ones have thousandths; everything else
has cents.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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


# ISO 4217 codes of money (not the funds, metals and test codes: BOV, CHE, CHW, CLF,
# COU, MXV, USN, UYI, UYW, XAG, XAU, XBA-XBD, XDR, XPD, XPT, XSU, XTS, XUA, XXX), plus
# the codes withdrawn recently enough for Stripe to still report money in them (a
# refund of an old HRK charge, say): HRK, MRO, SLL, STD, VEF, ZWL.
_ISO_4217_TABLE = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL
    BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR
    ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRO MRU MUR MVR MWK MXN MYR MZN NAD NGN
    NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SLL SOS SRD SSP STD STN SVC SYP SZL THB TJS TMT TND TOP TRY
    TTD TWD TZS UAH UGX USD UYU UZS VED VEF VES VND VUV WST XAF XCD XCG XOF XPF YER
    ZAR ZMW ZWG ZWL
"""
ISO_4217_CURRENCIES = frozenset(_ISO_4217_TABLE.split())
# Far above any amount Stripe takes (its largest, in IDR, has 14 digits), and small
# enough to stay exact everywhere an amount goes: Decimal's 28 digits, DynamoDB's 38,
# a float's 2^53.
MAX_AMOUNT_MINOR = 10**15 - 1


def iso_currency(value: Any) -> str | None:
    """The upper-case ISO 4217 code in ``value`` (Stripe sends "usd"), or None when
    ``value`` is not one."""
    if isinstance(value, str) and len(value) == 3 and value.upper() in ISO_4217_CURRENCIES:
        return value.upper()
    return None


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
