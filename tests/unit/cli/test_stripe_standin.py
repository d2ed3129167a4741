"""The Stripe API stand-in's rules without a socket: its copy of Stripe's examples,
the library's parameter encoding, paging through thousands, per-second limits, the
seed document and its command's errors. (tests/integration/test_stripe_standin.py
drives it through the stripe library over HTTP.)"""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from stripe_everflow_cli import errors
from stripe_everflow_cli.stripe_standin import (
    STRIPE_EXAMPLES,
    StripeStandIn,
    add_arguments,
    is_legacy,
    parse_params,
    run,
)
from tests.support import PROJECT_ROOT

FIXTURES = PROJECT_ROOT.parent / "shared" / "data" / "stripe-openapi-fixtures3.json"
KEY = {"authorization": "Bearer sk_test_51QstandInUnitKey0000"}


def get(standin: StripeStandIn, path: str, **query: Any) -> tuple[int, dict[str, Any]]:
    """``created__gte=1`` is sent as ``created[gte]=1``."""
    pairs = [(k.replace("__", "[") + ("]" if "__" in k else ""), str(v)) for k, v in query.items()]
    status, payload, _ = standin.handle("GET", path, pairs, [], KEY)
    return status, payload


def walk(standin: StripeStandIn, path: str, **query: Any) -> list[str]:
    """Every id a client paging with starting_after sees."""
    seen: list[str] = []
    while True:
        status, page = get(standin, path, limit=100, **query)
        assert status == 200, page
        seen += [o["id"] for o in page["data"]]
        if not page["has_more"]:
            return seen
        query["starting_after"] = seen[-1]


@pytest.mark.skipif(not FIXTURES.is_file(), reason="Stripe's fixtures file is not here")
def test_examples_are_stripes_published_ones() -> None:
    published = json.loads(FIXTURES.read_text())["resources"]
    for name, example in STRIPE_EXAMPLES.items():
        assert example == published[name], name


def test_parameters_decode_as_the_library_encodes_them() -> None:
    assert parse_params(
        [
            ("expand[0]", "data.customer"),
            ("expand[1]", "data.invoice"),
            ("payment[type]", "payment_intent"),
            ("payment[payment_intent]", "pi_1"),
            ("created[gte]", "10"),
            ("types[]", "invoice.paid"),
            ("types[]", "charge.refunded"),
            ("metadata[order]", "42"),
            ("limit", "3"),
        ]
    ) == {
        "expand": ["data.customer", "data.invoice"],
        "payment": {"type": "payment_intent", "payment_intent": "pi_1"},
        "created": {"gte": "10"},
        "types": ["invoice.paid", "charge.refunded"],
        "metadata": {"order": "42"},
        "limit": "3",
    }


def test_versions_before_basil_are_legacy() -> None:
    assert is_legacy("2024-06-20")
    assert is_legacy("2024-09-30.acacia")
    assert not is_legacy("2025-03-31.basil")
    assert not is_legacy("2026-10-28.endive")


def test_twenty_thousand_objects_page_through_each_once_newest_first() -> None:
    # Given 20,000 invoices, seven to a second, half of them paid, stored out of order
    standin = StripeStandIn()
    standin.add_many(
        "invoices",
        (
            {
                "id": f"in_Q{n:05d}",
                "created": 1_700_000_000 + n // 7,
                "status": "paid" if n % 2 else "open",
            }
            for n in reversed(range(20_000))
        ),
    )
    # When
    everything = walk(standin, "/v1/invoices")
    paid = walk(standin, "/v1/invoices", status="paid")
    window = walk(standin, "/v1/invoices", created__gte=1_700_000_100, created__lt=1_700_000_200)

    # Then each once, newest first (within a second, the last stored first)
    def created(invoice_id: str) -> int:
        return 1_700_000_000 + int(invoice_id[4:]) // 7

    assert sorted(everything) == sorted(f"in_Q{n:05d}" for n in range(20_000))
    assert [created(i) for i in everything] == sorted(map(created, everything), reverse=True)
    assert everything[:3] == ["in_Q19999", "in_Q19992", "in_Q19993"]
    assert paid == [i for i in everything if int(i[4:]) % 2]
    assert window == [i for i in everything if 1_700_000_100 <= created(i) < 1_700_000_200]
    assert len(window) == 700


def test_resuming_from_a_cursor_sees_the_rest_exactly_once() -> None:
    # Given a walk interrupted after some pages
    standin = StripeStandIn()
    standin.add_many("charges", ({"id": f"ch_Q{n:04d}", "created": n} for n in range(1_000)))
    first = get(standin, "/v1/charges", limit=100)[1]["data"]
    # When it resumes from the last id it kept, while new charges arrive
    standin.add_many("charges", ({"id": f"ch_QNew{n}", "created": 5_000 + n} for n in range(5)))
    rest = walk(standin, "/v1/charges", starting_after=first[-1]["id"])
    # Then
    assert [c["id"] for c in first] + rest == [f"ch_Q{n:04d}" for n in reversed(range(1_000))]


def test_filter_with_few_matches_among_many_pages_correctly() -> None:
    standin = StripeStandIn()
    standin.add_many(
        "refunds",
        (
            {"id": f"re_Q{n:05d}", "created": n, "charge": "ch_QRare" if n % 997 == 0 else "ch_Q"}
            for n in range(10_000)
        ),
    )
    rare = [f"re_Q{n:05d}" for n in reversed(range(0, 10_000, 997))]
    assert walk(standin, "/v1/refunds", charge="ch_QRare") == rare
    _, page = get(standin, "/v1/refunds", charge="ch_QRare", limit=3, starting_after=rare[2])
    assert [r["id"] for r in page["data"]] == rare[3:6]


