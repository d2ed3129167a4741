"""`stripe-everflow import-clicks FILE.csv`: clicks recorded elsewhere, into the bridge.

An advertiser switching to the bridge has months of clicks its own site (or another
integration) recorded. This reads them from a CSV file with a header row::

    email,transaction_id,offer_id,affiliate_id,stripe_customer_id,occurred_at
    jenny.rosen@example.com,abc123,12,7,cus_QbridgeJenny01,2026-01-01T00:00:00Z

``email`` and ``transaction_id`` are required; ``offer_id`` (or ``offer``),
``affiliate_id`` (or ``affiliate``), ``stripe_customer_id`` (or ``stripe_customer``),
``stripe_account`` and ``occurred_at`` (unix seconds or ISO 8601 with a zone) are
optional, with the rules of ``POST /clicks`` (``clicks.register.parse_click``: one
rule for both). Every row is checked before anything is stored: each bad row is
reported with its line number and field, and nothing is stored unless every row is
good (``--skip-bad`` stores the good ones). Clicks are stored as ``POST /clicks``
stores them — the first report of a transaction id wins, so a second import of the
same file stores nothing — in batches, and each batch sends back to
PaymentEventsQueue the payments parked for the emails and customers it made known.
A click without ``occurred_at`` counts from the moment of the import, so history
needs the column.

``--from-everflow --since DATE [--until DATE]`` reads the clicks from Everflow's
conversion report instead: the scheduled sync (``clicks.everflow_source.EverflowSync``
``read_range``, with SyncClicksFunction's offer or advertiser and page size) run once
over the range, in windows of at most a year (Everflow's limit per report), page by
page: each page's clicks stored, then the payments parked for their emails replayed.
The sync's checkpoint is neither read nor moved. A page Everflow answers with 429, 5xx
or not at all is asked again after RETRY_PAUSES (a page is a read), then the command
stops with one line (exit 7); what was stored stays stored, and running the same
range again stores nothing twice and replays what is still parked.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from stripe_everflow_cli.errors import (
    AWS_REFUSED,
    EVERFLOW_REFUSED,
    MISSING_FILE,
    SERVER_DOWN,
    USAGE,
    CliError,
    cli_error_of,
    one_line,
    usage,
)
from stripe_everflow_cli.progress import Progress

# CSV column → the click field it fills (the short names are the words).
COLUMNS = {
    "email": "email",
    "transaction_id": "transaction_id",
    "offer_id": "offer_id",
    "offer": "offer_id",
    "affiliate_id": "affiliate_id",
    "affiliate": "affiliate_id",
    "stripe_customer_id": "stripe_customer_id",
    "stripe_customer": "stripe_customer_id",
    "stripe_account": "stripe_account",
    "occurred_at": "occurred_at",
}
REQUIRED = ("email", "transaction_id")
BATCH_SIZE = 100
MAX_BAD_ROWS_SHOWN = 50


class UnusableFileError(ValueError):
    """The file cannot be imported at all (not UTF-8, no usable header); ``code`` is
    its exit code (``errors.EXIT_CODES``)."""

    code = USAGE


class MissingFileError(UnusableFileError):
    code = MISSING_FILE


@dataclass(frozen=True)
class BadRow:
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field} {self.problem}"


@dataclass(frozen=True)
class Checked:
    good: list[tuple[int, Any]]  # (line, clicks.register.ClickInput)
    bad: list[BadRow]


@dataclass(frozen=True)
class Imported:
    stored: int
    already_stored: int
    replayed: int


def read_rows(path: Path) -> tuple[int, Iterator[tuple[int, dict[str, str]]]]:
    """The header's width and each data row as (its line number, click fields); the
    header is read at once, so a file without a usable one raises UnusableFileError
    here, before anything else happens."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file") from None
    except OSError as error:
        raise MissingFileError(f"{path}: cannot be read ({error.strerror})") from None
    reader = csv.reader(handle)
    try:
        fields = _fields(path, next(reader, None))
    except (UnicodeDecodeError, csv.Error) as error:
        handle.close()
        raise _unreadable(path, reader, error) from None
    except UnusableFileError:
        handle.close()
        raise

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            try:
                for values in reader:
                    if not any(value.strip() for value in values):
                        continue  # a blank line
                    if len(values) != len(fields):
                        yield reader.line_num, {"__width__": str(len(values))}
                        continue
                    yield reader.line_num, dict(zip(fields, values, strict=True))
            except (UnicodeDecodeError, csv.Error) as error:
                raise _unreadable(path, reader, error) from None

    return len(fields), rows()


