"""The fault injector itself (``tests/faults/sim.py``): the faults a job meets are
drawn from the seed and from that job's own calls, so they do not move with the calls
of other jobs or the order in which the poster's threads make them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tests.faults.sim import EverflowFaults, FaultyEverflow, HangUpError, SimClock

Call = Callable[[FaultyEverflow, str], str]
FAULTS = EverflowFaults(
    postback_failure_rate=0.5, lookup_failure_rate=0.5, recorded_then_timeout=0.0
)


def lookup(everflow: FaultyEverflow, transaction_id: str) -> str:
    path = f"/v1/networks/reporting/events/{transaction_id}"
    return str(everflow._respond("GET", path, [], "", "test")[0])


def postback(everflow: FaultyEverflow, order_id: str) -> str:
    query = [("nid", "1"), ("transaction_id", f"tx_{order_id}"), ("order_id", order_id)]
    try:
        return str(everflow._respond("GET", "/", query, "", "test")[0])
    except HangUpError:
        return "hang-up"


def faults_met(seed: int, calls: Sequence[tuple[Call, str]]) -> dict[str, list[str]]:
    everflow = FaultyEverflow(SimClock(0), seed, FAULTS)
    met: dict[str, list[str]] = {}
    for call, job in calls:
        met.setdefault(job, []).append(call(everflow, job))
    return met


def test_a_job_meets_the_same_faults_whatever_other_jobs_call_meanwhile() -> None:
    # Given one job's calls alone, and the same calls with another job's in between
    alone: list[tuple[Call, str]] = [(c, "in_1A") for _ in range(20) for c in (lookup, postback)]
    crowded = [step for pair in zip(alone, [(lookup, "in_1B")] * 40, strict=True) for step in pair]
    # When each runs against an Everflow with the same seed
    # Then the job meets the same faults in both
    assert faults_met(7, alone)["in_1A"] == faults_met(7, crowded)["in_1A"]


def test_the_seed_picks_the_faults() -> None:
    calls: list[tuple[Call, str]] = [(c, "in_1A") for _ in range(20) for c in (lookup, postback)]
    assert faults_met(7, calls) == faults_met(7, calls)
    assert faults_met(7, calls) != faults_met(8, calls)
    # and they are faults: some calls fail, some are answered
    assert {"200"} < set(faults_met(7, calls)["in_1A"])
