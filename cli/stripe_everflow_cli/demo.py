"""`make demo`: a scripted scenario through the local stack, printed as it goes.

Starts the stack on free ports with the built-in test-mode secret (its ``default``
account given a restricted key, so the bridge reads the stack's Stripe API stand-in
as a deployed one reads Stripe) and plays five acts:

1. the webhook intake, consumers paused: valid, tampered, retried, replayed, wrong
   account and wrong mode deliveries, and what they left on PaymentEventsQueue;
2. attribution and posting, consumers running: a click registered, the first
   payment and a renewal matched to it, a payment whose click arrives later parked
   then matched, and what reached the Everflow stand-in.

3. refunds and chargebacks: a partial refund adjusting the renewal's amount, a full
   refund reversing it, a chargeback won and one lost, and the refund report.

4. clicks from Everflow, no ``POST /clicks``: a payment matched through the lookup of
   its email in Everflow's conversions, and a payment parked because Everflow knew no
   click yet, released by the scheduled sync once Everflow recorded the sign-up.

5. the proof: ``reconcile`` over the days the demo's Stripe objects were created,
   clean (no difference) and counting every payment the demo made.

Stripe holds what it sends events about: each genuine delivery's object (invoice,
Checkout Session, invoice payment, charge and a Refund for each refunded increment,
dispute) is stored in the Stripe API stand-in before the event is sent
(``_stripe_holds``); the deliberately wrong deliveries of act 1 store nothing.

Every answer and every job is checked: the demo exits 1 on anything unexpected, so it
doubles as a smoke test of a fresh checkout.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from stripe_everflow_cli.localconfig import (
    LOCAL_EU_WEBHOOK_SECRET,
    LOCAL_WEBHOOK_SECRET,
    load_local_config,
)
from stripe_everflow_cli.signing import post_signed, serialize_event, signature_header
from stripe_everflow_cli.stack import LocalStack, find_project_root


@dataclass(frozen=True)
class Step:
    title: str
    path: str
    body: bytes
    header: str | None
    expected_status: int
    # the event whose object Stripe holds (the default account's genuine deliveries);
    # None for the deliberately wrong ones, which leave nothing in Stripe
    event: dict[str, Any] | None = None


def _event(root: Path, shape: str, name: str, **changes: Any) -> dict[str, Any]:
    event = dict(json.loads((root / "events" / "stripe" / shape / name).read_text("utf-8")))
    event.update(changes)
    return event


def _tamper(body: bytes) -> bytes:
    # Raise the paid amount after signing, as an attacker replaying a real event would.
    tampered = body.replace(b'"amount_paid": 4900', b'"amount_paid": 9900', 1)
    assert tampered != body
    return tampered


def build_steps(root: Path, now: Callable[[], float] = time.time) -> list[Step]:
    first_event = _event(root, "basil", "invoice.paid.first.json")
    first = serialize_event(first_event)
    renewal_legacy = serialize_event(_event(root, "legacy", "invoice.paid.renewal.json"))
    live = serialize_event(_event(root, "basil", "invoice.paid.renewal.json", livemode=True))
    unhandled = serialize_event(
        _event(
            root,
            "basil",
            "invoice.paid.first.json",
            id="evt_1QbridgeDemoUpcoming",
            type="invoice.upcoming",
        )
    )
    sign = signature_header
    return [
        Step(
            "invoice.paid, valid signature",
            "/stripe/webhook",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            200,
            first_event,
        ),
        Step(
            "same event, amount changed after signing",
            "/stripe/webhook",
            _tamper(first),
            sign(first, LOCAL_WEBHOOK_SECRET),
            400,
        ),
        Step(
            "same event again (Stripe retry)",
            "/stripe/webhook",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            200,
            first_event,
        ),
        Step(
            "signed 10 minutes ago (replay)",
            "/stripe/webhook",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET, int(now()) - 600),
            400,
        ),
        Step("no Stripe-Signature header", "/stripe/webhook", first, None, 400),
        Step(
            "legacy-shape renewal, account eu-store",
            "/stripe/webhook/eu-store",
            renewal_legacy,
            sign(renewal_legacy, LOCAL_EU_WEBHOOK_SECRET),
            200,
        ),
        Step(
            "signed with another account's secret",
            "/stripe/webhook/eu-store",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            400,
        ),
        Step(
            "unknown account",
            "/stripe/webhook/nobody",
            first,
            sign(first, LOCAL_WEBHOOK_SECRET),
            404,
        ),
        Step(
            "live-mode event at a test-mode account",
            "/stripe/webhook",
            live,
            sign(live, LOCAL_WEBHOOK_SECRET),
            200,
        ),
        Step(
            "event type the bridge does not use",
            "/stripe/webhook",
            unhandled,
            sign(unhandled, LOCAL_WEBHOOK_SECRET),
            200,
        ),
    ]


def _describe(answer: requests.Response) -> str:
    try:
        payload = answer.json()
    except ValueError:
        return answer.text[:80]
    if "error" in payload:
        return f"refused: {payload['error']}"
    if "message" in payload:
        return f"gateway: {payload['message']}"
    if payload.get("status") == "ignored":
        return f"ignored ({payload['reason']}): {payload['event_id']}"
    return f"{payload.get('status')}: {payload.get('event_id')} {payload.get('event_type')}"


def _check(ok: bool, failures: list[str], what: str) -> str:
    if not ok:
        failures.append(what)
    return "" if ok else f"   <-- expected {what}"


def _peek_queue(stack: LocalStack, queue: str) -> list[dict[str, Any]]:
    """Read the queue's messages without consuming them (visibility 0)."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(5):
        answer = stack.sqs.receive_message(
            QueueUrl=stack.resources.queue_urls[queue],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        )
        for message in answer.get("Messages", []):
            seen[message["MessageId"]] = json.loads(message["Body"])
    return list(seen.values())


