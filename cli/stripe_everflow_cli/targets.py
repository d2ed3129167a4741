"""Which stack an operator command works on: the local stack (its AWS endpoint, where
resources are named by their logical ids) or a deployed one (found by stack name,
its resources through the stack's outputs, its settings through its parameters).

With neither ``--endpoint`` nor ``--stack``, the local stack running on this machine
is found through the state file `stripe-everflow local` writes while it serves
(``local_state_path``: its URLs and parameters; removed when it stops).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stripe_everflow_cli.errors import CliError, usage

STATE_DIR_VARIABLE = "STRIPE_EVERFLOW_STATE_DIR"
LOCAL_STATE_FILE = "local-stack.json"

# Resources by logical id, and the deployed stack's output naming each.
OUTPUT_OF = {
    "PaymentEventsQueue": "PaymentEventsQueueUrl",
    "PaymentEventsDLQ": "PaymentEventsDLQUrl",
    "PostbackQueue": "PostbackQueueUrl",
    "PostbackDLQ": "PostbackDLQUrl",
    "AttributionTable": "AttributionTableName",
    "LedgerTable": "LedgerTableName",
    "StripeWebhookSecret": "StripeWebhookSecretArn",
    "BridgeSecret": "BridgeSecretArn",
}


@dataclass(frozen=True)
class StackTarget:
    session: Any
    endpoint: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    # The template parameters the stack runs with (deployed: as CloudFormation
    # reports them; local: the local stack's, when it was found or named by endpoint).
    parameters: dict[str, str] = field(default_factory=dict)
    name: str = "local"
    # The local stack's URLs (``url``, ``everflow_url``), when known.
    local_urls: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return bool(self.endpoint)

    def client(self, service: str, *, validate_parameters: bool = True) -> Any:
        """A botocore client of the stack's account. ``validate_parameters=False``
        skips botocore's client-side check of each request's parameters (AWS checks
        them anyway): for requests the bridge builds itself, sent by the thousand."""
        from botocore.config import Config

        config = Config(parameter_validation=validate_parameters)
        if self.endpoint:
            # The local stack answers at once or is not running: fail fast, no backoff.
            config = config.merge(
                Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 1})
            )
            return self.session.client(service, endpoint_url=self.endpoint, config=config)
        return self.session.client(service, config=config)

    def output(self, name: str) -> str:
        """A deployed stack's output; raises CliError naming a missing one."""
        if name not in self.outputs:
            raise usage(
                f"the stack {self.name} has no {name} output",
                "deploy this project's template.yaml to it (sam deploy)",
            )
        return self.outputs[name]

    def resource(self, logical_id: str) -> str:
        """A queue URL, table name or secret id by the template's logical id (a queue
        of the local stack by its name: resolve it with ``queue_url``)."""
        if self.local:
            return logical_id
        return self.output(OUTPUT_OF[logical_id])

    def queue_url(self, sqs: Any, logical_id: str) -> str:
        if self.local:
            return str(sqs.get_queue_url(QueueName=logical_id)["QueueUrl"])
        return self.output(OUTPUT_OF[logical_id])

    def webhook_url(self) -> str | None:
        """Where Stripe posts (the default account's URL), or None when unknown."""
        if self.local:
            url = self.local_urls.get("url")
            return f"{url}/stripe/webhook" if url else None
        return self.outputs.get("WebhookUrl")


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(STATE_DIR_VARIABLE):
        return Path(environ[STATE_DIR_VARIABLE])
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"stripe-everflow-{uid}"


def local_state_path(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / LOCAL_STATE_FILE


def write_local_state(state: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path:
    """Note the running local stack (URLs, parameters, this process); returns the path."""
    path = local_state_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    partial.write_text(json.dumps({**state, "pid": os.getpid()}), encoding="utf-8")
    os.replace(partial, path)
    return path


def clear_local_state(environ: Mapping[str, str] | None = None) -> None:
    """Forget the local stack of this process (another one's note stays)."""
    path = local_state_path(environ)
    state = _read_state(path)
    if state is not None and state.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def read_local_state(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The running local stack's note, or None (none written, or its process is gone)."""
    state = _read_state(local_state_path(environ))
    if state is None or not _alive(state.get("pid")):
        return None
    return state


def _local_target(
    endpoint: str, region: str | None, state: Mapping[str, Any] | None
) -> StackTarget:
    import boto3

    from stripe_everflow_cli.localconfig import DEFAULT_LOCAL_PARAMETERS

    # The local stack's moto endpoint accepts any credentials.
    session = boto3.session.Session(
        region_name=region or "us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106
    )
    known = state if state and state.get("aws_endpoint") == endpoint else {}
    parameters = dict(DEFAULT_LOCAL_PARAMETERS)
    parameters.update({str(k): str(v) for k, v in (known.get("parameters") or {}).items()})
    urls = {k: str(known[k]) for k in ("url", "everflow_url") if known.get(k)}
    return StackTarget(
        session, endpoint.rstrip("/"), parameters=parameters, name="local", local_urls=urls
    )


def resolve_target(endpoint: str | None, stack: str | None, region: str | None) -> StackTarget:
    """The stack named, else the local stack running here.

    Raises CliError when there is none, and lets botocore's errors through (no
    credentials, unknown stack: ``errors.cli_error_of`` names them).
    """
    import boto3

    if endpoint and stack:
        raise usage("give --stack NAME or --endpoint URL, not both")
    if endpoint:
        return _local_target(endpoint, region, read_local_state())
    if not stack:
        state = read_local_state()
        if state and state.get("aws_endpoint"):
            return _local_target(str(state["aws_endpoint"]), region, state)
        raise CliError(
            "no stack named and no local stack running",
            "give --stack NAME (a deployed stack), or start one with: stripe-everflow local",
        )
    session = boto3.session.Session(region_name=region)
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return StackTarget(
        session,
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
        parameters={
            p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])
        },
        name=stack,
    )
