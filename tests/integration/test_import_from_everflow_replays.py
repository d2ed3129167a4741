"""A run that stored Everflow's clicks and stopped before replaying the payments
parked for them (SQS refusing, the function timing out) leaves the replay to the next
run: the scheduled sync and `import-clicks --from-everflow` replay the payments parked
for every email of the report's clicks, new or already known — as ``POST /clicks``
does — not only for the clicks they stored themselves."""

from __future__ import annotations

from typing import Any

import pytest

from stripe_everflow.domain.records import parked_email_pk
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from stripe_everflow_cli.stack_access import StackAccess
from tests.integration.conftest import Aws
from tests.integration.pipeline import Pipeline, build_pipeline
from tests.integration.test_everflow_source_lookup import at
from tests.integration.test_everflow_source_sync import DAY, JENNY, NOW, Sync, hashed
from tests.integration.test_everflow_source_sync import everflow as everflow
from tests.integration.test_everflow_source_sync import sync as sync
from tests.integration.test_import_from_everflow import RANGE, Importer
from tests.integration.test_import_from_everflow import local as local
from tests.integration.test_import_from_everflow import run as run
from tests.support import stripe_event


class RefusingOnce:
    """PaymentEventsQueue refusing the first message, then passing them on."""

    def __init__(self, sender: Any) -> None:
        self.sender, self.refused = sender, 0

    def send(self, body: str, attributes: dict[str, str]) -> str:
        if not self.refused:
            self.refused += 1
            raise RuntimeError("SQS refused the message")
        return str(self.sender.send(body, attributes))


def parked_payment(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    now: int | None = None,
    shape: str = "basil",
) -> Pipeline:
    """Jenny's first invoice, parked (at ``now``, else at the real time): Everflow
    knew no click for her when it came."""
    pipeline = build_pipeline(
        aws, monkeypatch, EVERFLOW_API_BASE_URL=everflow.url, CLICK_SOURCES="api,stripe,everflow"
    )
    if now is not None:
        at(pipeline, now)
    pipeline.deliver_events(stripe_event(shape, "invoice.paid.first"))
    assert pipeline.jobs() == []
    return pipeline


def jenny_signed_up(everflow: EverflowStandIn, converted_at: int) -> None:
    everflow.add_conversion(
        transaction_id="ef_tx_jenny",
        email=JENNY,
        offer_id=1,
        affiliate_id=7,
        conversion_unix_timestamp=converted_at,
        click_unix_timestamp=converted_at - DAY,
    )


def test_the_scheduled_sync_replays_what_a_failed_run_stored_but_did_not_replay(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    sync: Sync,
) -> None:
    pipeline = parked_payment(aws, everflow, monkeypatch, NOW)
    jenny_signed_up(everflow, NOW - 60)
    sync.at(NOW + 300)
    # Given a run stored her click, and SQS refused the replay of her payment
    queue = sync.deps.sync.payment_events
    sync.deps.sync.payment_events = RefusingOnce(queue)
    with pytest.raises(RuntimeError):
        sync.run()
    assert "ef_tx_jenny" in sync.clicks(JENNY)
    # When the next run reads the window again (the checkpoint did not move)
    facts = sync.run()
    # Then it replays her payment, though her click was known already
    assert (facts["registered"], facts["replayed"]) == (0, 1)
    assert pipeline.run_replays() == 1
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_jenny"
    assert pipeline.match_deps.matcher.store.parked(parked_email_pk(hashed(JENNY))) == []


def test_an_import_that_stopped_before_its_replays_replays_them_when_run_again(
    aws: Aws,
    everflow: EverflowStandIn,
    monkeypatch: pytest.MonkeyPatch,
    local: StackAccess,
    run: Importer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # (parked at the real time: the command reads what is parked now)
    pipeline = parked_payment(aws, everflow, monkeypatch, shape="legacy")
    jenny_signed_up(everflow, 1_764_547_200 + 2 * DAY)  # in December
    queue = local.payment_events()
    refusing = RefusingOnce(queue)
    monkeypatch.setattr(StackAccess, "payment_events", lambda self: refusing)
    assert run(*RANGE) == 10
    assert "storing failed: RuntimeError: SQS refused the message" in capsys.readouterr().err
    assert run(*RANGE) == 0
    assert capsys.readouterr().out.startswith(
        "0 click(s) stored, 1 already known, 1 parked payment(s) replayed"
    )
    assert pipeline.run_replays() == 1
    [job] = pipeline.jobs()
    assert job["target"]["transaction_id"] == "ef_tx_jenny"
