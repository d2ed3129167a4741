"""`stripe-everflow status` on a stack whose queues, tables and secrets are created
from template.yaml (moto, in process), read as a deployed stack is: through its
outputs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stripe_everflow.adapters.dynamodb import to_attributes
from stripe_everflow_cli import status
from stripe_everflow_cli.localconfig import DEFAULT_LOCAL_PARAMETERS
from stripe_everflow_cli.provision import provision
from stripe_everflow_cli.status import collect_status, render
from stripe_everflow_cli.targets import OUTPUT_OF, StackTarget
from stripe_everflow_cli.template import load_template
from tests.support import PROJECT_ROOT, bridge_secret

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
WEBHOOK_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/stripe/webhook"


@dataclass
class DeployedStack:
    target: StackTarget
    clients: dict[str, Any]

    def put_ledger(self, job_key: str, **item: Any) -> None:
        item = {"pk": f"job#{job_key}", "sk": "ledger", "job_key": job_key} | item
        self.clients["dynamodb"].put_item(TableName="LedgerTable", Item=to_attributes(item))

    def put_attribution(self, **item: Any) -> None:
        self.clients["dynamodb"].put_item(TableName="AttributionTable", Item=to_attributes(item))

    def send(self, queue: str, body: str = "{}") -> None:
        sqs = self.clients["sqs"]
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def secret(self, logical_id: str) -> dict[str, Any]:
        text = self.clients["secretsmanager"].get_secret_value(SecretId=logical_id)
        return dict(json.loads(text["SecretString"]))

    def put_secret(self, logical_id: str, document: dict[str, Any]) -> None:
        self.clients["secretsmanager"].put_secret_value(
            SecretId=logical_id, SecretString=json.dumps(document)
        )


def deployed_stack_of(secret: dict[str, Any], parameters: dict[str, str]) -> DeployedStack:
    """Inside mock_aws: the template's resources, and a target reading them by outputs."""
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    clients = {s: session.client(s) for s in ("sqs", "dynamodb", "secretsmanager")}
    made = provision(
        load_template(PROJECT_ROOT / "template.yaml"),
        sqs=clients["sqs"],
        dynamodb=clients["dynamodb"],
        secretsmanager=clients["secretsmanager"],
        secret_string=json.dumps(secret),
        parameters=parameters,
    )
    names = {**made.queue_urls, **made.table_names, **made.secret_arns}
    outputs = {output: names[logical] for logical, output in OUTPUT_OF.items()}
    outputs["WebhookUrl"] = WEBHOOK_URL
    return DeployedStack(
        StackTarget(session, outputs=outputs, parameters=dict(parameters), name="bridge"),
        clients,
    )


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedStack]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield deployed_stack_of(bridge_secret(), dict(DEFAULT_LOCAL_PARAMETERS))


def _day(day: int, hour: int = 10) -> int:
    return int(datetime(2026, 12, day, hour, tzinfo=UTC).timestamp())


def test_an_empty_stack_says_nothing_happened_yet(deployed: DeployedStack) -> None:
    found = collect_status(deployed.target, now=NOW)
    assert [q.visible for q in found.queues] == [0, 0, 0, 0]
    assert found.last_event is None and found.parked_payments == 0
    text = render(found, now=NOW)
    assert "last event:  none yet" in text
    assert "0 posted (nothing)" in text


def test_status_counts_queues_dlqs_ledger_and_parked_payments(deployed: DeployedStack) -> None:
    # Given two payment events waiting, one postback in its DLQ
    deployed.send("PaymentEventsQueue")
    deployed.send("PaymentEventsQueue")
    deployed.send("PostbackDLQ")
    # and a ledger with conversions of today, of earlier this month and of last month
    deployed.put_ledger(
        "c1", action="conversion", kind="initial", status="posted", amount="49.00",
        currency="usd", occurred_at=_day(2), created_at=_day(2, 11),
    )  # fmt: skip
    deployed.put_ledger(
        "c2", action="conversion", kind="rebill", status="posted", amount="10.50",
        currency="eur", occurred_at=_day(1), created_at=_day(1),
    )  # fmt: skip
    deployed.put_ledger(
        "c3", action="conversion", kind="rebill", status="rejected", amount="10.00",
        currency="usd", occurred_at=_day(2), created_at=_day(2),
    )  # fmt: skip
    deployed.put_ledger(
        "c4", action="conversion", kind="rebill", status="retryable", amount="5.00",
        currency="usd", occurred_at=_day(2), created_at=_day(2),
    )  # fmt: skip
    deployed.put_ledger(
        "old", action="conversion", kind="initial", status="posted", amount="99.00",
        currency="usd", occurred_at=_day(2) - 40 * 86_400, created_at=_day(2) - 40 * 86_400,
    )  # fmt: skip
    deployed.put_ledger(
        "r1", action="refund", status="reversed", amount_refunded="49.00", currency="usd",
        occurred_at=_day(2), created_at=_day(2),
    )  # fmt: skip
    # and one payment parked under its email and its customer, one expired, one waiting refund
    for pk in ("parked#email#abc", "parked#customer#default#cus_1"):
        deployed.put_attribution(
            pk=pk, sk="evt_parked", message="{}", parked_at=_day(2, 11) + 60,
            expires_at=int(NOW) + 86_400,
        )  # fmt: skip
    deployed.put_attribution(
        pk="parked#email#old", sk="evt_gone", message="{}", parked_at=_day(1),
        expires_at=int(NOW) - 1,
    )  # fmt: skip
    deployed.put_attribution(pk="parked#undo#default", sk="evt_refund", job="{}")
    deployed.put_attribution(pk="parked#undo#default", sk="#sweep", next_at=1)

    # When the operator asks for the status
    found = collect_status(deployed.target, now=NOW)

    # Then every figure is there
    depths = {q.name: (q.visible, q.in_flight) for q in found.queues}
    assert depths == {
        "PaymentEventsQueue": (2, 0),
        "PaymentEventsDLQ": (0, 0),
        "PostbackQueue": (0, 0),
        "PostbackDLQ": (1, 0),
    }
    assert found.today.posted == 1 and found.today.posted_amounts == {"USD": "49.00"}
    assert found.today.rejected == 1 and found.today.unsettled == 1
    assert found.today.refunds_and_disputes == 1
    assert found.this_month.posted == 2
    assert found.this_month.posted_amounts == {"EUR": "10.50", "USD": "49.00"}
    assert found.parked_payments == 1 and found.waiting_refunds == 1
    assert found.last_event is not None and found.last_event.what == "payment parked"
    text = render(found, now=NOW)
    assert "PostbackDLQ" in text and "redrive" in text
    assert "1 payment(s) waiting for their click" in text
    assert "1 posted (49.00 USD), 1 rejected by Everflow, 1 not settled" in text


def test_status_command_prints_json_for_scripts(
    deployed: DeployedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.send("PaymentEventsDLQ")
    args = argparse.Namespace(endpoint=None, stack="bridge", region=None, format="json")
    assert status.run(args, deployed.target) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["stack"] == "bridge"
    assert {q["name"]: q["visible"] for q in document["queues"]}["PaymentEventsDLQ"] == 1
