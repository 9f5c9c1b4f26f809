"""Tests for stream/contracts/rules.py: the field rules the decoder checks beyond the JSON Schemas."""

import json
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.errors import InvalidEventError

SCHEMAS_DIR = REPO_ROOT / "schemas"
NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
MAX_VERSION = 2**63 - 1
Factory = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def decoder() -> EventDecoder:
    return EventDecoder(SCHEMAS_DIR, clock=lambda: NOW)


def _example(path: str) -> Factory:
    def make(**changes: Any) -> dict[str, Any]:
        event = json.loads((SCHEMAS_DIR / "examples" / path).read_text())
        event.update(changes)
        return {k: v for k, v in event.items() if v is not None}

    return make


@pytest.fixture
def listing() -> Factory:
    return _example("toys.listings.v1/valid/upserted_full.json")


@pytest.fixture
def review() -> Factory:
    return _example("toys.reviews.v1/valid/posted.json")


def _listing_error(decoder: EventDecoder, value: bytes | dict[str, Any]) -> InvalidEventError:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(raw, key=b"toy-0001")
    return info.value


def _review_error(decoder: EventDecoder, value: bytes | dict[str, Any]) -> InvalidEventError:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_review(raw, key=b"toy-0001")
    return info.value


@pytest.mark.parametrize("written", ["1.0", "3.0", "1e2", "1E2", "100.0e0"])
def test_version_written_as_a_float_is_refused(decoder: EventDecoder, listing: Factory, written: str) -> None:
    value = json.dumps(listing(version=7)).replace('"version": 7', f'"version": {written}').encode()

    error = _listing_error(decoder, value)

    assert error.reason == "invalid_field"
    assert "field 'version'" in error.message and str(MAX_VERSION) in error.message


@pytest.mark.parametrize("version", ["1e300", str(MAX_VERSION + 1), str(10**30)])
def test_version_above_2_63_is_refused(decoder: EventDecoder, listing: Factory, version: str) -> None:
    value = json.dumps(listing(version=7)).replace('"version": 7', f'"version": {version}').encode()

    error = _listing_error(decoder, value)

    assert error.reason == "schema_violation"
    assert "field 'version'" in error.message and f"maximum of {MAX_VERSION}" in error.message


def test_largest_version_is_exact(decoder: EventDecoder, listing: Factory) -> None:
    event = decoder.decode_listing(json.dumps(listing(version=MAX_VERSION)).encode(), key=b"toy-0001")

    assert event.version == MAX_VERSION and type(event.version) is int


def test_other_integers_written_as_floats_are_refused(
    decoder: EventDecoder, listing: Factory, review: Factory
) -> None:
    value = json.dumps(listing()).replace('"age_min_months": 72', '"age_min_months": 72.0').encode()
    assert "field 'age_min_months'" in _listing_error(decoder, value).message
    value = json.dumps(review()).replace('"rating": 5', '"rating": 5.0').encode()
    error = _review_error(decoder, value)
    assert error.reason == "invalid_field" and "field 'rating'" in error.message


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("age_max_months", 10**30, "maximum of 1200"),
        ("age_min_months", 10**30, "maximum of 1200"),
        ("attributes", {"weight_g": 1e16}, "maximum of 1000000000000000"),
        ("attributes", {"weight_g": -(10**40)}, "minimum of -1000000000000000"),
        ("attributes", {"note": "x" * 1001}, "at most 1000"),
        ("attributes", {f"k{i}": i for i in range(51)}, "at most 50"),
        ("locale", "en-" + "-".join(["abcdefgh"] * 10), "at most 35"),
        ("images", [{"uri": f"https://cdn.example.com/{i}.png"} for i in range(21)], "at most 20"),
        ("videos", [{"uri": f"https://cdn.example.com/{i}.mp4"} for i in range(6)], "at most 5"),
    ],
)
def test_numbers_texts_and_media_are_bounded(
    decoder: EventDecoder, listing: Factory, field: str, value: Any, limit: str
) -> None:
    error = _listing_error(decoder, listing(**{field: value}))

    assert error.reason == "schema_violation"
    assert f"field '{field}" in error.message and limit in error.message


def test_review_votes_are_bounded(decoder: EventDecoder, review: Factory) -> None:
    error = _review_error(decoder, review(helpful_votes=10**30))

    assert error.reason == "schema_violation"
    assert "field 'helpful_votes'" in error.message and "maximum of 1000000000" in error.message


