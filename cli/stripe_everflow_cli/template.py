"""Reading template.yaml: the one description of the pipeline's resources.

The local stack and the tests build their queues, tables, secret and function
environments from it, so nothing can drift from what `sam deploy` creates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, …)."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


@dataclass
class Resolver:
    """Resolves the intrinsic functions the local stack needs, from known values."""

    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def _pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
            "AWS::StackName": "stripe-everflow-local",
        }

    def ref(self, name: str) -> str:
        for table in (self.parameters, self.refs, self._pseudo()):
            if name in table:
                return table[name]
        raise KeyError(f"!Ref {name} has no local value")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument
                return self.attributes[(logical_id, attribute)]
            if key == "Fn::Sub" and isinstance(argument, str):
                return self._substitute(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(self.resolve(item)) for item in items)
        return {key: self.resolve(item) for key, item in value.items()}

    def _substitute(self, text: str) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                out.append(self.attributes[(logical_id, attribute)])
            else:
                out.append(self.ref(name))
        out.append(rest)
        return "".join(out)


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
    }


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == kind
    }


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    queue_logical_id: str
    batch_size: int
    reports_batch_item_failures: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout: int
    environment: dict[str, Any]
    routes: tuple[HttpRoute, ...]
    sqs_sources: tuple[SqsSource, ...]


def function_specs(template: Mapping[str, Any]) -> list[FunctionSpec]:
    """Every AWS::Serverless::Function with Globals merged in (environment unresolved)."""
    globals_ = template.get("Globals", {}).get("Function", {})
    global_env = globals_.get("Environment", {}).get("Variables", {})
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = resource["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        routes, sources = [], []
        for event in props.get("Events", {}).values():
            event_props = event.get("Properties", {})
            if event["Type"] == "HttpApi":
                routes.append(HttpRoute(event_props["Method"].upper(), event_props["Path"]))
            elif event["Type"] == "SQS":
                queue = event_props["Queue"]["Fn::GetAtt"][0]
                sources.append(
                    SqsSource(
                        queue_logical_id=queue,
                        batch_size=int(event_props.get("BatchSize", 10)),
                        reports_batch_item_failures="ReportBatchItemFailures"
                        in event_props.get("FunctionResponseTypes", []),
                    )
                )
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=props["CodeUri"],
                handler=props.get("Handler", globals_.get("Handler", "app.lambda_handler")),
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                environment=env,
                routes=tuple(routes),
                sqs_sources=tuple(sources),
            )
        )
    return specs


def redrive_policy_json(policy: Mapping[str, Any]) -> str:
    return json.dumps(
        {
            "deadLetterTargetArn": policy["deadLetterTargetArn"],
            "maxReceiveCount": str(policy["maxReceiveCount"]),
        }
    )
