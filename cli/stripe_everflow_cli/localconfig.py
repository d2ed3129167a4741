"""Secrets and settings of the local stack: one file, or the environment.

``local.config.json`` (or ``--config PATH``)::

    {
      "secret": { ...the same keys as the deployed secret (see README)... },
      "parameters": { "EverflowTrackingDomain": "...", ...template parameters... }
    }

``STRIPE_EVERFLOW_SECRET`` (the secret's JSON) overrides the file's ``secret``.
With neither, built-in test-mode values are used and printed at start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stripe_everflow.domain.errors import SecretUnavailableError
from stripe_everflow.domain.secret import parse_bridge_secret

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


@dataclass(frozen=True)
class LocalConfig:
    secret: dict[str, Any]
    parameters: dict[str, str]
    source: str

    @property
    def secret_json(self) -> str:
        return json.dumps(self.secret)


def load_local_config(path: Path | None, environ: Mapping[str, str]) -> LocalConfig:
    """Read the config; raises ValueError naming what is wrong (never a secret's value)."""
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
        if not isinstance(document, dict) or set(document) - {"secret", "parameters"}:
            raise ValueError(f'{path} must be an object with "secret" and/or "parameters"')
        secret = document.get("secret", secret)
        parameters |= {str(k): str(v) for k, v in document.get("parameters", {}).items()}
        source = str(path)
    if environ.get("STRIPE_EVERFLOW_SECRET"):
        try:
            secret = json.loads(environ["STRIPE_EVERFLOW_SECRET"])
        except ValueError:
            raise ValueError("STRIPE_EVERFLOW_SECRET is not valid JSON") from None
        source += " + STRIPE_EVERFLOW_SECRET"
    try:
        parse_bridge_secret(json.dumps(secret))  # the same validation the functions apply
    except SecretUnavailableError as error:
        raise ValueError(f"the local secret ({source}): {error}") from None
    return LocalConfig(secret=secret, parameters=parameters, source=source)
