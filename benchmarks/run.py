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

Usage: ``.venv/bin/python benchmarks/run.py [--only SECTION ...] [--strict]``;
``--strict`` exits 1 when a goal is missed (off by default: figures from a noisy
machine inform, they do not gate).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence

from benchlib import Row, Section
from cold_start import cold_start
from matcher import matcher
from posting import posting
from warm_cpu import warm_cpu

SECTIONS: list[Section] = [cold_start, warm_cpu, matcher, posting]

COLUMNS = ("benchmark", "figure", "unit", "goal", "ratio", "verdict", "note")


def _figure(row: Row) -> str:
    if row.unit == "bytes" or abs(row.figure) >= 1000:
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

    rule = "  ".join("-" * width for width in widths)
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

    print(_machine(), file=sys.stderr, flush=True)
    rows: list[Row] = []
    started = time.perf_counter()
    for section in sections:
        print(f"running {section.__name__} …", end=" ", file=sys.stderr, flush=True)
        section_started = time.perf_counter()
        rows.extend(section())
        print(f"{time.perf_counter() - section_started:.1f} s", file=sys.stderr, flush=True)
    print(f"{_machine()}; all sections in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(render(rows))
    missed = [row.name for row in rows if row.verdict == "MISS"]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