def test_attribute_beyond_float64_is_refused_not_stored_as_infinity(
    decoder: EventDecoder, listing: Factory
) -> None:
    value = json.dumps(listing(attributes={"weight_g": 1})).replace('"weight_g": 1', '"weight_g": 1e400')

    error = _listing_error(decoder, value.encode())

    assert error.reason == "invalid_field"
    assert "field 'attributes.weight_g'" in error.message and "float64" in error.message


def test_lone_surrogate_in_a_title_is_refused(decoder: EventDecoder, listing: Factory) -> None:
    value = json.dumps(listing(title="Robot \ud800x"))  # json.dumps writes the valid escape "\ud800"

    error = _listing_error(decoder, value.encode())

    assert error.reason == "invalid_field"
    assert "field 'title'" in error.message and "U+D800" in error.message


@pytest.mark.parametrize("changes", [{"text": "great \udfff"}, {"title": "\ud83d"}])
def test_lone_surrogate_in_a_review_is_refused(
    decoder: EventDecoder, review: Factory, changes: dict[str, str]
) -> None:
    error = _review_error(decoder, json.dumps(review(**changes)).encode())

    assert error.reason == "invalid_field" and "surrogate" in error.message


def test_lone_surrogate_anywhere_is_refused(decoder: EventDecoder, listing: Factory) -> None:
    for changes in ({"attributes": {"\udc80": 1}}, {"categories": ["a\ud800"]}, {"event_id": "\ud800"}):
        assert _listing_error(decoder, json.dumps(listing(**changes)).encode()).reason == "invalid_field"


def test_surrogate_pair_escapes_are_one_character(decoder: EventDecoder, listing: Factory) -> None:
    event = decoder.decode_listing(json.dumps(listing(title="Robot \U0001f916")).encode(), key=b"toy-0001")

    assert event.title == "Robot \U0001f916"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("title", "Robot\x00", "U+0000"),
        ("title", "Robot\tDeluxe", "U+0009"),
        ("title", "Robot\nDeluxe", "U+000A"),
        ("brand", "Brick\x1bNest", "U+001B"),
        ("description", "Build\x07 it", "U+0007"),
        ("description", "Build\x7f it", "U+007F"),
        ("description", "Build\x85 it", "U+0085"),
        ("categories", ["Toys\x00"], "U+0000"),
        ("attributes", {"colour": "blue\x00"}, "U+0000"),
        ("attributes", {"col\nour": "blue"}, "U+000A"),
        ("listing_id", "toy-0001\x01", "U+0001"),
    ],
)
def test_control_characters_are_refused(
    decoder: EventDecoder, listing: Factory, field: str, value: Any, code: str
) -> None:
    event = listing(**{field: value})

    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(json.dumps(event).encode(), key=event["listing_id"].encode())

    assert info.value.reason == "invalid_field"
    assert f"field '{field}" in info.value.message and code in info.value.message


def test_tab_and_newlines_are_allowed_in_descriptions_and_review_texts(
    decoder: EventDecoder, listing: Factory, review: Factory
) -> None:
    text = "Line one.\r\n\tLine two.\nEnd."
    event = decoder.decode_listing(json.dumps(listing(description=text)).encode(), key=b"toy-0001")
    posted = decoder.decode_review(json.dumps(review(text=text)).encode(), key=b"toy-0001")

    assert event.description == text and posted.text == text
    assert _review_error(decoder, review(title="Fun\nfun")).reason == "invalid_field"


def test_text_fields_are_nfc_normalised(decoder: EventDecoder, listing: Factory, review: Factory) -> None:
    nfd = unicodedata.normalize("NFD", "Poupée à remonter, café")
    event = decoder.decode_listing(
        json.dumps(
            listing(title=nfd, description=nfd, brand=nfd, categories=[nfd], attributes={nfd: nfd})
        ).encode(),
        key=b"toy-0001",
    )
    posted = decoder.decode_review(json.dumps(review(title=nfd, text=nfd)).encode(), key=b"toy-0001")

    nfc = unicodedata.normalize("NFC", nfd)
    assert nfc != nfd
    assert (event.title, event.description, event.brand, event.categories) == (nfc, nfc, nfc, (nfc,))
    assert event.attributes == {nfc: nfc}
    assert (posted.title, posted.text) == (nfc, nfc)


def test_ids_are_not_normalised(decoder: EventDecoder, listing: Factory) -> None:
    listing_id = unicodedata.normalize("NFD", "toy-é")

    event = decoder.decode_listing(json.dumps(listing(listing_id=listing_id)).encode(), listing_id.encode())

    assert event.listing_id == listing_id