PAYMENT_QUEUES = ("PaymentEventsQueue", "PostbackQueue")
CLICK_TOKEN_HEADER = {"authorization": "Bearer local-click-intake-token"}


def _act_one(stack: LocalStack, root: Path, session: requests.Session, failures: list[str]) -> None:
    print("Act 1 — the webhook intake (queue consumers paused)\n")
    print(f"{'#':>2}  {'request':<44} {'answer':>6}  what the bridge did")
    for number, step in enumerate(build_steps(root), start=1):
        if step.event is not None:
            _stripe_holds(stack, step.event)
        answer = post_signed(stack.base_url + step.path, step.body, step.header, session=session)
        mark = _check(
            answer.status_code == step.expected_status,
            failures,
            f"{step.expected_status} for {step.title}",
        )
        print(f"{number:>2}  {step.title:<44} {answer.status_code:>6}  {_describe(answer)}{mark}")
    messages = _peek_queue(stack, "PaymentEventsQueue")
    print(f"\nPaymentEventsQueue holds {len(messages)} message(s):")
    for body in messages:
        event = body["event"]
        print(
            f"  - {event['id']}  {event['type']:<14} account={body['account']:<9} "
            f"api_version={event['api_version']}"
        )
    print(
        "The retry (#3) is queued again on purpose: the webhook acknowledges every genuine\n"
        "delivery; the matcher processes each Stripe event once."
    )
    _check(len(messages) == 3, failures, "3 messages on PaymentEventsQueue")
    stack.sqs.purge_queue(QueueUrl=stack.resources.queue_urls["PaymentEventsQueue"])
    print("(queue emptied for act 2)\n")


