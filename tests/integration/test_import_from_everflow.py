"""`stripe-everflow import-clicks --from-everflow --since DATE [--until DATE]`: the
scheduled sync run once over a range, against moto and the Everflow stand-in's
conversion report — page after page, Everflow throttling or failing on the way
(asked again, then one line), a refused key, a dry run, a second run that stores and
replays nothing, a parked payment released, a range over Everflow's one-year limit
read in windows, and the scheduled sync's checkpoint left alone."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stripe_everflow.domain.emails import email_hash, normalize_email
from stripe_everflow.domain.records import email_key, sync_checkpoint_key
from stripe_everflow_cli import import_clicks
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from stripe_everflow_cli.main import main
from stripe_everflow_cli.stack_access import StackAccess
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline, local_stack_access
from tests.integration.test_everflow_source_lookup import with_api_key
from tests.support import stripe_event

HASH_KEY = "test-email-hash-key"
JENNY = "jenny.rosen@example.com"
DAY = 86_400
DEC_1 = 1_764_547_200  # 2025-12-01T00:00:00Z
REPORT = "/v1/networks/reporting/conversions"
RANGE = ("--since", "2025-12-01", "--until", "2025-12-31")


def hashed(email: str) -> str:
    return email_hash(normalize_email(email), HASH_KEY)


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def local(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> StackAccess:
    """The local stack with Everflow as a click source, its SyncClicksFunction
    reading pages of 2 rows."""
    with_api_key(aws)
    access: StackAccess = local_stack_access(aws, monkeypatch)
    environment = aws.function_environment("SyncClicksFunction") | {
        "CLICK_SOURCES": "api,stripe,everflow",
        "EVERFLOW_SYNC_PAGE_SIZE": "2",
    }
    monkeypatch.setattr(StackAccess, "function_environment", lambda self, _id: environment)
    return access


class Importer:
    def __init__(self, everflow: EverflowStandIn) -> None:
        self.everflow = everflow
        self.pauses: list[float] = []

    def __call__(self, *flags: str) -> int:
        parser = argparse.ArgumentParser()
        import_clicks.add_arguments(parser)
        args = parser.parse_args(
            [
                "--from-everflow",
                "--endpoint",
                "local",
                "--everflow-api-base",
                self.everflow.url,
                *flags,
            ]
        )
        return import_clicks.run(args, sleep=self.pauses.append)


@pytest.fixture
def run(local: StackAccess, everflow: EverflowStandIn) -> Importer:
    return Importer(everflow)


def converted(everflow: EverflowStandIn, n: int, at: int, **more: Any) -> str:
    fields = {
        "transaction_id": f"ef_tx_{n}",
        "email": f"customer{n}@example.com",
        "offer_id": 1,
        "affiliate_id": 7,
        "conversion_unix_timestamp": at,
    }
    return everflow.add_conversion(**(fields | more))


def clicks_of(aws: Aws, email: str) -> dict[str, Any]:
    item = aws.dynamodb.get_item(
        TableName="AttributionTable",
        Key={"pk": {"S": email_key(hashed(email))[0]}, "sk": {"S": "clicks"}},
    ).get("Item")
    return dict(item["clicks"]["M"]) if item else {}


def clicks_stored(aws: Aws) -> int:
    items = aws.dynamodb.scan(TableName="AttributionTable")["Items"]
    return sum(len(i["clicks"]["M"]) for i in items if "clicks" in i)


def report_requests(everflow: EverflowStandIn) -> list[tuple[dict[str, str], dict[str, Any], int]]:
    return [
        (dict(r.query), json.loads(r.body), r.status)
        for r in everflow.requests(REPORT)
        if r.path == REPORT
    ]


def test_every_page_of_the_range_is_read_and_its_clicks_stored(
    run: Importer, aws: Aws, everflow: EverflowStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given five base conversions with an email in December, one without, an event,
    # one on another offer, and one after the range
    for n in range(5):
        converted(everflow, n, DEC_1 + n * DAY)
    converted(everflow, 5, DEC_1 + DAY, email=None)
    converted(everflow, 6, DEC_1 + DAY, is_event=True, event="Rebill")
    converted(everflow, 7, DEC_1 + DAY, offer_id=9)
    converted(everflow, 8, DEC_1 + 40 * DAY)
    # When December is imported from Everflow
    assert run(*RANGE) == 0
    # Then the report was read page by page (2 rows a page: 6 base conversions of offer 1)
    requests = report_requests(everflow)
    assert [query["page"] for query, _, _ in requests] == ["1", "2", "3"]
    _, body, _ = requests[0]
    assert (body["from"], body["to"]) == ("2025-12-01 00:00:00", "2026-01-01 00:00:00")
    assert body["query"]["filters"] == [{"resource_type": "offer", "filter_id_value": "1"}]
    # and the five clicks with an email are stored, as the sync stores them
    for n in range(5):
        assert clicks_of(aws, f"customer{n}@example.com")[f"ef_tx_{n}"]["M"]["source"] == {
            "S": "everflow"
        }
    assert clicks_stored(aws) == 5
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].startswith(
        "5 click(s) stored, 0 already known, 0 parked payment(s) replayed "
        "(6 conversion(s) read in 3 page(s), 5 with an email; Everflow, "
        "2025-12-01T00:00:00Z → 2026-01-01T00:00:00Z)"
    )
    # with a progress line of counts and rate on standard error
    assert "conversions: 6/6 (100%)" in captured.err and "/s" in captured.err


def test_a_second_run_stores_nothing_and_releases_nothing(
    run: Importer, aws: Aws, everflow: EverflowStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        converted(everflow, n, DEC_1 + n * DAY)
    assert run(*RANGE) == 0
    capsys.readouterr()
    assert run(*RANGE) == 0
    assert capsys.readouterr().out.startswith(
        "0 click(s) stored, 3 already known, 0 parked payment(s) replayed"
    )
    assert clicks_stored(aws) == 3
    assert aws.drain("PaymentEventsQueue") == []


def test_dry_run_lists_what_would_be_stored_and_stores_nothing(
    run: Importer, aws: Aws, everflow: EverflowStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    converted(everflow, 0, DEC_1 + DAY)
    assert run(*RANGE) == 0  # one click known already
    converted(everflow, 1, DEC_1 + 2 * DAY, email="Jenny.Rosen@example.com")
    converted(everflow, 2, DEC_1 + 3 * DAY, click_unix_timestamp=DEC_1)
    converted(everflow, 2, DEC_1 + 4 * DAY, click_unix_timestamp=DEC_1)  # reported twice
    capsys.readouterr()
    assert run(*RANGE, "--dry-run") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "would store ef_tx_1 for J***@example.com (offer 1, affiliate 7, "
        "clicked 2025-12-03T00:00:00Z)",
        "would store ef_tx_2 for c***@example.com (offer 1, affiliate 7, "
        "clicked 2025-12-01T00:00:00Z)",
        "2 click(s) would be stored, 1 already known (4 conversion(s) read in 2 page(s), "
        "4 with an email; Everflow, 2025-12-01T00:00:00Z → 2026-01-01T00:00:00Z); "
        "nothing stored",
    ]
    assert clicks_stored(aws) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_everflow_throttling_or_failing_on_the_way_is_asked_again(
    run: Importer,
    aws: Aws,
    everflow: EverflowStandIn,
    capsys: pytest.CaptureFixture[str],
    status: int,
) -> None:
    for n in range(5):
        converted(everflow, n, DEC_1 + n * DAY)
    # page 1 answers; page 2 fails twice, then answers
    everflow.script([{"status": 200}, {"status": status}, {"status": status}])
    assert run(*RANGE) == 0
    assert [(q["page"], s) for q, _, s in report_requests(everflow)] == [
        ("1", 200),
        ("2", status),
        ("2", status),
        ("2", 200),
        ("3", 200),
    ]
    assert run.pauses == [2.0, 4.0]
    err = capsys.readouterr().err
    assert f"Everflow: POST /reporting/conversions: HTTP {status}; asking again in 2s" in err
    assert clicks_stored(aws) == 5


def test_everflow_failing_every_time_is_one_line_and_the_same_run_later_completes(
    run: Importer, aws: Aws, everflow: EverflowStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(4):
        converted(everflow, n, DEC_1 + n * DAY)
    everflow.script([{"status": 200}] + [{"status": 503}] * 6)
    assert run(*RANGE) == 7
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(
        "stripe-everflow import-clicks: Everflow's conversion report did not answer at "
    )
    assert "asked 6 times; what was stored stays: run it again" in err[-1]
    assert clicks_stored(aws) == 2  # the first page's
    assert run(*RANGE) == 0
    assert clicks_stored(aws) == 4


def test_a_refused_key_is_one_line_and_stores_nothing(
    run: Importer, aws: Aws, everflow: EverflowStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    converted(everflow, 0, DEC_1 + DAY)
    everflow.set_api_key("another-key")  # the secret holds ef-api-key
    assert run(*RANGE) == 12
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "stripe-everflow import-clicks: Everflow refused its conversion report: "
        "POST /reporting/conversions: HTTP 401 — check everflow_api_key in the bridge "
        "secret (a Network API key of this network)"
    )
    assert run.pauses == []  # a refusal is not asked again
    assert clicks_stored(aws) == 0


def test_the_payments_parked_for_the_clicks_are_released(
    run: Importer, aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given jenny's payment was parked: no click known for her
    pipeline: Pipeline = build_pipeline(
        aws, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url, CLICK_SOURCES="api,stripe,everflow"
    )
    pipeline.deliver_events(stripe_event("legacy", "invoice.paid.first"))
    assert pipeline.jobs() == []
    # When Everflow's report holding her sign-up is imported
    everflow.add_conversion(
        transaction_id="ef_tx_jenny",
        email=JENNY,
        offer_id=1,
        affiliate_id=7,
        conversion_unix_timestamp=DEC_1 + 2 * DAY,
        click_unix_timestamp=DEC_1 + DAY,
    )
    assert run(*RANGE) == 0
    # Then her payment went back to matching and is posted to that click
    assert pipeline.run_replays() == 1
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_jenny"
    # (the matcher, pinning her customer, sends back the copy parked under it)
    pipeline.run_replays()
    assert pipeline.jobs() == []
    # and a second import releases nothing more
    assert run(*RANGE) == 0
    assert aws.drain("PaymentEventsQueue") == []


def test_a_range_over_a_year_is_read_in_windows_of_at_most_a_year(
    run: Importer, aws: Aws, everflow: EverflowStandIn
) -> None:
    # Given conversions spread over two years (Everflow refuses a report over a year)
    for n in range(4):
        converted(everflow, n, DEC_1 - 700 * DAY + n * 200 * DAY)
    assert run("--since", "2023-12-31", "--until", "2025-12-31") == 0
    spans = []
    for _, body, status in report_requests(everflow):
        assert status == 200
        start, end = (
            datetime.strptime(body[k], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
            for k in ("from", "to")
        )
        spans.append((start, end))
    assert len(spans) == 3
    assert all(end - start <= 365 * DAY for start, end in spans)
    assert [start for start, _ in spans[1:]] == [end for _, end in spans[:-1]]
    assert clicks_stored(aws) == 4


def test_the_scheduled_syncs_checkpoint_is_left_alone(
    run: Importer, aws: Aws, everflow: EverflowStandIn
) -> None:
    converted(everflow, 0, DEC_1 + DAY)
    assert run(*RANGE) == 0
    pk, sk = sync_checkpoint_key("offer-1")
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    assert "Item" not in aws.dynamodb.get_item(TableName="AttributionTable", Key=key)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["import-clicks", *argv])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["clicks.csv", "--from-everflow", *RANGE], "give FILE.csv or --from-everflow, not both"),
        ([], "no clicks to import"),
        (["--from-everflow"], "--from-everflow needs --since DATE"),
        (["clicks.csv", "--since", "2025-12-01"], "--since goes with --from-everflow"),
        (["--from-everflow", "--since", "2025-12-01", "--skip-bad"], "--skip-bad is for FILE"),
        (["--from-everflow", "--since", "yesterday"], "--since 'yesterday' is not a date"),
        (["--from-everflow", "--since", "2025-13-01"], "--since '2025-13-01' is not a date"),
        (
            ["--from-everflow", "--since", "2025-12-01T00:00:00"],
            "--since '2025-12-01T00:00:00' is not a date",
        ),
        (
            ["--from-everflow", "--since", "2025-12-31", "--until", "2025-12-01"],
            "--since 2025-12-31 is not before --until 2025-12-01",
        ),
        (["--from-everflow", "--since", "2999-01-01"], "--since 2999-01-01 is not before"),
    ],
)
def test_wrong_options_are_one_line_exit_2_and_change_nothing(
    local: StackAccess,
    aws: Aws,
    everflow: EverflowStandIn,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clicks.csv").write_text("email,transaction_id\n", encoding="utf-8")
    converted(everflow, 0, DEC_1 + DAY)
    code, err = cli(capsys, *argv, "--endpoint", "local", "--everflow-api-base", everflow.url)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert report_requests(everflow) == [] and clicks_stored(aws) == 0


def test_no_everflow_api_key_in_the_secret_is_one_line(
    local: StackAccess, aws: Aws, everflow: EverflowStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    with_api_key(aws, None)
    code, err = cli(
        capsys,
        "--from-everflow",
        *RANGE,
        "--endpoint",
        "local",
        "--everflow-api-base",
        everflow.url,
    )
    assert code == 2
    assert err == (
        "stripe-everflow import-clicks: the bridge secret has no everflow_api_key — add the "
        "advertiser's Everflow Network API key (stripe-everflow setup)\n"
    )
    assert everflow.api_calls() == []


def test_a_stack_without_everflow_as_a_click_source_is_told_so(
    local: StackAccess,
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment = aws.function_environment("SyncClicksFunction") | {"CLICK_SOURCES": "api,stripe"}
    monkeypatch.setattr(StackAccess, "function_environment", lambda self, _id: environment)
    converted(everflow, 0, DEC_1 + DAY)
    code, err = cli(
        capsys,
        "--from-everflow",
        *RANGE,
        "--endpoint",
        "local",
        "--everflow-api-base",
        everflow.url,
    )
    assert code == 2
    assert err == (
        "stripe-everflow import-clicks: the stack's ClickSources (api,stripe) does not name "
        "everflow, so the matcher would disregard Everflow's clicks — add everflow to "
        "ClickSources, or import the clicks as a CSV file\n"
    )
    assert everflow.api_calls() == [] and clicks_stored(aws) == 0