def test_attribute_keys_equal_after_normalisation_are_refused(
    decoder: EventDecoder, listing: Factory
) -> None:
    attributes = {"café": 1, unicodedata.normalize("NFD", "café"): 2}

    error = _listing_error(decoder, listing(attributes=attributes))

    assert error.reason == "invalid_field" and "field 'attributes'" in error.message
    assert "NFC" in error.message


@pytest.mark.parametrize("title", ["\u200b\u200b", " \u200b\u2060\ufeff ", "\u200d\t", "\u3164"])
def test_title_without_visible_characters_is_refused(
    decoder: EventDecoder, listing: Factory, title: str
) -> None:
    error = _listing_error(decoder, listing(title=title.replace("\t", " ")))

    assert error.reason in ("invalid_field", "schema_violation")
    assert "field 'title'" in error.message


def test_title_with_zero_width_joiners_inside_is_kept(decoder: EventDecoder, listing: Factory) -> None:
    title = "Family \U0001f468\u200d\U0001f469\u200d\U0001f467 puzzle"

    assert decoder.decode_listing(json.dumps(listing(title=title)).encode(), key=b"toy-0001").title == title


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        ("0001-01-01T00:00:00Z", "before 2000-01-01T00:00:00Z"),
        ("1999-12-31T23:59:59Z", "before 2000-01-01T00:00:00Z"),
        ("2000-01-01T00:30:00+01:00", "before 2000-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "more than 1 day after"),
        ("9999-12-31T23:59:59-01:00", "more than 1 day after"),
        ("2026-01-06T12:00:01Z", "more than 1 day after"),
    ],
)
def test_occurred_at_outside_the_window_is_refused(
    decoder: EventDecoder, listing: Factory, review: Factory, occurred_at: str, expected: str
) -> None:
    for error in (
        _listing_error(decoder, listing(occurred_at=occurred_at)),
        _review_error(decoder, review(occurred_at=occurred_at)),
    ):
        assert error.reason == "invalid_field"
        assert "field 'occurred_at'" in error.message and expected in error.message


def test_occurred_at_within_a_day_of_clock_skew_is_accepted(decoder: EventDecoder, listing: Factory) -> None:
    for occurred_at in ("2000-01-01T00:00:00Z", "2026-01-06T12:00:00Z", "2026-01-06T13:00:00+01:00"):
        decoder.decode_listing(json.dumps(listing(occurred_at=occurred_at)).encode(), key=b"toy-0001")


def test_the_window_follows_the_injected_clock(listing: Factory) -> None:
    value = json.dumps(listing(occurred_at="2030-06-01T00:00:00Z")).encode()
    later = EventDecoder(SCHEMAS_DIR, clock=lambda: datetime(2030, 6, 1, tzinfo=UTC))

    assert later.decode_listing(value, key=b"toy-0001").occurred_at.year == 2030
    assert _listing_error(EventDecoder(SCHEMAS_DIR, clock=lambda: NOW), value).reason == "invalid_field"


@pytest.mark.parametrize(
    "value",
    [
        b'{"event_id": "a", "event_id": "b"}',
        b'{"type": "listing.upserted", "title": "A", "title": "B"}',
        b'{"attributes": {"pieces": 1, "pieces": 2}}',
    ],
)
def test_duplicate_keys_are_refused(decoder: EventDecoder, value: bytes) -> None:
    error = _listing_error(decoder, value)

    assert error.reason == "invalid_json" and "twice" in error.message


def test_duplicate_key_in_a_valid_event_is_refused_not_last_wins(
    decoder: EventDecoder, listing: Factory
) -> None:
    value = json.dumps(listing(version=3)).replace('"version": 3', '"version": 3, "version": 9').encode()

    error = _listing_error(decoder, value)

    assert error.reason == "invalid_json" and "'version'" in error.message


def test_null_kafka_key_is_refused(decoder: EventDecoder, listing: Factory, review: Factory) -> None:
    for decode, event in ((decoder.decode_listing, listing()), (decoder.decode_review, review())):
        with pytest.raises(InvalidEventError) as info:
            decode(json.dumps(event).encode(), None)
        assert info.value.reason == "key_mismatch" and "no Kafka key" in info.value.message


def test_events_read_from_a_file_need_no_key(decoder: EventDecoder, listing: Factory) -> None:
    assert decoder.decode_listing(json.dumps(listing()).encode(), None, keyed=False).listing_id == "toy-0001"


def test_deep_nesting_is_refused_not_crashing(decoder: EventDecoder) -> None:
    value = b'{"attributes": ' + b'{"a": ' * 900 + b"1" + b"}" * 900 + b"}"

    assert _listing_error(decoder, value).reason in ("invalid_json", "schema_violation")
