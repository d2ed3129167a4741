"""Which stack an operator command works on: the local stack (its AWS endpoint, where
resources are named by their logical ids) or a deployed one (found by stack name,
its resources through the stack's outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StackTarget:
    session: Any
    endpoint: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)

    def output(self, name: str) -> str:
        """A deployed stack's output; raises ValueError naming a missing one."""
        if name not in self.outputs:
            raise ValueError(f"the stack has no {name} output")
        return self.outputs[name]


def resolve_target(endpoint: str | None, stack: str | None, region: str | None) -> StackTarget:
    """Raises ValueError when neither (or the stack's outputs cannot be read)."""
    import boto3

    if endpoint:
        # The local stack's moto endpoint accepts any credentials.
        session = boto3.session.Session(
            region_name=region or "us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106
        )
        return StackTarget(session, endpoint)
    if not stack:
        raise ValueError("give --stack NAME (a deployed stack) or --endpoint URL (the local stack)")
    session = boto3.session.Session(region_name=region)
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return StackTarget(
        session, outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    )
