"""A local stand-in for Everflow: the tracking domain's postback endpoints and the
Network API calls the bridge makes, on 127.0.0.1.

It records every request and answers as told. Control it over HTTP (for the local
stack and manual tries) or from Python (tests):

* ``GET  /__standin/requests`` — what it received (JSON list);
* ``DELETE /__standin/requests`` — forget it;
* ``POST /__standin/script`` — ``[{"status": 500}, {"status": 204, "times": 2},
  {"delay": 0.5}]``: the next requests get these answers in order (``times`` repeats
  one), then the default answer again;
* ``POST /__standin/default`` — ``{"status": 200, "delay": 0.2}``: the answer when
  nothing is scripted.

Default answer to a conversion postback: 200 with ``{"conversion_id": …,
"transaction_id": …}``, the shape Everflow's SDK endpoint answers with. The Network
API's ``GET /v1/networks/reporting/events/{transaction_id}`` lists the conversions
it accepted for that click.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
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

    # ------------------------------------------------------------ control

    def script(self, answers: list[dict[str, Any]]) -> None:
        with self._lock:
            for raw in answers:
                for _ in range(int(raw.get("times", 1))):
                    self._script.append(Answer.from_dict(raw))

    def set_default(self, raw: dict[str, Any]) -> None:
        with self._lock:
            self.default = Answer.from_dict(raw)

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
        with self._lock:
            self.received.clear()
            self.connections.clear()

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # ------------------------------------------------------------ serving

    def _network_api(self, path: str) -> tuple[int, str] | None:
        """The Network API reads the bridge makes, answered from what was recorded."""
        prefix = "/v1/networks/reporting/events/"
        if not path.startswith(prefix):
            return None
        transaction_id = unquote(path[len(prefix) :])
        with self._lock:
            accepted = [
                (dict(r.query), r.conversion_id)
                for r in self.received
                if r.path == "/" and r.conversion_id
            ]
        events = [
            {
                "conversion_id": conversion_id,
                "transaction_id": transaction_id,
                "order_id": params.get("order_id"),
                "status": "approved",
                "is_event": "event_id" in params or "adv_event_id" in params,
                "sale_amount": float(params.get("amount") or 0),
            }
            for params, conversion_id in accepted
            if params.get("transaction_id") == transaction_id
        ]
        return 200, json.dumps({"events": events})

    def _respond(
        self, method: str, path: str, query: list[tuple[str, str]], body: str, connection: str
    ) -> tuple[int, str]:
        api = self._network_api(path)
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
        if answer.body is not None:
            payload = answer.body
        elif answer.status == 204:
            payload = ""
        elif 200 <= answer.status < 300:
            conversion_id = uuid.uuid4().hex[:16]
            payload = json.dumps(
                {
                    "conversion_id": conversion_id,
                    "transaction_id": dict(query).get("transaction_id"),
                }
            )
        else:
            payload = json.dumps({"error": f"stand-in answered {answer.status}"})
        with self._lock:
            self.received.append(
                ReceivedRequest(
                    method, path, query, body, answer.status, time.time(), connection, conversion_id
                )
            )
            self.connections.add(connection)
        return answer.status, payload

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
