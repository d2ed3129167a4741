"""The local stack's Lambda emulation: worker processes and SQS event source pollers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stripe_everflow_cli.pollers import SqsPoller, settle_batch
from stripe_everflow_cli.runtime import FunctionWorker, InvocationError

HANDLER = """
import os, time

def lambda_handler(event, context):
    action = event.get("action")
    if action == "env":
        return {"setting": os.environ.get("SETTING"), "other": os.environ.get("OTHER_SETTING")}
    if action == "raise":
        raise ValueError("handler failed")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(3)
    return {"echo": event, "request_id": context.aws_request_id}
"""


@pytest.fixture
def worker(tmp_path: Path) -> Any:
    (tmp_path / "app.py").write_text(HANDLER)
    function = FunctionWorker(
        "TestFunction", tmp_path, "app.lambda_handler", {"SETTING": "mine"}, timeout=1.0
    )
    yield function
    function.stop()


def test_worker_runs_the_handler_with_only_its_own_environment(
    worker: FunctionWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_SETTING", "leaked")
    assert worker.invoke({"action": "env"}) == {"setting": "mine", "other": None}


def test_handler_error_is_reported_as_a_function_error(worker: FunctionWorker) -> None:
    with pytest.raises(InvocationError) as raised:
        worker.invoke({"action": "raise"})
    assert raised.value.kind == "handler_error"
    assert "handler failed" in raised.value.detail
    # the instance survives a handled error
    assert worker.invoke({"n": 1})["echo"] == {"n": 1}


def test_timeout_kills_the_instance_and_the_next_call_gets_a_new_one(
    worker: FunctionWorker,
) -> None:
    with pytest.raises(InvocationError) as raised:
        worker.invoke({"action": "sleep", "seconds": 5})
    assert raised.value.kind == "timeout"
    assert worker.invoke({"n": 2})["echo"] == {"n": 2}


def test_crash_is_reported_and_the_instance_restarted(worker: FunctionWorker) -> None:
    with pytest.raises(InvocationError) as raised:
        worker.invoke({"action": "exit"})
    assert raised.value.kind == "crash"
    assert worker.invoke({"n": 3})["echo"] == {"n": 3}


def test_handler_that_fails_to_import_is_an_init_error(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise ImportError('missing dependency')\n")
    function = FunctionWorker("Broken", tmp_path, "app.lambda_handler", {}, timeout=1.0)
    with pytest.raises(InvocationError) as raised:
        function.invoke({})
    assert raised.value.kind == "init_error"


# ------------------------------------------------------------------ pollers


MESSAGES = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "{}"} for i in range(3)]


def test_partial_batch_response_keeps_only_the_failed_records() -> None:
    done = settle_batch(MESSAGES, {"batchItemFailures": [{"itemIdentifier": "m1"}]}, True)
    assert [m["MessageId"] for m in done] == ["m0", "m2"]


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}])
def test_empty_response_means_every_record_succeeded(response: Any) -> None:
    assert settle_batch(MESSAGES, response, True) == MESSAGES


def test_unknown_item_identifier_fails_the_whole_batch_as_lambda_does() -> None:
    assert settle_batch(MESSAGES, {"batchItemFailures": [{"itemIdentifier": "zz"}]}, True) == []


def test_without_report_batch_item_failures_a_returned_value_deletes_all() -> None:
    assert (
        settle_batch(MESSAGES, {"batchItemFailures": [{"itemIdentifier": "m1"}]}, False) == MESSAGES
    )


class FailingConsumer:
    """A consumer that fails every record whose body says so, recording what it saw."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]}
                for r in event["Records"]
                if json.loads(r["body"]).get("fail")
            ]
        }


def test_failed_record_is_retried_then_redriven_to_the_dlq(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # Visibility 0 makes a failed record visible again at once (no waiting in tests).
        queue = sqs.create_queue(
            QueueName="source",
            Attributes={
                "VisibilityTimeout": "0",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}
                ),
            },
        )["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"fail": True}))
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"fail": False}))
        consumer = FailingConsumer()
        poller = SqsPoller(sqs, queue, "source", consumer, 10, True, wait_seconds=0)  # type: ignore[arg-type]
        # When the mapping polls until the queue is empty
        for _ in range(10):
            poller.poll_once()
        # Then the good record was processed once and deleted; the bad one was tried
        # maxReceiveCount times and now waits in the DLQ
        bodies = [json.loads(r["body"]) for e in consumer.events for r in e["Records"]]
        assert bodies.count({"fail": False}) == 1
        assert bodies.count({"fail": True}) == 3
        record = consumer.events[0]["Records"][0]
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].endswith(":source")
        dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        assert [json.loads(m["Body"]) for m in dead] == [{"fail": True}]


def test_redrive_moves_dlq_messages_back_with_their_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stripe_everflow_cli.redrive import redrive

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="PostbackDLQ")["QueueUrl"]
        source = sqs.create_queue(QueueName="PostbackQueue")["QueueUrl"]
        for n in range(13):
            sqs.send_message(
                QueueUrl=dlq,
                MessageBody=json.dumps({"n": n}),
                MessageAttributes={"job_key": {"DataType": "String", "StringValue": f"k{n}"}},
            )
        assert redrive(sqs, dlq, source, limit=3) == 3
        assert redrive(sqs, dlq, source) == 10
        moved = []
        while batch := sqs.receive_message(
            QueueUrl=source, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            for message in batch:
                moved.append(
                    (
                        json.loads(message["Body"])["n"],
                        message["MessageAttributes"]["job_key"]["StringValue"],
                    )
                )
                sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
        assert sorted(moved) == [(n, f"k{n}") for n in range(13)]
        assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
