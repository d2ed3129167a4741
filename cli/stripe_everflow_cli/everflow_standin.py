"""A local stand-in for Everflow: the tracking domain's postback endpoints and the
Network API calls the bridge makes, on 127.0.0.1.

It records every request and answers as told. Control it over HTTP (for the local
stack and manual tries) or from Python (tests):

* ``GET  /__standin/requests`` — what it received (JSON list);
* ``DELETE /__standin/requests`` — forget it (the conversions recorded stay);
* ``POST /__standin/script`` — ``[{"status": 500}, {"status": 204, "times": 2},
  {"delay": 0.5}]``: the next requests get these answers in order (``times`` repeats
  one), then the default answer again;
* ``POST /__standin/default`` — ``{"status": 200, "delay": 0.2}``: the answer when
  nothing is scripted.

* ``POST /__standin/offer`` — ``{"payout": "10", "payout_percent": "0",
  "revenue": "0", "revenue_percent": "100", "payout_percent_of_revenue": "0"}``:
  the offer's terms for the conversions accepted from then on.

Default answer to a conversion postback: 200 with ``{"conversion_id": …,
"transaction_id": …}``, the shape Everflow's SDK endpoint answers with.

Like Everflow, it keeps each conversion it accepted: sale amount, payout and revenue
computed from the offer's terms when it is recorded (CPA: a flat payout; CPS: a
percentage of the sale amount; CPA+CPS: both; RevShare: a percentage of the revenue),
and its status. A reversal postback rejects it (by ``conversion_id``, else every
conversion with that ``order_id``). The Network API calls the bridge makes act on them:

* ``GET /v1/networks/reporting/events/{transaction_id}`` — the conversions of a click;
* ``GET /v1/networks/reporting/conversions/{id}`` — one conversion (404 if unknown);
* ``PATCH /v1/networks/reporting/conversions`` — approve or reject;
* ``PUT /v1/networks/reporting/conversions/{id}/saleamount`` — a new sale amount
  (payout and revenue are left as they are: Everflow does not document recomputing
  them, and its Control Center adjusts them apart, "Adjust Revenue & Payout");
* ``PUT /v1/networks/reporting/conversions/{id}/payoutrevenue`` — new absolute
  payout and revenue; refused with 400 unless the conversion is approved, as
  Everflow documents.

Scripted answers apply to postbacks, reversals and the Network API's writes (a
scripted failure changes nothing); the reads above always answer from what was
recorded.

Conversions Everflow recorded from the advertiser's own tracking (its step 1: the
sign-up postback or ``EF.conversion`` with ``email``) are seeded with
``POST /__standin/conversions`` (a JSON list; Python ``add_conversion``): each
``{"transaction_id", "email", "offer_id", "affiliate_id", "advertiser_id",
"is_event", "event", "event_id", "conversion_unix_timestamp", "click_unix_timestamp",
"status", "sale_amount", "order_id"}`` (all optional; ``conversion_id`` is made up
when absent). A conversion postback's ``email`` and ``oid`` are kept too. The two
reports read them, as rows shaped like Everflow's (``conversion_id``,
``transaction_id``, ``conversion_unix_timestamp``, ``click_unix_timestamp``,
``email``, ``is_event``, ``event``, ``status``, ``sale_amount``, ``order_id``,
``network_offer_payout_revenue_id`` and ``relationship.offer.network_offer_id``,
``relationship.affiliate.network_affiliate_id``,
``relationship.advertiser.network_advertiser_id``):

* ``POST /v1/networks/reporting/conversions/email`` — body ``{"email", "from", "to",
  "timezone_id"}`` → ``{"conversions": [...]}``: that email's conversions and events
  (case-insensitive) between ``from`` and ``to`` (``YYYY-mm-DD`` or ``YYYY-mm-DD
  hh:mm:ss``, taken as UTC: the stand-in knows timezone 67 only; a day's ``to``
  includes that whole day);
  (developers.everflow.io/api-reference/post-networksreportingconversionsbyemail)
* ``POST /v1/networks/reporting/conversions?page=&page_size=`` — body ``{"from",
  "to", "timezone_id", "show_conversions", "show_events", "query": {"filters":
  [{"resource_type": "offer"|"advertiser"|"affiliate", "filter_id_value": "1"}]}}``
  → ``{"conversions": [...], "paging": {"page", "page_size", "total_count"}}``,
  oldest first, pages from 1 (``page_size`` default 50, at most 2000); a missing
  ``from``/``to`` or a window over a year is 400, as Everflow documents.
  (developers.everflow.io/api-reference/post-networksreportingconversions,
  developers.everflow.io/docs/network/reporting/raw_conversions)

Both reports take the scripted answers too (``POST /__standin/script`` with
``{"status": 429}``, ``{"status": 503}``, ``{"status": 200, "body":
"{\"conversions\": []}"}`` for an empty page), so a test can make Everflow throttle,
fail or answer nothing for one call.

Offers (for ``doctor`` and setup checks), answered from ``network_offers``:

* ``GET /v1/networks/offers/{offerId}`` (any ``?relationship=``: every relationship
  is always included) → the offer, or 404. Field names are Everflow's
  (developers.everflow.io/api-reference/get-networksoffer; the Offers docs'
  "Patchable Fields", developers.everflow.io/docs/network/offers):

  - ``network_offer_id``, ``network_id``, ``network_advertiser_id``, ``name``;
  - ``offer_status`` — ``active`` | ``paused`` | ``pending`` | ``deleted``;
  - ``network_tracking_domain_id``, ``conversion_method`` (``server_postback``…);
  - ``is_allow_duplicate_conversion`` — the base conversion's "Allow Duplicate
    Conversions";
  - email attribution: ``is_email_attribution_enabled``,
    ``email_attribution_method`` (``first_affiliate_attribution`` |
    ``last_affiliate_attribution``), ``is_email_attribution_window_enabled``,
    ``email_attribution_window_minute``, ``email_attribution_window_type``;
  - ``relationship.payout_revenue`` ``{"total", "entries": [...]}`` — the base
    conversion (``is_default: true``) and the offer's events, each with
    ``network_offer_payout_revenue_id`` (the ``event_id`` of postbacks),
    ``entry_name``, ``payout_type``, ``revenue_type``, ``is_default``,
    ``is_private``, ``is_postback_disabled``, ``is_must_approve_conversion``,
    ``is_allow_duplicate_conversion`` ("Allow Duplicate Events", needed for
    rebills), ``is_email_attribution_default_event`` (the email attribution's
    Associated Event), ``global_advertiser_event_id``;
  - ``relationship.advertiser`` — ``network_advertiser_id``, ``name``,
    ``account_status``, ``verification_token`` ("" when tokens are off),
    ``attribution_method``, ``email_attribution_method``;
  - ``relationship.tracking_domain`` — as ``GET /v1/networks/domains/tracking/{id}``.

* ``GET /v1/networks/domains/tracking/{domainId}`` → ``{"network_tracking_domain_id",
  "network_id", "url", "is_primary_domain", "domain_status", "is_ssl_enabled",
  ...}`` (developers.everflow.io/api-reference/get-networkstrackingdomain), or 404.

Offer ``1`` exists from the start, set up the way the bridge needs (active, event
``2`` "Rebill" allowing duplicates and being the email attribution's Associated
Event, tracking domain ``tracking.example.local``: the local stack's settings).
Change it with ``POST /__standin/network_offer`` ``{"network_offer_id": 1, ...fields}``
(Python ``set_network_offer(offer_id, changes)``; ``relationship`` is merged one level
deep, an ``entries`` list replaces the old one; ``{"network_offer_id": 9, "deleted":
true}`` removes one), and the tracking domains with ``POST /__standin/tracking_domain``.

``POST /__standin/api_key`` ``{"api_key": "…"}``: from then on a Network API call
whose ``X-Eflow-API-Key`` differs is answered 401 ``{"error": "Unauthorized"}``
(``{"api_key": null}``, the default, accepts any key).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0
    body: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Answer:
        return cls(int(raw.get("status", 200)), float(raw.get("delay", 0.0)), raw.get("body"))


@dataclass(frozen=True)
class OfferTerms:
    """An offer's payout and revenue: flat amounts plus percentages of the sale amount
    (the partner's payout may also be a percentage of the revenue: RevShare)."""

    payout: Decimal = Decimal(10)
    payout_percent: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)
    revenue_percent: Decimal = Decimal(100)
    payout_percent_of_revenue: Decimal = Decimal(0)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OfferTerms:
        names = ("payout", "payout_percent", "revenue", "revenue_percent")
        values = {
            n: Decimal(str(raw[n])) for n in (*names, "payout_percent_of_revenue") if n in raw
        }
        return cls(**values)

    def amounts(self, sale_amount: Decimal) -> tuple[Decimal, Decimal]:
        """(payout, revenue) of a conversion of ``sale_amount``, to the cent."""
        cent = Decimal("0.01")
        revenue = self.revenue + sale_amount * self.revenue_percent / 100
        payout = (
            self.payout
            + sale_amount * self.payout_percent / 100
            + revenue * self.payout_percent_of_revenue / 100
        )
        return payout.quantize(cent, ROUND_HALF_UP), revenue.quantize(cent, ROUND_HALF_UP)


