"""AWS cost per million Stripe events, from the requests a realistic stream makes.

What runs: a mixed stream of signed Stripe events (``STREAM_MIX`` below, built from the
payloads in ``events/``) through the three functions of the pipeline as Lambda would
call them — StripeWebhookFunction once per delivery (an HTTP API event), then
MatchPaymentFunction and PostEverflowFunction on SQS batches of 10 taken from their
queues (what the event source mappings deliver under load; a record reported in
``batchItemFailures`` is delivered again in a later batch). Each function is its
``app.py`` as shipped: ``Dependencies.from_environ`` with the template's environment,
called through ``lambda_handler`` (Powertools logger, metrics and idempotency
included). AWS is a moto server in a child process, its queues, tables and secret
created from template.yaml; Everflow is the stand-in, answering after
``EVERFLOW_LATENCY`` seconds. Clicks (POST /clicks) and the first payments of the
customers who renew in the stream are played before counting starts.

What is counted, not estimated: every AWS request the functions make, per function,
service and operation (a botocore ``before-parameter-build`` hook on the functions'
botocore session, so nothing in the code is patched); SQS billed requests in 64 KB
chunks of what was sent and received; DynamoDB request units from the items' sizes
(DynamoDB's item-size rules; a write costs the larger of the item before and after,
at least 1 unit per KB; a read 1 unit per 4 KB rounded up, half for eventually
consistent reads; transactions twice — sizes are read back from the table beside the
function, in a first pass whose timings are not used); the bytes each function logs
(log lines and EMF metric blobs, at the template's log level); the Everflow calls;
the wall and CPU time of every invocation (second pass).

What is assumed (each stated in the row it feeds): the price table below (us-east-1,
arm64, no free tier, dated); Lambda's duration is this machine's wall time (moto and
Everflow local), which is not Lambda's — a second figure scales the CPU part to the
share of a vCPU the template's MemorySize gets (1,769 MB = 1 vCPU); Lambda platform
lines (START/END/REPORT with the X-Ray line) and the HTTP API access-log line have
their documented shapes; X-Ray records the first request each second and 5 % of the
rest; each function instance reads the secret once per 300 s; the event source
mapping deletes each batch with one DeleteMessageBatch. Sustained rate for the
per-instance items: ``DESIGN_RATE`` events/s.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any
from urllib.parse import urlencode

from benchlib import (
    FUNCTION_LOG,
    PROJECT_ROOT,
    SECRET_JSON,
    Row,
    function_log,
    load_function_app,
    median,
    signed_webhook_event,
    start_everflow_standin,
    start_moto_server,
    stop_process,
)

EVENTS_DIR = PROJECT_ROOT / "events" / "stripe" / "basil"
DESIGN_RATE = 1000  # Stripe events per second, sustained (docs/scaling.md)
EVERFLOW_LATENCY = 0.2  # seconds; the posting benchmark's assumption too
MIXES_PER_PASS = 2  # each mix is 100 events
BATCH_SIZE = 10  # the template's BatchSize for both queues
SQS_CHUNK = 64 * 1024
VCPU_MB = 1769  # Lambda: 1,769 MB of memory get one vCPU
SECRET_CACHE_SECONDS = 300
XRAY_RESERVOIR_PER_SECOND = 1
XRAY_RATE = 0.05
EVERFLOW_API_LIMIT = 30  # requests/s per network (developers.everflow.io/user-guide/rate-limiting)

FUNCTIONS = {  # key: (template logical id, app folder)
    "webhook": ("StripeWebhookFunction", "stripe_webhook"),
    "match": ("MatchPaymentFunction", "match_payment"),
    "post": ("PostEverflowFunction", "post_everflow"),
    "clicks": ("ClickIntakeFunction", "click_intake"),
}
COUNTED = ("webhook", "match", "post")
QUEUE_CONSUMERS = {"PaymentEventsQueue": "match", "PostbackQueue": "post"}


# ---------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Price:
    usd: float
    per: float
    unit: str
    source: str

    def of(self, quantity: float) -> float:
        return quantity / self.per * self.usd

    def label(self) -> str:
        per = {1.0: "", 1e4: "10k ", 1e6: "1M "}[self.per]
        usd = f"{self.usd:.10f}".rstrip("0")
        usd += "0" * max(0, 2 - len(usd.partition(".")[2]))
        return f"${usd}/{per}{self.unit}"


PRICES_AS_OF = "2026-12-02"
PRICES_NOTE = f"prices us-east-1, arm64, no free tier, as of {PRICES_AS_OF} (docs/scaling.md)"
PRICES = {
    "apigw": Price(1.00, 1e6, "HTTP API requests", "https://aws.amazon.com/api-gateway/pricing/"),
    "lambda_request": Price(0.20, 1e6, "requests", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_s": Price(0.0000133334, 1, "GB-s", "https://aws.amazon.com/lambda/pricing/"),
    "wru": Price(0.625, 1e6, "WRU", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "rru": Price(0.125, 1e6, "RRU", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "sqs": Price(0.40, 1e6, "requests", "https://aws.amazon.com/sqs/pricing/"),
    "secrets": Price(0.05, 1e4, "calls", "https://aws.amazon.com/secrets-manager/pricing/"),
    "logs": Price(0.50, 1, "GB ingested", "https://aws.amazon.com/cloudwatch/pricing/"),
    "xray": Price(5.00, 1e6, "traces", "https://aws.amazon.com/xray/pricing/"),
    "transfer": Price(0.09, 1, "GB out", "https://aws.amazon.com/ec2/pricing/on-demand/"),
}
# Monthly, whatever the traffic: not part of the per-event figure.
MONTHLY = {"secret": 0.40, "custom metric": 0.30, "alarm": 0.10}


# ---------------------------------------------------------------------- the stream

# Each mix is 100 events: 6 new subscriptions through Checkout (charge, intent,
# invoice_payment, invoice, session, customer.updated), 12 renewals (charge, intent,
# invoice_payment, invoice), 3 one-off Checkout payments (charge, intent, session), 1
# one-off whose click is not known (parked), 1 partial refund (charge.refunded,
# refund.created), 1 dispute opened, 1 Stripe retry of an invoice.paid.
STREAM_MIX = "6 new subscriptions, 12 renewals, 4 one-offs (1 parked), 1 refund, 1 dispute, 1 retry"
NEW_SUBSCRIPTIONS, RENEWALS, ONE_OFFS = 6, 12, 3


def _email(tag: str) -> str:
    return f"{tag.lower()}@example.com"


def _customer(tag: str) -> str:
    return f"cus_Qb{tag}Jenny01"


def _fixture(
    name: str, tag: str, suffix: str, replace: Mapping[str, str] | None = None, **changes: Any
) -> dict[str, Any]:
    """The event ``events/stripe/basil/<name>.json`` made one customer's own.

    Every Stripe id of the fixture scenario carries ``Qbridge``: replacing it with the
    customer's tag keeps invoices, intents, charges and customers consistent. Only
    values change: a field the fixture lacks raises, as in scripts/build_events.py.
    """
    raw = (EVENTS_DIR / f"{name}.json").read_text("utf-8")
    for old, new in (replace or {}).items():
        raw = raw.replace(old, new)
    raw = (
        raw.replace("Qbridge", f"Qb{tag}")
        .replace("jenny.rosen@example.com", _email(tag))
        .replace("ef_tx_9f1c2a7b", f"ef_tx_{tag}_checkout")
        .replace("ef_tx_meta_5d2e", f"ef_tx_{tag}_meta")
    )
    event: dict[str, Any] = json.loads(raw)
    event["id"] = f"evt_1Qb{tag}{suffix}"
    data_object = event["data"]["object"]
    for key, value in changes.items():
        if key not in data_object:
            raise KeyError(f"{name}.json has no field {key!r}")
        data_object[key] = value
    return event


def _first_payment(tag: str) -> list[dict[str, Any]]:
    """What Stripe sends for a Checkout subscription's first invoice (basil)."""
    return [
        _fixture("charge.succeeded", tag, "ChargeFirst"),
        _fixture(
            "payment_intent.succeeded",
            tag,
            "IntentFirst",
            {"OneOff01": "First01"},
            customer=_customer(tag),
            amount=4900,
            amount_received=4900,
            currency="usd",
        ),
        _fixture("invoice_payment.paid.first", tag, "InvoicePaymentFirst"),
        _fixture("invoice.paid.first", tag, "InvoiceFirst"),
        _fixture("checkout.session.completed", tag, "Session"),
        _fixture("customer.updated", tag, "CustomerUpdated"),
    ]


