"""Secrets Manager: reading the bridge secret's text (parsed in ``domain.secret``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_everflow.adapters.aws import client


def secret_ids(names: str) -> tuple[str, ...]:
    """The secret ids in a setting that names one secret, or several separated by
    commas (Secrets Manager names and ARNs never hold a comma)."""
    return tuple(name.strip() for name in names.split(",") if name.strip())


def secret_reader(
    secret_id: str, secretsmanager: Any | None = None
) -> Callable[[], str | dict[str, str]]:
    """A function returning the secret's current SecretString; for several secrets
    (``secret_id`` names them separated by commas), each one's by id, for
    ``domain.secret`` to merge. Errors propagate."""
    ids = secret_ids(secret_id)
    holder: dict[str, Any] = {"client": secretsmanager}

    def get(one: str) -> str:
        if holder["client"] is None:
            holder["client"] = client("secretsmanager")
        return str(holder["client"].get_secret_value(SecretId=one)["SecretString"])

    def read() -> str | dict[str, str]:
        if len(ids) == 1:
            return get(ids[0])
        return {one: get(one) for one in ids}

    return read
