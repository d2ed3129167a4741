"""A local stand-in for Stripe's API, on 127.0.0.1: what the bridge, ``setup``,
``doctor`` and the history commands ask Stripe, answered from objects a test (or the
local stack) put in it.

Point the stripe library at it (``stripe.StripeClient(key, base_addresses={"api":
url})``; the bridge: ``STRIPE_API_BASE=url``). It answers:

* ``/v1/webhook_endpoints`` — create (``url``, ``enabled_events``, ``api_version``,
  ``description``, ``metadata``; the answer carries the signing ``secret`` whsec_…,
  only at creation), list, retrieve, update (``url``, ``enabled_events``,
  ``disabled``, ``description``, ``metadata``), delete;
* list and retrieve of customers, invoices, charges, refunds, disputes, Checkout
  Sessions (``/v1/checkout/sessions``, filter ``payment_intent``…), invoice payments
  (filters ``invoice``, ``payment[payment_intent]``, ``payment[type]``), promotion
  codes, payment intents and events (filters ``type`` — ``*`` as a wildcard —,
  ``types[]``);
* Stripe's list shape and pagination: ``object: "list"``, ``data`` newest first,
  ``has_more``, ``url``; ``limit`` (default 10, 1 to 100), ``starting_after``,
  ``ending_before``, ``created[gte|gt|lte|lt]`` (or ``created=`` a timestamp);
  ``expand[]`` on any id the stand-in holds (``discounts.promotion_code``,
  ``data.customer``, ``latest_charge``…);
* both API shapes, by the ``Stripe-Version`` header the library sends (else the
  account's default, ``api_version``): from ``2025-03-31.basil`` on, Invoice has no
  ``charge``/``payment_intent``/``paid``/``discount``/``subscription`` and Charge and
  PaymentIntent no ``invoice`` (the link is the InvoicePayment); before it, those
  fields are there, filled from the invoice payments, charges and discounts held when
  the object itself does not carry them, and Invoice loses ``parent``,
  ``total_taxes``, ``total_pretax_credit_amounts`` and ``amount_overpaid``. Line
  items are answered as stored. Events are answered as stored (Stripe renders an
  event's ``data.object`` at the event's own ``api_version``).

Keys: with none registered every ``sk_…``/``rk_…`` key is accepted with full access
(the local stack); once keys are registered (``add_key``), an unknown key answers
401, and a restricted key (``rk_…`` with permissions such as ``{"customers":
"read", "webhook_endpoints": "write"}``; names are the resources above or Stripe's
own, ``customer``, ``webhook``…) without the permission a call needs answers 403 in
Stripe's words: ``The provided key 'rk_test_***…' does not have the required
permissions for this endpoint on account 'acct_…'. Having the 'rak_customer_read'
permission would allow this request to continue.`` (GET needs read; POST and DELETE
need write; write includes read.) Missing key: 401.

Faults: ``script([...])`` queues answers for the next API requests (optionally only
those under a ``path`` prefix): ``{"status": 429, "retry_after": 2}``,
``{"status": 500}``, ``{"status": 503, "should_retry": true}``, ``{"delay": 0.5}``,
``"times": N`` to repeat one. A 429 carries Stripe's ``rate_limit`` error and a
``Retry-After`` header; ``should_retry`` adds ``Stripe-Should-Retry`` (stripe-python
retries a 409, a 5xx, or an answer saying ``Stripe-Should-Retry: true`` up to
``max_network_retries``; it does not read ``Retry-After`` itself and does not retry a
plain 429, so the caller honours it). ``rate_limits`` (off unless set) answers 429
past Stripe's basic limits per second: live mode 100 reads and 100 writes, test mode
25 and 25 (``RATE_LIMITS``).

Seeding: ``add(resource, **fields)`` starts from Stripe's published example of the
object (``openapi/fixtures3.json``, kept below as ``STRIPE_EXAMPLES``) and sets the
fields given — a field the example does not have is refused, except the pre-basil
links; ``put`` / ``put_many`` store complete objects as given (the fast path: 20,000
objects in well under a second; objects are kept sorted by ``created`` and indexed on
the fields lists filter by, so a page costs its own size, not the collection's).
``add_event(type, object)`` wraps an object in an Event. The stand-in never changes
a stored object in place (an update stores a new one), so objects may share parts.

Every API request is recorded (method, path, query, parsed parameters, form body,
Authorization, key, Stripe-Version, status). Control it over HTTP (the local stack,
manual tries) or from Python (tests):

* ``GET|DELETE /__standin/requests`` — what it received / forget it;
* ``POST /__standin/script`` — answers as above (a JSON list);
* ``POST /__standin/keys`` — ``{"rk_test_…": {"customers": "read"}, "sk_test_…":
  null}``; ``DELETE /__standin/keys`` — back to accepting any key;
* ``POST /__standin/objects/{resource}`` — a JSON list of objects, made from Stripe's
  example (``?raw=1``: stored as given); ``GET /__standin/objects/{resource}`` —
  what it holds;
* ``POST /__standin/events`` — ``[{"type": "invoice.paid", "object": {…}}]``;
* ``POST /__standin/seed`` — a seed document (below); ``POST /__standin/reset`` —
  forget everything;
* ``POST /__standin/settings`` — ``{"api_version": "2024-06-20", "rate_limits":
  {"live": 100, "test": 25} | null}``;
* ``GET /__standin/webhook_secrets`` — each endpoint's signing secret.

A seed document (``stripe-everflow stripe-standin --seed FILE``)::

    {"api_version": "2025-03-31.basil",
     "keys": {"rk_test_bridge": {"customers": "read", "invoices": "read"}},
     "objects": {"customers": [{"id": "cus_1", "email": "jenny@example.com"}]},
     "events": [{"type": "invoice.paid", "object": {...}}]}

Stripe's documentation this follows:
https://docs.stripe.com/api/pagination (limit 1-100, default 10; starting_after,
ending_before; newest first), https://docs.stripe.com/pagination,
https://docs.stripe.com/api/expanding_objects,
https://docs.stripe.com/api/errors (the error object: type, code, message, param),
https://docs.stripe.com/error-codes (``rate_limit``, ``resource_missing``),
https://docs.stripe.com/rate-limits (live 100, sandbox 25 operations per second),
https://docs.stripe.com/keys (restricted keys; GET needs read, POST and DELETE write),
https://docs.stripe.com/api/webhook_endpoints (the object; ``secret`` only returned
at creation; ``status`` enabled or disabled), https://docs.stripe.com/api/versioning,
https://docs.stripe.com/changelog/basil/2025-03-31/add-support-for-multiple-partial-payments-on-invoices
and the restricted-key refusal as Stripe words it (quoted in
github.com/stripe/stripe-node/issues/2246).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

Json = dict[str, Any]

ACCOUNT_ID = "acct_1QbridgeStandIn00"
DEFAULT_API_VERSION = "2025-03-31.basil"
# The first API version where Invoice and Charge no longer link directly.
BASIL = "2025-03-31"
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
# Stripe's basic rate limiter, operations per second (reads and writes apart).
RATE_LIMITS = {"live": 100, "test": 25}
RATE_LIMIT_MESSAGE = (
    "Too many requests hit the API too quickly. "
    "We recommend an exponential backoff of your requests."
)


# --------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives, its object name, id prefix, the restricted-key
    permission it needs (``rak_<permission>_read|write``) and what its list filters on
    (query name → the object's field, dotted)."""

    name: str
    path: str
    object: str
    prefix: str
    permission: str
    filters: Mapping[str, str] = field(default_factory=dict)
    created_filter: bool = True
    routed: bool = True


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "webhook_endpoints",
        "/v1/webhook_endpoints",
        "webhook_endpoint",
        "we_",
        "webhook",
        created_filter=False,
    ),
    Resource("customers", "/v1/customers", "customer", "cus_", "customer", {"email": "email"}),
    Resource(
        "invoices",
        "/v1/invoices",
        "invoice",
        "in_",
        "invoice",
        {"customer": "customer", "status": "status", "collection_method": "collection_method"},
    ),
    Resource(
        "charges",
        "/v1/charges",
        "charge",
        "ch_",
        "charge",
        {"customer": "customer", "payment_intent": "payment_intent"},
    ),
    Resource(
        "refunds",
        "/v1/refunds",
        "refund",
        "re_",
        "charge",  # Stripe's restricted keys put refunds under charges
        {"charge": "charge", "payment_intent": "payment_intent"},
    ),
    Resource(
        "disputes",
        "/v1/disputes",
        "dispute",
        "dp_",
        "dispute",
        {"charge": "charge", "payment_intent": "payment_intent"},
    ),
    Resource(
        "checkout_sessions",
        "/v1/checkout/sessions",
        "checkout.session",
        "cs_test_",
        "checkout_session",
        {
            "payment_intent": "payment_intent",
            "customer": "customer",
            "subscription": "subscription",
            "status": "status",
            "payment_link": "payment_link",
            "customer_details.email": "customer_details.email",
        },
    ),
    Resource(
        "invoice_payments",
        "/v1/invoice_payments",
        "invoice_payment",
        "inpay_",
        "invoice",
        {
            "invoice": "invoice",
            "payment.payment_intent": "payment.payment_intent",
            "payment.type": "payment.type",
            "status": "status",
        },
    ),
    Resource(
        "promotion_codes",
        "/v1/promotion_codes",
        "promotion_code",
        "promo_",
        "promotion_code",
        {"code": "code", "customer": "customer", "active": "active"},
    ),
    Resource(
        "payment_intents",
        "/v1/payment_intents",
        "payment_intent",
        "pi_",
        "payment_intent",
        {"customer": "customer"},
    ),
    Resource("events", "/v1/events", "event", "evt_", "event"),
    # Discounts cannot be fetched by id (Stripe): held for expanding invoices' discounts.
    Resource("discounts", "", "discount", "di_", "invoice", routed=False),
)
RESOURCE_BY_NAME = {r.name: r for r in RESOURCES}
RESOURCE_BY_PATH = {r.path: r for r in RESOURCES if r.routed}
# Other names tests and seed files may use for a resource.
RESOURCE_ALIASES = {
    "checkout.sessions": "checkout_sessions",
    **{r.object: r.name for r in RESOURCES},
}

