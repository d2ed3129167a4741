"""`stripe-everflow setup`: connect Stripe and Everflow to a stack, guided and
re-runnable (a second run changes nothing that is already right).

1. Reads the keys — the Stripe restricted key, the Everflow Network API key and,
   when the advertiser uses one, the verification token — from the environment
   variables named by ``--stripe-key-env``, ``--everflow-key-env`` and
   ``--verification-token-env``, else from the secret already stored, else asks
   (hidden input; never with ``--yes``). Keys are never printed, logged or taken as
   command-line values (they would stay in the shell's history).
2. Checks Everflow before saving anything: the key works, the offer, the rebill
   event and its settings, the tracking domain, the token (``doctor``'s checks). A
   problem stops setup with nothing changed.
3. Checks the Stripe key's permissions, then creates or updates the webhook endpoint
   of the stack's WebhookUrl: exactly the event types the bridge uses, the pinned API
   version, enabled. An endpoint on another API version, or one whose signing
   secret the bridge secret does not hold (Stripe shows it only at creation), is
   replaced: the new one is created, its secret stored, then the old one deleted.
4. Writes the secret (the two Secrets Manager secrets of the stack, split as the
   functions read them): the account's signing secrets — the new one first, the one
   it replaces kept while Stripe may still sign with it — its API key and livemode,
   the Everflow key and token; every other key stays as it was.

``--dry-run`` checks everything and prints what it would change, changing nothing.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stripe_everflow.config import DEFAULT_ALLOWED_EVENT_TYPES
from stripe_everflow_cli import errors
from stripe_everflow_cli.doctor import (
    PINNED_API_VERSION,
    STRIPE_API_BASE,
    Check,
    Fetch,
    everflow_base_of,
    everflow_checks,
    http_fetch,
    list_endpoints,
    stripe_account_checks,
)
from stripe_everflow_cli.errors import CliError
from stripe_everflow_cli.targets import StackTarget, resolve_target

SECRETS = ("StripeWebhookSecret", "BridgeSecret")
DRY_RUN_SECRET = "whsec_of_the_endpoint_to_create"  # noqa: S105 - never written
KEPT_WEBHOOK_SECRETS = 2  # the current one and the one it replaces, while rolling
Ask = Callable[[str], str]


@dataclass
class Plan:
    """What setup does (or, with --dry-run, would do)."""

    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def say(self, text: str) -> None:
        self.lines.append(text)
        print(text, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account", default="default", help="the Stripe account's name")
    parser.add_argument(
        "--stripe-key-env",
        default="STRIPE_API_KEY",
        help="environment variable holding the Stripe restricted key",
    )
    parser.add_argument(
        "--everflow-key-env",
        default="EVERFLOW_API_KEY",
        help="environment variable holding the Everflow Network API key",
    )
    parser.add_argument(
        "--verification-token-env",
        default="EVERFLOW_VERIFICATION_TOKEN",
        help="environment variable holding the advertiser's verification token, if it uses one",
    )
    parser.add_argument(
        "--webhook-url",
        help="where Stripe posts (default: the stack's WebhookUrl; the local stack's URL)",
    )
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
        "--dry-run", action="store_true", help="check and show what would change; change nothing"
    )
    parser.add_argument(
        "--yes", action="store_true", help="never ask: a key not in the environment is an error"
    )


def run(
    args: argparse.Namespace,
    target: StackTarget | None = None,
    fetch: Fetch | None = None,
    environ: Mapping[str, str] | None = None,
    ask: Ask | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    target = target or resolve_target(args.endpoint, args.stack, args.region)
    interactive = not args.yes and sys.stdin.isatty()
    ask = ask or (getpass.getpass if interactive else None)
    set_up(
        target,
        account=args.account,
        keys=Keys.read(args, environ, ask),
        fetch=fetch or http_fetch,
        stripe_api_base=(
            args.stripe_api_base or environ.get("STRIPE_API_BASE") or STRIPE_API_BASE
        ).rstrip("/"),
        everflow_api_base=args.everflow_api_base or everflow_base_of(target),
        webhook_url=args.webhook_url or target.webhook_url(),
        dry_run=args.dry_run,
    )
    print("next: stripe-everflow doctor" + (" (dry run: nothing changed)" if args.dry_run else ""))
    return 0


@dataclass(frozen=True)
class Keys:
    stripe: str | None
    everflow: str | None
    verification_token: str | None
    ask: Ask | None = None

    @classmethod
    def read(cls, args: argparse.Namespace, environ: Mapping[str, str], ask: Ask | None) -> Keys:
        def value(variable: str) -> str | None:
            text = environ.get(variable, "").strip()
            return text or None

        return cls(
            value(args.stripe_key_env),
            value(args.everflow_key_env),
            value(args.verification_token_env),
            ask,
        )


# ---------------------------------------------------------------- the secret


def read_documents(target: StackTarget) -> dict[str, dict[str, Any]]:
    """The two secrets' documents as stored ({} for one never set)."""
    client = target.client("secretsmanager")
    documents: dict[str, dict[str, Any]] = {}
    for logical_id in SECRETS:
        try:
            text = client.get_secret_value(SecretId=target.resource(logical_id))["SecretString"]
        except client.exceptions.ResourceNotFoundException:
            raise CliError(
                f"the stack has no {logical_id}",
                "deploy this project's template.yaml (or start the local stack)",
                errors.USAGE,
            ) from None
        try:
            document = json.loads(text or "{}")
        except ValueError:
            raise CliError(
                f"{logical_id} is not valid JSON",
                "fix it in Secrets Manager (README, Configuration), then run setup again",
                errors.NOT_JSON,
            ) from None
        documents[logical_id] = document if isinstance(document, dict) else {}
    return documents


