"""An HTTP API (payload format 2.0) in front of the real handlers, on 127.0.0.1.

Each request becomes the event API Gateway would send: lowercased headers, the
matched route key and path parameters, the body as text or base64
(``isBase64Encoded``) exactly as received. A handler error becomes API Gateway's
500, a route that does not exist its 404.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stripe_everflow_cli.runtime import FunctionWorker, InvocationError

# API Gateway's own payload limit for HTTP APIs.
GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
# How long the gateway waits on a client: for each read (an idle kept-alive
# connection, a header line) and for a whole body. A client that stops sending is
# answered 408 (or, between requests, disconnected), so it cannot hold a thread.
READ_TIMEOUT_SECONDS = 30.0
# Content-Length is digits only (RFC 9110 §8.6); more than 19 cannot be a real length.
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")


class _RequestRefusedError(Exception):
    """The request cannot be read; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ClientGoneError(Exception):
    """The client closed the connection before sending its body: nobody to answer."""


_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    worker: FunctionWorker

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


def build_http_api_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route_key: str,
    path_parameters: dict[str, str],
    source_ip: str,
) -> dict[str, Any]:
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    content_type = merged.get("content-type", "")
    event_body: str | None = None
    is_base64 = False
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and content_type.startswith(_TEXT_TYPES):
            event_body = text
        else:
            event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if raw_query:
        event["queryStringParameters"] = dict(parse_qsl(raw_query, keep_blank_values=True))
    if path_parameters:
        event["pathParameters"] = path_parameters
    if event_body is not None:
        event["body"] = event_body
    return event


class LocalHttpApi:
    """Serves the routes on 127.0.0.1; ``extra`` handles local-only paths (GET /health)."""

    def __init__(
        self,
        routes: list[Route],
        port: int,
        extra: dict[tuple[str, str], Callable[[], tuple[int, dict[str, Any]]]],
        *,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The socket's timeout for every read and write (StreamRequestHandler.setup);
            # a timed-out read between requests closes the connection (http.server).
            timeout = read_timeout

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                self._answer(
                    status, json.dumps(payload).encode(), {"content-type": "application/json"}
                )

            def _content_length(self) -> int:
                """The announced body length; raises _RequestRefusedError for one that
                cannot be read (the body's end would be unknown)."""
                if self.headers.get("transfer-encoding") is not None:
                    raise _RequestRefusedError(411, "Length Required")
                values = self.headers.get_all("content-length") or []
                if not values:
                    return 0
                # Repeated headers (or a list in one) must all give one valid number.
                lengths = {v.strip() for value in values for v in value.split(",")}
                if len(lengths) != 1 or not _CONTENT_LENGTH.fullmatch(next(iter(lengths))):
                    raise _RequestRefusedError(400, "Bad Request")
                length = int(next(iter(lengths)))
                if length > GATEWAY_MAX_BODY_BYTES:
                    raise _RequestRefusedError(413, "Request Entity Too Large")
                return length

            def _read_body(self, length: int) -> bytes:
                """Exactly ``length`` bytes, all within the read timeout; raises
                _RequestRefusedError (408) or _ClientGoneError."""
                deadline = time.monotonic() + read_timeout
                chunks, remaining = [], length
                while remaining:
                    if time.monotonic() > deadline:
                        raise _RequestRefusedError(408, "Request Timeout")
                    try:
                        chunk = self.rfile.read1(min(remaining, 65536))
                    except TimeoutError:
                        raise _RequestRefusedError(408, "Request Timeout") from None
                    if not chunk:
                        raise _ClientGoneError
                    chunks.append(chunk)
                    remaining -= len(chunk)
                return b"".join(chunks)

            def _dispatch(self) -> None:
                split = urlsplit(self.path)
                try:
                    body = self._read_body(self._content_length())
                except _RequestRefusedError as refused:
                    # What is left of the body cannot be told from a next request.
                    self.close_connection = True
                    self._json(refused.status, {"message": refused.message})
                    return
                except _ClientGoneError:
                    self.close_connection = True
                    return
                local = api.extra.get((self.command, split.path))
                if local is not None:
                    status, payload = local()
                    self._json(status, payload)
                    return
                for route in api.routes:
                    parameters = route.match(self.command, split.path)
                    if parameters is None:
                        continue
                    event = build_http_api_event(
                        method=self.command,
                        raw_path=split.path,
                        raw_query=split.query,
                        headers=self.headers.items(),
                        body=body,
                        route_key=route.route_key,
                        path_parameters=parameters,
                        source_ip=self.client_address[0],
                    )
                    try:
                        result = route.worker.invoke(event)
                    except InvocationError:
                        self._json(500, {"message": "Internal Server Error"})
                        return
                    self._answer_lambda(result)
                    return
                self._json(404, {"message": "Not Found"})

            def _answer_lambda(self, result: Any) -> None:
                if not isinstance(result, dict) or "statusCode" not in result:
                    # HTTP API 2.0 treats a bare value as a 200 JSON body.
                    self._json(200, result)
                    return
                raw = result.get("body") or ""
                body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
                self._answer(int(result["statusCode"]), body, result.get("headers") or {})

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch  # noqa: N815

        self.routes = routes
        self.extra = extra
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])
