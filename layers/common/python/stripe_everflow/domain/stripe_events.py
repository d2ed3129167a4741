"""Reading Stripe Event payloads as plain JSON dicts.

The bridge works on *snapshot* events (``object: "event"``, the object under
``data.object``). Thin events (``object: "v2.core.event"``) carry only ids and would
need an API call per event; they are refused with a clear reason.
"""

from __future__ import annotations

from typing import Any

from stripe_everflow.domain.errors import NotStripeEventError
from stripe_everflow.domain.messages import StripeEventSummary


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
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise NotStripeEventError("the event has no type")
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
