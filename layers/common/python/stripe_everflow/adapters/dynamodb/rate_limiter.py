"""The Network API budget: at most N calls per second across every worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stripe_everflow.adapters.dynamodb import condition_failed
from stripe_everflow.domain.errors import EverflowApiError


class ApiRateLimiter:
    """At most ``per_second`` Network API calls per second across every worker: a
    fixed one-second window counted with a conditional ADD in LedgerTable (TTL'd).
    ``clock`` and ``sleep`` are the wall clock's (tests move simulated time)."""

    def __init__(
        self,
        table_name: str,
        dynamodb: Any,
        per_second: int = 25,
        max_wait_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._db = dynamodb
        self._per_second = per_second
        self._max_wait = max_wait_seconds
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        """Wait for a slot; raises EverflowApiError after ``max_wait_seconds`` (retried)."""
        deadline = self._clock() + self._max_wait
        while True:
            second = int(self._clock())
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": f"ratelimit#everflow-api#{second}"}, "sk": {"S": "window"}},
                    UpdateExpression="ADD calls :one SET expires_at = :expires",
                    ConditionExpression="attribute_not_exists(calls) OR calls < :limit",
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":limit": {"N": str(self._per_second)},
                        ":expires": {"N": str(second + 120)},
                    },
                )
                return
            except Exception as error:
                if not condition_failed(error):
                    raise
            if self._clock() > deadline:
                raise EverflowApiError("the Network API rate limit stayed exhausted")
            self._sleep(max(0.0, second + 1 - self._clock()) + 0.01)
