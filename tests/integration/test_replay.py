"""`stripe-everflow replay` (issue 12): Stripe events again, from a JSON-lines file,
through the webhook's checks after the signature (mode, allow-list, shape, email
redaction) and the same queue; what was already counted is counted once."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from stripe_everflow_cli import replay
from stripe_everflow_cli.stack_access import StackAccess
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline, local_stack_access
from tests.support import stripe_event

CLICK = {
    "email": "jenny.rosen@example.com",
    "transaction_id": "ef_tx_jenny",
    "offer_id": 12,
    "affiliate_id": 7,
}


@pytest.fixture
def local(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> StackAccess:
    return local_stack_access(aws, monkeypatch)


@pytest.fixture
def pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return build_pipeline(aws, monkeypatch)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    return replay.run(parser.parse_args([*argv, "--endpoint", "local"]))


def jsonl(tmp_path: Path, *lines: Any) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


def test_events_go_through_the_webhooks_checks_and_are_counted_once(
    local: StackAccess,
    aws: Aws,
    pipeline: Pipeline,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline.post_clicks(CLICK)
    paid = stripe_event("legacy", "invoice.paid.first")
    unhandled = stripe_event("legacy", "invoice.paid.first") | {
        "id": "evt_1QbridgeUnhandled",
        "type": "invoice.created",
    }
    other_mode = stripe_event("legacy", "invoice.paid.renewal") | {"livemode": True}
    path = jsonl(tmp_path, paid, paid, unhandled, other_mode, "{not json", {"object": "list"})
    # When the file is replayed
    assert run(str(path)) == 1
    out, err = capsys.readouterr()
    assert "2 event(s) queued" in out
    assert "1 event_type_not_handled" in out and "1 livemode_mismatch" in out
    assert "refused: 2" in out
    assert "line 5: not JSON" in err and "line 6:" in err
    # Then the queued events are the webhook's messages, marked as a replay, emails hashed
    messages = aws.drain("PaymentEventsQueue")
    assert [m["Body"]["source"] for m in messages] == ["replay", "replay"]
    assert "jenny.rosen@example.com" not in json.dumps([m["Body"] for m in messages])
    # and the matcher counts the payment once
    pipeline.deliver(*(json.dumps(m["Body"]) for m in messages))
    assert [j["job_key"] for j in pipeline.jobs()] == ["conversion:default:in_1QbridgeFirst01"]


def test_dry_run_queues_nothing(
    local: StackAccess, aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = jsonl(tmp_path, stripe_event("basil", "invoice.paid.first"))
    assert run(str(path), "--dry-run") == 0
    assert "1 event(s) would be queued" in capsys.readouterr().out
    assert aws.drain("PaymentEventsQueue") == []


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        ((), "give a FILE or --from-stripe", 2),
        (("missing.jsonl",), "no such file", 3),
        (("--from-stripe",), "has no api_key", 2),
        (("events.jsonl", "--account", "other"), "no Stripe account named 'other'", 2),
        (("events.jsonl", "--outside"), "run from the project", 2),
    ],
)
def test_what_cannot_be_replayed_is_one_line_and_its_exit_code(
    local: StackAccess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    message: str,
    code: int,
) -> None:
    jsonl(tmp_path, stripe_event("basil", "invoice.paid.first"))
    if "--outside" in argv:
        monkeypatch.chdir(tmp_path)  # the local stack's settings come from the project
        argv = tuple(a for a in argv if a != "--outside")
    paths = [str(tmp_path / a) if a.endswith(".jsonl") else a for a in argv]
    assert run(*paths) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
