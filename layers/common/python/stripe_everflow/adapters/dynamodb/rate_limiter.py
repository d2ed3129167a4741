"""What every worker shares about calling Everflow, kept in LedgerTable: the Network
API budget (at most N calls per second) and the circuit breaker (stop calling a
failing Everflow, probe it now and then, resume once it answers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stripe_everflow.adapters.aws import storage_errors
from stripe_everflow.adapters.dynamodb import condition_failed, from_attributes, to_attributes
from stripe_everflow.domain.errors import EverflowApiError
from stripe_everflow.ports.everflow import Admission


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


BREAKER_KEY = {"pk": {"S": "breaker#everflow"}, "sk": {"S": "state"}}


class EverflowBreaker:
    """A circuit breaker over Everflow shared by every worker: one LedgerTable item
    (``breaker#everflow`` / ``state``).

    ``failures`` counts failed calls (429, 5xx, no answer) since Everflow last
    answered; at ``threshold`` the breaker opens (``open_until``) for a cool-down that
    doubles with each opening in a row (``openings``), from ``cooldown_seconds`` up to
    ``max_cooldown_seconds``. While it is open, batches call nothing. Once the
    cool-down is over, one batch takes the probe (``probe_until``, a lease in case its
    worker dies) and tries one call: an answer closes the breaker (the counts start
    again), a failure opens it again, no call at all gives the probe back.

    Reads are eventually consistent and kept for ``cache_seconds`` while the breaker
    is closed without failures (and while it is open, until ``open_until``), so a
    healthy stream costs one GetItem every few seconds per worker and no write.

    It fails open: when LedgerTable cannot be read or written (botocore errors), the
    batch is let through and its results are not counted — the ledger's own writes
    then decide whether it can be posted.
    """

    def __init__(
        self,
        table_name: str,
        dynamodb: Any,
        threshold: int = 10,
        cooldown_seconds: int = 60,
        max_cooldown_seconds: int = 900,
        probe_lease_seconds: int = 120,
        cache_seconds: int = 5,
    ) -> None:
        self._table = table_name
        self._db = dynamodb
        self._threshold = threshold
        self._cooldown = cooldown_seconds
        self._max_cooldown = max_cooldown_seconds
        self._probe_lease = probe_lease_seconds
        self._cache_seconds = cache_seconds
        self._known: tuple[int, dict[str, Any]] | None = None  # (read at, state)
        self._probing = False

    def _state(self, now: int) -> dict[str, Any]:
        if self._known is not None:
            read_at, state = self._known
            open_until = state.get("open_until")
            if open_until is not None and now < open_until:
                return state
            if (
                open_until is None
                and not state.get("failures")
                and now - read_at < self._cache_seconds
            ):
                return state
        answer = self._db.get_item(TableName=self._table, Key=BREAKER_KEY)
        state = from_attributes(answer.get("Item", {}))
        self._known = (now, state)
        return state

    def admit(self, now: int) -> Admission:
        """Whether this batch calls Everflow: "closed" yes, "probe" with one call,
        "open" not at all."""
        self._probing = False
        try:
            return self._admit(now)
        except storage_errors():
            self._known = None
            return "closed"

    def record(self, now: int, answered: int, failed: int) -> None:
        """What the calls of the batch ``admit`` let through came to."""
        try:
            self._record(now, answered, failed)
        except storage_errors():
            self._known = None

    def _admit(self, now: int) -> Admission:
        state = self._state(now)
        open_until = state.get("open_until")
        if open_until is None:
            return "closed"
        if now < open_until:
            return "open"
        try:
            self._db.update_item(
                TableName=self._table,
                Key=BREAKER_KEY,
                UpdateExpression="SET probe_until = :lease, updated_at = :now",
                ConditionExpression=(
                    "open_until <= :now AND (attribute_not_exists(probe_until) "
                    "OR probe_until < :now)"
                ),
                ExpressionAttributeValues=to_attributes(
                    {":lease": now + self._probe_lease, ":now": now}
                ),
            )
        except Exception as error:
            if not condition_failed(error):
                raise
            self._known = None  # another worker probes, or closed it: read again next time
            return "open"
        self._probing = True
        return "probe"

    def _record(self, now: int, answered: int, failed: int) -> None:
        probing, self._probing = self._probing, False
        known = self._known[1] if self._known is not None else {}
        if answered:
            if probing or known.get("failures") or known.get("open_until") is not None:
                self._db.update_item(
                    TableName=self._table,
                    Key=BREAKER_KEY,
                    UpdateExpression=(
                        "SET failures = :zero, openings = :zero, updated_at = :now "
                        "REMOVE open_until, probe_until"
                    ),
                    ExpressionAttributeValues=to_attributes({":zero": 0, ":now": now}),
                )
                self._known = (now, {"failures": 0, "openings": 0})
            return
        if failed:
            answer = self._db.update_item(
                TableName=self._table,
                Key=BREAKER_KEY,
                UpdateExpression="ADD failures :failed SET updated_at = :now",
                ExpressionAttributeValues=to_attributes({":failed": failed, ":now": now}),
                ReturnValues="ALL_NEW",
            )
            state = from_attributes(answer.get("Attributes", {}))
            open_until = state.get("open_until")
            if state.get("failures", 0) >= self._threshold and (
                open_until is None or open_until <= now
            ):
                state = self._open(now, state)
            self._known = (now, state)
            return
        if probing:  # the probe made no call: the next batch may take it
            self._db.update_item(
                TableName=self._table,
                Key=BREAKER_KEY,
                UpdateExpression="REMOVE probe_until",
            )
            self._known = None

    def _open(self, now: int, state: dict[str, Any]) -> dict[str, Any]:
        openings = int(state.get("openings", 0)) + 1
        cooldown = min(self._max_cooldown, self._cooldown * 2 ** min(openings - 1, 16))
        try:
            self._db.update_item(
                TableName=self._table,
                Key=BREAKER_KEY,
                UpdateExpression=(
                    "SET open_until = :until, openings = :openings REMOVE probe_until"
                ),
                ConditionExpression=(
                    "failures >= :threshold AND (attribute_not_exists(open_until) "
                    "OR open_until <= :now)"
                ),
                ExpressionAttributeValues=to_attributes(
                    {
                        ":until": now + cooldown,
                        ":openings": openings,
                        ":threshold": self._threshold,
                        ":now": now,
                    }
                ),
            )
        except Exception as error:
            if not condition_failed(error):
                raise
            return state  # another worker opened it, or Everflow answered meanwhile
        return {**state, "open_until": now + cooldown, "openings": openings}
