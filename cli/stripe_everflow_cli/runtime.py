"""Runs a function's real handler in its own process, as Lambda would.

Each function gets one worker process with exactly the environment the template
gives it (plus the local AWS endpoint), so functions cannot see each other's
settings and a crash or a timeout costs one "instance", not the whole stack.
Invocations of one function are serialized: locally each function has one instance.
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import os
import sys
import threading
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Lambda gives a function's init phase (imports, module-level setup) 10 seconds.
INIT_TIMEOUT_SECONDS = 10.0


class InvocationError(Exception):
    """The handler raised, crashed or timed out; ``kind`` says which."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class _Context:
    """The part of the Lambda context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _worker_main(
    code_dir: str,
    handler: str,
    function_name: str,
    environment: dict[str, str],
    log_path: str | None,
    extra_sys_path: list[str],
    connection: Connection,
) -> None:
    # The layer's package is on Lambda's sys.path (/opt/python); put it first here too.
    sys.path[:0] = extra_sys_path
    os.environ.clear()
    os.environ.update(environment)
    if log_path:
        stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process
        sys.stdout = sys.stderr = stream
    module_name, _, attribute = handler.rpartition(".")
    path = Path(code_dir) / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"{function_name}_{module_name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    entry = getattr(module, attribute)
    connection.send(("ready", None))
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        context = _Context(function_name, 256, arn, str(uuid.uuid4()))
        try:
            connection.send(("ok", entry(request, context)))
        except Exception as error:  # reported to the caller as Lambda reports a function error
            traceback.print_exc()
            connection.send(("error", f"{type(error).__name__}: {error}"))


class FunctionWorker:
    """One function instance in a child process; restarted after a crash or a timeout."""

    def __init__(
        self,
        name: str,
        code_dir: Path,
        handler: str,
        environment: dict[str, str],
        timeout: float,
        log_path: Path | None = None,
        extra_sys_path: list[Path] | None = None,
    ) -> None:
        self.name = name
        self._extra_sys_path = [str(p) for p in extra_sys_path or []]
        self._code_dir = code_dir
        self._handler = handler
        self._environment = environment
        self._timeout = timeout
        self._log_path = log_path
        self._lock = threading.Lock()
        self._process: Any = None
        self._connection: Connection | None = None

    def _start(self) -> None:
        """Start the process and wait for its init (imports) like Lambda's init phase."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_worker_main,
            args=(
                str(self._code_dir),
                self._handler,
                self.name,
                self._environment,
                str(self._log_path) if self._log_path else None,
                self._extra_sys_path,
                child,
            ),
            name=f"lambda-{self.name}",
            daemon=True,
        )
        try:
            self._process.start()
        except Exception:
            self._process = None
            raise
        finally:
            child.close()
        self._connection = parent
        try:
            ready = parent.poll(INIT_TIMEOUT_SECONDS) and parent.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._kill()
            raise InvocationError("init_error", f"{self.name} failed to initialize (see its log)")

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
        self._process = None
        self._connection = None

    def invoke(self, event: Any) -> Any:
        """Run the handler on ``event``; raises InvocationError like a failed Lambda invoke."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()
            assert self._connection is not None
            try:
                self._connection.send(event)
                if not self._connection.poll(self._timeout):
                    self._kill()
                    raise InvocationError("timeout", f"{self.name} ran past {self._timeout} s")
                status, payload = self._connection.recv()
            except (EOFError, BrokenPipeError, ConnectionResetError):
                self._kill()
                raise InvocationError(
                    "crash", f"{self.name} exited during the invocation"
                ) from None
            if status == "error":
                raise InvocationError("handler_error", payload)
            return payload

    def stop(self) -> None:
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(OSError):  # already gone: nothing to tell it
                    self._connection.send(None)
            if self._process is not None:
                self._process.join(timeout=5)
                if self._process.is_alive():
                    self._process.kill()
            self._process = None
            self._connection = None
