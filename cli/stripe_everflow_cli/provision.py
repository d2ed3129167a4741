"""Create the template's queues, tables and secrets in an AWS API (moto locally).

Used by the local stack and by the tests, so both run against exactly the
resources `sam deploy` would create. Physical names are the logical ids. The one
secret document of the local config is split between the template's two secrets
as a deployed stack keeps it (``domain.secret.split_secret_document``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stripe_everflow.domain.secret import split_secret_document
from stripe_everflow_cli.template import (
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    Resolver,
    parameter_defaults,
    redrive_policy_json,
    resources_of_type,
)

_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
)


@dataclass(frozen=True)
class Provisioned:
    resolver: Resolver
    queue_urls: dict[str, str]
    table_names: dict[str, str]
    secret_arns: dict[str, str]


def _create_queues(template: Mapping[str, Any], sqs: Any, resolver: Resolver) -> dict[str, str]:
    queues = resources_of_type(template, "AWS::SQS::Queue")
    urls = {}
    for logical_id, resource in queues.items():
        props = resource.get("Properties", {})
        attributes = {k: str(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        url = sqs.create_queue(QueueName=logical_id, Attributes=attributes)["QueueUrl"]
        urls[logical_id] = url
        resolver.refs[logical_id] = url
        resolver.attributes[(logical_id, "QueueName")] = logical_id
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{logical_id}"
        )
    # Redrive policies point at other queues: set them once every queue exists.
    for logical_id, resource in queues.items():
        policy = resource.get("Properties", {}).get("RedrivePolicy")
        if policy:
            sqs.set_queue_attributes(
                QueueUrl=urls[logical_id],
                Attributes={"RedrivePolicy": redrive_policy_json(resolver.resolve(policy))},
            )
    return urls


def _create_tables(
    template: Mapping[str, Any], dynamodb: Any, resolver: Resolver
) -> dict[str, str]:
    names = {}
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        arguments: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if index_kind in props:
                arguments[index_kind] = props[index_kind]
        dynamodb.create_table(**arguments)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=logical_id,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        names[logical_id] = logical_id
        resolver.refs[logical_id] = logical_id
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:table/{logical_id}"
        )
    return names


# The template's secrets: the webhook's part of the secret document, and the rest.
TEMPLATE_SECRETS = ("StripeWebhookSecret", "BridgeSecret")


def secret_parts(secret_string: str) -> dict[str, str]:
    """The secret document as the template's secrets hold it: logical id → JSON."""
    parts = split_secret_document(json.loads(secret_string))
    return {
        logical_id: json.dumps(part)
        for logical_id, part in zip(TEMPLATE_SECRETS, parts, strict=True)
    }


def _create_secrets(
    template: Mapping[str, Any], secretsmanager: Any, resolver: Resolver, secret_string: str
) -> dict[str, str]:
    parts = secret_parts(secret_string)
    arns = {}
    for logical_id in resources_of_type(template, "AWS::SecretsManager::Secret"):
        if logical_id not in parts:
            raise ValueError(f"{logical_id}: the local stack does not know which keys it holds")
        arn = secretsmanager.create_secret(Name=logical_id, SecretString=parts[logical_id])["ARN"]
        arns[logical_id] = arn
        resolver.refs[logical_id] = arn
    return arns


def provision(
    template: Mapping[str, Any],
    *,
    sqs: Any,
    dynamodb: Any,
    secretsmanager: Any,
    secret_string: str,
    parameters: Mapping[str, str] | None = None,
) -> Provisioned:
    """Create every queue, table and secret of the template; returns their names.

    ``secret_string`` is the whole secret document (JSON), split between the secrets.

    ``parameters`` override the template's parameter defaults. Resources the local
    stack does not emulate (API, alarms, topics, log groups) resolve to ``local-<id>``.
    """
    values = parameter_defaults(template)
    unknown = set(parameters or {}) - set(values)
    if unknown:
        raise ValueError(f"unknown template parameters: {', '.join(sorted(unknown))}")
    values.update(parameters or {})
    resolver = Resolver(parameters=values)
    queue_urls = _create_queues(template, sqs, resolver)
    table_names = _create_tables(template, dynamodb, resolver)
    secret_arns = _create_secrets(template, secretsmanager, resolver, secret_string)
    for logical_id in template["Resources"]:
        resolver.refs.setdefault(logical_id, f"local-{logical_id}")
    return Provisioned(resolver, queue_urls, table_names, secret_arns)