# Fields only API versions before basil have (build_events.py adds the same ones).
LEGACY_ONLY: Mapping[str, frozenset[str]] = {
    "invoices": frozenset(
        {
            "application_fee_amount",
            "charge",
            "discount",
            "paid",
            "paid_out_of_band",
            "payment_intent",
            "quote",
            "subscription",
            "subscription_details",
            "tax",
            "total_tax_amounts",
            "transfer_data",
        }
    ),
    "charges": frozenset({"invoice"}),
    "payment_intents": frozenset({"invoice"}),
}
# Fields only basil and later have.
BASIL_ONLY: Mapping[str, frozenset[str]] = {
    "invoices": frozenset(
        {"parent", "total_taxes", "total_pretax_credit_amounts", "amount_overpaid"}
    ),
}
AUTOMATIC_TAX_BASIL_ONLY = ("disabled_reason", "provider")


def is_legacy(api_version: str) -> bool:
    """True for API versions before basil (``2024-06-20``, ``2024-09-30.acacia``…)."""
    return api_version[:10] < BASIL


_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")


class StripeApiError(Exception):
    """An answer in Stripe's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})
        self.error: Json = {"message": message, "type": type}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param

    def payload(self) -> Json:
        return {"error": self.error}


def _missing(resource: Resource, object_id: str, param: str = "id") -> StripeApiError:
    return StripeApiError(
        404,
        f"No such {resource.object.replace('checkout.session', 'checkout session')}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def _unrecognized(method: str, path: str) -> StripeApiError:
    return StripeApiError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
    )


def _mask(key: str) -> str:
    """A key as Stripe prints it in errors: its prefix, stars, its last characters."""
    head = key[:8] if key.count("_") >= 2 else key[:3]
    tail = key[-6:] if len(key) > 20 else ""
    return f"{head}{'*' * max(4, len(key) - len(head) - len(tail))}{tail}"


# --------------------------------------------------------------------- parameters


def parse_params(pairs: Iterable[tuple[str, str]]) -> Json:
    """Stripe's form encoding, as the library writes it, back to structure:
    ``expand[0]=a`` → ``{"expand": ["a"]}``, ``payment[type]=x`` →
    ``{"payment": {"type": "x"}}``, ``types[]=a`` → a list."""
    root: Json = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + (re.findall(r"([^\[\]]*)\]", "[" + rest) if rest else [])
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if part == "" or (part.isdigit() and int(part) >= len(node)):
                    node.append(value if last else {})
                    node = node[-1]
                    continue
                node = node[int(part)] if part.isdigit() else node
                continue
            if last:
                node[part] = value
                break
            nxt = parts[i + 1]
            default: Any = [] if nxt == "" or nxt.isdigit() else {}
            if not isinstance(node.get(part), list | dict):
                node[part] = default
            node = node[part]
    return root


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _get(obj: Mapping[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _index_key(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return [value[k] for k in sorted(value, key=lambda k: int(k) if k.isdigit() else 0)]
    return [value]


def _integer(params: Mapping[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise StripeApiError(400, f"Invalid integer: {raw}", param=name) from None


# --------------------------------------------------------------------- storage


class Collection:
    """One resource's objects: by id, in ``created`` order (ties: insertion order),
    and indexed on the fields lists filter by (built when first asked, then kept up)."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.objects: dict[str, Json] = {}
        self._order: list[tuple[int, int, str]] = []
        self._keys: dict[str, tuple[int, int, str]] = {}
        self._sorted = True
        self._seq = 0
        self._indexes: dict[str, dict[str, set[str]]] = {}

    def __len__(self) -> int:
        return len(self.objects)

    def put(self, obj: Json) -> None:
        object_id = obj["id"]
        created = int(obj.get("created") or 0)
        old = self.objects.get(object_id)
        if old is not None:
            self._unindex(old)
            key = self._keys[object_id]
            if key[0] != created:
                self._order.remove(key)
                self._append(object_id, created)
        else:
            self._append(object_id, created)
        self.objects[object_id] = obj
        for path, index in self._indexes.items():
            value = _index_key(_get(obj, path))
            if value is not None:
                index.setdefault(value, set()).add(object_id)

    def _append(self, object_id: str, created: int) -> None:
        key = (created, self._seq, object_id)
        self._seq += 1
        if self._order and key < self._order[-1]:
            self._sorted = False
        self._order.append(key)
        self._keys[object_id] = key

    def _unindex(self, obj: Json) -> None:
        for path, index in self._indexes.items():
            value = _index_key(_get(obj, path))
            if value is not None:
                index.get(value, set()).discard(obj["id"])

    def delete(self, object_id: str) -> Json | None:
        obj = self.objects.pop(object_id, None)
        if obj is not None:
            self._unindex(obj)
            self._order.remove(self._keys.pop(object_id))
        return obj

    def find(self, path: str, value: str) -> list[Json]:
        """The objects whose ``path`` is ``value``, newest first."""
        ids = self._index(path).get(value, set())
        found = [self.objects[i] for i in ids]
        found.sort(key=lambda o: self._keys[o["id"]], reverse=True)
        return found

    def _index(self, path: str) -> dict[str, set[str]]:
        index = self._indexes.get(path)
        if index is None:
            index = {}
            for object_id, obj in self.objects.items():
                value = _index_key(_get(obj, path))
                if value is not None:
                    index.setdefault(value, set()).add(object_id)
            self._indexes[path] = index
        return index

    def _sort(self) -> list[tuple[int, int, str]]:
        if not self._sorted:
            self._order.sort()
            self._sorted = True
        return self._order

    def page(
        self,
        *,
        limit: int,
        created_from: int | None = None,
        created_to: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        equal: Mapping[str, set[str]] | None = None,
        match: Callable[[Json], bool] | None = None,
    ) -> tuple[list[Json], bool]:
        """One page, newest first, and whether more lie beyond it (after the page; with
        ``ending_before``, before it). ``equal``: field → accepted values (an index
        narrows the candidates); ``match``: any other condition."""
        order = self._sort()
        lo = 0 if created_from is None else bisect.bisect_left(order, (created_from,))
        hi = len(order) if created_to is None else bisect.bisect_left(order, (created_to + 1,))
        if starting_after is not None:
            hi = min(hi, bisect.bisect_left(order, self._keys[starting_after]))
        if ending_before is not None:
            lo = max(lo, bisect.bisect_left(order, self._keys[ending_before]) + 1)
        if lo >= hi:
            return [], False
        positions: Iterable[int] | None = None
        if equal:
            # The narrowest index gives the candidates when they are few; when they are
            # many, walking the range and checking each object is cheaper.
            sizes = {p: sum(len(self._index(p).get(v, ())) for v in vs) for p, vs in equal.items()}
            path = min(sizes, key=sizes.__getitem__)
            if sizes[path] * 8 < hi - lo:
                index = self._index(path)
                candidates = set().union(*(index.get(v, set()) for v in equal[path]))
                found = sorted(
                    p
                    for p in (bisect.bisect_left(order, self._keys[i]) for i in candidates)
                    if lo <= p < hi
                )
                positions = found if ending_before is not None else reversed(found)
        if positions is None:
            positions = range(lo, hi) if ending_before is not None else range(hi - 1, lo - 1, -1)
        taken: list[Json] = []
        for position in positions:
            obj = self.objects[order[position][2]]
            if equal and any(_index_key(_get(obj, p)) not in v for p, v in equal.items()):
                continue
            if match is not None and not match(obj):
                continue
            taken.append(obj)
            if len(taken) > limit:
                break
        more = len(taken) > limit
        taken = taken[:limit]
        if ending_before is not None:
            taken.reverse()
        return taken, more