@dataclass
class StandInConversion:
    """A conversion the stand-in accepted, as Everflow would hold it."""

    conversion_id: str
    transaction_id: str | None
    order_id: str | None
    is_event: bool
    sale_amount: Decimal
    payout: Decimal
    revenue: Decimal
    status: str = "approved"
    email: str | None = None
    offer_id: str | None = None
    affiliate_id: str | None = None
    advertiser_id: str | None = None
    event: str | None = None
    event_id: str | None = None
    conversion_unix_timestamp: int = field(default_factory=lambda: int(time.time()))
    click_unix_timestamp: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversion_id": self.conversion_id,
            "transaction_id": self.transaction_id,
            "order_id": self.order_id,
            "status": self.status,
            "is_event": self.is_event,
            "sale_amount": float(self.sale_amount),
            "payout": float(self.payout),
            "revenue": float(self.revenue),
        }

    def report_row(self) -> dict[str, Any]:
        """The conversion as a row of Everflow's conversion reports."""

        def related(name: str, value: str | None) -> dict[str, Any] | None:
            return None if value is None else {name: int(value) if value.isdigit() else value}

        return {
            **self.as_dict(),
            "email": self.email or "",
            "event": self.event or "",
            "conversion_unix_timestamp": self.conversion_unix_timestamp,
            "click_unix_timestamp": self.click_unix_timestamp or self.conversion_unix_timestamp,
            "network_offer_payout_revenue_id": int(self.event_id or 0)
            if (self.event_id or "0").isdigit()
            else 0,
            "relationship": {
                "offer": related("network_offer_id", self.offer_id),
                "affiliate": related("network_affiliate_id", self.affiliate_id),
                "advertiser": related("network_advertiser_id", self.advertiser_id),
            },
        }


