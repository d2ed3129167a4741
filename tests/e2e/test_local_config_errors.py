"""`stripe-everflow local` with a broken local.config.json, as a user runs it: it
refuses to start with one line naming the bad key — never "ready" with settings that
fail every event in the function logs, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import PROJECT_ROOT, bridge_secret

pytestmark = pytest.mark.e2e


def _secret_with_account_key(**changes: Any) -> dict[str, Any]:
    secret = bridge_secret()
    secret["stripe_accounts"]["default"].update(changes)
    return secret


BROKEN_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    (
        "misspelled parameter",
        {"parameters": {"AtributionPolicy": "last-touch"}},
        "AtributionPolicy",
    ),
    ("parameters as a list", {"parameters": ["AttributionPolicy", "last-touch"]}, "parameters"),
    ("parameters null", {"parameters": None}, "parameters"),
    ("bad AttributionPolicy", {"parameters": {"AttributionPolicy": "first"}}, "AttributionPolicy"),
    (
        "target rules not JSON",
        {"parameters": {"EverflowTargetRules": "[{price: 1}"}},
        "EverflowTargetRules",
    ),
    ("negative window", {"parameters": {"AttributionWindowDays": "-3"}}, "AttributionWindowDays"),
    (
        "misspelled secret key",
        {"secret": bridge_secret(email_hash_keys="k")},
        "email_hash_keys",
    ),
    (
        "misspelled account key",
        {"secret": _secret_with_account_key(webhook_secret=["whsec_x"])},
        "webhook_secret",
    ),
]


@pytest.mark.parametrize(
    ("case", "config", "named"), BROKEN_CONFIGS, ids=[c[0] for c in BROKEN_CONFIGS]
)
def test_broken_config_is_refused_in_one_line_naming_the_key(
    tmp_path: Path, case: str, config: dict[str, Any], named: str
) -> None:
    # Given a local.config.json with one thing wrong
    path = tmp_path / "local.config.json"
    path.write_text(json.dumps(config))
    ready = tmp_path / "ready.json"
    # When the user starts the local stack with it
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_everflow_cli.main",
            "local",
            "--port",
            "0",
            "--config",
            str(path),
            "--ready-file",
            str(ready),
            "--log-file",
            str(tmp_path / "functions.log"),
        ],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    started = ready.exists()
    if process.poll() is None:
        process.kill()
    out, err = process.communicate(timeout=30)
    # Then it never became ready, and said what is wrong in one line, naming the key
    assert not started, f"the stack started with a broken config:\n{out}"
    assert process.returncode == 2, out + err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stripe-everflow local: ") and named in lines[0]
