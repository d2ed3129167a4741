"""DynamoDB adapters: AttributionTable (``store``), LedgerTable (``ledger``) and the
shared Network API budget kept in LedgerTable (``rate_limiter``), with the attribute
codecs and the conditional-write test they share."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any


def condition_failed(error: Exception) -> bool:
    """True for DynamoDB's ConditionalCheckFailedException (a lost conditional write)."""
    response = getattr(error, "response", {}) or {}
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


@functools.cache
def _codec() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def to_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values → DynamoDB attribute values (numbers must be int or Decimal)."""
    serializer = _codec()[0]
    return {name: serializer.serialize(value) for name, value in values.items()}


def from_attributes(raw: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → Python values (numbers come back as Decimal)."""
    deserializer = _codec()[1]
    return {name: deserializer.deserialize(value) for name, value in raw.items()}