LOCAL_TRACKING_DOMAIN = "tracking.example.local"


def default_tracking_domains() -> dict[str, dict[str, Any]]:
    return {
        "1": {
            "network_tracking_domain_id": 1,
            "network_id": 1,
            "url": LOCAL_TRACKING_DOMAIN,
            "is_primary_domain": True,
            "domain_status": "active",
            "is_unassignable": False,
            "ownership": "internal",
            "is_ssl_enabled": True,
            "html_static_redirect": "",
            "url_redirect": "",
            "public_notes": "",
            "time_created": 1_767_225_600,
            "time_saved": 1_767_225_600,
        }
    }


def default_network_offer(offer_id: str = "1", event_id: str = "2") -> dict[str, Any]:
    """An offer set up as the bridge needs it: active, its rebill event allowing
    duplicates and being the email attribution's Associated Event."""
    entry_defaults = {
        "network_id": 1,
        "network_offer_id": int(offer_id),
        "payout_type": "cpa",
        "payout_amount": 10.0,
        "payout_percentage": 0,
        "revenue_type": "rps",
        "revenue_amount": 0.0,
        "revenue_percentage": 100,
        "is_private": False,
        "is_postback_disabled": False,
        "is_enforce_caps": False,
        "is_must_approve_conversion": False,
        "global_advertiser_event_id": 0,
        "time_created": 1_767_225_600,
    }
    return {
        "network_offer_id": int(offer_id),
        "network_id": 1,
        "network_advertiser_id": 1,
        "name": "Stripe subscriptions",
        "offer_status": "active",
        "currency_id": "USD",
        "network_tracking_domain_id": 1,
        "conversion_method": "server_postback",
        "is_allow_duplicate_conversion": False,
        "is_email_attribution_enabled": True,
        "email_attribution_method": "first_affiliate_attribution",
        "is_email_attribution_window_enabled": False,
        "email_attribution_window_minute": 0,
        "email_attribution_window_type": "",
        "time_created": 1_767_225_600,
        "time_saved": 1_767_225_600,
        "relationship": {
            "payout_revenue": {
                "total": 2,
                "entries": [
                    {
                        **entry_defaults,
                        "network_offer_payout_revenue_id": 1,
                        "entry_name": "Base",
                        "is_default": True,
                        "is_allow_duplicate_conversion": False,
                        "is_email_attribution_default_event": False,
                    },
                    {
                        **entry_defaults,
                        "network_offer_payout_revenue_id": int(event_id),
                        "entry_name": "Rebill",
                        "is_default": False,
                        "is_allow_duplicate_conversion": True,
                        "is_email_attribution_default_event": True,
                    },
                ],
            },
            "advertiser": {
                "network_advertiser_id": 1,
                "name": "Local advertiser",
                "account_status": "active",
                "verification_token": "",
                "attribution_method": "last_touch",
                "email_attribution_method": "first_affiliate_attribution",
            },
        },
    }