def _post_click(
    stack: LocalStack,
    session: requests.Session,
    click: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> requests.Response:
    return session.post(
        stack.base_url + "/clicks",
        json=click,
        headers=CLICK_TOKEN_HEADER if headers is None else headers,
        timeout=30,
    )


# Stripe's event types → the stand-in's resource holding their object (longest first).
EVENT_OBJECTS = (
    ("charge.dispute.", "disputes"),
    ("charge.refund.", "refunds"),
    ("charge.", "charges"),
    ("checkout.session.", "checkout_sessions"),
    ("invoice_payment.", "invoice_payments"),
    ("invoice.", "invoices"),
    ("payment_intent.", "payment_intents"),
    ("refund.", "refunds"),
)
DEMO_RESOURCES = tuple(dict.fromkeys(resource for _, resource in EVENT_OBJECTS))


def _stripe_holds(stack: LocalStack, event: dict[str, Any]) -> None:
    """What Stripe holds when it sends ``event``: its object, stored in the local
    stack's Stripe API stand-in before the event is delivered (the latest state of
    an object replaces the earlier one). A charge's refunded amount that grew is a
    Refund of the difference, as Stripe makes one. Nothing when the stack reads
    another Stripe (``--stripe-url``)."""
    standin = stack.stripe
    if standin is None:
        return
    obj = dict(event["data"]["object"])
    resource = next((r for prefix, r in EVENT_OBJECTS if event["type"].startswith(prefix)), None)
    if resource is None:
        raise ValueError(f"the demo sends {event['type']}, whose object it does not store")
    if resource == "charges":
        before = standin.get("charges", obj["id"]) or {}
        refunded = int(obj.get("amount_refunded") or 0) - int(before.get("amount_refunded") or 0)
        if refunded > 0:
            standin.add(
                "refunds",
                charge=obj["id"],
                payment_intent=obj.get("payment_intent"),
                amount=refunded,
                currency=obj.get("currency"),
                status="succeeded",
                created=int(event["created"]),
            )
    standin.put(resource, obj)


def _deliver(
    stack: LocalStack, session: requests.Session, event: dict[str, Any]
) -> requests.Response:
    """Stripe's delivery of ``event`` to the webhook (its object held in Stripe first)."""
    _stripe_holds(stack, event)
    body = serialize_event(event)
    return post_signed(
        stack.base_url + "/stripe/webhook",
        body,
        signature_header(body, LOCAL_WEBHOOK_SECRET),
        session=session,
    )


def _act_two(stack: LocalStack, root: Path, session: requests.Session, failures: list[str]) -> None:
    print("Act 2 — attribution and posting to Everflow (queue consumers running)\n")
    jenny = {
        "email": " Jenny.Rosen@Example.com ",
        "transaction_id": "ef_tx_jenny_01",
        "offer_id": 12,
        "affiliate_id": 7,
    }
    kenji_checkout = _event(root, "basil", "checkout.session.completed.payment.json")
    kenji_checkout["id"] = "evt_1QbridgeDemoKenjiCheckout"
    kenji_checkout["data"]["object"]["customer_details"]["email"] = "kenji@example.jp"
    priya_checkout = _one_off(root, "Priya", "priya@example.in")
    steps: list[tuple[str, Callable[[], requests.Response], int]] = [
        ("click for jenny (site sign-up)", lambda: _post_click(stack, session, jenny), 201),
        ("same click again", lambda: _post_click(stack, session, jenny), 200),
        (
            "click with a bad email",
            lambda: _post_click(stack, session, jenny | {"email": "x@"}),
            422,
        ),
        (
            "click with a wrong token",
            lambda: _post_click(stack, session, jenny, {"authorization": "Bearer nope"}),
            401,
        ),
        (
            "invoice.paid, first subscription invoice",
            lambda: _deliver(stack, session, _event(root, "basil", "invoice.paid.first.json")),
            200,
        ),
        (
            "checkout.session.completed, same purchase",
            lambda: _deliver(
                stack, session, _event(root, "basil", "checkout.session.completed.json")
            ),
            200,
        ),
        (
            "invoice.paid again (Stripe retry)",
            lambda: _deliver(stack, session, _event(root, "basil", "invoice.paid.first.json")),
            200,
        ),
        (
            "invoice.paid, renewal a month later",
            lambda: _deliver(stack, session, _event(root, "basil", "invoice.paid.renewal.json")),
            200,
        ),
        (
            "one-off JPY checkout, kenji: no click yet",
            lambda: _deliver(stack, session, kenji_checkout),
            200,
        ),
        (
            "one-off JPY checkout, priya: no click, ever",
            lambda: _deliver(stack, session, priya_checkout),
            200,
        ),
        (
            "click for kenji arrives an hour later",
            lambda: _post_click(
                stack,
                session,
                {
                    "email": "kenji@example.jp",
                    "transaction_id": "ef_tx_kenji_01",
                    "offer_id": 12,
                    "affiliate_id": 9,
                },
            ),
            201,
        ),
    ]
    print(f"{'#':>2}  {'request':<44} {'answer':>6}  answer body")
    for number, (title, send, expected) in enumerate(steps, start=1):
        answer = send()
        mark = _check(answer.status_code == expected, failures, f"{expected} for {title}")
        print(f"{number:>2}  {title:<44} {answer.status_code:>6}  {answer.text[:70]}{mark}")
        if not stack.wait_until_drained(PAYMENT_QUEUES):
            failures.append("PaymentEventsQueue drained")
    if not stack.wait_until_drained(("PaymentEventsQueue", "PostbackQueue")):
        failures.append("queues drained")
    assert stack.everflow is not None
    postbacks = sorted(stack.everflow.postbacks(), key=lambda r: r.received_at)
    print(f"\nWhat reached Everflow ({len(postbacks)} conversion postback(s) at the stand-in):")
    print(
        f"  {'order_id':<22} {'kind':<8} {'amount':>10}  {'transaction_id':<16} {'event':<6} answer"
    )
    for request in postbacks:
        p = dict(request.query)
        print(
            f"  {p.get('order_id', ''):<22} {p.get('adv1', ''):<8} "
            f"{p.get('amount', '') + ' ' + p.get('currency', ''):>10}  "
            f"{p.get('transaction_id', ''):<16} {p.get('event_id', ''):<6} {request.status}"
        )
    if postbacks:
        example = "&".join(f"{k}={v}" for k, v in postbacks[0].query)
        print(f"  the first as sent: GET {stack.everflow_url}/?{example}")
    got = sorted(
        tuple(
            dict(r.query).get(k)
            for k in ("order_id", "adv1", "amount", "currency", "transaction_id")
        )
        for r in postbacks
    )
    expected_postbacks = sorted(
        [
            ("in_1QbridgeFirst01", "initial", "49.00", "USD", "ef_tx_jenny_01"),
            ("in_1QbridgeRenew01", "rebill", "49.00", "USD", "ef_tx_jenny_01"),
            ("pi_3QbridgeOneOff01", "initial", "5000", "JPY", "ef_tx_kenji_01"),
        ]
    )
    _check(got == expected_postbacks, failures, "exactly the 3 expected postbacks")
    depths = stack.queue_depths()
    _check(
        depths["PaymentEventsDLQ"]["visible"] + depths["PostbackDLQ"]["visible"] == 0,
        failures,
        "empty DLQs",
    )
    print(
        "\nOne conversion per payment: the checkout session and the retried invoice.paid added\n"
        "nothing; the renewal found jenny through her pinned Stripe customer; kenji's JPY payment\n"
        "waited (parked) until his click arrived; priya's stays parked, no partner brought her.\n"
        "Emails never left memory: only keyed hashes."
    )


def _one_off(root: Path, name: str, email: str) -> dict[str, Any]:
    """The one-off JPY Checkout Session (basil) as another customer's: ids and email
    replaced."""
    text = root / "events" / "stripe" / "basil" / "checkout.session.completed.payment.json"
    raw = text.read_text("utf-8")
    for old, new in (
        ("evt_1QbridgeCheckoutSessionCompletedPaymentBasil", f"evt_1QbridgeDemo{name}Checkout"),
        ("cs_test_a1QbridgeOneOffJpy01", f"cs_test_a1QbridgeDemo{name}"),
        ("pi_3QbridgeOneOff01", f"pi_3QbridgeDemo{name}"),
        ("jenny.rosen@example.com", email),
    ):
        raw = raw.replace(old, new)
    return dict(json.loads(raw))


def _refunded(root: Path, shape: str, refunded_minor: int) -> dict[str, Any]:
    event = _event(
        root, shape, "charge.refunded.json", id=f"evt_1QbridgeDemoRefund{refunded_minor}"
    )
    event["data"]["object"].update(amount_refunded=refunded_minor, refunded=refunded_minor >= 4900)
    return event


def _dispute(root: Path, name: str, event_id: str, **changes: Any) -> dict[str, Any]:
    event = _event(root, "basil", name, id=event_id)
    event["data"]["object"].update(changes)
    return event


def _act_three(
    stack: LocalStack, root: Path, session: requests.Session, failures: list[str]
) -> None:
    print("\nAct 3 — refunds and chargebacks follow the money\n")
    assert stack.everflow is not None
    stack.everflow.clear()
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "invoice_payment.paid: renewal's payment link",
            _event(root, "basil", "invoice_payment.paid.renewal.json"),
        ),
        (
            "invoice_payment.paid: first payment's link",
            _event(root, "basil", "invoice_payment.paid.first.json"),
        ),
        ("renewal partly refunded (15.00 of 49.00)", _refunded(root, "basil", 1500)),
        ("renewal refunded in full", _refunded(root, "basil", 4900)),
        (
            "chargeback opened on the first payment",
            _dispute(root, "charge.dispute.created.json", "evt_1QbridgeDemoDisputeOpened"),
        ),
        (
            "chargeback won",
            _dispute(root, "charge.dispute.closed.json", "evt_1QbridgeDemoDisputeWon"),
        ),
        (
            "chargeback on kenji's JPY payment",
            _dispute(
                root,
                "charge.dispute.created.json",
                "evt_1QbridgeDemoDisputeKenji",
                id="dp_1QbridgeDemoKenji",
                charge="ch_3QbridgeOneOff01",
                payment_intent="pi_3QbridgeOneOff01",
                amount=5000,
                currency="jpy",
            ),
        ),
        (
            "… and lost",
            _dispute(
                root,
                "charge.dispute.closed.json",
                "evt_1QbridgeDemoDisputeKenjiLost",
                id="dp_1QbridgeDemoKenji",
                charge="ch_3QbridgeOneOff01",
                payment_intent="pi_3QbridgeOneOff01",
                amount=5000,
                currency="jpy",
                status="lost",
            ),
        ),
    ]
    for number, (title, event) in enumerate(steps, start=1):
        answer = _deliver(stack, session, event)
        mark = _check(answer.status_code == 200, failures, f"200 for {title}")
        print(f"{number:>2}  {title:<46} {answer.status_code:>6}{mark}")
        if not stack.wait_until_drained(PAYMENT_QUEUES):
            failures.append("queues drained")
    calls = [r for r in stack.everflow.requests() if r.path != "/"]
    print(f"\nWhat reached Everflow ({len(calls)} call(s)):")
    for request in calls:
        detail = "&".join(f"{k}={v}" for k, v in request.query) or request.body
        print(f"  {request.method:<5} {request.path[:60]:<60} {detail[:70]}")
    reversals = stack.everflow.reversals()
    adjustments = [json.loads(r.body) for r in stack.everflow.api_calls() if r.method == "PUT"]
    restores = [json.loads(r.body) for r in stack.everflow.api_calls() if r.method == "PATCH"]
    _check(len(reversals) == 3, failures, "3 reversals (full refund, two chargebacks)")
    _check([a["sale_amount"] for a in adjustments] == [34.0], failures, "one adjustment to 34.00")
    _check([r["conversion_status"] for r in restores] == ["approved"], failures, "one restore")
    from stripe_everflow_cli.report import build_report, read_ledger

    entries = read_ledger(stack.dynamodb, stack.resources.table_names["LedgerTable"])
    print("\n$ stripe-everflow report refunds --endpoint " + stack.aws_endpoint)
    print(build_report("refunds", entries, None, None, "table"))
    print("\n$ stripe-everflow report conversions --endpoint " + stack.aws_endpoint)
    print(build_report("conversions", entries, None, None, "table"))


