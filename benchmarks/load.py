"""Section ``load``: webhooks per second and latency on the local stack, nothing lost.

``stripe-everflow local`` (intake only: ``--no-consumers``) runs in a child process;
another child process sends ``EVENTS`` signed ``invoice.paid`` webhooks (each its own
event id, signed before the clock starts: Stripe signs on its side) over
``CONNECTIONS`` keep-alive connections, and reports each request's latency. Then
PaymentEventsQueue is read alongside (as the matcher would; moto's SQS slows down as
a queue grows) and to the end: every event the webhook answered "accepted" must be
on it, once or more (nothing lost), and nothing else.

These are the emulator's figures — the local gateway, the function in a local worker
process, moto's SQS — on this shared machine, not Lambda's or API Gateway's: they
show that the intake keeps up and loses nothing under concurrent load, not how fast
AWS is.

Run alone: ``.venv/bin/python benchmarks/run.py --only load`` (``BENCH_LOAD_EVENTS``
sends another number of webhooks). The sender is this file
run as ``python benchmarks/load.py send URL SECRET COUNT CONNECTIONS``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import (
    LOG_DIR,
    PROJECT_ROOT,
    SECRET_JSON,
    WEBHOOK_SECRET,
    Row,
    function_log,
    load_invoice_paid_event,
    verdict,
)

EVENTS = int(os.environ.get("BENCH_LOAD_EVENTS", "2000"))
CONNECTIONS = 4
STACK_LOG = LOG_DIR / "load-stack.log"


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` in 0-1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


# ------------------------------------------------------------------ the sending child


def send(url: str, secret: str, count: int, connections: int) -> dict[str, Any]:
    """POST ``count`` signed webhooks to ``url`` over ``connections`` sessions."""
    import requests

    from stripe_everflow_cli.signing import serialize_event, signature_header

    template = load_invoice_paid_event()
    prepared = []
    now = int(time.time())
    for i in range(count):
        event = dict(template, id=f"evt_load_{i:06d}")
        body = serialize_event(event)
        prepared.append((event["id"], body, signature_header(body, secret, now)))
    latencies: list[float] = [0.0] * count
    statuses: list[int] = [0] * count
    accepted: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(count))

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            event_id, body, header = prepared[index]
            began = time.perf_counter()
            try:
                answer = session.post(
                    url,
                    data=body,
                    headers={
                        "content-type": "application/json; charset=utf-8",
                        "user-agent": "Stripe/1.0",
                        "stripe-signature": header,
                    },
                    timeout=30,
                )
                status = answer.status_code
                ok = status == 200 and answer.json().get("status") == "accepted"
            except requests.RequestException:
                status, ok = -1, False
            latencies[index] = time.perf_counter() - began
            statuses[index] = status
            if ok:
                with lock:
                    accepted.append(event_id)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "statuses": dict(Counter(str(s) for s in statuses)),
        "accepted": accepted,
    }


# ------------------------------------------------------------------ the section


def _start_stack(tmp: Path, log: Any) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    config, ready = tmp / "local.config.json", tmp / "ready.json"
    config.write_text(json.dumps({"secret": json.loads(SECRET_JSON)}), encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_everflow_cli.main",
            "local",
            "--port",
            "0",
            "--config",
            str(config),
            "--ready-file",
            str(ready),
            "--log-file",
            str(STACK_LOG),
            "--no-consumers",
        ],
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 90
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the local stack did not start (see {log.name})")
        time.sleep(0.1)
    return process, json.loads(ready.read_text("utf-8"))


class QueueReader:
    """Reads PaymentEventsQueue while the webhooks arrive (as the matcher would: moto
    slows down as a queue grows) and counts the messages by Stripe event id."""

    def __init__(self, aws_endpoint: str) -> None:
        import boto3

        self._sqs = boto3.client(
            "sqs",
            endpoint_url=aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local stack's moto
        )
        self._url = self._sqs.get_queue_url(QueueName="PaymentEventsQueue")["QueueUrl"]
        self.found: Counter[str] = Counter()
        self._sending = threading.Event()
        self._sending.set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read_once(self, wait: int) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, VisibilityTimeout=600
        ).get("Messages", [])
        for message in messages:
            self.found[json.loads(message["Body"])["event"]["id"]] += 1
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return len(messages)

    def _run(self) -> None:
        while self._sending.is_set():
            self._read_once(wait=1)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> Counter[str]:
        """Stop reading alongside, then read what is left to the end."""
        self._sending.clear()
        self._thread.join()
        while self._read_once(wait=0):
            pass
        return self.found


def load() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, function_log() as log:
        stack, urls = _start_stack(Path(tmp), log)
        try:
            reader = QueueReader(urls["aws_endpoint"])
            reader.start()
            sender = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "send",
                    urls["url"] + "/stripe/webhook",
                    WEBHOOK_SECRET,
                    str(EVENTS),
                    str(CONNECTIONS),
                ],
                cwd=PROJECT_ROOT,
                capture_output=True,
                check=True,
                timeout=900,
            )
            result = json.loads(sender.stdout)
            drain_began = time.perf_counter()
            queued = reader.finish()
            drained = time.perf_counter() - drain_began
        finally:
            stack.send_signal(signal.SIGTERM)
            try:
                stack.wait(timeout=20)
            except subprocess.TimeoutExpired:
                stack.kill()
                stack.wait(timeout=10)
    accepted = set(result["accepted"])
    lost = len(accepted - set(queued))
    strays = len(set(queued) - accepted)
    refused = EVENTS - len(accepted)
    latencies_ms = [1000 * s for s in result["latencies"]]
    rate = EVENTS / result["elapsed"]
    setting = f"emulator, not Lambda: {EVENTS} signed webhooks, {CONNECTIONS} connections"
    return [
        Row("load: webhooks/s (local stack)", rate, "/s", note=setting),
        Row(
            "load: latency p50 (local stack)",
            percentile(latencies_ms, 0.50),
            "ms",
            note="from a second process, over keep-alive",
        ),
        Row(
            "load: latency p99 (local stack)",
            percentile(latencies_ms, 0.99),
            "ms",
            note=f"max {max(latencies_ms):.0f} ms",
        ),
        Row(
            "load: accepted, not on PaymentEventsQueue",
            lost + strays + refused,
            "events",
            goal="0 lost",
            verdict=verdict(lost == 0 and strays == 0 and refused == 0),
            note=(
                f"{len(accepted)} accepted, {sum(queued.values())} messages, "
                f"{refused} not accepted ({result['statuses']}), {strays} unknown; "
                f"sent in {result['elapsed']:.0f} s, the rest of the queue read in {drained:.1f} s"
            ),
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "send":
        _, _, target, secret, count, connections = sys.argv
        sys.path[:0] = [
            str(PROJECT_ROOT / "cli"),
            str(PROJECT_ROOT / "layers" / "common" / "python"),
        ]
        json.dump(send(target, secret, int(count), int(connections)), sys.stdout)
    else:
        for row in load():
            print(row)