_OFFER_PATH = re.compile(r"/v1/networks/offers/([0-9]+)")
_TRACKING_DOMAIN_PATH = re.compile(r"/v1/networks/domains/tracking/([0-9]+)")
EMAIL_REPORT_PATH = "/v1/networks/reporting/conversions/email"
CONVERSION_REPORT_PATH = "/v1/networks/reporting/conversions"
MAX_PAGE_SIZE = 2000
_YEAR = 366 * 86_400


def _report_time(value: Any, end: bool) -> int | None:
    """Unix seconds of a report's ``from``/``to`` (UTC); a bare day's ``to`` is the
    end of that day. None when unreadable."""
    if not isinstance(value, str):
        return None
    for pattern, whole_day in (("%Y-%m-%d %H:%M:%S", False), ("%Y-%m-%d", True)):
        try:
            moment = datetime.strptime(value.strip(), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
        seconds = int(moment.timestamp())
        return seconds + 86_399 if whole_day and end else seconds
    return None


_CONVERSION_PATH = re.compile(
    r"/v1/networks/reporting/conversions/([^/]+)(?:/(saleamount|payoutrevenue))?"
)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: str
    status: int
    received_at: float
    connection: str
    conversion_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "params": dict(self.query),
            "body": self.body,
            "status": self.status,
            "received_at": self.received_at,
            "connection": self.connection,
            "conversion_id": self.conversion_id,
        }


