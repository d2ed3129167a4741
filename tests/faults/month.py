"""A month of a small subscription business through the whole bridge, under faults.

The script: customers sign up over the first days (a click registered on
``POST /clicks`` an hour before, a few only hours *after* their first payment, a few
never), pay a first invoice and renewals every two weeks; some invoices are refunded
in part or in full, some disputed (won or lost). Built from events/'s legacy-shape
payloads with the ids renamed per customer and invoice.

The delivery: each Stripe event is sent to StripeWebhookFunction, signed, in a
shuffled order (a random lag of up to two hours), some twice (Stripe delivers at
least once), and again on Stripe's retry schedule whenever the webhook answered
anything but 2xx (PaymentEventsQueue refuses some sends); a click answered 5xx is
sent again too, as its caller would. The two queues
(``SimSqs``) feed MatchPaymentFunction and PostEverflowFunction in batches of ten, in
random order, with duplicate messages, visibility timeouts and redrive on simulated
time. Everflow (``FaultyEverflow``) fails at random, is down for hours, fails lookups;
the poster's worker is killed between Everflow's answer and the ledger write.

The reconciliation compares what Everflow holds at the end with what the script
says it should hold (``expected``), conversion by conversion.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from stripe_everflow.adapters.sqs import SqsSender
from stripe_everflow_cli.pollers import build_sqs_event, settle_batch
from tests.faults.sim import (
    EverflowFaults,
    FaultyEverflow,
    KillingLedger,
    SimClock,
    SimSqs,
    WorkerKilled,
)
from tests.integration.conftest import Aws
from tests.integration.pipeline import AtomicDynamoDB, build_pipeline
from tests.support import (
    EVENTS,
    LambdaContext,
    body_of,
    bridge_secret,
    http_api_event,
    load_function,
    sign,
)

HOUR, DAY = 3_600, 86_400
# Stripe's retries of an undelivered event: "immediately, 5 min, 30 min, 2 h, 5 h, 10 h,
# then every 12 h", for up to three days.
STRIPE_RETRIES = [60, 300, 1_800, 7_200, 18_000, 36_000, *([43_200] * 5)]
# A caller of POST /clicks answered 5xx ("retry later") sends the click again after these.
CLICK_RETRIES = [60, 300, 1_800]
CONSUMER_QUEUES = ("PaymentEventsQueue", "PostbackQueue")
DLQS = ("PaymentEventsDLQ", "PostbackDLQ")
PRICE_MINOR = 4900


@dataclass(frozen=True)
class Size:
    name: str
    customers: int
    invoices_per_customer: int
    outage_hours: float = 6.0
    kills: int = 3


SIZES = {
    # CI: 20 customers, ~40 invoices, ~60 Stripe events (before duplicates and retries)
    "ci": Size("ci", customers=20, invoices_per_customer=2, kills=3),
    # full: 50 customers, 150 invoices, with refunds and disputes
    "full": Size("full", customers=50, invoices_per_customer=3, kills=10),
}


def faults_size() -> Size:
    name = os.environ.get("FAULTS_SIZE", "ci")
    if name not in SIZES:
        raise pytest.UsageError(f"FAULTS_SIZE={name!r}: one of {sorted(SIZES)}")
    return SIZES[name]


# ------------------------------------------------------------------------ the script


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a reproducible fault stream


def _template(name: str) -> str:
    return (EVENTS / "stripe" / "legacy" / f"{name}.json").read_text("utf-8")


@dataclass
class Invoice:
    customer: int
    number: int
    paid_at: float
    clicked: bool  # the customer's click reaches the bridge (before or after)
    refunded_minor: int = 0
    dispute: str | None = None  # "won" | "lost"

    @property
    def token(self) -> str:
        return f"Qfault{self.customer:04d}n{self.number}"

    @property
    def invoice_id(self) -> str:
        return f"in_1{self.token}"

    def expected_status(self) -> str:
        if self.refunded_minor >= PRICE_MINOR or self.dispute == "lost":
            return "rejected"
        return "approved"

    def expected_sale_amount(self) -> Decimal:
        return Decimal(PRICE_MINOR - self.refunded_minor) / 100


def _customer(text: str, customer: int) -> str:
    return (
        text.replace("cus_QbridgeJenny01", f"cus_Qfault{customer:04d}")
        .replace("jenny.rosen@example.com", f"customer{customer:04d}@example.com")
        .replace("sub_1QbridgeSub001", f"sub_1Qfault{customer:04d}")
    )


def invoice_paid(invoice: Invoice) -> dict[str, Any]:
    name, token = (
        ("invoice.paid.first", "QbridgeFirst01")
        if invoice.number == 0
        else ("invoice.paid.renewal", "QbridgeRenew01")
    )
    event = json.loads(_customer(_template(name), invoice.customer).replace(token, invoice.token))
    event["id"] = f"evt_paid_{invoice.token}"
    event["created"] = int(invoice.paid_at)
    return dict(event)


def charge_refunded(invoice: Invoice, refunded_minor: int, at: float) -> dict[str, Any]:
    text = _customer(_template("charge.refunded"), invoice.customer)
    event = json.loads(text.replace("QbridgeRenew01", invoice.token))
    event["id"] = f"evt_refund_{invoice.token}_{refunded_minor}"
    event["created"] = int(at)
    event["data"]["object"].update(
        amount_refunded=refunded_minor,
        refunded=refunded_minor >= PRICE_MINOR,
        amount=PRICE_MINOR,
        amount_captured=PRICE_MINOR,
    )
    return dict(event)


def dispute(invoice: Invoice, name: str, status: str, at: float) -> dict[str, Any]:
    text = _customer(_template(name), invoice.customer)
    text = text.replace("QbridgeFirst01", invoice.token).replace(
        "dp_1QbridgeDispute01", f"dp_1{invoice.token}"
    )
    event = json.loads(text)
    event["id"] = f"evt_{name.rsplit('.', 1)[-1]}_{invoice.token}"
    event["created"] = int(at)
    event["data"]["object"]["status"] = status
    return dict(event)


@dataclass
class Script:
    invoices: list[Invoice]
    clicks: list[tuple[float, int]]  # (when, customer)
    events: list[tuple[float, dict[str, Any]]]  # (when Stripe first sends it, event)


def build_script(size: Size, start: float, rng: random.Random) -> Script:
    invoices, clicks, events = [], [], []
    for customer in range(size.customers):
        signup = start + rng.uniform(HOUR, 2 * DAY)
        roll = rng.random()
        clicked = roll >= 0.1  # one in ten never clicked an affiliate's link
        if clicked:
            late = roll < 0.2  # one in ten: the click reaches the bridge after the payment
            clicks.append((signup + (2 * HOUR if late else -HOUR), customer))
        for number in range(size.invoices_per_customer):
            paid_at = signup + number * 13 * DAY
            invoice = Invoice(customer, number, paid_at, clicked)
            invoices.append(invoice)
            events.append((paid_at, invoice_paid(invoice)))
            fate = rng.random()
            if fate < 0.12:  # a partial refund
                invoice.refunded_minor = 1500
                events.append(
                    (paid_at + 2 * DAY, charge_refunded(invoice, 1500, paid_at + 2 * DAY))
                )
            elif fate < 0.18:  # a partial refund, then the rest
                invoice.refunded_minor = PRICE_MINOR
                events.append(
                    (paid_at + 2 * DAY, charge_refunded(invoice, 1500, paid_at + 2 * DAY))
                )
                events.append(
                    (paid_at + 4 * DAY, charge_refunded(invoice, PRICE_MINOR, paid_at + 4 * DAY))
                )
            elif fate < 0.24 and number == 0:  # a dispute on a first payment
                invoice.dispute = "won" if rng.random() < 0.5 else "lost"
                created, closed = paid_at + 3 * DAY, paid_at + 9 * DAY
                events.append(
                    (created, dispute(invoice, "charge.dispute.created", "needs_response", created))
                )
                events.append(
                    (closed, dispute(invoice, "charge.dispute.closed", invoice.dispute, closed))
                )
    return Script(invoices, clicks, events)


# ------------------------------------------------------------------------ the run


@dataclass
class Reconciliation:
    size: str
    faults: bool
    expected_conversions: int
    recorded_conversions: int
    doubled: int
    lost: int
    unexpected: int
    undo_expected: int
    undo_wrong: int
    in_dlq: dict[str, int]
    stuck: dict[str, int]
    calls: Counter[str]
    sqs: Counter[str]
    stripe: Counter[str]
    killed: int
    simulated_days: float
    postback_max_receives: int
    outage_hours: float
    details: list[str] = field(default_factory=list)

    @property
    def postback_attempts(self) -> int:
        return sum(n for k, n in self.calls.items() if k.startswith("postback:"))

    def table(self) -> str:
        calls = self.calls
        rows = [
            ("conversions expected (Everflow calls that must land)", self.expected_conversions),
            ("conversions recorded by Everflow (made)", self.recorded_conversions),
            ("postback calls made (every attempt)", self.postback_attempts),
            (
                "  refused (5xx/429, not recorded)",
                sum(n for k, n in calls.items() if k.startswith("postback:refused")),
            ),
            (
                "  recorded, then 502 / hang-up / timeout",
                sum(n for k, n in calls.items() if k.startswith("postback:recorded_then")),
            ),
            ("  during the outage (503)", calls["postback:outage_503"]),
            (
                "Network API calls (lookups, refunds)",
                sum(n for k, n in calls.items() if k.startswith("api:")),
            ),
            (
                "  failed (injected 5xx/429 or outage)",
                sum(
                    n
                    for k, n in calls.items()
                    if k.startswith("api:failed") or k == "api:outage_503"
                ),
            ),
            (
                "reversal postbacks made",
                sum(n for k, n in calls.items() if k.startswith("reversal:")),
            ),
            ("workers killed after Everflow answered", self.killed),
            ("refund/dispute outcomes expected", self.undo_expected),
            ("refund/dispute outcomes wrong at the end", self.undo_wrong),
            ("DOUBLED (conversions recorded twice)", self.doubled),
            ("LOST (expected, never recorded)", self.lost),
            ("posted without a click (unexpected)", self.unexpected),
            *((f"in {name}", n) for name, n in self.in_dlq.items()),
            *((f"still on {name} at the end", n) for name, n in self.stuck.items()),
            ("Stripe deliveries (incl. duplicates, retries)", self.stripe["deliveries"]),
            ("  answered 5xx, retried by Stripe", self.stripe["retried"]),
            (
                "SQS messages stored twice (at-least-once)",
                sum(n for k, n in self.sqs.items() if k.startswith("duplicated:")),
            ),
            ("Everflow outage (simulated hours)", self.outage_hours),
            ("PostbackQueue maxReceiveCount", self.postback_max_receives),
            ("simulated days", round(self.simulated_days, 1)),
        ]
        width = max(len(r[0]) for r in rows)
        title = f"fault-injection reconciliation — size {self.size}" + (
            "" if self.faults else " (no faults)"
        )
        lines = [title, "-" * (width + 10)]
        lines += [f"{label:<{width}}  {value:>7}" for label, value in rows]
        lines += [f"  ! {d}" for d in self.details[:30]]
        return "\n".join(lines)


class Month:
    def __init__(
        self,
        aws: Aws,
        monkeypatch: pytest.MonkeyPatch,
        size: Size,
        *,
        seed: int,
        faults: bool = True,
    ) -> None:
        import botocore.session

        self.size, self.faults_on = size, faults
        self.rng = seeded(seed)
        self.start = float(int(__import__("time").time()))
        self.clock = SimClock(self.start)
        self.sqs = SimSqs(self.clock, seeded(seed + 1))
        for name, url in aws.resources.queue_urls.items():
            attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            self.sqs.add_queue(name, url, attributes["Attributes"])
        # What-if: PostbackQueue's maxReceiveCount other than the template's.
        receives = os.environ.get("FAULTS_POSTBACK_MAX_RECEIVES")
        if receives:
            self.sqs.named("PostbackQueue").max_receive_count = int(receives)
        # Every SQS client the functions create from here on is the simulated one.
        original = botocore.session.Session.create_client
        sim = self.sqs

        def create_client(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            return (
                sim if service_name == "sqs" else original(session, service_name, *args, **kwargs)
            )

        monkeypatch.setattr(botocore.session.Session, "create_client", create_client)

        # the outage falls on the sign-up wave: first payments, clicks arriving late
        outage_start = self.start + 18 * HOUR
        everflow_faults = (
            EverflowFaults(
                postback_failure_rate=0.3,
                lookup_failure_rate=0.3,
                outage=(outage_start, outage_start + size.outage_hours * HOUR),
            )
            if faults
            else EverflowFaults()
        )
        self.everflow = FaultyEverflow(self.clock, seed + 2, everflow_faults).start()
        if faults:
            self.sqs.duplicate_rate = {"PaymentEventsQueue": 0.15, "PostbackQueue": 0.15}
            self.sqs.send_failure_rate = {"PaymentEventsQueue": 0.05}

        secret = bridge_secret()
        secret["everflow_api_key"] = "ef_api_key"
        aws.secretsmanager.put_secret_value(
            SecretId="BridgeSecret", SecretString=json.dumps(secret)
        )
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "CRITICAL")

        # webhook
        for name, value in aws.function_environment("StripeWebhookFunction").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        self.webhook = load_function("stripe_webhook")
        self.webhook_deps = self.webhook.Dependencies.from_environ(os.environ)
        # matcher and click intake
        self.pipeline = build_pipeline(aws, monkeypatch, POWERTOOLS_LOG_LEVEL="CRITICAL")
        matcher = self.pipeline.match_deps.matcher
        matcher.held_events = SqsSender(aws.resources.queue_urls["PaymentEventsQueue"], sim)
        matcher.clock = self.clock
        # poster
        for name, value in aws.function_environment("PostEverflowFunction").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("EVERFLOW_POSTBACK_BASE_URL", self.everflow.url)
        monkeypatch.setenv("EVERFLOW_API_BASE_URL", self.everflow.url)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        self.poster_app = load_function("post_everflow")
        self.poster_deps = replace(
            self.poster_app.Dependencies.from_environ(os.environ),
            draw=seeded(seed + 3).random,  # the retry delays' jitter, from the seed too
        )
        poster = self.poster_deps.poster
        self.ledger = KillingLedger(poster.settings.ledger_table, AtomicDynamoDB(), set())
        poster.ledger = self.ledger
        poster.clock = self.clock
        # short timeouts: a stalled Everflow costs half a second of real time
        poster.client = self.poster_app.EverflowClient(connect_timeout=0.5, read_timeout=0.5)
        self.failures: dict[str, list[str]] = {}
        # (first, last) simulated time a job's attempt failed: how long it rode out
        self.failing: dict[str, tuple[float, float]] = {}
        post_job = poster.post_job

        def recording_post_job(job: Any, body: str) -> Any:
            try:
                return post_job(job, body)
            except BaseException as error:
                reason = getattr(error, "reason", type(error).__name__)
                self.failures.setdefault(job.job_key, []).append(str(reason))
                now = self.clock()
                self.failing[job.job_key] = (self.failing.get(job.job_key, (now, now))[0], now)
                raise

        poster.post_job = recording_post_job
        self.script = build_script(size, self.start, self.rng)
        if faults:
            kill = [i for i in self.script.invoices if i.clicked]
            self.rng.shuffle(kill)
            self.ledger.kill = {f"conversion:default:{i.invoice_id}" for i in kill[: size.kills]}
        self.stripe: Counter[str] = Counter()
        self.details: list[str] = []

    # ------------------------------------------------------------ one step of each kind

    def _deliver(self, event: dict[str, Any], attempt: int, schedule: Callable[..., None]) -> None:
        body = body_of(event)
        answer = self.webhook.handle(http_api_event(body, signature=sign(body)), self.webhook_deps)
        self.webhook.metrics.clear_metrics()
        self.stripe["deliveries"] += 1
        status = answer["statusCode"]
        if status >= 300:
            self.stripe["retried"] += 1
            if attempt < len(STRIPE_RETRIES):
                schedule(self.clock() + STRIPE_RETRIES[attempt], ("stripe", event, attempt + 1))
            else:
                self.details.append(
                    f"Stripe gave up on {event['id']} (last answer {status} {answer['body']})"
                )
        elif json.loads(answer["body"]).get("status") != "accepted":
            self.details.append(f"webhook did not accept {event['id']}: {answer['body']}")

    def _click(self, customer: int, attempt: int, schedule: Callable[..., None]) -> None:
        status, answer = self.pipeline.post_clicks(
            {
                "email": f"customer{customer:04d}@example.com",
                "transaction_id": f"ef_tx_fault_{customer:04d}",
                "offer_id": 12,
                "affiliate_id": 7,
            }
        )
        if status >= 500 and attempt < len(CLICK_RETRIES):
            # "retry later" (a queue refused a send): the caller sends the click again
            schedule(self.clock() + CLICK_RETRIES[attempt], ("click", customer, attempt + 1))
        elif status >= 300:
            self.details.append(f"click of customer {customer} answered {status}: {answer}")

    def _poll(self, queue: str) -> int:
        url = self.sqs.named(queue).url
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return 0
        event = build_sqs_event(messages, queue)
        try:
            if queue == "PaymentEventsQueue":
                response = self.pipeline.match.handle(
                    event, LambdaContext(), self.pipeline.match_deps
                )
                self.pipeline.match.metrics.clear_metrics()
            else:
                response = self.poster_app.handle(event, self.poster_deps)
                self.poster_app.metrics.clear_metrics()
        except WorkerKilled:
            return len(messages)  # the invocation died: every record comes back
        except BatchProcessingError:
            # Every record of the batch failed (each logged) and Powertools says so by
            # raising: to SQS the same as reporting them all, the whole batch comes
            # back; one failing for good ends in a DLQ, which the pass mark reads.
            return len(messages)
        except Exception as error:  # the invocation failed: the whole batch comes back
            self.details.append(f"{queue} invocation raised {type(error).__name__}: {error}")
            return len(messages)
        done = settle_batch(messages, response, reports_batch_item_failures=True)
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    # ------------------------------------------------------------ the month

    def run(self) -> Reconciliation:
        timeline: list[tuple[float, int, tuple[Any, ...]]] = []
        order = itertools.count()

        def schedule(at: float, action: tuple[Any, ...]) -> None:
            heapq.heappush(timeline, (at, next(order), action))

        for at, customer in self.script.clicks:
            schedule(at, ("click", customer, 0))
        for at, event in self.script.events:
            lag = self.rng.uniform(0, 2 * HOUR) if self.faults_on else 0.0
            schedule(at + lag, ("stripe", event, 0))
            if self.faults_on and self.rng.random() < 0.25:  # Stripe sends it again
                schedule(at + lag + self.rng.uniform(1, 6 * HOUR), ("stripe", event, 0))
        deadline = self.start + 60 * DAY
        urls = [self.sqs.named(q).url for q in CONSUMER_QUEUES]
        while True:
            moments = [timeline[0][0]] if timeline else []
            moments += [t for t in (self.sqs.next_visible_at(u) for u in urls) if t is not None]
            if not moments:
                break
            moment = min(moments)
            if moment > deadline:
                self.details.append("still moving after 60 simulated days")
                break
            self.clock.advance_to(moment)
            while timeline and timeline[0][0] <= self.clock():
                _, _, action = heapq.heappop(timeline)
                if action[0] == "click":
                    self._click(action[1], action[2], schedule)
                else:
                    self._deliver(action[1], action[2], schedule)
            for _ in range(10_000):
                if not sum(self._poll(q) for q in CONSUMER_QUEUES):
                    break
        return self.reconcile()

    def reconcile(self) -> Reconciliation:
        recorded = list(self.everflow.recorded.values())
        by_order = Counter(c.order_id for c in recorded)
        expected = {i.invoice_id: i for i in self.script.invoices if i.clicked}
        doubled = sum(n - 1 for o, n in by_order.items() if n > 1)
        lost = [o for o in expected if by_order[o] == 0]
        unexpected = [o for o in by_order if o not in expected]
        for order in sorted(o for o, n in by_order.items() if n > 1):
            self.details.append(f"doubled: {order} recorded {by_order[order]} times")
        for order in lost:
            entry = self.ledger.get(f"conversion:default:{order}")
            trail = (
                f"{entry.status}, {entry.attempts} attempts, last: {entry.item.get('last_error')}"
                if entry
                else "no ledger entry"
            )
            key = f"conversion:default:{order}"
            tries = ", ".join(self.failures.get(key, []))
            first, last = self.failing.get(key, (self.start, self.start))
            self.details.append(
                f"lost: {order} (ledger: {trail}; failing from +{(first - self.start) / HOUR:.1f} h"
                f" for {last - first:.0f} s; receives failed: {tries})"
            )
        undo_expected = undo_wrong = 0
        for order, invoice in expected.items():
            if not (invoice.refunded_minor or invoice.dispute):
                continue
            undo_expected += 1
            held = [c for c in recorded if c.order_id == order]
            if not held:
                continue  # counted as lost above
            want = (invoice.expected_status(), invoice.expected_sale_amount())
            got = {(c.status, c.sale_amount) for c in held}
            ok = {s for s, _ in got} == {want[0]} if want[0] == "rejected" else got == {want}
            if not ok:
                undo_wrong += 1
                self.details.append(f"refund/dispute: {order} wants {want}, Everflow holds {got}")
        in_dlq = {name: len(self.sqs.named(name).messages) for name in DLQS}
        stuck = {name: len(self.sqs.named(name).messages) for name in CONSUMER_QUEUES}
        return Reconciliation(
            size=self.size.name,
            faults=self.faults_on,
            expected_conversions=len(expected),
            recorded_conversions=sum(by_order.values()),
            doubled=doubled,
            lost=len(lost),
            unexpected=len(unexpected),
            undo_expected=undo_expected,
            undo_wrong=undo_wrong,
            in_dlq=in_dlq,
            stuck=stuck,
            calls=self.everflow.calls,
            sqs=self.sqs.stats,
            stripe=self.stripe,
            killed=len(self.ledger.killed),
            simulated_days=(self.clock() - self.start) / DAY,
            postback_max_receives=self.sqs.named("PostbackQueue").max_receive_count or 0,
            outage_hours=self.size.outage_hours if self.faults_on else 0,
            details=self.details,
        )

    def close(self) -> None:
        self.everflow.stop()