# --------------------------------------------------------------------- answers


@dataclass
class Answer:
    """A scripted answer: a status (429 with ``retry_after``, 5xx…), a delay, and the
    requests it applies to (``path`` prefix, ``method``)."""

    status: int = 200
    delay: float = 0.0
    retry_after: int | None = None
    should_retry: bool | None = None
    path: str = ""
    method: str = ""
    body: Json | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Answer:
        retry_after = raw.get("retry_after")
        should_retry = raw.get("should_retry")
        return cls(
            status=int(raw.get("status", 200)),
            delay=float(raw.get("delay", 0.0)),
            retry_after=None if retry_after is None else int(retry_after),
            should_retry=None if should_retry is None else bool(should_retry),
            path=str(raw.get("path", "")),
            method=str(raw.get("method", "")).upper(),
            body=raw.get("body"),
        )

    def applies_to(self, method: str, path: str) -> bool:
        return path.startswith(self.path) and (not self.method or self.method == method)

    def error(self) -> StripeApiError | None:
        """The error this answer stands for (None: answer normally, after the delay)."""
        if self.status < 400:
            return None
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if self.should_retry else "false"
        if self.status == 429:
            failure = StripeApiError(429, RATE_LIMIT_MESSAGE, code="rate_limit", headers=headers)
        elif self.status >= 500:
            failure = StripeApiError(
                self.status,
                "An unknown error occurred, please try again.",
                type="api_error",
                headers=headers,
            )
        else:
            failure = StripeApiError(
                self.status, f"stand-in answered {self.status}", headers=headers
            )
        if self.body is not None:
            failure.error = dict(self.body.get("error", self.body))
        return failure


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    params: Json
    body: list[tuple[str, str]]
    authorization: str | None
    api_key: str | None
    stripe_version: str | None
    status: int
    received_at: float

    def as_dict(self) -> Json:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "params": self.params,
            "body": self.body,
            "authorization": self.authorization,
            "api_key": self.api_key,
            "stripe_version": self.stripe_version,
            "status": self.status,
            "received_at": self.received_at,
        }


@dataclass
class ApiKey:
    secret: str
    # None: full access (sk_… or an rk_… given every permission)
    permissions: dict[str, str] | None = None

    @property
    def livemode(self) -> bool:
        return "_live_" in self.secret

    def allows(self, resource: Resource, level: str) -> bool:
        """Whether the key holds ``rak_<permission>_<level>`` (a permission given by a
        resource's name counts for every resource under the same permission: invoices
        for invoice payments, refunds for charges)."""
        if self.permissions is None:
            return True
        granted = "none"
        for name, value in self.permissions.items():
            spec = RESOURCE_BY_NAME.get(RESOURCE_ALIASES.get(name, name))
            stem = spec.permission if spec is not None else name.removeprefix("rak_")
            if stem == resource.permission and value != "none":
                granted = "write" if "write" in (granted, value) else value
        return granted == "write" or (granted == "read" and level == "read")


# --------------------------------------------------------------------- the stand-in


