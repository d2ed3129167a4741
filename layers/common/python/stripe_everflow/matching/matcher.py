"""Matching one Stripe event to its click and turning it into postback jobs.

The domain of MatchPaymentFunction. Every side effect is keyed by a business key,
so a retried or duplicated record converges on the same result:

* conversions claim ``conversion#<money key>`` (invoice id, or payment intent id for
  one-off money) for the event that first reported them — a second source of the
  same money (``checkout.session.completed`` beside ``invoice.paid``, a duplicate
  Event) is ignored as ``duplicate_source``. The claim keeps what its owner decided
  (kind, click target), so the owner's retry re-sends the same job (the poster's
  ledger makes the Everflow call once), and, once the job is sent, its key: the
  event delivered again is then ignored as ``already_sent``, with no write;
* initial vs rebill for invoices without a telling ``billing_reason`` claims
  ``first-conversion#<customer>``: the customer's first conversion is initial;
* customer pins are first-wins: written only if absent;
* the claim, the pin and the first conversion are written together (one
  TransactWriteItems); a pin or first conversion a concurrent payment took since the
  batch read them refuses the request, and the records in force decide again;
* parked payments are keyed by event id and replayed through PaymentEventsQueue
  when a click for their email (or customer) arrives — through ``POST /clicks``, a
  click id a later Stripe event carries, or a pin a later payment sets; the replay
  takes the claim its event holds;
* one-off money that went through Checkout is the Checkout Session's to count (it
  knows the tax and the email): without a restricted key to ask Stripe, a payment
  intent first waits ``CHECKOUT_SESSION_WAIT_SECONDS`` for its session (it comes
  back through ``held_events``), and a session takes over its intent's claim as long
  as the intent has not decided;
* a refund or dispute whose payment is not counted yet waits for it: stored with the
  job it will send and registered on every item its payment writes when it is
  counted; that write hands it back (atomically) and it is replayed. A payment that
  never comes: after ``ParkedPaymentTtlDays`` (or as long as its payment stays
  parked) the refund gives up and is sent as not ours.

Clicks come from the sources ``ClickSources`` names (``settings.click_sources``):
``api`` (``POST /clicks``), ``stripe`` (a click id Stripe carries) and ``everflow``
(with the Everflow API key in the secret: on a miss with a plain email, Everflow's
conversions of that email, ``everflow`` — a ``ClickLookup``; the answer is stored, a
"knows none" remembered a few minutes, and only then is the payment parked; an
Everflow failure raises, so the record is retried instead). Stored clicks of a source
that is off are disregarded; a pin stays a pin. The address asked about is the
event's (plain with the EventBridge intake or Everflow email attribution; the webhook
queues hashes otherwise) or, with a restricted key, the Stripe customer's of the same
hash; with neither, the scheduled sync (``clicks.everflow_source.EverflowSync``)
learns the click and releases the parked payment.

``AttributionPreview`` makes the same decisions read-only (``backfill --dry-run``):
``find_target`` is the one click decision, run with the matcher's reads, writes and
calls or with the preview's table reads alone.

A new payment whose click is known costs two DynamoDB writes (the claim with its pin
and first conversion; the sent job's key with the object links), and a batch's
lookups one BatchGetItem.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from stripe_everflow.config import MatchSettings
from stripe_everflow.domain.attribution import StoredClick, choose_click
from stripe_everflow.domain.classify import (
    CarriedClick,
    Classification,
    ClassifySettings,
    classify_event,
)
from stripe_everflow.domain.emails import REDACTED_PREFIX, redact_emails, try_email_hash
from stripe_everflow.domain.errors import SecretUnavailableError, UnknownAccountError
from stripe_everflow.domain.jobs import UNDO_ACTIONS, ClickTarget, EmailTarget, PostbackJob
from stripe_everflow.domain.messages import IncomingEvent, read_incoming_event
from stripe_everflow.domain.records import (
    ClaimAttempt,
    ConversionClaim,
    Key,
    Pin,
    Registration,
    WaitingUndo,
    conversion_key,
    email_key,
    everflow_miss_key,
    first_conversion_key,
    link_key,
    object_key,
    parked_customer_pk,
    parked_email_pk,
    parked_marker_key,
    pin_key,
    sweep_key,
    waiting_ids,
)
from stripe_everflow.domain.secret import BridgeSecret, CachedSecret, StripeAccount
from stripe_everflow.matching.coupons import CouponCodes, coupon_keys
from stripe_everflow.parking import replay_parked
from stripe_everflow.ports import MessageSender
from stripe_everflow.ports.attribution import (
    AttributionStore,
    ClickLookup,
    CustomerFacts,
    StripeReader,
)

DAY = 86_400
# How long a one-off payment intent, seen without a restricted key, waits for its
# Checkout Session before it counts the money itself. Stripe sends the two together;
# five minutes also covers a session whose first delivery failed and was retried.
CHECKOUT_SESSION_WAIT_SECONDS = 300
# Waiting refunds and disputes are looked over for those whose wait has ended at most
# this often (per account, by one worker); they also carry an expiry, this long after
# they give up, for DynamoDB to drop what no sweep reached.
SWEEP_INTERVAL_SECONDS = 3_600
WAITING_EXPIRY_MARGIN = 30 * DAY
INTENT_EVENT = "payment_intent.succeeded"
# StoredClick.source of the clicks each ClickSources entry brings; any other source
# is a click id Stripe carried.
NOT_STRIPE_SOURCES = frozenset({"api", "everflow"})


def source_of(click: StoredClick) -> str:
    """The ClickSources entry a stored click came through."""
    return click.source if click.source in NOT_STRIPE_SOURCES else "stripe"


@dataclass(frozen=True)
class MatchOutcome:
    """What became of one event; logged and counted."""

    status: str  # job | parked | held | waiting | ignored | linked | click_registered
    event_id: str
    event_type: str
    reason: str | None = None
    job_key: str | None = None
    kind: str | None = None
    matched_by: str | None = None
    replayed: int = 0
    # how the job's coupon_code was found (matching.coupons); None: no promotion code
    coupon: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class _Found:
    """Whom a payment goes to, and the click to pin its customer to (if it has no pin)."""

    target: ClickTarget | EmailTarget
    pin_to: StoredClick | None = None
    # parked payments this match makes attributable (a click it registered), to release
    # once its job is sent
    release: tuple[str, ...] = ()


def _click_target(click: StoredClick, matched_by: str) -> ClickTarget:
    return ClickTarget(click.transaction_id, click.offer_id, click.affiliate_id, matched_by)


def _item(key: Key, **attributes: Any) -> dict[str, Any]:
    return {"pk": key[0], "sk": key[1], **attributes}


def _decision(target: ClickTarget | EmailTarget, kind: str) -> dict[str, Any]:
    """What a conversion's claim keeps of its job (no email: an email target is found
    again, the same way, by a retry)."""
    if isinstance(target, ClickTarget):
        return {"kind": kind, "target": target.as_dict()}
    return {"kind": kind}


@dataclass
class Matcher:
    settings: MatchSettings
    secret: CachedSecret
    store: AttributionStore
    postbacks: MessageSender
    payment_events: MessageSender
    stripe: StripeReader
    # PaymentEventsQueue, with messages kept back CHECKOUT_SESSION_WAIT_SECONDS
    held_events: MessageSender
    clock: Callable[[], float] = time.time
    # Everflow's conversions of an email, asked on a miss (None: never asked)
    everflow: ClickLookup | None = None
    _prefetched: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _prefetched_keys: set[Key] = field(default_factory=set)
    _accounts: set[str] = field(default_factory=set)
    coupons: CouponCodes = field(init=False)

    def __post_init__(self) -> None:
        self.coupons = CouponCodes(self.store, self.stripe)

    # -------------------------------------------------------------- set-up

    @property
    def classify_settings(self) -> ClassifySettings:
        return ClassifySettings(
            click_metadata_key=self.settings.click_metadata_key,
            amounts_include_tax=self.settings.amounts_include_tax,
            subscription_update_invoices=self.settings.subscription_update_invoices,  # type: ignore[arg-type]
        )

    def _hash_key(self, secret: BridgeSecret) -> str:
        if not secret.email_hash_key:
            raise SecretUnavailableError("email_hash_key is missing from the bridge secret")
        return secret.email_hash_key

    def read(self, body: str) -> IncomingEvent:
        return read_incoming_event(body, eventbridge_account=self.settings.eventbridge_account)

    def prefetch(self, bodies: Sequence[str]) -> None:
        """Read every conversion claim, pin, first conversion, email's clicks and
        payment link a batch may need, and when its accounts' waiting refunds are
        next looked over, in one BatchGetItem (per 100 keys). Best effort:
        unreadable records are skipped here and fail on their own in ``process``."""
        # Nothing from an earlier batch may survive, even if this prefetch fails.
        self._prefetched, self._prefetched_keys, self._accounts = {}, set(), set()
        secret = self.secret.get()
        hash_key = self._hash_key(secret)
        keys: list[Key] = []
        for body in bodies:
            try:
                incoming = self.read(body)
            except ValueError:
                continue
            if incoming.account not in self._accounts:
                self._accounts.add(incoming.account)
                keys.append(sweep_key(incoming.account))
            c = classify_event(incoming.event, self.classify_settings)
            if c.action != "payment":
                continue
            if c.money_key:
                keys.append(conversion_key(incoming.account, c.money_key))
            if c.ids.customer_id:
                keys.append(pin_key(incoming.account, c.ids.customer_id))
                keys.append(first_conversion_key(incoming.account, c.ids.customer_id))
            hashed = try_email_hash(c.email, hash_key)
            if hashed:
                keys.append(email_key(hashed))
                if self._asks_everflow(secret):
                    keys.append(everflow_miss_key(hashed))
            if c.needs_invoice_check and c.ids.payment_intent_id:
                keys.append(link_key(incoming.account, c.ids.payment_intent_id))
            keys.extend(coupon_keys(incoming.account, c))
        self._prefetched = self.store.get_many(keys) if keys else {}
        self._prefetched_keys = set(keys)

    def _lookup(self, key: Key) -> dict[str, Any] | None:
        if key in self._prefetched_keys:
            return self._prefetched.get(key)
        return self.store.get(key)

    def _peek(self, key: Key) -> dict[str, Any] | None:
        """The item as this batch read or wrote it, without reading it if it did not."""
        return self._prefetched.get(key) if key in self._prefetched_keys else None

    def _forget(self, *keys: Key) -> None:
        """A record of this batch wrote these: later records read them fresh."""
        self._prefetched_keys.difference_update(keys)

    def _remember(self, key: Key, item: dict[str, Any]) -> None:
        """A record of this batch wrote this item: later records see it as written."""
        self._prefetched[key] = item
        self._prefetched_keys.add(key)

    # -------------------------------------------------------------- one record

    def process(self, incoming: IncomingEvent) -> MatchOutcome:
        """Match one event. Raises (and so fails the record for SQS to retry) on AWS,
        Stripe API or secret failures, and UnknownAccountError for an account no
        longer configured (it ends in the DLQ, nothing is dropped)."""
        secret = self.secret.get()
        account = secret.account(incoming.account)
        if account is None:
            raise UnknownAccountError(f"no Stripe account named {incoming.account!r} is configured")
        event = incoming.event

        def outcome(status: str, **facts: Any) -> MatchOutcome:
            return MatchOutcome(status, incoming.event_id, str(event.get("type")), **facts)

        if event.get("livemode") is not account.livemode:
            return outcome("ignored", reason="livemode_mismatch")
        c = classify_event(event, self.classify_settings)
        if c.action == "ignored":
            return outcome("ignored", reason=c.reason)
        if c.action == "link":
            assert c.ids.payment_intent_id and c.ids.invoice_id
            key = link_key(account.name, c.ids.payment_intent_id)
            waiting = self.store.put_link(account.name, c.ids.payment_intent_id, c.ids.invoice_id)
            # later records of this batch read the link as written, not the miss prefetched
            self._remember(key, _item(key, invoice_id=c.ids.invoice_id))
            return outcome("linked", replayed=self._release_waiting(account, key, waiting))
        hash_key = self._hash_key(secret)
        if c.action == "click_carrier":
            replayed = self._register_carried(account, c, hash_key)
            return outcome("click_registered", reason=c.reason, replayed=replayed)
        if c.action in UNDO_ACTIONS:
            return self._undo(account, incoming, c, hash_key, outcome)
        return self._process_payment(account, incoming, c, hash_key, outcome)

    def _process_payment(
        self,
        account: StripeAccount,
        incoming: IncomingEvent,
        c: Classification,
        hash_key: str,
        outcome: Callable[..., MatchOutcome],
    ) -> MatchOutcome:
        assert c.money_key is not None
        if c.needs_invoice_check and c.ids.payment_intent_id:
            invoice = self._invoice_of(account, c.ids.payment_intent_id)
            if invoice == "unknown":
                return outcome("ignored", reason="invoice_link_unknown")
            if invoice:
                self._register_carried(account, c, hash_key)
                return outcome("ignored", reason="counted_by_invoice")
        # The session knows the tax and carries the click: let it count the money.
        if (
            c.needs_checkout_check
            and c.ids.payment_intent_id
            and account.api_key
            and self.stripe.checkout_session_of_payment_intent(
                account.api_key, c.ids.payment_intent_id
            )
        ):
            self._register_carried(account, c, hash_key)
            return outcome("ignored", reason="counted_by_checkout")
        key = conversion_key(account.name, c.money_key)
        held = self._peek(key)
        owner = held.get("owner") if held else None
        if owner and owner != incoming.event_id and not self._takes_over(c, held):
            # Another event reported this money first (claims change hands only from an
            # undecided intent to its Checkout Session).
            assert held is not None
            return self._lost(account, incoming, c, hash_key, held, outcome)
        if held and owner == incoming.event_id and held.get("job_key"):
            # Delivered again: what waited on the claim and was not replayed yet goes now.
            replayed = self._release_waiting(account, key, waiting_ids(held))
            job_key = str(held["job_key"])
            return outcome("ignored", reason="already_sent", job_key=job_key, replayed=replayed)
        if owner is None and self._waits_for_checkout(account, incoming, c):
            return self._hold(incoming, outcome)
        now = int(self.clock())
        target: ClickTarget | EmailTarget
        release: tuple[str, ...] = ()
        decided = self._decided(held) if owner == incoming.event_id else None
        if held and decided:
            # An earlier pass decided and may have sent this job: send the same one.
            target, kind = decided
            claimed_at = int(held.get("claimed_at") or now)
            claim = ConversionClaim(
                key, incoming.event_id, claimed_at, _decision(target, kind), source=c.ids.event_type
            )
        else:
            found = self._find_target(account, c, hash_key)
            if found is None:
                return self._park(account, incoming, c, hash_key, outcome, now)
            taken = self._claim(account, incoming, c, found, now)
            if isinstance(taken, ClaimAttempt):
                assert taken.claim is not None
                return self._lost(account, incoming, c, hash_key, taken.claim, outcome)
            claim, target, kind, release = taken
        coupon_code, coupon = self.coupons.of(account, c, self._lookup)
        job = PostbackJob(
            job_key=f"conversion:{account.name}:{c.money_key}",
            action="conversion",
            account=account.name,
            livemode=account.livemode,
            classification=c,
            kind=kind,
            target=target,
            coupon_code=coupon_code,
        )
        self.postbacks.send(job.to_json(), {"job_key": job.job_key, "action": "conversion"})
        sent = replace(claim, job_key=job.job_key)
        waiting = self.store.record_conversion(
            sent,
            [
                object_key(account.name, i)
                for i in (c.ids.charge_id, c.ids.payment_intent_id)
                if i and i != c.money_key
            ],
        )
        self._remember(key, sent.as_item())
        # Refunds and disputes that waited for this money follow its job; payments
        # parked for the click this one registered (or the customer it pinned) go back.
        replayed = self._release_waiting(account, key, waiting)
        replayed += self.replay_parked(release) if release else 0
        matched_by = target.matched_by if isinstance(target, ClickTarget) else "everflow_email"
        return outcome(
            "job",
            job_key=job.job_key,
            kind=kind,
            matched_by=matched_by,
            replayed=replayed,
            coupon=coupon,
        )

    @staticmethod
    def _takes_over(c: Classification, held: Mapping[str, Any] | None) -> bool:
        """A Checkout Session takes the money from its payment intent while the intent
        has decided nothing (it waited for a click, parked): the session knows the tax
        and, often, the email the intent lacks."""
        return bool(
            held
            and c.ids.checkout_session_id
            and held.get("source") == INTENT_EVENT
            and not held.get("kind")
            and not held.get("job_key")
        )

    def _takes_over_from(self, c: Classification) -> str | None:
        return INTENT_EVENT if c.ids.checkout_session_id else None

    @staticmethod
    def _waits_for_checkout(
        account: StripeAccount, incoming: IncomingEvent, c: Classification
    ) -> bool:
        """A one-off payment intent may be a Checkout Session's; without a restricted
        key to ask Stripe, it waits once for the session before it counts itself."""
        return c.needs_checkout_check and not account.api_key and incoming.replayed_at is None

    def _hold(self, incoming: IncomingEvent, outcome: Callable[..., MatchOutcome]) -> MatchOutcome:
        self.held_events.send(
            incoming.replay(int(self.clock())),
            {
                "event_id": incoming.event_id,
                "event_type": str(incoming.event.get("type")),
                "account": incoming.account,
            },
        )
        return outcome("held", reason="waiting_for_checkout_session")

    def _lost(
        self,
        account: StripeAccount,
        incoming: IncomingEvent,
        c: Classification,
        hash_key: str,
        claim: Mapping[str, Any],
        outcome: Callable[..., MatchOutcome],
    ) -> MatchOutcome:
        """The money's claim is not this event's to take: its job went out already
        (this event, delivered again), or another event reported the money first."""
        assert c.money_key is not None
        self._remember(conversion_key(account.name, c.money_key), dict(claim))
        if claim.get("owner") == incoming.event_id and claim.get("job_key"):
            return outcome("ignored", reason="already_sent", job_key=str(claim["job_key"]))
        # Any click id this event carries still counts (a Checkout Session's
        # client_reference_id, say).
        self._register_carried(account, c, hash_key)
        return outcome("ignored", reason="duplicate_source")

    def _claim(
        self,
        account: StripeAccount,
        incoming: IncomingEvent,
        c: Classification,
        found: _Found,
        now: int,
    ) -> tuple[ConversionClaim, ClickTarget | EmailTarget, str, tuple[str, ...]] | ClaimAttempt:
        """Claim the money for this event with what it decided, pinning the customer
        and claiming its first conversion in the same request; returns the claim, the
        target, the kind and the parked payments to release once its job is sent, or
        the refused attempt if the money is not ours.

        The pin and the first conversion are written only when this batch read none:
        one taken meanwhile by a concurrent payment refuses the whole request, and the
        records in force decide again (its pin wins; its money was the first). A pin
        is written only if no payment is parked for the customer, or with the
        knowledge that some may be: they are released with this payment."""
        assert c.money_key is not None
        key = conversion_key(account.name, c.money_key)
        customer = c.ids.customer_id
        target = found.target
        release = list(found.release)
        pin: tuple[Key, Pin] | None = None
        marker: Key | None = None
        first: tuple[Key, str] | None = None
        first_owner: str | None = None
        if customer:
            if found.pin_to is not None:
                pin = (pin_key(account.name, customer), Pin.of(found.pin_to, now))
                marker = parked_marker_key(account.name, customer)
            first_key = first_conversion_key(account.name, customer)
            first_item = self._lookup(first_key)
            if first_item:
                first_owner = str(first_item["owner"])
            else:
                first = (first_key, c.money_key)
        for _ in range(4):  # each refusal settles the pin, the first conversion or parking
            kind = self._kind(c, first_owner)
            claim = ConversionClaim(
                key, incoming.event_id, now, _decision(target, kind), source=c.ids.event_type
            )
            attempt = self.store.claim_conversion(
                claim,
                pin=pin,
                first_conversion=first,
                parked_marker=marker,
                takes_over=self._takes_over_from(c),
            )
            if attempt.won:
                self._remember(key, claim.as_item())
                if pin is not None:
                    self._remember(pin[0], _item(pin[0], **pin[1].as_item()))
                if first is not None:
                    self._remember(first[0], _item(first[0], owner=first[1]))
                return claim, target, kind, tuple(dict.fromkeys(release))
            if attempt.claim is not None:
                return attempt
            if attempt.parked and customer:
                # Payments wait for this customer: pinning it releases them.
                release.append(parked_customer_pk(account.name, customer))
                marker = None
            if attempt.pin is not None and isinstance(target, ClickTarget):
                # A concurrent payment pinned the customer first: its pin wins.
                same = attempt.pin.transaction_id == target.transaction_id
                target = self._pin_target(
                    attempt.pin, target.matched_by if same else "customer_pin"
                )
                pin, marker = None, None
            if attempt.first_conversion is not None:
                first_owner, first = attempt.first_conversion, None
        raise RuntimeError("the conversion claim was refused for no reason it names")

    @staticmethod
    def _decided(
        claim: Mapping[str, Any] | None,
    ) -> tuple[ClickTarget, str] | None:
        """The click target and kind an earlier pass of this event wrote on its claim."""
        if not claim or not isinstance(claim.get("target"), Mapping) or not claim.get("kind"):
            return None
        t = claim["target"]
        target = ClickTarget(
            str(t["transaction_id"]),
            str(t["offer_id"]) if t.get("offer_id") is not None else None,
            str(t["affiliate_id"]) if t.get("affiliate_id") is not None else None,
            str(t["matched_by"]),
        )
        return target, str(claim["kind"])

    # -------------------------------------------------------------- attribution

    def _find_target(
        self, account: StripeAccount, c: Classification, hash_key: str
    ) -> _Found | None:
        return find_target(
            self.settings, account, c, hash_key, int(self.clock()), _LiveAttribution(self)
        )

    def _asks_everflow(self, secret: BridgeSecret) -> bool:
        return bool(
            self.everflow is not None
            and secret.everflow_api_key
            and "everflow" in self.settings.click_sources
        )

    def _choose(self, clicks_item: dict[str, Any] | None, paid_at: int) -> StoredClick | None:
        return _choose(self.settings, self.store.clicks_of(clicks_item), paid_at)

    @staticmethod
    def _pin_target(pin: Pin, matched_by: str) -> ClickTarget:
        return _pin_target(pin, matched_by)

    @staticmethod
    def _kind(c: Classification, first_conversion: str | None) -> str:
        """Initial or rebill; ``first_conversion`` is the money key holding the
        customer's first conversion (None: this payment is claiming it)."""
        if not c.ids.customer_id:
            return "rebill" if c.kind_hint == "rebill" else "initial"
        if c.kind_hint != "auto":
            return c.kind_hint
        return "initial" if first_conversion in (None, c.money_key) else "rebill"

    def _invoice_of(self, account: StripeAccount, payment_intent_id: str) -> str | None:
        link = self._lookup(link_key(account.name, payment_intent_id))
        if link and link.get("invoice_id"):  # (a refund waiting on a link has none)
            return str(link["invoice_id"])
        if not account.api_key:
            return "unknown"
        return self.stripe.invoice_of_payment_intent(account.api_key, payment_intent_id)

    # -------------------------------------------------------------- parking

    def _park(
        self,
        account: StripeAccount,
        incoming: IncomingEvent,
        c: Classification,
        hash_key: str,
        outcome: Callable[..., MatchOutcome],
        now: int,
    ) -> MatchOutcome:
        assert c.money_key is not None
        email_hash = try_email_hash(c.email, hash_key)
        # Parked under the email and the customer: a click for either replays it
        # (a second copy replayed later finds its job sent: the claim makes it a no-op).
        pks = [parked_email_pk(email_hash)] if email_hash else []
        if c.ids.customer_id:
            pks.append(parked_customer_pk(account.name, c.ids.customer_id))
        if not pks:
            # Nothing could ever match it here: leave the money unclaimed for another
            # source of the same payment (the Checkout Session, with its email).
            return outcome("ignored", reason="no_email_or_customer")
        # The money stays this event's while it waits: a second source of it only
        # registers the click it carries, which replays this payment (a Checkout
        # Session takes its intent's money over).
        key = conversion_key(account.name, c.money_key)
        claim = ConversionClaim(key, incoming.event_id, now, source=c.ids.event_type)
        attempt = self.store.claim_conversion(claim, takes_over=self._takes_over_from(c))
        if not attempt.won:
            assert attempt.claim is not None
            return self._lost(account, incoming, c, hash_key, attempt.claim, outcome)
        self._remember(key, claim.as_item())
        expires_at = now + self.settings.parked_ttl_days * DAY
        if attempt.waiting:
            # Refunds of this payment wait as long as it does.
            self.store.extend_waiting(
                account.name, attempt.waiting, expires_at, expires_at + WAITING_EXPIRY_MARGIN
            )
        # Parked messages are stored with their emails replaced by keyed hashes.
        redacted = self._redacted(incoming, hash_key)
        customer = c.ids.customer_id
        markers = [parked_marker_key(account.name, customer)] if customer else []
        self.store.park(pks, incoming.event_id, redacted.replay(now), expires_at, markers)
        # A click registered, or the customer pinned, between our read and the park
        # would not find this payment: look once more, consistently, and replay at once
        # if one now attributes it (a click outside the window does not: no replay
        # loop).
        keys = ([email_key(email_hash)] if email_hash else []) + (
            [pin_key(account.name, customer)] if customer else []
        )
        now_known = self.store.get_many(keys, consistent=True)
        if (customer and now_known.get(pin_key(account.name, customer))) or (
            email_hash and self._choose(now_known.get(email_key(email_hash)), c.occurred_at or now)
        ):
            self.replay_parked(pks)
        return outcome("parked")

    @staticmethod
    def _redacted(incoming: IncomingEvent, hash_key: str) -> IncomingEvent:
        return IncomingEvent(
            account=incoming.account,
            source=incoming.source,
            event=redact_emails(incoming.event, hash_key),
            received_at=incoming.received_at,
        )

    def replay_parked(self, pks: Iterable[str]) -> int:
        return replay_parked(self.store, self.payment_events, pks, int(self.clock()))

    def _register_carried(self, account: StripeAccount, c: Classification, hash_key: str) -> int:
        """Store the click ids an event carries, pin its customer, replay what waited."""
        if not c.carried_clicks or "stripe" not in self.settings.click_sources:
            return 0
        now = int(self.clock())
        carried = c.carried_clicks[0]
        click = StoredClick(carried.transaction_id, c.occurred_at or now, source=carried.source)
        pks = []
        email_hash = try_email_hash(c.email, hash_key)
        if email_hash:
            self.store.put_click(email_hash, click)
            self._forget(email_key(email_hash))
            pks.append(parked_email_pk(email_hash))
        if c.ids.customer_id:
            pin = self.store.pin_customer(account.name, c.ids.customer_id, click, now)
            key = pin_key(account.name, c.ids.customer_id)
            self._remember(key, _item(key, **pin.as_item()))  # the pin in force
            pks.append(parked_customer_pk(account.name, c.ids.customer_id))
        return self.replay_parked(pks)

    # -------------------------------------------------------------- refunds, disputes

    @staticmethod
    def _undo_key(account: StripeAccount, c: Classification) -> str:
        ids = c.ids
        if c.action == "refund":
            # One job per state of the charge: its cumulative refunded amount, and when
            # (a refund that fails takes its amount back, and the amount comes again).
            amount = c.amount_refunded_minor
            return f"refund:{account.name}:{ids.charge_id}:{amount}@{c.occurred_at}"
        if c.action == "dispute_opened":
            return f"dispute_opened:{account.name}:{ids.dispute_id}"
        if c.action == "dispute_closed":
            return f"dispute_closed:{account.name}:{ids.dispute_id}:{c.dispute_status}"
        # any other undo (a refund that failed): one job per object
        return f"{c.action}:{account.name}:{ids.refund_id or ids.dispute_id or ids.object_id}"

    def _undo_job(
        self, account: StripeAccount, c: Classification, conversion_job_key: str | None
    ) -> PostbackJob:
        return PostbackJob(
            job_key=self._undo_key(account, c),
            action=c.action,  # type: ignore[arg-type]
            account=account.name,
            livemode=account.livemode,
            classification=c,
            conversion_job_key=conversion_job_key,
        )

    def _undo(
        self,
        account: StripeAccount,
        incoming: IncomingEvent,
        c: Classification,
        hash_key: str,
        outcome: Callable[..., MatchOutcome],
    ) -> MatchOutcome:
        """Forward a refund or dispute with the conversion it undoes, or let it wait
        for its payment: Stripe does not order events, and a payment may still come (or
        be parked, waiting for its click). It is sent as not ours only once its wait
        has ended (``give_up_at``, found by ``sweep_waiting``)."""
        now = int(self.clock())
        replay = incoming.replayed_at is not None
        waiting = self.store.waiting_undo(account.name, incoming.event_id) if replay else None
        for attempt in range(3):  # a refusal means its payment was just counted: look again
            conversion, registrations = self._conversion_of(account, c)
            if conversion or not registrations:
                return self._send_undo(account, c, conversion, waiting, outcome)
            if attempt == 0 and not replay:
                # a copy of this event may wait already (Stripe sent it again)
                waiting = self.store.waiting_undo(account.name, incoming.event_id)
            if replay and waiting is None:
                # replayed once more after it went out (or gave up) through another copy
                return outcome(
                    "ignored", reason="no_longer_waiting", job_key=self._undo_key(account, c)
                )
            if waiting is not None and waiting.give_up_at <= now:
                return self._send_undo(account, c, None, waiting, outcome)
            ttl = self.settings.parked_ttl_days * DAY
            give_up_at = waiting.give_up_at if waiting else (incoming.received_at or now) + ttl
            registered = (waiting.registrations if waiting else ()) + tuple(
                r.key for r in registrations
            )
            entry = WaitingUndo(
                account=account.name,
                event_id=incoming.event_id,
                message=self._redacted(incoming, hash_key).to_json(),
                job=self._undo_job(account, c, None).to_json(),
                waiting_since=waiting.waiting_since if waiting else now,
                give_up_at=give_up_at,
                registrations=tuple(dict.fromkeys(registered)),
            )
            expires_at = max(give_up_at, now + ttl) + WAITING_EXPIRY_MARGIN
            if self.store.wait_for_payment(entry, registrations, expires_at).won:
                self.store.note_waiting(account.name, give_up_at, now)
                return outcome(
                    "waiting",
                    reason="payment_not_counted_yet",
                    job_key=self._undo_key(account, c),
                )
        raise RuntimeError("the refund's payment kept changing under 3 attempts")

    def _send_undo(
        self,
        account: StripeAccount,
        c: Classification,
        conversion_job_key: str | None,
        waiting: WaitingUndo | None,
        outcome: Callable[..., MatchOutcome],
    ) -> MatchOutcome:
        job = self._undo_job(account, c, conversion_job_key)
        self.postbacks.send(job.to_json(), {"job_key": job.job_key, "action": c.action})
        if waiting is not None:
            self.store.forget_waiting(waiting)
        reason = None if conversion_job_key else "conversion_not_ours"
        return outcome("job", job_key=job.job_key, reason=reason)

    def _conversion_of(
        self, account: StripeAccount, c: Classification
    ) -> tuple[str | None, list[Registration]]:
        """The job key of the conversion a refund or dispute undoes, once its money is
        counted (its job sent, or decided and about to be: the poster then waits for
        it); otherwise where to wait for the payment: every item it writes when it is
        counted under a key this refund can name (none: the refund names nothing a
        payment could be counted under — not ours).

        The money may be keyed by the invoice (which basil refunds and disputes, and
        every dispute, do not name: found through the payment intent's link, Stripe's
        InvoicePayment list, or the object links a counted invoice writes for its
        intent and charge), the payment intent, or the charge. Read consistently:
        what this batch prefetched may be older than a link or a job just written.
        """
        ids = c.ids
        intent, charge = ids.payment_intent_id, ids.charge_id
        invoice = ids.invoice_id
        registrations: list[Registration] = []
        if not invoice and intent:
            key = link_key(account.name, intent)
            link = self.store.get(key, consistent=True)
            invoice = str(link["invoice_id"]) if link and link.get("invoice_id") else None
            if invoice is None and account.api_key:
                invoice = self.stripe.invoice_of_payment_intent(account.api_key, intent)
            if invoice is None:
                registrations.append(Registration(key, "link"))
        if invoice:
            money, objects = invoice, []
        elif intent or charge:
            money = str(intent or charge)
            objects = [i for i in (intent, charge) if i]
        else:
            return None, []
        claim_at = conversion_key(account.name, money)
        object_keys = [object_key(account.name, i) for i in objects]
        found = self.store.get_many([claim_at, *object_keys], consistent=True)
        claim = found.get(claim_at)
        if claim and (claim.get("job_key") or claim.get("kind")):
            return str(claim.get("job_key") or f"conversion:{account.name}:{money}"), []
        for key in object_keys:
            if (found.get(key) or {}).get("job_key"):
                return str(found[key]["job_key"]), []
        placeholder = not (claim and claim.get("owner"))
        registrations.append(Registration(claim_at, "claim", placeholder=placeholder))
        if object_keys:
            # a counted invoice (before basil) links its intent, or else its charge
            registrations.append(Registration(object_keys[0], "object"))
        return None, registrations

    def _release_waiting(self, account: StripeAccount, key: Key, event_ids: Iterable[str]) -> int:
        """Replay the refunds and disputes that waited on ``key`` (now written), then
        take them off it; returns how many went back."""
        ids = list(event_ids)
        if not ids:
            return 0
        now, replayed = int(self.clock()), 0
        for event_id in ids:
            waiting = self.store.waiting_undo(account.name, event_id)
            if waiting is None:  # it went out already, through another registration
                continue
            incoming = read_incoming_event(waiting.message, eventbridge_account=account.name)
            self.payment_events.send(
                incoming.replay(now),
                {
                    "event_id": incoming.event_id,
                    "event_type": str(incoming.event.get("type")),
                    "account": incoming.account,
                },
            )
            replayed += 1
        self.store.settle_waiting(key, ids)
        return replayed

    def sweep_waiting(self) -> int:
        """Replay the refunds and disputes of this batch's accounts whose wait has
        ended (they are then sent as not ours, unless their payment came), at most
        every SWEEP_INTERVAL_SECONDS per account, by one worker. Returns how many."""
        now, replayed = int(self.clock()), 0
        for account in sorted(self._accounts):
            seen = self._peek(sweep_key(account))
            if not seen or int(seen.get("next_sweep", 0)) > now:
                continue
            taken = self.store.take_sweep(account, seen, now + SWEEP_INTERVAL_SECONDS)
            if taken is None:
                continue  # another worker is at it
            waiting = self.store.waiting_of(account)
            if not waiting:
                self.store.end_sweep(account, taken)
            for entry in waiting:
                if entry.give_up_at > now:
                    continue
                incoming = read_incoming_event(entry.message, eventbridge_account=account)
                self.payment_events.send(
                    incoming.replay(now),
                    {
                        "event_id": incoming.event_id,
                        "event_type": str(incoming.event.get("type")),
                        "account": account,
                    },
                )
                replayed += 1
        return replayed


