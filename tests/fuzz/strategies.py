"""What the fuzz suites throw at the bridge, and the tally they report.

Events start as the samples in ``events/stripe/`` (built from Stripe's own fixture
objects) and get fields removed, retyped and enlarged — so most of each payload stays
what Stripe sends and the odd part lands where the code reads. Alongside: arbitrary
JSON, arbitrary bytes, and click requests from valid to absurd.

Sizes: ``FUZZ_PROFILE=full`` (``make fuzz``) runs the full-sized numbers of examples,
anything else the CI-sized ones that ``make test`` runs.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta, timezone
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.support import EVENTS

FULL = os.environ.get("FUZZ_PROFILE") == "full"
F = TypeVar("F", bound=Callable[..., Any])

# ------------------------------------------------------------------ sizes, tally

# cases run and 5xx answers, per suite; printed at the end of the run (conftest.py)
TALLY: dict[str, Counter[str]] = {}


def count(suite: str, status: int | None = None, outcome: str | None = None) -> None:
    """One case run; ``outcome`` (accepted, ignored:<reason>, 400…) shows what the
    cases reached."""
    tally = TALLY.setdefault(suite, Counter())
    tally["cases"] += 1
    if status is not None and status >= 500:
        tally["5xx"] += 1
    if outcome is not None:
        tally[f"outcome {outcome}"] += 1


def examples(ci: int, full: int) -> Callable[[F], F]:
    """How many examples a property runs: CI-sized in ``make test``, full in ``make fuzz``."""
    chosen = settings(
        max_examples=full if FULL else ci,
        # The machine is shared: no property may fail for being slow.
        deadline=None,
        # CI runs the same examples every time; the full run explores.
        derandomize=not FULL,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    return chosen  # type: ignore[return-value]


# ------------------------------------------------------------------ odd values

SAMPLES = sorted(
    (shape.name, path.stem)
    for shape in (EVENTS / "stripe").iterdir()
    if shape.is_dir()
    for path in shape.glob("*.json")
)
_SAMPLE_TEXT = {
    sample: (EVENTS / "stripe" / sample[0] / f"{sample[1]}.json").read_text("utf-8")
    for sample in SAMPLES
}
# The fields the bridge reads: mutations land on them half of the time.
_READ_FIELDS = """
    id object type data livemode created currency amount amount_paid amount_total
    amount_received amount_captured amount_refunded amount_tax total total_excluding_tax
    customer customer_email customer_details email receipt_email billing_details invoice
    charge payment_intent latest_charge subscription parent subscription_details metadata
    everflow_transaction_id client_reference_id lines pricing price_details price product
    mode payment_status status status_transitions paid_at billing_reason discount
    promotion_code total_details captured paid payment
"""
READ_FIELDS = frozenset(_READ_FIELDS.split())
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
SPECIAL_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "usd",
        "USD",
        "none",
        "zz",
        "in_" + "x" * 3000,
        "a" * 3000,
        "evt_" + "1" * 300,
        "cus_1#claim",
        "\ud800",
        "\udfff@example.com",
        "\uffff",
        "\x00",
        "jenny.rosen@example.com",
        " Jenny.Rosen@Example.com ",
        "emailhash:" + "0" * 64,
        "emailhash:zz",
        "ef_tx 9f1c",
        "ef_tx&amount=1",
        "1e400",
        "NaN",
        "subscription_create",
        "warning_needs_response",
        "paid",
        "payment",
        "subscription",
        "setup",
    ]
)
SPECIAL_NUMBERS = st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 2**63, 10**15, 10**15 - 1, 10**40, -(10**40), 10**4000]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    SPECIAL_NUMBERS,
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
    SPECIAL_STRINGS,
)


# Python objects the classifier may be handed, beyond what JSON can carry.
def _beyond_str(sign: int) -> int:
    """An int str() refuses (more than 4,300 digits): built lazily, as its repr fails too."""
    return sign * 10**5000


PYTHON_ONLY = st.one_of(
    st.builds(_beyond_str, st.sampled_from([1, -1])),
    st.sampled_from([(1, 2), b"bytes", {1: "int key"}]),
)


def json_values(*, python: bool = False) -> st.SearchStrategy[Any]:
    scalars = st.one_of(JSON_SCALARS, PYTHON_ONLY) if python else JSON_SCALARS
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)
        ),
        max_leaves=12,
    )


def nested(depth: int, leaf: Any = "jenny.rosen@example.com") -> Any:
    value = leaf
    for index in range(depth):
        value = {"a": value} if index % 2 else [value]
    return value


# ------------------------------------------------------------------ mutated Stripe events


def _paths(value: Any) -> Iterator[tuple[Any, ...]]:
    """Every path to a node under ``value`` (not the root itself), without recursion."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            stack.append(((*path, key), child))
            yield (*path, key)


