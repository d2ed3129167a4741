"""Everflow as a click source on the local stack: the real handlers in worker
processes, moto, the Everflow stand-in; SyncClicksFunction run by its schedule
emulation. A payment matched through the lookup (no POST /clicks), and a parked one
released by the sync; the schedule follows ClickSources."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow_cli.demo import _customer_event, _through_eventbridge
from stripe_everflow_cli.localconfig import load_local_config
from stripe_everflow_cli.stack import LocalStack
from tests.support import PROJECT_ROOT

QUEUES = ("PaymentEventsQueue", "PostbackQueue")


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    config = load_local_config(None, {})
    config = dataclasses.replace(
        config, parameters={**config.parameters, "ClickSources": "api,stripe,everflow"}
    )
    running = LocalStack(project_root=PROJECT_ROOT, config=config)
    running.start()
    yield running
    running.stop()


def posted(stack: LocalStack, transaction_id: str) -> list[dict[str, str]]:
    assert stack.everflow is not None
    return [
        dict(p.query)
        for p in stack.everflow.postbacks()
        if dict(p.query).get("transaction_id") == transaction_id
    ]


def test_lookup_then_sync_on_the_local_stack(stack: LocalStack) -> None:
    everflow = stack.everflow
    assert everflow is not None
    now = int(time.time())
    # Given Everflow knows amara's sign-up, and not yet bruno's
    everflow.add_conversion(
        transaction_id="ef_tx_amara",
        email="amara@example.com",
        offer_id=1,
        affiliate_id=21,
        conversion_unix_timestamp=now - 3600,
    )
    # When both pay (through EventBridge: the events carry their emails)
    _through_eventbridge(stack, _customer_event(PROJECT_ROOT, "Amara", "amara@example.com"))
    _through_eventbridge(stack, _customer_event(PROJECT_ROOT, "Bruno", "bruno@example.com"))
    assert stack.wait_until_drained(QUEUES, timeout=60)
    # Then amara's payment went to her click; bruno's waits
    [amara] = posted(stack, "ef_tx_amara")
    assert amara["nid"] == "1" and amara["amount"] == "49.00"
    assert len(everflow.requests("/v1/networks/reporting/conversions/email")) == 2
    # And once Everflow records bruno's sign-up, the scheduled sync releases his payment
    everflow.add_conversion(
        transaction_id="ef_tx_bruno",
        email="bruno@example.com",
        offer_id=1,
        affiliate_id=33,
        conversion_unix_timestamp=now - 60,
    )
    result = stack.run_schedule("SyncClicksFunction")
    assert (result["status"], result["registered"], result["replayed"]) == ("synced", 1, 1)
    assert stack.wait_until_drained(QUEUES, timeout=60)
    assert len(posted(stack, "ef_tx_bruno")) == 1
    # the schedule itself runs every 5 minutes by default
    assert stack.schedules["SyncClicksFunction"].interval == 300


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, None),  # ClickSources is api,stripe by default
        ({"ClickSources": "api,stripe,everflow"}, "rate(5 minutes)"),
        ({"ClickSources": "everflow", "EverflowSyncSchedule": "rate(1 hour)"}, "rate(1 hour)"),
        ({"ClickSources": "api,everflow", "EverflowSyncSchedule": ""}, None),
    ],
)
def test_the_schedule_follows_click_sources_and_its_parameter(
    parameters: dict[str, str], expected: str | None
) -> None:
    from stripe_everflow_cli.preflight import check_parameters
    from stripe_everflow_cli.stack import scheduled_functions
    from stripe_everflow_cli.template import load_template

    template = load_template(PROJECT_ROOT / "template.yaml")
    config = load_local_config(None, {})
    values = check_parameters(template, {**config.parameters, **parameters})
    assert scheduled_functions(template, values) == {"SyncClicksFunction": expected}


def test_schedule_expressions() -> None:
    from stripe_everflow_cli.pollers import build_scheduled_event, schedule_seconds

    assert schedule_seconds("rate(5 minutes)") == 300
    assert schedule_seconds("rate(1 hour)") == 3600
    assert schedule_seconds("rate(2 days)") == 172_800
    assert schedule_seconds("cron(0/5 * * * ? *)") == 300
    assert schedule_seconds("") is None
    event: dict[str, Any] = build_scheduled_event("SyncClicksFunction", 0)
    assert (event["source"], event["detail-type"], event["time"]) == (
        "aws.events",
        "Scheduled Event",
        "1970-01-01T00:00:00Z",
    )
    json.dumps(event)
