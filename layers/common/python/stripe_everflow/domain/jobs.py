"""Messages on PostbackQueue: one job per action the poster must take toward Everflow.

The matcher writes a ``PostbackJob`` with ``to_json``; the poster reads it back with
``PostbackJob.from_json``, the one reader of the contract.

Schema ``postback-job/1.1`` (JSON)::

    {
      "schema": "postback-job/1.1",
      "job_key": "conversion:default:in_1Q…",  # (account, Stripe object, action): exactly-once key
      "action": "conversion" | "refund" | "refund_failed" | "dispute_opened" | "dispute_closed",
      "kind": "initial" | "rebill" | null,      # conversions only
      "account": "default",
      "livemode": false,
      "occurred_at": 1767225592,                # when the money moved (unix seconds)
      "amount": "49.00", "currency": "USD",     # exact, major units; tax excluded by default
                                                # (refund_failed: the failed refund's amount)
      "amount_refunded": "15.00" | null,        # charge.refunded: cumulative refunded on the charge
      "charge_amount": "49.00" | null,          # charge.refunded: what the charge captured
      "dispute_status": "won" | null,
      "coupon_code": "FALL20" | "promo_…" | null,  # 1.1; conversions: Everflow's
                                                # coupon_code (the code customers typed,
                                                # else the promotion code's id)
      "conversion_job_key": "conversion:default:in_1Q…" | null,  # refunds, disputes: the
                                                # conversion they undo; null = not ours
      "stripe": {"event_id", "event_type", "invoice_id", "charge_id", "payment_intent_id",
                 "customer_id", "subscription_id", "refund_id", "dispute_id",
                 "checkout_session_id", "price_ids": [], "product_ids": [],
                 "promotion_code", "billing_reason"},
      "target": {"mode": "click", "transaction_id": "…", "offer_id": "…"|null,
                 "affiliate_id": "…"|null, "matched_by": "customer_pin" | "stripe_click_id" |
                 "email_first_touch" | "email_last_touch"}
              | {"mode": "email", "email": "…"}    # Everflow email attribution (opt-in)
              | null                               # refunds/disputes: found through the ledger
    }

No email appears in a job unless Everflow email attribution (or email posting) is on.

Versions: ``postback-job/<major>[.<minor>]``. A minor version only adds optional
fields, so this reader takes any ``postback-job/1.N`` job and ignores the fields it
does not know (a newer matcher may run beside an older poster during a deploy).
Another major, no schema, or a field of the wrong type is a ``MalformedJobError``; a
well-formed job of an action this poster does not know is an ``UnsupportedJobError``.
"""

from __future__ import annotations

import json
import re
from dataclasses import InitVar, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast, get_args

from stripe_everflow.domain.classify import Classification
from stripe_everflow.domain.errors import MalformedJobError, UnsupportedJobError
from stripe_everflow.domain.money import to_major_units

POSTBACK_JOB_SCHEMA = "postback-job/1.1"  # written; read: any postback-job/1.N
_READS = "postback-job/1"
JobAction = Literal["conversion", "refund", "refund_failed", "dispute_opened", "dispute_closed"]
JOB_ACTIONS: tuple[str, ...] = get_args(JobAction)
UNDO_ACTIONS = ("refund", "refund_failed", "dispute_opened", "dispute_closed")
_SCHEMA = re.compile(r"postback-job/(\d+)(?:\.\d+)?")
_READ_MAJOR = "1"
_JOB_TEXTS = ("kind", "conversion_job_key", "currency", "dispute_status", "coupon_code")
_STRIPE_TEXTS = (
    "event_id",
    "event_type",
    "invoice_id",
    "charge_id",
    "payment_intent_id",
    "customer_id",
    "subscription_id",
    "refund_id",
    "dispute_id",
    "checkout_session_id",
    "promotion_code",
    "billing_reason",
)


@dataclass(frozen=True)
class ClickTarget:
    transaction_id: str
    offer_id: str | None
    affiliate_id: str | None
    matched_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": "click",
            "transaction_id": self.transaction_id,
            "offer_id": self.offer_id,
            "affiliate_id": self.affiliate_id,
            "matched_by": self.matched_by,
        }


@dataclass(frozen=True)
class EmailTarget:
    email: str

    def as_dict(self) -> dict[str, Any]:
        return {"mode": "email", "email": self.email}


