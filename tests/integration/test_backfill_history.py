"""`stripe-everflow backfill` against the Stripe API stand-in (issue 12): history fed
through the live path, each payment posted once, an interrupted run resumed where it
stopped, a second run posting nothing, Stripe's 429 honoured."""

from __future__ import annotations

import argparse
import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow_cli import backfill
from stripe_everflow_cli.stack_access import StackAccess
from stripe_everflow_cli.stripe_standin import StripeStandIn
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline, local_stack_access
from tests.support import bridge_secret, stripe_event

DAYS = 2
PER_DAY = 110
START = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture
def stripe_api() -> Iterator[StripeStandIn]:
    standin = StripeStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def local(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> StackAccess:
    secret = bridge_secret()
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_bridge"
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    return local_stack_access(aws, monkeypatch)


@pytest.fixture
def pipeline(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, local: StackAccess, stripe_api: StripeStandIn
) -> Pipeline:
    return build_pipeline(aws, monkeypatch, STRIPE_API_BASE=stripe_api.url)


def seed_history(stripe_api: StripeStandIn) -> list[str]:
    """DAYS x PER_DAY paid first invoices (basil), each its own customer and email."""
    template = stripe_event("basil", "invoice.paid.first")["data"]["object"]
    invoices = []
    for n in range(DAYS * PER_DAY):
        invoice = copy.deepcopy(template)
        moment = START + n * (86_400 // PER_DAY + 1)  # PER_DAY a day
        invoice.update(
            id=f"in_bf{n:05d}",
            customer=f"cus_bf{n:05d}",
            customer_email=f"customer{n}@example.com",
            created=moment,
        )
        invoice["status_transitions"]["paid_at"] = moment
        invoices.append(invoice)
    stripe_api.put_many("invoices", invoices)
    return [i["id"] for i in invoices]


def post_clicks(pipeline: Pipeline) -> None:
    clicks = [
        {
            "email": f"customer{n}@example.com",
            "transaction_id": f"ef_tx_{n}",
            "offer_id": 12,
            "affiliate_id": 7,
            "occurred_at": START - 86_400,
        }
        for n in range(DAYS * PER_DAY)
    ]
    status, _ = pipeline.post_clicks(clicks)
    assert status == 201


def run(stripe_api: StripeStandIn, *flags: str) -> int:
    parser = argparse.ArgumentParser()
    backfill.add_arguments(parser)
    argv = ["--since", "2026-01-01", "--until", "2026-01-02", "--max-rps", "0"]
    argv += ["--stripe-api-base", stripe_api.url, "--endpoint", "local", *flags]
    return backfill.run(parser.parse_args(argv))


def match_all(pipeline: Pipeline, aws: Aws) -> list[str]:
    """Feed what the backfill queued to the matcher, 10 at a time; the conversions."""
    messages = aws.drain("PaymentEventsQueue")
    for start in range(0, len(messages), 10):
        pipeline.deliver(*(json.dumps(m["Body"]) for m in messages[start : start + 10]))
    return [j["stripe"]["invoice_id"] for j in pipeline.jobs() if j["action"] == "conversion"]


def test_an_interrupted_backfill_resumes_and_posts_each_payment_once(
    stripe_api: StripeStandIn,
    pipeline: Pipeline,
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoices = seed_history(stripe_api)
    post_clicks(pipeline)
    # Given Stripe refuses mid-run (day 1 read in two pages, then day 2's first page)
    stripe_api.script(
        [
            {"delay": 0, "path": "/v1/invoices"},
            {"delay": 0, "path": "/v1/invoices"},
            {"status": 403, "path": "/v1/invoices"},
        ]
    )
    assert run(stripe_api) == 11
    assert "Stripe refused" in capsys.readouterr().err
    first = match_all(pipeline, aws)
    assert sorted(first) == invoices[:PER_DAY]  # day 1, whole
    # When it is run again, with a 429 on the way
    stripe_api.script([{"status": 429, "retry_after": 0, "path": "/v1/invoices"}])
    assert run(stripe_api) == 0
    out = capsys.readouterr().out
    assert f"({PER_DAY} fed by an earlier run)" in out and "1 rate-limited" in out
    second = match_all(pipeline, aws)
    # Then every payment is posted exactly once
    assert sorted(first + second) == invoices
    # And a backfill of the same history from the start posts nothing more
    assert run(stripe_api, "--restart") == 0
    assert match_all(pipeline, aws) == []


def test_dry_run_prints_what_would_be_fed_and_to_whom_and_queues_nothing(
    stripe_api: StripeStandIn,
    pipeline: Pipeline,
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_history(stripe_api)
    # Given clicks reported for the even customers only
    status, _ = pipeline.post_clicks(
        [
            {
                "email": f"customer{n}@example.com",
                "transaction_id": f"ef_tx_{n}",
                "offer_id": 12,
                "affiliate_id": 7,
                "occurred_at": START - 86_400,
            }
            for n in range(0, DAYS * PER_DAY, 2)
        ]
    )
    assert status == 201
    before = table_items(aws)
    # When the backfill is run dry
    assert run(stripe_api, "--dry-run") == 0
    out = capsys.readouterr().out
    lines = {line.split()[3]: line for line in out.splitlines() if "invoice.paid" in line}
    assert len(lines) == DAYS * PER_DAY
    # Then each line names the amount counted and the partner, or that none is known
    assert (
        "4900 USD  customer cus_bf00000  -> 49.00 USD, affiliate 7 click ef_tx_0 "
        in (lines["in_bf00000"])
    )
    for n in range(DAYS * PER_DAY):
        line = lines[f"in_bf{n:05d}"]
        if n % 2 == 0:
            assert f"affiliate 7 click ef_tx_{n} (email_first_touch)" in line, line
        else:
            assert "49.00 USD, no click known: would park" in line, line
        # (the live path would also ask Stripe for the customer's click id first)
        assert line.endswith("; would ask Stripe for the customer first"), line
    assert f"{DAYS * PER_DAY} event(s) would be queued" in out
    # (each invoice's claim, its customer's pin and its email's clicks, read once)
    assert f"dry run: {3 * DAYS * PER_DAY} AttributionTable item(s) read, nothing written" in out
    # And nothing was queued or written
    assert aws.drain("PaymentEventsQueue") == []
    assert table_items(aws) == before


def table_items(aws: Aws) -> list[dict[str, Any]]:
    table = aws.resources.resolver.resolve({"Ref": "AttributionTable"})
    items: list[dict[str, Any]] = []
    for page in aws.dynamodb.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_a_key_without_the_permission_is_one_line(
    stripe_api: StripeStandIn, local: StackAccess, capsys: pytest.CaptureFixture[str]
) -> None:
    stripe_api.add_key("rk_test_bridge", {"invoices": "read"})
    assert run(stripe_api) == 11
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Stripe refused" in err and "permission" in err


class _InterruptedError(Exception):
    """The run stopped at a random moment (a Ctrl-C, a killed laptop)."""


class _RecordingSender:
    """PaymentEventsQueue as a list (20,000 messages would slow moto's queue to a
    crawl), stopping the run when its count reaches one of ``stops``: the messages
    before it in the batch are sent, the position after them is not written."""

    def __init__(self, sent: list[str], stops: set[int]) -> None:
        self.sent, self.stops = sent, stops

    def send(self, body: str, attributes: dict[str, str]) -> str:
        if len(self.sent) in self.stops:
            self.stops.discard(len(self.sent))
            raise _InterruptedError
        self.sent.append(body)
        return f"m{len(self.sent)}"

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


def test_20000_objects_interrupted_at_random_are_each_fed_and_posted_once(
    stripe_api: StripeStandIn,
    pipeline: Pipeline,
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given 20,000 paid invoices over a week, each its own customer
    objects, spacing = 20_000, 30
    template = stripe_event("basil", "invoice.paid.first")["data"]["object"]
    invoices = []
    for n in range(objects):
        invoice = copy.deepcopy(template)
        invoice.update(
            id=f"in_bk{n:06d}",
            customer=f"cus_bk{n:06d}",
            customer_email=f"buyer{n}@example.com",
            created=START + n * spacing,
        )
        invoice["status_transitions"]["paid_at"] = START + n * spacing
        invoices.append(invoice)
    stripe_api.put_many("invoices", invoices)
    # And a backfill stopped at four random moments
    chance = random.Random(20261203)  # noqa: S311 - a fixed seed, not a secret
    stops = set(chance.sample(range(1, objects), 4))
    sent: list[str] = []
    monkeypatch.setattr(
        StackAccess, "payment_events_batch", lambda _: _RecordingSender(sent, stops)
    )
    argv = ("--since", "2026-01-01", "--until", "2026-01-07")
    runs = 0
    while True:
        runs += 1
        try:
            assert run(stripe_api, *argv) == 0
            break
        except _InterruptedError:
            assert runs <= 4
    assert runs == 5
    # Then every invoice was fed, each under one event id whatever the run
    fed: dict[str, set[str]] = {}
    for body in sent:
        event = json.loads(body)["event"]
        fed.setdefault(event["data"]["object"]["id"], set()).add(event["id"])
    assert sorted(fed) == [i["id"] for i in invoices]
    assert all(len(ids) == 1 for ids in fed.values())
    # And only what followed a run's last written position was fed again
    again = len(sent) - objects
    assert 0 < again <= 4 * backfill.FEED_BATCH, again
    # And a second run feeds nothing
    capsys.readouterr()
    assert run(stripe_api, *argv) == 0
    assert len(sent) == objects + again
    assert "0 event(s) queued" in capsys.readouterr().out
    # And each payment fed twice (with a few fed once) is posted once through the matcher
    twice = [invoice for invoice, _ in _counted(sent).items() if _ > 1]
    sample = set(chance.sample(twice, 12)) | set(chance.sample(sorted(fed), 6))
    numbers = sorted(int(invoice.removeprefix("in_bk")) for invoice in sample)
    status, _ = pipeline.post_clicks(
        [
            {
                "email": f"buyer{n}@example.com",
                "transaction_id": f"ef_tx_bk{n}",
                "offer_id": 12,
                "affiliate_id": 7,
                "occurred_at": START - 86_400,
            }
            for n in numbers
        ]
    )
    assert status == 201
    chosen = [b for b in sent if json.loads(b)["event"]["data"]["object"]["id"] in sample]
    assert len(chosen) >= len(sample) + 12
    for start in range(0, len(chosen), 10):
        pipeline.deliver(*chosen[start : start + 10])
    posted = [j["stripe"]["invoice_id"] for j in pipeline.jobs() if j["action"] == "conversion"]
    assert sorted(posted) == sorted(sample)


def _counted(bodies: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for body in bodies:
        invoice = json.loads(body)["event"]["data"]["object"]["id"]
        counts[invoice] = counts.get(invoice, 0) + 1
    return counts
