"""Property-based tests of EventDecoder: any input is an event or an InvalidEventError, and events are clean."""

import json
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder, ListingEvent, ReviewEvent
from stream.contracts.rules import EARLIEST_OCCURRED_AT, MAX_CLOCK_SKEW
from stream.errors import InvalidEventError

SCHEMAS_DIR = REPO_ROOT / "schemas"
NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
DECODER = EventDecoder(SCHEMAS_DIR, clock=lambda: NOW)
EXAMPLES = {
    topic: [
        json.loads(p.read_text()) for p in sorted((SCHEMAS_DIR / "examples" / topic / "valid").glob("*.json"))
    ]
    for topic in ("toys.listings.v1", "toys.reviews.v1")
}
SCHEMAS = {topic: json.loads((SCHEMAS_DIR / f"{topic}.schema.json").read_text()) for topic in EXAMPLES}
UNSAFE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
LINE_BREAKS = re.compile("[\t\n\r]")
VERBATIM = {"event_id", "listing_id", "review_id", "images", "videos"}  # ids and URIs: byte for byte
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any code point, surrogates and control characters included, biased towards the troublesome ones.
ANY_CHAR = st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from("\x00\t\n\r\x1b\x7f\x85\u200b\u2060\ufeff\u3164\ud800\udfff\u0301é"),
)
ANY_TEXT = st.text(ANY_CHAR, max_size=30)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from([0, 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 1.0, 1e300, -0.0]),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _decode(topic: str, value: bytes, key: bytes | None) -> ListingEvent | ReviewEvent | None:
    """The decoded event, or None when it was refused; anything else propagates and fails the test."""
    decode = DECODER.decode_listing if topic == "toys.listings.v1" else DECODER.decode_review
    try:
        return decode(value, key)
    except InvalidEventError:
        return None


def _dumps(obj: object) -> bytes:
    # surrogatepass: a lone surrogate must reach the decoder as the valid JSON escape producers send.
    return json.dumps(obj).encode("utf-8", "surrogatepass")


def _assert_clean(topic: str, event: ListingEvent | ReviewEvent) -> None:
    properties = SCHEMAS[topic]["properties"]
    multiline = {"description", "text"}
    for name, value in vars(event).items():
        texts = _texts(value)
        for text in texts:
            allowed = LINE_BREAKS.sub("", text) if name in multiline else text
            assert not UNSAFE.search(allowed), (name, text)
            assert name in multiline or not LINE_BREAKS.search(text), (name, text)
            assert name in VERBATIM or unicodedata.is_normalized("NFC", text), (name, text)
        limit = properties.get(name, {}).get("maxLength")
        if limit is not None and isinstance(value, str):
            assert len(value) <= limit, name
        if isinstance(value, float):
            assert math.isfinite(value), name
    if isinstance(event, ListingEvent):
        assert type(event.version) is int and 1 <= event.version <= 2**63 - 1
        assert all(
            math.isfinite(v) and abs(v) <= 10**15 for v in event.attributes.values() if isinstance(v, float)
        )
        for age in (event.age_min_months, event.age_max_months):
            assert age is None or (type(age) is int and 0 <= age <= 1200)
    assert EARLIEST_OCCURRED_AT <= event.occurred_at <= NOW + MAX_CLOCK_SKEW


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | list):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, dict):
        return [text for pair in value.items() for item in pair for text in _texts(item)]
    return []


@FAST
@given(topic=st.sampled_from(sorted(EXAMPLES)), value=st.binary(max_size=200))
def test_arbitrary_bytes_are_an_event_or_invalid(topic: str, value: bytes) -> None:
    _decode(topic, value, b"toy-0001")


@FAST
@given(topic=st.sampled_from(sorted(EXAMPLES)), obj=JSON)
def test_arbitrary_json_is_an_event_or_invalid(topic: str, obj: object) -> None:
    event = _decode(topic, _dumps(obj), b"toy-0001")
    if event is not None:
        _assert_clean(topic, event)


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid example with a few fields replaced, removed or added."""
    topic = draw(st.sampled_from(sorted(EXAMPLES)))
    event = dict(draw(st.sampled_from(EXAMPLES[topic])))
    names = sorted(SCHEMAS[topic]["properties"])
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(names))
        action = draw(st.sampled_from(["text", "json", "number", "drop", "attribute"]))
        if action == "drop":
            event.pop(name, None)
        elif action == "text":
            event[name] = draw(ANY_TEXT)
        elif action == "number":
            event[name] = draw(NUMBERS)
        elif action == "attribute" and topic == "toys.listings.v1":
            event["attributes"] = draw(
                st.dictionaries(ANY_TEXT, st.booleans() | NUMBERS | ANY_TEXT, max_size=3)
            )
        else:
            event[name] = draw(JSON)
    return topic, event


@settings(max_examples=300, deadline=None)
@given(mutated=mutated_events())
def test_mutated_events_are_clean_or_invalid(mutated: tuple[str, dict[str, Any]]) -> None:
    topic, event = mutated
    listing_id = event.get("listing_id")
    key = listing_id.encode("utf-8", "surrogatepass") if isinstance(listing_id, str) else None
    decoded = _decode(topic, _dumps(event), key)
    if decoded is not None:
        _assert_clean(topic, decoded)


@FAST
@given(
    topic=st.sampled_from(sorted(EXAMPLES)),
    data=st.data(),
    cut=st.integers(0, 2000),
    insert=st.binary(min_size=1, max_size=4),
)
def test_corrupted_bytes_are_an_event_or_invalid(
    topic: str, data: st.DataObject, cut: int, insert: bytes
) -> None:
    value = _dumps(data.draw(st.sampled_from(EXAMPLES[topic])))
    position = cut % (len(value) + 1)
    event = _decode(topic, value[:position] + insert + value[position:], b"toy-0001")
    if event is not None:
        _assert_clean(topic, event)


@FAST
@given(days=st.integers(-737_000, 2_914_000), offset_minutes=st.integers(-23 * 60, 23 * 60))
def test_any_occurred_at_is_in_the_window_or_invalid(days: int, offset_minutes: int) -> None:
    moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=days)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + f"{sign}{hours:02d}:{minutes:02d}"
    event = dict(EXAMPLES["toys.reviews.v1"][0], occurred_at=text)
    decoded = _decode("toys.reviews.v1", _dumps(event), b"toy-0001")
    if decoded is not None:
        _assert_clean("toys.reviews.v1", decoded)
