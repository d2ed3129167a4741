"""`stripe-everflow`: the bridge's command line.

  stripe-everflow local            the whole pipeline on this machine
  stripe-everflow setup            connect Stripe and Everflow to a stack (guided)
  stripe-everflow doctor           check a stack, Stripe and Everflow: one line per check
  stripe-everflow status           a stack at a glance
  stripe-everflow COMMAND --help   each command's arguments and defaults

A stack is the local one running here (found automatically, or --endpoint URL) or a
deployed one (--stack NAME [--region R]). Errors are one line and a documented exit
code (README, "Exit codes"); STRIPE_EVERFLOW_DEBUG=1 shows a traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from stripe_everflow_cli import errors
from stripe_everflow_cli.errors import CliError, cli_error_of, one_line, read_json_file
from stripe_everflow_cli.localconfig import (
    DEFAULT_CONFIG_FILE,
    LOCAL_WEBHOOK_SECRET,
    load_local_config,
)

PROG = "stripe-everflow"
DEBUG_VARIABLE = "STRIPE_EVERFLOW_DEBUG"


def _config_path(value: str | None) -> Path | None:
    if value:
        return Path(value)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _check_port_free(port: int, flag: str) -> None:
    """Raises CliError when ``port`` is taken (the embedded AWS server would wait for
    it forever)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                raise CliError(
                    f"port {port} ({flag}) is already in use",
                    f"stop the program using it or pick another with {flag} (0 = any free port)",
                    errors.PORT_BUSY,
                ) from None
            raise


def _check_config_file(path: Path | None) -> None:
    """A missing file or one that is not JSON, named with its own exit code (what is
    wrong inside it is ``load_local_config``'s to say)."""
    if path is not None:
        read_json_file(path, "local config (JSON, see README: The local stack)")
    raw = os.environ.get("STRIPE_EVERFLOW_SECRET")
    if raw:
        try:
            json.loads(raw)
        except ValueError:
            raise CliError(
                "STRIPE_EVERFLOW_SECRET is not valid JSON",
                "set it to the secret's JSON document, or unset it",
                errors.NOT_JSON,
            ) from None


