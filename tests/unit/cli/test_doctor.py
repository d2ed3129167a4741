"""`stripe-everflow doctor`: each ✗ is shown by breaking one thing of a setup that is
otherwise all ✓ — the stack (moto, from template.yaml), Everflow's offer (the
stand-in's offer document, Everflow's field names) and Stripe's answers (a fake
answering as Stripe's API does)."""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from moto import mock_aws

from stripe_everflow.config import DEFAULT_ALLOWED_EVENT_TYPES
from stripe_everflow_cli import doctor
from stripe_everflow_cli.doctor import PINNED_API_VERSION, Check, diagnose
from stripe_everflow_cli.everflow_standin import (
    default_network_offer,
    default_tracking_domains,
)
from stripe_everflow_cli.localconfig import DEFAULT_LOCAL_PARAMETERS
from tests.support import bridge_secret
from tests.unit.cli.test_status import WEBHOOK_URL, DeployedStack, deployed_stack_of

STRIPE = "https://stripe.test"
EVERFLOW = "https://everflow.test"
API_KEY = "rk_test_doctor"


@dataclass
class FakeApis:
    """Everflow's offer and Stripe's answers, as ``doctor.Fetch``."""

    offer: dict[str, Any] = field(default_factory=default_network_offer)
    everflow_key: str = "ef-key"
    stripe_key: str = API_KEY
    refused: set[str] = field(default_factory=set)  # Stripe paths answered 403
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(
        self, method: str, url: str, *, headers: Mapping[str, str], **_: Any
    ) -> tuple[int, Any]:
        self.calls.append((method, url))
        split = urlsplit(url)
        if url.startswith(EVERFLOW):
            if headers.get("X-Eflow-API-Key") != self.everflow_key:
                return 401, {"error": "Unauthorized"}
            if split.path == f"/v1/networks/offers/{self.offer['network_offer_id']}":
                return 200, self.offer
            domain_id = split.path.removeprefix("/v1/networks/domains/tracking/")
            if domain_id in default_tracking_domains():
                return 200, default_tracking_domains()[domain_id]
            return 404, {"error": "not found"}
        if headers.get("Authorization") != f"Bearer {self.stripe_key}":
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
        if split.path in self.refused:
            return 403, {"error": {"type": "invalid_request_error", "message": "permissions"}}
        if split.path == "/v1/webhook_endpoints":
            after = parse_qs(split.query).get("starting_after", [""])[0]
            start = next((i + 1 for i, e in enumerate(self.endpoints) if e["id"] == after), 0)
            page = self.endpoints[start : start + 1]  # one a page: the paging is exercised
            more = start + 1 < len(self.endpoints)
            return 200, {"object": "list", "data": page, "has_more": more}
        return 200, {"object": "list", "data": [], "has_more": False}


def good_endpoint(**changes: Any) -> dict[str, Any]:
    return {
        "id": "we_bridge",
        "object": "webhook_endpoint",
        "url": WEBHOOK_URL,
        "status": "enabled",
        "enabled_events": sorted(DEFAULT_ALLOWED_EVENT_TYPES),
        "api_version": PINNED_API_VERSION,
    } | changes


def complete_secret() -> dict[str, Any]:
    secret = bridge_secret(everflow_api_key="ef-key", click_intake_token="t")
    secret["stripe_accounts"] = {
        "default": secret["stripe_accounts"]["default"] | {"api_key": API_KEY}
    }
    return secret


PARAMETERS = dict(DEFAULT_LOCAL_PARAMETERS) | {"EverflowEmailAttribution": "true"}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedStack]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        made = deployed_stack_of(complete_secret(), PARAMETERS)
        yield made


@pytest.fixture
def apis() -> FakeApis:
    fake = FakeApis()
    fake.endpoints = [
        good_endpoint(id="we_other", url="https://elsewhere.example/hook"),
        good_endpoint(),
    ]
    return fake


def _diagnose(stack: DeployedStack, apis: FakeApis) -> list[Check]:
    return diagnose(stack.target, fetch=apis, stripe_api_base=STRIPE, everflow_api_base=EVERFLOW)