@dataclass(frozen=True)
class StripeRefs:
    """The Stripe objects behind a job: how Everflow's order id, the adv parameters and
    the ledger's links are found."""

    event_id: str | None = None
    event_type: str | None = None
    invoice_id: str | None = None
    charge_id: str | None = None
    payment_intent_id: str | None = None
    customer_id: str | None = None
    subscription_id: str | None = None
    refund_id: str | None = None
    dispute_id: str | None = None
    checkout_session_id: str | None = None
    price_ids: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()
    promotion_code: str | None = None
    billing_reason: str | None = None

    @classmethod
    def of(cls, c: Classification) -> StripeRefs:
        return cls(
            **c.ids.as_dict(),
            price_ids=tuple(c.price_ids),
            product_ids=tuple(c.product_ids),
            promotion_code=c.promotion_code,
            billing_reason=c.billing_reason,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "invoice_id": self.invoice_id,
            "charge_id": self.charge_id,
            "payment_intent_id": self.payment_intent_id,
            "customer_id": self.customer_id,
            "subscription_id": self.subscription_id,
            "refund_id": self.refund_id,
            "dispute_id": self.dispute_id,
            "checkout_session_id": self.checkout_session_id,
            "price_ids": list(self.price_ids),
            "product_ids": list(self.product_ids),
            "promotion_code": self.promotion_code,
            "billing_reason": self.billing_reason,
        }

    def object_ids(self) -> dict[str, str]:
        """The ids of Stripe objects (``…_id``) the job names, for the ledger's lookups."""
        return {k: v for k, v in self.as_dict().items() if k.endswith("_id") and v}


@dataclass(frozen=True)
class PostbackJob:
    """One job. The matcher builds it from its ``classification`` (which fills the
    money, time and Stripe fields); the poster reads it with ``from_json``."""

    job_key: str
    action: JobAction
    account: str
    livemode: bool
    classification: InitVar[Classification | None] = None
    kind: str | None = None
    target: ClickTarget | EmailTarget | None = None
    conversion_job_key: str | None = None
    occurred_at: int = 0
    amount: Decimal | None = None
    currency: str | None = None
    amount_refunded: Decimal | None = None
    charge_amount: Decimal | None = None
    dispute_status: str | None = None
    coupon_code: str | None = None
    stripe: StripeRefs = field(default_factory=StripeRefs)

    def __post_init__(self, classification: Classification | None) -> None:
        if classification is None:
            return
        c = classification

        def money(minor: int | None) -> Decimal | None:
            return to_major_units(minor, c.currency) if minor is not None and c.currency else None

        facts = {
            "occurred_at": c.occurred_at,
            "amount": money(c.amount_minor),
            "currency": c.currency or None,
            "amount_refunded": money(c.amount_refunded_minor),
            "charge_amount": money(c.charge_amount_minor),
            "dispute_status": c.dispute_status,
            "stripe": StripeRefs.of(c),
        }
        for name, value in facts.items():
            object.__setattr__(self, name, value)  # frozen: set once, while building

    @property
    def order_id(self) -> str | None:
        """The Stripe id Everflow stores as order_id: the invoice, else the intent,
        else the charge."""
        s = self.stripe
        return s.invoice_id or s.payment_intent_id or s.charge_id or None

    @property
    def transaction_id(self) -> str | None:
        return self.target.transaction_id if isinstance(self.target, ClickTarget) else None

    def as_dict(self) -> dict[str, Any]:
        def text(amount: Decimal | None) -> str | None:
            return None if amount is None else format(amount, "f")

        return {
            "schema": POSTBACK_JOB_SCHEMA,
            "job_key": self.job_key,
            "action": self.action,
            "kind": self.kind,
            "account": self.account,
            "livemode": self.livemode,
            "occurred_at": self.occurred_at,
            "amount": text(self.amount),
            "currency": self.currency,
            "amount_refunded": text(self.amount_refunded),
            "charge_amount": text(self.charge_amount),
            "dispute_status": self.dispute_status,
            "coupon_code": self.coupon_code,
            "conversion_job_key": self.conversion_job_key,
            "stripe": self.stripe.as_dict(),
            "target": self.target.as_dict() if self.target else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, body: str | bytes) -> PostbackJob:
        """Read a PostbackQueue message (any ``postback-job/1.N``).

        Raises MalformedJobError (not JSON, no or another major schema, a field of the
        wrong type, a conversion without target) or UnsupportedJobError (an action this
        version does not post); both fail the record, which SQS retries and then moves
        to PostbackDLQ."""
        try:
            document = json.loads(body)
        except ValueError:
            raise MalformedJobError("the job is not JSON") from None
        if not isinstance(document, dict):
            raise MalformedJobError("the job is not a JSON object")
        schema = document.get("schema")
        version = _SCHEMA.fullmatch(schema) if isinstance(schema, str) else None
        if version is None:
            raise MalformedJobError(f"not a {_READS} job")
        if version.group(1) != _READ_MAJOR:
            raise MalformedJobError(f"{schema} jobs are not read here (only {_READS})")
        job = _Fields(document, "")
        job_key, account = job.required_text("job_key"), job.required_text("account")
        action = job.required_text("action")
        if action not in JOB_ACTIONS:
            raise UnsupportedJobError(f"{action} jobs are not posted")
        target = _target(document.get("target"))
        if action == "conversion" and target is None:
            raise MalformedJobError("a conversion job needs a click or email target")
        return cls(
            job_key=job_key,
            action=cast(JobAction, action),  # one of JOB_ACTIONS
            account=account,
            livemode=job.flag("livemode"),
            target=target,
            occurred_at=job.integer("occurred_at"),
            amount=job.decimal("amount"),
            amount_refunded=job.decimal("amount_refunded"),
            charge_amount=job.decimal("charge_amount"),
            stripe=_stripe_refs(document.get("stripe")),
            **job.texts_of(_JOB_TEXTS),
        )


