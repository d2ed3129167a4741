"""`stripe-everflow replay`: Stripe events again, through the webhook's own checks.

Sources:

* a JSON-lines file, one Stripe event per line (an export, events saved by
  ``stripe events list``, the ``event`` of PaymentEventsDLQ messages);
* ``--from-stripe``: Stripe's events API (``GET /v1/events``, which keeps 30 days),
  from ``--since`` (default: 30 days ago), only ``--types`` if given, read with the
  account's restricted key (Read on Events).

Each event goes through what the webhook does after the signature
(``intake.webhook.queue_event``: the account's mode, the allow-list, the shape, email
redaction) and is queued on PaymentEventsQueue with source ``replay``; there is no
signature to check, the operator vouches for the file. The matcher counts each event
id, and each Stripe object and type, once: a replay of what was already counted
changes nothing, so replaying the same events twice is safe.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from stripe_everflow_cli.errors import MISSING_FILE, STRIPE_REFUSED, USAGE, CliError
from stripe_everflow_cli.progress import Progress

EVENTS_API_DAYS = 30
MAX_PROBLEMS_SHOWN = 50


class UnusableSourceError(ValueError):
    """The events cannot be read at all; ``code`` is the exit code
    (``errors.EXIT_CODES``)."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Replayed:
    accepted: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    # (line or event id, what is wrong): events that are not Stripe events
    refused: list[tuple[str, str]] = field(default_factory=list)


def read_file(path: Path) -> Iterator[tuple[str, Any]]:
    """(``line N``, the event, or an Exception saying why the line is not one)."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise UnusableSourceError(f"{path}: no such file", MISSING_FILE) from None
    except OSError as error:
        raise UnusableSourceError(
            f"{path}: cannot be read ({error.strerror})", MISSING_FILE
        ) from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield f"line {number}", json.loads(line)
                except ValueError:
                    yield f"line {number}", ValueError("not JSON")
        except UnicodeDecodeError:
            raise UnusableSourceError(f"{path}: not UTF-8 text") from None


def read_stripe_events(
    api_key: str, since: int, types: list[str], api_base: str | None
) -> Iterator[tuple[str, Any]]:
    """Every event of Stripe's events API since ``since``, oldest first (the API lists
    newest first: read whole, then reversed, so payments come before their refunds)."""
    import stripe

    options: dict[str, Any] = {"max_network_retries": 3}
    if api_base:
        options["base_addresses"] = {"api": api_base}
    client = stripe.StripeClient(api_key, **options)
    params: dict[str, Any] = {"created": {"gte": since}, "limit": 100}
    if types:
        params["types"] = types
    try:
        pages = client.v1.events.list(params=cast(Any, params)).auto_paging_iter()
        events = [e.to_dict() for e in pages]
    except stripe.StripeError as error:
        raise UnusableSourceError(
            f"Stripe's events API: {type(error).__name__}: {error.user_message or error}",
            STRIPE_REFUSED,
        ) from None
    for event in reversed(events):
        yield str(event.get("id")), event


def replay(
    events: Iterable[tuple[str, Any]],
    *,
    account: Any,
    settings: Any,
    secret: Any,
    sender: Any,
    dry_run: bool,
    progress: Progress | None = None,
) -> Replayed:
    """Each event through the webhook's checks, queued unless ``dry_run``."""
    from stripe_everflow.domain.errors import BridgeError
    from stripe_everflow.intake.webhook import queue_event

    class _Nowhere:
        def send(self, body: str, attributes: dict[str, str]) -> str:
            return "dry-run"

    result = Replayed()
    target = _Nowhere() if dry_run else sender
    for where, event in events:
        if progress is not None:
            progress.advance()
        if isinstance(event, Exception):
            result.refused.append((where, str(event)))
            continue
        try:
            outcome = queue_event(
                event,
                account,
                settings=settings,
                secret=secret,
                sender=target,
                now=time.time(),
                source="replay",
            )
        except BridgeError as error:
            result.refused.append((where, str(error)))
            continue
        if outcome.status == "accepted":
            result.accepted += 1
        else:
            result.ignored[outcome.reason or "ignored"] += 1
    return result


def _day(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", type=Path, help="JSON-lines file of Stripe events (one per line)"
    )
    parser.add_argument(
        "--from-stripe",
        action="store_true",
        help="read Stripe's events API instead of a file (it keeps 30 days)",
    )
    parser.add_argument(
        "--since",
        type=_day,
        help="with --from-stripe: first day (UTC), default 30 days ago",
    )
    parser.add_argument(
        "--types",
        default="",
        help="with --from-stripe: comma-separated event types, default every type",
    )
    parser.add_argument("--account", default="default", help="the Stripe account's name")
    parser.add_argument(
        "--stripe-api-base", default=None, help="Stripe's API address (a stand-in's, for tests)"
    )
    parser.add_argument("--dry-run", action="store_true", help="check every event, queue none")
    parser.add_argument("--endpoint", help="the local stack's AWS endpoint URL")
    parser.add_argument("--stack", help="a deployed stack's name")
    parser.add_argument("--region", help="the deployed stack's AWS region")


def run(args: argparse.Namespace) -> int:
    """0: replayed; 1: some events were refused (the others were queued); else the
    code of what stopped it (``errors.EXIT_CODES``: 2 usage, 3 no file, 11 Stripe)."""
    from stripe_everflow_cli.stack_access import stack_access

    name = "stripe-everflow replay"
    if bool(args.file) == bool(args.from_stripe):
        print(f"{name}: give a FILE or --from-stripe (one of the two)", file=sys.stderr)
        return 2
    try:
        access = stack_access(args.endpoint, args.stack, args.region)
        secret = access.cached_secret()
        account = secret.get().account(args.account)
        if account is None:
            raise UnusableSourceError(f"no Stripe account named {args.account!r} is configured")
        settings = access.webhook_settings()
        if args.file:
            events: Iterable[tuple[str, Any]] = read_file(args.file)
            total = None
        else:
            if not account.api_key:
                raise UnusableSourceError(
                    f"account {args.account!r} has no api_key in the bridge secret "
                    "(a restricted key with Read on Events)"
                )
            since = args.since or int(
                (datetime.now(UTC) - timedelta(days=EVENTS_API_DAYS)).timestamp()
            )
            types = [t.strip() for t in args.types.split(",") if t.strip()]
            events = list(read_stripe_events(account.api_key, since, types, args.stripe_api_base))
            total = len(events)
        progress = Progress("events", total)
        result = replay(
            events,
            account=account,
            settings=settings,
            secret=secret,
            sender=None if args.dry_run else access.payment_events(),
            dry_run=args.dry_run,
            progress=progress,
        )
        progress.finish()
    except CliError:
        raise
    except ValueError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return getattr(error, "code", USAGE)
    for where, problem in result.refused[:MAX_PROBLEMS_SHOWN]:
        print(f"{name}: {where}: {problem}", file=sys.stderr)
    verb = "would be queued" if args.dry_run else "queued"
    ignored = ", ".join(f"{count} {reason}" for reason, count in sorted(result.ignored.items()))
    print(
        f"{result.accepted} event(s) {verb}; ignored: {ignored or 'none'}; "
        f"refused: {len(result.refused)}"
    )
    return 1 if result.refused else 0