def _problems(checks: list[Check]) -> list[str]:
    return [c.line() for c in checks if c.state == "problem"]


def test_a_complete_setup_is_all_good(stack: DeployedStack, apis: FakeApis) -> None:
    checks = _diagnose(stack, apis)
    assert _problems(checks) == []
    assert [c.line() for c in checks if c.state == "unverified"] == []
    lines = "\n".join(c.line() for c in checks)
    assert "✓ everflow: event 2 (Rebill) allows duplicate events" in lines
    assert "✓ stripe: webhook endpoint subscribes all" in lines
    assert "✓ everflow: Email Attribution is on" in lines
    # every check is one line
    assert all("\n" not in c.line() for c in checks)


def test_doctor_command_exits_0_when_all_good_and_1_on_a_problem(
    stack: DeployedStack, apis: FakeApis, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(
        endpoint=None,
        stack="bridge",
        region=None,
        stripe_api_base=STRIPE,
        everflow_api_base=EVERFLOW,
        skip=None,
    )
    assert doctor.run(args, stack.target, apis) == 0
    stack.send("PostbackDLQ")
    assert doctor.run(args, stack.target, apis) == 1
    out = capsys.readouterr().out
    assert "✗ queues: 1 message(s) in PostbackDLQ — " in out
    assert "stripe-everflow redrive postbacks" in out


def _event(offer: dict[str, Any], event_id: int = 2) -> dict[str, Any]:
    entries = offer["relationship"]["payout_revenue"]["entries"]
    return next(e for e in entries if e["network_offer_payout_revenue_id"] == event_id)


def test_an_offer_whose_rebill_event_refuses_duplicates_is_named(
    stack: DeployedStack, apis: FakeApis
) -> None:
    _event(apis.offer)["is_allow_duplicate_conversion"] = False
    [line] = _problems(_diagnose(stack, apis))
    assert "event 2 (Rebill) does not allow duplicate events" in line
    assert 'turn on "Allow Duplicate Events"' in line


def test_a_setting_the_answer_does_not_carry_is_not_a_silent_tick(
    stack: DeployedStack, apis: FakeApis
) -> None:
    del _event(apis.offer)["is_allow_duplicate_conversion"]
    del apis.offer["is_email_attribution_enabled"]
    checks = _diagnose(stack, apis)
    doubts = [c.line() for c in checks if c.state == "unverified"]
    assert any(
        'could not verify "Allow Duplicate Events"' in d and "look in Everflow →" in d
        for d in doubts
    )
    assert any("could not verify that Email Attribution is on" in d for d in doubts)
    assert _problems(checks) == []


def test_a_wrong_tracking_domain_is_named_with_the_one_to_use(
    stack: DeployedStack, apis: FakeApis
) -> None:
    apis.offer["relationship"]["tracking_domain"] = {
        "network_tracking_domain_id": 1,
        "network_id": 1,
        "url": "https://trk.advertiser.example",
        "domain_status": "active",
    }
    [line] = _problems(_diagnose(stack, apis))
    assert "the stack posts to tracking.example.local" in line
    assert "set EverflowTrackingDomain=trk.advertiser.example" in line


def test_an_event_not_on_the_offer_lists_the_offers_events(
    stack: DeployedStack, apis: FakeApis
) -> None:
    _event(apis.offer)["network_offer_payout_revenue_id"] = 7
    [line] = _problems(_diagnose(stack, apis))
    assert "event 2 is not an event of the offer (its events: 7 Rebill)" in line


@pytest.mark.parametrize(
    ("field_name", "value", "named"),
    [
        ("is_email_attribution_enabled", False, "Email Attribution is off"),
        ("offer_status", "paused", "is paused"),
    ],
)
def test_offer_settings_the_bridge_needs_are_named(
    stack: DeployedStack, apis: FakeApis, field_name: str, value: Any, named: str
) -> None:
    apis.offer[field_name] = value
    [line] = _problems(_diagnose(stack, apis))
    assert named in line


def test_rebill_event_not_associated_with_email_attribution_is_named(
    stack: DeployedStack, apis: FakeApis
) -> None:
    _event(apis.offer)["is_email_attribution_default_event"] = False
    [line] = _problems(_diagnose(stack, apis))
    assert "is not Email Attribution's Associated Event" in line


def test_a_verification_token_the_advertiser_requires_is_named(
    stack: DeployedStack, apis: FakeApis
) -> None:
    apis.offer["relationship"]["advertiser"]["verification_token"] = "tok_123"
    [line] = _problems(_diagnose(stack, apis))
    assert "requires a verification token and the secret has none" in line


def test_an_everflow_key_refused_is_named(stack: DeployedStack, apis: FakeApis) -> None:
    apis.everflow_key = "another"
    [line] = _problems(_diagnose(stack, apis))
    assert "✗ everflow: the API key is refused (401)" in line


def test_a_key_missing_a_permission_names_the_permission(
    stack: DeployedStack, apis: FakeApis
) -> None:
    apis.refused = {"/v1/promotion_codes", "/v1/disputes"}
    [line] = _problems(_diagnose(stack, apis))
    assert "the key lacks Read on Promotion Codes, Disputes" in line
    assert "give it Read on Promotion Codes, Disputes" in line


def test_an_invalid_stripe_key_is_named(stack: DeployedStack, apis: FakeApis) -> None:
    apis.stripe_key = "rk_test_other"
    [line] = _problems(_diagnose(stack, apis))
    assert "Stripe refuses the key" in line


def test_an_endpoint_missing_an_event_type_names_the_type(
    stack: DeployedStack, apis: FakeApis
) -> None:
    apis.endpoints[1]["enabled_events"].remove("refund.failed")
    [line] = _problems(_diagnose(stack, apis))
    assert "webhook endpoint does not subscribe refund.failed" in line
    assert "stripe-everflow setup" in line


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"status": "disabled"}, "webhook endpoint is disabled"),
        ({"api_version": "2024-06-20"}, "API version 2024-06-20, the bridge reads"),
        ({"url": "https://old-stack.example/stripe/webhook"}, "no webhook endpoint points at"),
    ],
)
def test_an_endpoint_disabled_on_another_version_or_elsewhere_is_named(
    stack: DeployedStack, apis: FakeApis, changes: dict[str, Any], named: str
) -> None:
    apis.endpoints[1].update(changes)
    [line] = _problems(_diagnose(stack, apis))
    assert named in line


