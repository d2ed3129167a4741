"""`stripe-everflow`: the bridge's command line.

stripe-everflow local [--port N] [--everflow-url URL] [--config FILE]
stripe-everflow demo
stripe-everflow send EVENT.json [--url URL] [--secret whsec_…]
stripe-everflow sign EVENT.json [--secret whsec_…] [--account NAME] [--apigw]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from stripe_everflow_cli.localconfig import (
    DEFAULT_CONFIG_FILE,
    LOCAL_WEBHOOK_SECRET,
    load_local_config,
)


def _config_path(value: str | None) -> Path | None:
    if value:
        return Path(value)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def cmd_local(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.stack import LocalStack, find_project_root

    try:
        config = load_local_config(_config_path(args.config), os.environ)
    except ValueError as error:
        print(f"stripe-everflow local: {error}", file=sys.stderr)
        return 2
    stack = LocalStack(
        project_root=find_project_root(),
        config=config,
        port=args.port,
        aws_port=args.aws_port,
        everflow_url=args.everflow_url,
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
    _print_ready(stack, config)
    if args.ready_file:
        # Written aside, then renamed: a watcher never reads a half-written file.
        ready = Path(args.ready_file)
        partial = ready.with_name(ready.name + ".partial")
        partial.write_text(
            json.dumps(
                {
                    "url": stack.base_url,
                    "aws_endpoint": stack.aws_endpoint,
                    "everflow_url": stack.everflow_url,
                }
            ),
            encoding="utf-8",
        )
        os.replace(partial, ready)
    stop.wait()
    print("stopping the local stack…", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0


def _everflow_line(stack: Any) -> str:
    if stack.everflow is None:
        return str(stack.everflow_url)
    return f"built-in stand-in {stack.everflow_url} (what it got: GET /__standin/requests)"


def _print_ready(stack: Any, config: Any) -> None:
    accounts = config.secret["stripe_accounts"]
    lines = [
        "stripe-everflow local stack ready",
        f"  webhook (account default):   {stack.base_url}/stripe/webhook",
        f"  webhook (account NAME):      {stack.base_url}/stripe/webhook/NAME",
        f"  health:                      {stack.base_url}/health",
        f"  AWS endpoint (moto):         {stack.aws_endpoint}  (region us-east-1, any credentials)",
        f"  Everflow:                    {_everflow_line(stack)}",
        f"  config:                      {config.source}",
        "  Stripe accounts and local signing secrets:",
    ]
    for name, account in accounts.items():
        mode = "live" if account["livemode"] else "test"
        lines.append(f"    {name:<12} {mode} mode  {', '.join(account['webhook_secrets'])}")
    lines += [f"  warning: {warning}" for warning in config.warnings]
    lines.append(f"  try: stripe listen --forward-to {stack.base_url}/stripe/webhook")
    lines.append("  (its whsec_… goes in local.config.json, see README)  Ctrl-C stops.")
    print("\n".join(lines), flush=True)


def cmd_everflow_standin(args: argparse.Namespace) -> int:
    from stripe_everflow_cli.everflow_standin import EverflowStandIn

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
        read_ledger,
        render,
    )

    try:
        start, end = parse_day(args.date_from), parse_day(args.date_to)
        dynamodb, table = ledger_client(args.endpoint, args.stack, args.region)
        entries = read_ledger(dynamodb, table)
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
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stripe-everflow",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the whole pipeline on this machine")
    local.add_argument("--port", type=int, default=3000, help="HTTP port (0 = any free port)")
    local.add_argument("--aws-port", type=int, default=0, help="port of the embedded moto server")
    local.add_argument(
        "--everflow-url", help="where postbacks go (default: a built-in Everflow stand-in)"
    )
    local.add_argument(
        "--config", help=f"secret and parameters file (default: ./{DEFAULT_CONFIG_FILE})"
    )
    local.add_argument("--log-file", help="write the functions' logs here instead of the terminal")
    local.add_argument("--ready-file", help="write the URLs as JSON here once serving")
    local.add_argument(
        "--no-consumers",
        action="store_true",
        help="do not run the queue consumers: see what the webhook queued, untouched",
    )
    local.set_defaults(run=cmd_local)

    demo = commands.add_parser("demo", help="scripted scenario through the local stack")
    demo.set_defaults(run=cmd_demo)

    standin = commands.add_parser(
        "everflow-standin", help="run only the local Everflow stand-in (records every call)"
    )
    standin.add_argument("--port", type=int, default=3100)
    standin.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    standin.set_defaults(run=cmd_everflow_standin)

    report = commands.add_parser("report", help="conversions or refunds from the ledger")
    report.add_argument("kind", choices=["conversions", "refunds"])
    report.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (UTC)")
    report.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (UTC), inclusive")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument("--stack", help="a deployed stack's name (its LedgerTableName output)")
    report.add_argument("--region", help="the deployed stack's region")
    report.add_argument("--endpoint", help="the local stack's AWS endpoint (printed at start)")
    report.set_defaults(run=cmd_report)

    again = commands.add_parser("redrive", help="send a DLQ's messages back to its queue")
    again.add_argument("queue", choices=["payment-events", "postbacks"])
    again.add_argument("--max", type=int, help="move at most this many")
    again.add_argument("--stack", help="a deployed stack's name")
    again.add_argument("--region", help="the deployed stack's region")
    again.add_argument("--endpoint", help="the local stack's AWS endpoint (printed at start)")
    again.set_defaults(run=cmd_redrive)

    send = commands.add_parser("send", help="sign a Stripe event file and POST it")
    send.add_argument("event")
    send.add_argument("--url", default="http://127.0.0.1:3000/stripe/webhook")
    send.add_argument("--secret", default=LOCAL_WEBHOOK_SECRET)
    send.set_defaults(run=cmd_send)

    sign = commands.add_parser("sign", help="print a Stripe-Signature header (or an API event)")
    sign.add_argument("event")
    sign.add_argument("--secret", default=LOCAL_WEBHOOK_SECRET)
    sign.add_argument("--account", default="default")
    sign.add_argument("--apigw", action="store_true", help="print an HTTP API payload-2.0 event")
    sign.set_defaults(run=cmd_sign)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
