"""The postback client over real sockets on 127.0.0.1: the query as sent, keep-alive,
connections the server closed, timeouts, refused connections and TLS verification;
and the Network API adapter's budget."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from stripe_everflow.adapters.everflow.network_api import EverflowNetworkApi
from stripe_everflow.adapters.everflow.postbacks import EverflowClient
from stripe_everflow.domain.errors import EverflowApiError
from stripe_everflow_cli.everflow_standin import EverflowStandIn

PARAMS = [
    ("nid", "1"),
    ("transaction_id", "ef_tx_1"),
    ("amount", "49.00"),
    ("email", "jenny.rosen+shop@example.com"),
    ("adv1", "Ünïcode & spaces / = ?"),
    ("verification_token", "a+b/c=d&e"),
]


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


def test_the_query_is_sent_as_urlencode_writes_it(everflow: EverflowStandIn) -> None:
    url, result = EverflowClient().get(everflow.url, PARAMS)

    assert url == f"{everflow.url}/?{urlencode(PARAMS)}"
    [received] = everflow.postbacks()
    assert received.query == PARAMS
    assert (result.outcome, result.status) == ("posted", 200)
    assert result.conversion_id == received.conversion_id


def test_a_reversal_goes_to_its_path(everflow: EverflowStandIn) -> None:
    url, result = EverflowClient().get(everflow.url + "/", [("nid", "1")], path="/reversal")

    assert url == f"{everflow.url}/reversal?nid=1"
    assert len(everflow.reversals()) == 1 and result.outcome == "posted"


def test_postbacks_share_one_keep_alive_connection(everflow: EverflowStandIn) -> None:
    client = EverflowClient()
    for n in range(5):
        client.get(everflow.url, [("transaction_id", f"ef_tx_{n}")])

    assert len(everflow.postbacks()) == 5
    assert len(everflow.connections) == 1


def test_after_a_read_timeout_the_late_answer_is_never_taken_for_the_next(
    everflow: EverflowStandIn,
) -> None:
    # Given Everflow answers the first postback too late
    everflow.script([{"status": 200, "delay": 1.0}])
    client = EverflowClient(read_timeout=0.3)
    _, late = client.get(everflow.url, [("transaction_id", "ef_tx_late")])

    # When the next postback is sent
    _, answer = client.get(everflow.url, [("transaction_id", "ef_tx_next")])

    # Then the first is retryable, maybe sent; the next gets its own answer
    assert (late.outcome, late.error) == ("retryable", "timeout: ReadTimeout")
    assert answer.outcome == "posted" and "ef_tx_next" in answer.body


def test_a_refused_connection_is_retryable() -> None:
    url, result = EverflowClient().get("http://127.0.0.1:9", [("nid", "1")])

    assert url == "http://127.0.0.1:9/?nid=1"
    assert (result.outcome, result.status, result.error) == (
        "retryable",
        None,
        "not sent: ConnectionRefusedError",
    )


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        EverflowClient().get("ftp://example.com", [("nid", "1")])


class ClosingServer:
    """An HTTP/1.1 server that closes idle connections after 50 ms, or answers with
    ``Connection: close`` when told; it records the connection of each request."""

    def __init__(self, certificate: tuple[Path, Path] | None = None) -> None:
        self.requests: list[tuple[str, list[tuple[str, str]]]] = []
        self.closed = threading.Event()
        self.close_after_answer = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 0.05  # idle keep-alive connections are closed by the server

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                peer = f"{self.client_address[0]}:{self.client_address[1]}"
                server.requests.append((peer, parse_qsl(urlsplit(self.path).query)))
                payload = b'{"conversion_id": "c1"}'
                self.send_response(200)
                self.send_header("content-length", str(len(payload)))
                if server.close_after_answer:
                    self.send_header("connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            def shutdown_request(self, request: Any) -> None:
                super().shutdown_request(request)  # the connection's socket is closed
                server.closed.set()

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def connections(self) -> set[str]:
        return {peer for peer, _ in self.requests}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[ClosingServer]:
    running = ClosingServer()
    yield running
    running.stop()


def test_an_idle_connection_the_server_closed_is_replaced_before_sending(
    server: ClosingServer,
) -> None:
    # Given a postback sent, and the server closing its idle connection afterwards
    client = EverflowClient()
    client.get(server.url, [("transaction_id", "ef_tx_1")])
    assert server.closed.wait(timeout=10)

    # When the next postback is sent
    _, result = client.get(server.url, [("transaction_id", "ef_tx_2")])

    # Then it goes out once, on a new connection, and is answered
    assert result.outcome == "posted"
    assert [query for _, query in server.requests] == [
        [("transaction_id", "ef_tx_1")],
        [("transaction_id", "ef_tx_2")],
    ]
    assert len(server.connections()) == 2


def test_an_answer_that_closes_its_connection_is_not_kept(server: ClosingServer) -> None:
    server.close_after_answer = True
    client = EverflowClient()

    results = [client.get(server.url, [("n", str(n))])[1] for n in range(3)]

    assert [r.outcome for r in results] == ["posted"] * 3
    assert len(server.connections()) == 3


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no authority signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_refuses_a_certificate_no_trusted_authority_signed(
    self_signed: tuple[Path, Path],
) -> None:
    # Given a tracking domain presenting a self-signed certificate
    server = ClosingServer(certificate=self_signed)
    try:
        # When a postback is sent, then nothing reaches it and the job is retried
        _, result = EverflowClient().get(server.url, [("transaction_id", "ef_tx_1")])
    finally:
        server.stop()
    assert (result.outcome, result.error) == ("retryable", "not sent: SSLCertVerificationError")
    assert server.requests == []


# ------------------------------------------------------------------ the HTTP/1.1 exchange


class RawServer:
    """Answers each request with the next scripted bytes, verbatim; ``close`` after an
    answer ends its connection. Records each request and the connection it came on."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[int, bytes]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        number = 0
        while self.answers:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            with conn:
                buffer = b""
                while self.answers:
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buffer += data
                    if b"\r\n\r\n" not in buffer:
                        break
                    request, _, buffer = buffer.partition(b"\r\n\r\n")
                    self.requests.append((number, request + b"\r\n\r\n"))
                    answer, close = self.answers.pop(0)
                    try:
                        conn.sendall(answer)
                    except OSError:  # the client stopped reading: it dropped the connection
                        break
                    if close:
                        break

    def connections(self) -> list[int]:
        return [number for number, _ in self.requests]

    def stop(self) -> None:
        self._listener.close()


