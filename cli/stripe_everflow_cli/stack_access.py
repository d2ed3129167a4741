"""What an operator command that feeds the pipeline needs of a stack, local or
deployed: the merged bridge secret, AttributionTable and PaymentEventsQueue, through
the same adapters the functions use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stripe_everflow_cli.targets import StackTarget, resolve_target

# The local stack names its resources by their logical ids.
LOCAL_SECRETS = ("StripeWebhookSecret", "BridgeSecret")


@dataclass(frozen=True)
class StackAccess:
    target: StackTarget

    @property
    def local(self) -> bool:
        return bool(self.target.endpoint)

    def bridge_secret(self) -> Any:
        """The two secrets merged and parsed (``domain.secret``); raises ValueError
        naming what is wrong."""
        from botocore.exceptions import BotoCoreError, ClientError

        from stripe_everflow.adapters.secrets import secret_reader
        from stripe_everflow.domain.errors import SecretUnavailableError
        from stripe_everflow.domain.secret import parse_bridge_secret

        ids = (
            LOCAL_SECRETS
            if self.local
            else (
                self.target.output("StripeWebhookSecretArn"),
                self.target.output("BridgeSecretArn"),
            )
        )
        try:
            text = secret_reader(",".join(ids), self.target.client("secretsmanager"))()
            return parse_bridge_secret(text)
        except SecretUnavailableError as error:
            raise ValueError(f"the bridge secret: {error}") from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise ValueError(f"the bridge secret cannot be read: {code}") from None
        except BotoCoreError as error:
            raise ValueError(f"the bridge secret cannot be read: {error}") from None

    def attribution_store(self) -> Any:
        from stripe_everflow.adapters.dynamodb.store import AttributionStore

        table = "AttributionTable" if self.local else self.target.output("AttributionTableName")
        return AttributionStore(table, self.target.client("dynamodb"))

    def payment_events(self) -> Any:
        from stripe_everflow.adapters.sqs import SqsSender

        sqs = self.target.client("sqs")
        if self.local:
            url = sqs.get_queue_url(QueueName="PaymentEventsQueue")["QueueUrl"]
        else:
            url = self.target.output("PaymentEventsQueueUrl")
        return SqsSender(url, sqs)


def stack_access(endpoint: str | None, stack: str | None, region: str | None) -> StackAccess:
    """Raises ValueError when no stack is named or its outputs cannot be read."""
    return StackAccess(resolve_target(endpoint, stack, region))
