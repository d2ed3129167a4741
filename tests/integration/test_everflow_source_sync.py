"""Everflow as a click source, the scheduled sync: SyncClicksFunction in process on
moto, the conversion report from the Everflow stand-in. Pages from the checkpoint
(read again a little before it), stores every base conversion with an email as a
click (once), replays the payments parked for those emails, and moves the checkpoint
only when the whole window was read."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow.domain.emails import email_hash, normalize_email
from stripe_everflow.domain.errors import EverflowUnavailableError
from stripe_everflow.domain.records import email_key, parked_email_pk, sync_checkpoint_key
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from tests.integration.conftest import Aws
from tests.integration.pipeline import build_pipeline
from tests.integration.test_everflow_source_lookup import at, with_api_key
from tests.support import LambdaContext, load_function, stripe_event

HASH_KEY = "test-email-hash-key"
JENNY = "jenny.rosen@example.com"
DAY = 86_400
NOW = 1_767_225_592 + 600  # ten minutes after jenny's first invoice was paid
REPORT = "/v1/networks/reporting/conversions"


def hashed(email: str) -> str:
    return email_hash(normalize_email(email), HASH_KEY)


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


class Sync:
    def __init__(self, aws: Aws, everflow: EverflowStandIn, monkeypatch: Any, **env: str) -> None:
        for name, value in aws.function_environment("SyncClicksFunction").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("EVERFLOW_API_BASE_URL", everflow.url)
        monkeypatch.setenv("CLICK_SOURCES", "api,stripe,everflow")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self.app = load_function("sync_clicks")
        self.deps = self.app.Dependencies.from_environ(os.environ)
        self.store = self.deps.sync.store
        self.at(NOW)

    def at(self, moment: int) -> None:
        self.deps.sync.clock = lambda: moment
        self.store._clock = lambda: moment

    def run(self) -> dict[str, Any]:
        facts = self.app.handle({"source": "aws.events"}, LambdaContext(), self.deps)
        self.app.metrics.clear_metrics()
        return dict(facts)

    def clicks(self, email: str) -> dict[str, Any]:
        item = self.store.get(email_key(hashed(email)))
        return dict(item["clicks"]) if item else {}

    def checkpoint(self) -> int | None:
        item = self.store.get(sync_checkpoint_key("offer-1"), consistent=True)
        return int(item["synced_until"]) if item else None


def reports(everflow: EverflowStandIn) -> list[tuple[dict[str, str], dict[str, Any]]]:
    found = []
    for request in everflow.requests(REPORT):
        if request.path == REPORT:
            found.append((dict(request.query), json.loads(request.body)))
    return found


def converted(everflow: EverflowStandIn, n: int, at: int, **more: Any) -> str:
    fields = {
        "transaction_id": f"ef_tx_{n}",
        "email": f"customer{n}@example.com",
        "offer_id": 1,
        "affiliate_id": 7,
        "conversion_unix_timestamp": at,
    }
    return everflow.add_conversion(**(fields | more))


@pytest.fixture
def sync(aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch) -> Sync:
    with_api_key(aws)
    return Sync(aws, everflow, monkeypatch)


def test_the_first_run_registers_base_conversions_with_an_email(
    sync: Sync, everflow: EverflowStandIn
) -> None:
    # Given Everflow's report holds base conversions with and without an email, an
    # event, a conversion on another offer, a rejected one and one older than 30 days
    converted(everflow, 1, NOW - DAY)
    converted(everflow, 2, NOW - 2 * DAY, email=None)
    converted(everflow, 3, NOW - DAY, is_event=True, event="Rebill")
    converted(everflow, 4, NOW - DAY, offer_id=9)
    converted(everflow, 5, NOW - DAY, status="rejected")
    converted(everflow, 6, NOW - 31 * DAY)
    # When the sync runs for the first time
    facts = sync.run()
    # Then it read the last 30 days of base conversions of the offer
    [(query, body)] = reports(everflow)
    assert body["show_conversions"] is True and body["show_events"] is False
    assert body["query"]["filters"] == [{"resource_type": "offer", "filter_id_value": "1"}]
    assert (query["page"], body["timezone_id"]) == ("1", 67)
    # and stored the one click it could: a base conversion with an email, of the offer
    assert sync.clicks("customer1@example.com")["ef_tx_1"]["source"] == "everflow"
    for n in (3, 4, 5, 6):
        assert sync.clicks(f"customer{n}@example.com") == {}
    assert facts["status"] == "synced" and facts["registered"] == 1
    assert sync.checkpoint() == NOW


def test_the_report_is_read_page_by_page(sync: Sync, everflow: EverflowStandIn) -> None:
    sync.deps.sync.page_size = 2
    for n in range(5):
        converted(everflow, n, NOW - 3600 + n)
    facts = sync.run()
    assert [query["page"] for query, _ in reports(everflow)] == ["1", "2", "3"]
    assert {query["page_size"] for query, _ in reports(everflow)} == {"2"}
    assert facts["registered"] == 5 and facts["pages"] == 3
    for n in range(5):
        assert f"ef_tx_{n}" in sync.clicks(f"customer{n}@example.com")


def test_an_empty_page_ends_the_window(sync: Sync, everflow: EverflowStandIn) -> None:
    sync.deps.sync.page_size = 2
    for n in range(3):
        converted(everflow, n, NOW - 3600 + n)
    # page 1 answers from what was recorded; page 2 comes back empty (the total said 3)
    everflow.script([{"status": 200}, {"status": 200, "body": '{"conversions": []}'}])
    facts = sync.run()
    assert facts["status"] == "synced"
    assert sync.checkpoint() == NOW


def test_each_run_starts_from_the_checkpoint_less_the_overlap(
    sync: Sync, everflow: EverflowStandIn
) -> None:
    converted(everflow, 1, NOW - 600)
    sync.run()
    # Given Everflow recorded late a conversion from before the checkpoint, and a new one
    converted(everflow, 2, NOW - 300)
    converted(everflow, 3, NOW + 200)
    sync.at(NOW + 300)
    facts = sync.run()
    # Then the second run read from an hour before the checkpoint
    _, body = reports(everflow)[-1]
    assert body["from"] == "2025-12-31 23:09:52"  # NOW - 3600
    assert body["to"] == "2026-01-01 00:14:52"  # NOW + 300
    # and stored the late and the new conversion, the first one again changing nothing
    assert facts["registered"] == 2 and facts["conversions"] == 3
    assert sync.checkpoint() == NOW + 300


def test_running_again_over_the_same_window_changes_nothing(
    sync: Sync, everflow: EverflowStandIn
) -> None:
    converted(everflow, 1, NOW - 600)
    first = sync.run()
    sync.at(NOW + 60)
    second = sync.run()
    assert (first["registered"], second["registered"], second["replayed"]) == (1, 0, 0)
    assert list(sync.clicks("customer1@example.com")) == ["ef_tx_1"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_failed_page_leaves_the_checkpoint_for_the_next_run(
    sync: Sync, everflow: EverflowStandIn, status: int
) -> None:
    sync.deps.sync.page_size = 2
    converted(everflow, 0, NOW - 7200)
    sync.run()
    for n in range(1, 5):
        converted(everflow, n, NOW - 1200 + n)
    sync.at(NOW + 600)
    # page 1 answers, page 2 fails
    everflow.script([{"status": 200}, {"status": status}])
    with pytest.raises(EverflowUnavailableError):
        sync.run()
    assert sync.checkpoint() == NOW
    # the next run reads the window again, and completes it
    facts = sync.run()
    assert sync.checkpoint() == NOW + 600
    for n in range(1, 5):
        assert f"ef_tx_{n}" in sync.clicks(f"customer{n}@example.com")
    assert facts["status"] == "synced"


def test_a_window_too_large_for_one_run_is_halved(sync: Sync, everflow: EverflowStandIn) -> None:
    sync.deps.sync.max_rows = 3
    for n in range(6):
        converted(everflow, n, NOW - 20 * DAY + n * 3 * DAY)
    facts = sync.run()
    # the older part now, the rest next time
    assert facts["until"] < NOW and sync.checkpoint() == facts["until"]
    runs = 1
    while sync.checkpoint() != NOW and runs < 10:
        sync.run()
        runs += 1
    assert sync.checkpoint() == NOW
    for n in range(6):
        assert f"ef_tx_{n}" in sync.clicks(f"customer{n}@example.com")


def test_payments_parked_for_a_synced_email_are_replayed(
    aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch, sync: Sync
) -> None:
    # Given jenny's payment was parked: Everflow knew no click when it came
    pipeline = build_pipeline(
        aws, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url, CLICK_SOURCES="api,stripe,everflow"
    )
    at(pipeline, NOW)
    pipeline.deliver_events(stripe_event("basil", "invoice.paid.first"))
    assert pipeline.jobs() == []
    assert len(pipeline.match_deps.matcher.store.parked(parked_email_pk(hashed(JENNY)))) == 1
    # When Everflow records her sign-up (late) and the sync reads it
    everflow.add_conversion(
        transaction_id="ef_tx_jenny",
        email=JENNY,
        offer_id=1,
        affiliate_id=7,
        conversion_unix_timestamp=NOW - 60,
        click_unix_timestamp=NOW - DAY,
    )
    sync.at(NOW + 300)
    facts = sync.run()
    # Then her payment went back to matching, and was matched to that click
    assert facts["replayed"] == 1
    assert pipeline.run_replays() == 1
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_jenny"
    assert job["target"]["matched_by"] == "email_first_touch"


@pytest.mark.parametrize(
    ("api_key", "env", "reason"),
    [
        (None, {}, "no_everflow_api_key"),
        ("ef-api-key", {"CLICK_SOURCES": "api,stripe"}, "everflow_not_a_click_source"),
    ],
)
def test_the_sync_does_nothing_without_a_key_or_when_not_a_source(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    api_key: str | None,
    env: dict[str, str],
    reason: str,
) -> None:
    with_api_key(aws, api_key)
    converted(everflow, 1, NOW - 600)
    facts = Sync(aws, everflow, monkeypatch, **env).run()
    assert facts == {
        "status": "skipped",
        "reason": reason,
        "pages": 0,
        "conversions": 0,
        "registered": 0,
        "replayed": 0,
        "checkpoint_moved": False,
    }
    assert everflow.api_calls() == []


def test_paging_is_sent_as_query_parameters(sync: Sync, everflow: EverflowStandIn) -> None:
    sync.run()
    [request] = everflow.requests(REPORT)
    assert (request.path, dict(request.query)) == (REPORT, {"page": "1", "page_size": "500"})