# ------------------------------------------------------------------ attribution, shared


def _usable(settings: MatchSettings, clicks: list[StoredClick]) -> list[StoredClick]:
    """The clicks of the sources in use."""
    return [click for click in clicks if source_of(click) in settings.click_sources]


def _choose(settings: MatchSettings, clicks: list[StoredClick], paid_at: int) -> StoredClick | None:
    return choose_click(
        _usable(settings, clicks),
        paid_at=paid_at,
        policy=settings.attribution_policy,  # type: ignore[arg-type]
        window_days=settings.attribution_window_days,
    )


def _pin_target(pin: Pin, matched_by: str) -> ClickTarget:
    return ClickTarget(pin.transaction_id, pin.offer_id, pin.affiliate_id, matched_by)


class _Attribution(Protocol):
    """What finding a payment's click reads and does beside the decision: the live
    matcher's reads, writes and calls (``_LiveAttribution``), or a preview's reads of
    AttributionTable and notes of the calls it did not make (``_PreviewAttribution``)."""

    def item(self, key: Key) -> dict[str, Any] | None: ...
    def clicks_of(self, item: dict[str, Any] | None) -> list[StoredClick]: ...
    def customer(self, api_key: str, customer_id: str) -> CustomerFacts | None:
        """Stripe's customer; None: not asked."""
        ...

    def keep_carried(self, email_hash: str, click: StoredClick) -> tuple[str, ...]:
        """Store a click id Stripe carried for the email; the parked payments to release."""
        ...

    def asks_everflow(self) -> bool: ...
    def everflow(
        self, address: str, email_hash: str, known: list[StoredClick], paid_at: int
    ) -> StoredClick | None:
        """Everflow's click for the address (None: it knows none, or was not asked)."""
        ...


