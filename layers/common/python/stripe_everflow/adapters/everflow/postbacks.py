"""Sending postbacks to the tracking domain over keep-alive connections.

A postback is one GET with a query: no body, no redirects followed, no cookies, no
auth — and the poster sends one per conversion, so its CPU counts. ``requests``
spent about 1.4 ms of CPU on each (re-reading the environment for proxies, merging
settings, building request and response objects), ``http.client`` still 0.3 ms
(mostly parsing headers through the email package); ``http11`` does the one
exchange in half of that. ``requests`` stays for the Network API's few calls.

Environment proxy variables are not read (Lambda sets none; a function in a VPC
reaches Everflow through a NAT gateway). TLS verifies the tracking domain's
certificate and name against the CA bundle ``requests`` uses (certifi).
"""

from __future__ import annotations

import http.client
import re
import select
import ssl
import threading
from collections.abc import Sequence
from urllib.parse import quote_plus, urlsplit

from stripe_everflow.adapters.everflow.http11 import Connection
from stripe_everflow.domain.postback import PostbackResult, interpret_answer

CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10.0
USER_AGENT = "stripe-everflow-bridge/0.1"
# The error of a failure before the request left (see PostbackClient in ports.everflow).
NOT_SENT = "not sent: "

Origin = tuple[str, str, int]  # scheme, host, port
# What quote_plus leaves as it is: most postback values (ids, amounts) are only this.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
# A request target may hold no space, control or non-ASCII character.
_TARGET = re.compile(r"[!-~]*")


class EverflowClient:
    """GETs postbacks, keeping up to ``pool_size`` idle connections per origin.

    Connect timeout 3.05 s (TLS handshake included), read timeout 10 s (per read); no
    retries here — a retryable answer fails the SQS record, which comes back later
    (the poster's growing delays). An idle connection the server has closed meanwhile is
    noticed before it is used (as urllib3 does) and replaced, so nothing is sent on
    it. Thread-safe: a connection serves one call at a time.
    """

    def __init__(
        self,
        pool_size: int = 10,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[Connection]] = {}
        self._bases: dict[str, tuple[Origin, str, bytes]] = {}
        self._tls: ssl.SSLContext | None = None

    def get(
        self, base_url: str, params: Sequence[tuple[str, str]], path: str = "/"
    ) -> tuple[str, PostbackResult]:
        """Send one postback (``path`` "/reversal" for a reversal); returns the URL sent
        and what the answer means. Network failures come back as a ``retryable``
        result, never raised, and its ``error`` says whether Everflow may have the
        request: "not sent: …" when it never left (connection refused or timed out,
        TLS refused, the send failed), "timeout: ReadTimeout" or "no answer: …" once it
        was out (no answer in time, the server hung up, a broken status line or body).
        A base URL that is not http(s) raises ValueError."""
        origin, prefix, headers = self._base(base_url)
        query = _query(params)
        url = base_url.rstrip("/") + path + "?" + query
        request = b"GET %s%s?%s HTTP/1.1\r\n%s" % (
            prefix.encode(),
            path.encode(),
            query.encode(),
            headers,
        )
        try:
            connection = self._connection(origin)
        except TimeoutError:
            return url, _failed(f"{NOT_SENT}ConnectTimeout")
        except OSError as error:
            return url, _failed(f"{NOT_SENT}{type(error).__name__}")
        try:
            connection.send(request)
        except OSError as error:
            connection.close()
            return url, _failed(f"{NOT_SENT}{type(error).__name__}")
        try:
            status, body, reusable = connection.answer()
        except TimeoutError:
            connection.close()
            return url, _failed("timeout: ReadTimeout")
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            return url, _failed(f"no answer: {type(error).__name__}")
        if reusable:
            self._give_back(origin, connection)
        else:
            connection.close()
        # Everflow answers JSON (UTF-8) or nothing; the body is kept for the ledger.
        return url, interpret_answer(status, body.decode("utf-8", errors="replace"))

    def _base(self, base_url: str) -> tuple[Origin, str, bytes]:
        """The origin, path prefix and fixed request headers of a base URL (cached)."""
        known = self._bases.get(base_url)
        if known is None:
            parts = urlsplit(base_url.rstrip("/"))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {base_url!r}")
            if not _TARGET.fullmatch(parts.path) or parts.query or parts.fragment:
                raise ValueError(f"the postback base URL has a query or odd path: {base_url!r}")
            host, default = parts.hostname, 443 if parts.scheme == "https" else 80
            port = parts.port or default
            authority = host if host.isascii() else host.encode("idna").decode("ascii")
            authority = f"[{authority}]" if ":" in authority else authority
            if port != default:
                authority += f":{port}"
            headers = (
                f"Host: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
                "Accept: */*\r\nAccept-Encoding: identity\r\n\r\n"
            ).encode("ascii")
            known = (parts.scheme, host, port), parts.path, headers
            self._bases[base_url] = known
        return known

    def _connection(self, origin: Origin) -> Connection:
        """An idle connection still open, else a new one (raises OSError, TimeoutError)."""
        with self._lock:
            idle = self._idle.get(origin) or []
            while idle:
                kept = idle.pop()
                if not _closed_by_peer(kept):
                    return kept
                kept.close()
        scheme, host, port = origin
        return Connection.open(
            host,
            port,
            tls=self._tls_context() if scheme == "https" else None,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
        )

    def _give_back(self, origin: Origin, connection: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self._pool_size:
                idle.append(connection)
                return
        connection.close()

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._tls is None:
                self._tls = ssl.create_default_context(cafile=_ca_bundle())
            return self._tls


def _ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - installed with requests
        return None
    return str(certifi.where())


def _closed_by_peer(connection: Connection) -> bool:
    """An idle keep-alive socket that is readable was closed by the server (or sent
    something unasked): either way it cannot carry a request."""
    try:
        poller = select.poll()
        poller.register(connection.sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _query(params: Sequence[tuple[str, str]]) -> str:
    """``urlencode(params)``, at a third of its CPU when values need no quoting."""
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in params)


def _quoted(text: str) -> str:
    return text if _UNRESERVED.fullmatch(text) else quote_plus(text)


def _failed(error: str) -> PostbackResult:
    return PostbackResult("retryable", None, "", error=error)
