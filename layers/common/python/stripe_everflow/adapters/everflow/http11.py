"""One HTTP/1.1 GET on a kept-alive connection: the exchange a postback needs, and no
more.

``http.client`` spends most of a postback's CPU on what a postback does not use (an
email-package parse of every header block, a response object and a fresh buffered
reader per answer); this reads the status line, the headers it needs
(``Content-Length``, ``Transfer-Encoding``, ``Connection``) and the body, framed as
RFC 9112 says: chunked, by length, or up to the close. Interim ``1xx`` answers
(``103 Early Hints`` from a CDN) are skipped. Limits as ``http.client``'s: 64 KiB a
line, 100 headers; bodies beyond 64 KiB are cut and their connection dropped.

Sending (``send``) and reading the answer (``answer``) are two steps, because a
failure means different things in each: before the request is out the server cannot
have acted on it; after, it may have. Errors are ``http.client``'s exception classes
(``RemoteDisconnected``, ``BadStatusLine``, ``IncompleteRead``, ``LineTooLong``),
``OSError`` and ``TimeoutError`` from the socket; after any of them the connection
is unusable.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from io import BufferedReader

MAX_LINE = 65536
MAX_HEADERS = 100
MAX_BODY = 65536
MAX_INTERIM_ANSWERS = 10


class Connection:
    """A socket and its buffered reader; one exchange at a time."""

    __slots__ = ("reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: BufferedReader = sock.makefile("rb")

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> Connection:
        """Connect (and shake hands) within ``connect_timeout``; raises OSError."""
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(read_timeout)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def send(self, request: bytes) -> None:
        """Send a complete GET request (raises OSError: then the server cannot have
        read the whole request, and an incomplete one is never acted on)."""
        self.sock.sendall(request)

    def answer(self) -> tuple[int, bytes, bool]:
        """Read the answer to the request sent; returns the status, the body and whether
        the connection may carry another request. Raises once the request is out: the
        server may have acted on it."""
        reader = self.reader
        for _ in range(MAX_INTERIM_ANSWERS):
            version, status = _status_line(reader.readline(MAX_LINE + 1))
            headers = _headers(reader)
            if not 100 <= status < 200:
                break
        else:
            raise http.client.HTTPException("too many interim answers")
        connection = headers.get(b"connection", b"").lower()
        if version == b"HTTP/1.0":
            reusable = b"keep-alive" in connection
        else:
            reusable = b"close" not in connection
        coding = headers.get(b"transfer-encoding")
        if coding is not None:
            if coding.lower().rsplit(b",", 1)[-1].strip() != b"chunked":
                return status, _until_close(reader), False
            body, complete = _chunked(reader)
            return status, body, reusable and complete
        if status in (204, 304):
            return status, b"", reusable
        length = headers.get(b"content-length")
        if length is None:
            return status, _until_close(reader), False
        try:
            size = int(length)
        except ValueError:
            raise http.client.HTTPException(f"bad Content-Length {length!r}") from None
        if size < 0:
            raise http.client.HTTPException(f"bad Content-Length {length!r}")
        body = _exactly(reader, min(size, MAX_BODY))
        return status, body, reusable and size <= MAX_BODY

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _status_line(line: bytes) -> tuple[bytes, int]:
    if not line:
        raise http.client.RemoteDisconnected("the server closed the connection without answering")
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("status line")
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3:
        raise http.client.BadStatusLine(line.decode("latin-1").rstrip())
    try:
        return parts[0], int(parts[1])
    except ValueError:
        raise http.client.BadStatusLine(line.decode("latin-1").rstrip()) from None


def _headers(reader: BufferedReader) -> dict[bytes, bytes]:
    """The header block, names lower-cased (a repeated header: the last one)."""
    headers: dict[bytes, bytes] = {}
    for _ in range(MAX_HEADERS + 1):
        line = reader.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise http.client.IncompleteRead(b"", None)
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")


def _exactly(reader: BufferedReader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise http.client.IncompleteRead(data, size - len(data))
    return data


def _chunked(reader: BufferedReader) -> tuple[bytes, bool]:
    """The chunked body (cut at MAX_BODY: then False, the rest was not read)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        line = reader.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("chunk size")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(chunks)) from None
        if size == 0:
            _headers(reader)  # trailers, up to the blank line that ends the body
            return b"".join(chunks), True
        if total + size > MAX_BODY:
            chunks.append(_exactly(reader, MAX_BODY - total))
            return b"".join(chunks), False
        chunks.append(_exactly(reader, size))
        total += size
        if reader.readline(MAX_LINE + 1) not in (b"\r\n", b"\n"):
            raise http.client.IncompleteRead(b"".join(chunks))


def _until_close(reader: BufferedReader) -> bytes:
    return reader.read(MAX_BODY)
