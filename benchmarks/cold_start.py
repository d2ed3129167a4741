"""Cold start of StripeWebhookFunction in a fresh process, against a bare ``import boto3``.

Each round spawns one fresh interpreter per command, rotating which goes first
so that all share the machine's noise; each measures itself (see
``cold_start_child.py``) so interpreter start-up is left out of all. The function's
first call is real: a moto server on 127.0.0.1 holds the queue and the secret, and the
environment is the function's Lambda environment pointed at it (AWS_ENDPOINT_URL).

The function runs on what it ships: its WebhookLayer, built by the layer's own Makefile
target (``make -C layers/common build-WebhookLayer``, into benchmarks/build/) and alone
on its path, as /opt/python is on Lambda. ``import boto3`` runs on the venv's boto3,
with the same botocore version.

Bytecode caches are used: PYTHONDONTWRITEBYTECODE is removed and the caches go to
benchmarks/.pycache (PYTHONPYCACHEPREFIX, so the benchmark writes nothing outside its
directory); warm-up rounds fill them before anything is measured. (The built layer's
own bytecode is for Python 3.12, the runtime; this interpreter makes its own.)

A third command shows what a layer without bytecode would cost (/opt is read-only, so
Lambda would compile boto3, botocore, Powertools and stripe_everflow at every cold
start), which is why ``make build`` refuses to ship one. That variant reads bytecode
for the standard library only (a cache prefix holding just the stdlib's .pyc files)
and writes none.
"""

from __future__ import annotations

import logging
import marshal
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH_DIR,
    LAYER_DIR,
    PROJECT_ROOT,
    SECRET_JSON,
    SECRET_NAME,
    WEBHOOK_APP,
    Row,
    load_invoice_paid_event,
    median,
    signed_webhook_event,
    spread,
    verdict,
)

ROUNDS = 15
WARMUP_ROUNDS = 2
GOAL_RATIO = 1.2
REGION = "us-east-1"
QUEUE_NAME = "bench-payment-events"
CHILD = BENCH_DIR / "cold_start_child.py"
PYCACHE = BENCH_DIR / ".pycache"
BUILT_LAYER = BENCH_DIR / "build" / "webhook-layer"
STDLIB_ONLY_PYCACHE = BENCH_DIR / ".pycache-stdlib-only"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIABENCHMARK", "AWS_SECRET_ACCESS_KEY": "bench"}