def _customer_event(root: Path, name: str, email: str) -> dict[str, Any]:
    """jenny's first invoice (basil) as another customer's: ids and email replaced."""
    text = (root / "events" / "stripe" / "basil" / "invoice.paid.first.json").read_text("utf-8")
    for old, new in (
        ("evt_1QbridgeInvoicePaidFirstBasil", f"evt_1QbridgeDemo{name}"),
        ("in_1QbridgeFirst01", f"in_1QbridgeDemo{name}"),
        ("cus_QbridgeJenny01", f"cus_QbridgeDemo{name}"),
        ("sub_1QbridgeSub001", f"sub_1QbridgeDemo{name}"),
        ("jenny.rosen@example.com", email),
    ):
        text = text.replace(old, new)
    return dict(json.loads(text))


def _through_eventbridge(stack: LocalStack, event: dict[str, Any]) -> None:
    """Deliver a Stripe event as Stripe's Amazon EventBridge event destination does:
    the rule puts the event, as Stripe sent it, on PaymentEventsQueue (its object
    held in Stripe first)."""
    _stripe_holds(stack, event)
    envelope = {
        "version": "0",
        "id": event["id"],
        "detail-type": event["type"],
        "source": "aws.partner/stripe.com/ed_local_demo",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [],
        "detail": event,
    }
    stack.sqs.send_message(
        QueueUrl=stack.resources.queue_urls["PaymentEventsQueue"], MessageBody=json.dumps(envelope)
    )