def _renewal(tag: str) -> list[dict[str, Any]]:
    return [
        _fixture("charge.succeeded", tag, "ChargeRenew", {"First01": "Renew01"}),
        _fixture(
            "payment_intent.succeeded",
            tag,
            "IntentRenew",
            {"OneOff01": "Renew01"},
            customer=_customer(tag),
            amount=4900,
            amount_received=4900,
            currency="usd",
        ),
        _fixture("invoice_payment.paid.renewal", tag, "InvoicePaymentRenew"),
        _fixture("invoice.paid.renewal", tag, "InvoiceRenew"),
    ]


def _one_off(tag: str) -> list[dict[str, Any]]:
    """A one-off Checkout payment (JPY, no Stripe customer)."""
    return [
        _fixture(
            "charge.succeeded",
            tag,
            "ChargeOneOff",
            {"First01": "OneOff01"},
            customer=None,
            amount=5000,
            amount_captured=5000,
            currency="jpy",
        ),
        _fixture("payment_intent.succeeded", tag, "IntentOneOff"),
        _fixture("checkout.session.completed.payment", tag, "SessionOneOff"),
    ]


@dataclass
class Plan:
    """One pass: clicks and earlier payments to play first, then the counted stream."""

    clicks: list[dict[str, Any]] = field(default_factory=list)
    earlier: list[dict[str, Any]] = field(default_factory=list)
    stream: list[dict[str, Any]] = field(default_factory=list)


