"""The local HTTP API in front of the handlers, over raw sockets on 127.0.0.1: a
request whose length cannot be read is refused with 400 and a client that stops
sending is let go, so no request holds one of its threads forever."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow_cli.gateway import LocalHttpApi, Route

READ_TIMEOUT = 0.5  # the gateway's, for the test; the client waits far longer


class RecordingWorker:
    """Stands in for a function instance: records what it was invoked with."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": '{"status": "accepted"}'}


@pytest.fixture
def gateway() -> Iterator[tuple[LocalHttpApi, RecordingWorker]]:
    worker = RecordingWorker()
    api = LocalHttpApi(
        [Route("POST", "/stripe/webhook", worker)],  # type: ignore[arg-type]
        0,
        {},
        read_timeout=READ_TIMEOUT,
    )
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    yield api, worker
    api.server.shutdown()
    api.server.server_close()


def _exchange(port: int, raw: bytes, *, then_wait: bool = True) -> bytes:
    """Send ``raw`` and read until the server closes (at most 30 s, far past its
    timeout: a server that never lets go fails the test instead of hanging it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(raw)
        answer = b""
        while then_wait:
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                pytest.fail(f"the gateway held the connection; answered so far: {answer!r}")
            if not chunk:
                break
            answer += chunk
        return answer


def _request(headers: str, body: bytes = b"") -> bytes:
    return (
        "POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n" + headers + "\r\n"
    ).encode() + body


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "content_length",
    [
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 1.5\r\n",
        "Content-Length: +2\r\n",
        "Content-Length: 0x10\r\n",
        "Content-Length: \r\n",
        "Content-Length: 99999999999999999999999999\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Content-Length: 2, 3\r\n",
    ],
)
def test_bad_content_length_is_answered_400_and_invokes_nothing(
    gateway: tuple[LocalHttpApi, RecordingWorker], content_length: str
) -> None:
    api, worker = gateway
    answer = _exchange(api.port, _request(content_length + "Connection: close\r\n", b"{}"))
    assert _status(answer) == 400
    assert worker.events == []


def test_chunked_body_is_refused_with_411_and_invokes_nothing(
    gateway: tuple[LocalHttpApi, RecordingWorker],
) -> None:
    api, worker = gateway
    answer = _exchange(
        api.port, _request("Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n")
    )
    assert _status(answer) == 411
    assert worker.events == []


def test_client_that_never_sends_its_body_is_answered_408_and_let_go(
    gateway: tuple[LocalHttpApi, RecordingWorker],
) -> None:
    api, worker = gateway
    # Given a request announcing 100 bytes of which it sends 10, then nothing
    answer = _exchange(api.port, _request("Content-Length: 100\r\n", b"0123456789"))
    # Then the gateway answers 408 and closes, and the function never ran
    assert _status(answer) == 408
    assert worker.events == []


def test_idle_connection_is_closed(gateway: tuple[LocalHttpApi, RecordingWorker]) -> None:
    api, _ = gateway
    # A connection that never sends a request is closed (no answer to give).
    assert _exchange(api.port, b"") == b""
    # and one that stops mid-headers too
    assert _exchange(api.port, b"POST /stripe/webhook HTTP/1.1\r\nHost: x\r\n") == b""


def test_good_request_still_reaches_the_function_on_a_kept_alive_connection(
    gateway: tuple[LocalHttpApi, RecordingWorker],
) -> None:
    api, worker = gateway
    one = _request("Content-Length: 2\r\n", b"{}")
    answer = _exchange(api.port, one + one)
    assert answer.count(b"HTTP/1.1 200") == 2
    assert [e["body"] for e in worker.events] == ["{}", "{}"]