def test_add_refuses_a_field_stripes_example_does_not_have() -> None:
    with pytest.raises(ValueError, match="colour not in Stripe's example customer"):
        StripeStandIn().add("customers", colour="blue")


def test_add_many_objects_do_not_leak_into_each_other() -> None:
    standin = StripeStandIn()
    one, two = standin.add_many(
        "customers", [{"id": "cus_Q1", "email": "a@x.io"}, {"id": "cus_Q2", "metadata": {}}]
    )
    assert one["email"] == "a@x.io"
    assert two["email"] is None
    assert get(standin, "/v1/customers/cus_Q2")[1]["email"] is None


def test_requests_without_a_key_are_401_and_recorded() -> None:
    standin = StripeStandIn()
    status, payload, _ = standin.handle("GET", "/v1/customers", [], [], {})
    assert status == 401
    assert payload["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in payload["error"]["message"]
    [seen] = standin.requests()
    assert (seen.path, seen.status, seen.api_key) == ("/v1/customers", 401, None)


def test_unknown_path_is_stripes_unrecognized_url() -> None:
    status, payload = get(StripeStandIn(), "/v1/nothing_here")
    assert status == 404
    assert payload["error"]["message"].startswith(
        "Unrecognized request URL (GET: /v1/nothing_here)"
    )


def test_per_second_limit_counts_reads_and_writes_apart_and_resets() -> None:
    # Given a clock the test moves, and test mode's 25 per second
    now = [100.0]
    standin = StripeStandIn(clock=lambda: now[0])
    standin.settings({"rate_limits": {"test": 25}})
    statuses = [get(standin, "/v1/customers")[0] for _ in range(26)]
    assert statuses == [200] * 25 + [429]
    _, payload, headers = standin.handle("GET", "/v1/customers", [], [], KEY)
    assert payload["error"]["code"] == "rate_limit"
    assert headers["Retry-After"] == "1"
    # When a write comes in the same second
    write, _, _ = standin.handle(
        "POST",
        "/v1/webhook_endpoints",
        [],
        [("url", "https://example.com/w"), ("enabled_events[0]", "invoice.paid")],
        KEY,
    )
    assert write == 200
    # When the second has passed
    now[0] += 1.0
    assert get(standin, "/v1/customers")[0] == 200


def test_seed_document_loads_keys_objects_events_and_version() -> None:
    standin = StripeStandIn()
    counts = standin.seed(
        {
            "api_version": "2024-06-20",
            "keys": {"rk_test_51QstandInSeeded000": {"customers": "read"}},
            "objects": {
                "customers": [{"id": "cus_QSeed"}],
                "checkout.sessions": [{"id": "cs_test_QSeed", "payment_intent": "pi_QSeed"}],
            },
            "events": [{"type": "customer.created", "object": {"id": "cus_QSeed"}}],
        }
    )
    assert counts == {"customers": 1, "checkout_sessions": 1, "events": 1}
    assert standin.api_version == "2024-06-20"
    refused, _, _ = standin.handle(
        "GET", "/v1/customers", [], [], {"authorization": "Bearer rk_test_other"}
    )
    assert refused == 401


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"customers": []}, "unknown seed sections: customers"),
        ({"api_version": "latest"}, "api_version 'latest'"),
        ({"objects": {"planets": []}}, "unknown resource 'planets'"),
        ({"objects": {"customers": {"id": "cus_1"}}}, "objects.customers must be a list"),
        ({"keys": {"rk_test_x": {"customers": "all"}}}, "read, write or none"),
    ],
)
def test_bad_seed_document_is_refused_naming_the_problem(
    document: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        StripeStandIn().seed(document)


# ------------------------------------------------------------------ the command


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_command_defaults() -> None:
    args = parse()
    assert (args.port, args.seed, args.api_version, args.rate_limits) == (
        12111,
        None,
        "2025-03-31.basil",
        False,
    )


def test_command_missing_seed_file(tmp_path: Path) -> None:
    with pytest.raises(errors.CliError) as raised:
        run(parse("--seed", str(tmp_path / "nope.json"), "--port", "0"))
    assert raised.value.code == errors.MISSING_FILE


def test_command_seed_not_json(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text("{not json")
    with pytest.raises(errors.CliError) as raised:
        run(parse("--seed", str(seed), "--port", "0"))
    assert raised.value.code == errors.NOT_JSON


def test_command_bad_seed_names_the_file_and_problem(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"objects": {"planets": []}}))
    with pytest.raises(errors.CliError) as raised:
        run(parse("--seed", str(seed), "--port", "0"))
    assert raised.value.code == errors.USAGE
    assert str(seed) in str(raised.value)
    assert "planets" in str(raised.value)


def test_command_bad_api_version() -> None:
    with pytest.raises(errors.CliError) as raised:
        run(parse("--api-version", "yesterday", "--port", "0"))
    assert raised.value.code == errors.USAGE


def test_command_port_busy() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(errors.CliError) as raised:
            run(parse("--port", str(port)))
    assert raised.value.code == errors.PORT_BUSY
