"""Faults in front of the Everflow stand-in, for the poster's tests: a Network API
that fails as told, and a tracking domain that hangs up once it has the request."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class FlakyNetworkApi:
    """A Network API in front of the stand-in's: ``fail(503, 429, "slow")`` answers
    the next calls with those statuses (``"slow"``: the real answer, a second late),
    every other call is forwarded; while ``down`` every call is answered 503.
    ``calls`` lists each call as it came: (method, path, the failure told or None)."""

    def __init__(self, upstream: str) -> None:
        self.calls: list[tuple[str, str, int | str | None]] = []
        self._failures: deque[int | str] = deque()
        self.down = False
        self._lock = threading.Lock()
        parts = urlsplit(upstream)
        target = (parts.hostname or "127.0.0.1", parts.port or 80)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with api._lock:
                    failure = api._failures.popleft() if api._failures else None
                    if failure is None and api.down:
                        failure = 503
                    api.calls.append((self.command, self.path, failure))
                if failure is not None and failure != "slow":
                    status, payload = int(failure), json.dumps({"error": "flaky"}).encode()
                else:
                    if failure == "slow":
                        time.sleep(1.0)
                    status, payload = api._forward(target, self.command, self.path, body)
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the caller gave up waiting
                    self.close_connection = True

            do_GET = do_PUT = do_PATCH = do_POST = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def fail(self, *failures: int | str) -> None:
        with self._lock:
            self._failures.extend(failures)

    @staticmethod
    def _forward(target: tuple[str, int], method: str, path: str, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(*target, timeout=10)
        try:
            headers = {"content-type": "application/json"} if body else {}
            connection.request(method, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HangUp:
    """A tracking domain that reads each request and hangs up without answering."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1

    def stop(self) -> None:
        self._listener.close()