def build_plan(prefix: str, mixes: int = MIXES_PER_PASS) -> Plan:
    plan = Plan()
    for mix in range(mixes):
        tag = f"{prefix}M{mix}"
        new = [f"{tag}N{n}" for n in range(NEW_SUBSCRIPTIONS)]
        renewing = [f"{tag}R{n:02d}" for n in range(RENEWALS)]
        one_off = [f"{tag}O{n}" for n in range(ONE_OFFS)]
        parked = f"{tag}P0"
        for t in new + renewing + one_off:
            plan.clicks.append(
                {
                    "email": _email(t),
                    "transaction_id": f"ef_tx_{t}",
                    "offer_id": 12,
                    "affiliate_id": 7,
                }
            )
        for t in renewing:
            plan.earlier += _first_payment(t)
        # Payments interleave as customers pay; each payment's events stay together.
        lanes = [
            [_first_payment(t) for t in new],
            [_renewal(t) for t in renewing],
            [_one_off(t) for t in [*one_off, parked]],
        ]
        interleaved: list[dict[str, Any]] = []
        for i in range(max(len(lane) for lane in lanes)):
            for lane in lanes:
                if i < len(lane):
                    interleaved += lane[i]
        retried = next(e for e in interleaved if e["id"] == f"evt_1Qb{new[0]}InvoiceFirst")
        refunded = renewing[0]
        interleaved += [
            retried,
            _fixture("charge.refunded", refunded, "ChargeRefunded"),
            _fixture("refund.created", refunded, "RefundCreated"),
            _fixture("charge.dispute.created", new[1], "DisputeCreated"),
        ]
        plan.stream += interleaved
    return plan


# ---------------------------------------------------------------------- DynamoDB sizes


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def _value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one AttributeValue, by DynamoDB's item-size rules."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(_number_size(n) for n in v)
    if kind == "BS":
        return sum(len(b) for b in v)
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(x) + 1 for k, x in v.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READ_OPERATIONS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


# ---------------------------------------------------------------------- meters


def _message_bytes(body: str, attributes: Mapping[str, Any]) -> int:
    size = len(body.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        size += len(str(value.get("StringValue", "")).encode())
    return size


class AwsMeter:
    """Counts the functions' AWS requests (and, when ``sizes`` is on, DynamoDB units).

    Registered on the botocore session the functions' clients come from, before any
    client is made: each client copies the session's handlers when it is created.
    """

    def __init__(self, side_dynamodb: Any) -> None:
        self._side = side_dynamodb
        self._lock = threading.Lock()
        self._key_schemas: dict[str, list[str]] = {}
        self.active = False
        self.sizes = False
        self.label = ""
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.sqs_billed: Counter[str] = Counter()
        self.wru: defaultdict[tuple[str, str], float] = defaultdict(float)  # (function, table)
        self.rru: defaultdict[tuple[str, str], float] = defaultdict(float)

    # -- hooks

    def before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        service, operation = model.service_model.service_name, model.name
        with self._lock:
            self.requests[(self.label, service, operation)] += 1
        if service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):
            entries = params.get("Entries") or [params]
            size = sum(
                _message_bytes(e.get("MessageBody", ""), e.get("MessageAttributes", {}))
                for e in entries
            )
            with self._lock:
                self.sqs_billed[self.label] += max(1, math.ceil(size / SQS_CHUNK))
        if service == "dynamodb" and self.sizes:
            context["bench_label"] = self.label
            context["bench_params"] = params
            if operation in WRITE_OPERATIONS:
                context["bench_writes"] = [
                    (table, key, factor, self._size_now(table, key))
                    for table, key, factor in self._write_targets(operation, params)
                ]

    def after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if "bench_params" not in context:
            return
        label, params = context.pop("bench_label"), context.pop("bench_params")
        operation = model.name
        writes = context.pop("bench_writes", [])
        for table, key, factor, before in writes:
            after = self._size_now(table, key)
            with self._lock:
                self.wru[(label, table)] += factor * max(1, math.ceil(max(before, after) / 1024))
        if writes or operation not in READ_OPERATIONS:
            return
        for table, units in self._read_units(operation, params, parsed):
            with self._lock:
                self.rru[(label, table)] += units

    # -- DynamoDB arithmetic

    def _key_of(self, table: str, item: Mapping[str, Any]) -> dict[str, Any]:
        if table not in self._key_schemas:
            schema = self._side.describe_table(TableName=table)["Table"]["KeySchema"]
            self._key_schemas[table] = [k["AttributeName"] for k in schema]
        return {name: item[name] for name in self._key_schemas[table]}

    def _size_now(self, table: str, key: Mapping[str, Any]) -> int:
        answer = self._side.get_item(TableName=table, Key=dict(key), ConsistentRead=True)
        return item_size(answer.get("Item"))

    def _write_targets(
        self, operation: str, params: Mapping[str, Any]
    ) -> list[tuple[str, dict[str, Any], int]]:
        if operation == "PutItem":
            return [(params["TableName"], self._key_of(params["TableName"], params["Item"]), 1)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], dict(params["Key"]), 1)]
        targets = []
        if operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        key = self._key_of(table, request["PutRequest"]["Item"])
                    else:
                        key = dict(request["DeleteRequest"]["Key"])
                    targets.append((table, key, 1))
        if operation == "TransactWriteItems":
            # Every action of a transaction, condition checks included, costs 2 units/KB.
            for action in params["TransactItems"]:
                ((kind, spec),) = action.items()
                table = spec["TableName"]
                key = self._key_of(table, spec["Item"]) if kind == "Put" else dict(spec["Key"])
                targets.append((table, key, 2))
        return targets

    @staticmethod
    def _read_units(
        operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]
    ) -> list[tuple[str, float]]:
        consistent = bool(params.get("ConsistentRead"))
        if operation == "GetItem":
            return [(params["TableName"], _read_units(item_size(parsed.get("Item")), consistent))]
        if operation in ("Query", "Scan"):
            total = sum(item_size(item) for item in parsed.get("Items", []))
            return [(params["TableName"], _read_units(total, consistent))]
        units = []
        if operation == "BatchGetItem":
            for table, spec in params["RequestItems"].items():
                strong = bool(spec.get("ConsistentRead"))
                found = parsed.get("Responses", {}).get(table, [])
                units += [(table, _read_units(item_size(item), strong)) for item in found]
                units += [(table, _read_units(0, strong))] * (len(spec["Keys"]) - len(found))
        if operation == "TransactGetItems":
            answers = parsed.get("Responses", [])
            for action, answer in zip(params["TransactItems"], answers, strict=True):
                size = item_size(answer.get("Item"))
                units.append((action["Get"]["TableName"], 2 * _read_units(size, True)))
        return units