def test_a_blank_secret_says_to_run_setup(stack: DeployedStack, apis: FakeApis) -> None:
    webhook = stack.secret("StripeWebhookSecret")
    stack.put_secret("StripeWebhookSecret", {"email_hash_key": webhook["email_hash_key"]})
    stack.put_secret("BridgeSecret", {})
    checks = _diagnose(stack, apis)
    problems = _problems(checks)
    assert any("no Stripe account" in p and "stripe-everflow setup" in p for p in problems)
    assert any("no everflow_api_key" in p for p in problems)
    doubts = [c.line() for c in checks if c.state == "unverified"]
    assert any("no everflow_api_key in the secret" in d for d in doubts)
    # nothing was asked of Everflow or Stripe without their keys
    assert apis.calls == []


def test_doctor_never_prints_a_key(
    stack: DeployedStack, apis: FakeApis, capsys: pytest.CaptureFixture[str]
) -> None:
    apis.refused = {"/v1/charges"}
    args = argparse.Namespace(
        endpoint=None, stack="b", region=None, stripe_api_base=STRIPE,
        everflow_api_base=EVERFLOW, skip=None,
    )  # fmt: skip
    doctor.run(args, stack.target, apis)
    out = capsys.readouterr().out
    secret = json.dumps(complete_secret())
    for key in (API_KEY, "ef-key", "whsec_"):
        assert key in secret and key not in out


def test_the_offer_document_is_not_changed_by_the_checks(
    stack: DeployedStack, apis: FakeApis
) -> None:
    before = copy.deepcopy(apis.offer)
    _diagnose(stack, apis)
    assert apis.offer == before
    assert all(method == "GET" for method, _ in apis.calls)
