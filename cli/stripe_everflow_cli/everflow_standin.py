"""A local stand-in for Everflow: the tracking domain's postback endpoints and the
Network API calls the bridge makes, on 127.0.0.1.

It records every request and answers as told. Control it over HTTP (for the local
stack and manual tries) or from Python (tests):

* ``GET  /__standin/requests`` — what it received (JSON list);
* ``DELETE /__standin/requests`` — forget it (the conversions recorded stay);
* ``POST /__standin/script`` — ``[{"status": 500}, {"status": 204, "times": 2},
  {"delay": 0.5}]``: the next requests get these answers in order (``times`` repeats
  one), then the default answer again;
* ``POST /__standin/default`` — ``{"status": 200, "delay": 0.2}``: the answer when
  nothing is scripted.

* ``POST /__standin/offer`` — ``{"payout": "10", "payout_percent": "0",
  "revenue": "0", "revenue_percent": "100", "payout_percent_of_revenue": "0"}``:
  the offer's terms for the conversions accepted from then on.

Default answer to a conversion postback: 200 with ``{"conversion_id": …,
"transaction_id": …}``, the shape Everflow's SDK endpoint answers with.

Like Everflow, it keeps each conversion it accepted: sale amount, payout and revenue
computed from the offer's terms when it is recorded (CPA: a flat payout; CPS: a
percentage of the sale amount; CPA+CPS: both; RevShare: a percentage of the revenue),
and its status. A reversal postback rejects it (by ``conversion_id``, else every
conversion with that ``order_id``). The Network API calls the bridge makes act on them:

* ``GET /v1/networks/reporting/events/{transaction_id}`` — the conversions of a click;
* ``GET /v1/networks/reporting/conversions/{id}`` — one conversion (404 if unknown);
* ``PATCH /v1/networks/reporting/conversions`` — approve or reject;
* ``PUT /v1/networks/reporting/conversions/{id}/saleamount`` — a new sale amount
  (payout and revenue are left as they are: Everflow does not document recomputing
  them, and its Control Center adjusts them apart, "Adjust Revenue & Payout");
* ``PUT /v1/networks/reporting/conversions/{id}/payoutrevenue`` — new absolute
  payout and revenue; refused with 400 unless the conversion is approved, as
  Everflow documents.

Scripted answers apply to postbacks, reversals and the Network API's writes (a
scripted failure changes nothing); the reads always answer from what was recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0
    body: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Answer:
        return cls(int(raw.get("status", 200)), float(raw.get("delay", 0.0)), raw.get("body"))


@dataclass(frozen=True)
class OfferTerms:
    """An offer's payout and revenue: flat amounts plus percentages of the sale amount
    (the partner's payout may also be a percentage of the revenue: RevShare)."""

    payout: Decimal = Decimal(10)
    payout_percent: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)
    revenue_percent: Decimal = Decimal(100)
    payout_percent_of_revenue: Decimal = Decimal(0)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OfferTerms:
        names = ("payout", "payout_percent", "revenue", "revenue_percent")
        values = {
            n: Decimal(str(raw[n])) for n in (*names, "payout_percent_of_revenue") if n in raw
        }
        return cls(**values)

    def amounts(self, sale_amount: Decimal) -> tuple[Decimal, Decimal]:
        """(payout, revenue) of a conversion of ``sale_amount``, to the cent."""
        cent = Decimal("0.01")
        revenue = self.revenue + sale_amount * self.revenue_percent / 100
        payout = (
            self.payout
            + sale_amount * self.payout_percent / 100
            + revenue * self.payout_percent_of_revenue / 100
        )
        return payout.quantize(cent, ROUND_HALF_UP), revenue.quantize(cent, ROUND_HALF_UP)


@dataclass
class StandInConversion:
    """A conversion the stand-in accepted, as Everflow would hold it."""

    conversion_id: str
    transaction_id: str | None
    order_id: str | None
    is_event: bool
    sale_amount: Decimal
    payout: Decimal
    revenue: Decimal
    status: str = "approved"

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversion_id": self.conversion_id,
            "transaction_id": self.transaction_id,
            "order_id": self.order_id,
            "status": self.status,
            "is_event": self.is_event,
            "sale_amount": float(self.sale_amount),
            "payout": float(self.payout),
            "revenue": float(self.revenue),
        }


