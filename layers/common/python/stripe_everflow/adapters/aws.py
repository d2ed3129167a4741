"""Adapters over AWS services, on botocore.

botocore rather than boto3: the functions need only low-level clients, and boto3
(with s3transfer) adds about 20 ms to every cold start for nothing. Clients come
from one session per process and are created on first use, never at import.
Every call has explicit timeouts and botocore's "standard" retry mode (3 attempts,
backoff with jitter, retries throttling and 5xx).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from stripe_everflow.errors import QueueUnavailableError

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


class SqsSender:
    """Sends messages to one SQS queue."""

    def __init__(self, queue_url: str, sqs: Any | None = None) -> None:
        self._queue_url = queue_url
        self._sqs = sqs

    def send(self, body: str, attributes: dict[str, str]) -> str:
        """Send one message; returns its MessageId.

        Raises QueueUnavailableError after botocore's own retries failed; the caller
        decides whether that is retried (the webhook answers 503).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if self._sqs is None:
            self._sqs = client("sqs")
        try:
            answer = self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                MessageAttributes={
                    key: {"DataType": "String", "StringValue": value}
                    for key, value in attributes.items()
                },
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailableError(f"SendMessage failed: {type(error).__name__}") from error
        return str(answer["MessageId"])


def secret_reader(secret_id: str, secretsmanager: Any | None = None) -> Callable[[], str]:
    """A function returning the secret's current SecretString (errors propagate)."""
    holder: dict[str, Any] = {"client": secretsmanager}

    def read() -> str:
        if holder["client"] is None:
            holder["client"] = client("secretsmanager")
        answer = holder["client"].get_secret_value(SecretId=secret_id)
        return str(answer["SecretString"])

    return read


def storage_errors() -> tuple[type[Exception], ...]:
    """The exceptions a table adapter raises when AWS fails (for HTTP handlers to map)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


# ------------------------------------------------------------------ DynamoDB helpers


def condition_failed(error: Exception) -> bool:
    """True for DynamoDB's ConditionalCheckFailedException (a lost conditional write)."""
    response = getattr(error, "response", {}) or {}
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


@functools.cache
def _codec() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def to_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values → DynamoDB attribute values (numbers must be int or Decimal)."""
    serializer = _codec()[0]
    return {name: serializer.serialize(value) for name, value in values.items()}


def from_attributes(raw: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → Python values (numbers come back as Decimal)."""
    deserializer = _codec()[1]
    return {name: deserializer.deserialize(value) for name, value in raw.items()}
