"""AttributionStore.get_many when DynamoDB leaves keys unprocessed (it does under
throttling, or past 16 MB an answer): what it left is asked again, after a pause,
until every item is read — or the read fails after 5 attempts, never silently short.
AttributionTable from moto (template.yaml), its BatchGetItem answers cut as told."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import stripe_everflow.adapters.dynamodb.store as store_module
from stripe_everflow.adapters.dynamodb.store import AttributionStore
from tests.integration.conftest import Aws


class Throttled:
    """moto's DynamoDB whose BatchGetItem answers leave unprocessed every key but the
    first of each request, ``times`` times (``None``: always)."""

    def __init__(self, dynamodb: Any, times: int | None) -> None:
        self._dynamodb = dynamodb
        self._times = times
        self.requests: list[int] = []  # keys asked in each BatchGetItem

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        [(table, request)] = RequestItems.items()
        keys = request["Keys"]
        self.requests.append(len(keys))
        if (self._times is not None and self._times <= 0) or len(keys) == 1:
            return dict(self._dynamodb.batch_get_item(RequestItems=RequestItems))
        if self._times is not None:
            self._times -= 1
        answer = self._dynamodb.batch_get_item(RequestItems={table: {**request, "Keys": keys[:1]}})
        answer["UnprocessedKeys"] = {table: {**request, "Keys": keys[1:]}}
        return dict(answer)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The store's pauses between attempts, noted instead of slept."""
    noted: list[float] = []
    monkeypatch.setattr(
        store_module, "time", SimpleNamespace(sleep=noted.append, time=store_module.time.time)
    )
    return noted


def _store(aws: Aws, times: int | None, count: int) -> tuple[AttributionStore, Throttled]:
    table = aws.resources.table_names["AttributionTable"]
    for n in range(count):
        aws.dynamodb.put_item(
            TableName=table, Item={"pk": {"S": f"email#{n:03d}"}, "sk": {"S": "clicks"}}
        )
    throttled = Throttled(aws.dynamodb, times)
    return AttributionStore(table, throttled), throttled


def test_keys_left_unprocessed_are_asked_again_until_every_item_is_read(
    aws: Aws, pauses: list[float]
) -> None:
    # Given DynamoDB leaving all but one key of a request unprocessed, twice
    store, throttled = _store(aws, times=2, count=5)
    # When five items are read
    found = store.get_many([(f"email#{n:03d}", "clicks") for n in range(5)])
    # Then every one is there, read in three requests with a growing pause between
    assert sorted(found) == [(f"email#{n:03d}", "clicks") for n in range(5)]
    assert throttled.requests == [5, 4, 3]
    assert len(pauses) == 2 and pauses[0] < pauses[1]


def test_a_read_that_stays_unprocessed_fails_instead_of_coming_back_short(
    aws: Aws, pauses: list[float]
) -> None:
    store, throttled = _store(aws, times=None, count=8)
    with pytest.raises(RuntimeError, match="unprocessed"):
        store.get_many([(f"email#{n:03d}", "clicks") for n in range(8)])
    assert throttled.requests == [8, 7, 6, 5, 4]


def test_more_than_100_keys_go_in_requests_of_100(aws: Aws, pauses: list[float]) -> None:
    store, throttled = _store(aws, times=0, count=150)
    found = store.get_many([(f"email#{n:03d}", "clicks") for n in range(150)])
    assert len(found) == 150 and throttled.requests == [100, 50]
