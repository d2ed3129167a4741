"""Benchmarks of the Stripe → Everflow bridge: figures, goals, ratios (`make bench`).

The machine this runs on is shared and noisy, so every figure is measured side by
side with what it is compared to, in the same run, repeated, and reported as a
median with a ratio; read the ratios, not the absolute milliseconds.

Sections (each a function returning rows, printed together as one table):

* ``cold_start`` — StripeWebhookFunction's cold start in a fresh interpreter (import
  of app.py + the first, real ``lambda_handler`` call against a local moto server)
  against a bare ``import boto3`` measured in the same rounds. Goal: ≤ 1.5 x boto3.
  The cold start is what a Stripe delivery waits for after a quiet period or when
  Lambda scales out, and boto3's import is the floor every Python function pays.
* ``warm_cpu`` — CPU time of one webhook on a warm instance (a signed ~3 KB event,
  queue stubbed), through ``lambda_handler`` with Powertools, at WARNING and at INFO
  logging. Goal: ≤ 0.3 ms per event. Warm CPU is what the function is billed for.
* ``matcher`` — MatchPaymentFunction on batches of 10 payments: DynamoDB requests per
  batch (goal: lookups in at most 2 read requests, not one per record) and CPU per
  event, with AWS on a moto server in another process so its CPU is not counted.
* ``posting`` — PostEverflowFunction on batches of 10 against an Everflow stand-in
  answering after 200 ms (goal: ≤ 1.5 x 200 ms per batch), keep-alive (goal: no new
  TCP connection after the first batch), and CPU per posted conversion.
* ``backfill`` — ``stripe-everflow backfill`` feeding 20,000 Stripe objects through
  the webhook's checks to the queue, Stripe's latency excluded (goal: ≥ 10,000
  objects/s, so Stripe's list API bounds a real backfill; see ``backfill.py``).
* ``cost`` (last) — the AWS bill per million Stripe events: a realistic mixed stream
  through all three functions, every AWS request counted, priced with a dated table
  (see ``cost.py`` for what is measured and what is assumed; docs/scaling.md plans
  1,000 webhooks/s from these counts).

Only the table goes to stdout. What the functions log (Powertools lines, EMF
metrics) and what the child processes print go to ``.bench/functions.log``; the
last line of the output says so. Progress goes to stderr.

Usage: ``.venv/bin/python benchmarks/run.py [--only SECTION ...] [--strict]``;
``--strict`` exits 1 when a goal is missed (off by default: figures from a noisy
machine inform, they do not gate).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TextIO

from backfill import backfill
from benchlib import FUNCTION_LOG, PROJECT_ROOT, Row, Section, function_log
from cold_start import cold_start
from cost import cost
from load import load
from matcher import matcher
from posting import posting
from warm_cpu import warm_cpu

SECTIONS: list[Section] = [cold_start, warm_cpu, matcher, posting, load, backfill, cost]

COLUMNS = ("benchmark", "figure", "unit", "goal", "ratio", "verdict", "note")


def _figure(row: Row) -> str:
    if row.unit.startswith("$"):
        return f"{row.figure:,.2f}" if abs(row.figure) >= 10 else f"{row.figure:.4f}"
    if row.unit == "bytes" or abs(row.figure) >= 1000 or float(row.figure).is_integer():
        return f"{row.figure:,.0f}"
    return f"{row.figure:.1f}"


def render(rows: Sequence[Row]) -> str:
    """The rows as one aligned text table; the ratio is figure / the goal's reference."""
    cells = [
        (
            row.name,
            _figure(row),
            row.unit,
            row.goal,
            "" if row.ratio is None else f"{row.ratio:.2f}x",
            row.verdict,
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
    right = {1, 4}  # numbers

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if i in right else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    # The notes are long and last: their rule stops early.
    rule = "  ".join("-" * width for width in [*widths[:-1], min(widths[-1], 40)])
    return "\n".join([line(COLUMNS), rule, *(line(cells_of_row) for cells_of_row in cells)])


def _machine() -> str:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[section.__name__ for section in SECTIONS],
        help="run only these sections",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    sections = [s for s in SECTIONS if args.only is None or s.__name__ in args.only]

    log_name = FUNCTION_LOG.relative_to(PROJECT_ROOT)
    FUNCTION_LOG.unlink(missing_ok=True)
    rows: list[Row] = []
    started = time.perf_counter()
    with _output_to_log() as progress:
        print(_machine(), file=progress, flush=True)
        for section in sections:
            print(f"running {section.__name__} …", end=" ", file=progress, flush=True)
            section_started = time.perf_counter()
            rows.extend(section())
            print(f"{time.perf_counter() - section_started:.1f} s", file=progress, flush=True)
        print(
            f"{_machine()}; all sections in {time.perf_counter() - started:.0f} s",
            file=progress,
            flush=True,
        )
    print(render(rows))
    with FUNCTION_LOG.open(encoding="utf-8", errors="replace") as log:
        lines = sum(1 for _ in log)
    print(f"function and stand-in logs: {log_name} ({lines:,} lines)")
    missed = [row.name for row in rows if row.verdict == "MISS"]
    return 1 if args.strict and missed else 0


@contextlib.contextmanager
def _output_to_log() -> Iterator[TextIO]:
    """Point this process's stdout and stderr (the file descriptors, so child
    processes and loggers holding ``sys.stdout`` follow) at the benchmark log; yield
    a stream to the real stderr for progress."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    progress = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8")
    try:
        with function_log() as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield progress
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved_out, 1)
                os.dup2(saved_err, 2)
    except BaseException:
        print(f"(the functions' output is in {FUNCTION_LOG})", file=progress, flush=True)
        raise
    finally:
        os.close(saved_out)
        os.close(saved_err)
        progress.close()


if __name__ == "__main__":
    sys.exit(main())
