"""The fault-injection suite's world: a simulated clock, SQS on that clock, an
Everflow that fails as told, and a ledger whose worker dies after Everflow answered.

* ``SimClock`` — seconds that move only when the run says so (a 6-hour outage takes
  no real time). The matcher, the poster and its ledger leases read it.
* ``SimSqs`` — a botocore-like SQS client over in-memory queues on that clock:
  visibility timeouts, ``ChangeMessageVisibility`` (at most 12 hours, as SQS),
  ``DelaySeconds``, receive counts and redrive to the DLQ after ``maxReceiveCount``
  receives, at-least-once delivery (a message sent may be stored twice), receives in
  random order. Every ``client("sqs")`` the functions make while the suite runs is
  this one.
* ``FaultyEverflow`` — the Everflow stand-in with faults in front of its answers:
  5xx before recording, 5xx or a hang-up or a timeout *after* recording, an outage
  window in simulated time, failing Network API reads. Each call's fault is drawn
  from the seed, the call and how many times that call came before — never from one
  stream shared by every call, where the order the poster's threads happened to call
  in decided which job met which faults, and a run of bad draws late in the stream
  fell on whichever job was still retrying then.
* ``KillingLedger`` — the poster's ledger; ``finish`` of chosen jobs raises
  ``WorkerKilled`` once: the worker died between Everflow's answer and the ledger
  write (a BaseException, so the whole invocation fails, as a killed Lambda does).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from stripe_everflow.adapters.dynamodb.ledger import Ledger
from stripe_everflow_cli.everflow_standin import EverflowStandIn

MAX_VISIBILITY_SECONDS = 43_200  # SQS: 12 hours


class SimClock:
    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance_to(self, moment: float) -> None:
        with self._lock:
            self._now = max(self._now, float(moment))


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class SimMessage:
    message_id: str
    body: str
    attributes: dict[str, Any]
    sent_at: float
    visible_at: float
    receive_count: int = 0
    receipt_handle: str | None = None


@dataclass
class SimQueue:
    name: str
    url: str
    arn: str
    visibility_timeout: int
    dlq_arn: str | None = None
    max_receive_count: int | None = None
    messages: dict[str, SimMessage] = field(default_factory=dict)
    redriven: int = 0


class SimSqs:
    """What the bridge calls on SQS, on ``clock``. ``duplicate_rate``: the share of
    sends stored twice (SQS delivers at least once); ``send_failure_rate`` per queue
    name: sends refused with a 500 (the webhook answers 5xx, Stripe retries)."""

    def __init__(self, clock: SimClock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self.queues: dict[str, SimQueue] = {}
        self._by_arn: dict[str, SimQueue] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count()
        self.duplicate_rate: dict[str, float] = {}
        self.send_failure_rate: dict[str, float] = {}
        self.stats: Counter[str] = Counter()

    # ---------------------------------------------------------------- set-up

    def add_queue(self, name: str, url: str, attributes: dict[str, str]) -> None:
        queue = SimQueue(
            name=name,
            url=url,
            arn=attributes["QueueArn"],
            visibility_timeout=int(attributes.get("VisibilityTimeout", 30)),
        )
        if attributes.get("RedrivePolicy"):
            policy = json.loads(attributes["RedrivePolicy"])
            queue.dlq_arn = policy["deadLetterTargetArn"]
            queue.max_receive_count = int(policy["maxReceiveCount"])
        self.queues[url] = queue
        self._by_arn[queue.arn] = queue

    def _queue(self, url: str, operation: str) -> SimQueue:
        try:
            return self.queues[url]
        except KeyError:
            raise _client_error("AWS.SimpleQueueService.NonExistentQueue", url, operation) from None

    def named(self, name: str) -> SimQueue:
        [queue] = [q for q in self.queues.values() if q.name == name]
        return queue

    # ---------------------------------------------------------------- sending

    def _store(self, queue: SimQueue, body: str, attributes: Any, delay: int) -> str:
        now = self.clock()
        message_id = str(uuid.UUID(int=next(self._ids) + (1 << 64)))
        copies = 2 if self.rng.random() < self.duplicate_rate.get(queue.name, 0.0) else 1
        for copy in range(copies):
            mid = message_id if copy == 0 else f"{message_id}-dup"
            queue.messages[mid] = SimMessage(mid, body, dict(attributes or {}), now, now + delay)
        self.stats[f"sent:{queue.name}"] += 1
        self.stats[f"duplicated:{queue.name}"] += copies - 1
        return message_id

    def _refuse_send(self, queue: SimQueue) -> bool:
        return self.rng.random() < self.send_failure_rate.get(queue.name, 0.0)

    def send_message(
        self,
        QueueUrl: str,  # noqa: N803 (botocore's parameter names)
        MessageBody: str,  # noqa: N803
        MessageAttributes: Any = None,  # noqa: N803
        DelaySeconds: int = 0,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        with self._lock:
            queue = self._queue(QueueUrl, "SendMessage")
            if self._refuse_send(queue):
                self.stats[f"send_refused:{queue.name}"] += 1
                raise _client_error("InternalError", "injected", "SendMessage")
            return {"MessageId": self._store(queue, MessageBody, MessageAttributes, DelaySeconds)}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            queue = self._queue(QueueUrl, "SendMessageBatch")
            done, failed = [], []
            for entry in Entries:
                if self._refuse_send(queue):
                    failed.append(
                        {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"}
                    )
                    continue
                message_id = self._store(
                    queue,
                    entry["MessageBody"],
                    entry.get("MessageAttributes"),
                    int(entry.get("DelaySeconds", 0)),
                )
                done.append({"Id": entry["Id"], "MessageId": message_id})
            return {"Successful": done, "Failed": failed}

    # ---------------------------------------------------------------- receiving

    def next_visible_at(self, url: str) -> float | None:
        with self._lock:
            times = [m.visible_at for m in self.queues[url].messages.values()]
            return min(times) if times else None

    def receive_message(
        self,
        QueueUrl: str,  # noqa: N803
        MaxNumberOfMessages: int = 1,  # noqa: N803
        VisibilityTimeout: int | None = None,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        with self._lock:
            queue = self._queue(QueueUrl, "ReceiveMessage")
            now = self.clock()
            visible = [m for m in queue.messages.values() if m.visible_at <= now]
            self.rng.shuffle(visible)  # SQS standard queues do not keep order
            taken = []
            for message in visible:
                if len(taken) >= MaxNumberOfMessages:
                    break
                if queue.max_receive_count and message.receive_count >= queue.max_receive_count:
                    self._redrive(queue, message)
                    continue
                message.receive_count += 1
                message.receipt_handle = f"{message.message_id}#{message.receive_count}"
                message.visible_at = now + (
                    queue.visibility_timeout if VisibilityTimeout is None else VisibilityTimeout
                )
                taken.append(
                    {
                        "MessageId": message.message_id,
                        "ReceiptHandle": message.receipt_handle,
                        "Body": message.body,
                        "MessageAttributes": message.attributes,
                        "Attributes": {
                            "ApproximateReceiveCount": str(message.receive_count),
                            "SentTimestamp": str(int(message.sent_at * 1000)),
                            "ApproximateFirstReceiveTimestamp": str(int(now * 1000)),
                        },
                    }
                )
            return {"Messages": taken} if taken else {}

    def _redrive(self, queue: SimQueue, message: SimMessage) -> None:
        del queue.messages[message.message_id]
        target = self._by_arn[queue.dlq_arn or ""]
        message.visible_at, message.receive_count = self.clock(), 0
        target.messages[message.message_id] = message
        queue.redriven += 1

    def _by_handle(self, queue: SimQueue, handle: str, operation: str) -> SimMessage | None:
        message = queue.messages.get(handle.split("#")[0])
        if message is None or message.receipt_handle != handle:
            return None  # SQS ignores a stale handle's delete
        return message

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            queue = self._queue(QueueUrl, "DeleteMessage")
            message = self._by_handle(queue, ReceiptHandle, "DeleteMessage")
            if message is not None:
                del queue.messages[message.message_id]
            return {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        for entry in Entries:
            self.delete_message(QueueUrl, entry["ReceiptHandle"])
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility(
        self,
        QueueUrl: str,  # noqa: N803
        ReceiptHandle: str,  # noqa: N803
        VisibilityTimeout: int,  # noqa: N803
    ) -> dict[str, Any]:
        with self._lock:
            queue = self._queue(QueueUrl, "ChangeMessageVisibility")
            if not 0 <= int(VisibilityTimeout) <= MAX_VISIBILITY_SECONDS:
                raise _client_error(
                    "InvalidParameterValue", "VisibilityTimeout", "ChangeMessageVisibility"
                )
            message = self._by_handle(queue, ReceiptHandle, "ChangeMessageVisibility")
            if message is None:
                raise _client_error(
                    "ReceiptHandleIsInvalid", ReceiptHandle, "ChangeMessageVisibility"
                )
            message.visible_at = self.clock() + int(VisibilityTimeout)
            self.stats[f"visibility_changed:{queue.name}"] += 1
            return {}

    def change_message_visibility_batch(
        self,
        QueueUrl: str,  # noqa: N803
        Entries: list[dict[str, Any]],  # noqa: N803
    ) -> dict[str, Any]:
        done, failed = [], []
        for entry in Entries:
            try:
                self.change_message_visibility(
                    QueueUrl, entry["ReceiptHandle"], entry["VisibilityTimeout"]
                )
                done.append({"Id": entry["Id"]})
            except ClientError as error:
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": error.response["Error"]["Code"],
                    }
                )
        return {"Successful": done, "Failed": failed}

    def get_queue_attributes(self, QueueUrl: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            queue = self._queue(QueueUrl, "GetQueueAttributes")
            now = self.clock()
            visible = sum(1 for m in queue.messages.values() if m.visible_at <= now)
            return {
                "Attributes": {
                    "QueueArn": queue.arn,
                    "VisibilityTimeout": str(queue.visibility_timeout),
                    "ApproximateNumberOfMessages": str(visible),
                    "ApproximateNumberOfMessagesNotVisible": str(len(queue.messages) - visible),
                }
            }

    def get_queue_url(self, QueueName: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        return {"QueueUrl": self.named(QueueName).url}


# -------------------------------------------------------------------- Everflow


@dataclass
class EverflowFaults:
    """How Everflow misbehaves. Rates are shares of the calls outside the outage."""

    postback_failure_rate: float = 0.0  # of which, after recording:
    recorded_then_5xx: float = 0.2
    recorded_then_hangup: float = 0.15
    recorded_then_timeout: float = 0.05
    lookup_failure_rate: float = 0.0
    outage: tuple[float, float] | None = None  # simulated [start, end)
    timeout_seconds: float = 0.7  # longer than the poster's read timeout in the suite


class HangUpError(Exception):
    """Raised inside the stand-in's request handler: the connection closes unanswered."""


