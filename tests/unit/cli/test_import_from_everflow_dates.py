"""`import-clicks --from-everflow`: --since/--until as days (UTC) or zoned times, and
Everflow's pages asked again while it is unavailable, then the error."""

from __future__ import annotations

from typing import Any

import pytest

from stripe_everflow.domain.errors import EverflowApiError, EverflowUnavailableError
from stripe_everflow_cli.errors import CliError
from stripe_everflow_cli.import_clicks import RETRY_PAUSES, RetriedReports, parse_moment

DEC_1 = 1_764_547_200  # 2025-12-01T00:00:00Z


@pytest.mark.parametrize(
    ("value", "end", "seconds"),
    [
        ("2025-12-01", False, DEC_1),
        ("2025-12-01", True, DEC_1 + 86_400),  # --until includes the day
        ("2025-12-01T06:00:00Z", False, DEC_1 + 6 * 3600),
        ("2025-12-01T06:00:00+02:00", True, DEC_1 + 4 * 3600),
    ],
)
def test_days_and_zoned_times(value: str, end: bool, seconds: int) -> None:
    assert parse_moment("--since", value, end=end) == seconds


@pytest.mark.parametrize("value", ["", "yesterday", "2025-02-30", "2025-12-01T06:00:00", "12/01"])
def test_what_is_not_a_date_names_the_option(value: str) -> None:
    with pytest.raises(CliError) as raised:
        parse_moment("--until", value)
    assert raised.value.code == 2 and str(raised.value).startswith(f"--until {value!r}")


class Reports:
    def __init__(self, *failures: Exception) -> None:
        self.failures, self.calls = list(failures), 0

    def conversion_page(self, api_key: str, since: int, until: int, **options: Any) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return [], 0


def test_an_unavailable_page_is_asked_again_after_each_pause() -> None:
    pauses: list[float] = []
    reports = Reports(EverflowUnavailableError("HTTP 429"), EverflowUnavailableError("HTTP 503"))
    retried = RetriedReports(reports, sleep=pauses.append)
    assert retried.conversion_page("key", 0, 1, page=1, page_size=2) == ([], 0)
    assert (reports.calls, pauses, retried.retries) == (3, [2.0, 4.0], 2)


def test_a_page_unavailable_every_time_raises_after_the_last_pause() -> None:
    pauses: list[float] = []
    reports = Reports(*(EverflowUnavailableError("HTTP 503") for _ in range(len(RETRY_PAUSES) + 1)))
    with pytest.raises(EverflowUnavailableError):
        RetriedReports(reports, sleep=pauses.append).conversion_page("key", 0, 1, page=1)
    assert pauses == list(RETRY_PAUSES)


def test_a_refusal_is_not_asked_again() -> None:
    reports = Reports(EverflowApiError("HTTP 401"))
    with pytest.raises(EverflowApiError):
        RetriedReports(reports, sleep=lambda _: None).conversion_page("key", 0, 1, page=1)
    assert reports.calls == 1
