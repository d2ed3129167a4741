"""The bridge secret: one JSON document holding every credential the bridge uses.

Deployed, it is kept in two Secrets Manager secrets, so that the internet-facing
webhook can read its signing secrets and nothing else: the webhook's secret
(``stripe_accounts`` with each account's ``livemode`` and ``webhook_secrets``, and
``email_hash_key``) and the bridge secret (each account's ``api_key``, the Everflow
key and token, the click-intake token). A function reading both gets them merged
into one document, as if they had never been split. Locally the whole document
comes from one file. Shape::

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

Each function checks the keys it uses. ``stripe_accounts``, when present, names at
least one account; a document made of API keys alone (the bridge secret read by a
function that needs no webhook secret) may name accounts by their ``api_key`` only.
A key the bridge does not know is refused (with the known key it was probably
meant to be): a misspelled ``email_hash_keys`` must not leave the bridge running
without its hash key.
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
# What the webhook's own secret holds when the document is split: the rest (API
# keys and tokens) goes to the bridge secret, which the webhook cannot read.
WEBHOOK_SECRET_KEYS = ("stripe_accounts", "email_hash_key")
WEBHOOK_ACCOUNT_KEYS = ("livemode", "webhook_secrets")
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


def _account_object(name: str, raw: Any) -> tuple[str, dict[str, Any]]:
    """(where, the account's object), its name and keys checked; refuses its API key
    if it is not a string."""
    where = f"stripe_accounts.{_shown(name)}"
    if not ACCOUNT_NAME_PATTERN.match(name):
        raise SecretUnavailableError(
            f"{where}: account names are lowercase letters, digits, - or _"
        )
    if not isinstance(raw, dict):
        raise SecretUnavailableError(f"{where} must be an object")
    _refuse_unknown_keys(raw, ACCOUNT_KEYS, f"{where}.")
    if raw.get("api_key") is not None and not isinstance(raw["api_key"], str):
        raise SecretUnavailableError(f"{where}.api_key must be a string")
    return where, raw


def _parse_account(name: str, raw: Any) -> StripeAccount:
    where, raw = _account_object(name, raw)
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


def _load_object(text: str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        raise SecretUnavailableError(f"{what} is not valid JSON") from None
    if not isinstance(document, dict):
        raise SecretUnavailableError(f"{what} must be a JSON object")
    return document


def _merge_into(merged: dict[str, Any], document: Mapping[str, Any], path: str) -> None:
    """Add ``document`` to ``merged``; objects merge key by key, and a value set in
    both must be the same (which one would win is not the reader's to guess)."""
    for key, value in document.items():
        where = f"{path}{_shown(str(key))}"
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = dict(merged[key])
            _merge_into(merged[key], value, f"{where}.")
        elif merged[key] != value:
            raise SecretUnavailableError(f"{where} is set differently in two of the secrets")


def merge_secret_documents(texts: Mapping[str, str]) -> dict[str, Any]:
    """The documents of several secrets (by secret id) as one document.

    Raises SecretUnavailableError naming the secret that is not a JSON object, or
    the key two secrets give different values.
    """
    merged: dict[str, Any] = {}
    for secret_id, text in texts.items():
        _merge_into(merged, _load_object(text, f"the secret {_shown(secret_id)}"), "")
    return merged


def split_secret_document(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One secret document as (the webhook's secret, the bridge secret): merged again
    by ``merge_secret_documents`` they are the document. An account with no
    ``api_key`` appears in the webhook's secret only."""
    webhook: dict[str, Any] = {k: v for k, v in document.items() if k in WEBHOOK_SECRET_KEYS}
    bridge: dict[str, Any] = {k: v for k, v in document.items() if k not in WEBHOOK_SECRET_KEYS}
    accounts = document.get("stripe_accounts")
    if isinstance(accounts, dict):
        webhook["stripe_accounts"] = {}
        keys: dict[str, Any] = {}
        for name, account in accounts.items():
            if not isinstance(account, dict):
                webhook["stripe_accounts"][name] = account
                continue
            webhook["stripe_accounts"][name] = {
                k: v for k, v in account.items() if k in WEBHOOK_ACCOUNT_KEYS
            }
            if rest := {k: v for k, v in account.items() if k not in WEBHOOK_ACCOUNT_KEYS}:
                keys[name] = rest
        if keys:
            bridge["stripe_accounts"] = keys
    return webhook, bridge


def _has_webhook_facts(account: Any) -> bool:
    return isinstance(account, dict) and any(k in account for k in WEBHOOK_ACCOUNT_KEYS)


def parse_bridge_secret(text: str | Mapping[str, str]) -> BridgeSecret:
    """Parse and validate the secret's JSON: one document, or several secrets'
    documents by secret id, merged (``merge_secret_documents``).

    Raises SecretUnavailableError naming the offending key (never its value).
    """
    if isinstance(text, str):
        document = _load_object(text, "the bridge secret")
    else:
        document = merge_secret_documents(text)
    _refuse_unknown_keys(document, SECRET_KEYS, "")
    accounts = document.get("stripe_accounts", {})
    if "stripe_accounts" in document and (not isinstance(accounts, dict) or not accounts):
        raise SecretUnavailableError("stripe_accounts must name at least one account")
    if any(_has_webhook_facts(raw) for raw in accounts.values()):
        for name, raw in accounts.items():
            if isinstance(raw, dict) and not _has_webhook_facts(raw):
                raise SecretUnavailableError(
                    f"stripe_accounts.{_shown(name)} has no livemode or webhook_secrets"
                    " (is it named the same in both secrets?)"
                )
        parsed = {name: _parse_account(name, raw) for name, raw in accounts.items()}
    else:
        # API keys alone: read by functions that use no Stripe account.
        for name, raw in accounts.items():
            _account_object(name, raw)
        parsed = {}
    return BridgeSecret(
        stripe_accounts=parsed,
        everflow_api_key=_optional_str(document, "everflow_api_key"),
        everflow_verification_token=_optional_str(document, "everflow_verification_token"),
        click_intake_token=_optional_str(document, "click_intake_token"),
        email_hash_key=_optional_str(document, "email_hash_key"),
    )


class CachedSecret:
    """The parsed bridge secret, fetched at most once per ``max_age`` seconds.

    ``fetch`` returns one secret's text, or several secrets' texts by secret id
    (merged into one document).

    ``refresh()`` re-reads the secret early (a rolled webhook secret shows up as a
    signature mismatch) but at most once per ``min_refresh_interval`` seconds, so a
    flood of forged requests cannot turn into a flood of Secrets Manager calls.
    Raises SecretUnavailableError when the fetch or the parse fails; callers answer
    with a retryable status.
    """

    def __init__(
        self,
        fetch: Callable[[], str | Mapping[str, str]],
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
            texts = self._fetch()
        except SecretUnavailableError:
            raise
        except Exception as error:  # adapter failures of any kind surface as one named error
            raise SecretUnavailableError(
                f"could not read the bridge secret: {type(error).__name__}"
            ) from error
        self._value = parse_bridge_secret(texts)
        self._fetched_at = self._clock()