def _act_four(stack: LocalStack, root: Path, failures: list[str]) -> None:
    print("\nAct 4 — clicks from Everflow (no POST /clicks)\n")
    everflow = stack.everflow
    if everflow is None:
        print("(skipped: the stack talks to an Everflow of its own, not the stand-in)")
        return
    email_report = "/v1/networks/reporting/conversions/email"
    now = int(time.time())
    # Everflow's own step 1: the sign-up postback carried the customer's email.
    everflow.add_conversion(
        transaction_id="ef_tx_amara_01",
        email="amara@example.com",
        offer_id=1,
        affiliate_id=21,
        click_unix_timestamp=now - 2 * 86_400,
        conversion_unix_timestamp=now - 86_400,
    )
    print("Everflow recorded amara's sign-up (offer 1, partner 21) with her email.")
    everflow.clear()
    amara = _customer_event(root, "Amara", "amara@example.com")
    _through_eventbridge(stack, amara)
    drained = stack.wait_until_drained(PAYMENT_QUEUES)
    lookups = everflow.requests(email_report)
    posted = [dict(p.query) for p in everflow.postbacks()]
    amara_posted = [q for q in posted if q.get("transaction_id") == "ef_tx_amara_01"]
    ok = drained and len(lookups) == 1 and len(amara_posted) == 1
    mark = _check(ok, failures, "amara matched through the lookup")
    amount = amara_posted[0].get("amount") if amara_posted else "?"
    print(
        f"  amara's first invoice (EventBridge)   Everflow asked {len(lookups)} time(s) by email"
        f" -> postback transaction_id=ef_tx_amara_01 amount={amount}{mark}"
    )

    everflow.clear()
    bruno = _customer_event(root, "Bruno", "bruno@example.com")
    _through_eventbridge(stack, bruno)
    drained = stack.wait_until_drained(PAYMENT_QUEUES)
    lookups = everflow.requests(email_report)
    bruno_posted = [p for p in everflow.postbacks() if dict(p.query).get("transaction_id")]
    mark = _check(drained and len(lookups) == 1 and not bruno_posted, failures, "bruno parked")
    print(
        f"  bruno's first invoice (EventBridge)   Everflow asked {len(lookups)} time(s): no click"
        f" known -> parked{mark}"
    )
    everflow.add_conversion(
        transaction_id="ef_tx_bruno_01",
        email="bruno@example.com",
        offer_id=1,
        affiliate_id=33,
        click_unix_timestamp=now - 3600,
        conversion_unix_timestamp=now - 60,
    )
    print("Everflow now records bruno's sign-up (its postback came late).")
    result = stack.run_schedule("SyncClicksFunction")
    drained = stack.wait_until_drained(PAYMENT_QUEUES)
    released = [
        p for p in everflow.postbacks() if dict(p.query).get("transaction_id") == "ef_tx_bruno_01"
    ]
    ok = drained and result.get("replayed") == 1 and len(released) == 1
    mark = _check(ok, failures, "bruno released by the sync")
    print(
        f"  scheduled sync (SyncClicksFunction)   read {result.get('conversions')} conversion(s),"
        f" registered {result.get('registered')} click(s), replayed {result.get('replayed')}"
        f" parked payment(s) -> postback transaction_id=ef_tx_bruno_01{mark}"
    )
    again = stack.run_schedule("SyncClicksFunction")
    ok = again.get("registered") == 0 and again.get("replayed") == 0
    mark = _check(ok, failures, "a second sync changing nothing")
    print(
        f"  the sync again                        registered {again.get('registered')},"
        f" replayed {again.get('replayed')} (idempotent){mark}"
    )


