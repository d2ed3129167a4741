"""`stripe-everflow import-clicks FILE.csv` (issue 12): every row checked first, each
bad one named by line and field, nothing stored unless all are good (or
``--skip-bad``), idempotent, and the payments it makes attributable released."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from stripe_everflow_cli import import_clicks
from stripe_everflow_cli.stack_access import StackAccess
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline, local_stack_access
from tests.support import stripe_event

HEADER = "email,transaction_id,offer_id,affiliate_id,stripe_customer_id,occurred_at\n"
JENNY = "jenny.rosen@example.com,ef_tx_jenny,12,7,cus_QbridgeJenny01,2025-12-01T00:00:00Z\n"
OTHER = "someone@example.com,ef_tx_other,12,8,,1764547200\n"


@pytest.fixture
def local(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> StackAccess:
    return local_stack_access(aws, monkeypatch)


@pytest.fixture
def pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return build_pipeline(aws, monkeypatch)


def run(path: Path, *flags: str) -> int:
    parser = argparse.ArgumentParser()
    import_clicks.add_arguments(parser)
    return import_clicks.run(parser.parse_args([str(path), "--endpoint", "local", *flags]))


def csv_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "clicks.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def clicks_stored(aws: Aws) -> int:
    items = aws.dynamodb.scan(TableName="AttributionTable")["Items"]
    return sum(len(i["clicks"]["M"]) for i in items if "clicks" in i)


def test_bad_rows_are_each_named_and_nothing_is_stored(
    local: StackAccess, aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(
        tmp_path,
        HEADER
        + JENNY
        + "not-an-email,ef_tx_1,12,7,,\n"  # line 3
        + "a@example.com,,12,7,,\n"  # line 4
        + "b@example.com,ef_tx_2,twelve,7,,\n"  # line 5
        + "c@example.com,ef_tx_3,12,7,cus_1,yesterday\n"  # line 6
        + "d@example.com,ef_tx_4,12\n",  # line 7
    )
    assert run(path) == 1
    err = capsys.readouterr().err
    for expected in (
        "line 4: transaction_id is required",
        "line 5: offer_id must be an Everflow numeric id",
        "line 6: occurred_at must be unix seconds or an ISO 8601 time",
        "line 7: row has 3 cells, the header 6",
        "nothing stored",
    ):
        assert expected in err
    assert "line 3: email" in err
    assert clicks_stored(aws) == 0


def test_skip_bad_stores_the_good_rows_and_a_second_run_stores_nothing(
    local: StackAccess, aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(tmp_path, HEADER + JENNY + "a@example.com,,12,7,,\n" + OTHER)
    assert run(path, "--skip-bad") == 0
    assert "2 click(s) stored, 0 already known, 1 bad row(s) skipped" in capsys.readouterr().out
    assert run(path, "--skip-bad") == 0
    assert "0 click(s) stored, 2 already known" in capsys.readouterr().out
    assert clicks_stored(aws) == 2


def test_dry_run_checks_and_stores_nothing(
    local: StackAccess, aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(csv_file(tmp_path, HEADER + JENNY + OTHER), "--dry-run") == 0
    assert "2 click(s) would be imported" in capsys.readouterr().out
    assert clicks_stored(aws) == 0


def test_imported_clicks_release_the_payments_parked_for_them(
    local: StackAccess, aws: Aws, pipeline: Pipeline, tmp_path: Path
) -> None:
    # Given a payment parked: no click known for its email or customer
    pipeline.deliver_events(stripe_event("legacy", "invoice.paid.first"))
    assert pipeline.jobs() == []
    # When the click recorded elsewhere is imported
    assert run(csv_file(tmp_path, HEADER + JENNY)) == 0
    # Then the payment comes back and is posted to the imported click
    assert pipeline.run_replays() == 1
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_jenny"
    assert job["target"]["matched_by"] in ("customer_pin", "email_first_touch")


@pytest.mark.parametrize(
    ("content", "message", "code"),
    [
        (None, "no such file", 3),
        ("", "the file is empty", 2),
        ("email,click\n", "unknown column 'click'", 2),
        ("transaction_id,offer\n", "no email column", 2),
        ("email,transaction_id,offer,offer_id\n", "a column is given twice", 2),
        (b"email,transaction_id\n\xff\xfe,x\n", "not UTF-8", 2),
    ],
)
def test_a_file_that_cannot_be_imported_is_one_line_and_its_exit_code(
    local: StackAccess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes | None,
    message: str,
    code: int,
) -> None:
    path = tmp_path / "missing.csv" if content is None else csv_file(tmp_path, content)
    assert run(path) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
