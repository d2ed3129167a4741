"""SQS: sending one message to one queue (the webhook, the matcher, the poster's DLQ)."""

from __future__ import annotations

from typing import Any

from stripe_everflow.adapters.aws import client
from stripe_everflow.domain.errors import QueueUnavailableError


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
