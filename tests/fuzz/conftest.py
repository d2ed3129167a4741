"""Fuzz suites: the same moto resources as the integration tests, and a closing tally
of the cases run and the 5xx answers seen (the figure ``make fuzz`` reports)."""

from __future__ import annotations

import pytest

from tests.fuzz.strategies import FULL, TALLY

# The integration tests' AWS stand-in: queues, tables and secret from template.yaml.
from tests.integration.conftest import aws  # noqa: F401


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section(f"fuzz tally ({'full' if FULL else 'CI'}-sized)")
    for suite, tally in sorted(TALLY.items()):
        terminalreporter.write_line(f"{suite:<22} {tally['cases']:>7} cases  {tally['5xx']:>3} 5xx")
        outcomes = sorted(
            (
                (n, name.removeprefix("outcome "))
                for name, n in tally.items()
                if name.startswith("outcome ")
            ),
            reverse=True,
        )
        if outcomes:
            terminalreporter.write_line(
                "    " + ", ".join(f"{name} {n}" for n, name in outcomes[:8])
            )
    total = sum(t["cases"] for t in TALLY.values())
    errors = sum(t["5xx"] for t in TALLY.values())
    terminalreporter.write_line(f"{'total':<22} {total:>7} cases  {errors:>3} 5xx")
