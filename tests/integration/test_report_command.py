"""`stripe-everflow report` against a LedgerTable (created from template.yaml on a moto
server, as the local stack has it) holding entries the report cannot fully read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from stripe_everflow.adapters.dynamodb import to_attributes
from stripe_everflow_cli.localconfig import DEFAULT_LOCAL_PARAMETERS
from stripe_everflow_cli.main import main
from stripe_everflow_cli.provision import provision
from stripe_everflow_cli.template import load_template
from tests.support import PROJECT_ROOT, bridge_secret


@pytest.fixture
def ledger() -> Iterator[tuple[str, Any]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its state per process: start from an empty account.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
    )
    clients = {s: session.client(s, endpoint_url=endpoint) for s in ("sqs", "dynamodb")}
    provision(
        load_template(PROJECT_ROOT / "template.yaml"),
        sqs=clients["sqs"],
        dynamodb=clients["dynamodb"],
        secretsmanager=session.client("secretsmanager", endpoint_url=endpoint),
        secret_string=json.dumps(bridge_secret()),
        parameters=DEFAULT_LOCAL_PARAMETERS,
    )
    try:
        yield endpoint, clients["dynamodb"]
    finally:
        server.stop()


def _put(dynamodb: Any, job_key: str, **item: Any) -> None:
    item = {
        "pk": f"job#{job_key}",
        "sk": "ledger",
        "job_key": job_key,
        "action": "conversion",
    } | item
    dynamodb.put_item(TableName="LedgerTable", Item=to_attributes(item))


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_report_reads_past_an_entry_with_an_absurd_timestamp(
    ledger: tuple[str, Any], fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint, dynamodb = ledger
    # Given a posted conversion, and one whose time is 10^20 s after 1970 and whose
    # amount is no number
    sound = {"status": "posted", "amount": "49.00", "currency": "USD", "invoice_id": "in_1"}
    _put(dynamodb, "conversion:default:in_1", occurred_at=1767225600, **sound)
    _put(
        dynamodb,
        "conversion:default:in_far",
        occurred_at=Decimal(10**20),
        created_at=Decimal(-(10**20)),
        **(sound | {"amount": "forty-nine", "invoice_id": "in_far"}),
    )
    # When the operator asks for the conversions report
    code = main(["report", "conversions", "--endpoint", endpoint, "--format", fmt])
    # Then it answers, with the sound conversion, and names the entry it could not read
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "in_1" in out
    assert "conversion:default:in_far" in (err if fmt == "csv" else out)
    if fmt == "json":
        assert json.loads(out)["totals"] == {
            "USD": {"conversions": "1", "posted": "49.00", "net_after_refunds": "49.00"}
        }
