"""What an operator command that feeds the pipeline needs of a stack, local or
deployed: the merged bridge secret, AttributionTable and PaymentEventsQueue, through
the same adapters the functions use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stripe_everflow_cli.targets import StackTarget, resolve_target

# The local stack names its resources by their logical ids.
LOCAL_SECRETS = ("StripeWebhookSecret", "BridgeSecret")


@dataclass(frozen=True)
class StackAccess:
    target: StackTarget
    stack: str | None = None

    @property
    def local(self) -> bool:
        return bool(self.target.endpoint)

    def bridge_secret(self) -> Any:
        """The two secrets merged and parsed (``domain.secret``); raises ValueError
        naming what is wrong (never a value)."""
        return self.cached_secret().get()

    def cached_secret(self) -> Any:
        """The secret as the functions hold it (``CachedSecret``), read once here;
        raises ValueError naming what is wrong."""
        from botocore.exceptions import BotoCoreError, ClientError

        from stripe_everflow.adapters.secrets import secret_reader
        from stripe_everflow.domain.errors import SecretUnavailableError
        from stripe_everflow.domain.secret import CachedSecret

        outputs = ("StripeWebhookSecretArn", "BridgeSecretArn")
        ids = LOCAL_SECRETS if self.local else tuple(self.target.output(o) for o in outputs)
        try:
            text = secret_reader(",".join(ids), self.target.client("secretsmanager"))()
            cached = CachedSecret(lambda: text, max_age=float("inf"))
            cached.get()
            return cached
        except SecretUnavailableError as error:
            raise ValueError(f"the bridge secret: {error}") from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise ValueError(f"the bridge secret cannot be read: {code}") from None
        except BotoCoreError as error:
            raise ValueError(f"the bridge secret cannot be read: {error}") from None

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment as the stack runs it: a deployed function's, or
        the template resolved with the local stack's parameters: those the running
        stack noted when it started (``--config`` included), else the config file
        here (``local.config.json`` when present)."""
        if self.local:
            # local_urls is set only when the running stack's own note was read
            running = self.target.parameters if self.target.local_urls else None
            return _local_function_environment(logical_id, running)
        resource = self.target.client("cloudformation").describe_stack_resource(
            StackName=self.stack, LogicalResourceId=logical_id
        )["StackResourceDetail"]["PhysicalResourceId"]
        configuration = self.target.client("lambda").get_function_configuration(
            FunctionName=resource
        )
        return dict(configuration.get("Environment", {}).get("Variables", {}))

    def webhook_settings(self) -> Any:
        """StripeWebhookFunction's settings (allow-list, email mode) as the stack runs
        them."""
        from stripe_everflow.config import WebhookSettings

        return WebhookSettings.from_environ(self.function_environment("StripeWebhookFunction"))

    def table(self, logical_id: str) -> str:
        """A table's name: its logical id on the local stack, else the stack's output."""
        return logical_id if self.local else self.target.output(f"{logical_id}Name")

    def queue_url(self, logical_id: str) -> str:
        """A queue's URL: asked of the local stack's SQS, else the stack's output."""
        if self.local:
            sqs = self.target.client("sqs")
            return str(sqs.get_queue_url(QueueName=logical_id)["QueueUrl"])
        return self.target.output(f"{logical_id}Url")

    def attribution_store(self) -> Any:
        from stripe_everflow.adapters.dynamodb.store import AttributionStore

        return AttributionStore(self.table("AttributionTable"), self.target.client("dynamodb"))

    def backfill_checkpoint(self, account: str) -> Any:
        from stripe_everflow_cli.backfill import Checkpoint

        return Checkpoint(self.target.client("dynamodb"), self.table("AttributionTable"), account)

    def payment_events_batch(self) -> BatchSender:
        """PaymentEventsQueue for many messages: SendMessageBatch of 10, on ``flush``."""
        # botocore's own check of each request costs a third of a backfill's SQS time;
        # the entries are built here, and SQS checks them again
        sqs = self.target.client("sqs", validate_parameters=False)
        return BatchSender(sqs, self.queue_url("PaymentEventsQueue"))

    def payment_events(self) -> Any:
        from stripe_everflow.adapters.sqs import SqsSender

        return SqsSender(self.queue_url("PaymentEventsQueue"), self.target.client("sqs"))