def _day(unix_seconds: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(unix_seconds))


def _act_five(stack: LocalStack, failures: list[str]) -> None:
    print("\nAct 5 — the proof: reconcile over the demo's month\n")
    standin = stack.stripe
    if standin is None or stack.everflow is None:
        print("(skipped: the stack reads another Stripe or Everflow than its stand-ins)")
        return
    import argparse

    from stripe_everflow_cli import reconcile

    created = [
        int(obj.get("created") or 0)
        for resource in DEMO_RESOURCES
        for obj in standin.collection(resource).objects.values()
    ]
    if not created:
        _check(False, failures, "the demo's objects in the Stripe API stand-in")
        print("Stripe (the local stand-in) holds none of the demo's objects: nothing to prove")
        return
    print(
        f"Stripe (the local stand-in) holds the demo's {len(created)} objects, created from"
        f" {_day(min(created))} to {_day(max(created))}: Stripe's side of the proof."
    )
    argv = ["--from", _day(min(created)), "--to", _day(max(created))]
    argv += ["--endpoint", stack.aws_endpoint]
    print("$ stripe-everflow reconcile " + " ".join(argv), flush=True)
    parser = argparse.ArgumentParser(prog="stripe-everflow reconcile")
    reconcile.add_arguments(parser)
    args = parser.parse_args(
        [
            *argv,
            "--stripe-api-base",
            standin.url,
            "--everflow-api-base",
            stack.everflow.url,
            "--max-rps",
            "0",
        ]
    )
    try:
        result = reconcile.reconcile_period(args)
    except Exception as error:  # the demo reports anything unexpected and goes on
        _check(False, failures, f"reconcile to run ({type(error).__name__}: {error})")
        print(f"reconcile failed: {type(error).__name__}: {error}")
        return
    print(reconcile.render(result, "table"), end="")
    code = 1 if result.rows else 0
    mark = _check(code == 0, failures, "reconcile clean (exit 0)")
    print(f"reconcile exit {code}{mark}")
    posted = {c.order_id for c in stack.everflow.recorded.values() if c.order_id}
    made = len(posted) + 1  # and priya's, parked: no click, nothing to post
    counted = sum(t.payments for t in result.totals.values())
    no_click = {t.currency: t.unattributed for t in result.totals.values() if t.unattributed}
    ok = counted == made and no_click == {"JPY": 5000}
    mark = _check(ok, failures, f"reconcile to count the {made} payments, priya's as no_click")
    print(f"reconcile counted {counted} payment(s) in Stripe; the demo made {made}{mark}")
    print(
        "Every payment of the demo is in Everflow exactly once, at Stripe's amount; the\n"
        "refunded renewal and the lost chargeback are reversed there, the won one approved.\n"
        "priya's payment, parked for want of a click, is the bridge's decision, not a\n"
        "difference: it counts in no_click."
    )