def _node(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def _enlarged(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, str):
        return draw(
            st.sampled_from([value * 200, value + "x" * 3000, "in_" + "x" * 3000, value * 2])
        )
    if isinstance(value, bool | int | float):
        return draw(st.sampled_from([10**40, -(10**40), 10**15, 2**63, 1e308]))
    if isinstance(value, list):
        return draw(st.sampled_from([value * 50, [nested(40)], [nested(500)], value + value]))
    if isinstance(value, dict):
        return draw(
            st.sampled_from(
                [
                    {"wrapped": nested(33, value)},
                    nested(500, value),
                    value | {f"k{i}": i for i in range(200)},
                ]
            )
        )
    return draw(st.sampled_from(["x" * 3000, nested(100), 10**40]))


@st.composite
def mutated_events(draw: st.DrawFn, *, python: bool = False) -> dict[str, Any]:
    """A sample Stripe event with 1-4 fields removed, retyped or enlarged."""
    event: dict[str, Any] = json.loads(_SAMPLE_TEXT[draw(st.sampled_from(SAMPLES))])
    # Where to mutate is drawn uniformly (sampled_from would favour the first paths:
    # the event id, every time).
    where = draw(st.randoms(use_true_random=True))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(event))
        read = [p for p in paths if p[-1] in READ_FIELDS]
        path = where.choice(read if read and draw(st.booleans()) else paths)
        parent, key = _node(event, path[:-1]), path[-1]
        operation = draw(st.sampled_from(["remove", "retype", "enlarge"]))
        if operation == "remove":
            del parent[key]
        elif operation == "retype":
            parent[key] = draw(json_values(python=python))
        else:
            parent[key] = draw(_enlarged(parent[key]))
    return event


def to_json(event: Any, *, pretty: bool) -> bytes:
    """The body Stripe would send; ASCII escapes keep lone surrogates representable."""
    return json.dumps(event, indent=2 if pretty else None).encode("utf-8")


def to_raw_json(document: Any) -> bytes:
    """JSON with its text as raw UTF-8 — a lone surrogate included, as the bytes no
    encoder should produce (what a careless client sends)."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def as_event_text(body: bytes) -> str:
    """A body as the ``body`` text of an HTTP API event: bytes that only a careless
    encoder writes (a lone surrogate) come back as that surrogate, other bytes that
    are not UTF-8 as surrogate escapes — text no gateway should hand over, sent all
    the same."""
    try:
        return body.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return body.decode("utf-8", "surrogateescape")


def webhook_bodies() -> st.SearchStrategy[bytes]:
    """Bodies a webhook may receive: mostly mutated events, then anything."""
    return st.one_of(
        st.builds(to_json, mutated_events(), pretty=st.booleans()),
        st.builds(to_raw_json, mutated_events()),
        st.builds(to_json, json_values(), pretty=st.just(False)),
        st.binary(max_size=300),
        st.sampled_from(
            [
                b"",
                b"null",
                b"{}",
                b'{"object": "event"}',
                b"[" * 100_000,
                b'{"a": 1' + b"0" * 5000 + b"}",
                b'{"a": "\xff\xfe"}',
                b'"\\ud800"',
            ]
        ),
    )


# ------------------------------------------------------------------ clicks

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
# Characters to slip into an otherwise valid value.
SLIPS = st.sampled_from(["\ud800", "\udfff", "\x00", "\u200b", " ", "\n", "#", "&", "é", "\uffff"])


def _slipped(value: str, slip: str, where: int) -> str:
    at = where % (len(value) + 1)
    return value[:at] + slip + value[at:]


def _nearly(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid values, and valid values with one odd character slipped in."""
    return st.one_of(valid, st.builds(_slipped, valid, SLIPS, st.integers(0, 200)))


EMAILS = _nearly(
    st.one_of(
        st.emails(), st.sampled_from(["Jenny.Rosen@Example.com ", "a@b.co", "jenny@example.com"])
    )
)
TRANSACTION_IDS = _nearly(
    st.one_of(
        st.from_regex(r"[A-Za-z0-9._:~-]{1,128}", fullmatch=True),
        st.sampled_from(["a" * 128, "a" * 129, "a" * 3000]),
    )
)
CLICK_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "email": EMAILS,
    "transaction_id": TRANSACTION_IDS,
    "offer_id": st.one_of(st.integers(0, 10**18), st.from_regex(r"[0-9]{1,18}", fullmatch=True)),
    "affiliate_id": st.one_of(st.integers(0, 10**18), st.none()),
    "stripe_customer_id": _nearly(st.from_regex(r"cus_[A-Za-z0-9]{1,64}", fullmatch=True)),
    "stripe_account": st.sampled_from(["default", "eu-store"]),
    "occurred_at": st.one_of(
        st.integers(1, 2_000_000_000),
        st.datetimes(timezones=st.sampled_from(ZONES)).map(lambda moment: moment.isoformat()),
        st.just("2026-01-01T00:00:00Z"),
    ),
}


@st.composite
def click_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A click, valid most of the time; otherwise one field odd, missing or unknown."""
    optional = sorted(set(CLICK_VALUES) - {"email", "transaction_id"})
    names = ["email", "transaction_id", *draw(st.lists(st.sampled_from(optional), unique=True))]
    click = {name: draw(CLICK_VALUES[name]) for name in names}
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from([*CLICK_VALUES, "unknown", "x" * 300, "\ud800"]))
        if draw(st.booleans()) and name in click:
            del click[name]
        else:
            click[name] = draw(json_values())
    return click


def click_bodies() -> st.SearchStrategy[bytes]:
    documents = st.one_of(
        click_objects(),
        st.lists(click_objects(), min_size=0, max_size=6),
        json_values(),
    )
    return st.one_of(
        st.builds(to_json, documents, pretty=st.booleans()),
        st.builds(to_raw_json, documents),
        st.binary(max_size=200),
        st.sampled_from([b"", b"[" * 100_000, b'{"email": "a@b.co", "transaction_id": "\xff"}']),
    )
