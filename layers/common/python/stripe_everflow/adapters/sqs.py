"""SQS: sending one message to one queue (the webhook, the matcher, the poster's DLQ),
and when messages received from it come back (the poster's retry delays)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stripe_everflow.adapters.aws import client
from stripe_everflow.domain.errors import QueueUnavailableError

# SQS's limits: 10 entries per ChangeMessageVisibilityBatch, 12 hours of visibility.
VISIBILITY_BATCH = 10
MAX_VISIBILITY_SECONDS = 43200


class SqsSender:
    """Sends messages to one SQS queue, and changes when received ones come back."""

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

    def change_visibility(self, delays: Sequence[tuple[str, int]]) -> int:
        """Make each received message (receipt handle) visible again that many seconds
        from now (0 to 12 hours), in ChangeMessageVisibilityBatch requests of 10;
        returns how many SQS changed. An entry SQS refuses (the message is gone, its
        receipt expired) is left as it is: it comes back after the queue's visibility
        timeout. Raises QueueUnavailableError after botocore's own retries failed."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self._sqs is None:
            self._sqs = client("sqs")
        changed = 0
        for start in range(0, len(delays), VISIBILITY_BATCH):
            chunk = delays[start : start + VISIBILITY_BATCH]
            try:
                answer = self._sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {
                            "Id": str(n),
                            "ReceiptHandle": handle,
                            "VisibilityTimeout": max(0, min(int(seconds), MAX_VISIBILITY_SECONDS)),
                        }
                        for n, (handle, seconds) in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as error:
                raise QueueUnavailableError(
                    f"ChangeMessageVisibilityBatch failed: {type(error).__name__}"
                ) from error
            changed += len(answer.get("Successful", []))
        return changed