class LogMeter(io.TextIOBase):
    """The functions' stdout: every line goes to the log file; while ``active``, the
    bytes and lines are counted for the function named by ``label``, and the EMF
    metrics it defines are collected."""

    def __init__(self, sink: IO[str]) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._partial: dict[str, str] = {}
        self.active = False
        self.label = ""
        self.reset()

    def reset(self) -> None:
        self.bytes: Counter[str] = Counter()
        self.lines: Counter[str] = Counter()
        self.metrics: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._sink.write(text)
            if self.active:
                self.bytes[self.label] += len(text.encode())
                self.lines[self.label] += text.count("\n")
                buffered = self._partial.get(self.label, "") + text
                *complete, self._partial[self.label] = buffered.split("\n")
                for line in complete:
                    self._collect_metrics(line)
        return len(text)

    def flush(self) -> None:
        self._sink.flush()

    def _collect_metrics(self, line: str) -> None:
        if '"_aws"' not in line:
            return
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = tuple((d, str(blob.get(d))) for d in dimension_set)
                for metric in directive["Metrics"]:
                    self.metrics.add((directive["Namespace"], metric["Name"], dimensions))


# ---------------------------------------------------------------------- the pipeline


def _point(handler: Any, stream: Any) -> Any:
    """Point a logging handler at ``stream``; returns the one it had.

    Not ``setStream``: that flushes the old stream, which an earlier benchmark section
    may have closed (warm_cpu sends the webhook's logs to /dev/null)."""
    with handler.lock:
        previous, handler.stream = handler.stream, stream
    return previous


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class Measurement:
    """What one counted pass did."""

    events: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    sqs_sent: Counter[str] = field(default_factory=Counter)
    esm_received: Counter[str] = field(default_factory=Counter)  # billed, per queue
    esm_deletes: Counter[str] = field(default_factory=Counter)
    wru: Mapping[tuple[str, str], float] = field(default_factory=dict)
    rru: Mapping[tuple[str, str], float] = field(default_factory=dict)
    log_bytes: Counter[str] = field(default_factory=Counter)
    log_lines: Counter[str] = field(default_factory=Counter)
    metrics: set[tuple[str, str, tuple[tuple[str, str], ...]]] = field(default_factory=set)
    timings: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    response_bytes: list[int] = field(default_factory=list)
    everflow: list[dict[str, Any]] = field(default_factory=list)


TRACE_ID = "Root=1-6939f3a1-5b0c8e2d9a4f6b7c8d9e0f1a;Parent=53995c3f42cd8ad8;Sampled=1"
STACK = "stripe-everflow-bridge"


