"""AttributionTable: clicks by email, customer pins, claims, payment links, parked payments.

One table, generic ``pk``/``sk`` keys (TTL attribute ``expires_at``, filtered at read
time too, since DynamoDB deletes expired items late):

- clicks of an email: ``email#<hmac>`` / ``clicks`` — map transaction_id → click;
- customer pin: ``customer#<account>#<cus_…>`` / ``pin`` — the click it is pinned to;
- conversion claim: ``claim#<account>#conversion#<money key>`` / ``claim`` — the event
  that reported the money (``owner``), what it decided (``kind``, click ``target``)
  and, once its job was sent, ``job_key``;
- first conversion: ``claim#<account>#first-conversion#<cus_…>`` / ``claim`` — the
  money key of the customer's first conversion (``owner``);
- payment link: ``intent#<account>#<pi_…>`` / ``invoice`` — the invoice an intent paid;
- object link: ``object#<account>#<ch_…|pi_…>`` / ``conversion`` — the conversion job
  of the money a charge or intent paid (for refunds and disputes);
- promotion code: ``coupon#<account>#<promo_…|di_…>`` / ``code`` — the code customers
  type ("" for a discount without one), kept ``COUPON_DAYS``;
- parked payment: ``parked#email#<hmac>`` or ``parked#customer#<account>#<cus_…>`` /
  event id — the queue message to replay, with ``expires_at``; beside a customer's
  pin, ``customer#<account>#<cus_…>`` / ``parked`` notes that payments may be parked
  for it;
- Everflow knows no click for an email: ``everflow-miss#<hmac>`` / ``miss``, with
  ``expires_at`` a few minutes on (the click source asks once per burst);
- the click source's sync checkpoint: ``everflow-sync#<scope>`` / ``checkpoint`` —
  ``synced_until``, up to when Everflow's conversion report was read;
- a refund or dispute waiting for its payment: ``parked#undo#<account>`` / event id —
  the message to replay, the job it will send, ``give_up_at``, where it is registered;
  ``parked#undo#<account>`` / ``#sweep`` — when the account's are next looked over.
  A waiting refund or dispute is registered (``waiting``: a set of event ids) on each
  item its payment writes when it is counted — the conversion claim, an object link,
  a basil intent's invoice link — created as a placeholder (with ``expires_at``) when
  absent; the write that counts the payment returns the set, atomically.

Every write is conditional or idempotent, so retries and concurrent workers agree;
a conversion's claim, pin and first conversion are written together in one
TransactWriteItems, claims and links as updates that keep what waits on them.
All methods raise botocore errors as they come: the caller's record fails and SQS
retries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from stripe_everflow.adapters.dynamodb import condition_failed, from_attributes, to_attributes
from stripe_everflow.domain.attribution import StoredClick
from stripe_everflow.domain.records import (
    ClaimAttempt,
    ConversionClaim,
    Key,
    ParkedPayment,
    Pin,
    Registration,
    WaitAttempt,
    WaitingUndo,
    email_key,
    everflow_miss_key,
    link_key,
    pin_key,
    sweep_key,
    waiting_ids,
    waiting_key,
    waiting_pk,
)

# What a refund or dispute may wait on, by kind: the item must not hold its payment yet.
_NOT_COUNTED = {
    "claim": "attribute_not_exists(kind) AND attribute_not_exists(job_key)",
    "object": "attribute_not_exists(job_key)",
    "link": "attribute_not_exists(invoice_id)",
}

BATCH_GET_LIMIT = 100
# How long a promotion code's code is kept after it was last read from Stripe.
COUPON_DAYS = 400
BATCH_ATTEMPTS = 5
BATCH_WRITE_LIMIT = 25


class AttributionStore:
    """DynamoDB adapter for AttributionTable; counts its requests for the benchmarks."""

    def __init__(
        self, table_name: str, dynamodb: Any, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table_name
        self._db = dynamodb
        self._clock = clock
        self.read_requests = 0
        self.write_requests = 0

    # -------------------------------------------------------------- helpers

    def _key(self, key: Key) -> dict[str, Any]:
        return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}

    def _is_live(self, item: dict[str, Any]) -> bool:
        expires = item.get("expires_at")
        return expires is None or int(expires) > self._clock()

    # -------------------------------------------------------------- reads

    def _until_processed(
        self,
        call: Callable[..., Any],
        request: dict[str, Any],
        leftover: str,
        what: str,
        *,
        reads: bool,
    ) -> Iterator[dict[str, Any]]:
        """Send a batch request, then what DynamoDB left in ``leftover`` (throttled),
        backing off between attempts; yields each answer. Each request counts as a read
        (``reads``) or a write. Raises RuntimeError after 5 attempts (the record is
        retried by SQS)."""
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            if reads:
                self.read_requests += 1
            else:
                self.write_requests += 1
            answer = call(RequestItems=request)
            yield answer
            request = answer.get(leftover) or {}
            if not request:
                return
            if attempt < BATCH_ATTEMPTS:
                time.sleep(0.05 * 2**attempt)  # throttled: back off before the rest
        raise RuntimeError(f"DynamoDB left {what} after {BATCH_ATTEMPTS} attempts")

    def get_many(
        self, keys: Iterable[Key], *, consistent: bool = False
    ) -> dict[Key, dict[str, Any]]:
        """Read up to any number of items in BatchGetItem requests of 100 keys."""
        wanted = list(dict.fromkeys(keys))
        found: dict[Key, dict[str, Any]] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [self._key(k) for k in wanted[start : start + BATCH_GET_LIMIT]]
                }
            }
            if consistent:
                request[self._table]["ConsistentRead"] = True
            for answer in self._until_processed(
                self._db.batch_get_item, request, "UnprocessedKeys", "keys unprocessed", reads=True
            ):
                for raw in answer.get("Responses", {}).get(self._table, []):
                    item = from_attributes(raw)
                    if self._is_live(item):
                        found[(item["pk"], item["sk"])] = item
        return found

    def get(self, key: Key, *, consistent: bool = False) -> dict[str, Any] | None:
        self.read_requests += 1
        answer = self._db.get_item(
            TableName=self._table, Key=self._key(key), ConsistentRead=consistent
        )
        item = from_attributes(answer["Item"]) if "Item" in answer else None
        return item if item is not None and self._is_live(item) else None

    # -------------------------------------------------------------- clicks

    def put_click(self, email_hash: str, click: StoredClick) -> bool:
        """Store a click under its email; True if new, False if that click was known.

        The first report of a transaction id wins: a resend changes nothing.
        """
        key = email_key(email_hash)
        for _ in range(3):
            self.write_requests += 1
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=self._key(key),
                    UpdateExpression="SET #clicks.#tx = :click",
                    ConditionExpression=(
                        "attribute_exists(#clicks) AND attribute_not_exists(#clicks.#tx)"
                    ),
                    ExpressionAttributeNames={"#clicks": "clicks", "#tx": click.transaction_id},
                    ExpressionAttributeValues=to_attributes({":click": click.as_item()}),
                )
                return True
            except Exception as error:
                if not condition_failed(error):
                    raise
            # Either the click is known, or the email has no clicks item yet.
            existing = self.get(key, consistent=True)
            if existing is not None:
                if click.transaction_id in existing.get("clicks", {}):
                    return False
                continue  # the item appeared meanwhile: add to it
            self.write_requests += 1
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=to_attributes(
                        {
                            "pk": key[0],
                            "sk": key[1],
                            "clicks": {click.transaction_id: click.as_item()},
                        }
                    ),
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return True
            except Exception as error:
                if not condition_failed(error):
                    raise
        raise RuntimeError("could not store the click after 3 attempts (concurrent writers)")

    @staticmethod
    def clicks_of(item: dict[str, Any] | None) -> list[StoredClick]:
        if not item:
            return []
        return [StoredClick.from_item(click) for click in item.get("clicks", {}).values()]

    # -------------------------------------------------------------- Everflow click source

    def note_everflow_miss(self, email_hash: str, until: int) -> None:
        """Remember until ``until`` that Everflow knows no click for the email."""
        key = everflow_miss_key(email_hash)
        self.write_requests += 1
        self._db.put_item(
            TableName=self._table,
            Item=to_attributes({"pk": key[0], "sk": key[1], "expires_at": until}),
        )

    def advance_checkpoint(self, key: Key, seen: int | None, synced_until: int) -> bool:
        """Move a sync checkpoint from ``seen`` (None: there was none) to
        ``synced_until``; False when another sync moved it meanwhile."""
        self.write_requests += 1
        condition, values = (
            ("attribute_not_exists(pk)", {})
            if seen is None
            else ("synced_until = :seen", {":seen": seen})
        )
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_attributes({"pk": key[0], "sk": key[1], "synced_until": synced_until}),
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": to_attributes(values)} if values else {}),
            )
        except Exception as error:
            if condition_failed(error):
                return False
            raise
        return True

    # -------------------------------------------------------------- pins

    def pin_customer(self, account: str, customer_id: str, click: StoredClick, now: int) -> Pin:
        """Pin the customer to ``click`` unless already pinned; returns the pin in force."""
        pin = Pin.of(click, now)
        self.write_requests += 1
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_attributes(
                    {"pk": pin_key(account, customer_id)[0], "sk": "pin", **pin.as_item()}
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return pin
        except Exception as error:
            if not condition_failed(error):
                raise
        existing = self.get(pin_key(account, customer_id), consistent=True)
        assert existing is not None
        return Pin.from_item(existing)

    @staticmethod
    def pin_of(item: dict[str, Any]) -> Pin:
        return Pin.from_item(item)

    # -------------------------------------------------------------- claims, links

    def claim_conversion(
        self,
        claim: ConversionClaim,
        *,
        pin: tuple[Key, Pin] | None = None,
        first_conversion: tuple[Key, str] | None = None,
        parked_marker: Key | None = None,
        takes_over: str | None = None,
    ) -> ClaimAttempt:
        """Take a payment's conversion claim for its event, and with it (all or none,
        in one request) pin its customer and claim the customer's first conversion.

        The claim is taken if free (or only a placeholder that refunds wait on), held
        by the same event with no job sent yet (a retry, or a parked payment's
        replay), or — ``takes_over`` naming an event type — held undecided by an event
        of that type (a Checkout Session takes its intent's). It is an update: the
        refunds and disputes waiting on it stay. The pin is written only if the
        customer has none (first wins), the first conversion only if no other money
        holds it; with ``parked_marker`` the request also checks that no payment is
        parked for the customer (refused with ``parked``: release them, then retry
        without the check). A refusal comes back with the records in force, read from
        the refusal itself; a claim taken alone comes back with what waits on it.
        """
        updates = [("claim", self._claim_update(claim, takes_over))]
        if pin is not None:
            item = {"pk": pin[0][0], "sk": pin[0][1], **pin[1].as_item()}
            updates.append(
                ("pin", {"Put": self._conditional_put(item, "attribute_not_exists(pk)")})
            )
        if first_conversion is not None:
            (pk, sk), money_key = first_conversion
            item = {"pk": pk, "sk": sk, "owner": money_key, "claimed_at": claim.claimed_at}
            condition = "attribute_not_exists(pk) OR #owner = :owner"
            updates.append(("first", {"Put": self._conditional_put(item, condition, money_key)}))
        if parked_marker is not None:
            check = {
                "TableName": self._table,
                "Key": self._key(parked_marker),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            updates.append(("parked", {"ConditionCheck": check}))
        self.write_requests += 1
        try:
            if len(updates) == 1:
                answer = self._db.update_item(**updates[0][1]["Update"], ReturnValues="ALL_OLD")
                return ClaimAttempt(won=True, waiting=waiting_ids(self._attributes(answer)))
            self._db.transact_write_items(TransactItems=[update for _, update in updates])
            return ClaimAttempt(won=True)
        except Exception as error:
            refused = self._refused([name for name, _ in updates], error)
            if refused is None:
                raise
        if "claim" in refused:
            return ClaimAttempt(won=False, claim=refused["claim"])
        return ClaimAttempt(
            won=False,
            pin=Pin.from_item(refused["pin"]) if "pin" in refused else None,
            first_conversion=str(refused["first"]["owner"]) if "first" in refused else None,
            parked="parked" in refused,
        )

    def _claim_update(self, claim: ConversionClaim, takes_over: str | None) -> dict[str, Any]:
        item = claim.as_item()
        values = {k: v for k, v in item.items() if k not in ("pk", "sk", "job_key")}
        names = {f"#a{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(values)))
        # A claim taken again without a decision (parked) keeps none of an older one;
        # a claim holding money is never deleted by an expiry set while it was a
        # placeholder.
        removes = ["expires_at", *(n for n in ("kind", "target") if n not in values)]
        attribute_values = {f":a{i}": value for i, value in enumerate(values.values())}
        condition = (
            "attribute_not_exists(#owner) OR (#owner = :owner AND attribute_not_exists(job_key))"
        )
        if takes_over:
            condition += (
                " OR (#source = :yields AND attribute_not_exists(kind)"
                " AND attribute_not_exists(job_key))"
            )
            names["#source"] = "source"
            attribute_values[":yields"] = takes_over
        names["#owner"] = "owner"
        attribute_values[":owner"] = claim.owner
        return {
            "Update": {
                "TableName": self._table,
                "Key": self._key(claim.key),
                "UpdateExpression": f"SET {sets} REMOVE {', '.join(removes)}",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_attributes(attribute_values),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    @staticmethod
    def _attributes(answer: Mapping[str, Any]) -> dict[str, Any] | None:
        raw = answer.get("Attributes")
        return from_attributes(raw) if raw else None

    def _conditional_put(
        self, item: dict[str, Any], condition: str, owner: str | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_attributes(item),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if owner is not None:
            put["ExpressionAttributeNames"] = {"#owner": "owner"}
            put["ExpressionAttributeValues"] = {":owner": {"S": owner}}
        return put

    @staticmethod
    def _refused(names: list[str], error: Exception) -> dict[str, dict[str, Any]] | None:
        """The items whose condition refused a put (by name), or None if ``error`` is
        anything else (a conflict with a concurrent transaction, throttling, …)."""
        response = getattr(error, "response", {}) or {}
        if len(names) == 1:
            if not condition_failed(error) or "Item" not in response:
                return None
            return {names[0]: from_attributes(response["Item"])}
        reasons = response.get("CancellationReasons")
        code = response.get("Error", {}).get("Code")
        if code != "TransactionCanceledException" or not isinstance(reasons, list):
            return None
        if len(reasons) != len(names):
            return None
        refused = {}
        for name, reason in zip(names, reasons, strict=True):
            if reason.get("Code") == "None":
                continue
            if reason.get("Code") != "ConditionalCheckFailed" or "Item" not in reason:
                return None
            refused[name] = from_attributes(reason["Item"])
        return refused or None

    def _update(
        self,
        key: Key,
        expression: str,
        values: Mapping[str, Any] | None = None,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """An Update (of a TransactWriteItems, or the arguments of UpdateItem)."""
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(key),
            "UpdateExpression": expression,
        }
        if values:
            update["ExpressionAttributeValues"] = to_attributes(values)
        if names:
            update["ExpressionAttributeNames"] = dict(names)
        if condition:
            update["ConditionExpression"] = condition
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return update

    def record_conversion(self, claim: ConversionClaim, links: Iterable[Key]) -> tuple[str, ...]:
        """Note on the claim that its job was sent (``claim.job_key``), and let refunds
        and disputes, which name a charge or payment intent, find that job (object
        links), in one request. Returns the event ids of the refunds and disputes that
        waited on any of them: they are left on the claim until ``settle_waiting``
        (replay them first), the links' moved onto it in the same write."""
        assert claim.job_key
        job = {":job": claim.job_key}
        keys = list(dict.fromkeys(links))
        if not keys:
            self.write_requests += 1
            answer = self._db.update_item(
                **self._update(claim.key, "SET job_key = :job", job), ReturnValues="ALL_OLD"
            )
            return waiting_ids(self._attributes(answer))
        seen: dict[Key, tuple[str, ...]] = {}
        for _ in range(3):  # each refusal shows what waits; a retry moves it to the claim
            moved = sorted({i for ids in seen.values() for i in ids})
            condition, values = self._unchanged_waiting(seen.get(claim.key, ()))
            claim_update = self._update(
                claim.key,
                "SET job_key = :job ADD waiting :moved" if moved else "SET job_key = :job",
                job | values | ({":moved": set(moved)} if moved else {}),
                condition,
            )
            updates = [claim_update]
            for key in keys:
                condition, values = self._unchanged_waiting(seen.get(key, ()))
                updates.append(
                    self._update(
                        key,
                        "SET job_key = :job REMOVE expires_at, waiting",
                        job | values,
                        condition,
                    )
                )
            self.write_requests += 1
            try:
                self._db.transact_write_items(TransactItems=[{"Update": u} for u in updates])
                return tuple(moved)
            except Exception as error:
                refused = self._refused_items(updates, error)
                if refused is None:
                    raise
            for key, item in refused.items():
                seen[key] = waiting_ids(item)
        raise RuntimeError("the conversion's links kept changing under 3 attempts")

    @staticmethod
    def _unchanged_waiting(ids: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        """The condition (and its values) that an item's waiting set is the one seen."""
        if not ids:
            return "attribute_not_exists(waiting)", {}
        checks = " AND ".join(f"contains(waiting, :w{n})" for n in range(len(ids)))
        values: dict[str, Any] = {f":w{n}": i for n, i in enumerate(ids)}
        return f"size(waiting) = :size AND {checks}", values | {":size": len(ids)}

    def _refused_items(
        self, updates: list[dict[str, Any]], error: Exception, first: int = 0
    ) -> dict[Key, dict[str, Any]] | None:
        """The refused items of a TransactWriteItems whose ``updates`` follow ``first``
        unconditional writes, by key (None: another error)."""
        names = [f"w{n}" for n in range(first)] + [str(n) for n in range(len(updates))]
        refused = self._refused(names, error)
        if refused is None or any(name.startswith("w") for name in refused):
            return None
        found = {}
        for n, item in refused.items():
            key = updates[int(n)]["Key"]
            found[(key["pk"]["S"], key["sk"]["S"])] = item
        return found

    def _put_many(self, items: list[dict[str, Any]]) -> None:
        """Write items unconditionally: one PutItem, or BatchWriteItem requests of 25."""
        if len(items) == 1:
            self.write_requests += 1
            self._db.put_item(TableName=self._table, Item=to_attributes(items[0]))
            return
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            chunk = items[start : start + BATCH_WRITE_LIMIT]
            request = {self._table: [{"PutRequest": {"Item": to_attributes(i)}} for i in chunk]}
            for _ in self._until_processed(
                self._db.batch_write_item,
                request,
                "UnprocessedItems",
                "items unwritten",
                reads=False,
            ):
                pass

    def put_link(self, account: str, payment_intent_id: str, invoice_id: str) -> tuple[str, ...]:
        """Note the invoice a payment intent paid; returns the event ids of the refunds
        and disputes that waited for it (left on the link until ``settle_waiting``)."""
        self.write_requests += 1
        answer = self._db.update_item(
            **self._update(
                link_key(account, payment_intent_id),
                "SET invoice_id = :invoice REMOVE expires_at",
                {":invoice": invoice_id},
            ),
            ReturnValues="ALL_OLD",
        )
        return waiting_ids(self._attributes(answer))

    def put_coupon_code(self, key: Key, code: str) -> None:
        """Keep a promotion code's code (or a discount's, "" for none); Stripe never
        changes it, so the item stays until COUPON_DAYS after it was last written."""
        self.write_requests += 1
        self._db.put_item(
            TableName=self._table,
            Item=to_attributes(
                {
                    "pk": key[0],
                    "sk": key[1],
                    "code": code,
                    "expires_at": int(self._clock()) + COUPON_DAYS * 86_400,
                }
            ),
        )

    # -------------------------------------------------------------- parking

    def park(
        self,
        pks: Iterable[str],
        event_id: str,
        message: str,
        expires_at: int,
        markers: Iterable[Key] = (),
    ) -> None:
        """Park a payment's message under each of ``pks`` (event id as sort key), and
        write ``markers`` (``parked_marker_key``) with the same expiry."""
        parked_at = int(self._clock())
        items = [
            {
                "pk": pk,
                "sk": event_id,
                "message": message,
                "expires_at": expires_at,
                "parked_at": parked_at,
            }
            for pk in dict.fromkeys(pks)
        ]
        items += [
            {"pk": pk, "sk": sk, "expires_at": expires_at, "parked_at": parked_at}
            for pk, sk in dict.fromkeys(markers)
        ]
        self._put_many(items)

    def parked(self, pk: str) -> list[ParkedPayment]:
        """Every live parked payment under ``pk`` (consistent read)."""
        items: list[ParkedPayment] = []
        start: dict[str, Any] | None = None
        while True:
            arguments: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": pk}},
                "ConsistentRead": True,
            }
            if start:
                arguments["ExclusiveStartKey"] = start
            self.read_requests += 1
            answer = self._db.query(**arguments)
            for raw in answer.get("Items", []):
                item = from_attributes(raw)
                if self._is_live(item):
                    items.append(ParkedPayment(item["pk"], item["sk"], item["message"]))
            start = answer.get("LastEvaluatedKey")
            if not start:
                return items

    def unpark(self, parked: ParkedPayment) -> None:
        self.write_requests += 1
        self._db.delete_item(TableName=self._table, Key=self._key((parked.pk, parked.sk)))

    # -------------------------------------------------------------- waiting refunds

    def wait_for_payment(
        self, waiting: WaitingUndo, registrations: Sequence[Registration], expires_at: int
    ) -> WaitAttempt:
        """Store a waiting refund or dispute and register it on ``registrations``, in one
        request, each only if its payment is still not counted there (``_NOT_COUNTED``;
        a placeholder also holds no payment, and gets ``expires_at``). Refused: nothing
        was written, and the refusing items come back by key."""
        updates = []
        for registration in registrations:
            condition = _NOT_COUNTED[registration.kind]
            names = None
            if registration.kind == "claim":
                names = {"#owner": "owner"}
                held = "not_exists" if registration.placeholder else "exists"
                condition = f"attribute_{held}(#owner) AND {condition}"
            values: dict[str, Any] = {":id": {waiting.event_id}}
            expression = "ADD waiting :id"
            if registration.placeholder:
                expression += " SET expires_at = :expires"
                values[":expires"] = expires_at
            updates.append(self._update(registration.key, expression, values, condition, names))
        put = {"TableName": self._table, "Item": to_attributes(waiting.as_item(expires_at))}
        self.write_requests += 1
        try:
            self._db.transact_write_items(
                TransactItems=[{"Put": put}, *({"Update": u} for u in updates)]
            )
            return WaitAttempt(won=True)
        except Exception as error:
            refused = self._refused_items(updates, error, first=1)
            if refused is None:
                raise
        return WaitAttempt(won=False, refused=refused)

    def waiting_undo(self, account: str, event_id: str) -> WaitingUndo | None:
        item = self.get(waiting_key(account, event_id), consistent=True)
        return WaitingUndo.from_item(account, item) if item else None

    def settle_waiting(self, key: Key, event_ids: Iterable[str]) -> None:
        """Take replayed refunds and disputes off the item they waited on."""
        ids = set(event_ids)
        if not ids:
            return
        self.write_requests += 1
        try:
            self._db.update_item(
                **self._update(key, "DELETE waiting :ids", {":ids": ids}, "attribute_exists(pk)")
            )
        except Exception as error:
            if not condition_failed(error):
                raise

    def forget_waiting(self, waiting: WaitingUndo) -> None:
        """A refund or dispute that waited has gone out (or given up): off every item it
        was registered on, then itself."""
        for key in dict.fromkeys(waiting.registrations):
            self.settle_waiting(key, [waiting.event_id])
        self.write_requests += 1
        self._db.delete_item(
            TableName=self._table, Key=self._key(waiting_key(waiting.account, waiting.event_id))
        )

    def extend_waiting(
        self, account: str, event_ids: Iterable[str], give_up_at: int, expires_at: int
    ) -> None:
        """Let refunds and disputes wait (at least) until ``give_up_at``: their payment
        was parked again."""
        for event_id in dict.fromkeys(event_ids):
            self.write_requests += 1
            try:
                self._db.update_item(
                    **self._update(
                        waiting_key(account, event_id),
                        "SET give_up_at = :give_up, expires_at = :expires",
                        {":give_up": give_up_at, ":expires": expires_at},
                        "attribute_exists(pk) AND give_up_at < :give_up",
                    )
                )
            except Exception as error:
                if not condition_failed(error):
                    raise

    def note_waiting(self, account: str, give_up_at: int, now: int) -> None:
        """Make sure the account's waiting refunds are looked over (``take_sweep``) by
        ``give_up_at`` at the latest; ``registered_at`` tells a sweep that ends the
        record that one came meanwhile."""
        self.write_requests += 1
        self._db.update_item(
            **self._update(
                sweep_key(account),
                "SET next_sweep = if_not_exists(next_sweep, :give_up), registered_at = :now",
                {":give_up": give_up_at, ":now": now},
            )
        )

    def take_sweep(
        self, account: str, seen: Mapping[str, Any], next_sweep: int
    ) -> dict[str, Any] | None:
        """Take the account's sweep (one worker at a time) by moving its next time from
        what was ``seen`` to ``next_sweep``; returns the record, or None if another
        worker took it."""
        self.write_requests += 1
        try:
            answer = self._db.update_item(
                **self._update(
                    sweep_key(account),
                    "SET next_sweep = :next",
                    {":next": next_sweep, ":seen": int(seen.get("next_sweep", 0))},
                    "next_sweep = :seen",
                ),
                ReturnValues="ALL_NEW",
            )
        except Exception as error:
            if condition_failed(error):
                return None
            raise
        return self._attributes(answer)

    def end_sweep(self, account: str, taken: Mapping[str, Any]) -> None:
        """Nothing waits any more: drop the sweep record, unless a refund came to wait
        since it was taken."""
        self.write_requests += 1
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=self._key(sweep_key(account)),
                ConditionExpression="next_sweep = :next AND registered_at = :registered",
                ExpressionAttributeValues=to_attributes(
                    {
                        ":next": int(taken.get("next_sweep", 0)),
                        ":registered": int(taken.get("registered_at", 0)),
                    }
                ),
            )
        except Exception as error:
            if not condition_failed(error):
                raise

    def waiting_of(self, account: str) -> list[WaitingUndo]:
        """Every refund and dispute of the account waiting for its payment."""
        found = []
        start: dict[str, Any] | None = None
        while True:
            arguments: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": waiting_pk(account)}},
                "ConsistentRead": True,
            }
            if start:
                arguments["ExclusiveStartKey"] = start
            self.read_requests += 1
            answer = self._db.query(**arguments)
            for raw in answer.get("Items", []):
                item = from_attributes(raw)
                if "message" in item:
                    found.append(WaitingUndo.from_item(account, item))
            start = answer.get("LastEvaluatedKey")
            if not start:
                return found
