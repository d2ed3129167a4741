"""`stripe-everflow setup` from a blank secret to a stack doctor finds all good; a second
run changes nothing; --dry-run changes nothing; a refused key or a misconfigured
offer stops it with nothing changed. Stripe is the Stripe API stand-in, answering in
process (``StripeStandIn.handle``), Everflow the offer of test_doctor's fake."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from moto import mock_aws

from stripe_everflow.config import DEFAULT_ALLOWED_EVENT_TYPES
from stripe_everflow_cli import errors, setup_stack
from stripe_everflow_cli.doctor import PINNED_API_VERSION, diagnose
from stripe_everflow_cli.errors import CliError
from stripe_everflow_cli.stripe_standin import StripeStandIn
from tests.unit.cli.test_doctor import EVERFLOW, PARAMETERS, STRIPE, FakeApis
from tests.unit.cli.test_status import WEBHOOK_URL, DeployedStack, deployed_stack_of

STRIPE_KEY = "rk_test_bridge_setup"
EVERFLOW_KEY = "ef-key"
ENVIRON = {"STRIPE_API_KEY": STRIPE_KEY, "EVERFLOW_API_KEY": EVERFLOW_KEY}
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


class Apis:
    """Stripe (the stand-in, in process) and Everflow (the fake offer)."""

    def __init__(self) -> None:
        self.stripe = StripeStandIn()
        self.stripe.add_key(STRIPE_KEY, READS | {"webhook_endpoints": "write"})
        self.everflow = FakeApis(everflow_key=EVERFLOW_KEY)

    def __call__(
        self, method: str, url: str, *, headers: Mapping[str, str], data: Any = None, **_: Any
    ) -> tuple[int, Any]:
        if url.startswith(EVERFLOW):
            return self.everflow(method, url, headers=headers)
        split = urlsplit(url)
        status, payload, _extra = self.stripe.handle(
            method,
            split.path,
            parse_qsl(split.query),
            list(data or []),
            {k.lower(): v for k, v in headers.items()},
        )
        return status, payload

    def endpoints(self) -> list[dict[str, Any]]:
        status, page = self("GET", f"{STRIPE}/v1/webhook_endpoints?limit=100", headers=_auth())
        assert status == 200
        return list(page["data"])


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {STRIPE_KEY}"}


@pytest.fixture
def blank(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedStack]:
    """A stack just deployed: the webhook's secret holds its email hash key, no more."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield deployed_stack_of({"email_hash_key": "generated-at-deploy"}, PARAMETERS)


@pytest.fixture
def apis() -> Apis:
    return Apis()


