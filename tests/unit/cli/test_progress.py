"""The progress line of long operator commands: counts, rate, time left."""

from __future__ import annotations

import io

from stripe_everflow_cli.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_gives_done_total_rate_and_time_left() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("objects", 20_000, stream=out, clock=clock)
    clock.now += 10
    progress.advance(5_000)
    assert progress.line(clock.now) == "objects: 5000/20000 (25%), 500/s, about 30s left"
    clock.now += 290
    progress.advance(5_000)
    assert progress.line(clock.now).endswith("about 5m00s left")


def test_off_a_terminal_it_logs_a_line_every_few_seconds_and_at_the_end() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("clicks", None, stream=out, clock=clock)
    for _ in range(10):
        clock.now += 1
        progress.advance(100)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines == ["clicks: 500, 100/s, 5s", "clicks: 1000, 100/s, 10s"]
