"""Fuzzing ClickIntakeFunction's real lambda_handler (POST /clicks) on moto resources.

Properties: never a 5xx; a refused request changes nothing; without the token nothing
is stored; and whatever is stored is a good click — a click id of the rule, a keyed
email hash, numeric Everflow ids, a plausible time, a pin of a configured account and
a ``cus_`` id.
"""

from __future__ import annotations

import base64
import json
import re
import time
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stripe_everflow.domain.attribution import read_transaction_id
from tests.fuzz.strategies import as_event_text, click_bodies, count, examples
from tests.integration.conftest import Aws
from tests.support import LambdaContext, load_function

TOKEN = "test-click-token"
EMAIL_PK = re.compile(r"email#[0-9a-f]{64}")
PIN_PK = re.compile(r"customer#(default|eu-store)#cus_[A-Za-z0-9]{1,64}")
NUMERIC_ID = re.compile(r"[0-9]{1,18}")


@pytest.fixture
def clicks(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in aws.function_environment("ClickIntakeFunction").items():
        monkeypatch.setenv(name, value)
    return load_function("click_intake")


def post(
    clicks: ModuleType, body: bytes, *, authorization: str | None, base64_body: bool
) -> tuple[int, dict[str, Any]]:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    event = {
        "version": "2.0",
        "routeKey": "POST /clicks",
        "rawPath": "/clicks",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/clicks"}},
        "isBase64Encoded": base64_body,
        "body": base64.b64encode(body).decode() if base64_body else as_event_text(body),
    }
    try:
        response = clicks.lambda_handler(event, LambdaContext())
    except Exception:
        return 500, {}
    clicks.metrics.clear_metrics()
    return int(response["statusCode"]), json.loads(response["body"])


def items(aws: Aws) -> list[dict[str, Any]]:
    return list(aws.dynamodb.scan(TableName="AttributionTable", ConsistentRead=True)["Items"])


def forget(aws: Aws, stored: list[dict[str, Any]]) -> None:
    """Start each case from an empty table (it stays small: scans stay fast)."""
    for item in stored:
        aws.dynamodb.delete_item(
            TableName="AttributionTable", Key={"pk": item["pk"], "sk": item["sk"]}
        )


def assert_good_click(click: dict[str, Any], now: int, time_field: str = "occurred_at") -> None:
    transaction_id = click["transaction_id"]["S"]
    assert read_transaction_id(transaction_id) == transaction_id
    assert 0 < int(click[time_field]["N"]) <= now + 86_400
    for name in ("offer_id", "affiliate_id"):
        if name in click:
            assert NUMERIC_ID.fullmatch(click[name]["S"]), click[name]
    assert click["source"]["S"] == "api"


def assert_only_good_clicks(stored: list[dict[str, Any]]) -> None:
    now = int(time.time())
    for item in stored:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk == "clicks":
            assert EMAIL_PK.fullmatch(pk), pk
            for name, click in item["clicks"]["M"].items():
                assert name == click["M"]["transaction_id"]["S"]
                assert_good_click(click["M"], now)
        elif sk == "pin":
            assert PIN_PK.fullmatch(pk), pk
            assert_good_click(item, now, time_field="pinned_at")
        else:
            pytest.fail(f"POST /clicks stored an item it never should: {pk} {sk}")


@examples(ci=200, full=3000)
@given(body=click_bodies(), base64_body=st.booleans())
def test_clicks_never_5xx_and_store_only_good_clicks(
    clicks: ModuleType, aws: Aws, body: bytes, base64_body: bool
) -> None:
    status, reply = post(clicks, body, authorization=f"Bearer {TOKEN}", base64_body=base64_body)
    count("clicks", status, f"{status} {reply.get('error', '')}".strip())
    stored = items(aws)
    try:
        assert status < 500, status
        if status >= 400:
            assert stored == [], "a refused request stored something"
        else:
            assert status in (200, 201)
            assert stored, "an accepted request stored nothing"
        assert_only_good_clicks(stored)
    finally:
        forget(aws, stored)


@examples(ci=100, full=1000)
@given(
    body=click_bodies(),
    authorization=st.one_of(
        st.none(),
        st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
        st.sampled_from([TOKEN, f"Basic {TOKEN}", "Bearer", "Bearer ", f"Bearer {TOKEN}x"]),
        st.builds(lambda token: f"Bearer {token}", st.text(max_size=30)),
    ),
)
def test_clicks_without_the_token_store_nothing(
    clicks: ModuleType, aws: Aws, body: bytes, authorization: str | None
) -> None:
    if authorization is not None and authorization.strip().partition(" ")[2].strip() == TOKEN:
        authorization = None  # hypothesis found the token: that is not this property
    status, reply = post(clicks, body, authorization=authorization, base64_body=False)
    count("clicks unauthorized", status, f"{status} {reply.get('error', '')}".strip())
    stored = items(aws)
    forget(aws, stored)
    assert 400 <= status < 500, status
    assert stored == []
