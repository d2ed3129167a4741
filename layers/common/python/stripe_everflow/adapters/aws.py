"""Adapters over AWS services, on botocore.

botocore rather than boto3: the functions need only low-level clients, and boto3
(with s3transfer) adds about 20 ms to every cold start for nothing. Clients come
from one session per process and are created on first use, never at import.
Every call has explicit timeouts and botocore's "standard" retry mode (3 attempts,
backoff with jitter, retries throttling and 5xx).
"""

from __future__ import annotations

import functools
from typing import Any

CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 3


# The only services the bridge calls. Telling botocore so spares every cold start a
# scan of its ~450 service folders (about 17 ms, measured by make bench).
SERVICES = ("dynamodb", "secretsmanager", "sqs")


@functools.cache
def _session() -> Any:
    import botocore.loaders
    import botocore.session

    class _BridgeServicesLoader(botocore.loaders.Loader):  # type: ignore[misc]
        def list_available_services(self, type_name: str) -> list[str]:
            return list(SERVICES)

    session = botocore.session.get_session()
    session.register_component("data_loader", _BridgeServicesLoader())
    return session


def client(service: str) -> Any:
    """A botocore client with the bridge's timeouts; region and endpoint from the environment."""
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    )
    return _session().create_client(service, config=config)


def storage_errors() -> tuple[type[Exception], ...]:
    """The exceptions a table adapter raises when AWS fails (for HTTP handlers to map)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)
