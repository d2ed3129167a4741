"""`stripe-everflow doctor`: is everything the bridge depends on set up right? Read-only,
run it any time; one line per check — ✓ good, ✗ a problem (and how to fix it), ?
could not be verified (and where to look), · for information. Exits 1 when a check
found a problem.

* The stack: the secret is complete (an account with its signing secret, the email
  hash key, each account's Stripe key, the Everflow key), the queues and their DLQs
  (a message in a DLQ is a problem), the oldest message's age and the alarms in
  alarm (deployed stacks, from CloudWatch), the last event handled.
* Everflow (Network API, with the secret's key): the key works; the offer exists and
  is active; the rebill event is on the offer and allows duplicates; email
  attribution on with the rebill event as its Associated Event (when
  EverflowEmailAttribution is on); the offer's tracking domain is the one the stack
  posts to, on the stack's network; a verification token configured exactly when
  the advertiser requires one. Read from ``GET /v1/networks/offers/{id}`` with its
  relationships (payout_revenue, advertiser, tracking_domain) — field names from
  developers.everflow.io/api-reference/get-networksoffer and the Offers guide's
  fields (developers.everflow.io/docs/network/offers). A setting the answer does
  not carry is reported "could not verify", with where to look in Everflow.
* Stripe (each account's restricted key): the key works and has Read on each
  resource the bridge reads (Charges, Customers, Invoices, Checkout Sessions,
  Promotion Codes, Refunds, Disputes — the one missing is named); a webhook
  endpoint points at this stack's WebhookUrl, is enabled, subscribes every event
  type the bridge uses, with the pinned API version.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from stripe_everflow.config import DEFAULT_ALLOWED_EVENT_TYPES
from stripe_everflow_cli.targets import StackTarget, resolve_target

State = Literal["ok", "problem", "unverified", "info"]
MARKS: dict[State, str] = {"ok": "✓", "problem": "✗", "unverified": "?", "info": "·"}

# The API version of the events the bridge reads (its payloads in events/stripe/basil).
PINNED_API_VERSION = "2025-03-31.basil"
STRIPE_API_BASE = "https://api.stripe.com"
EVERFLOW_API_BASE = "https://api.eflow.team"
# Each resource the matcher reads, as Stripe names the restricted key's permission,
# and a list call that needs exactly that permission.
STRIPE_READS: tuple[tuple[str, str], ...] = (
    ("Charges", "/v1/charges"),
    ("Customers", "/v1/customers"),
    ("Invoices", "/v1/invoices"),
    ("Checkout Sessions", "/v1/checkout/sessions"),
    ("Promotion Codes", "/v1/promotion_codes"),
    ("Refunds", "/v1/refunds"),
    ("Disputes", "/v1/disputes"),
)
EVERFLOW_OFFER_UI = "Everflow → Offers → (the offer) → Edit"
HTTP_TIMEOUT_SECONDS = 15

# (status, the JSON answer or None); raises ConnectionError when nothing answers.
Fetch = Callable[..., tuple[int, Any]]


@dataclass(frozen=True)
class Check:
    group: str
    state: State
    text: str
    fix: str = ""

    def line(self) -> str:
        tail = f" — {self.fix}" if self.fix else ""
        return f"{MARKS[self.state]} {self.group}: {self.text}{tail}"


def ok(group: str, text: str) -> Check:
    return Check(group, "ok", text)


def problem(group: str, text: str, fix: str) -> Check:
    return Check(group, "problem", text, fix)


def unverified(group: str, text: str, where: str) -> Check:
    return Check(group, "unverified", f"could not verify {text}", f"look in {where}")


def info(group: str, text: str) -> Check:
    return Check(group, "info", text)


def http_fetch(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    data: Any = None,
    json_body: Any = None,
) -> tuple[int, Any]:
    """One HTTP call (timeout, no retry: doctor reports what it sees)."""
    import requests

    answer = requests.request(
        method,
        url,
        headers=dict(headers),
        data=data,
        json=json_body,
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    try:
        document = answer.json()
    except ValueError:
        document = None
    return answer.status_code, document


# ---------------------------------------------------------------- the arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stripe-api-base",
        help="Stripe's API address (default: $STRIPE_API_BASE, else https://api.stripe.com)",
    )
    parser.add_argument(
        "--everflow-api-base",
        help="Everflow's Network API address (default: the stack's EverflowApiBaseUrl;"
        " the local stack's Everflow stand-in)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        choices=["stack", "everflow", "stripe"],
        help="leave out a group of checks (repeatable; default: none left out)",
    )


def run(
    args: argparse.Namespace, target: StackTarget | None = None, fetch: Fetch | None = None
) -> int:
    import os

    target = target or resolve_target(args.endpoint, args.stack, args.region)
    stripe_base = args.stripe_api_base or os.environ.get("STRIPE_API_BASE") or STRIPE_API_BASE
    checks = diagnose(
        target,
        fetch=fetch or http_fetch,
        stripe_api_base=stripe_base,
        everflow_api_base=args.everflow_api_base or everflow_base_of(target),
        skip=set(args.skip or ()),
    )
    for check in checks:
        print(check.line(), flush=True)
    problems = sum(1 for c in checks if c.state == "problem")
    doubts = sum(1 for c in checks if c.state == "unverified")
    print(
        f"{problems} problem(s), {doubts} not verifiable, "
        f"{sum(1 for c in checks if c.state == 'ok')} good"
    )
    return 1 if problems else 0


def everflow_base_of(target: StackTarget) -> str:
    if target.local and target.local_urls.get("everflow_url"):
        return target.local_urls["everflow_url"]
    return target.parameters.get("EverflowApiBaseUrl") or EVERFLOW_API_BASE


def diagnose(
    target: StackTarget,
    *,
    fetch: Fetch,
    stripe_api_base: str,
    everflow_api_base: str,
    skip: set[str] | None = None,
    now: float | None = None,
) -> list[Check]:
    skip = skip or set()
    checks: list[Check] = []
    secret, secret_checks = secret_state(target)
    if "stack" not in skip:
        checks += secret_checks
        checks += stack_checks(target, now=time.time() if now is None else now)
    if "everflow" not in skip:
        checks += everflow_checks(
            target.parameters, secret, fetch=fetch, api_base=everflow_api_base
        )
    if "stripe" not in skip:
        checks += stripe_checks(
            secret,
            webhook_urls=webhook_urls(target, secret),
            fetch=fetch,
            api_base=stripe_api_base,
        )
    return checks


def webhook_urls(target: StackTarget, secret: Any) -> dict[str, str | None]:
    """Each account's webhook URL on this stack (default: WebhookUrl; others: the
    account-named route)."""
    base = target.webhook_url()
    names = list(getattr(secret, "stripe_accounts", {}) or {"default": None})
    return {
        name: (None if base is None else base if name == "default" else f"{base}/{name}")
        for name in names
    }


# ---------------------------------------------------------------- the stack


def secret_state(target: StackTarget) -> tuple[Any, list[Check]]:
    """The parsed bridge secret (None when unreadable) and the checks of it."""
    from stripe_everflow_cli.stack_access import StackAccess

    group = "secret"
    try:
        secret = StackAccess(target).bridge_secret()
    except ValueError as error:
        return None, [problem(group, str(error), "stripe-everflow setup fills it in")]
    checks = []
    accounts = secret.stripe_accounts
    if accounts:
        checks.append(
            ok(group, f"Stripe account(s) {', '.join(sorted(accounts))} with signing secrets")
        )
    else:
        checks.append(
            problem(
                group,
                "no Stripe account: the webhook answers 503 to every event",
                "run stripe-everflow setup (creates the endpoint, stores its signing secret)",
            )
        )
    if secret.email_hash_key:
        checks.append(ok(group, "email_hash_key set"))
    else:
        checks.append(problem(group, "no email_hash_key", "restore the one the stack generated"))
    for name, account in sorted(accounts.items()):
        if account.api_key:
            checks.append(ok(group, f"Stripe key of account {name} set"))
        else:
            checks.append(
                problem(
                    group,
                    f"account {name} has no Stripe api_key (customer emails cannot be read)",
                    "stripe-everflow setup --stripe-key-env VAR stores a restricted key",
                )
            )
    if secret.everflow_api_key:
        checks.append(ok(group, "everflow_api_key set"))
    else:
        checks.append(
            problem(
                group,
                "no everflow_api_key (partial refunds, restores and these checks need it)",
                "stripe-everflow setup --everflow-key-env VAR",
            )
        )
    if not secret.click_intake_token:
        checks.append(info(group, "no click_intake_token: POST /clicks answers 503"))
    return secret, checks


def stack_checks(target: StackTarget, now: float) -> list[Check]:
    from stripe_everflow_cli import status

    checks: list[Check] = []
    cloudwatch = None if target.local else target.client("cloudwatch")
    for queue in status.queue_depths(target, cloudwatch):
        waiting = queue.visible + queue.in_flight + queue.delayed
        if queue.name.endswith("DLQ"):
            source = "payment-events" if queue.name.startswith("PaymentEvents") else "postbacks"
            if waiting:
                checks.append(
                    problem(
                        "queues",
                        f"{waiting} message(s) in {queue.name}",
                        "find the cause in the function logs, then "
                        f"stripe-everflow redrive {source}",
                    )
                )
            else:
                checks.append(ok("queues", f"{queue.name} empty"))
            continue
        text = f"{queue.name}: {queue.visible} waiting, {queue.in_flight} in flight"
        limit = _age_limit(target, queue.name)
        if queue.oldest_age_seconds is not None and limit and queue.oldest_age_seconds > limit:
            checks.append(
                problem(
                    "queues",
                    f"{text}, oldest {status.ago(queue.oldest_age_seconds)} (alarm at"
                    f" {status.ago(limit)})",
                    "see the consumer's errors in its logs (Everflow down? a secret missing?)",
                )
            )
        else:
            age = (
                ""
                if queue.oldest_age_seconds is None
                else f", oldest {status.ago(queue.oldest_age_seconds)}"
            )
            checks.append(info("queues", text + age))
    if cloudwatch is not None:
        checks += alarm_checks(cloudwatch, target.outputs.get("AlarmTopicArn"))
    entries = status.ledger_entries(target)
    last = status.last_event(entries, status.parked_items(target))
    checks.append(
        info(
            "events",
            "none handled yet"
            if last is None
            else f"last handled {status.when(last.at, now)}: {last.what}",
        )
    )
    return checks


def _age_limit(target: StackTarget, queue: str) -> int | None:
    name = {
        "PaymentEventsQueue": "PaymentEventsAgeAlarmSeconds",
        "PostbackQueue": "PostbackAgeAlarmSeconds",
    }.get(queue)
    value = target.parameters.get(name or "")
    return int(value) if value and value.isdigit() else None


def alarm_checks(cloudwatch: Any, topic_arn: str | None) -> list[Check]:
    """The stack's alarms (those notifying its topic) that are in alarm."""
    firing = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(StateValue="ALARM"):
        for alarm in page.get("MetricAlarms", []):
            if topic_arn is None or topic_arn in alarm.get("AlarmActions", []):
                firing.append(str(alarm["AlarmName"]))
    if not firing:
        return [ok("alarms", "none in alarm")]
    return [
        problem(
            "alarms",
            f"{name} is in alarm",
            "see the dashboard (output DashboardUrl) and README, Deploy: Alarms",
        )
        for name in sorted(firing)
    ]


