"""PostEverflowFunction: a batch of 10 postbacks against an Everflow answering after
200 ms, keep-alive reuse across batches, and CPU per posted conversion.

The function runs in this process through its real ``handle``; the Everflow
stand-in and the moto server holding LedgerTable run in child processes, so
``time.process_time`` here is the function's own work (building postbacks, the
HTTP client, the ledger's botocore calls).

Goals (issue "Everflow posting"): a batch of 10 against a 200 ms Everflow completes
in ≤ 1.5 x 200 ms (the ten are sent concurrently, not one after another); later
batches in the same process open no new TCP connections to Everflow. Goal (issue
"One house for the layer"): ≤ 0.5 ms of CPU per posted conversion with the ledger
in memory — reading the job, building and sending the postback, reading the answer,
the batch's threads, the handler's logging and metrics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import requests
from benchlib import PROJECT_ROOT, SECRET_JSON, Row, load_function_app, median, spread, verdict
from matcher import _free_port, _start_moto

EVERFLOW_DELAY = 0.2
CPU_GOAL_US = 500.0
BATCHES = 8
BATCH_SIZE = 10


def _start_standin() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_everflow_cli.main",
            "everflow-standin",
            "--port",
            str(port),
            "--delay",
            str(EVERFLOW_DELAY),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/__standin/requests", timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the Everflow stand-in did not start")


def _jobs(batch: int) -> list[str]:
    jobs = []
    for n in range(batch * BATCH_SIZE, (batch + 1) * BATCH_SIZE):
        jobs.append(
            json.dumps(
                {
                    "schema": "postback-job/1",
                    "job_key": f"conversion:default:in_bench{n}",
                    "action": "conversion",
                    "kind": "rebill",
                    "account": "default",
                    "livemode": False,
                    "occurred_at": 1767225600,
                    "amount": "49.00",
                    "currency": "USD",
                    "amount_refunded": None,
                    "charge_amount": None,
                    "dispute_status": None,
                    "stripe": {
                        "event_id": f"evt_bench{n}",
                        "event_type": "invoice.paid",
                        "invoice_id": f"in_bench{n}",
                        "charge_id": f"ch_bench{n}",
                        "payment_intent_id": f"pi_bench{n}",
                        "customer_id": f"cus_bench{n}",
                        "subscription_id": f"sub_bench{n}",
                        "refund_id": None,
                        "dispute_id": None,
                        "checkout_session_id": None,
                        "price_ids": ["price_bench"],
                        "product_ids": ["prod_bench"],
                        "promotion_code": None,
                        "billing_reason": "subscription_cycle",
                    },
                    "target": {
                        "mode": "click",
                        "transaction_id": f"ef_tx_{n}",
                        "offer_id": "1",
                        "affiliate_id": "2",
                        "matched_by": "customer_pin",
                    },
                }
            )
        )
    return jobs


class MemoryLedger:
    """The ledger's interface in memory, to time the posting without a DynamoDB stand-in.

    moto serves every request from one process on this 2-core machine, so with it the
    ledger's 30 calls per batch queue up behind each other — a property of the
    stand-in, not of DynamoDB, where they run in parallel in a few ms each.
    """

    def __init__(self) -> None:
        self.entries: dict[str, str] = {}
        self._lock = threading.Lock()

    def begin(self, job: Any, attempt_id: str, now: int, lease_seconds: int) -> str:
        with self._lock:
            if job.job_key in self.entries:
                return "done"
            self.entries[job.job_key] = "sending"
            return "go"

    def finish(self, job_key: str, attempt_id: str, status: str, now: int, facts: Any) -> None:
        with self._lock:
            self.entries[job_key] = status

    def release(
        self, job_key: str, attempt_id: str, now: int, facts: Any, maybe_sent: bool = False
    ) -> None:
        self.finish(job_key, attempt_id, "retryable", now, facts)


def _run_batches(app: Any, dependencies: Any, everflow_url: str, first: int) -> dict[str, Any]:
    wall, cpu, failures, connections = [], [], 0, []
    for batch in range(first, first + BATCHES):
        event = _event(_jobs(batch))
        started, cpu_started = time.perf_counter(), time.process_time()
        response = app.handle(event, dependencies)
        app.metrics.flush_metrics()  # as lambda_handler does after each invocation
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) / BATCH_SIZE * 1e6)
        failures += len(response["batchItemFailures"])
        received = requests.get(everflow_url + "/__standin/requests", timeout=10).json()
        connections.append(len({r["connection"] for r in received}))
    if failures:
        raise RuntimeError(f"posting benchmark: {failures} records failed")
    return {"wall": wall, "cpu": cpu, "connections": connections}


def _event(jobs: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": "r",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
            for i, body in enumerate(jobs)
        ]
    }


def posting() -> list[Row]:
    import boto3

    from stripe_everflow_cli.provision import provision
    from stripe_everflow_cli.template import function_specs, load_template

    moto, endpoint = _start_moto()
    standin, everflow_url = _start_standin()
    saved = dict(os.environ)
    try:
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": endpoint,
                "POWERTOOLS_METRICS_NAMESPACE": "Bench",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        template = load_template(PROJECT_ROOT / "template.yaml")
        resources = provision(
            template,
            sqs=boto3.client("sqs"),
            dynamodb=boto3.client("dynamodb"),
            secretsmanager=boto3.client("secretsmanager"),
            secret_string=SECRET_JSON,
            parameters={"EverflowTrackingDomain": "bench.example", "EverflowNetworkId": "1"},
        )
        [spec] = [s for s in function_specs(template) if s.logical_id == "PostEverflowFunction"]
        os.environ.update(
            {k: str(v) for k, v in resources.resolver.resolve(spec.environment).items()}
        )
        os.environ["EVERFLOW_POSTBACK_BASE_URL"] = everflow_url
        app = load_function_app("post_everflow")
        app.logger.setLevel("WARNING")  # one INFO line per postback would flood the table
        dependencies = app.Dependencies.from_environ(os.environ)
        with_moto = _run_batches(app, dependencies, everflow_url, first=0)
        dependencies.poster.ledger = MemoryLedger()
        in_memory = _run_batches(app, dependencies, everflow_url, first=BATCHES)
        received = requests.get(everflow_url + "/__standin/requests", timeout=10).json()
        posted = len([r for r in received if r["path"] == "/"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for process in (moto, standin):
            process.terminate()
            process.wait(timeout=10)
    if posted != 2 * BATCHES * BATCH_SIZE:
        raise RuntimeError(f"posting benchmark: {posted} postbacks received")
    goal_ms = 1.5 * EVERFLOW_DELAY * 1000
    fast = median(in_memory["wall"])
    slow = with_moto["wall"]
    cpu = median(in_memory["cpu"])
    connections = with_moto["connections"] + in_memory["connections"]
    new_connections = connections[-1] - connections[0]
    return [
        Row(
            "post: batch of 10, Everflow answering in 200 ms",
            fast,
            "ms",
            f"<= {goal_ms:.0f} ms",
            fast / goal_ms,
            verdict(fast <= goal_ms),
            f"ledger in memory; {spread(in_memory['wall'], 0)}",
        ),
        Row(
            "post: same, ledger on moto (first batch)",
            slow[0],
            "ms",
            "",
            None,
            "",
            f"cold: clients, secret, {connections[0]} TCP connects",
        ),
        Row(
            "post: same, ledger on moto (later batches)",
            median(slow[1:]),
            "ms",
            "",
            None,
            "",
            f"moto serializes 30 ledger calls a batch; {spread(slow[1:], 0)}",
        ),
        Row(
            "post: new TCP connections after the first batch",
            new_connections,
            "connections",
            "0 (keep-alive)",
            None,
            verdict(new_connections == 0),
            f"{connections[-1]} connections for {posted} postbacks",
        ),
        Row(
            "post: CPU per posted conversion (ledger on moto)",
            median(with_moto["cpu"][1:]),
            "us",
            "",
            None,
            "",
            f"the ledger's botocore calls dominate; {spread(with_moto['cpu'][1:], 0)}",
        ),
        Row(
            "post: CPU per posted conversion (ledger in memory)",
            cpu,
            "us",
            f"<= {CPU_GOAL_US:.0f} us",
            cpu / CPU_GOAL_US,
            verdict(cpu <= CPU_GOAL_US),
            spread(in_memory["cpu"], 0),
        ),
    ]
