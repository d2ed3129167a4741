"""What every benchmark section shares: result rows, statistics, project paths, events.

A section is a function taking no argument and returning a list of ``Row``; ``run.py``
runs the sections in order and prints all rows as one table.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / "benchmarks"
LAYER_DIR = PROJECT_ROOT / "layers" / "common" / "python"
WEBHOOK_APP = PROJECT_ROOT / "functions" / "stripe_webhook" / "app.py"
INVOICE_PAID_EVENT = PROJECT_ROOT / "events" / "stripe" / "basil" / "invoice.paid.first.json"

# What the functions and the stand-ins print goes here, never into the results table.
LOG_DIR = PROJECT_ROOT / ".bench"
FUNCTION_LOG = LOG_DIR / "functions.log"

# The bridge secret of the benchmarks: one test-mode account, one webhook secret.
WEBHOOK_SECRET = "whsec_bench"
SECRET_NAME = "bench/stripe-everflow-bridge"
SECRET_JSON = json.dumps(
    {
        "stripe_accounts": {"default": {"livemode": False, "webhook_secrets": [WEBHOOK_SECRET]}},
        "email_hash_key": "bench-email-hash-key",
        "click_intake_token": "bench-click-token",
    }
)


@dataclass(frozen=True)
class Row:
    """One line of the results table.

    ``ratio`` is the figure divided by what the goal compares it with (a baseline or
    the goal's own bound); ``verdict`` is PASS, MISS or empty for an informative row.
    """

    name: str
    figure: float
    unit: str
    goal: str = ""
    ratio: float | None = None
    verdict: str = ""
    note: str = ""


Section = Callable[[], list[Row]]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float], digits: int = 1) -> str:
    """``n=…, IQR a-b`` of a sample, for the table's note column."""
    if len(values) < 2:
        return f"n={len(values)}"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"n={len(values)}, IQR {q1:.{digits}f}-{q3:.{digits}f}"


def load_invoice_paid_event() -> dict[str, Any]:
    """The basil ``invoice.paid`` event (test mode, on the default allow-list)."""
    event: dict[str, Any] = json.loads(INVOICE_PAID_EVENT.read_text("utf-8"))
    return event


def event_of_size(target_bytes: int) -> dict[str, Any]:
    """The invoice.paid event trimmed so that its serialized body is at most ``target_bytes``.

    The envelope stays whole; fields of ``data.object`` are kept in their original order
    while they fit, so the result is the largest realistic prefix of the invoice.
    """
    from stripe_everflow_cli.signing import serialize_event

    full = load_invoice_paid_event()
    invoice: dict[str, Any] = full["data"]["object"]
    event = copy.deepcopy(full)
    kept: dict[str, Any] = {}
    event["data"]["object"] = kept
    for key, value in invoice.items():
        kept[key] = value
        if len(serialize_event(event)) > target_bytes:
            del kept[key]
    return event


def signed_webhook_event(stripe_event: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """An API Gateway HTTP API (2.0) event for POST /stripe/webhook, signed now.

    Built by the local stack's own gateway code from the exact bytes Stripe would send;
    returns the event and the size of its body in bytes.
    """
    from stripe_everflow_cli.gateway import build_http_api_event
    from stripe_everflow_cli.signing import serialize_event, signature_header

    body = serialize_event(stripe_event)
    headers = [
        ("content-type", "application/json; charset=utf-8"),
        ("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
        ("stripe-signature", signature_header(body, WEBHOOK_SECRET, int(time.time()))),
        ("host", "bench.execute-api.us-east-1.amazonaws.com"),
    ]
    event = build_http_api_event(
        method="POST",
        raw_path="/stripe/webhook",
        raw_query="",
        headers=headers,
        body=body,
        route_key="POST /stripe/webhook",
        path_parameters={},
        source_ip="54.187.174.169",
    )
    return event, len(body)


class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context object."""

    function_name = "stripe-everflow-bridge-StripeWebhookFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = (
        "arn:aws:lambda:us-east-1:123456789012:function:"
        "stripe-everflow-bridge-StripeWebhookFunction"
    )
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def load_function_app(function_dir: str) -> ModuleType:
    """functions/<function_dir>/app.py as its own module, as Lambda loads a handler."""
    name = f"bench_{function_dir}_app"
    spec = importlib.util.spec_from_file_location(
        name, PROJECT_ROOT / "functions" / function_dir / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ logs and stand-ins


def function_log() -> IO[str]:
    """The benchmark log (``.bench/functions.log``), opened for appending.

    Functions' log lines and the stand-ins' output go here, so that ``make bench``
    prints its table only. The folder ignores itself in git."""
    LOG_DIR.mkdir(exist_ok=True)
    ignore = LOG_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    return FUNCTION_LOG.open("a", encoding="utf-8", buffering=1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} (see {FUNCTION_LOG})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{what} did not start (see {FUNCTION_LOG})")


def start_moto_server(output: IO[str]) -> tuple[subprocess.Popen[bytes], str]:
    """A moto server in a child process (its CPU is not the benchmark's); its output
    goes to ``output``. Returns the process and its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=output,
        stderr=output,
    )
    _wait_for_port(process, port, "the moto server")
    return process, f"http://127.0.0.1:{port}"


def start_everflow_standin(delay: float, output: IO[str]) -> tuple[subprocess.Popen[bytes], str]:
    """The Everflow stand-in in a child process, answering after ``delay`` seconds."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_everflow_cli.main",
            "everflow-standin",
            "--port",
            str(port),
            "--delay",
            str(delay),
        ],
        cwd=PROJECT_ROOT,
        stdout=output,
        stderr=output,
    )
    _wait_for_port(process, port, "the Everflow stand-in")
    return process, f"http://127.0.0.1:{port}"


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