def find_target(
    settings: MatchSettings,
    account: StripeAccount,
    c: Classification,
    hash_key: str,
    now: int,
    io: _Attribution,
) -> _Found | None:
    """Whom a payment goes to, first hit wins (``domain.attribution``): the customer's
    pin, a click id Stripe carries (in the event or the customer's metadata), the
    email's clicks within the window, Everflow's click for the email, Everflow's email
    attribution; None: no click known (the payment parks). The one decision both the
    matcher and ``AttributionPreview`` make."""
    customer = c.ids.customer_id
    if customer:
        pinned = io.item(pin_key(account.name, customer))
        if pinned:
            return _Found(_pin_target(Pin.from_item(pinned), "customer_pin"))
    email = c.email
    carried = list(c.carried_clicks) if "stripe" in settings.click_sources else []
    # the address itself, when the event holds only its hash (for Everflow's lookup)
    address: str | None = email if email and not email.startswith(REDACTED_PREFIX) else None
    if customer and account.api_key and (not email or not carried):
        facts = io.customer(account.api_key, customer)
        if facts is not None:
            if (
                address is None
                and facts.email
                and (
                    not email
                    or try_email_hash(facts.email, hash_key) == try_email_hash(email, hash_key)
                )
            ):
                address = facts.email
            email = email or facts.email
            click_id = facts.metadata.get(settings.click_metadata_key, "").strip()
            if click_id and "stripe" in settings.click_sources:
                carried.append(CarriedClick(click_id, "customer_metadata"))
    email_hash = try_email_hash(email, hash_key)
    paid_at = c.occurred_at or now
    if carried:
        carried_click = StoredClick(carried[0].transaction_id, paid_at, source=carried[0].source)
        release = io.keep_carried(email_hash, carried_click) if email_hash else ()
        return _Found(
            _click_target(carried_click, "stripe_click_id"), pin_to=carried_click, release=release
        )
    if not email_hash:
        return None
    clicks_item = io.item(email_key(email_hash))
    clicks = io.clicks_of(clicks_item)
    click = _choose(settings, clicks, paid_at)
    if click:
        matched = (
            "email_first_touch"
            if settings.attribution_policy == "first-touch"
            else "email_last_touch"
        )
        return _Found(_click_target(click, matched), pin_to=click)
    # Everflow is asked only with the address itself, and not while it said (a few
    # minutes ago) that it knows none.
    asked = address.strip().lower() if address and "@" in address else None
    if (
        asked is not None
        and not asked.startswith(REDACTED_PREFIX)
        and io.asks_everflow()
        and not io.item(everflow_miss_key(email_hash))
    ):
        learned = io.everflow(asked, email_hash, _usable(settings, clicks), paid_at)
        if learned:
            # the email's new clicks may attribute payments parked for it too
            release = (parked_email_pk(email_hash),)
            return _Found(
                _click_target(learned, "everflow_lookup"), pin_to=learned, release=release
            )
    if settings.email_attribution and email and not email.startswith(REDACTED_PREFIX):
        return _Found(EmailTarget(email.strip().lower()))
    return None


