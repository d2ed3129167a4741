"""LedgerTable: what was sent to Everflow, once per job key.

One item per job (``pk = job#<job_key>``, ``sk = ledger``), moved through states by
conditional writes so duplicate jobs, SQS redeliveries and concurrent workers make
one Everflow call:

    (none) ──begin──▶ sending ──finish──▶ posted | rejected | failed
                        │  ▲
                release │  │ begin again (after a retryable answer, or once the
                        ▼  │ lease of a crashed worker has run out)
                     retryable

``begin`` succeeds only on a new job, one left in a state a delivery takes again
(``RETAKEN_STATES``: ``retryable``, ``failed``, ``restore_needs_key``), or a ``sending``
one whose lease (``lease_until``) has passed.

Doubt (``maybe_sent``): from the moment an attempt takes a job, its request may reach
Everflow, so ``begin`` marks the job ``maybe_sent`` in the same write, and the mark
stays until an attempt that knows better says so: ``finish`` (Everflow answered) or
``release(maybe_sent=False)`` (nothing of this attempt left, and the doubt an earlier
attempt left was settled by a lookup). A crash, a release that does not say, or a
lookup that failed all leave the mark, and ``begin`` answers "resume" to the next
attempt: it asks Everflow before sending again.

Botocore errors propagate: the record fails and SQS retries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from stripe_everflow.adapters.dynamodb import condition_failed, from_attributes, to_attributes
from stripe_everflow.domain.jobs import PostbackJob
from stripe_everflow.domain.ledger import FINAL_STATES, RETAKEN_STATES, Begin, LedgerEntry


def ledger_key(job_key: str) -> dict[str, Any]:
    return {"pk": {"S": f"job#{job_key}"}, "sk": {"S": "ledger"}}


def _amount(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")


def entry_of(job: PostbackJob) -> dict[str, Any]:
    """What an entry keeps of its job: the fields the reports read (amounts as text),
    the Stripe ids that find it, and the job itself (``job``, a PostbackQueue message
    that can be sent again)."""
    return {
        "job_key": job.job_key,
        "action": job.action,
        "kind": job.kind,
        "account": job.account,
        "livemode": job.livemode,
        "amount": _amount(job.amount),
        "currency": job.currency,
        "amount_refunded": _amount(job.amount_refunded),
        "charge_amount": _amount(job.charge_amount),
        "dispute_status": job.dispute_status,
        "conversion_job_key": job.conversion_job_key,
        "occurred_at": job.occurred_at,
        "transaction_id": job.transaction_id,
        **job.stripe.object_ids(),
        "job": job.to_json(),
    }


class Ledger:
    def __init__(self, table_name: str, dynamodb: Any) -> None:
        self._table = table_name
        self._db = dynamodb

    def get(self, job_key: str) -> LedgerEntry | None:
        answer = self._db.get_item(
            TableName=self._table, Key=ledger_key(job_key), ConsistentRead=True
        )
        if "Item" not in answer:
            return None
        item = from_attributes(answer["Item"])
        return LedgerEntry(job_key, str(item.get("status")), int(item.get("attempts", 0)), item)

    def begin(self, job: PostbackJob, attempt_id: str, now: int, lease_seconds: int) -> Begin:
        """Take the job for this attempt: "go" to send, "resume" when a crashed attempt
        left it ``sending`` (it may have reached Everflow), "done" if already final,
        "busy" if another worker holds a live lease."""
        summary = entry_of(job)
        retaken = {f":retaken{n}": state for n, state in enumerate(RETAKEN_STATES)}
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=ledger_key(job.job_key),
                UpdateExpression=(
                    "SET #status = :sending, attempt_id = :attempt, lease_until = :lease, "
                    "maybe_sent = :doubt, "
                    "updated_at = :now, created_at = if_not_exists(created_at, :now), "
                    + ", ".join(f"#{k} = :{k}" for k in summary)
                    + " ADD attempts :one"
                ),
                ConditionExpression=(
                    f"attribute_not_exists(pk) OR #status IN ({', '.join(retaken)}) "
                    "OR (#status = :sending AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#status": "status", **{f"#{k}": k for k in summary}},
                ExpressionAttributeValues=to_attributes(
                    {
                        ":sending": "sending",
                        **retaken,
                        ":attempt": attempt_id,
                        ":lease": now + lease_seconds,
                        ":now": now,
                        ":one": 1,
                        ":doubt": True,
                        **{f":{k}": v for k, v in summary.items()},
                    }
                ),
                ReturnValues="ALL_OLD",
            )
            old = answer.get("Attributes", {})
            previous = old.get("status", {}).get("S")
            # A crashed attempt, or one whose call may have reached Everflow unseen
            # (timeout, 5xx, a failed lookup): the caller checks before sending again.
            maybe_sent = old.get("maybe_sent", {}).get("BOOL", False)
            return "resume" if previous == "sending" or maybe_sent else "go"
        except Exception as error:
            if not condition_failed(error):
                raise
        entry = self.get(job.job_key)
        return "done" if entry and entry.status in FINAL_STATES else "busy"

    def finish(
        self, job_key: str, attempt_id: str, status: str, now: int, facts: Mapping[str, Any]
    ) -> None:
        """Record the final state for this attempt (only while it holds the job):
        Everflow answered, so no doubt is left."""
        self._record(job_key, attempt_id, status, now, {"maybe_sent": False, **facts})

    def _record(
        self, job_key: str, attempt_id: str, status: str, now: int, facts: Mapping[str, Any]
    ) -> None:
        values = {k: v for k, v in facts.items() if v is not None}
        self._db.update_item(
            TableName=self._table,
            Key=ledger_key(job_key),
            UpdateExpression="SET #status = :status, updated_at = :now, finished_at = :now"
            + "".join(f", #{k} = :{k}" for k in values)
            + " REMOVE lease_until",
            ConditionExpression="attempt_id = :attempt",
            ExpressionAttributeNames={"#status": "status", **{f"#{k}": k for k in values}},
            ExpressionAttributeValues=to_attributes(
                {
                    ":status": status,
                    ":now": now,
                    ":attempt": attempt_id,
                    **{f":{k}": v for k, v in values.items()},
                }
            ),
        )

    def release(
        self,
        job_key: str,
        attempt_id: str,
        now: int,
        facts: Mapping[str, Any],
        maybe_sent: bool | None = None,
    ) -> None:
        """Give the job back after a retryable failure (the next delivery may take it).

        ``maybe_sent``: True, a request may have reached Everflow (a timeout, a 5xx, a
        hang-up), so the next attempt looks before sending again; False, the caller
        knows Everflow has nothing (its request never left, and any earlier doubt was
        settled by a lookup); None (the default), the doubt stays as ``begin`` set it.
        """
        self._record(job_key, attempt_id, "retryable", now, {**facts, "maybe_sent": maybe_sent})

    def annotate(self, job_key: str, facts: Mapping[str, Any]) -> None:
        """Add facts to a final entry (a conversion's Everflow state after a refund)."""
        values = {k: v for k, v in facts.items() if v is not None}
        if not values:
            return
        self._db.update_item(
            TableName=self._table,
            Key=ledger_key(job_key),
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in values),
            ExpressionAttributeNames={f"#{k}": k for k in values},
            ExpressionAttributeValues=to_attributes({f":{k}": v for k, v in values.items()}),
        )

    def advance_refund_state(
        self, conversion_key: str, at: int, refunded_minor: int, charge_minor: int
    ) -> bool:
        """Make (``at``, ``refunded_minor``) the conversion's charge refund state — the
        latest ``charge.refunded`` by event time, in one second the larger amount (a
        failed refund takes its amount out of the charge's, so amounts alone do not
        order states). False when a later state was already applied (this one is
        stale). An entry written before states were timed keeps its amount order."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=ledger_key(conversion_key),
                UpdateExpression=(
                    "SET refunded_minor = :refunded, refund_state_at = :at, "
                    "refund_charge_minor = :charge"
                ),
                ConditionExpression=(
                    "(attribute_not_exists(refund_state_at) AND "
                    "(attribute_not_exists(refunded_minor) OR refunded_minor <= :refunded)) "
                    "OR refund_state_at < :at "
                    "OR (refund_state_at = :at AND refunded_minor <= :refunded)"
                ),
                ExpressionAttributeValues={
                    ":refunded": {"N": str(refunded_minor)},
                    ":at": {"N": str(at)},
                    ":charge": {"N": str(charge_minor)},
                },
            )
            return True
        except Exception as error:
            if condition_failed(error):
                return False
            raise

    def raise_refunded(self, conversion_key: str, refunded_minor: int) -> bool:
        """Move the conversion's refunded high-water mark up to ``refunded_minor``;
        False when a later refund state was already applied (this one is stale)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=ledger_key(conversion_key),
                UpdateExpression="SET refunded_minor = :refunded",
                ConditionExpression=(
                    "attribute_not_exists(refunded_minor) OR refunded_minor <= :refunded"
                ),
                ExpressionAttributeValues={":refunded": {"N": str(refunded_minor)}},
            )
            return True
        except Exception as error:
            if condition_failed(error):
                return False
            raise
