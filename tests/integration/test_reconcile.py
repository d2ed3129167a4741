"""`stripe-everflow reconcile` (issue 12) over a month the test damages on purpose:
each damage is its own row, ``--fix`` repairs exactly those that can be repaired
(through the pipeline, never a second conversion), and after the fix reconcile is
clean of them."""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from stripe_everflow_cli import backfill, reconcile
from stripe_everflow_cli.everflow_standin import EverflowStandIn
from stripe_everflow_cli.stripe_standin import StripeStandIn
from tests.integration.conftest import Aws
from tests.integration.pipeline import Bridge, local_stack_access
from tests.support import bridge_secret, stripe_event

START = 1_767_225_600  # 2026-01-01T00:00:00Z
PAYMENTS = 10
NEVER_DELIVERED, DELETED, REFUNDED_IN_STRIPE, DUPLICATED = 2, 4, 6, 8
NO_CLICK = 9  # parked: the bridge's decision, no difference


@pytest.fixture
def stripe_api() -> Iterator[StripeStandIn]:
    standin = StripeStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def everflow() -> Iterator[EverflowStandIn]:
    standin = EverflowStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def bridge(
    aws: Aws,
    everflow: EverflowStandIn,
    stripe_api: StripeStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> Bridge:
    bridge = Bridge(aws, everflow, monkeypatch, STRIPE_API_BASE=stripe_api.url)
    secret = bridge_secret(everflow_api_key="ef_api_key")
    secret["stripe_accounts"]["default"]["api_key"] = "rk_test_bridge"
    aws.secretsmanager.put_secret_value(SecretId="BridgeSecret", SecretString=json.dumps(secret))
    local_stack_access(aws, monkeypatch)
    return bridge


def invoice_id(n: int) -> str:
    return f"in_rc{n:04d}"


def seed_month(stripe_api: StripeStandIn) -> list[dict[str, Any]]:
    """PAYMENTS paid first invoices (basil) in January, each its own customer."""
    template = stripe_event("basil", "invoice.paid.first")["data"]["object"]
    invoices = []
    for n in range(PAYMENTS):
        invoice = copy.deepcopy(template)
        moment = START + n * 86_400 + 3_600
        invoice.update(
            id=invoice_id(n),
            customer=f"cus_rc{n:04d}",
            customer_email=f"customer{n}@example.com",
            created=moment,
        )
        invoice["status_transitions"]["paid_at"] = moment
        invoices.append(invoice)
    stripe_api.put_many("invoices", invoices)
    return invoices


def invoice_charge(stripe_api: StripeStandIn, n: int, **changes: Any) -> dict[str, Any]:
    """Invoice n's charge in Stripe (basil: the charge names its payment intent, the
    InvoicePayment links that to the invoice)."""
    intent, charge_id = f"pi_rc{n:04d}", f"ch_rc{n:04d}"
    payment = stripe_event("basil", "invoice_payment.paid.first")["data"]["object"]
    payment.update(
        id=f"inpay_rc{n:04d}",
        invoice=invoice_id(n),
        payment={"type": "payment_intent", "payment_intent": intent},
    )
    stripe_api.put("invoice_payments", payment)
    charge: dict[str, Any] = stripe_event("basil", "charge.refunded")["data"]["object"]
    charge.update(
        id=charge_id,
        payment_intent=intent,
        customer=f"cus_rc{n:04d}",
        amount_refunded=0,
        refunded=False,
        created=START + n * 86_400 + 3_600,
    )
    charge.update(changes)
    stripe_api.put("charges", charge)
    return charge


def refund_in_stripe(stripe_api: StripeStandIn, n: int) -> dict[str, Any]:
    """Invoice n's charge refunded in full, in Stripe only."""
    charge = invoice_charge(stripe_api, n, refunded=True)
    charge["amount_refunded"] = charge["amount"]
    stripe_api.put("charges", charge)
    intent, charge_id = charge["payment_intent"], charge["id"]
    refund = stripe_event("basil", "refund.created")["data"]["object"]
    refund.update(
        id=f"re_rc{n:04d}",
        charge=charge_id,
        payment_intent=intent,
        amount=charge["amount"],
        created=START + 20 * 86_400,
    )
    stripe_api.put("refunds", refund)
    return charge


def post_clicks(bridge: Bridge, but: int | None = None) -> None:
    """A click (offer 12, affiliate 7) the day before the month for every customer
    but ``but``."""
    clicks = [
        {
            "email": f"customer{n}@example.com",
            "transaction_id": f"ef_tx_{n}",
            "offer_id": 12,
            "affiliate_id": 7,
            "occurred_at": START - 86_400,
        }
        for n in range(PAYMENTS)
        if n != but
    ]
    assert bridge.pipeline.post_clicks(clicks)[0] == 201


def run(stripe_api: StripeStandIn, everflow: EverflowStandIn, *flags: str) -> int:
    parser = argparse.ArgumentParser()
    reconcile.add_arguments(parser)
    argv = ["--from", "2026-01-01", "--to", "2026-01-31", "--max-rps", "0", "--format", "json"]
    argv += ["--stripe-api-base", stripe_api.url, "--everflow-api-base", everflow.url]
    return reconcile.run(parser.parse_args([*argv, "--endpoint", "local", *flags]))


def rows(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    document = json.loads(capsys.readouterr().out)
    return {str(row["order_id"]): dict(row) for row in document["rows"]}


def test_reconcile_reports_each_damage_and_fix_repairs_what_can_be_repaired(
    bridge: Bridge,
    stripe_api: StripeStandIn,
    everflow: EverflowStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoices = seed_month(stripe_api)
    post_clicks(bridge, but=NO_CLICK)
    # Given the month went through the bridge, but for one event never delivered
    delivered = [
        event
        for n, invoice in enumerate(invoices)
        if n != NEVER_DELIVERED
        for event in backfill.events_of("invoices", invoice, None)
    ]
    bridge.stripe(*delivered)
    assert len(everflow.postbacks()) == PAYMENTS - 2
    # And a conversion deleted in Everflow, a refund applied in Stripe only, a duplicate
    [deleted] = [c for c in everflow.recorded.values() if c.order_id == invoice_id(DELETED)]
    with everflow._lock:
        del everflow.recorded[deleted.conversion_id]
    charge = refund_in_stripe(stripe_api, REFUNDED_IN_STRIPE)
    everflow.add_conversion(order_id=invoice_id(DUPLICATED), sale_amount=49, status="approved")

    # When reconcile runs, each damage is its own row
    assert run(stripe_api, everflow) == 1
    found = rows(capsys)
    assert {order: row["reason"] for order, row in found.items()} == {
        invoice_id(NEVER_DELIVERED): "not_posted",
        invoice_id(DELETED): "missing_in_everflow",
        invoice_id(REFUNDED_IN_STRIPE): "refunded_in_stripe_approved_in_everflow",
        invoice_id(DUPLICATED): "posted_twice",
    }
    assert found[invoice_id(NEVER_DELIVERED)]["ledger"] == "unknown"

    # And --fix repairs the two that can be, and touches nothing else
    postbacks = len(everflow.postbacks())
    assert run(stripe_api, everflow, "--fix") == 1
    fixed = rows(capsys)
    assert fixed[invoice_id(NEVER_DELIVERED)]["fix"] == "queued"
    assert fixed[invoice_id(DELETED)]["fix"] == "sent again"
    assert fixed[invoice_id(REFUNDED_IN_STRIPE)]["fix"] == "-"
    assert fixed[invoice_id(DUPLICATED)]["fix"] == "-"
    bridge.settle()
    assert bridge.failed_jobs == []
    sent = [r.query for r in everflow.postbacks()[postbacks:]]
    orders = sorted(dict(q).get("order_id", "") for q in sent)
    assert orders == [invoice_id(NEVER_DELIVERED), invoice_id(DELETED)]

    # Then reconcile is clean of them; what cannot be repaired is still reported
    assert run(stripe_api, everflow) == 1
    assert {order: row["reason"] for order, row in rows(capsys).items()} == {
        invoice_id(REFUNDED_IN_STRIPE): "refunded_in_stripe_approved_in_everflow",
        invoice_id(DUPLICATED): "posted_twice",
    }
    # And a second --fix sends nothing
    assert run(stripe_api, everflow, "--fix") == 1
    capsys.readouterr()
    bridge.settle()
    assert len(everflow.postbacks()) == postbacks + 2

    # Once the refund reaches the bridge and the duplicate is rejected, all is clean
    refunded = stripe_event("basil", "charge.refunded")
    refunded.update(id="evt_rc_refund", created=START + 20 * 86_400)
    refunded["data"]["object"] = charge
    bridge.stripe(refunded)
    duplicate = [c for c in everflow.recorded.values() if c.order_id == invoice_id(DUPLICATED)]
    with everflow._lock:
        duplicate[-1].status = "rejected"
    assert run(stripe_api, everflow, "--format", "table") == 0
    out = capsys.readouterr().out
    assert out.startswith("no differences")
    # 10 payments, 490.00; 9 posted; one parked (no click); one refunded in full
    assert out.splitlines()[-1].split() == [
        "USD",
        "10",
        "490.00",
        "49.00",
        "0.00",
        "441.00",
        "49.00",
        "392.00",
        "0",
    ]


def test_a_period_that_ends_before_it_starts_is_one_line_and_reads_nothing(
    bridge: Bridge,
    stripe_api: StripeStandIn,
    everflow: EverflowStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    reconcile.add_arguments(parser)
    args = parser.parse_args(["--from", "2026-02-01", "--to", "2026-01-01", "--endpoint", "x"])
    assert reconcile.run(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--to is before --from" in err
    assert stripe_api.received == [] and everflow.api_calls() == []


def test_everflow_failing_is_one_line_and_fixes_nothing(
    bridge: Bridge,
    stripe_api: StripeStandIn,
    everflow: EverflowStandIn,
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_month(stripe_api)
    everflow.script([{"status": 503}])
    assert run(stripe_api, everflow, "--fix") == 7
    out, err = capsys.readouterr()
    # the progress line, then the error in one line
    assert out == "" and err.splitlines()[-1].startswith("stripe-everflow reconcile: Everflow")
    assert "HTTP 503" in err.splitlines()[-1]
    assert aws.drain("PaymentEventsQueue") == [] and aws.drain("PostbackQueue") == []


def test_fix_with_dry_run_changes_nothing(
    bridge: Bridge,
    stripe_api: StripeStandIn,
    everflow: EverflowStandIn,
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_month(stripe_api)
    assert run(stripe_api, everflow, "--fix", "--dry-run") == 1
    found = rows(capsys)
    assert len(found) == PAYMENTS
    assert {row["fix"] for row in found.values()} == {"queue the payment's event"}
    assert aws.drain("PaymentEventsQueue") == [] and aws.drain("PostbackQueue") == []


def test_another_advertisers_or_offers_conversions_are_not_read_as_differences(
    bridge: Bridge,
    stripe_api: StripeStandIn,
    everflow: EverflowStandIn,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invoices = seed_month(stripe_api)
    post_clicks(bridge)
    bridge.stripe(*(e for i in invoices for e in backfill.events_of("invoices", i, None)))
    # Given Everflow recorded each conversion under its click's offer (12, advertiser 5)
    with everflow._lock:
        for conversion in everflow.recorded.values():
            conversion.offer_id, conversion.advertiser_id = "12", "5"
    # And another advertiser's offer holds a conversion with one of the same order ids
    everflow.add_conversion(
        order_id=invoice_id(3), sale_amount=49, offer_id="30", advertiser_id="6"
    )
    # When reconcile reads the whole network, that one looks posted twice
    assert run(stripe_api, everflow) == 1
    assert {o: r["reason"] for o, r in rows(capsys).items()} == {invoice_id(3): "posted_twice"}

    # But read for the stack's advertiser (EverflowAdvertiserId), all is clean
    environment = reconcile.match_environment
    monkeypatch.setattr(
        reconcile,
        "match_environment",
        lambda access: {**environment(access), "EVERFLOW_ADVERTISER_ID": "5"},
    )
    everflow.clear()
    assert run(stripe_api, everflow) == 0
    assert rows(capsys) == {}
    [report] = {json.dumps(json.loads(r.body)["query"]) for r in everflow.api_calls()}
    assert json.loads(report) == {
        "filters": [{"resource_type": "advertiser", "filter_id_value": "5"}]
    }
    # And so it is for the offer given with --offer
    assert run(stripe_api, everflow, "--offer", "12") == 0
    capsys.readouterr()
    # While read for the other offer, the stack's conversions are not there
    assert run(stripe_api, everflow, "--offer", "30") == 1
    found = rows(capsys)
    assert len(found) == PAYMENTS - 1
    assert {r["reason"] for r in found.values()} == {"missing_in_everflow"}
    assert invoice_id(3) not in found  # the other offer's conversion stands for it


def test_offer_and_advertiser_are_everflow_ids_and_exclusive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    reconcile.add_arguments(parser)
    base = ["--from", "2026-01-01", "--to", "2026-01-31"]
    for bad in (["--offer", "x1"], ["--offer", "1", "--advertiser", "2"]):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*base, *bad])
        assert exit_.value.code == 2
    capsys.readouterr()


def test_stripe_refusing_the_invoice_payment_lookup_is_one_line_and_fixes_nothing(
    bridge: Bridge,
    stripe_api: StripeStandIn,
    everflow: EverflowStandIn,
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_month(stripe_api)
    refund_in_stripe(stripe_api, REFUNDED_IN_STRIPE)  # its intent's invoice is asked
    stripe_api.script([{"status": 403, "path": "/v1/invoice_payments"}])
    assert run(stripe_api, everflow, "--fix") == 11
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1].startswith("stripe-everflow reconcile: Stripe: invoice payment")
    assert aws.drain("PaymentEventsQueue") == [] and aws.drain("PostbackQueue") == []


def test_money_stripe_kept_whose_conversions_are_all_rejected_is_a_difference(
    bridge: Bridge,
    stripe_api: StripeStandIn,
    everflow: EverflowStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoices = seed_month(stripe_api)
    post_clicks(bridge)
    bridge.stripe(*(e for i in invoices for e in backfill.events_of("invoices", i, None)))
    # Given two conversions rejected in Everflow: one whose charge is disputed (still
    # open in Stripe: the bridge reverses it until the dispute ends), one with no reason
    disputed, rejected = 2, 5
    charge = invoice_charge(stripe_api, disputed)
    dispute = stripe_event("legacy", "charge.dispute.created")["data"]["object"]
    dispute.update(
        id="dp_rc0002",
        charge=charge["id"],
        payment_intent=charge["payment_intent"],
        status="needs_response",
        created=START + 10 * 86_400,
    )
    stripe_api.put("disputes", dispute)
    with everflow._lock:
        for conversion in everflow.recorded.values():
            if conversion.order_id in (invoice_id(disputed), invoice_id(rejected)):
                conversion.status = "rejected"
    # Then only the one Stripe gives no reason for is a difference, reported only
    assert run(stripe_api, everflow) == 1
    found = rows(capsys)
    assert {order: row["reason"] for order, row in found.items()} == {
        invoice_id(rejected): "rejected_in_everflow"
    }
    assert found[invoice_id(rejected)]["fix"] == "-"
    # And once the dispute is lost it stays no difference (refunded_in_stripe… needs
    # an approved conversion; this one is rejected already)
    dispute["status"] = "lost"
    stripe_api.put("disputes", dispute)
    assert run(stripe_api, everflow) == 1
    assert set(rows(capsys)) == {invoice_id(rejected)}
