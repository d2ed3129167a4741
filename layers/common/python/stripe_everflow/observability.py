"""The one place where logging and metrics are set up.

Powertools Logger (structured JSON, correlation with the Lambda request id) and
Metrics (CloudWatch embedded metric format, namespace from
POWERTOOLS_METRICS_NAMESPACE). No tracer SDK is loaded: the template turns on
X-Ray at the function level, and the X-Ray SDK would cost cold-start time.
Rules: structured keys only; never a body, a signature, a key or a full email.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["Logger", "MetricUnit", "Metrics", "build_logger", "build_metrics", "count"]


def build_logger(service: str) -> Logger:
    return Logger(service=service)


def build_metrics(service: str) -> Metrics:
    return Metrics(service=service)


def count(metrics: Metrics, name: str, *, reason: str | None = None) -> None:
    """Add 1 to the counter ``name``; ``reason`` becomes its Reason dimension.

    Each webhook invocation emits one counter, so a per-invocation dimension is exact.
    """
    if reason is not None:
        metrics.add_dimension(name="Reason", value=reason)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
