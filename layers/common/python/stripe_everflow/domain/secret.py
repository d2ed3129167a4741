"""The bridge secret: one JSON document holding every credential the bridge uses.

Deployed, it lives in Secrets Manager (the environment holds only its name); locally
the same JSON comes from a file. Shape::

    {
      "stripe_accounts": {
        "default": {
          "livemode": true,
          "webhook_secrets": ["whsec_current", "whsec_previous_while_rolling"],
          "api_key": "rk_live_..."
        }
      },
      "everflow_api_key": "...",
      "everflow_verification_token": "...",   # when the advertiser turned tokens on
      "click_intake_token": "...",
      "email_hash_key": "..."
    }

Only ``stripe_accounts`` is needed by the webhook intake; each function checks the
keys it uses. A key the bridge does not know is refused (with the known key it was
probably meant to be): a misspelled ``email_hash_keys`` must not leave the bridge
running without its hash key.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stripe_everflow.domain.errors import SecretUnavailableError

ACCOUNT_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_ACCOUNT = "default"
SECRET_KEYS = (
    "stripe_accounts",
    "everflow_api_key",
    "everflow_verification_token",
    "click_intake_token",
    "email_hash_key",
)
ACCOUNT_KEYS = ("livemode", "webhook_secrets", "api_key")
_SHOWN_KEY_LENGTH = 64


@dataclass(frozen=True)
class StripeAccount:
    """One Stripe account the bridge listens to (the seed's "Add Stripe Account")."""

    name: str
    livemode: bool
    webhook_secrets: tuple[str, ...]
    api_key: str | None = None


@dataclass(frozen=True)
class BridgeSecret:
    stripe_accounts: Mapping[str, StripeAccount]
    everflow_api_key: str | None = None
    everflow_verification_token: str | None = None
    click_intake_token: str | None = None
    email_hash_key: str | None = None

    def account(self, name: str) -> StripeAccount | None:
        return self.stripe_accounts.get(name)


def _shown(key: str) -> str:
    """A key as it may appear in an error: printable, and not a page long."""
    text = "".join(ch if ch.isprintable() else "?" for ch in key)
    return text if len(text) <= _SHOWN_KEY_LENGTH else text[:_SHOWN_KEY_LENGTH] + "…"


def _refuse_unknown_keys(document: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    """Raises SecretUnavailableError naming the first key not in ``known``."""
    for key in document:
        if key in known:
            continue
        import difflib  # here, on the error path: at the top it costs every cold start

        close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
        raise SecretUnavailableError(
            f"{where}{_shown(key)} is not a key of the bridge secret{hint}"
        )


def _parse_account(name: str, raw: Any) -> StripeAccount:
    where = f"stripe_accounts.{_shown(name)}"
    if not ACCOUNT_NAME_PATTERN.match(name):
        raise SecretUnavailableError(
            f"{where}: account names are lowercase letters, digits, - or _"
        )
    if not isinstance(raw, dict):
        raise SecretUnavailableError(f"{where} must be an object")
    _refuse_unknown_keys(raw, ACCOUNT_KEYS, f"{where}.")
    livemode = raw.get("livemode")
    if not isinstance(livemode, bool):
        raise SecretUnavailableError(f"{where}.livemode must be true or false")
    secrets = raw.get("webhook_secrets")
    if (
        not isinstance(secrets, list)
        or not secrets
        or not all(isinstance(s, str) and s.strip() for s in secrets)
    ):
        raise SecretUnavailableError(f"{where}.webhook_secrets must be a non-empty list of strings")
    api_key = raw.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise SecretUnavailableError(f"{where}.api_key must be a string")
    return StripeAccount(
        name=name,
        livemode=livemode,
        webhook_secrets=tuple(s.strip() for s in secrets),
        api_key=api_key or None,
    )


def _optional_str(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SecretUnavailableError(f"{key} must be a string")
    return value


def parse_bridge_secret(text: str) -> BridgeSecret:
    """Parse and validate the secret's JSON.

    Raises SecretUnavailableError naming the offending key (never its value).
    """
    try:
        document = json.loads(text)
    except ValueError:
        raise SecretUnavailableError("the bridge secret is not valid JSON") from None
    if not isinstance(document, dict):
        raise SecretUnavailableError("the bridge secret must be a JSON object")
    _refuse_unknown_keys(document, SECRET_KEYS, "")
    accounts = document.get("stripe_accounts")
    if not isinstance(accounts, dict) or not accounts:
        raise SecretUnavailableError("stripe_accounts must name at least one account")
    return BridgeSecret(
        stripe_accounts={name: _parse_account(name, raw) for name, raw in accounts.items()},
        everflow_api_key=_optional_str(document, "everflow_api_key"),
        everflow_verification_token=_optional_str(document, "everflow_verification_token"),
        click_intake_token=_optional_str(document, "click_intake_token"),
        email_hash_key=_optional_str(document, "email_hash_key"),
    )


class CachedSecret:
    """The parsed bridge secret, fetched at most once per ``max_age`` seconds.

    ``refresh()`` re-reads the secret early (a rolled webhook secret shows up as a
    signature mismatch) but at most once per ``min_refresh_interval`` seconds, so a
    flood of forged requests cannot turn into a flood of Secrets Manager calls.
    Raises SecretUnavailableError when the fetch or the parse fails; callers answer
    with a retryable status.
    """

    def __init__(
        self,
        fetch: Callable[[], str],
        *,
        max_age: float,
        min_refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._value: BridgeSecret | None = None
        self._fetched_at = float("-inf")

    def get(self) -> BridgeSecret:
        with self._lock:
            if self._value is None or self._clock() - self._fetched_at >= self._max_age:
                self._load()
            assert self._value is not None
            return self._value

    def refresh(self) -> bool:
        """Re-read the secret if the last read is old enough; True when it was re-read."""
        with self._lock:
            if self._clock() - self._fetched_at < self._min_refresh_interval:
                return False
            self._load()
            return True

    def _load(self) -> None:
        try:
            text = self._fetch()
        except SecretUnavailableError:
            raise
        except Exception as error:  # adapter failures of any kind surface as one named error
            raise SecretUnavailableError(
                f"could not read the bridge secret: {type(error).__name__}"
            ) from error
        self._value = parse_bridge_secret(text)
        self._fetched_at = self._clock()
