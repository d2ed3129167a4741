"""Warm CPU time per webhook, in process: a signed ~3 KB invoice.paid event, queue stubbed.

The function module is loaded once by path; its dependencies are injected by replacing
the module's ``_production_dependencies`` (``lambda_handler`` looks it up on every
call), so the measured path is ``lambda_handler`` itself, Powertools decorators
included: context injection, the Logger call, the metric and the EMF flush that
``log_metrics`` prints after every invocation. ``handle`` alone is measured as well
to show what the decorators cost. No network: the sender returns a fixed id.

Every variant runs in each repetition, one after the other, so they share the noise;
a figure is the median over the repetitions of process CPU time / calls.
Logging goes to /dev/null: the Logger's handler is re-pointed there, and stdout (where
metrics are printed) is redirected during the loops. The INFO variant is the deployed
log level (template default), the WARNING one shows the code without log records.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from benchlib import (
    SECRET_JSON,
    SECRET_NAME,
    WEBHOOK_APP,
    FakeLambdaContext,
    Row,
    event_of_size,
    median,
    signed_webhook_event,
    spread,
    verdict,
)

TARGET_BODY_BYTES = 3 * 1024
CALLS = 5000
REPETITIONS = 5
WARMUP_CALLS = 300
GOAL_US = 300.0


class FixedIdSender:
    """PaymentEventSender stub: no network, a fixed message id."""

    def send(self, body: str, attributes: dict[str, str]) -> str:
        return "00000000-0000-4000-8000-000000000000"


def _load_app(devnull: Any) -> ModuleType:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "StripeEverflowBridge")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    name = "bench_stripe_webhook_app"
    spec = importlib.util.spec_from_file_location(name, WEBHOOK_APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with contextlib.redirect_stdout(devnull):
        spec.loader.exec_module(module)
    handler = module.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(devnull)
    return module


@contextlib.contextmanager
def _log_level(app: ModuleType, level: str) -> Iterator[None]:
    previous = app.logger.log_level
    app.logger.setLevel(level)
    try:
        yield
    finally:
        app.logger.setLevel(previous)


def _cpu_us_per_call(call: Callable[[], Any], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def warm_cpu() -> list[Row]:
    from stripe_everflow.config import WebhookSettings
    from stripe_everflow.domain.secret import CachedSecret

    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        app: Any = _load_app(devnull)  # its attributes are the function module's own
        deps = app.Dependencies(
            settings=WebhookSettings(
                secret_name=SECRET_NAME,
                payment_events_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/bench",
            ),
            secret=CachedSecret(lambda: SECRET_JSON, max_age=300),
            sender=FixedIdSender(),
        )
        # Injection: lambda_handler looks this global up on every call.
        app._production_dependencies = lambda: deps
        event, body_bytes = signed_webhook_event(event_of_size(TARGET_BODY_BYTES))
        context = FakeLambdaContext()

        def through_lambda_handler() -> Any:
            return app.lambda_handler(event, context)

        def through_handle() -> Any:
            return app.handle(event, deps)

        variants: dict[str, tuple[Callable[[], Any], str]] = {
            "lambda_handler, log level WARNING": (through_lambda_handler, "WARNING"),
            "lambda_handler, log level INFO → /dev/null": (through_lambda_handler, "INFO"),
            "handle only, log level WARNING": (through_handle, "WARNING"),
            "handle only, log level INFO → /dev/null": (through_handle, "INFO"),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        with contextlib.redirect_stdout(devnull):
            for call, _ in variants.values():
                response = call()
                if response["statusCode"] != 200 or '"accepted"' not in response["body"]:
                    raise RuntimeError(f"the warm event was not accepted: {response}")
            for repetition in range(-1, REPETITIONS):  # -1: warm-up
                for name, (call, level) in variants.items():
                    with _log_level(app, level):
                        app.metrics.clear_metrics()
                        gc.collect()
                        figure = _cpu_us_per_call(call, WARMUP_CALLS if repetition < 0 else CALLS)
                        app.metrics.clear_metrics()
                    if repetition >= 0:
                        samples[name].append(figure)
    finally:
        devnull.close()

    rows = [Row("warm: webhook body (serialized event)", body_bytes, "bytes")]
    for name, values in samples.items():
        figure = median(values)
        gated = name.startswith("lambda_handler")
        rows.append(
            Row(
                f"warm: {name}",
                figure,
                "µs/event",
                f"≤ {GOAL_US:.0f} µs" if gated else "",
                figure / GOAL_US if gated else None,
                verdict(figure <= GOAL_US) if gated else "",
                f"{spread(values)}; {CALLS} calls x {REPETITIONS}",
            )
        )
    return rows
