"""Customer emails: normalized, then kept only as a keyed hash.

The bridge never stores, queues or logs a plain email (unless the operator turns on
posting emails to Everflow). Matching works on HMAC-SHA256(email_hash_key, email):
the same customer always hashes the same, and without the key a hash reveals nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from stripe_everflow.domain.errors import ClickFieldError

# Deliberately permissive (RFC 5322 allows far more than sites accept), but enough to
# refuse what cannot be an address: one @, no spaces, a dotted domain.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def normalize_email(raw: str) -> str:
    """Trim and lowercase; raises ClickFieldError("email") for what is not an address."""
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise ClickFieldError("email", "is not an email address")
    return email


def email_hash(email: str, key: str) -> str:
    """The keyed hash of an already-normalized email (hex)."""
    return hmac.new(key.encode("utf-8"), email.encode("utf-8"), hashlib.sha256).hexdigest()


# A redacted email in a payload: "emailhash:" + the hex HMAC of the normalized address.
REDACTED_PREFIX = "emailhash:"


def try_email_hash(raw: str | None, key: str) -> str | None:
    """Hash a payload's email if it is one (or read an already redacted one); None for
    missing or malformed values."""
    if not raw:
        return None
    if raw.startswith(REDACTED_PREFIX):
        hashed = raw[len(REDACTED_PREFIX) :]
        return hashed if _HEX_DIGEST.match(hashed) else None
    try:
        return email_hash(normalize_email(raw), key)
    except ClickFieldError:
        return None


def redact_emails(value: Any, key: str) -> Any:
    """A copy of a JSON value with every string that is an email address replaced by
    ``emailhash:<hmac>`` — whatever field holds it (customer_email, billing_details,
    receipt_email, previous_attributes…), so matching still works and no queue or
    table ever holds the address."""
    if isinstance(value, dict):
        return {name: redact_emails(item, key) for name, item in value.items()}
    if isinstance(value, list):
        return [redact_emails(item, key) for item in value]
    if isinstance(value, str) and "@" in value:
        candidate = value.strip().lower()
        if len(candidate) <= MAX_EMAIL_LENGTH and _EMAIL.match(candidate):
            return REDACTED_PREFIX + email_hash(candidate, key)
    return value