def exchange(answers: list[tuple[bytes, bool]], calls: int) -> tuple[list[Any], RawServer]:
    server = RawServer(answers)
    client = EverflowClient(read_timeout=5)
    try:
        results = [client.get(server.url, [("n", str(n))])[1] for n in range(calls)]
    finally:
        server.stop()
    return results, server


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n"
OK_BODY = b'{"conversion_id":"c1"}\n'


def test_the_request_is_a_plain_http11_get() -> None:
    _, server = exchange([(OK + OK_BODY, False)], 1)

    port = server.url.rsplit(":", 1)[1]
    assert server.requests == [
        (
            1,
            b"GET /?n=0 HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\n"
            b"User-Agent: stripe-everflow-bridge/0.1\r\nAccept: */*\r\n"
            b"Accept-Encoding: identity\r\n\r\n",
        )
    ]


def test_a_chunked_answer_is_read_whole_and_the_connection_kept() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'7;ext=1\r\n{"conve\r\n10\r\nrsion_id":"c1"}\n\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    results, server = exchange([(chunked, False), (OK + OK_BODY, False)], 2)

    assert [(r.outcome, r.body, r.conversion_id) for r in results] == [
        ("posted", '{"conversion_id":"c1"}\n', "c1"),
        ("posted", '{"conversion_id":"c1"}\n', "c1"),
    ]
    assert server.connections() == [1, 1]


