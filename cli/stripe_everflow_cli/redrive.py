"""`stripe-everflow redrive`: send what waits in a DLQ back to its queue.

Messages land in PaymentEventsDLQ or PostbackDLQ after 5 failed receives (or, for
a postback Everflow refused for good, at once). Once the cause is fixed — a secret
completed, Everflow back, a bug deployed away — redrive them: each message is sent
to the source queue with its body and attributes, then deleted from the DLQ (a
crash in between sends it twice, which the bridge's idempotency absorbs).
The SQS console's "Start DLQ redrive" does the same for a deployed stack.
"""

from __future__ import annotations

from typing import Any

from stripe_everflow_cli.targets import resolve_target

QUEUES = {
    "payment-events": ("PaymentEventsDLQ", "PaymentEventsQueue"),
    "postbacks": ("PostbackDLQ", "PostbackQueue"),
}
OUTPUTS = {
    "PaymentEventsDLQ": "PaymentEventsDLQUrl",
    "PaymentEventsQueue": "PaymentEventsQueueUrl",
    "PostbackDLQ": "PostbackDLQUrl",
    "PostbackQueue": "PostbackQueueUrl",
}


def queue_urls(
    which: str, endpoint: str | None, stack: str | None, region: str | None
) -> tuple[Any, str, str]:
    """An SQS client and the (DLQ, source) URLs of a local or deployed stack."""
    target = resolve_target(endpoint, stack, region)
    sqs = target.client("sqs")
    dlq, source = QUEUES[which]
    if target.endpoint:
        return (
            sqs,
            sqs.get_queue_url(QueueName=dlq)["QueueUrl"],
            sqs.get_queue_url(QueueName=source)["QueueUrl"],
        )
    return sqs, target.output(OUTPUTS[dlq]), target.output(OUTPUTS[source])


def redrive(sqs: Any, dlq_url: str, source_url: str, limit: int | None = None) -> int:
    """Move up to ``limit`` messages (all by default); returns how many moved."""
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=batch,
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            attributes = {
                name: {k: v for k, v in value.items() if k in ("DataType", "StringValue")}
                for name, value in message.get("MessageAttributes", {}).items()
            }
            sqs.send_message(
                QueueUrl=source_url, MessageBody=message["Body"], MessageAttributes=attributes
            )
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved
