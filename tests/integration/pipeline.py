"""Drives ClickIntakeFunction and MatchPaymentFunction in process, as their triggers
would: HTTP API events for /clicks, SQS batches for the matcher (with replays from
PaymentEventsQueue fed back), jobs read from PostbackQueue; and the whole bridge
(``Bridge``: matcher and poster, Everflow from the stand-in) until it is quiet.

Time that the bridge waits out on AWS is not waited for here: a payment held for its
Checkout Session is sent back at once (``run_replays`` feeds it, as if its delay had
passed), and ``Pipeline.later`` moves the matcher's clock."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from stripe_everflow.adapters.dynamodb.ledger import Ledger
from stripe_everflow.adapters.sqs import SqsSender
from tests.integration.conftest import Aws
from tests.support import LambdaContext, load_function

if TYPE_CHECKING:
    import pytest

    from stripe_everflow_cli.everflow_standin import EverflowStandIn


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:PaymentEventsQueue",
        "awsRegion": "us-east-1",
    }


def intake_message(event: dict[str, Any], account: str = "default") -> str:
    return json.dumps(
        {
            "schema": "stripe-event/1",
            "source": "webhook",
            "account": account,
            "received_at": int(time.time()),
            "event": event,
        }
    )


@dataclass
class Pipeline:
    aws: Aws
    match: ModuleType
    clicks: ModuleType
    match_deps: Any
    click_deps: Any
    token: str = "test-click-token"

    def post_clicks(self, body: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        event = {
            "version": "2.0",
            "routeKey": "POST /clicks",
            "rawPath": "/clicks",
            "headers": {
                "content-type": "application/json",
                "authorization": f"Bearer {token or self.token}",
            },
            "requestContext": {"http": {"method": "POST", "path": "/clicks"}},
            "body": raw.decode("utf-8"),
            "isBase64Encoded": False,
        }
        answer = self.clicks.handle(event, self.click_deps)
        # lambda_handler flushes metrics after each invocation; handle() alone does not
        self.clicks.metrics.clear_metrics()
        return answer["statusCode"], json.loads(answer["body"])

    def deliver(self, *bodies: str) -> dict[str, Any]:
        """One SQS batch to the matcher; returns its batch response."""
        event = {"Records": [sqs_record(body) for body in bodies]}
        return dict(self.match.handle(event, LambdaContext(), self.match_deps))

    def deliver_events(self, *events: dict[str, Any], account: str = "default") -> dict[str, Any]:
        return self.deliver(*(intake_message(event, account) for event in events))

    def run_replays(self) -> int:
        """Feed what the bridge put back on PaymentEventsQueue (replayed parked payments)."""
        messages = self.aws.drain("PaymentEventsQueue")
        if messages:
            self.deliver(*(json.dumps(m["Body"]) for m in messages))
        return len(messages)

    def jobs(self) -> list[dict[str, Any]]:
        return [m["Body"] for m in self.aws.drain("PostbackQueue")]

    def later(self, seconds: int) -> None:
        """The matcher's clock, ``seconds`` later from now on."""
        matcher = self.match_deps.matcher
        now = matcher.clock
        matcher.clock = lambda: now() + seconds


def build_pipeline(aws: Aws, monkeypatch: Any, **env: str) -> Pipeline:
    for function in ("MatchPaymentFunction", "ClickIntakeFunction"):
        for name, value in aws.function_environment(function).items():
            monkeypatch.setenv(name, value)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    match, clicks = load_function("match_payment"), load_function("click_intake")
    match_deps = match.Dependencies.from_environ(os.environ)
    # A payment held for its Checkout Session comes back without the queue's delay
    # (moto would keep it invisible for minutes of real time).
    match_deps.matcher.held_events = SqsSender(
        aws.resources.queue_urls["PaymentEventsQueue"], aws.sqs
    )
    return Pipeline(
        aws=aws,
        match=match,
        clicks=clicks,
        match_deps=match_deps,
        click_deps=clicks.Dependencies.from_environ(os.environ),
    )


class AtomicDynamoDB:
    """moto's in-process DynamoDB is not atomic across threads, while DynamoDB applies
    every conditional write atomically. This client runs calls one at a time (one lock
    for every instance), so concurrent workers meet DynamoDB's semantics; their Everflow
    calls still overlap."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        import boto3

        self._client = boto3.client("dynamodb")

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return call(*args, **kwargs)

        return atomic


class Poster:
    """The function with its dependencies, and ways to feed it jobs."""

    def __init__(
        self, aws: Aws, everflow: EverflowStandIn, monkeypatch: pytest.MonkeyPatch, **env: str
    ) -> None:
        for name, value in aws.function_environment("PostEverflowFunction").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("EVERFLOW_POSTBACK_BASE_URL", everflow.url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self.aws, self.everflow = aws, everflow
        self.app = load_function("post_everflow")
        deps = self.app.Dependencies.from_environ(os.environ)
        deps.poster.ledger = Ledger(deps.poster.settings.ledger_table, AtomicDynamoDB())
        # short timeouts so a stalled Everflow is a quick test
        deps.poster.client = self.app.EverflowClient(connect_timeout=0.5, read_timeout=0.5)
        self.deps = deps

    def deliver(self, *jobs: str) -> dict[str, Any]:
        records = [
            sqs_record(job, message_id=f"m{i}-{uuid.uuid4().hex[:6]}") for i, job in enumerate(jobs)
        ]
        response = self.app.handle({"Records": records}, self.deps)
        self.app.metrics.clear_metrics()
        return dict(response)

    def ledger(self, job_key: str) -> dict[str, Any]:
        entry = self.deps.poster.ledger.get(job_key)
        assert entry is not None
        return dict(entry.item)


class Bridge:
    """Matcher and poster wired as SQS would: what the matcher queues is matched or
    posted until nothing moves. A poster record that fails is delivered again (SQS
    would, after its visibility timeout) up to ``receives`` times in all."""

    def __init__(
        self,
        aws: Aws,
        everflow: EverflowStandIn,
        monkeypatch: pytest.MonkeyPatch,
        *,
        api_key: bool = True,
        **env: str,
    ) -> None:
        from tests.support import bridge_secret

        secret = bridge_secret()
        if api_key:
            secret["everflow_api_key"] = "ef_api_key"
        aws.secretsmanager.put_secret_value(
            SecretId="BridgeSecret", SecretString=json.dumps(secret)
        )
        self.aws, self.everflow = aws, everflow
        self.pipeline = build_pipeline(aws, monkeypatch, **env)
        self.poster = Poster(aws, everflow, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url, **env)
        self.failed_jobs: list[dict[str, Any]] = []

    def stripe(self, *events: dict[str, Any], receives: int = 5) -> None:
        """Deliver ``events`` as one batch, then let everything they cause happen."""
        self.pipeline.deliver_events(*events)
        self.settle(receives)

    def settle(self, receives: int = 5) -> None:
        pending: list[tuple[str, int]] = []
        while True:
            moved = self.pipeline.run_replays()
            pending += [(json.dumps(m["Body"]), 0) for m in self.aws.drain("PostbackQueue")]
            if not pending and not moved:
                return
            again = []
            for body, failures in pending:  # one job per batch: moto is not atomic
                if self.poster.deliver(body)["batchItemFailures"]:
                    if failures + 1 < receives:
                        again.append((body, failures + 1))
                    else:
                        self.failed_jobs.append(json.loads(body))
            pending = again

    def ledger(self, job_key: str) -> dict[str, Any]:
        return self.poster.ledger(job_key)


def local_stack_access(aws: Aws, monkeypatch: Any) -> Any:
    """What an operator command (``stack_access``) reaches when run against the local
    stack: here, moto's clients; every ``stack_access(...)`` call answers it."""
    from stripe_everflow_cli.stack_access import StackAccess
    from stripe_everflow_cli.targets import StackTarget

    clients = {"sqs": aws.sqs, "dynamodb": aws.dynamodb, "secretsmanager": aws.secretsmanager}

    class Session:
        def client(self, service: str, **options: Any) -> Any:
            return clients[service]

    access = StackAccess(StackTarget(Session(), endpoint="http://127.0.0.1:1"))
    monkeypatch.setattr("stripe_everflow_cli.stack_access.stack_access", lambda *_: access)
    return access
