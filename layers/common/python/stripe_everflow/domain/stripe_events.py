"""Reading Stripe Event payloads as plain JSON dicts.

The bridge works on *snapshot* events (``object: "event"``, the object under
``data.object``). Thin events (``object: "v2.core.event"``) carry only ids and would
need an API call per event; they are refused with a clear reason.

A signed event is genuine, not necessarily usable: its ids become DynamoDB keys, its
text goes into SQS messages. What those stores cannot hold is recognised here, once,
for the intake and the classifier alike.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stripe_everflow.domain.errors import NotStripeEventError
from stripe_everflow.domain.messages import StripeEventSummary

# Stripe ids are letters, digits and underscores (``in_1Q…``, ``cs_test_a1…``), at most
# 255 characters. Bounded so that every key built from one stays far below DynamoDB's
# 2048-byte partition and 1024-byte sort key limits; never holding the "#" that
# separates the parts of a key.
MAX_STRIPE_ID_LENGTH = 255
_STRIPE_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
# Snapshot event types: "invoice.paid", "checkout.session.async_payment_succeeded", …
_EVENT_TYPE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
MAX_EVENT_TYPE_LENGTH = 128
# Stripe's deepest object (an invoice) sits 11 levels deep in its event; DynamoDB
# refuses maps nested deeper than 32.
MAX_NESTING = 32

NESTING_TOO_DEEP = "nesting_too_deep"
INVALID_UNICODE = "invalid_unicode"
NOT_JSON = "not_json"


def is_stripe_id(value: Any) -> bool:
    """True for a string that can be a Stripe object id (and so a key part)."""
    return isinstance(value, str) and _STRIPE_ID.fullmatch(value) is not None


def _queueable(text: str) -> bool:
    """True when SQS and DynamoDB can carry ``text``: no lone surrogate (no UTF-8 form)
    and neither U+FFFE nor U+FFFF (outside the characters SQS accepts)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\ufffe" not in text and "\uffff" not in text


def event_shape_problem(value: Any) -> str | None:
    """Why a JSON value cannot travel through the bridge, or None when it can.

    ``"nesting_too_deep"`` beyond MAX_NESTING levels of objects and lists;
    ``"invalid_unicode"`` when a key or string holds a lone surrogate (what a JSON
    ``\\ud800`` escape decodes to) or a character SQS refuses. Walks the value level
    by level, without recursion, so no depth can exhaust the stack. Never raises.
    """
    if isinstance(value, str):
        return None if _queueable(value) else INVALID_UNICODE
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        if depth >= MAX_NESTING:
            return NESTING_TOO_DEEP
        below: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                for name in node:
                    if isinstance(name, str) and not (name.isascii() or _queueable(name)):
                        return INVALID_UNICODE
                children: Any = node.values()
            else:
                children = node
            for child in children:
                if isinstance(child, str):
                    if not (child.isascii() or _queueable(child)):
                        return INVALID_UNICODE
                elif isinstance(child, dict | list):
                    below.append(child)
        level, depth = below, depth + 1
    return None


def event_json(value: Any) -> tuple[str, None] | tuple[None, str]:
    """``(problem, None)`` when ``event_shape_problem`` names one (or, for a value only
    code can build, ``"not_json"``), else ``(None, text)``: the value's compact JSON
    text, as the queue message holds it. The intake's check: the depth is measured
    over the objects and lists only, then the characters are checked in the text in
    one pass (keys and strings are its only non-ASCII), at half the cost of walking
    every string. Never raises."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        if depth >= MAX_NESTING:  # before the encoder, which recurses
            return NESTING_TOO_DEEP, None
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below += [child for child in children if isinstance(child, dict | list)]
        level, depth = below, depth + 1
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # a set, bytes, an int past 4,300 digits …
        return NOT_JSON, None
    return (None, text) if _queueable(text) else (INVALID_UNICODE, None)


def read_event_summary(event: Any) -> StripeEventSummary:
    """Check that ``event`` is a snapshot Stripe Event and return its envelope fields.

    Raises NotStripeEventError (not retried) naming what is missing.
    """
    if not isinstance(event, dict):
        raise NotStripeEventError("the body is not a JSON object")
    kind = event.get("object")
    if kind == "v2.core.event":
        raise NotStripeEventError("thin events are not supported: send snapshot events")
    if kind != "event":
        raise NotStripeEventError('the body is not a Stripe event (object != "event")')
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id.startswith("evt_"):
        raise NotStripeEventError("the event has no evt_ id")
    if not is_stripe_id(event_id):
        raise NotStripeEventError(
            f"the event id is not a Stripe id (letters, digits, _; {MAX_STRIPE_ID_LENGTH} at most)"
        )
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise NotStripeEventError("the event has no type")
    if len(event_type) > MAX_EVENT_TYPE_LENGTH or not _EVENT_TYPE.fullmatch(event_type):
        raise NotStripeEventError("the event type is not a Stripe event type")
    livemode = event.get("livemode")
    if not isinstance(livemode, bool):
        raise NotStripeEventError("the event has no livemode flag")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise NotStripeEventError("the event has no data.object")
    api_version = event.get("api_version")
    created = event.get("created")
    return StripeEventSummary(
        id=event_id,
        type=event_type,
        livemode=livemode,
        api_version=api_version if isinstance(api_version, str) else None,
        created=created if isinstance(created, int) else None,
    )
