"""Everflow's Network API (``https://api.eflow.team/v1/networks``, key in
``X-Eflow-API-Key``), for what a postback cannot do: finding a conversion the
bridge may already have sent, and (for refunds) changing one.

Every call first takes a slot of the Network API budget shared by every worker
(``budget``, a ``RateLimiter``: Everflow answers 429 beyond its rate), here where the
call is made, so no caller can forget it.

Timeouts: 3.05 s connect, 10 s read. Errors raise EverflowApiError (no answer, 429
and 5xx as its EverflowUnavailableError, which the circuit breaker counts; a budget
that stayed exhausted is the plain one); callers decide whether that fails the record
(retried) or is only logged.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from stripe_everflow.domain.errors import EverflowApiError, EverflowUnavailableError
from stripe_everflow.domain.postback import RecordedConversion
from stripe_everflow.domain.undo import EverflowAmounts
from stripe_everflow.ports.everflow import RateLimiter

CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10.0


class EverflowNetworkApi:
    def __init__(
        self,
        base_url: str,
        budget: RateLimiter | None,
        session: Any | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self._base = base_url.rstrip("/") + "/v1/networks"
        self._session = session
        self._lock = threading.Lock()
        self._timeouts = (connect_timeout, read_timeout)
        self._budget = budget

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                import requests

                self._session = requests.Session()
            return self._session

    def _call(self, method: str, path: str, api_key: str, body: Any = None) -> Any:
        import requests

        if self._budget is not None:
            self._budget.acquire()
        try:
            answer = self._http().request(
                method,
                self._base + path,
                json=body,
                headers={"X-Eflow-API-Key": api_key, "Accept": "application/json"},
                timeout=self._timeouts,
            )
        except requests.RequestException as error:
            raise EverflowUnavailableError(f"{method} {path}: {type(error).__name__}") from error
        if answer.status_code == 429 or answer.status_code >= 500:
            raise EverflowUnavailableError(f"{method} {path}: HTTP {answer.status_code}")
        if answer.status_code >= 300:
            raise EverflowApiError(f"{method} {path}: HTTP {answer.status_code}")
        try:
            return answer.json()
        except ValueError:
            raise EverflowApiError(f"{method} {path}: answer is not JSON") from None

    def events_of_transaction(self, api_key: str, transaction_id: str) -> list[RecordedConversion]:
        """Post-conversion events Everflow recorded on a click (GET reporting/events/{id})."""
        document = self._call("GET", f"/reporting/events/{quote(transaction_id, safe='')}", api_key)
        events = document.get("events") if isinstance(document, Mapping) else None
        found = []
        for event in events or []:
            if isinstance(event, Mapping) and event.get("conversion_id"):
                found.append(
                    RecordedConversion(
                        conversion_id=str(event["conversion_id"]),
                        order_id=str(event["order_id"]) if event.get("order_id") else None,
                        status=str(event["status"]) if event.get("status") else None,
                        is_event=bool(event.get("is_event", True)),
                    )
                )
        return found

    def set_sale_amount(
        self, api_key: str, conversion_id: str, amount: str, is_event: bool
    ) -> None:
        """PUT reporting/conversions/{id}/saleamount: the conversion's new absolute amount."""
        self._call(
            "PUT",
            f"/reporting/conversions/{quote(conversion_id, safe='')}/saleamount",
            api_key,
            {"sale_amount": float(amount), "is_event": is_event},
        )

    def set_status(self, api_key: str, conversion_ids: list[str], status: str) -> None:
        """PATCH reporting/conversions: approve or reject conversions (asynchronous at
        Everflow: it may report success and still fail; the ledger records the request)."""
        answer = self._call(
            "PATCH",
            "/reporting/conversions",
            api_key,
            {"conversion_ids": conversion_ids, "conversion_status": status},
        )
        if isinstance(answer, Mapping) and answer.get("result") is False:
            raise EverflowApiError("PATCH /reporting/conversions: result false")

    def conversion_amounts(self, api_key: str, conversion_id: str) -> EverflowAmounts:
        """GET reporting/conversions/{id}: the conversion's payout and revenue (and its
        sale amount and status). Raises EverflowApiError, also when the answer has no
        readable payout or revenue."""
        path = f"/reporting/conversions/{quote(conversion_id, safe='')}"
        document = self._call("GET", path, api_key)
        if not isinstance(document, Mapping):
            raise EverflowApiError(f"GET {path}: answer is not an object")

        def amount(name: str) -> Decimal | None:
            value = document.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return None
            try:
                number = Decimal(str(value))
            except ArithmeticError:
                return None
            return number if number.is_finite() and number >= 0 else None

        payout, revenue = amount("payout"), amount("revenue")
        if payout is None or revenue is None:
            raise EverflowApiError(f"GET {path}: no payout or revenue in the answer")
        status = document.get("status")
        return EverflowAmounts(
            payout, revenue, amount("sale_amount"), status if isinstance(status, str) else None
        )

    def set_payout_revenue(
        self, api_key: str, conversion_id: str, payout: str, revenue: str, is_event: bool
    ) -> None:
        """PUT reporting/conversions/{id}/payoutrevenue: the conversion's new absolute
        payout and revenue (Everflow takes them on approved conversions only).
        Raises EverflowApiError."""
        path = f"/reporting/conversions/{quote(conversion_id, safe='')}/payoutrevenue"
        answer = self._call(
            "PUT",
            path,
            api_key,
            {"payout": float(payout), "revenue": float(revenue), "is_event": is_event},
        )
        if isinstance(answer, Mapping) and answer.get("result") is False:
            raise EverflowApiError(f"PUT {path}: result false")