def stack_access(endpoint: str | None, stack: str | None, region: str | None) -> StackAccess:
    """Raises ValueError when no stack is named or its outputs cannot be read."""
    return StackAccess(resolve_target(endpoint, stack, region), None if endpoint else stack)


def _local_function_environment(
    logical_id: str, parameters: dict[str, str] | None
) -> dict[str, str]:
    import os
    from pathlib import Path

    from stripe_everflow_cli.localconfig import DEFAULT_CONFIG_FILE, load_local_config
    from stripe_everflow_cli.preflight import PlaceholderResolver, check_parameters
    from stripe_everflow_cli.stack import find_project_root
    from stripe_everflow_cli.template import function_specs, load_template

    try:
        root = find_project_root()
    except FileNotFoundError:
        raise ValueError(
            "template.yaml is not here or above: run from the project to reach the local stack"
        ) from None
    if parameters is None:
        config_file = Path(DEFAULT_CONFIG_FILE)
        parameters = load_local_config(
            config_file if config_file.is_file() else None, os.environ
        ).parameters
    template = load_template(root / "template.yaml")
    resolver = PlaceholderResolver(parameters=check_parameters(template, parameters))
    [spec] = [s for s in function_specs(template) if s.logical_id == logical_id]
    return {k: str(v) for k, v in resolver.resolve(spec.environment).items()}


SQS_BATCH = 10
SEND_ATTEMPTS = 5
# SendMessageBatch requests in flight at once: one answers in 10-20 ms, so one at a
# time would cap a backfill near 700 messages/s, and 16 near 10,000 — Stripe's own
# list rate in live mode; 32 leave the bridge's side twice that.
SENDERS = 32


@dataclass
class BatchSender:
    """Collects messages and sends them in SendMessageBatch requests of 10, up to
    SENDERS at once; ``flush`` waits for every request. Entries SQS refuses for a
    moment are sent again, up to SEND_ATTEMPTS times, then ``flush`` raises."""

    sqs: Any
    queue_url: str
    waiting: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    sent: int = 0
    _pool: Any = None
    _pending: list[Any] = field(default_factory=list)

    def send(self, body: str, attributes: dict[str, str]) -> str:
        self.waiting.append((body, attributes))
        if len(self.waiting) >= SQS_BATCH:
            self._submit()
        return "batched"

    def flush(self) -> None:
        while self.waiting:
            self._submit()
        pending, self._pending = self._pending, []
        for future in pending:
            self.sent += future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _submit(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="sqs")
        chunk, self.waiting = self.waiting[:SQS_BATCH], self.waiting[SQS_BATCH:]
        self._pending.append(self._pool.submit(self._send_batch, chunk))
        if len(self._pending) >= 4 * SENDERS:
            # keep memory bounded: wait for the oldest requests
            done, self._pending = self._pending[:SENDERS], self._pending[SENDERS:]
            for future in done:
                self.sent += future.result()

    def _send_batch(self, chunk: list[tuple[str, dict[str, str]]]) -> int:
        entries = {
            str(i): {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": {
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            }
            for i, (body, attributes) in enumerate(chunk)
        }
        sent, answer = 0, {}
        for _ in range(SEND_ATTEMPTS):
            answer = self.sqs.send_message_batch(
                QueueUrl=self.queue_url, Entries=list(entries.values())
            )
            for done in answer.get("Successful", []):
                entries.pop(done["Id"], None)
                sent += 1
            if not entries:
                return sent
        failed = (answer.get("Failed") or [{}])[0]
        raise ValueError(
            f"PaymentEventsQueue refused {len(entries)} message(s): "
            f"{failed.get('Code', 'unknown')} (run the same command again: "
            "what was queued is counted once)"
        )