class Pipeline:
    """The functions in this process, AWS on a moto server, Everflow on the stand-in."""

    def __init__(self, endpoint: str, everflow_url: str, log: LogMeter) -> None:
        import boto3

        from stripe_everflow.adapters import aws as aws_adapter
        from stripe_everflow_cli.provision import provision
        from stripe_everflow_cli.template import function_specs, load_template

        self.log = log
        self.everflow_url = everflow_url
        # The bench's own clients: another botocore session, so the meter never sees them.
        self.sqs = boto3.client("sqs", endpoint_url=endpoint)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        secret = json.loads(SECRET_JSON) | {"everflow_api_key": "bench-everflow-api-key"}
        self.template = load_template(PROJECT_ROOT / "template.yaml")
        self.resources = provision(
            self.template,
            sqs=self.sqs,
            dynamodb=self.dynamodb,
            secretsmanager=boto3.client("secretsmanager", endpoint_url=endpoint),
            secret_string=json.dumps(secret),
            parameters={
                "EverflowTrackingDomain": "www.example-track.com",
                "EverflowNetworkId": "1",
                "EverflowOfferId": "1",
                "EverflowEventId": "2",
            },
        )
        specs = {s.logical_id: s for s in function_specs(self.template)}
        self.aws = AwsMeter(self.dynamodb)
        self._session = aws_adapter._session()
        self._session.register("before-parameter-build", self.aws.before, unique_id="bench-cost-1")
        self._session.register("after-call", self.aws.after, unique_id="bench-cost-2")

        self.apps: dict[str, ModuleType] = {}
        self.contexts: dict[str, Callable[[], LambdaContext]] = {}
        self.memory: dict[str, int] = {}
        self._restore: list[tuple[ModuleType, Any, Any, Any]] = []
        for key, (logical_id, folder) in FUNCTIONS.items():
            env = {
                k: str(v)
                for k, v in self.resources.resolver.resolve(specs[logical_id].environment).items()
            }
            if key == "post":
                env |= {
                    "EVERFLOW_POSTBACK_BASE_URL": everflow_url,
                    "EVERFLOW_API_BASE_URL": everflow_url,
                }
            os.environ.update(
                {k: v for k, v in env.items() if k.startswith("POWERTOOLS_")}
                | {"_X_AMZN_TRACE_ID": TRACE_ID}
            )
            app = load_function_app(folder)
            handler = app.logger.registered_handler
            self._restore.append((app, handler, _point(handler, log), app.logger.log_level))
            app.logger.setLevel(env["POWERTOOLS_LOG_LEVEL"])  # the template's LogLevel
            dependencies = app.Dependencies.from_environ(env)
            # What lambda_handler calls for its dependencies: these, built above.
            setattr(app, "_production_dependencies", lambda d=dependencies: d)  # noqa: B010
            self.apps[key] = app
            self.memory[key] = self._memory_size(logical_id)
            self.contexts[key] = self._context_factory(logical_id, self.memory[key])
        self.measurement = Measurement()
        self.counting = False
        self.timing = False

    def close(self) -> None:
        self._session.unregister("before-parameter-build", unique_id="bench-cost-1")
        self._session.unregister("after-call", unique_id="bench-cost-2")
        for app, handler, stream, level in self._restore:
            _point(handler, stream if not getattr(stream, "closed", False) else sys.stdout)
            app.logger.setLevel(level)

    def _memory_size(self, logical_id: str) -> int:
        own = self.template["Resources"][logical_id]["Properties"].get("MemorySize")
        default = self.template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
        return int(own or default)

    @staticmethod
    def _context_factory(logical_id: str, memory: int) -> Callable[[], LambdaContext]:
        name = f"{STACK}-{logical_id}-{uuid.uuid5(uuid.NAMESPACE_DNS, logical_id).hex[:12].upper()}"
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        return lambda: LambdaContext(name, memory, arn, str(uuid.uuid4()))

    # -- counting

    def start(self, *, sizes: bool, timing: bool, events: int) -> None:
        self.aws.reset()
        self.log.reset()
        self.measurement = Measurement(events=events)
        self.aws.sizes, self.timing = sizes, timing
        self.aws.active = self.log.active = self.counting = True

    def stop(self) -> Measurement:
        self.aws.active = self.log.active = self.counting = False
        m = self.measurement
        m.requests, m.sqs_sent, m.wru, m.rru = (
            self.aws.requests,
            self.aws.sqs_billed,
            self.aws.wru,
            self.aws.rru,
        )
        m.log_bytes, m.log_lines, m.metrics = self.log.bytes, self.log.lines, self.log.metrics
        return m

    # -- invoking

    def invoke(self, key: str, event: dict[str, Any]) -> dict[str, Any]:
        app = self.apps[key]
        self.aws.label = self.log.label = key
        with contextlib.redirect_stdout(self.log):  # EMF metrics are printed
            started, cpu_started = time.perf_counter(), time.process_time()
            response: dict[str, Any] = app.lambda_handler(event, self.contexts[key]())
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if self.counting:
            self.measurement.invocations[key] += 1
            if self.timing:
                self.measurement.timings.setdefault(key, []).append((wall, cpu))
        return response

    def register_clicks(self, clicks: Sequence[dict[str, Any]]) -> None:
        token = json.loads(SECRET_JSON)["click_intake_token"]
        for start in range(0, len(clicks), 500):
            body = json.dumps(list(clicks[start : start + 500]))
            answer = self.invoke(
                "clicks",
                {
                    "version": "2.0",
                    "routeKey": "POST /clicks",
                    "rawPath": "/clicks",
                    "headers": {
                        "content-type": "application/json",
                        "authorization": f"Bearer {token}",
                    },
                    "requestContext": {"http": {"method": "POST", "path": "/clicks"}},
                    "body": body,
                    "isBase64Encoded": False,
                },
            )
            if answer["statusCode"] not in (200, 201):
                raise RuntimeError(f"clicks refused: {answer}")

    def play(self, events: Sequence[dict[str, Any]]) -> None:
        """Each event through the webhook, then both queues drained by their consumers."""
        for stripe_event in events:
            request, _ = signed_webhook_event(stripe_event)
            answer = self.invoke("webhook", request)
            if answer["statusCode"] != 200 or '"accepted"' not in answer["body"]:
                raise RuntimeError(f"webhook did not accept {stripe_event['id']}: {answer}")
            if self.counting:
                self.measurement.response_bytes.append(len(answer["body"].encode()))
        for queue in QUEUE_CONSUMERS:
            self._consume(queue)

    def _drain(self, queue: str) -> list[dict[str, Any]]:
        url = self.resources.queue_urls[queue]
        messages: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            )
            received = answer.get("Messages", [])
            if not received:
                return messages
            messages += received
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(received)
                ],
            )

    def _consume(self, queue: str) -> None:
        """What the event source mapping does: batches of 10, failed records again later."""
        from stripe_everflow_cli.pollers import build_sqs_event

        key = QUEUE_CONSUMERS[queue]
        pending, redeliveries = self._drain(queue), 0
        while pending:
            batch, pending = pending[:BATCH_SIZE], pending[BATCH_SIZE:]
            size = sum(_message_bytes(m["Body"], m.get("MessageAttributes", {})) for m in batch)
            answer = self.invoke(key, build_sqs_event(batch, queue))
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            if self.counting:
                self.measurement.esm_received[queue] += max(1, math.ceil(size / SQS_CHUNK))
                self.measurement.esm_deletes[queue] += 1 if len(failed) < len(batch) else 0
            again = [m for m in batch if m["MessageId"] in failed]
            redeliveries += len(again)
            if redeliveries > 10 * BATCH_SIZE:
                raise RuntimeError(f"{queue}: records keep failing (see {FUNCTION_LOG})")
            pending += again + self._drain(queue)

    def everflow_requests(self, clear: bool = False) -> list[dict[str, Any]]:
        import requests

        url = self.everflow_url + "/__standin/requests"
        if clear:
            requests.delete(url, timeout=10)
            return []
        received: list[dict[str, Any]] = requests.get(url, timeout=10).json()
        return received


