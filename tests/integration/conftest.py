"""Integration fixtures: AWS from moto, resources created from template.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stripe_everflow_cli.localconfig import DEFAULT_LOCAL_PARAMETERS
from stripe_everflow_cli.provision import Provisioned, provision
from stripe_everflow_cli.template import function_specs, load_template
from tests.support import PROJECT_ROOT, bridge_secret


@dataclass
class Aws:
    resources: Provisioned
    sqs: Any
    dynamodb: Any
    secretsmanager: Any
    template: dict[str, Any]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment exactly as the template resolves it."""
        [spec] = [s for s in function_specs(self.template) if s.logical_id == logical_id]
        return {k: str(v) for k, v in self.resources.resolver.resolve(spec.environment).items()}

    def drain(self, queue: str) -> list[dict[str, Any]]:
        """Every message on ``queue`` (consumed), bodies parsed."""
        messages = []
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.resources.queue_urls[queue],
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
            )
            if not answer.get("Messages"):
                return messages
            for message in answer["Messages"]:
                messages.append(message | {"Body": json.loads(message["Body"])})
                self.sqs.delete_message(
                    QueueUrl=self.resources.queue_urls[queue],
                    ReceiptHandle=message["ReceiptHandle"],
                )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        template = load_template(PROJECT_ROOT / "template.yaml")
        clients = {s: boto3.client(s) for s in ("sqs", "dynamodb", "secretsmanager")}
        resources = provision(
            template,
            sqs=clients["sqs"],
            dynamodb=clients["dynamodb"],
            secretsmanager=clients["secretsmanager"],
            secret_string=json.dumps(bridge_secret()),
            parameters=DEFAULT_LOCAL_PARAMETERS,
        )
        yield Aws(
            resources, clients["sqs"], clients["dynamodb"], clients["secretsmanager"], template
        )
