"""Fault-injection fixtures: AWS from moto (the integration suite's ``aws``), and the
reconciliation tables printed at the end of the run (``-s`` not needed)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import Aws, aws  # noqa: F401 (fixture)

TABLES: list[str] = []


@pytest.fixture(autouse=True)
def _restore_log_levels() -> Iterator[None]:
    """The month runs the functions at CRITICAL; Powertools sets that level on the
    process-wide loggers, so put every level back for the tests that read INFO logs."""
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict)),
    ]
    levels = [(logger, logger.level) for logger in loggers]
    yield
    for logger, level in levels:
        logger.setLevel(level)
    for name in set(logging.root.manager.loggerDict) - {lg.name for lg in loggers}:
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.fixture
def report_table() -> Any:
    """Call with a reconciliation table: printed in the terminal summary."""
    return TABLES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for table in TABLES:
        terminalreporter.write_sep("=", "fault injection")
        terminalreporter.write_line(table)