@dataclass
class _LiveAttribution:
    """``find_target`` as the matcher runs it: reads through the batch's prefetch,
    Stripe and Everflow asked, carried clicks stored."""

    matcher: Matcher

    def item(self, key: Key) -> dict[str, Any] | None:
        return self.matcher._lookup(key)

    def clicks_of(self, item: dict[str, Any] | None) -> list[StoredClick]:
        return self.matcher.store.clicks_of(item)

    def customer(self, api_key: str, customer_id: str) -> CustomerFacts | None:
        return self.matcher.stripe.customer(api_key, customer_id)

    def keep_carried(self, email_hash: str, click: StoredClick) -> tuple[str, ...]:
        release: tuple[str, ...] = ()
        if self.matcher.store.put_click(email_hash, click):
            # a new click for the email: what was parked for it can match now
            release = (parked_email_pk(email_hash),)
        self.matcher._forget(email_key(email_hash))
        return release

    def asks_everflow(self) -> bool:
        return self.matcher._asks_everflow(self.matcher.secret.get())

    def everflow(
        self, address: str, email_hash: str, known: list[StoredClick], paid_at: int
    ) -> StoredClick | None:
        """Everflow's click for the email (stored by the lookup), or None: Everflow said
        that it knows none (remembered a few minutes). Raises when Everflow could not
        answer."""
        m, secret = self.matcher, self.matcher.secret.get()
        assert m.everflow is not None and secret.everflow_api_key
        found = m.everflow.find(
            secret.everflow_api_key,
            address,
            email_hash,
            paid_at=paid_at,
            policy=m.settings.attribution_policy,  # type: ignore[arg-type]
            window_days=m.settings.attribution_window_days,
            known=known,
        )
        if found is None:
            miss = everflow_miss_key(email_hash)
            m._remember(miss, _item(miss))
        else:
            m._forget(email_key(email_hash))
        return found


