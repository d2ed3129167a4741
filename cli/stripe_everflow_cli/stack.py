"""The local stack: the whole pipeline on one machine, no AWS account, no Docker.

An embedded moto server stands in for SQS, DynamoDB and Secrets Manager; the
queues, tables and secret are created from template.yaml; every function of the
template runs its real handler in a worker process with its template environment;
HTTP API routes are served on 127.0.0.1; SQS event sources are emulated by pollers,
and ``Schedule`` events (SyncClicksFunction's EverflowSyncSchedule) by schedule
pollers: enabled as the template's conditions say, run at their rate, or at once with
``run_schedule``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from stripe_everflow_cli.everflow_standin import EverflowStandIn
from stripe_everflow_cli.gateway import LocalHttpApi, Route
from stripe_everflow_cli.localconfig import LocalConfig
from stripe_everflow_cli.pollers import SchedulePoller, SqsPoller, schedule_seconds
from stripe_everflow_cli.preflight import (
    PlaceholderResolver,
    check_function_settings,
    check_parameters,
)
from stripe_everflow_cli.provision import Provisioned, provision
from stripe_everflow_cli.runtime import FunctionWorker
from stripe_everflow_cli.stripe_standin import StripeStandIn
from stripe_everflow_cli.template import LOCAL_REGION, function_specs, load_template

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# Where the embedded servers will listen, before they do (for the settings check).
_UNSTARTED_URL = "http://127.0.0.1:0"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory holding template.yaml, from ``start`` (default: cwd) upward."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    raise FileNotFoundError("template.yaml not found here or above: run from the project")


@dataclass
class LocalStack:
    project_root: Path
    config: LocalConfig
    port: int = 0
    aws_port: int = 0
    everflow_url: str | None = None
    # Stripe's API for the functions (STRIPE_API_BASE); None: a built-in stand-in
    stripe_url: str | None = None
    log_path: Path | None = None
    consumers_enabled: bool = True
    workers: dict[str, FunctionWorker] = field(default_factory=dict)
    pollers: list[SqsPoller] = field(default_factory=list)
    schedules: dict[str, SchedulePoller] = field(default_factory=dict)

    def check(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The template and the checked parameter values; raises LocalSettingsError
        (one line, naming the bad key) before anything is started."""
        template = load_template(self.project_root / "template.yaml")
        parameters = check_parameters(template, self.config.parameters)
        placeholders = PlaceholderResolver(parameters=parameters)
        check_function_settings(
            template,
            {
                spec.logical_id: function_environment(
                    spec.logical_id,
                    {k: str(v) for k, v in placeholders.resolve(spec.environment).items()},
                    aws_endpoint=_UNSTARTED_URL,
                    everflow_url=self.everflow_url or _UNSTARTED_URL,
                )
                for spec in function_specs(template)
            },
        )
        return template, parameters

    def start(self) -> None:
        """Check the settings, then start everything; raises LocalSettingsError
        (nothing started) for a bad parameter, setting or secret."""
        template, parameters = self.check()
        try:
            self._start(template, parameters)
        except BaseException:
            self.stop()
            raise

    def _start(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        # moto's HTTP server logs every request through werkzeug; keep the terminal readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.everflow: EverflowStandIn | None = None
        if not self.everflow_url:
            self.everflow = EverflowStandIn().start()
            self.everflow_url = self.everflow.url
        self.stripe: StripeStandIn | None = None
        if not self.stripe_url:
            self.stripe = StripeStandIn().start()
            self.stripe_url = self.stripe.url
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.aws_endpoint = f"http://{host}:{port}"
        self._session = boto3.session.Session(region_name=LOCAL_REGION, **_boto_credentials())
        self.sqs = self._aws_client("sqs")
        self.dynamodb = self._aws_client("dynamodb")
        self.resources: Provisioned = provision(
            template,
            sqs=self.sqs,
            dynamodb=self.dynamodb,
            secretsmanager=self._aws_client("secretsmanager"),
            secret_string=self.config.secret_json,
            parameters=parameters,
        )
        routes = []
        for spec in function_specs(template):
            environment = {
                k: str(v) for k, v in self.resources.resolver.resolve(spec.environment).items()
            }
            worker = FunctionWorker(
                name=spec.logical_id,
                code_dir=self.project_root / spec.code_uri,
                handler=spec.handler,
                environment=function_environment(
                    spec.logical_id,
                    environment,
                    aws_endpoint=self.aws_endpoint,
                    everflow_url=self.everflow_url,
                    stripe_url=self.stripe_url,
                ),
                timeout=spec.timeout,
                log_path=self.log_path,
                extra_sys_path=[self.project_root / "layers" / "common" / "python"],
            )
            self.workers[spec.logical_id] = worker
            routes += [Route(r.method, r.path, worker) for r in spec.routes]
            for source in spec.sqs_sources:
                self.pollers.append(
                    SqsPoller(
                        sqs=self._aws_client("sqs"),
                        queue_url=self.resources.queue_urls[source.queue_logical_id],
                        queue_name=source.queue_logical_id,
                        worker=worker,
                        batch_size=source.batch_size,
                        reports_batch_item_failures=source.reports_batch_item_failures,
                    )
                )
        for function_id, expression in scheduled_functions(template, parameters).items():
            self.schedules[function_id] = SchedulePoller(
                function_id, self.workers[function_id], schedule_seconds(expression or "")
            )
        self.http = LocalHttpApi(routes, self.port, {("GET", "/health"): self.health})
        self.routes = routes
        self._http_thread = threading.Thread(
            target=self.http.server.serve_forever, name="local-http-api", daemon=True
        )
        self._http_thread.start()
        for poller in self._pollers():
            if not self.consumers_enabled:
                poller.pause()
            poller.start()

    def pause_consumers(self) -> None:
        """Leave messages on the queues (the SQS event sources disabled), and the
        schedules idle."""
        for poller in self._pollers():
            poller.pause()

    def resume_consumers(self) -> None:
        for poller in self._pollers():
            poller.resume()

    def _pollers(self) -> list[SqsPoller | SchedulePoller]:
        return [*self.pollers, *self.schedules.values()]

    def run_schedule(self, function_id: str) -> Any:
        """Run a scheduled function now, as its rule would; returns its result.
        Raises KeyError for a function without a schedule, InvocationError when the
        run failed."""
        return self.schedules[function_id].fire()

    def wait_until_drained(self, queues: tuple[str, ...], timeout: float = 30.0) -> bool:
        """Wait until no message is visible or in flight on ``queues``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            depths = self.queue_depths()
            if all(depths[q]["visible"] == 0 and depths[q]["in_flight"] == 0 for q in queues):
                return True
            time.sleep(0.2)
        return False

    def _aws_client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.aws_endpoint)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http.port}"

    def queue_depths(self) -> dict[str, dict[str, int]]:
        depths = {}
        for name, url in self.resources.queue_urls.items():
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depths[name] = {
                "visible": int(attributes["ApproximateNumberOfMessages"]),
                "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            }
        return depths

    def health(self) -> tuple[int, dict[str, Any]]:
        return 200, {
            "status": "ok",
            "functions": sorted(self.workers),
            "routes": sorted(route.route_key for route in self.routes),
            "queues": self.queue_depths(),
        }

    def stop(self) -> None:
        """Stop what was started (all of it, or what a failed start got to)."""
        http = getattr(self, "http", None)
        if http is not None:
            http.server.shutdown()
            http.server.server_close()
        for poller in self.pollers:
            poller.stop()
        for schedule in self.schedules.values():
            schedule.stop()
        for worker in self.workers.values():
            worker.stop()
        moto = getattr(self, "_moto", None)
        if moto is not None:
            moto.stop()
        everflow = getattr(self, "everflow", None)
        if everflow is not None:
            everflow.stop()
        stripe = getattr(self, "stripe", None)
        if stripe is not None:
            stripe.stop()


def _condition_value(value: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """The value of the intrinsic functions a template condition uses (Ref, Condition,
    Fn::Equals, Not, And, Or, Join, Split, If)."""
    if isinstance(value, list):
        return [_condition_value(v, template, parameters) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    [(key, argument)] = value.items()
    if key == "Ref":
        return parameters.get(argument, "")
    if key in ("Condition", "Fn::Condition"):
        return bool(
            _condition_value(template.get("Conditions", {}).get(argument), template, parameters)
        )
    arguments = _condition_value(argument, template, parameters)
    if key == "Fn::Equals":
        return str(arguments[0]) == str(arguments[1])
    if key == "Fn::Not":
        return not arguments[0]
    if key == "Fn::And":
        return all(arguments)
    if key == "Fn::Or":
        return any(arguments)
    if key == "Fn::Join":
        return str(arguments[0]).join(str(part) for part in arguments[1])
    if key == "Fn::Split":
        return str(arguments[1]).split(str(arguments[0]))
    if key == "Fn::If":
        condition = _condition_value({"Condition": argument[0]}, template, parameters)
        return arguments[1] if condition else arguments[2]
    return value


def scheduled_functions(
    template: dict[str, Any], parameters: dict[str, str]
) -> dict[str, str | None]:
    """Each function with a ``Schedule`` event: its expression when its rule is
    enabled, None when disabled (it then runs only when asked)."""
    found: dict[str, str | None] = {}
    for function_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = resource.get("Properties", {}).get("Events", {}) or {}
        for event in events.values():
            if event.get("Type") != "Schedule":
                continue
            props = event.get("Properties", {})
            expression = _condition_value(props.get("Schedule"), template, parameters)
            state = _condition_value(props.get("State", "ENABLED"), template, parameters)
            enabled = props.get("Enabled", True) is not False and state != "DISABLED"
            found[function_id] = str(expression) if enabled else None
    return found


def function_environment(
    name: str,
    template_env: dict[str, str],
    *,
    aws_endpoint: str,
    everflow_url: str | None,
    stripe_url: str | None = None,
) -> dict[str, str]:
    """A function's environment on the local stack: the template's, resolved, plus the
    local AWS endpoint and (when set) Everflow's URL for postbacks and the Network API."""
    environment = {
        **template_env,
        **LOCAL_CREDENTIALS,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    }
    if everflow_url:
        # Postbacks and Network API calls both go to the stand-in (or the given URL).
        environment["EVERFLOW_POSTBACK_BASE_URL"] = everflow_url
        environment["EVERFLOW_API_BASE_URL"] = everflow_url
    if stripe_url:
        # The matcher's Stripe reads (customers, invoice payments, promotion codes).
        environment["STRIPE_API_BASE"] = stripe_url
    return environment


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
