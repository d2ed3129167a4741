"""Messages on PostbackQueue: one job per action the poster must take toward Everflow.

Schema ``postback-job/1`` (JSON)::

    {
      "schema": "postback-job/1",
      "job_key": "conversion:default:in_1Q…",  # (account, Stripe object, action): exactly-once key
      "action": "conversion" | "refund" | "dispute_opened" | "dispute_closed",
      "kind": "initial" | "rebill" | null,      # conversions only
      "account": "default",
      "livemode": false,
      "occurred_at": 1767225592,                # when the money moved (unix seconds)
      "amount": "49.00", "currency": "USD",     # exact, major units; tax excluded by default
      "amount_refunded": "15.00" | null,        # charge.refunded: cumulative refunded on the charge
      "charge_amount": "49.00" | null,          # charge.refunded: what the charge captured
      "dispute_status": "won" | null,
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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from stripe_everflow.domain.classify import Classification
from stripe_everflow.domain.money import format_amount

POSTBACK_JOB_SCHEMA = "postback-job/1"
JobAction = Literal["conversion", "refund", "dispute_opened", "dispute_closed"]


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
class PostbackJob:
    job_key: str
    action: JobAction
    account: str
    livemode: bool
    classification: Classification
    kind: str | None = None
    target: ClickTarget | EmailTarget | None = None
    conversion_job_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        c = self.classification

        def money(minor: int | None) -> str | None:
            return format_amount(minor, c.currency) if minor is not None and c.currency else None

        return {
            "schema": POSTBACK_JOB_SCHEMA,
            "job_key": self.job_key,
            "action": self.action,
            "kind": self.kind,
            "account": self.account,
            "livemode": self.livemode,
            "occurred_at": c.occurred_at,
            "amount": money(c.amount_minor),
            "currency": c.currency or None,
            "amount_refunded": money(c.amount_refunded_minor),
            "charge_amount": money(c.charge_amount_minor),
            "dispute_status": c.dispute_status,
            "conversion_job_key": self.conversion_job_key,
            "stripe": {
                **c.ids.as_dict(),
                "price_ids": list(c.price_ids),
                "product_ids": list(c.product_ids),
                "promotion_code": c.promotion_code,
                "billing_reason": c.billing_reason,
            },
            "target": self.target.as_dict() if self.target else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False)
