"""redact_emails_in_json: the queue message's redaction on JSON text gives exactly what
redact_emails gives on the value, for Stripe's own payloads and for hostile strings."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from stripe_everflow.domain.emails import REDACTED_PREFIX, redact_emails, redact_emails_in_json

KEY = "k" * 32
EVENTS = sorted((Path(__file__).parents[3] / "events").rglob("*.json"))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _same_as_the_walk(value: Any) -> None:
    text = redact_emails_in_json(_dumps(value), KEY)
    assert json.loads(text) == redact_emails(value, KEY)


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_event_payload_is_redacted_as_the_walk_redacts_it(path: Path) -> None:
    value = json.loads(path.read_text())
    _same_as_the_walk(value)
    # and with an address in the fields that usually hold one
    if isinstance(value, dict) and isinstance(value.get("data"), dict):
        obj = value["data"].get("object")
        if isinstance(obj, dict):
            obj["customer_email"] = " Jenny.Rosen@Example.com "
            obj["metadata"] = {"jenny@example.com": "a key", "note": 'say "hi" @ me@x.io'}
            _same_as_the_walk(value)
            assert "jenny.rosen" not in redact_emails_in_json(_dumps(value), KEY).lower()


@pytest.mark.parametrize(
    "value",
    [
        "jenny@example.com",
        ["jenny@example.com", "@", "a@b", "x@y.z"],
        {"a\\": "b@c.de", 'q"@x.io': 'v\\"@w.io', "\\\\": "\\\\@a.bc"},
        {"email": 'ab"c@example.com', "other": "\\"},
        {"email": "jenny@exämple.com", "emoji": "😀@example.com", "ctl": "a\u0001@b.co"},
        {"email": "JENNY@EXAMPLE.COM\n", "tab": "\tjenny@example.com"},
        {"n": [1, 2.5, None, True, {"deep": [{"e": "a@b.co"}]}]},
        {"already": REDACTED_PREFIX + "0" * 64, "not": "a@b@c.de", "at": "@@@"},
    ],
)
def test_strings_with_quotes_backslashes_and_unicode(value: Any) -> None:
    _same_as_the_walk(value)


def test_random_values_are_redacted_as_the_walk_redacts_them() -> None:
    PREFIXES = ["", " ", "\\\\", '"']  # noqa: N806
    alphabet = ['"', "\\", "@", ".", "a", "Z", "é", " ", "\n", "/", "u", "0", "{", "]", ":", ","]
    chance = random.Random(20261202)  # noqa: S311 - a fixed seed, not a secret

    def text() -> str:
        if chance.random() < 0.3:
            return chance.choice(PREFIXES) + f"u{chance.randrange(9)}@ex.co"
        return "".join(chance.choice(alphabet) for _ in range(chance.randrange(12)))

    def value(depth: int) -> Any:
        roll = chance.random()
        if depth > 3 or roll < 0.4:
            return text()
        if roll < 0.7:
            return [value(depth + 1) for _ in range(chance.randrange(4))]
        return {text(): value(depth + 1) for _ in range(chance.randrange(4))}

    for _ in range(2000):
        _same_as_the_walk(value(0))


@pytest.mark.parametrize("text", ['{"a":1}@', '@"x"', "a@b.co"])
def test_an_at_outside_a_string_is_not_json(text: str) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        redact_emails_in_json(text, KEY)
