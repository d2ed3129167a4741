"""Secrets and settings of the local stack: one file, or the environment.

``local.config.json`` (or ``--config PATH``)::

    {
      "secret": { ...the keys of the deployed secrets, in one document (see README)... },
      "parameters": { "EverflowTrackingDomain": "...", ...template parameters... }
    }

``STRIPE_EVERFLOW_SECRET`` (the secret's JSON) overrides the file's ``secret``.
With neither, built-in test-mode values are used and printed at start.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stripe_everflow.domain.errors import SecretUnavailableError
from stripe_everflow.domain.secret import parse_bridge_secret, split_secret_document

DEFAULT_CONFIG_FILE = "local.config.json"
LOCAL_WEBHOOK_SECRET = "whsec_local_bridge_demo_secret"  # noqa: S105 - a documented local value
LOCAL_EU_WEBHOOK_SECRET = "whsec_local_eu_store_secret"  # noqa: S105 - a documented local value

DEFAULT_LOCAL_SECRET: dict[str, Any] = {
    "stripe_accounts": {
        "default": {"livemode": False, "webhook_secrets": [LOCAL_WEBHOOK_SECRET]},
        "eu-store": {"livemode": False, "webhook_secrets": [LOCAL_EU_WEBHOOK_SECRET]},
    },
    "click_intake_token": "local-click-intake-token",
    # The built-in Everflow stand-in also answers the Network API (adjustments, lookups).
    "everflow_api_key": "local-everflow-api-key",
    "email_hash_key": "local-email-hash-key-not-for-production",
}


# Template parameters the deployed stack asks for; locally they point at the
# built-in Everflow stand-in unless the config file says otherwise.
DEFAULT_LOCAL_PARAMETERS: dict[str, str] = {
    "EverflowTrackingDomain": "tracking.example.local",
    "EverflowNetworkId": "1",
    "EverflowOfferId": "1",
    "EverflowEventId": "2",
}


_SHOWN_LENGTH = 60


def printable(text: str) -> str:
    """A user-given text as it may appear in a one-line error: printable and short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= _SHOWN_LENGTH else text[:_SHOWN_LENGTH] + "…"


def did_you_mean(name: str, known: list[str]) -> str:
    """`` (did you mean X?)`` for the known name closest to ``name``, else empty."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


@dataclass(frozen=True)
class LocalConfig:
    secret: dict[str, Any]
    parameters: dict[str, str]
    source: str
    # What the stack starts without, or fills in, printed with "ready".
    warnings: tuple[str, ...] = ()

    @property
    def secret_json(self) -> str:
        return json.dumps(self.secret)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _parameter_text(name: str, value: Any) -> str:
    """A parameter's value as CloudFormation takes it: text. JSON numbers and
    booleans are written as a samconfig.toml would hold them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise ValueError(
        f"parameters.{printable(name)} must be a string or a number, got {_json_kind(value)}"
    )


def _read_parameters(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError(
            f'"parameters" must be an object of template parameters, got {_json_kind(raw)}'
        )
    return {str(name): _parameter_text(str(name), value) for name, value in raw.items()}


def _check_local_secret(secret: Any, source: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The secret the local stack runs with, and what to warn about; raises
    ValueError naming what the functions would refuse."""
    try:
        parsed = parse_bridge_secret(json.dumps(secret))  # the same checks the functions make
        # and each of the two secrets it is split into, as the functions reading one see it
        for part in split_secret_document(secret):
            parse_bridge_secret(json.dumps(part))
    except SecretUnavailableError as error:
        raise ValueError(f"the local secret ({source}): {error}") from None
    warnings = []
    if not parsed.email_hash_key:
        # Every event needs it; a deployed stack generates one into its secret.
        secret = secret | {"email_hash_key": DEFAULT_LOCAL_SECRET["email_hash_key"]}
        warnings.append("the secret has no email_hash_key: the local one is used")
    if not parsed.click_intake_token:
        warnings.append("the secret has no click_intake_token: POST /clicks answers 503")
    return secret, tuple(warnings)


def load_local_config(path: Path | None, environ: Mapping[str, str]) -> LocalConfig:
    """Read the config; raises ValueError naming what is wrong (never a secret's value).

    The parameters are checked against template.yaml when the stack starts
    (``preflight``); here only their shape is.
    """
    secret: dict[str, Any] = DEFAULT_LOCAL_SECRET
    parameters: dict[str, str] = dict(DEFAULT_LOCAL_PARAMETERS)
    source = "built-in local defaults"
    if path is not None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror}") from None
        except ValueError:
            raise ValueError(f"{path} is not valid JSON") from None
        if not isinstance(document, dict):
            raise ValueError(f'{path} must be an object with "secret" and/or "parameters"')
        for key in document:
            if key not in ("secret", "parameters"):
                raise ValueError(
                    f'{path}: "{printable(str(key))}" is not a key of the local config'
                    + (
                        did_you_mean(str(key), ["secret", "parameters"])
                        or ' ("secret", "parameters")'
                    )
                )
        secret = document.get("secret", secret)
        if "parameters" in document:
            try:
                parameters |= _read_parameters(document["parameters"])
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None
        source = str(path)
    if environ.get("STRIPE_EVERFLOW_SECRET"):
        try:
            secret = json.loads(environ["STRIPE_EVERFLOW_SECRET"])
        except ValueError:
            raise ValueError("STRIPE_EVERFLOW_SECRET is not valid JSON") from None
        source += " + STRIPE_EVERFLOW_SECRET"
    secret, warnings = _check_local_secret(secret, source)
    return LocalConfig(secret=secret, parameters=parameters, source=source, warnings=warnings)