@dataclass
class StripeStandIn:
    port: int = 0
    api_version: str = DEFAULT_API_VERSION
    # Per-second limits by mode (``RATE_LIMITS``); None: no limit.
    rate_limits: dict[str, int] | None = None
    clock: Callable[[], float] = time.monotonic
    received: list[ReceivedRequest] = field(default_factory=list)
    webhook_secrets: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._collections = {r.name: Collection(r) for r in RESOURCES}
        self._where: dict[str, Collection] = {}
        self._deleted: dict[str, Resource] = {}
        self._keys: dict[str, ApiKey] = {}
        self._script: deque[Answer] = deque()
        self._window: dict[tuple[str, str], deque[float]] = {}
        self._idempotent: dict[tuple[str, str], tuple[int, Json]] = {}
        self._counter = 0

    # ------------------------------------------------------------ control

    def add_key(self, secret: str, permissions: Mapping[str, str] | None = None) -> None:
        """Register a key (from then on only registered keys are accepted).
        ``permissions``: resource → "read" | "write" | "none" for a restricted key;
        None gives full access."""
        if permissions is not None:
            bad = {k: v for k, v in permissions.items() if v not in ("read", "write", "none")}
            if bad:
                raise ValueError(f"permissions must be read, write or none: {bad}")
        with self._lock:
            self._keys[secret] = ApiKey(secret, None if permissions is None else dict(permissions))

    def clear_keys(self) -> None:
        """Accept any key again, with full access."""
        with self._lock:
            self._keys.clear()

    def script(self, answers: Iterable[Mapping[str, Any]]) -> None:
        """Answers for the next API requests, in order (``times`` repeats one)."""
        with self._lock:
            for raw in answers:
                for _ in range(int(raw.get("times", 1))):
                    self._script.append(Answer.from_dict(raw))

    def requests(self, path_prefix: str = "/") -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.received if r.path.startswith(path_prefix)]

    def clear(self) -> None:
        """Forget the requests received (the objects stay)."""
        with self._lock:
            self.received.clear()

    def reset(self) -> None:
        """Forget everything: objects, keys, scripted answers, requests."""
        with self._lock:
            self._init_state()
            self.received.clear()
            self.webhook_secrets.clear()

    def collection(self, resource: str) -> Collection:
        return self._collections[_resource(resource).name]

    def get(self, resource: str, object_id: str) -> Json | None:
        """The object as stored (not to be changed in place)."""
        with self._lock:
            return self.collection(resource).objects.get(object_id)

    def example(self, name: str) -> Json:
        """A fresh copy of Stripe's published example object (``customer``, ``invoice``…)."""
        return json.loads(_EXAMPLE_TEXT[name])  # type: ignore[no-any-return]

    def _new_id(self, resource: Resource) -> str:
        self._counter += 1
        return f"{resource.prefix}1QstandIn{self._counter:010d}"

    def add(self, resource: str, obj: Mapping[str, Any] | None = None, **fields: Any) -> Json:
        """An object made from Stripe's example with ``obj``/``fields`` set; a field the
        example does not have is refused (ValueError), except the pre-basil links. An
        id and ``created`` (now) are given when missing. Returns the stored object (its
        own copy of the example: safe to change before storing it again with ``put``)."""
        spec = _resource(resource)
        made = self._make(spec, {**(obj or {}), **fields}, self.example(spec.object))
        with self._lock:
            self._store(spec, made)
        return made

    def add_many(self, resource: str, items: Iterable[Mapping[str, Any]]) -> list[Json]:
        """``add`` for many, fast: the objects share the example's nested parts (the
        stand-in never changes a stored object in place), so set nested fields through
        ``items``, never on the objects returned."""
        spec = _resource(resource)
        shared = _SHARED_EXAMPLES.setdefault(spec.object, self.example(spec.object))
        made = [self._make(spec, dict(item), dict(shared)) for item in items]
        with self._lock:
            for obj in made:
                self._store(spec, obj)
        return made

    def _make(self, spec: Resource, values: Json, base: Json) -> Json:
        unknown = values.keys() - base.keys() - LEGACY_ONLY.get(spec.name, frozenset())
        if unknown:
            raise ValueError(
                f"{spec.name}: {', '.join(sorted(unknown))} not in Stripe's example "
                f"{spec.object} (use put() to store an object as it is)"
            )
        base.update(values)
        if "id" not in values:
            with self._lock:
                base["id"] = self._new_id(spec)
        if "created" not in values:
            base["created"] = int(time.time())
        return base

    def put(self, resource: str, obj: Json) -> Json:
        """Store ``obj`` as it is (it needs an ``id``)."""
        spec = _resource(resource)
        if not isinstance(obj.get("id"), str):
            raise ValueError(f"{spec.name}: an object to store needs an id")
        with self._lock:
            self._store(spec, obj)
        return obj

    def put_many(self, resource: str, objects: Iterable[Json]) -> int:
        """Store complete objects as they are: the fast path for thousands."""
        spec = _resource(resource)
        count = 0
        with self._lock:
            for obj in objects:
                if not isinstance(obj.get("id"), str):
                    raise ValueError(f"{spec.name}: an object to store needs an id")
                self._store(spec, obj)
                count += 1
        return count

    def delete(self, resource: str, object_id: str) -> bool:
        spec = _resource(resource)
        with self._lock:
            found = self._collections[spec.name].delete(object_id)
            if found is not None:
                self._where.pop(object_id, None)
                self._deleted[object_id] = spec
            return found is not None

    def add_event(
        self,
        type: str,
        obj: Json,
        *,
        created: int | None = None,
        api_version: str | None = None,
        event_id: str | None = None,
        previous_attributes: Json | None = None,
    ) -> Json:
        """An Event (Stripe's example envelope) carrying ``obj``, stored."""
        envelope = self.example("event")
        data: Json = {"object": obj}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        spec = RESOURCE_BY_NAME["events"]
        with self._lock:
            envelope.update(
                id=event_id or self._new_id(spec),
                type=type,
                created=int(time.time()) if created is None else created,
                api_version=api_version or self.api_version,
                data=data,
            )
            self._store(spec, envelope)
        return envelope

    def seed(self, document: Mapping[str, Any]) -> dict[str, int]:
        """Load a seed document (keys, api_version, objects, events): how many of each."""
        if not isinstance(document, Mapping):
            raise ValueError("a seed document is a JSON object")
        unknown = set(document) - {"api_version", "keys", "objects", "events", "rate_limits"}
        if unknown:
            raise ValueError(f"unknown seed sections: {', '.join(sorted(unknown))}")
        self.settings({k: v for k, v in document.items() if k in ("api_version", "rate_limits")})
        for secret, permissions in (document.get("keys") or {}).items():
            self.add_key(secret, permissions)
        counts: dict[str, int] = {}
        for name, items in (document.get("objects") or {}).items():
            if not isinstance(items, list):
                raise ValueError(f"objects.{name} must be a list")
            counts[_resource(name).name] = len(self.add_many(name, items))
        for item in document.get("events") or []:
            self.add_event(
                item["type"],
                item["object"],
                created=item.get("created"),
                api_version=item.get("api_version"),
                event_id=item.get("id"),
            )
            counts["events"] = counts.get("events", 0) + 1
        return counts

    def settings(self, raw: Mapping[str, Any]) -> None:
        """``api_version``: the account's default; ``rate_limits``: per-second limits by
        mode (``{"live": 100, "test": 25}``), or null for none."""
        with self._lock:
            if "api_version" in raw:
                version = str(raw["api_version"])
                if not _VERSION.fullmatch(version):
                    raise ValueError(f"api_version {version!r} is not like 2025-03-31.basil")
                self.api_version = version
            if "rate_limits" in raw:
                limits = raw["rate_limits"]
                self.rate_limits = None if limits is None else {**RATE_LIMITS, **limits}
                self._window.clear()

    def _store(self, spec: Resource, obj: Json) -> None:
        collection = self._collections[spec.name]
        collection.put(obj)
        self._where[obj["id"]] = collection
        self._deleted.pop(obj["id"], None)
        self._link_legacy(spec, obj)

    def _link_legacy(self, spec: Resource, obj: Json) -> None:
        """A pre-basil object naming its invoice's payment intent gets the InvoicePayment
        basil answers with, when none links them yet."""
        if spec.name == "invoices":
            invoice_id, intent = obj.get("id"), obj.get("payment_intent")
        elif spec.name in ("charges", "payment_intents"):
            invoice_id = obj.get("invoice")
            intent = obj.get("id") if spec.name == "payment_intents" else obj.get("payment_intent")
        else:
            return
        if not isinstance(invoice_id, str) or not isinstance(intent, str):
            return
        payments = self._collections["invoice_payments"]
        if any(
            _get(p, "payment.payment_intent") == intent
            for p in payments.find("invoice", invoice_id)
        ):
            return
        digest = hashlib.sha256(f"{invoice_id}|{intent}".encode()).hexdigest()[:14]
        payment = self.example("invoice_payment")
        invoice = self._collections["invoices"].objects.get(invoice_id) or obj
        paid = invoice.get("amount_paid") if spec.name == "invoices" else obj.get("amount")
        payment.update(
            id=f"inpay_1Qlegacy{digest}",
            invoice=invoice_id,
            payment={"type": "payment_intent", "payment_intent": intent},
            created=int(obj.get("created") or 0),
            currency=obj.get("currency") or payment["currency"],
            amount_paid=paid,
            amount_requested=paid,
            livemode=bool(obj.get("livemode")),
            status="paid",
        )
        self._store(RESOURCE_BY_NAME["invoice_payments"], payment)

    # ------------------------------------------------------------ answering

    def handle(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: list[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> tuple[int, Json, dict[str, str]]:
        """One API request: (status, JSON answer, extra headers). Recorded."""
        authorization = headers.get("authorization")
        version = headers.get("stripe-version") or self.api_version
        params = parse_params([*query, *body])
        key: str | None = None
        extra: dict[str, str] = {"Stripe-Version": version}
        try:
            key = _key_of(authorization)
            status, payload = self._answer(method, path, params, key, version, headers)
        except StripeApiError as failure:
            status, payload = failure.status, failure.payload()
            extra.update(failure.headers)
        with self._lock:
            self.received.append(
                ReceivedRequest(
                    method,
                    path,
                    query,
                    params,
                    body,
                    authorization,
                    key,
                    headers.get("stripe-version"),
                    status,
                    time.time(),
                )
            )
        return status, payload, extra

    def _answer(
        self,
        method: str,
        path: str,
        params: Json,
        key: str | None,
        version: str,
        headers: Mapping[str, str],
    ) -> tuple[int, Json]:
        api_key = self._authenticate(key)
        answer = self._scripted(method, path)
        if answer is not None:
            if answer.delay:
                time.sleep(answer.delay)
            failure = answer.error()
            if failure is not None:
                raise failure
        self._limit_rate(api_key, method)
        spec, object_id = _route(method, path)
        if not api_key.allows(spec, "read" if method == "GET" else "write"):
            raise self._refusal(api_key, spec, "read" if method == "GET" else "write")
        if not _VERSION.fullmatch(version):
            raise StripeApiError(400, f"Invalid Stripe API version: {version}")
        idempotency = headers.get("idempotency-key")
        if method != "GET" and idempotency:
            with self._lock:
                replay = self._idempotent.get((api_key.secret, idempotency))
            if replay is not None:
                return replay
        with self._lock:
            result = self._dispatch(method, spec, object_id, params, version)
            if method != "GET" and idempotency:
                self._idempotent[(api_key.secret, idempotency)] = result
        return result

    def _authenticate(self, key: str | None) -> ApiKey:
        if not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
            )
        with self._lock:
            found = self._keys.get(key)
            if found is None and not self._keys and re.fullmatch(r"(sk|rk)_(test|live)_\w+", key):
                found = ApiKey(key)
        if found is None:
            raise StripeApiError(401, f"Invalid API Key provided: {_mask(key)}")
        return found

    def _refusal(self, key: ApiKey, spec: Resource, level: str) -> StripeApiError:
        return StripeApiError(
            403,
            f"The provided key '{_mask(key.secret)}' does not have the required permissions "
            f"for this endpoint on account '{ACCOUNT_ID}'. Having the "
            f"'rak_{spec.permission}_{level}' permission would allow this request to continue.",
        )

    def _scripted(self, method: str, path: str) -> Answer | None:
        with self._lock:
            for answer in self._script:
                if answer.applies_to(method, path):
                    self._script.remove(answer)
                    return answer
        return None

    def _limit_rate(self, key: ApiKey, method: str) -> None:
        with self._lock:
            if self.rate_limits is None:
                return
            mode = "live" if key.livemode else "test"
            limit = self.rate_limits[mode]
            window = self._window.setdefault(
                (mode, "read" if method == "GET" else "write"), deque()
            )
            now = self.clock()
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                raise StripeApiError(
                    429, RATE_LIMIT_MESSAGE, code="rate_limit", headers={"Retry-After": "1"}
                )
            window.append(now)

    def _dispatch(
        self, method: str, spec: Resource, object_id: str | None, params: Json, version: str
    ) -> tuple[int, Json]:
        expand = [str(e).split(".") for e in _as_list(params.get("expand"))]
        if spec.name == "webhook_endpoints" and method != "GET":
            return self._write_endpoint(method, object_id, params, version, expand)
        if method != "GET":
            raise _unrecognized(method, _path_of(spec, object_id))
        if object_id is None:
            return 200, self._list(spec, params, version, expand)
        collection = self._collections[spec.name]
        obj = collection.objects.get(object_id)
        if obj is None:
            if self._deleted.get(object_id) is spec and spec.name == "customers":
                return 200, {"id": object_id, "object": spec.object, "deleted": True}
            raise _missing(spec, object_id)
        return 200, self._render(spec, obj, version, expand)

    def _list(self, spec: Resource, params: Json, version: str, expand: list[list[str]]) -> Json:
        limit = _integer(params, "limit")
        if limit is None:
            limit = DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            raise StripeApiError(
                400,
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                param="limit",
            )
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
        collection = self._collections[spec.name]
        for name, cursor in (("starting_after", after), ("ending_before", before)):
            if cursor and cursor not in collection.objects:
                raise _missing(spec, str(cursor), name)
        created_from, created_to = _created_range(params.get("created"), spec)
        flat = _flatten({k: v for k, v in params.items() if k not in _LIST_PARAMS})
        equal: dict[str, set[str]] = {}
        match: Callable[[Json], bool] | None = None
        for name, value in flat.items():
            if spec.name == "events" and (name in ("type", "types") or name.startswith("types.")):
                continue
            path = spec.filters.get(name)
            if path is None:
                raise StripeApiError(400, f"Received unknown parameter: {name}", param=name)
            equal[path] = {str(value).lower() if path == "active" else str(value)}
        if spec.name == "events":
            equal, match = _event_filters(params, equal)
        data, more = collection.page(
            limit=limit,
            created_from=created_from,
            created_to=created_to,
            starting_after=after,
            ending_before=before,
            equal=equal,
            match=match,
        )
        data_expand = [e[1:] for e in expand if e[0] == "data" and len(e) > 1]
        return {
            "object": "list",
            "data": [self._render(spec, obj, version, data_expand) for obj in data],
            "has_more": more,
            "url": spec.path,
        }

    def _write_endpoint(
        self,
        method: str,
        object_id: str | None,
        params: Json,
        version: str,
        expand: list[list[str]],
    ) -> tuple[int, Json]:
        spec = RESOURCE_BY_NAME["webhook_endpoints"]
        collection = self._collections[spec.name]
        if object_id is None and method == "POST":
            for required in ("url", "enabled_events"):
                if not params.get(required):
                    raise StripeApiError(
                        400,
                        f"Missing required param: {required}.",
                        code="parameter_missing",
                        param=required,
                    )
            endpoint = self.example("webhook_endpoint")
            endpoint.update(
                id=self._new_id(spec),
                created=int(time.time()),
                description=None,
                livemode=False,
                metadata={},
                status="enabled",
            )
            endpoint.update(_endpoint_fields(params, creating=True))
            self._store(spec, endpoint)
            secret = "whsec_" + secrets.token_hex(16)
            self.webhook_secrets[endpoint["id"]] = secret
            return 200, {**self._render(spec, endpoint, version, expand), "secret": secret}
        if object_id is None:
            raise _unrecognized(method, spec.path)
        current = collection.objects.get(object_id)
        if current is None:
            raise _missing(spec, object_id)
        if method == "DELETE":
            self.delete(spec.name, object_id)
            self.webhook_secrets.pop(object_id, None)
            return 200, {"id": object_id, "object": spec.object, "deleted": True}
        updated = {**current, **_endpoint_fields(params, creating=False)}
        if "metadata" in params:
            updated["metadata"] = {
                **(current.get("metadata") or {}),
                **{k: v for k, v in dict(params["metadata"] or {}).items()},
            }
            updated["metadata"] = {k: v for k, v in updated["metadata"].items() if v != ""}
        self._store(spec, updated)
        return 200, self._render(spec, updated, version, expand)

    # ------------------------------------------------------------ rendering

    def _render(self, spec: Resource, obj: Json, version: str, expand: list[list[str]]) -> Json:
        out = self._shape(spec, obj, version)
        for path in expand:
            out = self._expand(out, path, version)
        return out

    def _shape(self, spec: Resource, obj: Json, version: str) -> Json:
        """``obj`` in ``version``'s shape (a new dict when it differs; nested parts shared)."""
        legacy = is_legacy(version)
        if spec.name == "invoices":
            out = dict(obj)
            if not legacy:
                for name in LEGACY_ONLY["invoices"]:
                    out.pop(name, None)
                return out
            for name in BASIL_ONLY["invoices"]:
                out.pop(name, None)
            if isinstance(out.get("automatic_tax"), Mapping):
                out["automatic_tax"] = {
                    k: v
                    for k, v in out["automatic_tax"].items()
                    if k not in AUTOMATIC_TAX_BASIL_ONLY
                }
            self._legacy_invoice_links(obj, out)
            return out
        if spec.name in ("charges", "payment_intents"):
            out = dict(obj)
            if not legacy:
                out.pop("invoice", None)
            elif "invoice" not in out:
                intent = obj["id"] if spec.name == "payment_intents" else obj.get("payment_intent")
                out["invoice"] = self._invoice_of_intent(intent)
            return out
        return obj

    def _invoice_of_intent(self, intent: Any) -> str | None:
        if not isinstance(intent, str):
            return None
        for payment in self._collections["invoice_payments"].find("payment.payment_intent", intent):
            invoice = _index_key(payment.get("invoice"))
            if invoice:
                return invoice
        return None

    def _legacy_invoice_links(self, stored: Json, out: Json) -> None:
        """The direct links an invoice had before basil, from what the stand-in holds."""
        if "payment_intent" not in stored:
            intent = None
            payments = self._collections["invoice_payments"].find("invoice", stored["id"])
            payments.sort(key=lambda p: (not p.get("is_default"), p.get("status") != "paid"))
            for payment in payments:
                candidate = _get(payment, "payment.payment_intent")
                if isinstance(candidate, str):
                    intent = candidate
                    break
            out["payment_intent"] = intent
        if "charge" not in stored:
            intent = out.get("payment_intent")
            charge = None
            if isinstance(intent, str):
                pi = self._collections["payment_intents"].objects.get(intent)
                charge = _index_key(pi.get("latest_charge")) if pi else None
                if charge is None:
                    charges = self._collections["charges"].find("payment_intent", intent)
                    charge = charges[0]["id"] if charges else None
            out["charge"] = charge
        if "paid" not in stored:
            out["paid"] = stored.get("status") == "paid"
        if "subscription" not in stored or stored.get("subscription") is None:
            out["subscription"] = _get(stored, "parent.subscription_details.subscription")
        if "discount" not in stored:
            discounts = stored.get("discounts") or []
            single = None
            if len(discounts) == 1:
                found = discounts[0]
                if isinstance(found, str):
                    found = self._collections["discounts"].objects.get(found)
                single = found if isinstance(found, Mapping) else None
            out["discount"] = single

    def _expand(self, obj: Json, path: list[str], version: str) -> Json:
        head, rest = path[0], path[1:]
        if head not in obj:
            raise StripeApiError(400, f"This property cannot be expanded ({head}).", param="expand")
        return {**obj, head: self._expand_value(obj[head], rest, version)}

    def _expand_value(self, value: Any, rest: list[str], version: str) -> Any:
        if isinstance(value, list):
            return [self._expand_value(v, rest, version) for v in value]
        if isinstance(value, str):
            collection = self._where.get(value)
            if collection is None:
                return value
            value = self._shape(collection.resource, collection.objects[value], version)
        if isinstance(value, dict) and rest:
            return self._expand(value, rest, version)
        return value

    # ------------------------------------------------------------ serving

    def start(self) -> StripeStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Stripe's servers do

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(
                self, status: int, payload: Any, headers: Mapping[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_standin{secrets.token_hex(6)}")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                query = parse_qsl(split.query, keep_blank_values=True)
                if split.path.startswith("/__standin/"):
                    try:
                        status, payload = standin._control(self.command, split.path, query, raw)
                    except (ValueError, KeyError, TypeError) as error:
                        status, payload = 400, {"error": str(error)}
                    self._send(status, payload)
                    return
                body = parse_qsl(raw, keep_blank_values=True)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = standin.handle(
                    self.command, unquote(split.path), query, body, headers
                )
                self._send(status, payload, extra)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, daemon=True, name="stripe-standin"
        ).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> StripeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _control(
        self, method: str, path: str, query: list[tuple[str, str]], raw: str
    ) -> tuple[int, Any]:
        document: Any = json.loads(raw) if raw.strip() else None
        route = path.removeprefix("/__standin/")
        if route == "requests":
            if method == "DELETE":
                self.clear()
                return 200, []
            return 200, [r.as_dict() for r in self.requests()]
        if route == "script" and method == "POST":
            self.script(document or [])
            return 200, {}
        if route == "keys":
            if method == "DELETE":
                self.clear_keys()
                return 200, {}
            if method == "POST":
                for secret, permissions in (document or {}).items():
                    self.add_key(secret, permissions)
                return 200, {}
            with self._lock:
                return 200, {k: v.permissions for k, v in self._keys.items()}
        if route.startswith("objects/"):
            name = route.removeprefix("objects/")
            if method == "POST":
                items = document if isinstance(document, list) else [document]
                if dict(query).get("raw") in ("1", "true"):
                    self.put_many(name, items)
                    return 200, {"stored": len(items)}
                return 200, {"stored": len(self.add_many(name, items))}
            with self._lock:
                return 200, list(self.collection(name).objects.values())
        if route == "events" and method == "POST":
            items = document if isinstance(document, list) else [document]
            made = [
                self.add_event(
                    i["type"], i["object"], created=i.get("created"), event_id=i.get("id")
                )
                for i in items
            ]
            return 200, [e["id"] for e in made]
        if route == "seed" and method == "POST":
            return 200, self.seed(document or {})
        if route == "reset" and method == "POST":
            self.reset()
            return 200, {}
        if route == "settings" and method == "POST":
            self.settings(document or {})
            return 200, {"api_version": self.api_version, "rate_limits": self.rate_limits}
        if route == "webhook_secrets":
            with self._lock:
                return 200, dict(self.webhook_secrets)
        return 404, {"error": f"no control route {method} {path}"}


_LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "created", "expand"})