class FaultyEverflow(EverflowStandIn):
    """The stand-in with ``faults`` in front of its answers, on ``clock``. Counts every
    call by what happened to it in ``calls``."""

    def __init__(self, clock: SimClock, seed: int, faults: EverflowFaults) -> None:
        super().__init__()
        self.sim_clock, self.seed, self.faults = clock, seed, faults
        self.calls: Counter[str] = Counter()
        self._fault_lock = threading.Lock()
        self._times_called: Counter[str] = Counter()

    def start(self) -> FaultyEverflow:
        super().start()
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        return self

    def _dice(
        self, method: str, path: str, query: list[tuple[str, str]], body: str
    ) -> random.Random:
        """The faults of one call: drawn from the seed, the call (method, path, query,
        body) and how many times that same call came before, so a job meets the same
        faults whatever other jobs call meanwhile and in whatever order threads run."""
        call = "|".join([method, path, repr(sorted(query)), body])
        with self._fault_lock:
            nth = self._times_called[call]
            self._times_called[call] += 1
        return random.Random(f"{self.seed}|{call}|{nth}")  # noqa: S311 - reproducible faults

    def in_outage(self) -> bool:
        window = self.faults.outage
        return window is not None and window[0] <= self.sim_clock() < window[1]

    def _respond(
        self, method: str, path: str, query: list[tuple[str, str]], body: str, connection: str
    ) -> tuple[int, str]:
        kind = (
            "api"
            if path.startswith("/v1/networks/")
            else "reversal"
            if path == "/reversal"
            else "postback"
        )
        if self.in_outage():
            self.calls[f"{kind}:outage_503"] += 1
            return 503, json.dumps({"error": "outage"})
        dice = self._dice(method, path, query, body)
        if kind == "api":
            if dice.random() < self.faults.lookup_failure_rate:
                status = dice.choice([503, 429, 502])
                self.calls[f"api:failed_{status}"] += 1
                return status, json.dumps({"error": "injected"})
            self.calls[f"api:{method}"] += 1
            return super()._respond(method, path, query, body, connection)
        if dice.random() >= self.faults.postback_failure_rate:
            status, payload = super()._respond(method, path, query, body, connection)
            self.calls[f"{kind}:answered_{status}"] += 1
            return status, payload
        after = dice.random()
        f = self.faults
        if after < f.recorded_then_5xx:
            super()._respond(method, path, query, body, connection)
            self.calls[f"{kind}:recorded_then_502"] += 1
            return 502, json.dumps({"error": "bad gateway"})
        if after < f.recorded_then_5xx + f.recorded_then_hangup:
            super()._respond(method, path, query, body, connection)
            self.calls[f"{kind}:recorded_then_hangup"] += 1
            raise HangUpError
        if after < f.recorded_then_5xx + f.recorded_then_hangup + f.recorded_then_timeout:
            answer = super()._respond(method, path, query, body, connection)
            self.calls[f"{kind}:recorded_then_timeout"] += 1
            time.sleep(f.timeout_seconds)
            return answer
        status = dice.choice([500, 502, 503, 504, 429])
        self.calls[f"{kind}:refused_{status}"] += 1
        return status, json.dumps({"error": "injected"})


# -------------------------------------------------------------------- the worker's death


class WorkerKilled(BaseException):
    """The poster's Lambda died: nothing after this line of the invocation ran."""


class KillingLedger(Ledger):
    """The ledger; ``finish`` of each job key in ``kill`` raises WorkerKilled the first
    time (Everflow has answered, the ledger never hears of it)."""

    def __init__(self, table_name: str, dynamodb: Any, kill: set[str]) -> None:
        super().__init__(table_name, dynamodb)
        self.kill = set(kill)
        self.killed: list[str] = []
        self._kill_lock = threading.Lock()

    def finish(self, job_key: str, attempt_id: str, status: str, now: int, facts: Any) -> None:
        with self._kill_lock:
            doomed = job_key in self.kill
            self.kill.discard(job_key)
        if doomed:
            self.killed.append(job_key)
            raise WorkerKilled(job_key)
        super().finish(job_key, attempt_id, status, now, facts)