# ---------------------------------------------------------------- Everflow


def _entries(offer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    relationship = offer.get("relationship") or {}
    payout = relationship.get("payout_revenue") or {}
    entries = payout.get("entries") if isinstance(payout, Mapping) else payout
    return [e for e in entries or [] if isinstance(e, Mapping)]


def _flag(document: Mapping[str, Any], name: str) -> bool | None:
    value = document.get(name)
    return value if isinstance(value, bool) else None


def everflow_checks(
    parameters: Mapping[str, str], secret: Any, *, fetch: Fetch, api_base: str
) -> list[Check]:
    group = "everflow"
    key = getattr(secret, "everflow_api_key", None)
    offer_id = parameters.get("EverflowOfferId", "")
    if not key:
        return [
            unverified(
                group,
                "the offer (no everflow_api_key in the secret)",
                f"{EVERFLOW_OFFER_UI}, or add the key: stripe-everflow setup",
            )
        ]
    try:
        status_code, offer = fetch(
            "GET",
            f"{api_base.rstrip('/')}/v1/networks/offers/{offer_id}?relationship=all",
            headers={"X-Eflow-API-Key": key},
        )
    except OSError:
        return [problem(group, f"nothing answers at {api_base}", "check EverflowApiBaseUrl")]
    if status_code in (401, 403):
        return [
            problem(
                group,
                f"the API key is refused ({status_code})",
                "create a Network API key in Everflow → Control Center → Security → API Keys,"
                " then stripe-everflow setup",
            )
        ]
    if status_code == 404:
        return [
            problem(
                group,
                f"offer {offer_id} does not exist on this network",
                "set EverflowOfferId to the offer's id (Everflow → Offers)",
            )
        ]
    if status_code != 200 or not isinstance(offer, Mapping):
        return [problem(group, f"the offer could not be read (HTTP {status_code})", "retry later")]
    checks = [ok(group, "API key works")]
    relationship = offer.get("relationship")
    domain_id = offer.get("network_tracking_domain_id")
    if domain_id and not (
        isinstance(relationship, Mapping) and relationship.get("tracking_domain")
    ):
        # Not among the relationships answered: the tracking domain by its own id.
        try:
            domain_status, domain = fetch(
                "GET",
                f"{api_base.rstrip('/')}/v1/networks/domains/tracking/{domain_id}",
                headers={"X-Eflow-API-Key": key},
            )
        except OSError:
            domain_status, domain = 0, None
        if domain_status == 200 and isinstance(domain, Mapping):
            offer = {
                **offer,
                "relationship": {**(relationship or {}), "tracking_domain": dict(domain)},
            }
    checks += offer_checks(parameters, secret, offer)
    return checks


def offer_checks(
    parameters: Mapping[str, str], secret: Any, offer: Mapping[str, Any]
) -> list[Check]:
    group = "everflow"
    offer_id = parameters.get("EverflowOfferId", "")
    name = f"offer {offer_id}" + (f" ({offer['name']})" if offer.get("name") else "")
    checks: list[Check] = []
    status_value = offer.get("offer_status")
    if status_value == "active":
        checks.append(ok(group, f"{name} exists and is active"))
    elif status_value is None:
        checks.append(unverified(group, f"that {name} is active", EVERFLOW_OFFER_UI))
    else:
        checks.append(
            problem(group, f"{name} is {status_value}", f"set it active in {EVERFLOW_OFFER_UI}")
        )
    network = parameters.get("EverflowNetworkId")
    if offer.get("network_id") is not None and network and str(offer["network_id"]) != network:
        checks.append(
            problem(
                group,
                f"{name} belongs to network {offer['network_id']}, the stack posts to {network}",
                "set EverflowNetworkId to the network id of your Everflow account",
            )
        )
    checks += event_checks(parameters, offer)
    checks.append(tracking_domain_check(parameters, offer))
    checks.append(verification_token_check(secret, offer))
    return checks


def event_checks(parameters: Mapping[str, str], offer: Mapping[str, Any]) -> list[Check]:
    group = "everflow"
    entries = _entries(offer)
    advertiser_event = parameters.get("EverflowAdvertiserEventId", "")
    event_id = parameters.get("EverflowEventId", "")
    email_mode = parameters.get("EverflowEmailAttribution", "").lower() in (
        "true",
        "on",
        "yes",
        "1",
    )
    checks: list[Check] = []
    if advertiser_event and advertiser_event != "0":
        event = next(
            (e for e in entries if str(e.get("global_advertiser_event_id")) == advertiser_event),
            None,
        )
        label = f"advertiser event {advertiser_event}"
    else:
        event = next(
            (e for e in entries if str(e.get("network_offer_payout_revenue_id")) == event_id),
            None,
        )
        label = f"event {event_id}"
    if not entries:
        return [
            unverified(
                group,
                f"the rebill {label} and its duplicates setting (no payout_revenue in the answer)",
                f"{EVERFLOW_OFFER_UI} → Payout/Revenue",
            )
        ]
    if event is None:
        known = ", ".join(
            f"{e.get('network_offer_payout_revenue_id')} {e.get('entry_name', '')}".strip()
            for e in entries
            if not e.get("is_default")
        )
        return [
            problem(
                group,
                f"{label} is not an event of the offer (its events: {known or 'none'})",
                "add a Rebill event in "
                f"{EVERFLOW_OFFER_UI} → Payout/Revenue, and set EverflowEventId to its id",
            )
        ]
    title = f"{label} ({event.get('entry_name') or 'unnamed'})"
    checks.append(ok(group, f"{title} is on the offer"))
    duplicates = _flag(event, "is_allow_duplicate_conversion")
    if duplicates is True:
        checks.append(ok(group, f"{title} allows duplicate events (rebills are accepted)"))
    elif duplicates is False:
        checks.append(
            problem(
                group,
                f"{title} does not allow duplicate events: every rebill after the first is refused",
                f'turn on "Allow Duplicate Events" on that event in {EVERFLOW_OFFER_UI}'
                " → Payout/Revenue",
            )
        )
    else:
        checks.append(
            unverified(
                group,
                f'"Allow Duplicate Events" on {title}',
                f"{EVERFLOW_OFFER_UI} → Payout/Revenue → the event",
            )
        )
    if event.get("is_postback_disabled") is True:
        checks.append(
            problem(
                group,
                f"{title} has postbacks disabled",
                f"enable postbacks on that event in {EVERFLOW_OFFER_UI}",
            )
        )
    if email_mode:
        checks += email_attribution_checks(offer, event, title)
    return checks


def email_attribution_checks(
    offer: Mapping[str, Any], event: Mapping[str, Any], title: str
) -> list[Check]:
    group = "everflow"
    where = f"{EVERFLOW_OFFER_UI} → Attribution → Email Attribution"
    checks: list[Check] = []
    enabled = _flag(offer, "is_email_attribution_enabled")
    if enabled is None:
        checks.append(unverified(group, "that Email Attribution is on", where))
    elif not enabled:
        checks.append(
            problem(
                group,
                "Email Attribution is off (EverflowEmailAttribution needs it)",
                f"turn it on in {where}",
            )
        )
    else:
        checks.append(ok(group, "Email Attribution is on"))
    associated = _flag(event, "is_email_attribution_default_event")
    if associated is None:
        checks.append(unverified(group, f"that {title} is the Associated Event", where))
    elif not associated:
        checks.append(
            problem(
                group,
                f"{title} is not Email Attribution's Associated Event",
                f"choose it as the Associated Event in {where}",
            )
        )
    else:
        checks.append(ok(group, f"{title} is Email Attribution's Associated Event"))
    return checks


def tracking_domain_check(parameters: Mapping[str, str], offer: Mapping[str, Any]) -> Check:
    group = "everflow"
    expected = parameters.get("EverflowTrackingDomain", "").strip().lower()
    domain = (offer.get("relationship") or {}).get("tracking_domain")
    where = "Everflow → Control Center → Tracking Domains, and the offer's Tracking Domain"
    if not isinstance(domain, Mapping) or not domain.get("url"):
        return unverified(group, f"that {expected} is the offer's tracking domain", where)
    url = str(domain["url"])
    host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
    if host != expected:
        return problem(
            group,
            f"the stack posts to {expected or '(none)'}, the offer's tracking domain is {host}",
            f"set EverflowTrackingDomain={host} (or give the offer that domain in {where})",
        )
    network = parameters.get("EverflowNetworkId")
    owner = domain.get("network_id")
    if owner is not None and network and str(owner) != network:
        return problem(
            group,
            f"tracking domain {host} belongs to network {owner}, not {network}",
            "set EverflowNetworkId to your network's id",
        )
    if domain.get("domain_status") not in (None, "active"):
        return problem(
            group, f"tracking domain {host} is {domain['domain_status']}", f"activate it in {where}"
        )
    return ok(group, f"tracking domain {host} is the offer's, on network {owner or network}")


def verification_token_check(secret: Any, offer: Mapping[str, Any]) -> Check:
    group = "everflow"
    advertiser = (offer.get("relationship") or {}).get("advertiser")
    where = "Everflow → Advertisers → (the advertiser) → Edit → Verification Token"
    ours = getattr(secret, "everflow_verification_token", None)
    if not isinstance(advertiser, Mapping) or "verification_token" not in advertiser:
        return unverified(group, "whether the advertiser requires a verification token", where)
    theirs = advertiser.get("verification_token") or ""
    if theirs and not ours:
        return problem(
            group,
            "the advertiser requires a verification token and the secret has none:"
            " every postback is refused",
            "stripe-everflow setup --verification-token-env VAR",
        )
    if theirs and ours != theirs:
        return problem(
            group,
            "the secret's verification token is not the advertiser's",
            f"copy it from {where} (stripe-everflow setup --verification-token-env VAR)",
        )
    if not theirs and ours:
        return problem(
            group,
            "the secret has a verification token the advertiser does not use",
            "remove everflow_verification_token, or turn tokens on in " + where,
        )
    return ok(
        group,
        "verification token configured" if theirs else "no verification token required, none set",
    )


# ---------------------------------------------------------------- Stripe


def _stripe_error(document: Any) -> str:
    if isinstance(document, Mapping) and isinstance(document.get("error"), Mapping):
        return str(document["error"].get("message") or document["error"].get("type") or "")
    return ""


def stripe_checks(
    secret: Any,
    *,
    webhook_urls: Mapping[str, str | None],
    fetch: Fetch,
    api_base: str,
) -> list[Check]:
    accounts = getattr(secret, "stripe_accounts", None) or {}
    if not accounts:
        return [
            unverified(
                "stripe",
                "the Stripe key and webhook endpoint (no account in the secret)",
                "Stripe Dashboard → Developers → Webhooks, or run stripe-everflow setup",
            )
        ]
    checks: list[Check] = []
    for name, account in sorted(accounts.items()):
        group = "stripe" if name == "default" else f"stripe {name}"
        if not account.api_key:
            checks.append(
                unverified(
                    group,
                    "the key's permissions and the webhook endpoint (no api_key)",
                    "Stripe Dashboard → Developers → API keys and Webhooks",
                )
            )
            continue
        checks += stripe_account_checks(
            group, account.api_key, webhook_urls.get(name), fetch=fetch, api_base=api_base
        )
    return checks


def stripe_account_checks(
    group: str, api_key: str, webhook_url: str | None, *, fetch: Fetch, api_base: str
) -> list[Check]:
    base = api_base.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"}
    checks: list[Check] = []
    missing = []
    for permission, path in STRIPE_READS:
        try:
            status_code, document = fetch("GET", f"{base}{path}?limit=1", headers=headers)
        except OSError:
            return [problem(group, f"nothing answers at {api_base}", "check --stripe-api-base")]
        if status_code == 401:
            return [
                problem(
                    group,
                    "Stripe refuses the key (invalid or revoked)",
                    "create a restricted key (README, Configuration) and run stripe-everflow setup",
                )
            ]
        if status_code == 403:
            missing.append(permission)
        elif status_code != 200:
            checks.append(
                problem(
                    group,
                    f"Stripe answered {status_code} to {path}: {_stripe_error(document)}",
                    "retry later",
                )
            )
    if missing:
        checks.append(
            problem(
                group,
                f"the key lacks Read on {', '.join(missing)}",
                "Stripe Dashboard → Developers → API keys → the restricted key → Edit:"
                f" give it Read on {', '.join(missing)}",
            )
        )
    else:
        checks.append(ok(group, "key works and reads every resource the bridge needs"))
    checks += endpoint_checks(group, headers, webhook_url, fetch=fetch, base=base)
    return checks


def list_endpoints(
    headers: Mapping[str, str], *, fetch: Fetch, base: str
) -> tuple[int, list[Mapping[str, Any]]]:
    """Every webhook endpoint of the account (paged by starting_after)."""
    endpoints: list[Mapping[str, Any]] = []
    after = ""
    while True:
        status_code, page = fetch(
            "GET", f"{base}/v1/webhook_endpoints?limit=100{after}", headers=headers
        )
        if status_code != 200 or not isinstance(page, Mapping):
            return status_code, endpoints
        data = [e for e in page.get("data", []) if isinstance(e, Mapping)]
        endpoints += data
        if not page.get("has_more") or not data:
            return 200, endpoints
        after = f"&starting_after={data[-1]['id']}"


def endpoint_checks(
    group: str,
    headers: Mapping[str, str],
    webhook_url: str | None,
    *,
    fetch: Fetch,
    base: str,
) -> list[Check]:
    where = "Stripe Dashboard → Developers → Webhooks"
    if webhook_url is None:
        return [
            unverified(group, "the webhook endpoint (the stack's WebhookUrl is unknown)", where)
        ]
    status_code, endpoints = list_endpoints(headers, fetch=fetch, base=base)
    if status_code == 403:
        return [
            unverified(
                group,
                "the webhook endpoint (the key cannot read Webhook Endpoints)",
                f"{where}, or give the key Webhook Endpoints: Read",
            )
        ]
    if status_code != 200:
        return [problem(group, f"Stripe answered {status_code} listing webhook endpoints", "retry")]
    endpoint = next((e for e in endpoints if e.get("url") == webhook_url), None)
    if endpoint is None:
        return [
            problem(
                group,
                f"no webhook endpoint points at {webhook_url}",
                "run stripe-everflow setup (it creates it)",
            )
        ]
    checks = [ok(group, f"webhook endpoint {endpoint.get('id')} points at this stack")]
    if endpoint.get("status") == "enabled":
        checks.append(ok(group, "webhook endpoint enabled"))
    else:
        checks.append(
            problem(
                group,
                f"webhook endpoint is {endpoint.get('status')}: Stripe sends it nothing",
                f"enable it in {where}",
            )
        )
    subscribed = set(endpoint.get("enabled_events") or [])
    missing = sorted(DEFAULT_ALLOWED_EVENT_TYPES - subscribed) if "*" not in subscribed else []
    if missing:
        checks.append(
            problem(
                group,
                f"webhook endpoint does not subscribe {', '.join(missing)}",
                "run stripe-everflow setup (it updates the endpoint's events)",
            )
        )
    else:
        checks.append(
            ok(
                group,
                f"webhook endpoint subscribes all {len(DEFAULT_ALLOWED_EVENT_TYPES)} event types",
            )
        )
    version = endpoint.get("api_version")
    if version == PINNED_API_VERSION:
        checks.append(ok(group, f"webhook endpoint API version {version}"))
    elif version is None:
        checks.append(
            problem(
                group,
                "webhook endpoint has no pinned API version (events follow the account's)",
                "run stripe-everflow setup (it re-creates the endpoint with"
                f" {PINNED_API_VERSION}: a version cannot be changed on an endpoint)",
            )
        )
    else:
        checks.append(
            problem(
                group,
                f"webhook endpoint API version {version}, the bridge reads {PINNED_API_VERSION}",
                "run stripe-everflow setup (it replaces the endpoint: a version cannot be changed)",
            )
        )
    return checks
