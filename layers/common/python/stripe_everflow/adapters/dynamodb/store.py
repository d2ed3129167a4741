"""AttributionTable: clicks by email, customer pins, claims, payment links, parked payments.

One table, generic ``pk``/``sk`` keys (TTL attribute ``expires_at``, filtered at read
time too, since DynamoDB deletes expired items late):

- clicks of an email: ``email#<hmac>`` / ``clicks`` — map transaction_id → click;
- customer pin: ``customer#<account>#<cus_…>`` / ``pin`` — the click it is pinned to;
- claim: ``claim#<account>#<key>`` / ``claim`` — who claimed a business key (``owner``);
- payment link: ``intent#<account>#<pi_…>`` / ``invoice`` — the invoice an intent paid;
- object link: ``object#<account>#<ch_…|pi_…>`` / ``conversion`` — the conversion job
  of the money a charge or intent paid (for refunds and disputes);
- parked payment: ``parked#email#<hmac>`` or ``parked#customer#<account>#<cus_…>`` /
  event id — the queue message to replay, with ``expires_at``.

Every write is conditional or idempotent, so retries and concurrent workers agree.
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
    Key,
    ParkedPayment,
    Pin,
    email_key,
    link_key,
    object_key,
    pin_key,
)

BATCH_GET_LIMIT = 100


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
        pin = Pin(click.transaction_id, click.offer_id, click.affiliate_id, click.source, now)
        self.write_requests += 1
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_attributes(
                    {"pk": pin_key(account, customer_id)[0], "sk": "pin", **self.pin_item(pin)}
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return pin
        except Exception as error:
            if not condition_failed(error):
                raise
        existing = self.get(pin_key(account, customer_id), consistent=True)
        assert existing is not None
        return self.pin_of(existing)

    @staticmethod
    def pin_item(pin: Pin) -> dict[str, Any]:
        item: dict[str, Any] = {
            "transaction_id": pin.transaction_id,
            "source": pin.source,
            "pinned_at": pin.pinned_at,
        }
        if pin.offer_id:
            item["offer_id"] = pin.offer_id
        if pin.affiliate_id:
            item["affiliate_id"] = pin.affiliate_id
        return item

    @staticmethod
    def pin_of(item: dict[str, Any]) -> Pin:
        return Pin(
            transaction_id=str(item["transaction_id"]),
            offer_id=item.get("offer_id"),
            affiliate_id=item.get("affiliate_id"),
            source=str(item.get("source", "")),
            pinned_at=int(item.get("pinned_at", 0)),
        )

    # -------------------------------------------------------------- claims, links

    def claim(self, key: Key, owner: str, details: dict[str, Any] | None = None) -> bool:
        """Claim a business key for ``owner``; True if it is (now or already) ``owner``'s.

        Re-claiming by the same owner succeeds, so a retried record redoes its work
        and a second source of the same money is told it lost.
        """
        self.write_requests += 1
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_attributes(
                    {
                        "pk": key[0],
                        "sk": key[1],
                        "owner": owner,
                        "claimed_at": int(self._clock()),
                        **(details or {}),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
            return True
        except Exception as error:
            if condition_failed(error):
                return False
            raise

    def release_claim(self, key: Key, owner: str) -> None:
        """Drop ``owner``'s claim (no-op if someone else holds it)."""
        self.write_requests += 1
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=self._key(key),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except Exception as error:
            if not condition_failed(error):
                raise

    def record_job(self, key: Key, job_key: str) -> None:
        """Note on a conversion claim that its job was sent (refunds look for it)."""
        self.write_requests += 1
        self._db.update_item(
            TableName=self._table,
            Key=self._key(key),
            UpdateExpression="SET job_key = :job",
            ExpressionAttributeValues={":job": {"S": job_key}},
        )

    def link_objects(self, account: str, stripe_ids: Iterable[str], job_key: str) -> None:
        """Let refunds and disputes, which name a charge or payment intent, find the
        conversion job of the money those objects paid."""
        for stripe_id in dict.fromkeys(stripe_ids):
            pk, sk = object_key(account, stripe_id)
            self.write_requests += 1
            self._db.put_item(
                TableName=self._table,
                Item={"pk": {"S": pk}, "sk": {"S": sk}, "job_key": {"S": job_key}},
            )

    def put_link(self, account: str, payment_intent_id: str, invoice_id: str) -> None:
        pk, sk = link_key(account, payment_intent_id)
        self.write_requests += 1
        self._db.put_item(
            TableName=self._table,
            Item=to_attributes({"pk": pk, "sk": sk, "invoice_id": invoice_id}),
        )

    # -------------------------------------------------------------- parking

    def park(self, pk: str, event_id: str, message: str, expires_at: int) -> None:
        self.write_requests += 1
        self._db.put_item(
            TableName=self._table,
            Item=to_attributes(
                {
                    "pk": pk,
                    "sk": event_id,
                    "message": message,
                    "expires_at": expires_at,
                    "parked_at": int(self._clock()),
                }
            ),
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
