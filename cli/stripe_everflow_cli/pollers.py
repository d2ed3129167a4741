"""Emulates Lambda's SQS event source mapping for the local stack.

Like the real mapping: long-polls the queue for up to ``batch_size`` messages,
invokes the function with an ``aws:sqs`` event, deletes what succeeded, and leaves
the rest to reappear after the queue's visibility timeout. With
``ReportBatchItemFailures`` only the records named in ``batchItemFailures`` are
kept; a handler error keeps the whole batch. The queue's own redrive policy (moto
implements it) moves a message to the DLQ after ``maxReceiveCount`` receives.

``SchedulePoller`` emulates a ``Schedule`` event (an EventBridge rule): the function
is invoked with a ``Scheduled Event`` every period of its ``rate(...)``, or on demand
(``fire``), which is how the demo and tests run it without waiting.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from typing import Any

from stripe_everflow_cli.runtime import FunctionWorker, InvocationError
from stripe_everflow_cli.template import LOCAL_ACCOUNT_ID, LOCAL_REGION

log = logging.getLogger(__name__)


def build_sqs_event(messages: list[dict[str, Any]], queue_name: str) -> dict[str, Any]:
    arn = f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{queue_name}"
    records = []
    for message in messages:
        attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": attributes,
                "md5OfBody": hashlib.md5(
                    message["Body"].encode(), usedforsecurity=False
                ).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": LOCAL_REGION,
            }
        )
    return {"Records": records}


def settle_batch(
    messages: list[dict[str, Any]], response: Any, reports_batch_item_failures: bool
) -> list[dict[str, Any]]:
    """The messages to delete after a successful invocation, as Lambda decides.

    A malformed ``batchItemFailures`` (an unknown id, a missing itemIdentifier) fails
    the whole batch, as it does on AWS.
    """
    if not reports_batch_item_failures:
        return list(messages)
    # An empty or null response means every record succeeded.
    failures = (response.get("batchItemFailures") if isinstance(response, dict) else None) or []
    ids = {message["MessageId"] for message in messages}
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in ids:
            return []
        failed.add(identifier)
    return [message for message in messages if message["MessageId"] not in failed]


class SqsPoller:
    """One event source mapping: a queue feeding one function."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_name: str,
        worker: FunctionWorker,
        batch_size: int,
        reports_batch_item_failures: bool,
        wait_seconds: int = 1,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_name = queue_name
        self._worker = worker
        self._batch_size = min(batch_size, 10)
        self._reports_failures = reports_batch_item_failures
        self._wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._run, name=f"poll-{queue_name}", daemon=True)
        self.invocations = 0
        self.failed_invocations = 0

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Stop taking messages (after the batch in hand), like disabling the mapping."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(timeout=self._wait_seconds + 5)

    def poll_once(self) -> int:
        """Receive and process one batch; returns how many messages it received."""
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        self.invocations += 1
        try:
            response = self._worker.invoke(build_sqs_event(messages, self._queue_name))
        except InvocationError:
            self.failed_invocations += 1
            return len(messages)
        done = settle_batch(messages, response, self._reports_failures)
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(timeout=0.2) or self._stop.is_set():
                continue
            try:
                self.poll_once()
            except Exception as error:  # keep polling, as the real mapping does
                if self._stop.is_set():
                    return
                log.warning("polling %s failed: %s", self._queue_name, error)
                if self._stop.wait(1):
                    return


def schedule_seconds(expression: str, default: int = 300) -> int | None:
    """Seconds between runs of an EventBridge schedule: ``rate(N minute[s]|hour[s]|
    day[s])``; a ``cron(...)`` runs every ``default`` seconds here; "" never (None)."""
    text = expression.strip()
    if not text:
        return None
    match = re.fullmatch(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", text)
    if not match:
        return default
    unit = {"minute": 60, "hour": 3600, "day": 86_400}[match.group(2).rstrip("s")]
    return max(1, int(match.group(1)) * unit)


def build_scheduled_event(rule: str, now: float | None = None) -> dict[str, Any]:
    """The event EventBridge Scheduler hands a function (``aws.events``)."""
    moment = time.time() if now is None else now
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:rule/{rule}"],
        "detail": {},
    }


class SchedulePoller:
    """One ``Schedule`` event of a function: invokes it every ``interval`` seconds
    (None: only when ``fire`` is called, as a disabled rule that is run by hand)."""

    def __init__(self, name: str, worker: FunctionWorker, interval: int | None) -> None:
        self.name = name
        self._worker = worker
        self.interval = interval
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)
        self.invocations = 0
        self.failed_invocations = 0
        self.last_result: Any = None

    def start(self) -> None:
        if self.interval is not None:
            self._thread.start()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def fire(self) -> Any:
        """Run the function now (one run at a time); returns what it returned.
        Raises InvocationError when it failed."""
        with self._lock:
            self.invocations += 1
            try:
                self.last_result = self._worker.invoke(build_scheduled_event(self.name))
            except InvocationError:
                self.failed_invocations += 1
                raise
            return self.last_result

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            if not self._running.is_set():
                continue
            try:
                self.fire()
            except Exception as error:  # the next tick runs it again, as EventBridge does
                log.warning("scheduled run of %s failed: %s", self.name, error)