def _resource(name: str) -> Resource:
    spec = RESOURCE_BY_NAME.get(RESOURCE_ALIASES.get(name, name))
    if spec is None:
        raise ValueError(
            f"unknown resource {name!r}: one of {', '.join(r.name for r in RESOURCES)}"
        )
    return spec


def _route(method: str, path: str) -> tuple[Resource, str | None]:
    spec = RESOURCE_BY_PATH.get(path)
    if spec is not None:
        return spec, None
    parent, _, object_id = path.rpartition("/")
    spec = RESOURCE_BY_PATH.get(parent)
    if spec is not None and object_id:
        return spec, object_id
    raise _unrecognized(method, path)


def _path_of(spec: Resource, object_id: str | None) -> str:
    return spec.path if object_id is None else f"{spec.path}/{object_id}"


def _key_of(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().split(":", 1)[0] or None
        except ValueError:
            return None
    return None


def _created_range(raw: Any, spec: Resource) -> tuple[int | None, int | None]:
    if raw is None:
        return None, None
    if not spec.created_filter:
        raise StripeApiError(400, "Received unknown parameter: created", param="created")
    if not isinstance(raw, Mapping):
        exact = _integer({"created": raw}, "created")
        return exact, exact
    unknown = set(raw) - {"gte", "gt", "lte", "lt"}
    if unknown:
        name = sorted(unknown)[0]
        raise StripeApiError(
            400, f"Received unknown parameter: created[{name}]", param=f"created[{name}]"
        )
    bounds = {k: _integer(raw, k) for k in raw}
    lows = [v for v in (bounds.get("gte"), _shift(bounds.get("gt"), 1)) if v is not None]
    highs = [v for v in (bounds.get("lte"), _shift(bounds.get("lt"), -1)) if v is not None]
    return max(lows, default=None), min(highs, default=None)


def _shift(value: int | None, by: int) -> int | None:
    return None if value is None else value + by


def _event_filters(
    params: Json, equal: dict[str, set[str]]
) -> tuple[dict[str, set[str]], Callable[[Json], bool] | None]:
    kind = params.get("type")
    types = [str(t) for t in _as_list(params.get("types"))]
    if kind is not None and types:
        raise StripeApiError(
            400, "You may only specify one of these parameters: type, types.", param="types"
        )
    if len(types) > 20:
        raise StripeApiError(400, "You can specify at most 20 types.", param="types")
    if kind is not None and "*" in str(kind):
        pattern = re.compile(".*".join(re.escape(p) for p in str(kind).split("*")))
        return equal, lambda e: bool(pattern.fullmatch(str(e.get("type"))))
    if kind is not None:
        return {**equal, "type": {str(kind)}}, None
    if types:
        return {**equal, "type": set(types)}, None
    return equal, None


def _endpoint_fields(params: Json, *, creating: bool) -> Json:
    fields: Json = {}
    if "url" in params:
        url = str(params["url"])
        if not re.match(r"https?://", url):
            raise StripeApiError(400, f"Invalid URL: {url}", code="url_invalid", param="url")
        fields["url"] = url
    if "enabled_events" in params:
        events = [str(e) for e in _as_list(params["enabled_events"])]
        if not events:
            raise StripeApiError(400, "enabled_events cannot be empty", param="enabled_events")
        fields["enabled_events"] = events
    if "description" in params:
        fields["description"] = params["description"] or None
    if creating:
        version = params.get("api_version")
        if version is not None and not _VERSION.fullmatch(str(version)):
            raise StripeApiError(400, f"Invalid Stripe API version: {version}", param="api_version")
        fields["api_version"] = version
        metadata = params.get("metadata")
        fields["metadata"] = dict(metadata) if isinstance(metadata, Mapping) else {}
    elif "api_version" in params:
        raise StripeApiError(400, "Received unknown parameter: api_version", param="api_version")
    if "disabled" in params:
        disabled = str(params["disabled"]).lower()
        if disabled not in ("true", "false"):
            raise StripeApiError(400, f"Invalid boolean: {params['disabled']}", param="disabled")
        fields["status"] = "disabled" if disabled == "true" else "enabled"
    return fields


# --------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=12111, help="HTTP port (0 = any free port; default: 12111)"
    )
    parser.add_argument(
        "--seed",
        help="a JSON seed document: keys, api_version, objects, events (default: none)",
    )
    parser.add_argument(
        "--api-version",
        default=DEFAULT_API_VERSION,
        help="the account's API version, for requests without Stripe-Version "
        f"(default: {DEFAULT_API_VERSION})",
    )
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="answer 429 past Stripe's per-second limits: live 100, test 25 (default: off)",
    )