# ---------------------------------------------------------------------- the figures


def _per_million(count: float, events: int) -> float:
    return count / events * 1e6


def _platform_log_bytes(memory: int) -> int:
    """Lambda's own lines per invocation: START, END, REPORT with its X-Ray line."""
    request = str(uuid.UUID(int=0))
    lines = [
        f"START RequestId: {request} Version: $LATEST\n",
        f"END RequestId: {request}\n",
        f"REPORT RequestId: {request}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        f"Memory Size: {memory} MB\tMax Memory Used: 98 MB\t\n"
        "XRAY TraceId: 1-6939f3a1-5b0c8e2d9a4f6b7c8d9e0f1a\tSegmentId: 53995c3f42cd8ad8\t"
        "Sampled: true\t\n",
    ]
    return sum(len(line.encode()) for line in lines)


def _access_log_bytes(template: Mapping[str, Any], response_bytes: int, latency_ms: int) -> int:
    """One HTTP API access-log line in the template's format, with typical values."""
    fmt: str = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    values = {
        "$context.requestId": "J2Y4dhWqoAMEbWQ=",
        "$context.identity.sourceIp": "54.187.174.169",
        "$context.requestTime": "02/Dec/2026:17:07:49 +0000",
        "$context.routeKey": "POST /stripe/webhook",
        "$context.status": "200",
        "$context.responseLength": str(response_bytes),
        "$context.integrationLatency": str(latency_ms),
        "$context.integrationErrorMessage": "-",
    }
    for token in sorted(values, key=len, reverse=True):
        fmt = fmt.replace(token, values[token])
    return len(fmt.encode()) + 1


def _everflow_bytes(request: Mapping[str, Any]) -> int:
    """Bytes the function sends for one Everflow call: request line, headers, body
    (``requests``' default headers; TLS framing not counted)."""
    query = urlencode([tuple(pair) for pair in request["query"]])
    line = f"{request['method']} {request['path']}{'?' + query if query else ''} HTTP/1.1\r\n"
    headers = (
        "Host: www.example-track.com\r\nUser-Agent: python-requests/2.32.5\r\n"
        "Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
    )
    return len(line.encode()) + len(headers.encode()) + len(str(request.get("body") or "").encode())


def _xray_traces_per_event(invocations_per_event: float) -> float:
    per_second = invocations_per_event * DESIGN_RATE
    recorded = min(per_second, XRAY_RESERVOIR_PER_SECOND)
    recorded += XRAY_RATE * max(0.0, per_second - XRAY_RESERVOIR_PER_SECOND)
    return recorded / DESIGN_RATE


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def _units_by(units: Mapping[tuple[str, str], float], events: int) -> str:
    """Request units per event by function, then by table."""
    functions: defaultdict[str, float] = defaultdict(float)
    tables: defaultdict[str, float] = defaultdict(float)
    for (function, table), value in units.items():
        functions[function] += value
        tables[table] += value
    by_function = ", ".join(f"{k} {v / events:.2f}" for k, v in sorted(functions.items()))
    by_table = ", ".join(f"{k} {v / events:.2f}" for k, v in sorted(tables.items()))
    return f"{by_function}; {by_table}"


def _operations(m: Measurement, service: str, events: int) -> str:
    parts = []
    for key in COUNTED:
        ops = {op: n for (k, s, op), n in m.requests.items() if k == key and s == service}
        if ops:
            detail = ", ".join(f"{op} {n / events:.2f}" for op, n in sorted(ops.items()))
            parts.append(f"{key}: {detail}")
    return "; ".join(parts) or "none"


