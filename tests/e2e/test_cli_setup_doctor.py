"""The README's walkthrough, as a user runs it: the local stack started with a blank
secret, the Stripe API stand-in beside it; `doctor` finds what is missing, `setup`
fills it in, `doctor` then finds all good and `status` shows the stack — each a
command of its own, finding the local stack by itself. And the errors a user meets
first, each one line and its exit code."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stripe_everflow_cli import errors
from stripe_everflow_cli.stripe_standin import StripeStandIn
from tests.e2e.test_local_stack import RunningStack, start_stack
from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.e2e

EVENT = PROJECT_ROOT / "events" / "stripe" / "basil" / "invoice.paid.first.json"

STRIPE_KEY = "rk_test_walkthrough"
READS = {
    r: "read"
    for r in (
        "charges",
        "customers",
        "invoices",
        "checkout_sessions",
        "promotion_codes",
        "refunds",
        "disputes",
    )
}


@dataclass
class Walkthrough:
    stack: RunningStack
    stripe: StripeStandIn
    env: dict[str, str]

    def cli(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stripe_everflow_cli.main", *argv],
            cwd=PROJECT_ROOT,
            env={**os.environ, **self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    state = tmp_path_factory.mktemp("state")
    config = tmp_path_factory.mktemp("config") / "local.config.json"
    # A blank secret, as a stack just deployed has it.
    config.write_text(json.dumps({"secret": {"email_hash_key": "generated-at-deploy"}}))
    env = {"STRIPE_EVERFLOW_STATE_DIR": str(state)}
    stack = start_stack(tmp_path_factory.mktemp("stack"), "--config", str(config), env=env)
    stripe = StripeStandIn().start()
    stripe.add_key(STRIPE_KEY, READS | {"webhook_endpoints": "write"})
    env["STRIPE_API_BASE"] = stripe.url
    try:
        yield Walkthrough(stack, stripe, env)
    finally:
        stripe.stop()
        stack.process.send_signal(signal.SIGTERM)
        stack.process.wait(timeout=20)


def test_setup_then_doctor_take_a_blank_secret_to_all_good(walkthrough: Walkthrough) -> None:
    # Given the stack just started: doctor finds the secret incomplete
    before = walkthrough.cli("doctor")
    assert before.returncode == errors.PROBLEM, before.stdout + before.stderr
    assert "✗ secret: no Stripe account" in before.stdout

    # When setup runs with the keys in the environment
    done = walkthrough.cli(
        "setup", "--yes", STRIPE_API_KEY=STRIPE_KEY, EVERFLOW_API_KEY="local-everflow-key"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "created webhook endpoint" in done.stdout
    assert STRIPE_KEY not in done.stdout + done.stderr

    # Then doctor finds every check good
    after = walkthrough.cli("doctor")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "✗" not in after.stdout and "?" not in after.stdout.replace("0 not verifiable", "")
    assert "✓ stripe: webhook endpoint subscribes all" in after.stdout
    assert "✓ everflow: event 2 (Rebill) allows duplicate events" in after.stdout

    # and a second setup changes nothing
    again = walkthrough.cli("setup", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already right" in again.stdout and "BridgeSecret unchanged" in again.stdout
    assert len(walkthrough.stripe.webhook_secrets) == 1


def test_status_shows_the_local_stack(walkthrough: Walkthrough) -> None:
    shown = walkthrough.cli("status", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["stack"] == "local"
    assert [q["name"] for q in document["queues"]] == [
        "PaymentEventsQueue",
        "PaymentEventsDLQ",
        "PostbackQueue",
        "PostbackDLQ",
    ]
    table = walkthrough.cli("status", "--endpoint", walkthrough.stack.aws_endpoint)
    assert table.returncode == 0 and "parked:" in table.stdout


# ---------------------------------------------------------------- errors, as users meet them


def _cli(*argv: str, cwd: Path = PROJECT_ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs the CLI; a variable given as "" is left out of its environment."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v != ""}
    return subprocess.run(
        [sys.executable, "-m", "stripe_everflow_cli.main", *argv],
        cwd=cwd,
        env=merged,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_each_error_is_one_line_with_its_exit_code_never_a_traceback(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{_free_port()}"
    not_json = tmp_path / "event.json"
    not_json.write_text("{", encoding="utf-8")
    cases = [
        (["send", "missing.json"], {}, PROJECT_ROOT, errors.MISSING_FILE, "does not exist"),
        (["send", str(not_json)], {}, PROJECT_ROOT, errors.NOT_JSON, "is not valid JSON"),
        (["local", "--port", "0"], {}, tmp_path, errors.OUTSIDE_PROJECT, "run from the project"),
        (
            ["send", str(EVENT), "--url", f"{down}/stripe/webhook"],
            {},
            PROJECT_ROOT,
            errors.SERVER_DOWN,
            "nothing answers at",
        ),
        (["status", "--endpoint", down], {}, PROJECT_ROOT, errors.SERVER_DOWN, "nothing answers"),
        (
            ["status"],
            {"STRIPE_EVERFLOW_STATE_DIR": str(tmp_path)},
            PROJECT_ROOT,
            errors.USAGE,
            "no local stack running",
        ),
        (
            ["doctor", "--stack", "bridge", "--region", "us-east-1"],
            {
                "AWS_ACCESS_KEY_ID": "",
                "AWS_SECRET_ACCESS_KEY": "",
                "AWS_PROFILE": "",
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true",
            },
            PROJECT_ROOT,
            errors.NO_AWS_CREDENTIALS,
            "no AWS credentials found",
        ),
    ]
    for argv, env, cwd, code, named in cases:
        done = _cli(*argv, cwd=cwd, **env)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code, (argv, done.stderr)
        assert len(lines) == 1 and "Traceback" not in done.stderr, (argv, done.stderr)
        assert named in lines[0] and " — " in lines[0], (argv, lines[0])


def test_a_busy_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("local", "--port", str(port))
    assert done.returncode == errors.PORT_BUSY
    assert f"port {port} (--port) is already in use" in done.stderr


def test_version(tmp_path: Path) -> None:
    done = _cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("stripe-everflow ")