def _args(**changes: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    setup_stack.add_arguments(parser)
    args = parser.parse_args(
        ["--yes", "--stripe-api-base", STRIPE, "--everflow-api-base", EVERFLOW]
    )
    for name, value in changes.items():
        setattr(args, name, value)
    return args


def _setup(
    stack: DeployedStack, apis: Apis, environ: Mapping[str, str] = ENVIRON, **changes: Any
) -> int:
    return setup_stack.run(_args(**changes), stack.target, apis, environ)


def _doctor_problems(stack: DeployedStack, apis: Apis) -> list[str]:
    checks = diagnose(stack.target, fetch=apis, stripe_api_base=STRIPE, everflow_api_base=EVERFLOW)
    return [c.line() for c in checks if c.state != "ok" and c.state != "info"]


def test_setup_takes_a_blank_secret_to_all_good(blank: DeployedStack, apis: Apis) -> None:
    # Given a stack just deployed, and doctor finding it unset
    assert _doctor_problems(blank, apis)
    # When setup runs with the two keys in the environment
    assert _setup(blank, apis) == 0
    # Then Stripe has one endpoint for the stack, on the pinned version, every type
    [endpoint] = apis.endpoints()
    assert endpoint["url"] == WEBHOOK_URL
    assert endpoint["api_version"] == PINNED_API_VERSION
    assert set(endpoint["enabled_events"]) == DEFAULT_ALLOWED_EVENT_TYPES
    # and its signing secret is in the webhook's secret, the keys in the bridge secret
    webhook = blank.secret("StripeWebhookSecret")
    assert webhook["email_hash_key"] == "generated-at-deploy"
    assert webhook["stripe_accounts"]["default"] == {
        "livemode": False,
        "webhook_secrets": [apis.stripe.webhook_secrets[endpoint["id"]]],
    }
    bridge = blank.secret("BridgeSecret")
    assert bridge["stripe_accounts"] == {"default": {"api_key": STRIPE_KEY}}
    assert bridge["everflow_api_key"] == EVERFLOW_KEY
    # and doctor finds nothing wrong (the stack's own info lines aside)
    assert _doctor_problems(blank, apis) == []


def test_a_second_run_changes_nothing(
    blank: DeployedStack, apis: Apis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _setup(blank, apis) == 0
    before = (blank.secret("StripeWebhookSecret"), blank.secret("BridgeSecret"), apis.endpoints())
    capsys.readouterr()
    assert _setup(blank, apis, environ={}) == 0  # the keys stored are used
    out = capsys.readouterr().out
    assert "already right" in out
    assert "StripeWebhookSecret unchanged" in out and "BridgeSecret unchanged" in out
    after = (blank.secret("StripeWebhookSecret"), blank.secret("BridgeSecret"), apis.endpoints())
    assert after == before


def test_dry_run_changes_nothing_and_says_what_it_would(
    blank: DeployedStack, apis: Apis, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (blank.secret("StripeWebhookSecret"), blank.secret("BridgeSecret"))
    assert _setup(blank, apis, dry_run=True) == 0
    out = capsys.readouterr().out
    assert f"would create a webhook endpoint for {WEBHOOK_URL}" in out
    assert "would update StripeWebhookSecret (stripe_accounts.default.livemode" in out
    assert "would update BridgeSecret (everflow_api_key, stripe_accounts.default.api_key)" in out
    assert (blank.secret("StripeWebhookSecret"), blank.secret("BridgeSecret")) == before
    assert apis.endpoints() == []


def test_setup_never_prints_a_key_or_signing_secret(
    blank: DeployedStack, apis: Apis, capsys: pytest.CaptureFixture[str]
) -> None:
    _setup(blank, apis)
    out, err = capsys.readouterr()
    signing = next(iter(apis.stripe.webhook_secrets.values()))
    for secret in (STRIPE_KEY, EVERFLOW_KEY, signing):
        assert secret not in out + err


def test_a_key_missing_a_permission_stops_setup_with_nothing_changed(
    blank: DeployedStack, apis: Apis, capsys: pytest.CaptureFixture[str]
) -> None:
    apis.stripe.add_key(STRIPE_KEY, READS | {"webhook_endpoints": "write", "disputes": "none"})
    before = (blank.secret("StripeWebhookSecret"), blank.secret("BridgeSecret"))
    with pytest.raises(CliError) as refused:
        _setup(blank, apis)
    assert refused.value.code == errors.STRIPE_REFUSED
    assert "the key lacks Read on Disputes" in capsys.readouterr().out
    assert (blank.secret("StripeWebhookSecret"), blank.secret("BridgeSecret")) == before
    assert apis.endpoints() == []


def test_an_offer_refusing_duplicate_rebills_stops_setup_with_nothing_changed(
    blank: DeployedStack, apis: Apis, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = apis.everflow.offer["relationship"]["payout_revenue"]["entries"]
    next(e for e in entries if e["network_offer_payout_revenue_id"] == 2)[
        "is_allow_duplicate_conversion"
    ] = False
    with pytest.raises(CliError) as refused:
        _setup(blank, apis)
    assert refused.value.code == errors.EVERFLOW_REFUSED
    assert "does not allow duplicate events" in capsys.readouterr().out
    assert apis.endpoints() == [] and blank.secret("BridgeSecret") == {}


def test_an_endpoint_missing_a_type_is_updated_in_place(blank: DeployedStack, apis: Apis) -> None:
    assert _setup(blank, apis) == 0
    [endpoint] = apis.endpoints()
    apis(
        "POST",
        f"{STRIPE}/v1/webhook_endpoints/{endpoint['id']}",
        headers=_auth(),
        data=[("enabled_events[]", "invoice.paid"), ("disabled", "true")],
    )
    assert any("does not subscribe" in p for p in _doctor_problems(blank, apis))
    secrets_before = blank.secret("StripeWebhookSecret")
    assert _setup(blank, apis) == 0
    [again] = apis.endpoints()
    assert again["id"] == endpoint["id"] and again["status"] == "enabled"
    assert set(again["enabled_events"]) == DEFAULT_ALLOWED_EVENT_TYPES
    assert blank.secret("StripeWebhookSecret") == secrets_before


def test_an_endpoint_on_another_api_version_is_replaced_keeping_the_old_secret(
    blank: DeployedStack, apis: Apis
) -> None:
    # Given an endpoint made by hand on an older API version, its secret stored
    status, old = apis(
        "POST",
        f"{STRIPE}/v1/webhook_endpoints",
        headers=_auth(),
        data=[("url", WEBHOOK_URL), ("enabled_events[]", "*"), ("api_version", "2024-06-20")],
    )
    assert status == 200
    document = blank.secret("StripeWebhookSecret")
    document["stripe_accounts"] = {
        "default": {"livemode": False, "webhook_secrets": [old["secret"]]}
    }
    blank.put_secret("StripeWebhookSecret", document)
    # When setup runs
    assert _setup(blank, apis) == 0
    # Then a new endpoint replaces it, and both signing secrets are kept while rolling
    [new] = apis.endpoints()
    assert new["id"] != old["id"] and new["api_version"] == PINNED_API_VERSION
    secrets = blank.secret("StripeWebhookSecret")["stripe_accounts"]["default"]["webhook_secrets"]
    assert secrets == [apis.stripe.webhook_secrets[new["id"]], old["secret"]]


def test_no_key_and_no_prompt_is_one_line_naming_the_variable(
    blank: DeployedStack, apis: Apis
) -> None:
    with pytest.raises(CliError) as refused:
        _setup(blank, apis, environ={"EVERFLOW_API_KEY": EVERFLOW_KEY})
    assert refused.value.code == errors.USAGE
    assert "no Stripe restricted key" in str(refused.value)
    assert "--stripe-key-env" in str(refused.value)


def test_keys_may_be_typed_at_the_prompt(blank: DeployedStack, apis: Apis) -> None:
    typed = {"Stripe restricted key": STRIPE_KEY, "Everflow API key": EVERFLOW_KEY}
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return next(v for k, v in typed.items() if prompt.startswith(k))

    args = _args(yes=False)
    assert setup_stack.run(args, blank.target, apis, {}, ask) == 0
    assert len(asked) == 2 and all("hidden" in p for p in asked)
    assert blank.secret("BridgeSecret")["everflow_api_key"] == EVERFLOW_KEY
