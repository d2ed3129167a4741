"""The Network API budget: at most N calls per second across every worker."""

from __future__ import annotations

from typing import Any

from stripe_everflow.adapters.dynamodb import condition_failed
from stripe_everflow.domain.errors import EverflowApiError


class ApiRateLimiter:
    """At most ``per_second`` Network API calls per second across every worker: a
    fixed one-second window counted with a conditional ADD in LedgerTable (TTL'd)."""

    def __init__(
        self, table_name: str, dynamodb: Any, per_second: int = 25, max_wait_seconds: float = 10.0
    ) -> None:
        self._table = table_name
        self._db = dynamodb
        self._per_second = per_second
        self._max_wait = max_wait_seconds

    def acquire(self) -> None:
        """Wait for a slot; raises EverflowApiError after ``max_wait_seconds`` (retried)."""
        import time

        deadline = time.monotonic() + self._max_wait
        while True:
            second = int(time.time())
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
            if time.monotonic() > deadline:
                raise EverflowApiError("the Network API rate limit stayed exhausted")
            time.sleep(max(0.0, second + 1 - time.time()) + 0.01)
