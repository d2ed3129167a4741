"""Everflow's Network API (``https://api.eflow.team/v1/networks``, key in
``X-Eflow-API-Key``), for what a postback cannot do: finding a conversion the
bridge may already have sent, and (for refunds) changing one.

Every call first takes a slot of the Network API budget shared by every worker
(``budget``, a ``RateLimiter``: Everflow answers 429 beyond its rate), here where the
call is made, so no caller can forget it.

The click source reads two reports (``conversions_by_email``, ``conversion_page``;
``reconcile`` pages the second, events included, for each row's ``order_id`` and
``sale_amount``):
requests in UTC (``timezone_id`` 67, dates as ``YYYY-mm-DD hh:mm:ss``), rows read
into ``ReportedConversion`` (developers.everflow.io/api-reference/
post-networksreportingconversionsbyemail, developers.everflow.io/api-reference/
post-networksreportingconversions, developers.everflow.io/docs/network/reporting/
raw_conversions, developers.everflow.io/user-guide/timezones).

Timeouts: 3.05 s connect, 10 s read. Errors raise EverflowApiError (no answer, 429
and 5xx as its EverflowUnavailableError, which the circuit breaker counts; a budget
that stayed exhausted is the plain one); callers decide whether that fails the record
(retried) or is only logged.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from stripe_everflow.domain.errors import EverflowApiError, EverflowUnavailableError
from stripe_everflow.domain.postback import RecordedConversion
from stripe_everflow.domain.undo import EverflowAmounts
from stripe_everflow.ports.everflow import RateLimiter, ReportedConversion

CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10.0
UTC_TIMEZONE_ID = 67  # Everflow's id of UTC (metadata API, timezones)


def report_time(unix_seconds: int) -> str:
    """A report's ``from``/``to``: ``YYYY-mm-DD hh:mm:ss`` in UTC."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    return str(value) if isinstance(value, str | int) else None


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = int(float(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def read_reported_conversion(row: Any) -> ReportedConversion | None:
    """One report row, or None when it has no conversion id or conversion time."""
    if not isinstance(row, Mapping):
        return None
    conversion_id, converted_at = (
        _text(row.get("conversion_id")),
        _seconds(row.get("conversion_unix_timestamp")),
    )
    if conversion_id is None or converted_at is None:
        return None
    relationship = row.get("relationship")
    related = relationship if isinstance(relationship, Mapping) else {}

    def related_id(part: str, name: str) -> str | None:
        found = related.get(part)
        value = found.get(name) if isinstance(found, Mapping) else None
        return _text(value) if _text(value) not in (None, "0") else None

    email = row.get("email")
    return ReportedConversion(
        conversion_id=conversion_id,
        transaction_id=_text(row.get("transaction_id")),
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        is_event=row.get("is_event") is True,
        converted_at=converted_at,
        clicked_at=_seconds(row.get("click_unix_timestamp")),
        offer_id=related_id("offer", "network_offer_id"),
        affiliate_id=related_id("affiliate", "network_affiliate_id"),
        advertiser_id=related_id("advertiser", "network_advertiser_id"),
        status=_text(row.get("status")),
        order_id=_text(row.get("order_id")),
        sale_amount=_amount(row.get("sale_amount")),
    )


def _rows(document: Any, what: str) -> list[ReportedConversion]:
    rows = document.get("conversions") if isinstance(document, Mapping) else None
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise EverflowApiError(f"{what}: conversions is not a list")
    return [found for row in rows if (found := read_reported_conversion(row)) is not None]


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

    def _call(self, method: str, path: str, api_key: str, body: Any = None, query: str = "") -> Any:
        import requests

        if self._budget is not None:
            self._budget.acquire()
        try:
            answer = self._http().request(
                method,
                self._base + path + query,
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

    def conversions_by_email(
        self, api_key: str, email: str, since: int, until: int
    ) -> list[ReportedConversion]:
        """POST reporting/conversions/email ``{"email", "from", "to", "timezone_id"}``
        → ``{"conversions": [...]}``: the email's conversions and events."""
        body = {
            "email": email,
            "from": report_time(since),
            "to": report_time(until),
            "timezone_id": UTC_TIMEZONE_ID,
        }
        path = "/reporting/conversions/email"
        return _rows(self._call("POST", path, api_key, body), f"POST {path}")

    def conversion_page(
        self,
        api_key: str,
        since: int,
        until: int,
        *,
        page: int,
        page_size: int,
        offer_id: str | None = None,
        advertiser_id: str | None = None,
        events: bool = False,
    ) -> tuple[list[ReportedConversion], int]:
        """POST reporting/conversions?page=&page_size= with ``show_conversions`` on,
        ``show_events`` as ``events`` (default off), filtered to the offer (else the
        advertiser): one page and the ``paging.total_count``."""
        filters = []
        if offer_id:
            filters.append({"resource_type": "offer", "filter_id_value": offer_id})
        elif advertiser_id:
            filters.append({"resource_type": "advertiser", "filter_id_value": advertiser_id})
        body = {
            "from": report_time(since),
            "to": report_time(until),
            "timezone_id": UTC_TIMEZONE_ID,
            "show_conversions": True,
            "show_events": bool(events),
            "query": {"filters": filters},
        }
        path = "/reporting/conversions"
        document = self._call(
            "POST", path, api_key, body, query=f"?page={int(page)}&page_size={int(page_size)}"
        )
        rows = _rows(document, f"POST {path}")
        paging = document.get("paging") if isinstance(document, Mapping) else None
        total = _seconds(paging.get("total_count")) if isinstance(paging, Mapping) else None
        return rows, total or 0
