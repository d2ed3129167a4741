"""Everflow's ``coupon_code`` for a payment: the code the customer typed.

Stripe names a payment's promotion code by id (``promo_…``; before 2025-03-31 on the
invoice's ``discount``, on a Checkout Session's ``discounts``) or, in basil invoices,
only by discount id (``di_…``, never expanded in a webhook). The code itself
(``FALL20``) is read with the account's restricted key: ``GET
/v1/promotion_codes/{id}``, or the invoice with ``discounts.promotion_code``
expanded. A promotion code's ``code`` and a discount's promotion code never change,
so each answer is kept for good: in this process, and in AttributionTable
(``coupon#<account>#<promo_…|di_…>`` / ``code``) for every other worker and for the
subscription's later invoices. A payment costs at most one Stripe call per code,
ever.

Without a restricted key the promotion code's id is sent (basil invoices then send
nothing: their discount ids mean nothing to a partner). A key that may not read
promotion codes or invoices (403), or an object Stripe no longer has, is answered
the same way and said in the match outcome (``coupon``); Stripe being unreachable
fails the record, which SQS retries — the conversion is never sent without a code
it could have had.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stripe_everflow.domain.classify import Classification
from stripe_everflow.domain.errors import StripeRefusedError
from stripe_everflow.domain.records import Key, coupon_key
from stripe_everflow.domain.secret import StripeAccount
from stripe_everflow.ports.attribution import AttributionStore, StripeReader

# Codes kept in one process (a code is a few dozen bytes).
MEMORY_ENTRIES = 4096

# How a job's coupon_code was found, as logged in the match outcome.
FROM_PAYLOAD = "code"  # the payload or Stripe's API gave the code itself
ID_WITHOUT_KEY = "id_no_api_key"  # no restricted key: the promotion code's id
ID_REFUSED = "id_refused"  # the key may not read it, or Stripe no longer has it
NONE_WITHOUT_KEY = "unknown_no_api_key"  # basil discounts, no key: nothing sent
NONE_REFUSED = "unknown_refused"


def coupon_keys(account: str, c: Classification) -> list[Key]:
    """The cache items a payment's code may be in (for the matcher's prefetch)."""
    if c.coupon_code:
        return []
    refs = [c.promotion_code] if c.promotion_code else list(c.discount_ids)
    return [coupon_key(account, ref) for ref in refs]


@dataclass
class CouponCodes:
    store: AttributionStore
    stripe: StripeReader
    _memory: OrderedDict[Key, str] = field(default_factory=OrderedDict)

    def of(
        self,
        account: StripeAccount,
        c: Classification,
        read: Callable[[Key], dict[str, Any] | None],
    ) -> tuple[str | None, str | None]:
        """(the coupon_code to send or None, how it was found or None when the payment
        used no promotion code). Raises StripeApiError while Stripe is unreachable."""
        if c.coupon_code:
            return c.coupon_code, FROM_PAYLOAD
        if not c.promotion_code and not c.discount_ids:
            return None, None
        if c.promotion_code:
            return self._promotion(account, c.promotion_code, read)
        return self._discounts(account, c, read)

    def _promotion(
        self, account: StripeAccount, promotion_id: str, read: Callable[[Key], Any]
    ) -> tuple[str | None, str | None]:
        key = coupon_key(account.name, promotion_id)
        known = self._known(key, read)
        if known:
            return known, FROM_PAYLOAD
        if not account.api_key:
            return promotion_id, ID_WITHOUT_KEY
        try:
            code = self.stripe.promotion_code(account.api_key, promotion_id)
        except StripeRefusedError:
            return promotion_id, ID_REFUSED
        self._keep(key, code)
        return code, FROM_PAYLOAD

    def _discounts(
        self, account: StripeAccount, c: Classification, read: Callable[[Key], Any]
    ) -> tuple[str | None, str | None]:
        keys = [coupon_key(account.name, d) for d in c.discount_ids]
        known = [self._known(key, read) for key in keys]
        if all(k is not None for k in known):
            # "" remembers a discount without a promotion code (a coupon applied as is)
            return next((k for k in known if k), None), FROM_PAYLOAD
        if not account.api_key or not c.ids.invoice_id:
            return None, NONE_WITHOUT_KEY
        try:
            codes = self.stripe.invoice_promotion_codes(account.api_key, c.ids.invoice_id)
        except StripeRefusedError:
            return None, NONE_REFUSED
        for discount_id, (promotion_id, code) in codes.items():
            self._keep(coupon_key(account.name, discount_id), code or "")
            if promotion_id and code:
                self._keep(coupon_key(account.name, promotion_id), code)
        found = [codes.get(d, (None, None))[1] for d in c.discount_ids]
        return next((code for code in found if code), None), FROM_PAYLOAD

    def _known(self, key: Key, read: Callable[[Key], Any]) -> str | None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        item = read(key)
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str):
            self._remember(key, code)
            return code
        return None

    def _keep(self, key: Key, code: str) -> None:
        self.store.put_coupon_code(key, code)
        self._remember(key, code)

    def _remember(self, key: Key, code: str) -> None:
        self._memory[key] = code
        self._memory.move_to_end(key)
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)