def run_demo() -> int:
    root = find_project_root()
    config = load_local_config(None, {})
    # Act 4 takes clicks from Everflow too (ClickSources is api,stripe by default).
    config = dataclasses.replace(
        config, parameters={"ClickSources": "api,stripe,everflow", **config.parameters}
    )
    # Act 5 reads Stripe's API as an operator does: with the account's restricted key,
    # which the matcher then uses too (the stand-in holds what the demo's events name).
    secret = json.loads(config.secret_json)
    account = secret["stripe_accounts"]["default"]
    account.setdefault("api_key", "rk_test_local_demo")
    config = dataclasses.replace(config, secret=secret)
    log_dir = Path(tempfile.mkdtemp(prefix="stripe-everflow-demo-"))
    stack = LocalStack(
        project_root=root,
        config=config,
        port=0,
        log_path=log_dir / "functions.log",
        consumers_enabled=False,
    )
    print("Starting the local stack (moto + the real handlers)…", flush=True)
    stack.start()
    failures: list[str] = []
    try:
        print(
            f"  webhook: {stack.base_url}/stripe/webhook   clicks: {stack.base_url}/clicks   "
            f"AWS (moto): {stack.aws_endpoint}\n"
        )
        with requests.Session() as session:
            _act_one(stack, root, session, failures)
            stack.resume_consumers()
            _act_two(stack, root, session, failures)
            _act_three(stack, root, session, failures)
            _act_four(stack, root, failures)
            _act_five(stack, failures)
        print(f"\nFunction logs: {log_dir / 'functions.log'}")
    finally:
        stack.stop()
    if failures:
        print(f"demo: {len(failures)} unexpected result(s): " + "; ".join(failures))
        return 1
    print("demo: OK")
    return 0