def cmd_local(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.stack import LocalStack, find_project_root
    from stripe_everflow_cli.targets import clear_local_state, write_local_state

    try:
        root = find_project_root()
    except FileNotFoundError:
        raise errors.outside_project() from None
    path = _config_path(args.config)
    _check_config_file(path)
    try:
        config = load_local_config(path, os.environ)
    except ValueError as error:
        print(f"stripe-everflow local: {error}", file=sys.stderr)
        return 2
    _check_port_free(args.port, "--port")
    _check_port_free(args.aws_port, "--aws-port")
    stack = LocalStack(
        project_root=root,
        config=config,
        port=args.port,
        aws_port=args.aws_port,
        everflow_url=args.everflow_url,
        stripe_url=args.stripe_url or os.environ.get("STRIPE_API_BASE") or None,
        log_path=Path(args.log_file) if args.log_file else None,
        consumers_enabled=not args.no_consumers,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stack.start()
    except ValueError as error:  # a bad parameter or setting: nothing was started
        print(f"stripe-everflow local: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno == errno.EADDRINUSE:  # taken between the check and the start
            raise errors.port_busy(args.port) from None
        raise
    urls = {
        "url": stack.base_url,
        "aws_endpoint": stack.aws_endpoint,
        "everflow_url": stack.everflow_url,
        "stripe_url": stack.stripe_url,
    }
    _print_ready(stack, config)
    if args.ready_file:
        # Written aside, then renamed: a watcher never reads a half-written file.
        ready = Path(args.ready_file)
        partial = ready.with_name(ready.name + ".partial")
        partial.write_text(json.dumps(urls), encoding="utf-8")
        os.replace(partial, ready)
    # How `status`, `doctor` and `setup` find this stack without --endpoint.
    write_local_state({**urls, "parameters": config.parameters})
    try:
        stop.wait()
    finally:
        clear_local_state()
        print("stopping the local stack…", flush=True)
        stack.stop()
        print("stopped.", flush=True)
    return 0


def _everflow_line(stack: Any) -> str:
    if stack.everflow is None:
        return str(stack.everflow_url)
    return f"built-in stand-in {stack.everflow_url} (what it got: GET /__standin/requests)"


def _stripe_line(stack: Any) -> str:
    if stack.stripe is None:
        return str(stack.stripe_url)
    return f"built-in stand-in {stack.stripe_url} (STRIPE_API_BASE for doctor and setup)"


def _print_ready(stack: Any, config: Any) -> None:
    accounts = config.secret.get("stripe_accounts") or {}
    lines = [
        "stripe-everflow local stack ready",
        f"  webhook (account default):   {stack.base_url}/stripe/webhook",
        f"  webhook (account NAME):      {stack.base_url}/stripe/webhook/NAME",
        f"  health:                      {stack.base_url}/health",
        f"  AWS endpoint (moto):         {stack.aws_endpoint}  (region us-east-1, any credentials)",
        f"  Everflow:                    {_everflow_line(stack)}",
        f"  Stripe API:                  {_stripe_line(stack)}",
        f"  config:                      {config.source}",
        "  Stripe accounts and local signing secrets:",
    ]
    for name, account in accounts.items():
        mode = "live" if account["livemode"] else "test"
        lines.append(f"    {name:<12} {mode} mode  {', '.join(account['webhook_secrets'])}")
    if not accounts:
        lines.append("    none: the webhook answers 503 until stripe-everflow setup adds one")
    lines += [f"  warning: {warning}" for warning in config.warnings]
    lines.append(f"  try: stripe listen --forward-to {stack.base_url}/stripe/webhook")
    lines.append("  (its whsec_… goes in local.config.json, see README)  Ctrl-C stops.")
    print("\n".join(lines), flush=True)


def cmd_everflow_standin(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.everflow_standin import EverflowStandIn

    _check_port_free(args.port, "--port")
    standin = EverflowStandIn(port=args.port)
    standin.set_default({"status": 200, "delay": args.delay})
    standin.start()
    print(f"Everflow stand-in on {standin.url} (GET /__standin/requests)", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    standin.stop()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.report import (
        ledger_client,
        parse_day,
        prepare_report,
        read_entries,
        read_ledger,
        render,
    )

    try:
        start, end = parse_day(args.date_from), parse_day(args.date_to)
        if args.kind == "refunds":
            # the ledger, and the refunds and disputes still waiting for their payment
            entries = read_entries(args.endpoint, args.stack, args.region)
        else:
            entries = read_ledger(*ledger_client(args.endpoint, args.stack, args.region))
    except CliError:
        raise
    except ValueError as error:
        print(f"stripe-everflow report: {error}", file=sys.stderr)
        return 2
    report = prepare_report(args.kind, entries, start, end)
    print(render(report, args.format))
    if report.notes and args.format == "csv":
        # Kept out of the CSV itself; the table and JSON formats carry them.
        for note in report.notes:
            print(f"stripe-everflow report: {note}", file=sys.stderr)
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.redrive import queue_urls, redrive

    try:
        sqs, dlq_url, source_url = queue_urls(args.queue, args.endpoint, args.stack, args.region)
    except CliError:
        raise
    except ValueError as error:
        print(f"stripe-everflow redrive: {error}", file=sys.stderr)
        return 2
    moved = redrive(sqs, dlq_url, source_url, args.max)
    print(f"moved {moved} message(s) from {dlq_url} back to {source_url}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.demo import run_demo

    return run_demo()


def _read_event(path: str) -> dict[str, Any]:
    """A Stripe event file; raises CliError (missing, not JSON, not an event)."""
    what = "Stripe event file (see events/)"
    event = read_json_file(path, what)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise errors.usage(f'{path} is not a Stripe event (no "type")', f"give a {what}")
    return event


def cmd_send(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.signing import post_signed, serialize_event, signature_header

    body = serialize_event(_read_event(args.event))
    answer = post_signed(args.url, body, signature_header(body, args.secret))
    print(answer.status_code, answer.text)
    return 0 if answer.ok else 1


def cmd_sign(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.gateway import build_http_api_event
    from stripe_everflow_cli.signing import serialize_event, signature_header

    body = serialize_event(_read_event(args.event))
    header = signature_header(body, args.secret)
    if not args.apigw:
        print(header)
        return 0
    path, route = "/stripe/webhook", "POST /stripe/webhook"
    parameters = {}
    if args.account != "default":
        path, route = f"/stripe/webhook/{args.account}", "POST /stripe/webhook/{account}"
        parameters = {"account": args.account}
    event = build_http_api_event(
        method="POST",
        raw_path=path,
        raw_query="",
        headers=[("content-type", "application/json"), ("stripe-signature", header)],
        body=body,
        route_key=route,
        path_parameters=parameters,
        source_ip="127.0.0.1",
    )
    print(json.dumps(event, indent=2))
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; each argument's help ends with its default, when it
    has one worth saying (not None, not a flag's False, not already in the help)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or isinstance(action, argparse._HelpAction | argparse._VersionAction)
        ):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, whose errors are one line naming the problem and the fix."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            errors.USAGE,
            f"{self.prog}: {one_line(message)} — see {self.prog} --help\n",
        )


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("stripe-everflow-bridge")
    except PackageNotFoundError:  # run from a checkout without pip install -e .
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, ValueError, KeyError):
            return "unknown"


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """--stack / --region / --endpoint, as every command working on a stack takes them."""
    parser.add_argument(
        "--stack",
        help="a deployed stack's name (default: the local stack running here)",
    )
    parser.add_argument(
        "--region", help="the deployed stack's region (default: your AWS configuration's)"
    )
    parser.add_argument(
        "--endpoint",
        help="the local stack's AWS endpoint, printed at its start (default: found by itself)",
    )


# The commands working on a stack: (name, module, help).
STACK_COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "setup",
        "stripe_everflow_cli.setup_stack",
        "connect Stripe and Everflow to a stack: guided, re-runnable",
    ),
    (
        "doctor",
        "stripe_everflow_cli.doctor",
        "check the stack, Stripe and Everflow; 1 on a problem",
    ),
    ("status", "stripe_everflow_cli.status", "queues, ledger totals, parked payments at a glance"),
)

# Commands other modules bring: (name, module, help). Registered when the module is
# there and offers add_arguments(parser) and run(args) -> int.
PLUGGED_COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "stripe-standin",
        "stripe_everflow_cli.stripe_standin",
        "run only the local Stripe API stand-in",
    ),
    (
        "import-clicks",
        "stripe_everflow_cli.import_clicks",
        "store clicks from a CSV file or Everflow's conversion report",
    ),
    ("replay", "stripe_everflow_cli.replay", "Stripe events again, through the webhook's checks"),
    (
        "backfill",
        "stripe_everflow_cli.backfill",
        "Stripe's history since a date, through the bridge",
    ),
    (
        "reconcile",
        "stripe_everflow_cli.reconcile",
        "Stripe's money against the ledger and Everflow",
    ),
)


def _plugged(name: str) -> tuple[Callable[[Any], None], Callable[[Any], int]] | None:
    try:
        module = importlib.import_module(name)
    except Exception:  # not there yet, or broken: the rest of the CLI still works
        return None
    add, run = getattr(module, "add_arguments", None), getattr(module, "run", None)
    if not callable(add) or not callable(run):
        return None
    return add, run


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help, description=description or help, formatter_class=HelpFormatter
        )

    local = command("local", "run the whole pipeline on this machine")
    local.add_argument("--port", type=int, default=3000, help="HTTP port (0 = any free port)")
    local.add_argument(
        "--aws-port", type=int, default=0, help="port of the embedded moto server (0 = any free)"
    )
    local.add_argument(
        "--everflow-url", help="where postbacks go (default: a built-in Everflow stand-in)"
    )
    local.add_argument(
        "--stripe-url",
        help="Stripe's API for the functions (default: STRIPE_API_BASE, else a built-in "
        "Stripe API stand-in)",
    )
    local.add_argument(
        "--config", help=f"secret and parameters file (default: ./{DEFAULT_CONFIG_FILE} if present)"
    )
    local.add_argument("--log-file", help="write the functions' logs here (default: the terminal)")
    local.add_argument(
        "--ready-file", help="write the URLs as JSON here once serving (default: none)"
    )
    local.add_argument(
        "--no-consumers",
        action="store_true",
        help="do not run the queue consumers: see what the webhook queued, untouched",
    )
    local.set_defaults(run=cmd_local)

    demo = command("demo", "scripted scenario through the local stack")
    demo.set_defaults(run=cmd_demo)

    for name, module_name, text in STACK_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        sub = command(name, text, module.__doc__)
        add_stack_arguments(sub)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)

    standin = command(
        "everflow-standin", "run only the local Everflow stand-in (records every call)"
    )
    standin.add_argument("--port", type=int, default=3100, help="HTTP port (0 = any free port)")
    standin.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    standin.set_defaults(run=cmd_everflow_standin)

    for name, module_name, text in PLUGGED_COMMANDS:
        plugged = _plugged(module_name)
        if plugged is not None:
            sub = command(name, text)
            plugged[0](sub)
            sub.set_defaults(run=plugged[1])

    report = command("report", "conversions or refunds from the ledger")
    report.add_argument("kind", choices=["conversions", "refunds"], help="what to list")
    report.add_argument(
        "--from", dest="date_from", help="first day, YYYY-MM-DD UTC (default: the first entry)"
    )
    report.add_argument(
        "--to", dest="date_to", help="last day, YYYY-MM-DD UTC, inclusive (default: the last entry)"
    )
    report.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="output format"
    )
    add_stack_arguments(report)
    report.set_defaults(run=cmd_report)

    again = command("redrive", "send a DLQ's messages back to its queue")
    again.add_argument("queue", choices=["payment-events", "postbacks"], help="which DLQ to empty")
    again.add_argument("--max", type=int, help="move at most this many (default: all)")
    add_stack_arguments(again)
    again.set_defaults(run=cmd_redrive)

    send = command("send", "sign a Stripe event file and POST it")
    send.add_argument("event", help="a Stripe event JSON file (see events/)")
    send.add_argument(
        "--url", default="http://127.0.0.1:3000/stripe/webhook", help="the webhook URL"
    )
    send.add_argument("--secret", default=LOCAL_WEBHOOK_SECRET, help="the signing secret")
    send.set_defaults(run=cmd_send)

    sign = command("sign", "print a Stripe-Signature header (or an API event)")
    sign.add_argument("event", help="a Stripe event JSON file (see events/)")
    sign.add_argument("--secret", default=LOCAL_WEBHOOK_SECRET, help="the signing secret")
    sign.add_argument("--account", default="default", help="the Stripe account's name")
    sign.add_argument("--apigw", action="store_true", help="print an HTTP API payload-2.0 event")
    sign.set_defaults(run=cmd_sign)
    return parser


def report_error(command: str | None, error: BaseException) -> int:
    """Print ``error`` as one line; returns its exit code."""
    where = f"{PROG} {command}" if command else PROG
    foreseen = cli_error_of(error)
    if foreseen is None:
        detail = one_line(str(error))
        print(
            f"{where}: unexpected {type(error).__name__}{': ' + detail if detail else ''}"
            f" — rerun with {DEBUG_VARIABLE}=1 for the traceback and report it",
            file=sys.stderr,
        )
        return errors.UNEXPECTED
    print(f"{where}: {foreseen}", file=sys.stderr)
    return foreseen.code


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; any failure becomes one line and its exit code."""
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        return report_error(getattr(args, "command", None), error)


if __name__ == "__main__":
    sys.exit(main())