class _Fields:
    """Typed reads of one JSON object's fields; a wrong type names the field."""

    def __init__(self, document: dict[str, Any], where: str) -> None:
        self._document = document
        self._where = where

    def _wrong(self, name: str, expected: str) -> MalformedJobError:
        return MalformedJobError(f"the job's {self._where}{name} is not {expected}")

    def text(self, name: str) -> str | None:
        value = self._document.get(name)
        if value is not None and not isinstance(value, str):
            raise self._wrong(name, "text")
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise MalformedJobError(f"the job has no {self._where}{name}")
        return value

    def identifier(self, name: str) -> str | None:
        """An Everflow id: text, or a number written by an older producer."""
        value = self._document.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return self.text(name)

    def flag(self, name: str) -> bool:
        value = self._document.get(name, False)
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false")
        return value

    def integer(self, name: str) -> int:
        value = self._document.get(name)
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(name, "a whole number")
        return value

    def decimal(self, name: str) -> Decimal | None:
        value = self._document.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(name, "an amount written as text")
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise self._wrong(name, "a decimal amount") from None
        if not amount.is_finite():
            raise self._wrong(name, "a decimal amount")
        return amount

    def texts_of(self, names: tuple[str, ...]) -> dict[str, Any]:
        """Several optional text fields at once (the common case, kept cheap)."""
        values = {name: self._document.get(name) for name in names}
        for name, value in values.items():
            if value is not None and not isinstance(value, str):
                raise self._wrong(name, "text")
        return values

    def texts(self, name: str) -> tuple[str, ...]:
        value = self._document.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(name, "a list of text")
        return tuple(value)


def _target(raw: Any) -> ClickTarget | EmailTarget | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MalformedJobError("the job's target is not an object")
    target = _Fields(raw, "target.")
    mode = raw.get("mode")
    if mode == "click":
        return ClickTarget(
            transaction_id=target.required_text("transaction_id"),
            offer_id=target.identifier("offer_id"),
            affiliate_id=target.identifier("affiliate_id"),
            matched_by=target.text("matched_by") or "",
        )
    if mode == "email":
        return EmailTarget(target.required_text("email"))
    raise MalformedJobError(f"the job's target mode {mode!r} is neither click nor email")


def _stripe_refs(raw: Any) -> StripeRefs:
    if raw is None:
        return StripeRefs()
    if not isinstance(raw, dict):
        raise MalformedJobError("the job's stripe is not an object")
    refs = _Fields(raw, "stripe.")
    return StripeRefs(
        price_ids=refs.texts("price_ids"),
        product_ids=refs.texts("product_ids"),
        **refs.texts_of(_STRIPE_TEXTS),
    )