def _fields(path: Path, header: list[str] | None) -> list[str]:
    if header is None:
        raise UnusableFileError(f"{path}: the file is empty (a header row is needed)")
    columns = [name.strip().lower() for name in header]
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise UnusableFileError(
            f"{path}: line 1: unknown column {unknown[0]!r} (known: {', '.join(sorted(COLUMNS))})"
        )
    fields = [COLUMNS[name] for name in columns]
    if len(set(fields)) != len(fields):
        raise UnusableFileError(f"{path}: line 1: a column is given twice")
    missing = [name for name in REQUIRED if name not in fields]
    if missing:
        raise UnusableFileError(f"{path}: line 1: no {missing[0]} column")
    return fields


def _unreadable(path: Path, reader: Any, error: Exception) -> UnusableFileError:
    if isinstance(error, UnicodeDecodeError):
        return UnusableFileError(f"{path}: not UTF-8 text (save the file as UTF-8)")
    return UnusableFileError(f"{path}: line {reader.line_num}: {error}")


def _click_document(row: dict[str, str]) -> dict[str, Any]:
    """A row as the JSON ``POST /clicks`` takes: empty cells absent, unix seconds
    as numbers."""
    document: dict[str, Any] = {k: v.strip() for k, v in row.items() if v.strip()}
    occurred = document.get("occurred_at")
    if isinstance(occurred, str) and occurred.isdigit():
        document["occurred_at"] = int(occurred)
    return document


def check_rows(
    rows: Iterator[tuple[int, dict[str, str]]], secret: Any, now: int, width: int
) -> Checked:
    """Every row validated with the rules of ``POST /clicks``."""
    from stripe_everflow.clicks.register import parse_click
    from stripe_everflow.domain.errors import ClickFieldError

    if not secret.email_hash_key:
        raise UnusableFileError("the bridge secret has no email_hash_key: run the stack once first")
    accounts = list(secret.stripe_accounts)
    good: list[tuple[int, Any]] = []
    bad: list[BadRow] = []
    for line, row in rows:
        if "__width__" in row:
            bad.append(BadRow(line, "row", f"has {row['__width__']} cells, the header {width}"))
            continue
        try:
            click = parse_click(
                _click_document(row), hash_key=secret.email_hash_key, accounts=accounts, now=now
            )
        except ClickFieldError as error:
            bad.append(BadRow(line, error.field, error.problem))
            continue
        good.append((line, replace(click, click=replace(click.click, source="import"))))
    return Checked(good, bad)