# ------------------------------------------------------------------ preview

# What the live path would ask before it decides, which a preview does not ask.
ASKS = {
    "stripe_invoice": "Stripe for the intent's invoice",
    "stripe_checkout": "Stripe for the intent's Checkout Session",
    "stripe_customer": "Stripe for the customer",
    "everflow": "Everflow for the email's click",
}


@dataclass(frozen=True)
class Preview:
    """What the matcher would do with one event, as AttributionTable holds things now
    (``AttributionPreview``).

    ``decision``: ``click`` (a conversion to ``target``'s affiliate and click),
    ``email`` (Everflow's email attribution), ``park`` (no click known),
    ``undo`` (a refund or dispute: it follows its payment's conversion), ``ignored``
    (``reason``), ``held`` (waits for its Checkout Session), ``other`` (no money: a
    link or a carried click, ``reason``).
    ``amount_minor``: the amount counted (tax excluded unless AmountsIncludeTax), the
    charge's refunded amount, or the dispute's amount. ``asks``: what the live path
    would ask first (``ASKS``), which may change the answer."""

    decision: str
    amount_minor: int | None
    currency: str
    target: ClickTarget | EmailTarget | None = None
    reason: str | None = None
    asks: tuple[str, ...] = ()

    def describe(self) -> str:
        """The decision in a few words, for a listing."""
        target = self.target
        if self.decision == "click" and isinstance(target, ClickTarget):
            text = (
                f"affiliate {target.affiliate_id or '?'} click {target.transaction_id} "
                f"({target.matched_by})"
            )
        elif self.decision == "email":
            text = "Everflow's email attribution (no click known)"
        elif self.decision == "park":
            text = "no click known: would park"
        elif self.decision == "undo":
            text = "follows its payment's conversion"
        else:
            text = f"{self.decision}: {self.reason}"
        if self.asks:
            text += "; would ask " + ", ".join(ASKS[a] for a in self.asks) + " first"
        return text


