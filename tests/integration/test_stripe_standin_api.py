"""The Stripe API stand-in, driven through the stripe library as the bridge, setup,
doctor and the history commands drive Stripe: a StripeClient pointed at 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from stripe_everflow_cli.stripe_standin import StripeStandIn

FULL_KEY = "sk_test_51QstandInFullAccessKey000"
BRIDGE_KEY = "rk_test_51QstandInBridgeReadKey0000"
LEGACY = "2024-06-20"
BASIL = "2025-03-31.basil"


@pytest.fixture
def standin() -> Iterator[StripeStandIn]:
    with StripeStandIn() as running:
        yield running


def client(
    standin: StripeStandIn, key: str = FULL_KEY, *, retries: int = 0, version: str | None = None
) -> stripe.StripeClient:
    options: dict[str, Any] = {
        "base_addresses": {"api": standin.url},
        "max_network_retries": retries,
    }
    if version:
        options["stripe_version"] = version
    return stripe.StripeClient(key, **options)


def values(obj: Any) -> dict[str, Any]:
    return obj.to_dict()  # type: ignore[no-any-return]


# ------------------------------------------------------------------ resources


def test_customer_is_answered_in_stripes_shape(standin: StripeStandIn) -> None:
    # Given
    standin.add("customers", id="cus_QJenny", email="jenny@example.com", metadata={"k": "v"})
    # When
    customer = values(client(standin).v1.customers.retrieve("cus_QJenny"))
    # Then
    assert customer["email"] == "jenny@example.com"
    assert customer["metadata"] == {"k": "v"}
    assert set(customer) == set(standin.example("customer"))


def test_unknown_object_is_resource_missing(standin: StripeStandIn) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client(standin).v1.customers.retrieve("cus_Nobody")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert "No such customer: 'cus_Nobody'" in str(raised.value.user_message)


def test_deleted_customer_answers_deleted(standin: StripeStandIn) -> None:
    standin.add("customers", id="cus_QGone")
    standin.delete("customers", "cus_QGone")
    assert values(client(standin).v1.customers.retrieve("cus_QGone")) == {
        "id": "cus_QGone",
        "object": "customer",
        "deleted": True,
    }


@pytest.mark.parametrize(
    ("resource", "prefix", "call"),
    [
        ("charges", "ch_", lambda c: c.v1.charges),
        ("refunds", "re_", lambda c: c.v1.refunds),
        ("disputes", "dp_", lambda c: c.v1.disputes),
        ("payment_intents", "pi_", lambda c: c.v1.payment_intents),
        ("promotion_codes", "promo_", lambda c: c.v1.promotion_codes),
        ("checkout_sessions", "cs_test_", lambda c: c.v1.checkout.sessions),
        ("invoice_payments", "inpay_", lambda c: c.v1.invoice_payments),
        ("invoices", "in_", lambda c: c.v1.invoices),
        ("customers", "cus_", lambda c: c.v1.customers),
    ],
)
def test_each_resource_lists_and_retrieves(
    standin: StripeStandIn, resource: str, prefix: str, call: Any
) -> None:
    # Given three objects, created a second apart
    for n in range(3):
        standin.add(resource, id=f"{prefix}QStandIn{n}", created=1_700_000_000 + n)
    service = call(client(standin))
    # When
    listed = service.list(params={"limit": 2})
    one = service.retrieve(f"{prefix}QStandIn1")
    # Then newest first, a page of two, more behind it
    assert [o.id for o in listed.data] == [f"{prefix}QStandIn2", f"{prefix}QStandIn1"]
    assert listed.has_more is True
    assert values(listed)["url"].startswith("/v1/")
    assert one.id == f"{prefix}QStandIn1"


def test_events_list_filters_type_types_and_created(standin: StripeStandIn) -> None:
    # Given
    invoice = standin.example("invoice")
    kinds = ["invoice.paid", "charge.refunded", "invoice.paid", "charge.dispute.created"]
    for n, kind in enumerate(kinds):
        standin.add_event(kind, invoice, created=1_700_000_000 + n, event_id=f"evt_Q{n}")
    events = client(standin).v1.events
    # When / Then
    assert [e.id for e in events.list(params={"type": "invoice.paid"}).data] == [
        "evt_Q2",
        "evt_Q0",
    ]
    assert [e.id for e in events.list(params={"type": "charge.*"}).data] == ["evt_Q3", "evt_Q1"]
    assert [
        e.id for e in events.list(params={"types": ["charge.refunded", "invoice.paid"]}).data
    ] == ["evt_Q2", "evt_Q1", "evt_Q0"]
    window = {"created": {"gte": 1_700_000_001, "lte": 1_700_000_002}}
    assert [e.id for e in events.list(params=window).data] == ["evt_Q2", "evt_Q1"]
    event = values(events.retrieve("evt_Q1"))
    assert event["type"] == "charge.refunded"
    assert event["api_version"] == BASIL
    assert set(event) >= set(standin.example("event"))


def test_created_filters_are_exclusive_with_gt_and_lt(standin: StripeStandIn) -> None:
    for n in range(5):
        standin.add("charges", id=f"ch_Q{n}", created=100 + n)
    listed = client(standin).v1.charges.list(params={"created": {"gt": 100, "lt": 104}})
    assert [c.id for c in listed.data] == ["ch_Q3", "ch_Q2", "ch_Q1"]


def test_checkout_sessions_filter_by_payment_intent(standin: StripeStandIn) -> None:
    standin.add("checkout_sessions", id="cs_test_QOne", payment_intent="pi_QOne", created=1)
    standin.add("checkout_sessions", id="cs_test_QTwo", payment_intent="pi_QTwo", created=2)
    listed = client(standin).v1.checkout.sessions.list(params={"payment_intent": "pi_QOne"})
    assert [s.id for s in listed.data] == ["cs_test_QOne"]


def test_invoice_payments_filter_by_payment_intent_and_type(standin: StripeStandIn) -> None:
    # Given the basil link between an invoice and the intent that paid it
    standin.add(
        "invoice_payments",
        id="inpay_QOne",
        invoice="in_QOne",
        payment={"type": "payment_intent", "payment_intent": "pi_QOne"},
    )
    standin.add(
        "invoice_payments",
        id="inpay_QTwo",
        invoice="in_QTwo",
        payment={"type": "payment_intent", "payment_intent": "pi_QTwo"},
    )
    # When (as the bridge's StripeReader asks)
    page = client(standin).v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": "pi_QTwo"}, "limit": 1}
    )
    # Then
    assert [(p.id, p.invoice) for p in page.data] == [("inpay_QTwo", "in_QTwo")]


def test_unknown_list_parameter_is_refused(standin: StripeStandIn) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client(standin).v1.customers.list(params={"colour": "blue"})  # type: ignore[typeddict-unknown-key]
    assert raised.value.http_status == 400
    assert "colour" in str(raised.value.user_message)


def test_limit_beyond_100_is_refused(standin: StripeStandIn) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client(standin).v1.customers.list(params={"limit": 101})
    assert raised.value.param == "limit"


# ------------------------------------------------------------------ pagination


def test_auto_paging_walks_every_page_once_newest_first(standin: StripeStandIn) -> None:
    # Given 250 invoices, some sharing a second
    standin.put_many(
        "invoices",
        (
            {**standin.example("invoice"), "id": f"in_Q{n:04d}", "created": 1_000 + n // 3}
            for n in range(250)
        ),
    )
    # When
    seen = [
        i.id for i in client(standin).v1.invoices.list(params={"limit": 100}).auto_paging_iter()
    ]
    # Then
    assert len(seen) == 250
    assert len(set(seen)) == 250
    assert seen[0] == "in_Q0249"
    assert seen[-1] == "in_Q0000"
    pages = [r for r in standin.requests("/v1/invoices")]
    assert len(pages) == 3
    assert dict(pages[1].query)["starting_after"] == seen[99]


def test_ending_before_pages_towards_newer_objects(standin: StripeStandIn) -> None:
    for n in range(10):
        standin.add("refunds", id=f"re_Q{n}", created=n)
    page = client(standin).v1.refunds.list(params={"ending_before": "re_Q3", "limit": 4})
    assert [r.id for r in page.data] == ["re_Q7", "re_Q6", "re_Q5", "re_Q4"]
    assert page.has_more is True
    last = client(standin).v1.refunds.list(params={"ending_before": "re_Q7", "limit": 4})
    assert [r.id for r in last.data] == ["re_Q9", "re_Q8"]
    assert last.has_more is False


def test_starting_after_an_unknown_object_is_refused(standin: StripeStandIn) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client(standin).v1.charges.list(params={"starting_after": "ch_Nope"})
    assert raised.value.param == "starting_after"


def test_filtered_pages_follow_the_filter_across_pages(standin: StripeStandIn) -> None:
    for n in range(30):
        standin.add("disputes", id=f"dp_Q{n:02d}", created=n, charge=f"ch_Q{n % 2}")
    seen = [
        d.id
        for d in client(standin)
        .v1.disputes.list(params={"charge": "ch_Q1", "limit": 4})
        .auto_paging_iter()
    ]
    assert seen == [f"dp_Q{n:02d}" for n in range(29, 0, -2)]


# ------------------------------------------------------------------ expand and shapes


def seed_discounted_invoice(standin: StripeStandIn) -> None:
    standin.add("promotion_codes", id="promo_QFall", code="FALL20")
    standin.add("discounts", id="di_QFall", promotion_code="promo_QFall", invoice="in_QCoupon")
    standin.add(
        "invoices",
        id="in_QCoupon",
        discounts=["di_QFall"],
        status="paid",
        parent={
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": "sub_QOne"},
            "type": "subscription_details",
        },
    )


def test_invoice_discounts_expand_to_promotion_codes(standin: StripeStandIn) -> None:
    seed_discounted_invoice(standin)
    invoices = client(standin).v1.invoices
    plain = values(invoices.retrieve("in_QCoupon"))
    expanded = values(
        invoices.retrieve("in_QCoupon", params={"expand": ["discounts.promotion_code"]})
    )
    assert plain["discounts"] == ["di_QFall"]
    [discount] = expanded["discounts"]
    assert discount["object"] == "discount"
    assert discount["promotion_code"]["code"] == "FALL20"


def test_list_expands_under_data(standin: StripeStandIn) -> None:
    standin.add("customers", id="cus_QJenny", email="jenny@example.com")
    standin.add("charges", id="ch_QOne", customer="cus_QJenny")
    page = values(client(standin).v1.charges.list(params={"expand": ["data.customer"]}))
    assert page["data"][0]["customer"]["email"] == "jenny@example.com"


def test_expanding_what_is_not_there_is_refused(standin: StripeStandIn) -> None:
    standin.add("charges", id="ch_QOne")
    with pytest.raises(stripe.InvalidRequestError):
        client(standin).v1.charges.retrieve("ch_QOne", params={"expand": ["nothing"]})


def test_basil_invoice_has_no_direct_links(standin: StripeStandIn) -> None:
    seed_discounted_invoice(standin)
    invoice = values(client(standin, version=BASIL).v1.invoices.retrieve("in_QCoupon"))
    assert not {"charge", "payment_intent", "paid", "discount", "subscription"} & set(invoice)
    assert invoice["parent"]["subscription_details"]["subscription"] == "sub_QOne"


def test_legacy_invoice_carries_its_links_and_single_discount(standin: StripeStandIn) -> None:
    # Given an invoice paid by an intent (basil's InvoicePayment), its charge, a discount
    seed_discounted_invoice(standin)
    standin.add(
        "invoice_payments",
        id="inpay_QCoupon",
        invoice="in_QCoupon",
        payment={"type": "payment_intent", "payment_intent": "pi_QCoupon"},
    )
    standin.add("payment_intents", id="pi_QCoupon", latest_charge="ch_QCoupon")
    standin.add("charges", id="ch_QCoupon", payment_intent="pi_QCoupon")
    legacy = client(standin, version=LEGACY)
    # When
    invoice = values(
        legacy.v1.invoices.retrieve("in_QCoupon", params={"expand": ["discount.promotion_code"]})
    )
    charge = values(legacy.v1.charges.retrieve("ch_QCoupon"))
    intent = values(legacy.v1.payment_intents.retrieve("pi_QCoupon"))
    # Then
    assert invoice["payment_intent"] == "pi_QCoupon"
    assert invoice["charge"] == "ch_QCoupon"
    assert invoice["paid"] is True
    assert invoice["subscription"] == "sub_QOne"
    assert invoice["discount"]["id"] == "di_QFall"
    assert invoice["discount"]["promotion_code"]["code"] == "FALL20"
    assert "parent" not in invoice
    assert charge["invoice"] == "in_QCoupon"
    assert intent["invoice"] == "in_QCoupon"


def test_basil_intent_has_no_invoice_and_legacy_one_off_has_none(standin: StripeStandIn) -> None:
    standin.add("payment_intents", id="pi_QOneOff")
    assert "invoice" not in values(
        client(standin, version=BASIL).v1.payment_intents.retrieve("pi_QOneOff")
    )
    legacy = values(client(standin, version=LEGACY).v1.payment_intents.retrieve("pi_QOneOff"))
    assert legacy["invoice"] is None


def test_a_legacy_invoice_seeded_with_its_intent_is_linked_in_basil(
    standin: StripeStandIn,
) -> None:
    # Given an invoice stored in the pre-basil shape
    standin.add("invoices", id="in_QOld", payment_intent="pi_QOld", charge="ch_QOld", paid=True)
    # When basil asks which invoice the intent paid
    page = client(standin, version=BASIL).v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": "pi_QOld"}}
    )
    # Then
    assert [p.invoice for p in page.data] == ["in_QOld"]
    assert "payment_intent" not in values(
        client(standin, version=BASIL).v1.invoices.retrieve("in_QOld")
    )


def test_without_a_version_header_the_account_default_shapes_the_answer(
    standin: StripeStandIn,
) -> None:
    # Given an account pinned before basil and a request without Stripe-Version
    standin.settings({"api_version": LEGACY})
    standin.add("charges", id="ch_QPlain")
    request = urllib.request.Request(
        f"{standin.url}/v1/charges/ch_QPlain", headers={"Authorization": f"Bearer {FULL_KEY}"}
    )
    # When
    with urllib.request.urlopen(request) as answer:
        charge = json.loads(answer.read())
        version = answer.headers["Stripe-Version"]
    # Then
    assert "invoice" in charge
    assert version == LEGACY


# ------------------------------------------------------------------ keys


def test_restricted_key_without_the_permission_is_refused_naming_it(
    standin: StripeStandIn,
) -> None:
    # Given a key that may read customers only
    standin.add_key(BRIDGE_KEY, {"customers": "read"})
    standin.add("customers", id="cus_QJenny")
    bridge = client(standin, BRIDGE_KEY)
    # When / Then
    assert bridge.v1.customers.retrieve("cus_QJenny").id == "cus_QJenny"
    with pytest.raises(stripe.PermissionError) as raised:
        bridge.v1.invoice_payments.list(params={"limit": 1})
    assert raised.value.http_status == 403
    message = str(raised.value.user_message)
    assert "Having the 'rak_invoice_read' permission would allow this request to continue" in (
        message
    )
    assert BRIDGE_KEY not in message
    with pytest.raises(stripe.PermissionError) as write:
        bridge.v1.webhook_endpoints.create(
            params={"url": "https://example.com/hook", "enabled_events": ["invoice.paid"]}
        )
    assert "'rak_webhook_write'" in str(write.value.user_message)


def test_write_permission_includes_read(standin: StripeStandIn) -> None:
    standin.add_key(BRIDGE_KEY, {"webhook_endpoints": "write"})
    assert client(standin, BRIDGE_KEY).v1.webhook_endpoints.list().data == []


def test_permission_is_checked_before_the_object_is_looked_up(standin: StripeStandIn) -> None:
    standin.add_key(BRIDGE_KEY, {})
    with pytest.raises(stripe.PermissionError):
        client(standin, BRIDGE_KEY).v1.customers.retrieve("cus_Nobody")


def test_unknown_key_is_401(standin: StripeStandIn) -> None:
    standin.add_key(FULL_KEY)
    with pytest.raises(stripe.AuthenticationError) as raised:
        client(standin, "sk_test_51QstandInSomeoneElse0000").v1.customers.list()
    assert raised.value.http_status == 401
    assert "Invalid API Key provided" in str(raised.value.user_message)
    assert "sk_test_51QstandInSomeoneElse0000" not in str(raised.value.user_message)


def test_without_registered_keys_any_key_reads(standin: StripeStandIn) -> None:
    assert client(standin, "rk_test_anything").v1.customers.list().data == []
    assert standin.requests()[0].api_key == "rk_test_anything"


# ------------------------------------------------------------------ faults


def test_429_carries_retry_after_and_rate_limit_error(standin: StripeStandIn) -> None:
    # Given
    standin.script([{"status": 429, "retry_after": 3}])
    # When the library retries what Stripe says it may (a plain 429 is the caller's)
    with pytest.raises(stripe.RateLimitError) as raised:
        client(standin, retries=2).v1.charges.list()
    # Then
    assert raised.value.http_status == 429
    assert raised.value.json_body is not None
    assert raised.value.json_body["error"]["code"] == "rate_limit"
    assert raised.value.headers is not None
    assert raised.value.headers["Retry-After"] == "3"
    assert len(standin.requests("/v1/charges")) == 1
    assert client(standin).v1.charges.list().data == []


def test_429_saying_should_retry_is_retried_by_the_library(standin: StripeStandIn) -> None:
    standin.script([{"status": 429, "retry_after": 0, "should_retry": True}])
    assert client(standin, retries=2).v1.charges.list().data == []
    assert [r.status for r in standin.requests("/v1/charges")] == [429, 200]


def test_5xx_is_retried_up_to_max_network_retries(standin: StripeStandIn) -> None:
    standin.script([{"status": 500, "times": 2}])
    assert client(standin, retries=2).v1.customers.list().data == []
    assert [r.status for r in standin.requests()] == [500, 500, 200]
    standin.script([{"status": 503, "times": 3}])
    with pytest.raises(stripe.APIError):
        client(standin, retries=2).v1.customers.list()


def test_scripted_answer_applies_to_its_path_only(standin: StripeStandIn) -> None:
    standin.script([{"status": 500, "path": "/v1/invoices"}])
    assert client(standin).v1.customers.list().data == []
    with pytest.raises(stripe.APIError):
        client(standin).v1.invoices.list()


def test_per_second_limit_answers_429_past_test_mode_reads() -> None:
    # Given a clock that does not move: every request falls in the same second
    with StripeStandIn(clock=lambda: 1000.0) as standin:
        standin.settings({"rate_limits": {"test": 25, "live": 100}})
        test_client = client(standin)
        for _ in range(25):
            test_client.v1.customers.list()
        # When / Then the 26th read of the second is refused
        with pytest.raises(stripe.RateLimitError) as raised:
            test_client.v1.customers.list()
        assert raised.value.headers is not None
        assert raised.value.headers["Retry-After"] == "1"
        # and a live key has its own, larger budget
        for _ in range(30):
            client(standin, "sk_live_51QstandInLive00000000").v1.customers.list()


# ------------------------------------------------------------------ webhook endpoints


def test_webhook_endpoint_create_list_update_delete(standin: StripeStandIn) -> None:
    endpoints = client(standin).v1.webhook_endpoints
    # When
    created = values(
        endpoints.create(
            params={
                "url": "https://abc.execute-api.us-east-1.amazonaws.com/webhook",
                "enabled_events": ["invoice.paid", "charge.refunded"],
                "api_version": BASIL,
                "description": "stripe-everflow bridge",
            }
        )
    )
    # Then the secret comes once, with the creation
    assert created["secret"].startswith("whsec_")
    assert standin.webhook_secrets[created["id"]] == created["secret"]
    assert created["status"] == "enabled"
    assert created["api_version"] == BASIL
    assert set(created) == set(standin.example("webhook_endpoint")) | {"secret"}
    listed = [values(e) for e in endpoints.list().data]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in values(endpoints.retrieve(created["id"]))
    # When updated
    updated = values(
        endpoints.update(
            created["id"],
            params={"enabled_events": ["invoice.paid"], "disabled": True, "url": "https://x.io/w"},
        )
    )
    # Then
    assert updated["enabled_events"] == ["invoice.paid"]
    assert updated["status"] == "disabled"
    assert updated["url"] == "https://x.io/w"
    assert updated["api_version"] == BASIL
    assert "secret" not in updated
    # When deleted
    assert values(endpoints.delete(created["id"]))["deleted"] is True
    assert endpoints.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        endpoints.retrieve(created["id"])


def test_webhook_endpoint_needs_url_and_events(standin: StripeStandIn) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client(standin).v1.webhook_endpoints.create(
            params={"url": "https://example.com/hook"}  # type: ignore[typeddict-item]
        )
    assert raised.value.param == "enabled_events"
    assert client(standin).v1.webhook_endpoints.list().data == []


def test_webhook_endpoint_create_retried_after_a_5xx_creates_one(
    standin: StripeStandIn,
) -> None:
    standin.script([{"status": 500, "method": "POST"}])
    client(standin, retries=1).v1.webhook_endpoints.create(
        params={"url": "https://example.com/hook", "enabled_events": ["invoice.paid"]}
    )
    assert len(client(standin).v1.webhook_endpoints.list().data) == 1


# ------------------------------------------------------------------ control API


def control(standin: StripeStandIn, method: str, route: str, document: Any = None) -> Any:
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(f"{standin.url}/__standin/{route}", data, method=method)
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


def test_control_api_seeds_scripts_and_shows_requests(standin: StripeStandIn) -> None:
    # Given a seed sent over HTTP, as the local stack does
    counts = control(
        standin,
        "POST",
        "seed",
        {
            "keys": {BRIDGE_KEY: {"customers": "read"}},
            "objects": {"customers": [{"id": "cus_QHttp", "email": "h@example.com"}]},
            "events": [{"type": "customer.created", "object": {"id": "cus_QHttp"}}],
        },
    )
    assert counts == {"customers": 1, "events": 1}
    # When the bridge's key reads it
    found = client(standin, BRIDGE_KEY).v1.customers.retrieve("cus_QHttp")
    # Then
    assert found.email == "h@example.com"
    [seen] = control(standin, "GET", "requests")
    assert seen["path"] == "/v1/customers/cus_QHttp"
    assert seen["authorization"] == f"Bearer {BRIDGE_KEY}"
    control(standin, "POST", "script", [{"status": 429, "retry_after": 1}])
    with pytest.raises(stripe.RateLimitError):
        client(standin, BRIDGE_KEY).v1.customers.retrieve("cus_QHttp")
    assert control(standin, "DELETE", "requests") == []
    control(standin, "POST", "objects/charges?raw=1", [{"id": "ch_QRaw", "created": 5}])
    assert [c["id"] for c in control(standin, "GET", "objects/charges")] == ["ch_QRaw"]
    control(standin, "POST", "reset")
    assert control(standin, "GET", "objects/customers") == []


# ------------------------------------------------------------------ the bridge's reader


def test_the_bridges_stripe_reader_reads_the_stand_in(standin: StripeStandIn) -> None:
    from stripe_everflow.adapters.stripe_api import StripeReader
    from stripe_everflow.domain.errors import StripeRefusedError

    # Given what the matcher looks up, and the bridge's restricted key
    standin.add_key(
        BRIDGE_KEY, {"customers": "read", "invoices": "read", "checkout_sessions": "read"}
    )
    standin.add("customers", id="cus_QJenny", email="jenny@example.com", metadata={"a": "1"})
    standin.add(
        "invoice_payments",
        invoice="in_QCoupon",
        payment={"type": "payment_intent", "payment_intent": "pi_QPaid"},
    )
    standin.add("checkout_sessions", id="cs_test_QOne", payment_intent="pi_QOneOff")
    seed_discounted_invoice(standin)
    reader = StripeReader(api_base=standin.url)
    # When / Then
    facts = reader.customer(BRIDGE_KEY, "cus_QJenny")
    assert (facts.email, facts.metadata, facts.deleted) == ("jenny@example.com", {"a": "1"}, False)
    assert reader.customer(BRIDGE_KEY, "cus_QNobody").deleted is True
    assert reader.invoice_of_payment_intent(BRIDGE_KEY, "pi_QPaid") == "in_QCoupon"
    assert reader.invoice_of_payment_intent(BRIDGE_KEY, "pi_QOneOff") is None
    assert reader.checkout_session_of_payment_intent(BRIDGE_KEY, "pi_QOneOff") == "cs_test_QOne"
    assert reader.invoice_promotion_codes(BRIDGE_KEY, "in_QCoupon") == {
        "di_QFall": ("promo_QFall", "FALL20")
    }
    # the key may not read promotion codes: refused for good, not retried
    with pytest.raises(StripeRefusedError):
        reader.promotion_code(BRIDGE_KEY, "promo_QFall")
