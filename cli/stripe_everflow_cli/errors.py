"""What goes wrong when someone runs `stripe-everflow`, as one line and an exit code.

Every failure the command line foresees is a ``CliError``: one line naming the
problem and the fix (``stripe-everflow send: events/x.json does not exist — give the
path of a Stripe event file``), and an exit code of its own, so a script can tell a
stack that is down from a key Stripe refused. ``cli_error_of`` turns the exceptions
the libraries raise (a missing file, a refused connection, botocore's missing
credentials, CloudFormation's unknown stack) into them; ``main`` prints anything
else as one line too (never a traceback, unless ``STRIPE_EVERFLOW_DEBUG=1``).

Exit codes: ``EXIT_CODES`` (the README's table is printed from it).
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# code, name, meaning — the table the README prints.
EXIT_CODES: tuple[tuple[int, str, str], ...] = (
    (0, "ok", "done; for doctor: every check passed"),
    (1, "problem found", "doctor found a problem, or Everflow/the webhook refused what was sent"),
    (2, "bad usage", "an argument, setting or config value is wrong (the line names it)"),
    (3, "missing file", "a file given does not exist or cannot be read"),
    (4, "not JSON", "a file or value that must be JSON is not"),
    (5, "outside the project", "run from the project (no template.yaml here or above)"),
    (6, "port busy", "the port asked for is taken by another program"),
    (7, "server down", "nothing answers at the URL or endpoint (is the local stack running?)"),
    (8, "no AWS credentials", "AWS credentials or region missing for --stack"),
    (9, "unknown stack", "no CloudFormation stack of that name in that region"),
    (10, "AWS refused", "AWS answered with an error (permissions, throttling)"),
    (11, "Stripe refused", "the Stripe key is invalid or lacks a permission setup needs"),
    (12, "Everflow refused", "the Everflow API key, offer or event is refused"),
    (70, "unexpected", "a bug: rerun with STRIPE_EVERFLOW_DEBUG=1 and report the traceback"),
    (130, "interrupted", "stopped by Ctrl-C"),
)

OK = 0
PROBLEM = 1
USAGE = 2
MISSING_FILE = 3
NOT_JSON = 4
OUTSIDE_PROJECT = 5
PORT_BUSY = 6
SERVER_DOWN = 7
NO_AWS_CREDENTIALS = 8
UNKNOWN_STACK = 9
AWS_REFUSED = 10
STRIPE_REFUSED = 11
EVERFLOW_REFUSED = 12
UNEXPECTED = 70
INTERRUPTED = 130


@dataclass
class CliError(ValueError):
    """A failure foreseen: ``problem`` and ``fix`` make the one line printed. (A
    ValueError, as the operator modules' refusals were before it.)"""

    problem: str
    fix: str = ""
    code: int = USAGE

    def __str__(self) -> str:
        return f"{self.problem} — {self.fix}" if self.fix else self.problem


def one_line(text: str) -> str:
    """``text`` with its whitespace runs (newlines too) made single spaces."""
    return " ".join(str(text).split())


def usage(problem: str, fix: str = "") -> CliError:
    return CliError(problem, fix, USAGE)


def missing_file(path: str | Path, what: str = "file", reason: str = "does not exist") -> CliError:
    return CliError(f"{path} {reason}", f"give the path of an existing {what}", MISSING_FILE)


def not_json(path: str | Path, fix: str = "check the file is JSON") -> CliError:
    return CliError(f"{path} is not valid JSON", fix, NOT_JSON)


def outside_project() -> CliError:
    return CliError(
        "template.yaml not found here or in any directory above",
        "run from the project's directory (the one holding template.yaml)",
        OUTSIDE_PROJECT,
    )


def port_busy(port: int | str) -> CliError:
    return CliError(
        f"port {port} is already in use",
        "stop the program using it or pick another with --port (0 = any free port)",
        PORT_BUSY,
    )


def server_down(where: str) -> CliError:
    return CliError(
        f"nothing answers at {where}",
        "start it (stripe-everflow local) or check the URL/--endpoint",
        SERVER_DOWN,
    )


def read_json_file(path: str | Path, what: str = "JSON file") -> Any:
    """The JSON in ``path``; raises CliError (missing file, not JSON)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise missing_file(path, what) from None
    except IsADirectoryError:
        raise missing_file(path, what, "is a directory") from None
    except OSError as error:
        raise missing_file(path, what, f"cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise not_json(path, f"give a {what} (UTF-8 JSON)") from None
    try:
        return json.loads(text)
    except ValueError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise CliError(f"{path} is not valid JSON{where}", f"give a {what}", NOT_JSON) from None


def _aws_error(error: BaseException) -> CliError | None:
    try:
        from botocore import exceptions as boto
    except ImportError:  # pragma: no cover - botocore is a runtime dependency
        return None
    if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
        return CliError(
            "no AWS credentials found",
            "configure them (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID) for --stack,"
            " or use the local stack",
            NO_AWS_CREDENTIALS,
        )
    if isinstance(error, boto.NoRegionError):
        return CliError(
            "no AWS region set",
            "give --region, or set AWS_REGION / a profile region",
            NO_AWS_CREDENTIALS,
        )
    if isinstance(error, boto.ProfileNotFound):
        return CliError(
            one_line(str(error)), "fix AWS_PROFILE or add that profile", NO_AWS_CREDENTIALS
        )
    if isinstance(error, boto.EndpointConnectionError):
        return server_down(str(getattr(error, "kwargs", {}).get("endpoint_url", "the endpoint")))
    if isinstance(error, boto.ClientError):
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "")), str(details.get("Message", ""))
        operation = getattr(error, "operation_name", "")
        if code == "ValidationError" and "does not exist" in message:
            return CliError(
                one_line(message),
                "check --stack (the name sam deploy used) and --region",
                UNKNOWN_STACK,
            )
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"):
            return CliError(
                f"AWS refused the credentials ({code})",
                "renew them (aws sso login, or new keys)",
                NO_AWS_CREDENTIALS,
            )
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException"):
            return CliError(
                f"AWS refused {operation or 'the call'}: {code}",
                "use credentials allowed to read the stack (see README, Operator commands)",
                AWS_REFUSED,
            )
        return CliError(
            f"AWS answered {code or 'an error'} to {operation or 'a call'}: {one_line(message)}",
            "retry; if it persists, check the stack in the AWS console",
            AWS_REFUSED,
        )
    if isinstance(error, boto.BotoCoreError):
        return CliError(one_line(str(error)), "check the AWS settings", AWS_REFUSED)
    return None


def cli_error_of(error: BaseException) -> CliError | None:
    """The CliError a library exception stands for, or None when it is not foreseen."""
    if isinstance(error, CliError):
        return error
    aws = _aws_error(error)
    if aws is not None:
        return aws
    try:
        import requests
    except ImportError:  # pragma: no cover - requests is a runtime dependency
        requests = None  # type: ignore[assignment]
    if requests is not None and isinstance(error, requests.ConnectionError):
        url = getattr(getattr(error, "request", None), "url", None) or "the URL"
        return server_down(str(url).split("?")[0])
    if requests is not None and isinstance(error, requests.Timeout):
        url = getattr(getattr(error, "request", None), "url", None) or "the URL"
        return CliError(
            f"{str(url).split('?')[0]} did not answer in time", "retry, or check it", SERVER_DOWN
        )
    if isinstance(error, ConnectionRefusedError):
        return server_down("the address given")
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return port_busy("asked for")
    if isinstance(error, FileNotFoundError) and "template.yaml" in str(error):
        return outside_project()
    if isinstance(error, FileNotFoundError) and error.filename:
        return missing_file(error.filename)
    return None