def rows_from(
    counted: Measurement, timed: Measurement, template: Mapping[str, Any], memory: Mapping[str, int]
) -> list[Row]:
    """The table's rows: dollars per million Stripe events, with the counts behind them."""
    n = counted.events
    rows: list[Row] = [
        Row(
            "cost: Stripe events played (per pass)",
            n,
            "events",
            note=f"{MIXES_PER_PASS} x 100: {STREAM_MIX}, with Stripe's duplicates; {PRICES_NOTE}",
        )
    ]
    total = 0.0

    def add(name: str, usd: float, note: str) -> None:
        nonlocal total
        total += usd
        rows.append(Row(f"cost: {name}", usd, "$/1M events", note=note))

    # API Gateway: one request per delivery (HTTP APIs meter 512 KB increments).
    apigw = _per_million(n, n)
    add(
        "API Gateway HTTP API",
        PRICES["apigw"].of(apigw),
        f"{apigw / 1e6:.2f}M requests x {PRICES['apigw'].label()}",
    )

    # Lambda requests and duration.
    per_event = {k: counted.invocations[k] / n for k in COUNTED}
    invocations = sum(_per_million(counted.invocations[k], n) for k in COUNTED)
    add(
        "Lambda requests",
        PRICES["lambda_request"].of(invocations),
        f"{invocations / 1e6:.2f}M invocations/1M events (webhook {per_event['webhook']:.2f}, "
        f"matcher {per_event['match']:.3f}, poster {per_event['post']:.3f} per event; "
        f"batches of {BATCH_SIZE}) x {PRICES['lambda_request'].label()}",
    )
    gb_s = scaled_gb_s = 0.0
    durations = []
    for key in COUNTED:
        samples = timed.timings.get(key, [])
        if not samples:
            continue
        gb = memory[key] / 1024
        billed = sum(math.ceil(wall * 1000) for wall, _ in samples) / 1000 * gb
        scale = VCPU_MB / memory[key] - 1
        scaled = sum(math.ceil((wall + cpu * scale) * 1000) for wall, cpu in samples) / 1000 * gb
        gb_s += _per_million(billed, timed.events)
        scaled_gb_s += _per_million(scaled, timed.events)
        walls = [wall * 1000 for wall, _ in samples]
        cpus = [cpu * 1000 for _, cpu in samples]
        durations.append(f"{key} {median(walls):.1f} ms wall/{median(cpus):.1f} ms CPU")
    add(
        "Lambda duration (local wall time)",
        PRICES["lambda_gb_s"].of(gb_s),
        f"{gb_s:,.0f} GB-s: {', '.join(durations)} (medians per invocation, this machine, "
        f"AWS and Everflow local, Everflow answering in {EVERFLOW_LATENCY * 1000:.0f} ms) x "
        f"{PRICES['lambda_gb_s'].label()}",
    )
    scaled_usd = PRICES["lambda_gb_s"].of(scaled_gb_s)
    rows.append(
        Row(
            "cost: (Lambda duration, CPU at the MemorySize share)",
            scaled_usd,
            "$/1M events",
            note=f"{scaled_gb_s:,.0f} GB-s if each function's CPU time ran at "
            f"{min(memory.values())}/{VCPU_MB} of a vCPU; not in the total",
        )
    )

    # DynamoDB.
    writes = sum(
        n_
        for (k, s, op), n_ in counted.requests.items()
        if s == "dynamodb" and op in WRITE_OPERATIONS
    )
    reads = sum(
        n_
        for (k, s, op), n_ in counted.requests.items()
        if s == "dynamodb" and op in READ_OPERATIONS
    )
    wru = _per_million(sum(counted.wru.values()), n)
    rru = _per_million(sum(counted.rru.values()), n)
    add(
        "DynamoDB writes",
        PRICES["wru"].of(wru),
        f"{wru / 1e6:.2f}M WRU ({writes / n:.2f} write requests/event; WRU/event "
        f"{_units_by(counted.wru, n)}) x {PRICES['wru'].label()}",
    )
    add(
        "DynamoDB reads",
        PRICES["rru"].of(rru),
        f"{rru / 1e6:.2f}M RRU ({reads / n:.2f} read requests/event; RRU/event "
        f"{_units_by(counted.rru, n)}) x {PRICES['rru'].label()}",
    )
    rows.append(
        Row(
            "cost: (DynamoDB requests per event, by operation)",
            (writes + reads) / n,
            "requests",
            note=_operations(counted, "dynamodb", n),
        )
    )

    # SQS: sends by the functions, receives and deletes by the event source mappings.
    sent = sum(counted.sqs_sent.values())
    received = sum(counted.esm_received.values())
    deleted = sum(counted.esm_deletes.values())
    sqs = _per_million(sent + received + deleted, n)
    add(
        "SQS requests",
        PRICES["sqs"].of(sqs),
        f"{sqs / 1e6:.2f}M requests (64 KB chunks): sends {sent / n:.2f}/event, "
        f"event-source receives {received / n:.2f} + batch deletes {deleted / n:.2f}; "
        f"idle long polling not counted x {PRICES['sqs'].label()}",
    )

    # Secrets Manager: once per instance per 300 s; instances by Little's law.
    measured_reads = sum(
        n_ for (k, s, op), n_ in counted.requests.items() if op == "GetSecretValue"
    )
    calls_per_second = 0.0
    for key in COUNTED:
        walls = [wall for wall, _ in timed.timings.get(key, [])]
        if walls:
            instances = max(1.0, per_event[key] * DESIGN_RATE * sum(walls) / len(walls))
            calls_per_second += instances / SECRET_CACHE_SECONDS
    secret_calls = calls_per_second / DESIGN_RATE * 1e6
    add(
        "Secrets Manager",
        PRICES["secrets"].of(secret_calls),
        f"{secret_calls:,.0f} GetSecretValue/1M events: one per warm instance per "
        f"{SECRET_CACHE_SECONDS} s at {DESIGN_RATE:,} events/s (measured in the stream: "
        f"{measured_reads}, cached since start) x {PRICES['secrets'].label()}",
    )

    # CloudWatch Logs: the functions' lines and EMF, Lambda's lines, the access log.
    timed_webhook = [wall * 1000 for wall, _ in timed.timings.get("webhook", [(0.02, 0)])]
    access = _access_log_bytes(
        template,
        round(sum(counted.response_bytes) / max(1, len(counted.response_bytes))),
        round(median(timed_webhook)),
    )
    function_bytes = sum(counted.log_bytes[k] for k in COUNTED)
    platform_bytes = sum(counted.invocations[k] * _platform_log_bytes(memory[k]) for k in COUNTED)
    log_gb = _per_million(function_bytes + platform_bytes + access * n, n) / 1e9
    add(
        "CloudWatch Logs ingestion",
        PRICES["logs"].of(log_gb),
        f"{log_gb:.2f} GB: functions "
        + ", ".join(f"{k} {counted.log_bytes[k] / n:,.0f}" for k in COUNTED)
        + f" B/event at LogLevel INFO (EMF included), Lambda's START/END/REPORT "
        f"{platform_bytes / n:,.0f} B/event, access log {access} B/request x "
        f"{PRICES['logs'].label()}",
    )

    # X-Ray: Tracing Active on every function.
    traces = sum(_xray_traces_per_event(per_event[k]) for k in COUNTED) * 1e6
    all_traces = invocations
    add(
        "X-Ray traces",
        PRICES["xray"].of(traces),
        f"{traces:,.0f} traces: 1/s + {XRAY_RATE:.0%} of the rest per function at "
        f"{DESIGN_RATE:,} events/s (every invocation traced: "
        f"{_money(PRICES['xray'].of(all_traces))}) x {PRICES['xray'].label()}",
    )

    # Data transfer out: the Everflow calls.
    everflow = counted.everflow
    out_gb = _per_million(sum(_everflow_bytes(r) for r in everflow), n) / 1e9
    add(
        "Data transfer out (Everflow calls)",
        PRICES["transfer"].of(out_gb),
        f"{out_gb:.3f} GB: request line and headers of each call x {PRICES['transfer'].label()}",
    )

    fixed = (
        f"{len(counted.metrics)} custom metrics x ${MONTHLY['custom metric']:.2f}, "
        f"1 secret x ${MONTHLY['secret']:.2f}, alarms x ${MONTHLY['alarm']:.2f}, "
        "table storage and PITR per GB"
    )
    with_scaled = total - PRICES["lambda_gb_s"].of(gb_s) + scaled_usd
    rows.append(
        Row(
            "cost: total per 1M Stripe events",
            total,
            "$/1M events",
            note=f"with CPU-scaled duration {_money(with_scaled)}; "
            f"monthly whatever the traffic: {fixed}",
        )
    )

    postbacks = sum(1 for r in everflow if r["path"] in ("/", "/reversal"))
    api = sum(1 for r in everflow if r["path"].startswith("/v1/"))
    rows.append(
        Row(
            "cost: Everflow calls per 1M Stripe events",
            _per_million(postbacks + api, n),
            "calls",
            note=f"postbacks/reversals {postbacks / n:.3f}/event = "
            f"{postbacks / n * DESIGN_RATE:.0f}/s at {DESIGN_RATE:,} events/s; "
            f"Network API {api / n:.3f}/event = "
            f"{api / n * DESIGN_RATE:.1f}/s (Everflow allows ~{EVERFLOW_API_LIMIT}/s per network)",
        )
    )
    return rows


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def cost() -> list[Row]:
    with function_log() as log_file:
        log = LogMeter(log_file)
        moto, endpoint = start_moto_server(log_file)
        standin = None
        try:
            standin, everflow_url = start_everflow_standin(EVERFLOW_LATENCY, log_file)
            with _environment(
                {
                    "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench",
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_REGION": "us-east-1",
                    "AWS_ENDPOINT_URL": endpoint,
                }
            ):
                pipeline = Pipeline(endpoint, everflow_url, log)
                try:
                    passes = []
                    for number, sizes in ((1, True), (2, False)):
                        plan = build_plan(f"P{number}")
                        pipeline.register_clicks(plan.clicks)
                        pipeline.play(plan.earlier)
                        pipeline.everflow_requests(clear=True)
                        pipeline.start(sizes=sizes, timing=not sizes, events=len(plan.stream))
                        pipeline.play(plan.stream)
                        measurement = pipeline.stop()
                        measurement.everflow = pipeline.everflow_requests()
                        passes.append(measurement)
                finally:
                    pipeline.close()
        finally:
            stop_process(moto)
            if standin is not None:
                stop_process(standin)
    counted, timed = passes
    for measurement in passes:
        sent = measurement.requests[("webhook", "sqs", "SendMessage")]
        if sent != measurement.events:
            raise RuntimeError(
                f"the meter saw {sent} webhook SendMessage calls for {measurement.events} "
                "events: a client was made before the meter was registered"
            )
    # Durations come from the second pass, normalised by its own invocations: a
    # record delivered again in one pass and not the other changes nothing else.
    return rows_from(counted, timed, pipeline.template, pipeline.memory)


if __name__ == "__main__":
    from run import render

    print(render(cost()))
    print(f"function logs: {Path(FUNCTION_LOG).relative_to(PROJECT_ROOT)}")
