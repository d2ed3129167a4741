"""AttributionPreview against the live matcher on the same AttributionTable (moto): the
preview names the click the matcher then posts to, or says the payment parks, and
writes nothing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from stripe_everflow.domain.jobs import ClickTarget
from stripe_everflow.domain.messages import IncomingEvent
from stripe_everflow.domain.secret import StripeAccount
from stripe_everflow.matching.matcher import AttributionPreview, Preview
from tests.integration.conftest import Aws, aws  # noqa: F401 - the moto fixture
from tests.integration.pipeline import Pipeline, build_pipeline, intake_message
from tests.support import stripe_event

JENNY = "jenny.rosen@example.com"
DAY = 86_400
FIRST = stripe_event("basil", "invoice.paid.first")
RENEWAL = stripe_event("basil", "invoice.paid.renewal")
SESSION = stripe_event("basil", "checkout.session.completed.payment")
SESSION["data"]["object"]["client_reference_id"] = "ef_tx_carried"  # a Checkout link's click


def click(tx: str, occurred_at: int, email: str = JENNY) -> dict[str, Any]:
    return {
        "email": email,
        "transaction_id": tx,
        "offer_id": 12,
        "affiliate_id": 7,
        "occurred_at": occurred_at,
    }


def table_items(cloud: Aws) -> list[dict[str, Any]]:
    table = cloud.resources.resolver.resolve({"Ref": "AttributionTable"})
    items: list[dict[str, Any]] = []
    for page in cloud.dynamodb.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


@dataclass
class Both:
    """The preview, then the live matcher, of one event."""

    pipeline: Pipeline
    aws: Aws

    def preview(self, event: dict[str, Any]) -> Preview:
        matcher = self.pipeline.match_deps.matcher
        secret = matcher.secret.get()
        account = secret.account("default")
        assert isinstance(account, StripeAccount)
        preview = AttributionPreview(matcher.settings, matcher.store, secret)
        incoming = IncomingEvent.from_json(intake_message(event), eventbridge_account="default")
        before = table_items(self.aws)
        preview.prefetch([incoming])
        found = preview.of(account, incoming)
        assert table_items(self.aws) == before  # the preview wrote nothing
        assert self.aws.drain("PaymentEventsQueue") == []
        assert self.aws.drain("PostbackQueue") == []
        return found

    def live(self, event: dict[str, Any]) -> ClickTarget | None:
        """The click the matcher posted the payment to; None: it posted nothing."""
        assert self.pipeline.deliver_events(event) == {"batchItemFailures": []}
        conversions = [j for j in self.pipeline.jobs() if j["action"] == "conversion"]
        if not conversions:
            return None
        [job] = conversions
        t = job["target"]
        return ClickTarget(t["transaction_id"], t["offer_id"], t["affiliate_id"], t["matched_by"])

    def agree(self, event: dict[str, Any]) -> Preview:
        preview = self.preview(event)
        live = self.live(event)
        if live is None:
            assert preview.decision == "park", preview
        else:
            assert preview.decision == "click" and preview.target == live, (preview, live)
        return preview


def both(cloud: Aws, monkeypatch: pytest.MonkeyPatch, **env: str) -> Both:
    return Both(build_pipeline(cloud, monkeypatch, **env), cloud)


@pytest.mark.parametrize(
    ("policy", "chosen", "matched_by"),
    [
        ("first-touch", "ef_tx_early", "email_first_touch"),
        ("last-touch", "ef_tx_late", "email_last_touch"),
    ],
)
def test_the_emails_click_first_or_last_touch(
    aws: Aws,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    chosen: str,
    matched_by: str,
) -> None:
    b = both(aws, monkeypatch, ATTRIBUTION_POLICY=policy)
    paid = FIRST["created"]
    clicks = [click("ef_tx_early", paid - 10 * DAY), click("ef_tx_late", paid - DAY)]
    assert b.pipeline.post_clicks(clicks)[0] == 201
    preview = b.agree(FIRST)
    assert preview.target == ClickTarget(chosen, "12", "7", matched_by)
    assert (preview.amount_minor, preview.currency) == (4900, "USD")
    assert preview.describe() == f"affiliate 7 click {chosen} ({matched_by})"


def test_the_customers_pin_outranks_a_later_click(
    aws: Aws,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = both(aws, monkeypatch, ATTRIBUTION_POLICY="last-touch")
    assert b.pipeline.post_clicks(click("ef_tx_jenny", FIRST["created"] - DAY))[0] == 201
    b.agree(FIRST)  # pins the customer to ef_tx_jenny
    assert b.pipeline.post_clicks(click("ef_tx_newer", RENEWAL["created"] - DAY))[0] == 201
    preview = b.agree(RENEWAL)
    assert preview.target == ClickTarget("ef_tx_jenny", "12", "7", "customer_pin")


def test_a_click_id_stripe_carries(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    b = both(aws, monkeypatch)
    assert b.pipeline.post_clicks(click("ef_tx_email", SESSION["created"] - DAY))[0] == 201
    preview = b.agree(SESSION)
    assert preview.target == ClickTarget("ef_tx_carried", None, None, "stripe_click_id")
    assert preview.describe() == "affiliate ? click ef_tx_carried (stripe_click_id)"


def test_a_click_outside_the_window_parks(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    b = both(aws, monkeypatch, ATTRIBUTION_WINDOW_DAYS="30")
    assert b.pipeline.post_clicks(click("ef_tx_old", FIRST["created"] - 60 * DAY))[0] == 201
    preview = b.agree(FIRST)
    assert preview.describe() == "no click known: would park"


def test_no_click_parks_and_a_payment_counted_already_is_ignored(
    aws: Aws,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = both(aws, monkeypatch)
    assert b.agree(FIRST).decision == "park"
    # the click comes: the parked payment is replayed and posted
    assert b.pipeline.post_clicks(click("ef_tx_jenny", FIRST["created"] - DAY))[0] == 201
    while b.pipeline.run_replays():  # (a copy parked under the customer comes back too)
        pass
    assert [j["action"] for j in b.pipeline.jobs()] == ["conversion"]
    # the same money in a backfill's event: counted by the live event already
    again = FIRST | {"id": "evt_bf_in_1QbridgeFirst01"}
    preview = b.preview(again)
    assert (preview.decision, preview.reason) == ("ignored", "duplicate_source")
    assert b.live(again) is None
    # and the event delivered again: its job was sent
    assert b.preview(FIRST).reason == "already_sent"


def test_a_refund_shows_its_amount_and_ignored_events_their_reason(
    aws: Aws,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = both(aws, monkeypatch)
    refund = stripe_event("basil", "charge.refunded")
    preview = b.preview(refund)
    charge = refund["data"]["object"]
    assert (preview.decision, preview.amount_minor) == ("undo", charge["amount_refunded"])
    live_mode = FIRST | {"livemode": True}
    assert b.preview(live_mode).describe() == "ignored: livemode_mismatch"


def test_what_the_live_path_would_ask_is_named_not_asked(
    aws: Aws,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = both(aws, monkeypatch)
    secret = b.pipeline.match_deps.matcher.secret.get()
    matcher = b.pipeline.match_deps.matcher
    account = dataclasses.replace(secret.account("default"), api_key="rk_test_x")
    preview = AttributionPreview(matcher.settings, matcher.store, secret)
    incoming = IncomingEvent.from_json(intake_message(FIRST), eventbridge_account="default")
    found = preview.of(account, incoming)
    assert (found.decision, found.asks) == ("park", ("stripe_customer",))
    assert found.describe() == "no click known: would park; would ask Stripe for the customer first"