_CONVERSION_PATH = re.compile(
    r"/v1/networks/reporting/conversions/([^/]+)(?:/(saleamount|payoutrevenue))?"
)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: str
    status: int
    received_at: float
    connection: str
    conversion_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "params": dict(self.query),
            "body": self.body,
            "status": self.status,
            "received_at": self.received_at,
            "connection": self.connection,
            "conversion_id": self.conversion_id,
        }


@dataclass
class EverflowStandIn:
    port: int = 0
    default: Answer = field(default_factory=Answer)
    received: list[ReceivedRequest] = field(default_factory=list)
    _script: deque[Answer] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    connections: set[str] = field(default_factory=set)
    offer: OfferTerms = field(default_factory=OfferTerms)
    recorded: dict[str, StandInConversion] = field(default_factory=dict)

    # ------------------------------------------------------------ control

    def script(self, answers: list[dict[str, Any]]) -> None:
        with self._lock:
            for raw in answers:
                for _ in range(int(raw.get("times", 1))):
                    self._script.append(Answer.from_dict(raw))

    def set_default(self, raw: dict[str, Any]) -> None:
        with self._lock:
            self.default = Answer.from_dict(raw)

    def set_offer(self, raw: dict[str, Any]) -> None:
        """The offer's terms for the conversions accepted from now on."""
        with self._lock:
            self.offer = OfferTerms.from_dict(raw)

    def conversion(self, conversion_id: str) -> StandInConversion | None:
        """The conversion as Everflow would hold it now (a copy)."""
        with self._lock:
            found = self.recorded.get(conversion_id)
            return None if found is None else StandInConversion(**found.__dict__)

    def requests(self, path_prefix: str = "/") -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.received if r.path.startswith(path_prefix)]

    def postbacks(self) -> list[ReceivedRequest]:
        """Conversion postbacks (``GET /?…``) received."""
        return [r for r in self.requests() if r.method == "GET" and r.path == "/"]

    def reversals(self) -> list[ReceivedRequest]:
        """Reversal postbacks (``GET /reversal?…``) received."""
        return [r for r in self.requests() if r.method == "GET" and r.path == "/reversal"]

    def api_calls(self) -> list[ReceivedRequest]:
        """Network API calls received (``/v1/networks/…``)."""
        return self.requests("/v1/networks/")

    def clear(self) -> None:
        """Forget the requests received (the conversions recorded stay, as in Everflow)."""
        with self._lock:
            self.received.clear()
            self.connections.clear()

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # ------------------------------------------------------------ serving

    def _network_api_read(self, method: str, path: str) -> tuple[int, str] | None:
        """The Network API reads the bridge makes, answered from what was recorded."""
        if method != "GET":
            return None
        prefix = "/v1/networks/reporting/events/"
        if path.startswith(prefix):
            transaction_id = unquote(path[len(prefix) :])
            with self._lock:
                events = [
                    c.as_dict()
                    for c in self.recorded.values()
                    if c.transaction_id == transaction_id
                ]
            return 200, json.dumps({"events": events})
        match = _CONVERSION_PATH.fullmatch(path)
        if match and not match.group(2):
            with self._lock:
                found = self.recorded.get(unquote(match.group(1)))
                document = None if found is None else found.as_dict()
            if document is None:
                return 404, json.dumps({"error": "conversion not found"})
            return 200, json.dumps(document)
        return None

    def _record(
        self, method: str, path: str, query: list[tuple[str, str]], body: str
    ) -> str | None:
        """What an accepted request changes in the recorded conversions: a new
        conversion, a reversal, a status, a sale amount, a payout and revenue. Returns
        an error text when Everflow would refuse the change."""
        params = dict(query)
        with self._lock:
            if method == "GET" and path == "/reversal":
                for c in self.recorded.values():
                    if params.get("conversion_id") == c.conversion_id or (
                        "conversion_id" not in params
                        and params.get("order_id")
                        and params.get("order_id") == c.order_id
                    ):
                        c.status = "rejected"
                return None
            try:
                document = json.loads(body) if body else {}
            except ValueError:
                return "body is not JSON"
            if method == "PATCH" and path == "/v1/networks/reporting/conversions":
                for conversion_id in document.get("conversion_ids") or []:
                    if conversion_id in self.recorded:
                        self.recorded[conversion_id].status = str(document["conversion_status"])
                return None
            match = _CONVERSION_PATH.fullmatch(path)
            if method != "PUT" or not match or not match.group(2):
                return None
            found = self.recorded.get(unquote(match.group(1)))
            if found is None:
                return "conversion not found"
            if match.group(2) == "saleamount":
                amount = _decimal(document.get("sale_amount"))
                if amount is None:
                    return "sale_amount must be a number >= 0"
                found.sale_amount = amount
                return None
            payout, revenue = _decimal(document.get("payout")), _decimal(document.get("revenue"))
            if payout is None or revenue is None:
                return "payout and revenue must be numbers >= 0"
            if found.status != "approved":
                return "payout and revenue can only be updated on approved conversions"
            found.payout, found.revenue = payout, revenue
            return None

    def _accept_conversion(self, query: list[tuple[str, str]], conversion_id: str) -> None:
        params = dict(query)
        sale_amount = _decimal(params.get("amount") or 0) or Decimal(0)
        with self._lock:
            payout, revenue = self.offer.amounts(sale_amount)
            self.recorded[conversion_id] = StandInConversion(
                conversion_id=conversion_id,
                transaction_id=params.get("transaction_id"),
                order_id=params.get("order_id"),
                is_event="event_id" in params or "adv_event_id" in params,
                sale_amount=sale_amount,
                payout=payout,
                revenue=revenue,
            )

    def _respond(
        self, method: str, path: str, query: list[tuple[str, str]], body: str, connection: str
    ) -> tuple[int, str]:
        api = self._network_api_read(method, path)
        if api is not None:
            status, payload = api
            with self._lock:
                self.received.append(
                    ReceivedRequest(method, path, query, body, status, time.time(), connection)
                )
            return status, payload
        answer = self._next_answer()
        if answer.delay:
            time.sleep(answer.delay)
        conversion_id = None
        status = answer.status
        api_write = path.startswith("/v1/networks/")
        if answer.body is not None:
            payload = answer.body
        elif status == 204:
            payload = ""
        elif 200 <= status < 300 and api_write:
            refused = self._record(method, path, query, body)
            status, payload = (
                (400, json.dumps({"error": refused})) if refused else (status, '{"result": true}')
            )
        elif 200 <= status < 300:
            conversion_id = uuid.uuid4().hex[:16]
            payload = json.dumps(
                {
                    "conversion_id": conversion_id,
                    "transaction_id": dict(query).get("transaction_id"),
                }
            )
        else:
            payload = json.dumps({"error": f"stand-in answered {status}"})
        if 200 <= status < 300 and not api_write:
            if path == "/" and conversion_id:
                self._accept_conversion(query, conversion_id)
            elif path == "/reversal":
                self._record(method, path, query, body)
        with self._lock:
            self.received.append(
                ReceivedRequest(
                    method, path, query, body, status, time.time(), connection, conversion_id
                )
            )
            self.connections.add(connection)
        return status, payload

    def start(self) -> EverflowStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Everflow's servers do

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, payload: str) -> None:
                data = payload.encode()
                self.send_response(status)
                if data:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                if split.path == "/__standin/requests":
                    if self.command == "DELETE":
                        standin.clear()
                        self._send(200, "[]")
                    else:
                        self._send(200, json.dumps([r.as_dict() for r in standin.requests()]))
                    return
                if split.path == "/__standin/script" and self.command == "POST":
                    standin.script(json.loads(body or "[]"))
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/default" and self.command == "POST":
                    standin.set_default(json.loads(body or "{}"))
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/offer" and self.command == "POST":
                    standin.set_offer(json.loads(body or "{}"))
                    self._send(200, "{}")
                    return
                peer = f"{self.client_address[0]}:{self.client_address[1]}"
                status, payload = standin._respond(
                    self.command,
                    split.path,
                    parse_qsl(split.query, keep_blank_values=True),
                    body,
                    peer,
                )
                self._send(status, payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="everflow-standin"
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
