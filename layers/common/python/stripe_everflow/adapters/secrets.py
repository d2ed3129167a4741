"""Secrets Manager: reading the bridge secret's text (parsed in ``domain.secret``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_everflow.adapters.aws import client


def secret_reader(secret_id: str, secretsmanager: Any | None = None) -> Callable[[], str]:
    """A function returning the secret's current SecretString (errors propagate)."""
    holder: dict[str, Any] = {"client": secretsmanager}

    def read() -> str:
        if holder["client"] is None:
            holder["client"] = client("secretsmanager")
        answer = holder["client"].get_secret_value(SecretId=secret_id)
        return str(answer["SecretString"])

    return read
