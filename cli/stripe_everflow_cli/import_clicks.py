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
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stripe_everflow_cli.errors import AWS_REFUSED, MISSING_FILE, USAGE, CliError
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
    parser.add_argument("file", type=Path, help="CSV file with a header row (see the README)")
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="store the good rows even if some are bad (each bad row is still reported)",
    )
    parser.add_argument("--dry-run", action="store_true", help="check every row and store nothing")
    parser.add_argument("--endpoint", help="the local stack's AWS endpoint URL")
    parser.add_argument("--stack", help="a deployed stack's name")
    parser.add_argument("--region", help="the deployed stack's AWS region")


def run(args: argparse.Namespace) -> int:
    """0: imported (or checked); 1: bad rows, nothing stored; 3: no such file; 2: a
    file that cannot be imported; 10: AWS refused a write (``errors.EXIT_CODES``)."""
    from stripe_everflow_cli.stack_access import stack_access

    name = "stripe-everflow import-clicks"
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