def test_interim_answers_are_skipped() -> None:
    early_hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    results, _ = exchange([(early_hints + OK + OK_BODY, False)], 1)

    assert (results[0].status, results[0].conversion_id) == (200, "c1")


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.0 200 OK\r\nContent-Length: 23\r\n\r\n" + OK_BODY,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 23\r\n\r\n" + OK_BODY,
        b"HTTP/1.1 200 OK\r\n\r\n" + OK_BODY,  # no length: the body ends with the connection
    ],
    ids=["http/1.0", "connection-close", "until-close"],
)
def test_an_answer_that_ends_its_connection_is_read_and_not_kept(answer: bytes) -> None:
    results, server = exchange([(answer, True), (OK + OK_BODY, False)], 2)

    assert [(r.outcome, r.conversion_id) for r in results] == [("posted", "c1")] * 2
    assert server.connections() == [1, 2]


def test_a_bodyless_204_keeps_its_connection() -> None:
    results, server = exchange(
        [(b"HTTP/1.1 204 No Content\r\n\r\n", False), (OK + OK_BODY, False)], 2
    )

    assert [r.outcome for r in results] == ["rejected", "posted"]
    assert server.connections() == [1, 1]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", "no answer: RemoteDisconnected"),
        (b"SMTP ready\r\n\r\n", "no answer: BadStatusLine"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "no answer: BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" + OK_BODY, "no answer: IncompleteRead"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "no answer: HTTPException"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "no answer: IncompleteRead",
        ),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", "no answer: LineTooLong"),
    ],
    ids=["silence", "not-http", "bad-status", "short-body", "bad-length", "bad-chunk", "long-line"],
)
def test_a_broken_answer_is_retryable_and_its_connection_dropped(answer: bytes, error: str) -> None:
    # the request left: Everflow may have recorded it ("no answer", not "not sent")
    results, server = exchange([(answer, True), (OK + OK_BODY, False)], 2)

    assert (results[0].outcome, results[0].error) == ("retryable", error)
    assert results[1].outcome == "posted" and server.connections() == [1, 2]


def test_a_base_url_with_a_query_is_refused() -> None:
    with pytest.raises(ValueError, match="query or odd path"):
        EverflowClient().get("https://track.example/?x=1", [("nid", "1")])


def test_a_body_beyond_64_kib_is_cut_and_its_connection_dropped() -> None:
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000

    results, server = exchange([(huge, False), (OK + OK_BODY, False)], 2)

    assert results[0].outcome == "posted" and results[1].conversion_id == "c1"
    assert server.connections() == [1, 2]


# ------------------------------------------------------------------ the Network API


class CountingBudget:
    """A Network API budget that counts the slots taken, and when."""

    def __init__(self, everflow: EverflowStandIn) -> None:
        self.everflow = everflow
        self.taken: list[int] = []  # Network API calls the stand-in had seen at each slot

    def acquire(self) -> None:
        self.taken.append(len(self.everflow.api_calls()))


def test_every_network_api_call_takes_a_slot_of_the_budget_first(
    everflow: EverflowStandIn,
) -> None:
    # Given a conversion in Everflow, the Network API adapter and the budget it was built with
    _, posted = EverflowClient().get(everflow.url, [("transaction_id", "ef_tx_1"), ("amount", "9")])
    conversion_id = str(posted.conversion_id)
    budget = CountingBudget(everflow)
    api = EverflowNetworkApi(everflow.url, budget)

    # When each of its calls is made
    api.events_of_transaction("ef_api_key", "ef_tx_1")
    api.set_status("ef_api_key", [conversion_id], "approved")
    api.set_sale_amount("ef_api_key", conversion_id, "10.00", True)

    # Then each took its slot before it reached Everflow
    assert len(everflow.api_calls()) == 3
    assert budget.taken == [0, 1, 2]


def test_a_budget_that_stays_exhausted_fails_the_call_before_it_is_made(
    everflow: EverflowStandIn,
) -> None:
    class Exhausted:
        def acquire(self) -> None:
            raise EverflowApiError("the Network API rate limit stayed exhausted")

    with pytest.raises(EverflowApiError, match="rate limit"):
        EverflowNetworkApi(everflow.url, Exhausted()).events_of_transaction("k", "ef_tx_1")
    assert everflow.api_calls() == []
