"""Sending postbacks to the tracking domain (``requests``, one keep-alive session)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from stripe_everflow.domain.postback import PostbackResult, interpret_answer

CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10.0


class EverflowClient:
    """GETs postbacks with one keep-alive ``requests.Session`` per process.

    Connect timeout 3.05 s, read timeout 10 s; no retries here — a retryable answer
    fails the SQS record and SQS redelivers it after the visibility timeout.
    """

    def __init__(
        self,
        session: Any | None = None,
        pool_size: int = 10,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self._session = session
        self._pool_size = pool_size
        self._timeouts = (connect_timeout, read_timeout)
        self._lock = threading.Lock()

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                import requests
                from requests.adapters import HTTPAdapter

                session = requests.Session()
                adapter = HTTPAdapter(
                    pool_connections=4, pool_maxsize=self._pool_size, max_retries=0
                )
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers["User-Agent"] = "stripe-everflow-bridge/0.1"
                self._session = session
            return self._session

    def get(
        self, base_url: str, params: Sequence[tuple[str, str]], path: str = "/"
    ) -> tuple[str, PostbackResult]:
        """Send one postback (``path`` "/reversal" for a reversal); returns the URL sent
        and what the answer means."""
        import requests

        url = base_url.rstrip("/") + path + "?" + urlencode(list(params))
        try:
            answer = self._http().get(url, timeout=self._timeouts, allow_redirects=False)
        except requests.Timeout as error:
            return url, PostbackResult(
                "retryable", None, "", error=f"timeout: {type(error).__name__}"
            )
        except requests.RequestException as error:
            return url, PostbackResult(
                "retryable", None, "", error=f"connection: {type(error).__name__}"
            )
        return url, interpret_answer(answer.status_code, answer.text)