@dataclass
class _PreviewAttribution:
    """``find_target`` read-only: AttributionTable through the preview's cache; Stripe
    and Everflow not asked, only noted; nothing stored."""

    preview: AttributionPreview
    asks: list[str] = field(default_factory=list)

    def item(self, key: Key) -> dict[str, Any] | None:
        return self.preview.item(key)

    def clicks_of(self, item: dict[str, Any] | None) -> list[StoredClick]:
        return self.preview.store.clicks_of(item)

    def customer(self, api_key: str, customer_id: str) -> CustomerFacts | None:
        self.asks.append("stripe_customer")
        return None

    def keep_carried(self, email_hash: str, click: StoredClick) -> tuple[str, ...]:
        return ()

    def asks_everflow(self) -> bool:
        return self.preview.asks_everflow

    def everflow(
        self, address: str, email_hash: str, known: list[StoredClick], paid_at: int
    ) -> StoredClick | None:
        self.asks.append("everflow")
        return None


@dataclass
class AttributionPreview:
    """What the matcher would decide for events, read from AttributionTable only: the
    same decisions in the same order as ``Matcher.process`` for a payment (its
    invoice or Checkout Session, its conversion claim, then ``find_target``), with no
    write, no Stripe or Everflow call (``Preview.asks`` names those the live path
    would make) and nothing queued. ``prefetch`` reads a batch's items together (one
    BatchGetItem per 100 keys); pins, emails' clicks and Everflow's misses are kept for
    the preview's life (read once), a payment's own claim and link for its batch."""

    settings: MatchSettings
    store: AttributionStore
    secret: BridgeSecret
    _items: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    # a payment's own items (its claim, its intent's link), kept for one batch only
    _batch_keys: set[Key] = field(default_factory=set)
    reads: int = 0  # items read from the table

    @property
    def asks_everflow(self) -> bool:
        """Whether the matcher asks Everflow on a miss: the stack's ClickSources holds
        ``everflow`` and the secret an Everflow API key."""
        return bool(self.secret.everflow_api_key and "everflow" in self.settings.click_sources)

    @property
    def classify_settings(self) -> ClassifySettings:
        return ClassifySettings(
            click_metadata_key=self.settings.click_metadata_key,
            amounts_include_tax=self.settings.amounts_include_tax,
            subscription_update_invoices=self.settings.subscription_update_invoices,  # type: ignore[arg-type]
        )

    def _hash_key(self) -> str:
        if not self.secret.email_hash_key:
            raise SecretUnavailableError("email_hash_key is missing from the bridge secret")
        return self.secret.email_hash_key

    def item(self, key: Key) -> dict[str, Any] | None:
        if key not in self._items:
            self.reads += 1
            self._items[key] = self.store.get(key)
        return self._items[key]

    def prefetch(self, events: Iterable[IncomingEvent]) -> None:
        """Read what ``of`` may need for these events, not read yet, together."""
        hash_key = self._hash_key()
        for key in self._batch_keys:
            self._items.pop(key, None)
        keys: list[Key] = []
        own: list[Key] = []
        for incoming in events:
            c = classify_event(incoming.event, self.classify_settings)
            if c.action != "payment":
                continue
            account = incoming.account
            if c.money_key:
                own.append(conversion_key(account, c.money_key))
            if c.ids.customer_id:
                keys.append(pin_key(account, c.ids.customer_id))
            hashed = try_email_hash(c.email, hash_key)
            if hashed:
                keys.append(email_key(hashed))
                if self.asks_everflow:
                    keys.append(everflow_miss_key(hashed))
            if c.needs_invoice_check and c.ids.payment_intent_id:
                own.append(link_key(account, c.ids.payment_intent_id))
        self._batch_keys = set(own)
        keys += own
        wanted = [k for k in dict.fromkeys(keys) if k not in self._items]
        if not wanted:
            return
        found = self.store.get_many(wanted)
        self.reads += len(wanted)
        for key in wanted:
            self._items[key] = found.get(key)

    def of(self, account: StripeAccount, incoming: IncomingEvent) -> Preview:
        """What ``Matcher.process`` would do with this event now."""
        event = incoming.event
        c = classify_event(event, self.classify_settings)
        amount: int | None = c.amount_minor
        if c.action == "refund":
            amount = c.amount_refunded_minor

        def preview(decision: str, **facts: Any) -> Preview:
            return Preview(decision, amount, c.currency, **facts)

        if event.get("livemode") is not account.livemode:
            return preview("ignored", reason="livemode_mismatch")
        if c.action == "ignored":
            return preview("ignored", reason=c.reason)
        if c.action == "link":
            return preview("other", reason="links its payment intent to its invoice")
        if c.action == "click_carrier":
            return preview("other", reason="registers the click it carries")
        if c.action in UNDO_ACTIONS:
            return preview("undo")
        return self._payment(account, incoming, c, preview)

    def _payment(
        self,
        account: StripeAccount,
        incoming: IncomingEvent,
        c: Classification,
        preview: Callable[..., Preview],
    ) -> Preview:
        """``Matcher._process_payment``'s decisions, read-only."""
        assert c.money_key is not None
        asks: list[str] = []
        intent = c.ids.payment_intent_id
        if c.needs_invoice_check and intent:
            link = self.item(link_key(account.name, intent))
            if link and link.get("invoice_id"):
                return preview("ignored", reason="counted_by_invoice")
            if not account.api_key:
                return preview("ignored", reason="invoice_link_unknown")
            asks.append("stripe_invoice")
        if c.needs_checkout_check and intent and account.api_key:
            asks.append("stripe_checkout")
        held = self.item(conversion_key(account.name, c.money_key))
        owner = held.get("owner") if held else None
        if owner and owner != incoming.event_id and not Matcher._takes_over(c, held):
            return preview("ignored", reason="duplicate_source", asks=tuple(asks))
        if held and owner == incoming.event_id and held.get("job_key"):
            return preview("ignored", reason="already_sent", asks=tuple(asks))
        if owner is None and Matcher._waits_for_checkout(account, incoming, c):
            return preview("held", reason="waiting_for_checkout_session", asks=tuple(asks))
        decided = Matcher._decided(held) if owner == incoming.event_id else None
        if decided:
            return preview("click", target=decided[0], asks=tuple(asks))
        io = _PreviewAttribution(self)
        now = int(time.time())
        found = find_target(self.settings, account, c, self._hash_key(), now, io)
        asks += io.asks
        if found is None:
            if not try_email_hash(c.email, self._hash_key()) and not c.ids.customer_id:
                return preview("ignored", reason="no_email_or_customer", asks=tuple(asks))
            return preview("park", asks=tuple(asks))
        decision = "click" if isinstance(found.target, ClickTarget) else "email"
        return preview(decision, target=found.target, asks=tuple(asks))