class LocalAws:
    """A moto server on 127.0.0.1 with the bridge secret and PaymentEventsQueue."""

    def __enter__(self) -> LocalAws:
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        session = boto3.session.Session(
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        sqs = session.client("sqs", endpoint_url=self.endpoint)
        self.queue_url = str(sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"])
        session.client("secretsmanager", endpoint_url=self.endpoint).create_secret(
            Name=SECRET_NAME, SecretString=SECRET_JSON
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()


def build_webhook_layer() -> Path:
    """The WebhookLayer as ``sam build`` makes it (bytecode left to this interpreter)."""
    shutil.rmtree(BUILT_LAYER, ignore_errors=True)
    BUILT_LAYER.mkdir(parents=True)
    done = subprocess.run(
        [
            *("make", "-s", "-C", str(LAYER_DIR.parent), "build-WebhookLayer"),
            *(f"ARTIFACTS_DIR={BUILT_LAYER}", f"PYTHON={sys.executable}", "LAYER_BYTECODE=none"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the WebhookLayer failed:\n{done.stdout}{done.stderr}")
    return BUILT_LAYER / "python"


def _child_environment(aws: LocalAws, path: str) -> dict[str, str]:
    """The function's Lambda environment, pointed at the local server; nothing inherited
    but PATH and HOME, so no PYTHONDONTWRITEBYTECODE, no ~/.aws profile, no AWS_* leak."""

    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(BENCH_DIR)),
        "LANG": "C.UTF-8",
        # -S interpreter: what is importable (/opt/python on Lambda).
        "PYTHONPATH": path,
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
        "AWS_CONFIG_FILE": str(BENCH_DIR / "no-such-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(BENCH_DIR / "no-such-aws-credentials"),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": "stripe-everflow-bridge-StripeWebhookFunction",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        **FAKE_CREDENTIALS,
        "AWS_SESSION_TOKEN": "bench-session-token",
        "BRIDGE_SECRET_NAME": SECRET_NAME,
        "PAYMENT_EVENTS_QUEUE_URL": aws.queue_url,
        "POWERTOOLS_METRICS_NAMESPACE": "StripeEverflowBridge",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def _stdlib_only_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with a bytecode cache holding only the standard library's, read-only.

    Built from the warm cache (call after the warm-up rounds)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    source = PYCACHE / stdlib.relative_to(stdlib.anchor)
    target = STDLIB_ONLY_PYCACHE / stdlib.relative_to(stdlib.anchor)
    shutil.rmtree(STDLIB_ONLY_PYCACHE, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("site-packages"))
    return {**env, "PYTHONPYCACHEPREFIX": str(STDLIB_ONLY_PYCACHE), "PYTHONDONTWRITEBYTECODE": "1"}


def _spawn(mode: str, env: dict[str, str]) -> dict[str, Any]:
    job: dict[str, Any] = {"mode": mode}
    if mode == "function":
        event, _ = signed_webhook_event(load_invoice_paid_event())
        job.update(app=str(WEBHOOK_APP), event=event)
    done = subprocess.run(
        [sys.executable, "-S", str(CHILD)],
        input=marshal.dumps(job),
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold start child ({mode}) failed:\n{done.stderr.decode()}")
    result: dict[str, Any] = marshal.loads(done.stdout)  # noqa: S302 - our child
    if mode == "function" and (result["status"] != 200 or '"accepted"' not in result["body"]):
        raise RuntimeError(f"the first call was not accepted: {result['status']} {result['body']}")
    return result


def cold_start() -> list[Row]:
    samples: dict[str, list[dict[str, Any]]] = {"boto3": [], "function": [], "no-pyc": []}
    layer = build_webhook_layer()
    with LocalAws() as aws:
        envs = {
            "boto3": _child_environment(aws, sysconfig.get_paths()["purelib"]),
            "function": _child_environment(aws, str(layer)),
        }
        for _ in range(WARMUP_ROUNDS):  # fills the bytecode caches and the OS file cache
            _spawn("boto3", envs["boto3"])
            _spawn("function", envs["function"])
        envs["no-pyc"] = _stdlib_only_environment(envs["function"])
        _spawn("function", envs["no-pyc"])
        names = list(samples)
        for round_number in range(ROUNDS):
            # Rotate the order so that each command runs first, second and last in turn.
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                mode = "boto3" if name == "boto3" else "function"
                samples[name].append(_spawn(mode, envs[name]))

    boto3_ms = [r["total_ms"] for r in samples["boto3"]]
    baseline = median(boto3_ms)
    runs = samples["function"]
    total = [r["total_ms"] for r in runs]
    imported = [r["import_ms"] for r in runs]
    first_call = [r["first_call_ms"] for r in runs]
    socket_wait = [r["socket_ms"] for r in runs]
    off_network = [r["total_ms"] - r["socket_ms"] for r in runs]
    no_pyc = [r["total_ms"] for r in samples["no-pyc"]]
    # Paired: each round's function run over the same round's boto3 run, so both
    # met the same moment of the machine's load; the median of those ratios.
    paired = median([f / b for f, b in zip(total, boto3_ms, strict=True)])
    cpu = [r["cpu_ms"] for r in runs]
    boto3_cpu = [r["cpu_ms"] for r in samples["boto3"]]
    paired_cpu = median([f / b for f, b in zip(cpu, boto3_cpu, strict=True)])
    goal = f"≤ {GOAL_RATIO} x boto3"
    # The gate is the first webhook row; rows with the goal in parentheses inform.
    return [
        Row("cold: bare `import boto3` (baseline)", baseline, "ms", note=spread(boto3_ms)),
        Row(
            "cold: webhook import + first call",
            median(total),
            "ms",
            goal,
            paired,
            verdict(paired <= GOAL_RATIO),
            f"{spread(total)}; ratio of medians {median(total) / baseline:.2f}",
        ),
        Row("  of which import of app.py", median(imported), "ms", note=spread(imported)),
        Row(
            "  of which first call",
            median(first_call),
            "ms",
            note=f"{spread(first_call)}; 2 clients, GetSecretValue, SendMessage",
        ),
        Row(
            "    of which waiting on moto (sockets)",
            median(socket_wait),
            "ms",
            note=f"{spread(socket_wait)}; 2 local round trips + 2 connects",
        ),
        Row(
            "cold: webhook, socket waits excluded",
            median(off_network),
            "ms",
            f"({goal})",
            median(off_network) / baseline,
            f"({verdict(median(off_network) <= GOAL_RATIO * baseline)})",
            spread(off_network),
        ),
        Row(
            "cold: webhook, CPU time",
            median(cpu),
            "ms",
            f"({goal})",
            paired_cpu,
            f"({verdict(paired_cpu <= GOAL_RATIO)})",
            f"{spread(cpu)}; boto3 {median(boto3_cpu):.1f} ms; the machine's load left out",
        ),
        Row(
            "cold: webhook, layer without .pyc",
            median(no_pyc),
            "ms",
            f"({goal})",
            median(no_pyc) / baseline,
            f"({verdict(median(no_pyc) <= GOAL_RATIO * baseline)})",
            f"{spread(no_pyc)}; what make build refuses to ship",
        ),
    ]
