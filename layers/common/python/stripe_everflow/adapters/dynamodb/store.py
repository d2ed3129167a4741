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
- parked payment: ``parked#email#<hmac>`` or ``parked#customer#<account>#<cus_…>`` /
  event id — the queue message to replay, with ``expires_at``.

Every write is conditional or idempotent, so retries and concurrent workers agree;
a conversion's claim, pin and first conversion are written together in one
TransactWriteItems.
All methods raise botocore errors as they come: the caller's record fails and SQS
retries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from stripe_everflow.adapters.dynamodb import condition_failed, from_attributes, to_attributes
from stripe_everflow.domain.attribution import StoredClick
from stripe_everflow.domain.records import (
    ClaimAttempt,
    ConversionClaim,
    Key,
    ParkedPayment,
    Pin,
    email_key,
    link_key,
    pin_key,
)

BATCH_GET_LIMIT = 100
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

    def get_many(self, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
        """Read up to any number of items in BatchGetItem requests of 100 keys."""
        wanted = list(dict.fromkeys(keys))
        found: dict[Key, dict[str, Any]] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request = {
                self._table: {
                    "Keys": [self._key(k) for k in wanted[start : start + BATCH_GET_LIMIT]]
                }
            }
            attempts = 0
            while request:
                self.read_requests += 1
                answer = self._db.batch_get_item(RequestItems=request)
                for raw in answer.get("Responses", {}).get(self._table, []):
                    item = from_attributes(raw)
                    if self._is_live(item):
                        found[(item["pk"], item["sk"])] = item
                request = answer.get("UnprocessedKeys") or {}
                attempts += 1
                if request and attempts >= 5:
                    raise RuntimeError("DynamoDB left keys unprocessed after 5 attempts")
                if request:
                    time.sleep(0.05 * 2**attempts)  # throttled: back off before the rest
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
    ) -> ClaimAttempt:
        """Take a payment's conversion claim for its event, and with it (all or none,
        in one request) pin its customer and claim the customer's first conversion.

        The claim is taken if free, or held by the same event with no job sent yet (a
        retry, or a parked payment's replay). The pin is written only if the customer
        has none (first wins), the first conversion only if no other money holds it.
        A refusal comes back with the records in force, read from the refusal itself.
        """
        free_or_ours = (
            "attribute_not_exists(pk) OR (#owner = :owner AND attribute_not_exists(job_key))"
        )
        puts = [("claim", self._conditional_put(claim.as_item(), free_or_ours, claim.owner))]
        if pin is not None:
            item = {"pk": pin[0][0], "sk": pin[0][1], **pin[1].as_item()}
            puts.append(("pin", self._conditional_put(item, "attribute_not_exists(pk)")))
        if first_conversion is not None:
            (pk, sk), money_key = first_conversion
            item = {"pk": pk, "sk": sk, "owner": money_key, "claimed_at": claim.claimed_at}
            condition = "attribute_not_exists(pk) OR #owner = :owner"
            puts.append(("first", self._conditional_put(item, condition, money_key)))
        self.write_requests += 1
        try:
            if len(puts) == 1:
                self._db.put_item(**puts[0][1])
            else:
                self._db.transact_write_items(TransactItems=[{"Put": put} for _, put in puts])
            return ClaimAttempt(won=True)
        except Exception as error:
            refused = self._refused([name for name, _ in puts], error)
            if refused is None:
                raise
        if "claim" in refused:
            return ClaimAttempt(won=False, claim=refused["claim"])
        return ClaimAttempt(
            won=False,
            pin=Pin.from_item(refused["pin"]) if "pin" in refused else None,
            first_conversion=str(refused["first"]["owner"]) if "first" in refused else None,
        )

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

    def record_conversion(self, claim: ConversionClaim, links: Iterable[Key]) -> None:
        """Note on the claim that its job was sent (``claim.job_key``), and let refunds
        and disputes, which name a charge or payment intent, find that job (object
        links), in one request."""
        assert claim.job_key
        items = [claim.as_item()]
        items += [{"pk": pk, "sk": sk, "job_key": claim.job_key} for pk, sk in dict.fromkeys(links)]
        self._put_many(items)

    def _put_many(self, items: list[dict[str, Any]]) -> None:
        """Write items unconditionally: one PutItem, or BatchWriteItem requests of 25."""
        if len(items) == 1:
            self.write_requests += 1
            self._db.put_item(TableName=self._table, Item=to_attributes(items[0]))
            return
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            chunk = items[start : start + BATCH_WRITE_LIMIT]
            request = {self._table: [{"PutRequest": {"Item": to_attributes(i)}} for i in chunk]}
            attempts = 0
            while request:
                self.write_requests += 1
                answer = self._db.batch_write_item(RequestItems=request)
                request = answer.get("UnprocessedItems") or {}
                attempts += 1
                if request and attempts >= 5:
                    raise RuntimeError("DynamoDB left items unwritten after 5 attempts")
                if request:
                    time.sleep(0.05 * 2**attempts)  # throttled: back off before the rest

    def put_link(self, account: str, payment_intent_id: str, invoice_id: str) -> None:
        pk, sk = link_key(account, payment_intent_id)
        self.write_requests += 1
        self._db.put_item(
            TableName=self._table,
            Item=to_attributes({"pk": pk, "sk": sk, "invoice_id": invoice_id}),
        )

    # -------------------------------------------------------------- parking

    def park(self, pks: Iterable[str], event_id: str, message: str, expires_at: int) -> None:
        """Park a payment's message under each of ``pks`` (event id as sort key)."""
        parked_at = int(self._clock())
        self._put_many(
            [
                {
                    "pk": pk,
                    "sk": event_id,
                    "message": message,
                    "expires_at": expires_at,
                    "parked_at": parked_at,
                }
                for pk in dict.fromkeys(pks)
            ]
        )

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