def merged_document(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    from stripe_everflow.domain.errors import SecretUnavailableError
    from stripe_everflow.domain.secret import merge_secret_documents

    try:
        return merge_secret_documents({k: json.dumps(v) for k, v in documents.items()})
    except SecretUnavailableError as error:
        raise CliError(
            str(error), "fix the secrets (README, Configuration)", errors.USAGE
        ) from None


def updated_document(
    document: Mapping[str, Any],
    *,
    account: str,
    livemode: bool,
    webhook_secret: str | None,
    stripe_key: str,
    everflow_key: str,
    verification_token: str | None,
) -> dict[str, Any]:
    """The secret document with the account, keys and token set (all else kept)."""
    updated: dict[str, Any] = json.loads(json.dumps(document))
    accounts = updated.setdefault("stripe_accounts", {})
    entry = dict(accounts.get(account) or {})
    secrets = [s for s in entry.get("webhook_secrets") or [] if isinstance(s, str)]
    if webhook_secret is not None:
        secrets = list(dict.fromkeys([webhook_secret, *secrets]))[:KEPT_WEBHOOK_SECRETS]
    entry.update({"livemode": livemode, "webhook_secrets": secrets, "api_key": stripe_key})
    accounts[account] = entry
    updated["everflow_api_key"] = everflow_key
    if verification_token:
        updated["everflow_verification_token"] = verification_token
    return updated


def _changed_keys(before: Mapping[str, Any], after: Mapping[str, Any], path: str = "") -> list[str]:
    names = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if isinstance(old, Mapping) or isinstance(new, Mapping):
            old = old if isinstance(old, Mapping) else {}
            new = new if isinstance(new, Mapping) else {}
            names += _changed_keys(old, new, f"{path}{key}.")
        elif old != new:
            names.append(f"{path}{key}")
    return names


# ---------------------------------------------------------------- the steps


def _key(given: str | None, stored: str | None, ask: Ask | None, prompt: str, flag: str) -> str:
    if given:
        return given
    if stored:
        return stored
    if ask is not None:
        answer = ask(f"{prompt} (input hidden): ").strip()
        if answer:
            return answer
    raise CliError(
        f"no {prompt}",
        f"set it in the environment variable {flag} names (never on the command line)",
        errors.USAGE,
    )


def _stop_on(problems: list[Check], code: int, what: str) -> None:
    if problems:
        for check in problems:
            print(check.line(), flush=True)
        raise CliError(
            f"{what}: {len(problems)} problem(s) above, nothing was changed",
            "fix them and run setup again",
            code,
        )


def set_up(
    target: StackTarget,
    *,
    account: str,
    keys: Keys,
    fetch: Fetch,
    stripe_api_base: str,
    everflow_api_base: str,
    webhook_url: str | None,
    dry_run: bool,
) -> Plan:
    """Raises CliError (nothing changed) when a key or setting is refused."""
    from stripe_everflow.domain.secret import (
        ACCOUNT_NAME_PATTERN,
        parse_bridge_secret,
        split_secret_document,
    )

    if not ACCOUNT_NAME_PATTERN.match(account):
        raise errors.usage(
            f"{account!r} is not an account name", "use lowercase letters, digits, - or _"
        )
    if webhook_url is None:
        raise errors.usage(
            "the stack's WebhookUrl is unknown",
            "give --webhook-url (the local stack's URL + /stripe/webhook)",
        )
    plan = Plan()
    documents = read_documents(target)
    document = merged_document(documents)
    stored_account = (document.get("stripe_accounts") or {}).get(account) or {}
    stripe_key = _key(
        keys.stripe,
        stored_account.get("api_key"),
        keys.ask,
        "Stripe restricted key",
        "--stripe-key-env",
    )
    everflow_key = _key(
        keys.everflow,
        document.get("everflow_api_key"),
        keys.ask,
        "Everflow API key",
        "--everflow-key-env",
    )
    token = keys.verification_token or document.get("everflow_verification_token")

    # Everflow first: nothing is changed unless it is set up as the bridge needs.
    candidate = parse_bridge_secret(
        json.dumps({"everflow_api_key": everflow_key, "everflow_verification_token": token})
    )
    everflow = everflow_checks(
        target.parameters, candidate, fetch=fetch, api_base=everflow_api_base
    )
    _stop_on([c for c in everflow if c.state == "problem"], errors.EVERFLOW_REFUSED, "Everflow")
    for check in everflow:
        plan.say(check.line())

    headers = {"Authorization": f"Bearer {stripe_key}"}
    permissions = [
        c
        for c in stripe_account_checks(
            "stripe", stripe_key, None, fetch=fetch, api_base=stripe_api_base
        )
        if c.state != "unverified"
    ]
    _stop_on([c for c in permissions if c.state == "problem"], errors.STRIPE_REFUSED, "Stripe")
    for check in permissions:
        plan.say(check.line())

    known_secrets = set(stored_account.get("webhook_secrets") or [])
    new_secret, replaced = _endpoint(
        plan,
        headers,
        webhook_url,
        known_secrets,
        fetch=fetch,
        base=stripe_api_base,
        dry_run=dry_run,
    )
    livemode = "_live_" in stripe_key
    updated = updated_document(
        document,
        account=account,
        livemode=livemode,
        webhook_secret=new_secret,
        stripe_key=stripe_key,
        everflow_key=everflow_key,
        verification_token=token,
    )
    parse_bridge_secret(json.dumps(updated))  # the functions' own checks, before writing
    webhook_part, bridge_part = split_secret_document(updated)
    client = target.client("secretsmanager")
    for logical_id, part in zip(SECRETS, (webhook_part, bridge_part), strict=True):
        changed = _changed_keys(documents[logical_id], part)
        if not changed:
            plan.say(f"✓ secret: {logical_id} unchanged")
            continue
        plan.changed = True
        verb = "would update" if dry_run else "updated"
        plan.say(f"✓ secret: {verb} {logical_id} ({', '.join(changed)})")
        if not dry_run:
            client.put_secret_value(
                SecretId=target.resource(logical_id), SecretString=json.dumps(part)
            )
    if replaced is not None and not dry_run:
        status_code, _ = fetch(
            "DELETE", f"{stripe_api_base}/v1/webhook_endpoints/{replaced}", headers=headers
        )
        plan.say(
            f"✓ stripe: deleted the endpoint it replaces, {replaced}"
            if status_code == 200
            else f"? stripe: could not delete the old endpoint {replaced} ({status_code})"
            " — delete it in Stripe Dashboard → Developers → Webhooks"
        )
    return plan


def _form(webhook_url: str | None, *, creating: bool) -> list[tuple[str, str]]:
    form = [("enabled_events[]", event) for event in sorted(DEFAULT_ALLOWED_EVENT_TYPES)]
    if creating:
        assert webhook_url is not None
        form += [
            ("url", webhook_url),
            ("api_version", PINNED_API_VERSION),
            ("description", "Stripe → Everflow bridge"),
        ]
    else:
        form.append(("disabled", "false"))
    return form


def _endpoint(
    plan: Plan,
    headers: Mapping[str, str],
    webhook_url: str,
    known_secrets: set[str],
    *,
    fetch: Fetch,
    base: str,
    dry_run: bool,
) -> tuple[str | None, str | None]:
    """Create, update or keep the endpoint; returns (its new signing secret, the id of
    an endpoint it replaces)."""
    status_code, endpoints = list_endpoints(headers, fetch=fetch, base=base)
    if status_code != 200:
        raise CliError(
            f"Stripe answered {status_code} listing webhook endpoints",
            "give the key Webhook Endpoints: Write (README, Configuration)",
            errors.STRIPE_REFUSED,
        )
    existing = next((e for e in endpoints if e.get("url") == webhook_url), None)
    replaced: str | None = None
    if existing is not None:
        reason = None
        if existing.get("api_version") != PINNED_API_VERSION:
            reason = f"API version {existing.get('api_version')}, not {PINNED_API_VERSION}"
        elif not known_secrets:
            reason = (
                "its signing secret is not in the bridge secret (Stripe shows it only at creation)"
            )
        if reason is None:
            right = set(existing.get("enabled_events") or []) == DEFAULT_ALLOWED_EVENT_TYPES
            if right and existing.get("status") == "enabled":
                plan.say(f"✓ stripe: webhook endpoint {existing.get('id')} already right")
                return None, None
            plan.changed = True
            if dry_run:
                plan.say(
                    f"✓ stripe: would update webhook endpoint {existing.get('id')}"
                    " (events, enabled)"
                )
                return None, None
            status_code, answer = fetch(
                "POST",
                f"{base}/v1/webhook_endpoints/{existing['id']}",
                headers=headers,
                data=_form(None, creating=False),
            )
            _refused(status_code, answer, "updating the webhook endpoint")
            plan.say(f"✓ stripe: updated webhook endpoint {existing['id']} (events, enabled)")
            return None, None
        replaced = str(existing["id"])
        plan.say(f"· stripe: endpoint {replaced} is replaced: {reason}")
    plan.changed = True
    if dry_run:
        plan.say(f"✓ stripe: would create a webhook endpoint for {webhook_url}")
        # Stands for the signing secret Stripe would give (checked, shown by name only).
        return DRY_RUN_SECRET, replaced
    status_code, answer = fetch(
        "POST",
        f"{base}/v1/webhook_endpoints",
        headers=headers,
        data=_form(webhook_url, creating=True),
    )
    _refused(status_code, answer, "creating the webhook endpoint")
    secret = answer.get("secret") if isinstance(answer, Mapping) else None
    if not isinstance(secret, str) or not secret:
        raise CliError(
            "Stripe's answer carries no signing secret",
            "reveal it in Stripe Dashboard → Developers → Webhooks and run setup again",
            errors.STRIPE_REFUSED,
        )
    plan.say(
        f"✓ stripe: created webhook endpoint {answer.get('id')} for {webhook_url}"
        f" ({len(DEFAULT_ALLOWED_EVENT_TYPES)} event types, API {PINNED_API_VERSION})"
    )
    return secret, replaced


def _refused(status_code: int, answer: Any, doing: str) -> None:
    if status_code == 200:
        return
    message = ""
    if isinstance(answer, Mapping) and isinstance(answer.get("error"), Mapping):
        message = errors.one_line(str(answer["error"].get("message", "")))
    fix = (
        "give the key Webhook Endpoints: Write"
        if status_code == 403
        else "check the key and the URL, then run setup again"
    )
    raise CliError(f"Stripe answered {status_code} {doing}: {message}", fix, errors.STRIPE_REFUSED)