def run(args: argparse.Namespace) -> int:
    """``stripe-everflow stripe-standin``: serve until Ctrl-C. Raises CliError for a bad
    seed file or a busy port."""
    import signal

    from stripe_everflow_cli import errors

    standin = StripeStandIn(port=args.port)
    try:
        standin.settings(
            {
                "api_version": args.api_version,
                "rate_limits": dict(RATE_LIMITS) if args.rate_limits else None,
            }
        )
    except ValueError as error:
        raise errors.usage(str(error), "give --api-version like 2025-03-31.basil") from None
    if args.seed:
        document = errors.read_json_file(args.seed, "seed document (JSON)")
        try:
            counts = standin.seed(document)
        except (ValueError, KeyError, TypeError) as error:
            raise errors.usage(
                f"{args.seed}: {errors.one_line(str(error))}",
                "fix the seed document (see the README: Stripe API stand-in)",
            ) from None
    else:
        counts = {}
    try:
        standin.start()
    except OSError as error:
        if error.errno in (98, 48, 13):  # EADDRINUSE (Linux, macOS), EACCES
            raise errors.port_busy(args.port) from None
        raise
    held = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no objects"
    print(
        f"Stripe API stand-in on {standin.url} ({held}; API {standin.api_version}); "
        f"point the bridge at it with STRIPE_API_BASE={standin.url}",
        flush=True,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    standin.stop()
    return 0


# --------------------------------------------------------------------- Stripe's examples

# Stripe's published example of each object the stand-in serves: ``openapi/fixtures3.json``
# of github.com/stripe/openapi (commit f6c2a48fbac2819d1feba8143d942ffc65e1c0d2; MIT
# licence, Copyright (c) 2011- Stripe, Inc.), copied as is so the stand-in runs without
# it (tests/unit/cli/test_stripe_standin.py checks the copy against the file).
STRIPE_EXAMPLES: dict[str, Json] = {
    "charge": {
        "amount": 100,
        "amount_captured": 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": "txn_1PgaxNB7WZ01zgkWEV3TLf40",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": "Jenny Rosen",
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": None,
        "captured": False,
        "created": 1234567890,
        "currency": "usd",
        "customer": None,
        "description": "My First Test Charge (created for API docs)",
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "id": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        "livemode": False,
        "metadata": {},
        "object": "charge",
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": None,
            "reason": None,
            "seller_message": None,
            "type": "type",
        },
        "paid": True,
        "payment_intent": None,
        "payment_method": "card_1PgaftB7WZ01zgkWm3waTcFp",
        "payment_method_details": {
            "card": {
                "amount_authorized": None,
                "authorization_code": None,
                "brand": "visa",
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "exp_month": 8,
                "exp_year": 2030,
                "extended_authorization": {"status": "disabled"},
                "fingerprint": "AOB934RVNwzk6xtn",
                "funding": "credit",
                "incremental_authorization": {"status": "unavailable"},
                "installments": {"plan": {"count": None, "interval": None, "type": "fixed_count"}},
                "last4": "4242",
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": "visa",
                "network_token": {"used": False},
                "network_transaction_id": None,
                "overcapture": {"maximum_amount_capturable": 100, "status": "unavailable"},
                "regulated_status": None,
                "three_d_secure": {
                    "authentication_flow": None,
                    "electronic_commerce_indicator": None,
                    "exemption_indicator": None,
                    "result": None,
                    "result_reason": None,
                    "transaction_id": None,
                    "version": None,
                },
                "transaction_link_id": None,
                "wallet": {"dynamic_last4": None, "type": "link"},
            },
            "type": "card",
        },
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": "https://sangeekp-15t6ai--manage-mydev.dev.stripe.me/receipts/payment/CAcaFwoVYWNjdF8xUGdhZlRCN1daMDF6Z2tXKI_ei7UGMgZv2S_KfiY6LCJrxC7awazgQA9I88krZKw5uuCkZ5Nup2tomEtAbSpdfzjVZHO3ZYP5KFZP",
        "refunded": False,
        "refunds": {
            "data": [],
            "has_more": False,
            "object": "list",
            "url": "/v1/charges/ch_1PgafuB7WZ01zgkWXYmPNZs8/refunds",
        },
        "review": None,
        "shipping": {},
        "source": {
            "allow_redisplay": None,
            "amount": None,
            "client_secret": "client_secret",
            "created": 1028554472,
            "currency": None,
            "flow": "flow",
            "id": "obj_123",
            "livemode": True,
            "metadata": None,
            "object": "source",
            "owner": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": None,
                "name": None,
                "phone": None,
                "verified_address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "verified_email": None,
                "verified_name": None,
                "verified_phone": None,
            },
            "statement_descriptor": None,
            "status": "status",
            "type": "ach_credit_transfer",
            "usage": None,
        },
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": {"amount": None, "destination": {"id": "obj_123", "object": "account"}},
        "transfer_group": None,
    },
    "checkout.session": {
        "adaptive_pricing": {"enabled": True},
        "after_expiration": {
            "recovery": {
                "allow_promotion_codes": True,
                "enabled": True,
                "expires_at": None,
                "url": None,
            }
        },
        "allow_promotion_codes": None,
        "amount_subtotal": None,
        "amount_total": None,
        "automatic_tax": {
            "enabled": False,
            "liability": {"type": "account"},
            "provider": None,
            "status": None,
        },
        "billing_address_collection": None,
        "cancel_url": "https://example.com/cancel",
        "client_reference_id": None,
        "client_secret": None,
        "collected_information": {
            "business_name": None,
            "individual_name": None,
            "shipping_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "name": "name",
            },
        },
        "consent": {"promotions": None, "terms_of_service": None},
        "consent_collection": {
            "payment_method_reuse_agreement": {"position": "hidden"},
            "promotions": None,
            "terms_of_service": None,
        },
        "created": 1234567890,
        "currency": None,
        "currency_conversion": {
            "amount_subtotal": 1555417355,
            "amount_total": 1117121693,
            "fx_rate": "291452898",
            "source_currency": "usd",
        },
        "custom_fields": [],
        "custom_text": {
            "after_submit": {"message": "message"},
            "shipping_address": {"message": "message"},
            "submit": {"message": "message"},
            "terms_of_service_acceptance": {"message": "message"},
        },
        "customer": None,
        "customer_account": None,
        "customer_creation": None,
        "customer_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "business_name": None,
            "email": "example@example.com",
            "individual_name": None,
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": None,
        },
        "customer_email": None,
        "discounts": None,
        "expires_at": 1234567890,
        "id": "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": True,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": {"type": "account"},
                "metadata": None,
                "rendering_options": {"amount_tax_display": None, "template": None},
            },
        },
        "livemode": False,
        "locale": None,
        "managed_payments": {"enabled": True},
        "metadata": {},
        "mode": "payment",
        "object": "checkout.session",
        "origin_context": None,
        "payment_intent": "pi_1PgafyB7WZ01zgkWSjxsAJo3",
        "payment_link": None,
        "payment_method_collection": None,
        "payment_method_configuration_details": {"id": "obj_123", "parent": None},
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": {"update_shipping_details": None},
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": {
            "allow_redisplay_filters": None,
            "payment_method_remove": None,
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": {"allowed_countries": ["SC"]},
        "shipping_cost": {
            "amount_subtotal": 1555417355,
            "amount_tax": 1424534716,
            "amount_total": 1117121693,
            "shipping_rate": None,
        },
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": "https://example.com/success",
        "total_details": {
            "amount_discount": 406046392,
            "amount_shipping": None,
            "amount_tax": 1424534716,
        },
        "ui_mode": None,
        "url": "https://checkout.stripe.com/pay/c/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",
        "wallet_options": {},
    },
    "customer": {
        "address": {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "balance": 0,
        "created": 1234567890,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": {
            "checkout_session": None,
            "customer": None,
            "customer_account": None,
            "end": None,
            "id": "obj_123",
            "invoice": None,
            "invoice_item": None,
            "object": "discount",
            "promotion_code": None,
            "source": {"coupon": None, "type": "coupon"},
            "start": 109757538,
            "subscription": None,
            "subscription_item": None,
        },
        "email": None,
        "id": "cus_QXg1o8vcGmoR32",
        "invoice_prefix": "7FE1103",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": {"amount_tax_display": None, "template": None},
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "object": "customer",
        "phone": None,
        "preferred_locales": [],
        "shipping": {},
        "tax_exempt": "none",
        "test_clock": None,
    },
    "discount": {
        "checkout_session": None,
        "customer": "cus_QXg1o8vcGmoR32",
        "customer_account": None,
        "end": 1234567890,
        "id": "di_1Pgc6rB7WZ01zgkW7Al8Fal9",
        "invoice": None,
        "invoice_item": None,
        "object": "discount",
        "promotion_code": None,
        "source": {"coupon": None, "type": "coupon"},
        "start": 1234567890,
        "subscription": None,
        "subscription_item": None,
    },
    "dispute": {
        "amount": 1000,
        "balance_transactions": [],
        "charge": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        "created": 1234567890,
        "currency": "usd",
        "enhanced_eligibility_types": ["visa_compelling_evidence_3"],
        "evidence": {
            "access_activity_log": None,
            "billing_address": None,
            "cancellation_policy": None,
            "cancellation_policy_disclosure": None,
            "cancellation_rebuttal": None,
            "customer_communication": None,
            "customer_email_address": None,
            "customer_name": None,
            "customer_purchase_ip": None,
            "customer_signature": None,
            "duplicate_charge_documentation": None,
            "duplicate_charge_explanation": None,
            "duplicate_charge_id": None,
            "enhanced_evidence": {},
            "product_description": None,
            "receipt": None,
            "refund_policy": None,
            "refund_policy_disclosure": None,
            "refund_refusal_explanation": None,
            "service_date": None,
            "service_documentation": None,
            "shipping_address": None,
            "shipping_carrier": None,
            "shipping_date": None,
            "shipping_documentation": None,
            "shipping_tracking_number": None,
            "uncategorized_file": None,
            "uncategorized_text": None,
        },
        "evidence_details": {
            "due_by": 1723679999,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "id": "dp_1Pgc71B7WZ01zgkWMevJiAUx",
        "is_charge_refundable": True,
        "livemode": False,
        "metadata": {},
        "object": "dispute",
        "payment_intent": None,
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "case_type": "inquiry",
                "network": "visa",
                "network_reason_code": "10.4",
            },
            "type": "card",
        },
        "reason": "general",
        "status": "warning_needs_response",
    },
    "event": {
        "api_version": None,
        "created": 1234567890,
        "data": {
            "object": {
                "active": True,
                "aggregate_usage": None,
                "amount": 2000,
                "amount_decimal": "2000",
                "billing_scheme": "per_unit",
                "created": 1721948530,
                "currency": "usd",
                "id": "price_1PgafmB7WZ01zgkW6dKueIc5",
                "interval": "month",
                "interval_count": 1,
                "livemode": False,
                "metadata": {},
                "meter": None,
                "nickname": None,
                "object": "plan",
                "product": "prod_QXg1hqf4jFNsqG",
                "tiers_mode": None,
                "transform_usage": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
        },
        "id": "evt_1Pgc76B7WZ01zgkWwyRHS12y",
        "livemode": False,
        "object": "event",
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": "plan.created",
    },
    "invoice": {
        "account_country": "US",
        "account_name": None,
        "account_tax_ids": None,
        "amount_due": 1000,
        "amount_overpaid": 149300825,
        "amount_paid": 0,
        "amount_remaining": 1000,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": {"type": "account"},
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": "charge_automatically",
        "created": 1234567890,
        "currency": "usd",
        "custom_fields": None,
        "customer": "cus_QXg1o8vcGmoR32",
        "customer_account": None,
        "customer_address": {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "customer_email": None,
        "customer_name": None,
        "customer_phone": None,
        "customer_shipping": {},
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": 1234567890,
        "effective_at": 1234567890,
        "ending_balance": None,
        "footer": None,
        "from_invoice": {"action": "action", "invoice": "invoice"},
        "hosted_invoice_url": None,
        "id": "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": {"type": "idempotency_error"},
        "latest_revision": None,
        "lines": {
            "data": [
                {
                    "amount": 1000,
                    "currency": "usd",
                    "description": "My First Invoice Item (created for API docs)",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "id": "il_1Pgc6sB7WZ01zgkWFnxLrLCq",
                    "invoice": "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
                    "livemode": False,
                    "metadata": {},
                    "object": "line_item",
                    "parent": {
                        "invoice_item_details": {
                            "invoice_item": "invoice_item",
                            "proration": True,
                            "proration_details": {
                                "credited_items": {
                                    "invoice": "invoice",
                                    "invoice_line_items": ["invoice_line_items"],
                                }
                            },
                            "subscription": None,
                        },
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": True,
                            "proration_details": {
                                "credited_items": {
                                    "invoice": "invoice",
                                    "invoice_line_items": ["invoice_line_items"],
                                }
                            },
                            "subscription": "subscription",
                            "subscription_item": "subscription_item",
                        },
                        "type": "invoice_item_details",
                    },
                    "period": {"end": 1721954054, "start": 1721954054},
                    "pretax_credit_amounts": None,
                    "pricing": {"type": "price_details", "unit_amount_decimal": None},
                    "quantity": 1,
                    "quantity_decimal": None,
                    "subscription": None,
                    "subtotal": 2060319484,
                    "taxes": None,
                }
            ],
            "has_more": False,
            "object": "list",
            "url": "/v1/invoices/in_1Pgc6tB7WZ01zgkWu9fdqL6I/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": 1234567890,
        "number": None,
        "object": "invoice",
        "on_behalf_of": None,
        "parent": {
            "quote_details": {"quote": "quote"},
            "subscription_details": {"metadata": None, "subscription": "subscription"},
            "type": "quote_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": {
                "acss_debit": {},
                "bancontact": {"preferred_language": "fr"},
                "card": {"request_three_d_secure": None},
                "customer_balance": {"funding_type": None},
                "konbini": {},
                "payto": {},
                "pix": {"amount_includes_iof": None},
                "sepa_debit": {},
                "upi": {},
                "us_bank_account": {},
            },
            "payment_method_types": None,
        },
        "period_end": 1234567890,
        "period_start": 1234567890,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": {
            "amount_tax_display": None,
            "pdf": {"page_size": None},
            "template": None,
            "template_version": None,
        },
        "shipping_cost": {
            "amount_subtotal": 1555417355,
            "amount_tax": 1424534716,
            "amount_total": 1117121693,
            "shipping_rate": None,
        },
        "shipping_details": {},
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": None,
        "subtotal": 1000,
        "subtotal_excluding_tax": 1000,
        "test_clock": None,
        "total": 1000,
        "total_discount_amounts": [],
        "total_excluding_tax": 1000,
        "total_pretax_credit_amounts": None,
        "total_taxes": None,
        "webhooks_delivered_at": 1234567890,
    },
    "invoice_payment": {
        "amount_paid": None,
        "amount_requested": 1112626247,
        "created": 1028554472,
        "currency": "currency",
        "id": "obj_123",
        "invoice": "invoice",
        "is_default": True,
        "livemode": True,
        "object": "invoice_payment",
        "payment": {"type": "payment_intent"},
        "status": "status",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    },
    "payment_intent": {
        "amount": 1099,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": {"enabled": True},
        "canceled_at": 1234567890,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": "pi_1PgafyB7WZ01zgkWSjxsAJo3_secret_Dm43xiq1k0ywrRRjDoi8y1gkM",
        "confirmation_method": "automatic",
        "created": 1234567890,
        "currency": "usd",
        "customer": None,
        "customer_account": None,
        "description": None,
        "excluded_payment_method_types": None,
        "id": "pi_1PgafyB7WZ01zgkWSjxsAJo3",
        "last_payment_error": {"type": "idempotency_error"},
        "latest_charge": None,
        "livemode": False,
        "managed_payments": {"enabled": True},
        "metadata": {},
        "next_action": {"type": "type"},
        "object": "payment_intent",
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": {"id": "obj_123", "parent": None},
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": {"type": "card"},
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": {},
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": {"destination": {"id": "obj_123", "object": "account"}},
        "transfer_group": None,
    },
    "promotion_code": {
        "active": False,
        "code": "FALL20",
        "created": 1234567890,
        "customer": None,
        "customer_account": None,
        "expires_at": 1234567890,
        "id": "promo_1Pgc79B7WZ01zgkWNy4mn5NX",
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "object": "promotion_code",
        "promotion": {"coupon": None, "type": "coupon"},
        "restrictions": {
            "first_time_transaction": False,
            "minimum_amount": None,
            "minimum_amount_currency": None,
        },
        "times_redeemed": 0,
    },
    "refund": {
        "amount": 100,
        "balance_transaction": None,
        "charge": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        "created": 1234567890,
        "currency": "usd",
        "customer": None,
        "customer_account": None,
        "destination_details": {"card": {"type": "reversal"}, "type": "card"},
        "id": "re_1Pgc72B7WZ01zgkWqPvrRrPE",
        "metadata": {},
        "object": "refund",
        "payment_intent": None,
        "payment_method": None,
        "reason": None,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    },
    "webhook_endpoint": {
        "api_version": None,
        "application": None,
        "created": 1234567890,
        "description": "This is my webhook, I like it a lot",
        "enabled_events": ["charge.failed", "charge.succeeded"],
        "id": "we_1Pgc6yB7WZ01zgkWzAudq4eU",
        "livemode": False,
        "metadata": {},
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": "https://example.com/my/webhook/endpoint",
    },
}
_EXAMPLE_TEXT = {name: json.dumps(obj) for name, obj in STRIPE_EXAMPLES.items()}
# One copy of each example, whose nested parts add_many's objects share.
_SHARED_EXAMPLES: dict[str, Json] = {}