@dataclass
class EverflowStandIn:
    port: int = 0
    default: Answer = field(default_factory=Answer)
    received: list[ReceivedRequest] = field(default_factory=list)
    _script: deque[Answer] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    connections: set[str] = field(default_factory=set)
    offer: OfferTerms = field(default_factory=OfferTerms)
    recorded: dict[str, StandInConversion] = field(default_factory=dict)
    network_offers: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"1": default_network_offer()}
    )
    tracking_domains: dict[str, dict[str, Any]] = field(default_factory=default_tracking_domains)
    # None: any X-Eflow-API-Key is accepted; else others are answered 401
    api_key: str | None = None

    # ------------------------------------------------------------ control

    def script(self, answers: list[dict[str, Any]]) -> None:
        with self._lock:
            for raw in answers:
                for _ in range(int(raw.get("times", 1))):
                    self._script.append(Answer.from_dict(raw))

    def set_default(self, raw: dict[str, Any]) -> None:
        with self._lock:
            self.default = Answer.from_dict(raw)

    def set_offer(self, raw: dict[str, Any]) -> None:
        """The offer's terms for the conversions accepted from now on."""
        with self._lock:
            self.offer = OfferTerms.from_dict(raw)

    def set_network_offer(self, offer_id: str | int, changes: dict[str, Any]) -> None:
        """Change (or create) an offer: fields replaced, ``relationship`` merged one
        level deep; ``{"deleted": True}`` removes it."""
        key = str(offer_id)
        with self._lock:
            if changes.get("deleted"):
                self.network_offers.pop(key, None)
                return
            offer = self.network_offers.setdefault(key, default_network_offer(key))
            for name, value in changes.items():
                if name == "relationship" and isinstance(value, dict):
                    relationship = offer.setdefault("relationship", {})
                    for part, content in value.items():
                        if isinstance(content, dict) and isinstance(relationship.get(part), dict):
                            relationship[part] = {**relationship[part], **content}
                        else:
                            relationship[part] = content
                elif name != "network_offer_id":
                    offer[name] = value

    def network_offer(self, offer_id: str | int) -> dict[str, Any] | None:
        with self._lock:
            found = self.network_offers.get(str(offer_id))
            return None if found is None else json.loads(json.dumps(found))

    def set_tracking_domain(self, domain_id: str | int, changes: dict[str, Any]) -> None:
        key = str(domain_id)
        with self._lock:
            domain = self.tracking_domains.setdefault(
                key, {**default_tracking_domains()["1"], "network_tracking_domain_id": int(key)}
            )
            domain.update({k: v for k, v in changes.items() if k != "network_tracking_domain_id"})

    def set_api_key(self, api_key: str | None) -> None:
        with self._lock:
            self.api_key = api_key

    def add_conversion(self, **fields: Any) -> str:
        """Record a conversion as Everflow would have from the advertiser's own
        tracking (its sign-up postback with ``email``); returns its conversion_id."""
        conversion_id = str(fields.get("conversion_id") or uuid.uuid4().hex[:16])

        def text(name: str) -> str | None:
            value = fields.get(name)
            return None if value is None or value == "" else str(value)

        stamp = fields.get("conversion_unix_timestamp")
        click = fields.get("click_unix_timestamp")
        sale_amount = _decimal(fields.get("sale_amount", 0)) or Decimal(0)
        with self._lock:
            payout, revenue = self.offer.amounts(sale_amount)
            self.recorded[conversion_id] = StandInConversion(
                conversion_id=conversion_id,
                transaction_id=text("transaction_id"),
                order_id=text("order_id"),
                is_event=bool(fields.get("is_event", False)),
                sale_amount=sale_amount,
                payout=payout,
                revenue=revenue,
                status=str(fields.get("status") or "approved"),
                email=text("email"),
                offer_id=text("offer_id"),
                affiliate_id=text("affiliate_id"),
                advertiser_id=text("advertiser_id"),
                event=text("event"),
                event_id=text("event_id"),
                conversion_unix_timestamp=int(stamp) if stamp is not None else int(time.time()),
                click_unix_timestamp=int(click) if click is not None else None,
            )
        return conversion_id

    def conversion(self, conversion_id: str) -> StandInConversion | None:
        """The conversion as Everflow would hold it now (a copy)."""
        with self._lock:
            found = self.recorded.get(conversion_id)
            return None if found is None else StandInConversion(**found.__dict__)

    def requests(self, path_prefix: str = "/") -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.received if r.path.startswith(path_prefix)]

    def postbacks(self) -> list[ReceivedRequest]:
        """Conversion postbacks (``GET /?…``) received."""
        return [r for r in self.requests() if r.method == "GET" and r.path == "/"]

    def reversals(self) -> list[ReceivedRequest]:
        """Reversal postbacks (``GET /reversal?…``) received."""
        return [r for r in self.requests() if r.method == "GET" and r.path == "/reversal"]

    def api_calls(self) -> list[ReceivedRequest]:
        """Network API calls received (``/v1/networks/…``)."""
        return self.requests("/v1/networks/")

    def clear(self) -> None:
        """Forget the requests received (the conversions recorded stay, as in Everflow)."""
        with self._lock:
            self.received.clear()
            self.connections.clear()

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # ------------------------------------------------------------ serving

    def _network_api_read(self, method: str, path: str) -> tuple[int, str] | None:
        """The Network API reads the bridge makes, answered from what was recorded."""
        if method != "GET":
            return None
        offer = _OFFER_PATH.fullmatch(path)
        if offer:
            document = self.network_offer(offer.group(1))
            if document is None:
                return 404, json.dumps({"error": "offer not found"})
            domain_id = str(document.get("network_tracking_domain_id", ""))
            with self._lock:
                domain = self.tracking_domains.get(domain_id)
                if domain is not None:
                    document.setdefault("relationship", {})["tracking_domain"] = dict(domain)
            return 200, json.dumps(document)
        domain_match = _TRACKING_DOMAIN_PATH.fullmatch(path)
        if domain_match:
            with self._lock:
                found_domain = self.tracking_domains.get(domain_match.group(1))
                text = None if found_domain is None else json.dumps(found_domain)
            return (
                (404, json.dumps({"error": "tracking domain not found"}))
                if text is None
                else (
                    200,
                    text,
                )
            )
        prefix = "/v1/networks/reporting/events/"
        if path.startswith(prefix):
            transaction_id = unquote(path[len(prefix) :])
            with self._lock:
                events = [
                    c.as_dict()
                    for c in self.recorded.values()
                    if c.transaction_id == transaction_id
                ]
            return 200, json.dumps({"events": events})
        match = _CONVERSION_PATH.fullmatch(path)
        if match and not match.group(2):
            with self._lock:
                found = self.recorded.get(unquote(match.group(1)))
                document = None if found is None else found.as_dict()
            if document is None:
                return 404, json.dumps({"error": "conversion not found"})
            return 200, json.dumps(document)
        return None

    def _report(
        self, method: str, path: str, query: list[tuple[str, str]], body: str
    ) -> tuple[int, str] | None:
        """The two conversion reports, from what was recorded; None for other paths."""
        if method != "POST" or path not in (EMAIL_REPORT_PATH, CONVERSION_REPORT_PATH):
            return None
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            return 400, json.dumps({"error": "body is not JSON"})
        if not isinstance(document, dict):
            return 400, json.dumps({"error": "body must be an object"})
        start = _report_time(document.get("from"), end=False)
        end = _report_time(document.get("to"), end=True)
        if start is None or end is None or end < start:
            return 400, json.dumps({"error": "from and to must be YYYY-mm-DD [hh:mm:ss]"})
        if end - start > _YEAR:
            return 400, json.dumps({"error": "the interval is limited to one year"})
        with self._lock:
            rows = sorted(
                (c for c in self.recorded.values() if start <= c.conversion_unix_timestamp <= end),
                key=lambda c: (c.conversion_unix_timestamp, c.conversion_id),
            )
        if path == EMAIL_REPORT_PATH:
            email = document.get("email")
            if not isinstance(email, str) or "@" not in email:
                return 400, json.dumps({"error": "email is required"})
            wanted = email.strip().lower()
            found = [c.report_row() for c in rows if (c.email or "").strip().lower() == wanted]
            return 200, json.dumps({"conversions": found})
        params = dict(query)
        try:
            page = int(params.get("page") or 1)
            page_size = int(params.get("page_size") or 50)
        except ValueError:
            return 400, json.dumps({"error": "page and page_size must be integers"})
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            return 400, json.dumps({"error": f"page >= 1, page_size 1-{MAX_PAGE_SIZE}"})
        show_conversions = document.get("show_conversions", True) is not False
        show_events = document.get("show_events", True) is not False
        filters = ((document.get("query") or {}).get("filters")) or []
        attribute = {
            "offer": "offer_id",
            "advertiser": "advertiser_id",
            "affiliate": "affiliate_id",
        }

        def kept(c: StandInConversion) -> bool:
            if (c.is_event and not show_events) or (not c.is_event and not show_conversions):
                return False
            for wanted_filter in filters:
                name = attribute.get(str(wanted_filter.get("resource_type")))
                if name and getattr(c, name) != str(wanted_filter.get("filter_id_value")):
                    return False
            return True

        selected = [c for c in rows if kept(c)]
        chunk = selected[(page - 1) * page_size : page * page_size]
        return 200, json.dumps(
            {
                "conversions": [c.report_row() for c in chunk],
                "paging": {"page": page, "page_size": page_size, "total_count": len(selected)},
            }
        )

    def _record(
        self, method: str, path: str, query: list[tuple[str, str]], body: str
    ) -> str | None:
        """What an accepted request changes in the recorded conversions: a new
        conversion, a reversal, a status, a sale amount, a payout and revenue. Returns
        an error text when Everflow would refuse the change."""
        params = dict(query)
        with self._lock:
            if method == "GET" and path == "/reversal":
                for c in self.recorded.values():
                    if params.get("conversion_id") == c.conversion_id or (
                        "conversion_id" not in params
                        and params.get("order_id")
                        and params.get("order_id") == c.order_id
                    ):
                        c.status = "rejected"
                return None
            try:
                document = json.loads(body) if body else {}
            except ValueError:
                return "body is not JSON"
            if method == "PATCH" and path == "/v1/networks/reporting/conversions":
                for conversion_id in document.get("conversion_ids") or []:
                    if conversion_id in self.recorded:
                        self.recorded[conversion_id].status = str(document["conversion_status"])
                return None
            match = _CONVERSION_PATH.fullmatch(path)
            if method != "PUT" or not match or not match.group(2):
                return None
            found = self.recorded.get(unquote(match.group(1)))
            if found is None:
                return "conversion not found"
            if match.group(2) == "saleamount":
                amount = _decimal(document.get("sale_amount"))
                if amount is None:
                    return "sale_amount must be a number >= 0"
                found.sale_amount = amount
                return None
            payout, revenue = _decimal(document.get("payout")), _decimal(document.get("revenue"))
            if payout is None or revenue is None:
                return "payout and revenue must be numbers >= 0"
            if found.status != "approved":
                return "payout and revenue can only be updated on approved conversions"
            found.payout, found.revenue = payout, revenue
            return None

    def _accept_conversion(self, query: list[tuple[str, str]], conversion_id: str) -> None:
        params = dict(query)
        sale_amount = _decimal(params.get("amount") or 0) or Decimal(0)
        with self._lock:
            payout, revenue = self.offer.amounts(sale_amount)
            self.recorded[conversion_id] = StandInConversion(
                conversion_id=conversion_id,
                transaction_id=params.get("transaction_id"),
                order_id=params.get("order_id"),
                is_event="event_id" in params or "adv_event_id" in params,
                sale_amount=sale_amount,
                payout=payout,
                revenue=revenue,
                email=params.get("email") or None,
                offer_id=params.get("oid") or None,
                event_id=params.get("event_id") or None,
            )

    def _refused_key(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: str,
        connection: str,
        api_key: str | None,
    ) -> tuple[int, str] | None:
        """401 for a Network API call with another key than the one set (if any)."""
        with self._lock:
            expected_key = self.api_key
            if not path.startswith("/v1/networks/") or not expected_key or api_key == expected_key:
                return None
            self.received.append(
                ReceivedRequest(method, path, query, body, 401, time.time(), connection)
            )
        return 401, json.dumps({"error": "Unauthorized"})

    def _respond(
        self, method: str, path: str, query: list[tuple[str, str]], body: str, connection: str
    ) -> tuple[int, str]:
        api = self._network_api_read(method, path)
        if api is not None:
            status, payload = api
            with self._lock:
                self.received.append(
                    ReceivedRequest(method, path, query, body, status, time.time(), connection)
                )
            return status, payload
        answer = self._next_answer()
        if answer.delay:
            time.sleep(answer.delay)
        conversion_id = None
        status = answer.status
        api_write = path.startswith("/v1/networks/")
        report = (
            self._report(method, path, query, body)
            if answer.body is None and 200 <= status < 300
            else None
        )
        if report is not None:
            status, payload = report
        elif answer.body is not None:
            payload = answer.body
        elif status == 204:
            payload = ""
        elif 200 <= status < 300 and api_write:
            refused = self._record(method, path, query, body)
            status, payload = (
                (400, json.dumps({"error": refused})) if refused else (status, '{"result": true}')
            )
        elif 200 <= status < 300:
            conversion_id = uuid.uuid4().hex[:16]
            payload = json.dumps(
                {
                    "conversion_id": conversion_id,
                    "transaction_id": dict(query).get("transaction_id"),
                }
            )
        else:
            payload = json.dumps({"error": f"stand-in answered {status}"})
        if report is None and 200 <= status < 300 and not api_write:
            if path == "/" and conversion_id:
                self._accept_conversion(query, conversion_id)
            elif path == "/reversal":
                self._record(method, path, query, body)
        with self._lock:
            self.received.append(
                ReceivedRequest(
                    method, path, query, body, status, time.time(), connection, conversion_id
                )
            )
            self.connections.add(connection)
        return status, payload

    def start(self) -> EverflowStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Everflow's servers do

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, payload: str) -> None:
                data = payload.encode()
                self.send_response(status)
                if data:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                if split.path == "/__standin/requests":
                    if self.command == "DELETE":
                        standin.clear()
                        self._send(200, "[]")
                    else:
                        self._send(200, json.dumps([r.as_dict() for r in standin.requests()]))
                    return
                if split.path == "/__standin/script" and self.command == "POST":
                    standin.script(json.loads(body or "[]"))
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/default" and self.command == "POST":
                    standin.set_default(json.loads(body or "{}"))
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/offer" and self.command == "POST":
                    standin.set_offer(json.loads(body or "{}"))
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/network_offer" and self.command == "POST":
                    changes = json.loads(body or "{}")
                    standin.set_network_offer(changes.get("network_offer_id", 1), changes)
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/tracking_domain" and self.command == "POST":
                    changes = json.loads(body or "{}")
                    standin.set_tracking_domain(
                        changes.get("network_tracking_domain_id", 1), changes
                    )
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/api_key" and self.command == "POST":
                    standin.set_api_key(json.loads(body or "{}").get("api_key"))
                    self._send(200, "{}")
                    return
                if split.path == "/__standin/conversions" and self.command == "POST":
                    added = [standin.add_conversion(**raw) for raw in json.loads(body or "[]")]
                    self._send(200, json.dumps({"conversion_ids": added}))
                    return
                peer = f"{self.client_address[0]}:{self.client_address[1]}"
                query = parse_qsl(split.query, keep_blank_values=True)
                key = self.headers.get("X-Eflow-API-Key")
                status, payload = standin._refused_key(
                    self.command, split.path, query, body, peer, key
                ) or standin._respond(self.command, split.path, query, body, peer)
                self._send(status, payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="everflow-standin"
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
