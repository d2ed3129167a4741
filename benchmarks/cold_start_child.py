"""One cold start, measured from inside a fresh interpreter (run by ``cold_start.py``).

Started as ``python -S cold_start_child.py`` with the layer and site-packages on
PYTHONPATH, so nothing but the interpreter's core is loaded before the clock starts
(a plain ``python`` here would preload pathlib, re, urllib.parse… through the
editable install's .pth hook, which Lambda does not have). Reads a marshal-encoded
job from stdin, ``{"mode": "boto3" | "function", "app": path, "event": {...}}``, and
writes a marshal-encoded dict of timings in milliseconds to the real stdout.

* ``boto3``: ``import boto3``.
* ``function``: load the function's app.py by path as Lambda's bootstrap does (module
  registered in sys.modules before it runs), then the first ``lambda_handler`` call,
  which creates the botocore clients, reads the secret and sends to SQS. The time
  spent inside socket calls (connect, send, receive: waiting on the local moto
  server) is summed apart; the accounting is installed after the import, and its
  ``import socket`` counts in the first call, which would import socket anyway.

Both also report ``cpu_ms``, the process's CPU time over the same span: on a busy
machine a wall-clock span also holds time spent waiting for a core, CPU time does not.

Everything the function writes to stdout (Powertools JSON logs, EMF metrics) goes to
/dev/null: ``sys.stdout`` is swapped before the import, so the Powertools Logger binds
its handler to /dev/null.

Only modules already loaded by a ``-S`` interpreter (sys, time, marshal) are used
before the clock starts, except importlib.util in ``function`` mode (the machinery a
Lambda bootstrap has loaded to import a handler). Keep it so.
"""

import marshal
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_socket_seconds = [0.0]


def _count_socket_time() -> None:
    import socket

    def timed(original: "Any") -> "Any":
        def wrapper(self: "Any", *args: "Any", **kwargs: "Any") -> "Any":
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                _socket_seconds[0] += time.perf_counter() - started

        return wrapper

    for name in ("connect", "sendall", "send", "recv", "recv_into"):
        setattr(socket.socket, name, timed(getattr(socket.socket, name)))


class LambdaContext:
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


def _measure_boto3() -> "dict[str, Any]":
    cpu_started = time.process_time()
    started = time.perf_counter()
    import boto3  # noqa: F401 - the import is what is measured

    return {
        "total_ms": (time.perf_counter() - started) * 1000,
        "cpu_ms": (time.process_time() - cpu_started) * 1000,
    }


def _measure_function(app_path: str, event: "dict[str, Any]") -> "dict[str, Any]":
    import importlib.util

    context = LambdaContext()
    cpu_started = time.process_time()
    started = time.perf_counter()
    spec = importlib.util.spec_from_file_location("app", app_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    _count_socket_time()
    response = module.lambda_handler(event, context)
    called = time.perf_counter()
    cpu = time.process_time() - cpu_started
    return {
        "cpu_ms": cpu * 1000,
        "import_ms": (imported - started) * 1000,
        "first_call_ms": (called - imported) * 1000,
        "total_ms": (called - started) * 1000,
        "socket_ms": _socket_seconds[0] * 1000,
        "status": response.get("statusCode"),
        "body": response.get("body"),
    }


def main() -> None:
    job = marshal.loads(sys.stdin.buffer.read())  # noqa: S302 - from cold_start.py
    real_stdout = sys.stdout
    sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - lives as long as the process
    if job["mode"] == "boto3":
        result = _measure_boto3()
    else:
        result = _measure_function(job["app"], job["event"])
    sys.stdout.flush()
    real_stdout.buffer.write(marshal.dumps(result))
    real_stdout.flush()


if __name__ == "__main__":
    main()
