"""A range cut into report windows of at most a year (Everflow refuses more)."""

from __future__ import annotations

from itertools import pairwise

from stripe_everflow.clicks.everflow_source import REPORT_SPAN_SECONDS, report_windows

DAY = 86_400


def test_a_range_within_a_year_is_one_window() -> None:
    assert report_windows(0, 30 * DAY) == [(0, 30 * DAY)]


def test_a_longer_range_is_consecutive_windows_of_at_most_a_year() -> None:
    windows = report_windows(0, 800 * DAY)
    assert len(windows) == 3
    assert all(end - start <= REPORT_SPAN_SECONDS for start, end in windows)
    assert windows[0][0] == 0 and windows[-1][1] == 800 * DAY
    assert all(a[1] == b[0] for a, b in pairwise(windows))


def test_an_empty_or_reversed_range_is_no_window() -> None:
    assert report_windows(10, 10) == [] and report_windows(10, 5) == []
