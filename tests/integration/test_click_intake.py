"""ClickIntakeFunction's answers to bad requests: a precise status, and nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipeline(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return build_pipeline(aws, monkeypatch, MAX_CLICKS_PER_REQUEST="3")


def stored_items(aws: Aws) -> list[dict[str, Any]]:
    return aws.dynamodb.scan(TableName="AttributionTable")["Items"]


GOOD = {"email": "jenny@example.com", "transaction_id": "ef_tx_1"}


def test_single_click_is_stored_once(pipeline: Pipeline, aws: Aws) -> None:
    assert pipeline.post_clicks(GOOD) == (
        201,
        {
            "stored": 1,
            "already_stored": 0,
            "replayed_payments": 0,
            "transaction_id": "ef_tx_1",
            "status": "stored",
        },
    )
    assert pipeline.post_clicks(GOOD)[0] == 200
    [item] = stored_items(aws)
    assert list(item["clicks"]["M"]) == ["ef_tx_1"]


def test_batch_reports_each_click(pipeline: Pipeline) -> None:
    status, answer = pipeline.post_clicks([GOOD, GOOD | {"transaction_id": "ef_tx_2"}])
    assert status == 201
    assert answer["clicks"] == [
        {"transaction_id": "ef_tx_1", "status": "stored"},
        {"transaction_id": "ef_tx_2", "status": "stored"},
    ]


def test_click_with_a_customer_pins_it(pipeline: Pipeline, aws: Aws) -> None:
    pipeline.post_clicks(GOOD | {"stripe_customer_id": "cus_Q1"})
    pins = [i for i in stored_items(aws) if i["sk"]["S"] == "pin"]
    assert [p["transaction_id"]["S"] for p in pins] == ["ef_tx_1"]


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        (GOOD | {"email": "not-an-email"}, 422, "invalid_field", "email"),
        (GOOD | {"transaction_id": ""}, 422, "invalid_field", "transaction_id"),
        (GOOD | {"offer_id": "twelve"}, 422, "invalid_field", "offer_id"),
        (GOOD | {"coupon": "X"}, 422, "invalid_field", "coupon"),
        ([GOOD, GOOD | {"email": 5}], 422, "invalid_field", "clicks[1].email"),
        ([GOOD] * 4, 413, "payload_too_large", None),
        ([], 422, "invalid_field", "clicks"),
        (b"{not json", 400, "body_not_json", None),
    ],
)
def test_bad_request_is_refused_and_stores_nothing(
    pipeline: Pipeline, aws: Aws, body: Any, status: int, error: str, field: str | None
) -> None:
    answered, answer = pipeline.post_clicks(body)
    assert (answered, answer["error"], answer.get("field")) == (status, error, field)
    assert stored_items(aws) == []


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_wrong_or_missing_token_is_401(pipeline: Pipeline, aws: Aws, token: str) -> None:
    event_token = token or " "
    status, answer = pipeline.post_clicks(GOOD, token=event_token)
    assert (status, answer["error"]) == (401, "unauthorized")
    assert stored_items(aws) == []


def test_intake_is_closed_when_no_token_is_configured(pipeline: Pipeline, aws: Aws) -> None:
    secret = json.loads(
        aws.secretsmanager.get_secret_value(SecretId="BridgeSecret")["SecretString"]
    )
    secret.pop("click_intake_token")
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    status, answer = pipeline.post_clicks(GOOD, token="anything")
    assert (status, answer["error"]) == (503, "secret_unavailable")
    assert stored_items(aws) == []
