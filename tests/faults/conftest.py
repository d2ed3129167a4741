"""Fault-injection fixtures: AWS from moto (the integration suite's ``aws``), and the
reconciliation tables printed at the end of the run (``-s`` not needed)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Aws, aws  # noqa: F401 (fixture)

TABLES: list[str] = []


@pytest.fixture
def report_table() -> Any:
    """Call with a reconciliation table: printed in the terminal summary."""
    return TABLES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for table in TABLES:
        terminalreporter.write_sep("=", "fault injection")
        terminalreporter.write_line(table)