def store_clicks(
    good: Sequence[tuple[int, Any]],
    store: Any,
    payment_events: Any,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> Imported:
    """Store the clicks in batches (idempotent), each batch replaying the payments
    parked for what it made known."""
    from stripe_everflow.clicks.register import register_clicks

    stored = already = replayed = 0
    for start in range(0, len(good), BATCH_SIZE):
        batch = [click for _, click in good[start : start + BATCH_SIZE]]
        results, sent = register_clicks(
            batch, store=store, payment_events=payment_events, clock=clock
        )
        new = sum(result.status == "stored" for result in results)
        stored, already, replayed = stored + new, already + len(results) - new, replayed + sent
        if progress is not None:
            progress.advance(len(batch))
    return Imported(stored, already, replayed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, nargs="?", help="CSV file with a header row (see the README)"
    )
    parser.add_argument(
        "--from-everflow",
        action="store_true",
        help="read the clicks from Everflow's conversion report instead of a file",
    )
    parser.add_argument(
        "--since", metavar="DATE", help="with --from-everflow: from this day (UTC) or time"
    )
    parser.add_argument(
        "--until",
        metavar="DATE",
        help="with --from-everflow: up to this day (UTC, included) or time; default now",
    )
    parser.add_argument(
        "--everflow-api-base",
        help="with --from-everflow: Everflow's Network API address "
        "(default: the local stack's stand-in, else the stack's)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="store the good rows even if some are bad (each bad row is still reported)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check every row (or list what Everflow's report would add) and store nothing",
    )
    parser.add_argument("--endpoint", help="the local stack's AWS endpoint URL")
    parser.add_argument("--stack", help="a deployed stack's name")
    parser.add_argument("--region", help="the deployed stack's AWS region")


def _check_source(args: argparse.Namespace) -> None:
    """FILE or --from-everflow, exactly one, and each with its own options; raises
    CliError (usage)."""
    if args.from_everflow and args.file is not None:
        raise usage(
            "give FILE.csv or --from-everflow, not both",
            "import one source at a time",
        )
    if not args.from_everflow and args.file is None:
        raise usage("no clicks to import", "give FILE.csv, or --from-everflow --since DATE")
    if args.from_everflow:
        if not args.since:
            raise usage("--from-everflow needs --since DATE", "give the first day to read")
        if args.skip_bad:
            raise usage("--skip-bad is for FILE.csv", "leave it out with --from-everflow")
        return
    for option, value in (
        ("--since", args.since),
        ("--until", args.until),
        ("--everflow-api-base", args.everflow_api_base),
    ):
        if value:
            raise usage(
                f"{option} goes with --from-everflow", f"add --from-everflow or drop {option}"
            )


def run(args: argparse.Namespace, sleep: Callable[[float], None] = time.sleep) -> int:
    """0: imported (or checked); 1: bad rows, nothing stored; 3: no such file; 2: a
    file that cannot be imported, or wrong options; with --from-everflow, 7 and 12 as
    well (``import_from_everflow``); 10: AWS refused a write (``errors.EXIT_CODES``)."""
    from stripe_everflow_cli.stack_access import stack_access

    name = "stripe-everflow import-clicks"
    _check_source(args)
    if args.from_everflow:
        return import_from_everflow(args, sleep)
    try:
        width, rows = read_rows(args.file)
        access = stack_access(args.endpoint, args.stack, args.region)
        checked = check_rows(rows, access.bridge_secret(), int(time.time()), width)
    except CliError:
        raise
    except ValueError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return getattr(error, "code", USAGE)
    for bad in checked.bad[:MAX_BAD_ROWS_SHOWN]:
        print(f"{name}: {args.file}: {bad}", file=sys.stderr)
    if len(checked.bad) > MAX_BAD_ROWS_SHOWN:
        print(f"{name}: … and {len(checked.bad) - MAX_BAD_ROWS_SHOWN} more", file=sys.stderr)
    if checked.bad and not args.skip_bad:
        print(
            f"{name}: {len(checked.bad)} bad row(s), nothing stored "
            "(fix them, or give --skip-bad to store the good rows)",
            file=sys.stderr,
        )
        return 1
    if args.dry_run:
        print(f"{len(checked.good)} click(s) would be imported, {len(checked.bad)} bad row(s)")
        return 0
    progress = Progress("clicks", len(checked.good))
    try:
        imported = store_clicks(
            checked.good, access.attribution_store(), access.payment_events(), progress
        )
    except Exception as error:  # AWS errors of any kind: one line, never a traceback
        progress.finish()
        print(
            f"{name}: storing failed: {type(error).__name__}: {error} "
            "(every write is idempotent: run the same import again)",
            file=sys.stderr,
        )
        return AWS_REFUSED
    progress.finish()
    print(
        f"{imported.stored} click(s) stored, {imported.already_stored} already known, "
        f"{len(checked.bad)} bad row(s) skipped, {imported.replayed} parked payment(s) replayed"
    )
    return 0


# ------------------------------------------------------------ --from-everflow

DAY = 86_400
# A page of Everflow's report that failed with 429, 5xx or no answer is asked again
# after these pauses (Everflow's rate window resets every 30 s), then the command
# stops with one line; a page is a read, so asking again is harmless.
RETRY_PAUSES = (2.0, 4.0, 8.0, 16.0, 30.0)
MAX_CLICKS_LISTED = 1000  # --dry-run lists the new clicks up to this many


def parse_moment(option: str, value: str, *, end: bool = False) -> int:
    """Unix seconds of ``--since``/``--until``: a day (YYYY-MM-DD, UTC; ``end``: the
    end of that day, so ``--until`` includes it) or an ISO 8601 time with its zone.
    Raises CliError (usage) naming the option."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, datetime.min.time(), UTC).timestamp()
            return int(moment) + (DAY if end else 0)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise usage(
            f"{option} {value!r} is not a date",
            "give YYYY-MM-DD (UTC) or an ISO 8601 time with its zone (2026-01-31T12:00:00Z)",
        )
    return int(parsed.timestamp())


@dataclass
class RetriedReports:
    """Everflow's conversion reports, each page asked again after RETRY_PAUSES when
    Everflow is unavailable (429, 5xx, no answer); ``on_retry`` hears of each pause."""

    reports: Any  # ports.everflow.ConversionReports
    pauses: Sequence[float] = RETRY_PAUSES
    sleep: Callable[[float], None] = time.sleep
    on_retry: Callable[[Exception, float], None] | None = None
    retries: int = 0

    def conversions_by_email(self, api_key: str, email: str, since: int, until: int) -> Any:
        return self.reports.conversions_by_email(api_key, email, since, until)

    def conversion_page(self, api_key: str, since: int, until: int, **options: Any) -> Any:
        from stripe_everflow.domain.errors import EverflowUnavailableError

        for pause in (*self.pauses, None):
            try:
                return self.reports.conversion_page(api_key, since, until, **options)
            except EverflowUnavailableError as error:
                if pause is None:
                    raise
                self.retries += 1
                if self.on_retry is not None:
                    self.on_retry(error, pause)
                self.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


def _masked(email: str) -> str:
    """``j***@example.com``: enough to recognise, not the address."""
    local, _, domain = email.strip().partition("@")
    return f"{local[:1]}***@{domain}"


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def everflow_sync(access: Any, api_base: str | None) -> tuple[Any, str]:
    """``EverflowSync`` as SyncClicksFunction runs it on this stack (its offer or
    advertiser, its page size, the shared Network API budget), and the Network API
    address: ``api_base``, else the local stack's Everflow stand-in, else the
    function's."""
    from stripe_everflow.adapters.dynamodb.rate_limiter import ApiRateLimiter
    from stripe_everflow.adapters.everflow.network_api import EverflowNetworkApi
    from stripe_everflow.clicks.everflow_source import EverflowSync
    from stripe_everflow.config import SyncSettings
    from stripe_everflow.domain.errors import ConfigurationError

    try:
        settings = SyncSettings.from_environ(access.function_environment("SyncClicksFunction"))
    except ConfigurationError as error:
        raise usage(
            f"SyncClicksFunction's settings: {error}", "fix the stack's parameters"
        ) from None
    if "everflow" not in settings.click_sources:
        raise usage(
            f"the stack's ClickSources ({','.join(sorted(settings.click_sources))}) does not "
            "name everflow, so the matcher would disregard Everflow's clicks",
            "add everflow to ClickSources, or import the clicks as a CSV file",
        )
    base = api_base or access.target.local_urls.get("everflow_url") or settings.api_base_url
    budget = ApiRateLimiter(
        access.table("LedgerTable"),
        access.target.client("dynamodb"),
        per_second=settings.api_calls_per_second,
    )
    sync = EverflowSync(
        EverflowNetworkApi(base, budget),
        access.attribution_store(),
        access.payment_events(),
        offer_id=settings.offer_id,
        advertiser_id=settings.advertiser_id,
        page_size=settings.page_size,
    )
    return sync, base


def import_from_everflow(
    args: argparse.Namespace, sleep: Callable[[float], None] = time.sleep
) -> int:
    """``--from-everflow``: Everflow's conversion report over ``--since``..``--until``
    through ``EverflowSync.read_range`` (the scheduled sync's steps, its checkpoint
    untouched). 0: imported (or listed); 2: usage or settings; 7: Everflow did not
    answer (after RETRY_PAUSES); 10: AWS refused; 12: Everflow refused."""
    from stripe_everflow.domain.errors import EverflowApiError, EverflowUnavailableError
    from stripe_everflow_cli.stack_access import stack_access

    name = "stripe-everflow import-clicks"
    now = int(time.time())
    since = parse_moment("--since", args.since)
    until = min(parse_moment("--until", args.until, end=True), now) if args.until else now
    if until <= since:
        raise usage(
            f"--since {args.since} is not before --until {args.until or 'now'}",
            "give a --since earlier than --until (and than now)",
        )
    try:
        access = stack_access(args.endpoint, args.stack, args.region)
        secret = access.bridge_secret()
        if not secret.everflow_api_key:
            raise usage(
                "the bridge secret has no everflow_api_key",
                "add the advertiser's Everflow Network API key (stripe-everflow setup)",
            )
        if not secret.email_hash_key:
            raise usage("the bridge secret has no email_hash_key", "run the stack once first")
        sync, base = everflow_sync(access, args.everflow_api_base)
    except CliError:
        raise
    except ValueError as error:  # the secret or the stack's settings cannot be read
        print(f"{name}: {error}", file=sys.stderr)
        return int(getattr(error, "code", USAGE))

    def retrying(error: Exception, pause: float) -> None:
        print(f"{name}: Everflow: {error}; asking again in {pause:.0f}s", file=sys.stderr)

    reports = RetriedReports(sync.reports, sleep=sleep, on_retry=retrying)
    sync.reports = reports
    progress = Progress("conversions", None)
    listed: list[str] = []  # --dry-run: the first MAX_CLICKS_LISTED new clicks
    new: set[tuple[str, str]] = set()
    known = 0

    def on_page(page: Any) -> None:
        nonlocal known
        if page.windows == 1:
            progress.total = page.total
        progress.advance(page.conversions)
        if not args.dry_run:
            return
        for found in page.clicks:
            click = found.click
            if (found.email_hash, click.transaction_id) in new:
                continue  # reported twice: stored once
            if sync.is_known(found):
                known += 1
                continue
            new.add((found.email_hash, click.transaction_id))
            if len(listed) < MAX_CLICKS_LISTED:
                listed.append(
                    f"would store {click.transaction_id} for {_masked(found.email)}"
                    f" (offer {click.offer_id or '-'}, affiliate {click.affiliate_id or '-'},"
                    f" clicked {_when(click.occurred_at)})"
                )

    try:
        outcome = sync.read_range(
            secret.everflow_api_key,
            secret.email_hash_key,
            since,
            until,
            dry_run=args.dry_run,
            on_page=on_page,
        )
    except EverflowUnavailableError as error:
        progress.finish()
        print(
            f"{name}: Everflow's conversion report did not answer at {base}: {error} "
            f"(asked {len(reports.pauses) + 1} times; what was stored stays: run it again)",
            file=sys.stderr,
        )
        return SERVER_DOWN
    except EverflowApiError as error:
        progress.finish()
        print(
            f"{name}: Everflow refused its conversion report: {error} — check everflow_api_key "
            "in the bridge secret (a Network API key of this network)",
            file=sys.stderr,
        )
        return EVERFLOW_REFUSED
    except CliError:
        raise
    except Exception as error:  # AWS errors of any kind: one line, never a traceback
        progress.finish()
        found = cli_error_of(error)
        if found is not None and found.code != AWS_REFUSED:
            raise found from None
        print(
            f"{name}: storing failed: {type(error).__name__}: {one_line(str(error))} "
            "(every write is idempotent: run the same import again)",
            file=sys.stderr,
        )
        return AWS_REFUSED
    progress.finish()
    span = f"{_when(since)} → {_when(until)}"
    read = (
        f"{outcome.conversions} conversion(s) read in {outcome.pages} page(s), "
        f"{outcome.clicks} with an email"
    )
    if args.dry_run:
        for line in listed:
            print(line)
        if len(new) > len(listed):
            print(f"… and {len(new) - len(listed)} more")
        print(
            f"{len(new)} click(s) would be stored, {known} already known "
            f"({read}; Everflow, {span}); nothing stored"
        )
        return 0
    print(
        f"{outcome.registered} click(s) stored, {outcome.clicks - outcome.registered} "
        f"already known, {outcome.replayed} parked payment(s) replayed "
        f"({read}; Everflow, {span})"
    )
    return 0
