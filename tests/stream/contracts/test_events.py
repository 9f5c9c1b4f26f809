"""Tests for stream/contracts/events.py and the schemas it loads through stream/contracts/schemas.py."""

import base64
import hashlib
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder, ListingEvent, Price, deadletter_record, embedding_record
from stream.errors import InvalidEventError, SchemaError

SCHEMAS_DIR = REPO_ROOT / "schemas"
EXAMPLES = sorted((SCHEMAS_DIR / "examples").glob("*/*/*.json"))
# Invalid examples that pass the schema but break a rule the decoder checks in code (stream/contracts/rules.py).
CODE_CHECKED = {
    "age_min_above_age_max.json": "invalid_field",
    "version_written_as_float.json": "invalid_field",
    "rating_written_as_float.json": "invalid_field",
    "title_lone_surrogate.json": "invalid_field",
    "text_lone_surrogate.json": "invalid_field",
    "title_control_character.json": "invalid_field",
    "description_control_character.json": "invalid_field",
    "title_only_zero_width.json": "invalid_field",
    "occurred_at_before_2000.json": "invalid_field",
    "occurred_at_far_future.json": "invalid_field",
    "attribute_number_beyond_float64.json": "invalid_field",
    "duplicate_key.json": "invalid_json",
}


@pytest.fixture(scope="module")
def decoder() -> EventDecoder:
    return EventDecoder(SCHEMAS_DIR)


@pytest.fixture
def listing_factory() -> Callable[..., dict[str, Any]]:
    def make(**changes: Any) -> dict[str, Any]:
        event = json.loads((SCHEMAS_DIR / "examples/toys.listings.v1/valid/upserted_full.json").read_text())
        event.update(changes)
        return {k: v for k, v in event.items() if v is not None}

    return make


def _encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _decode_example(decoder: EventDecoder, path: Path) -> None:
    topic, value = path.parts[-3], path.read_bytes()
    if topic == "toys.listings.v1":
        decoder.decode_listing(value, key=None, keyed=False)
    elif topic == "toys.reviews.v1":
        decoder.decode_review(value, key=None, keyed=False)
    else:
        decoder.validate(topic, json.loads(value))


def test_examples_cover_every_topic() -> None:
    counts = {(p.parts[-3], p.parts[-2]) for p in EXAMPLES}
    for topic in ("toys.listings.v1", "toys.reviews.v1", "toys.embeddings.v1", "toys.deadletter.v1"):
        assert (topic, "valid") in counts
    assert sum(1 for p in EXAMPLES if p.parts[-3:-1] == ("toys.listings.v1", "invalid")) >= 6
    assert sum(1 for p in EXAMPLES if p.parts[-3:-1] == ("toys.reviews.v1", "invalid")) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: "/".join(p.parts[-3:]))
def test_example_matches_its_folder(decoder: EventDecoder, path: Path) -> None:
    if path.parts[-2] == "valid":
        _decode_example(decoder, path)
        return
    with pytest.raises(InvalidEventError) as info:
        _decode_example(decoder, path)
    assert info.value.reason == CODE_CHECKED.get(path.name, "schema_violation")


def test_upsert_fields_are_parsed(decoder: EventDecoder) -> None:
    path = SCHEMAS_DIR / "examples/toys.listings.v1/valid/upserted_full.json"
    event = decoder.decode_listing(path.read_bytes(), key=b"toy-0001")
    assert event.price == Price(Decimal("39.99"), "USD")
    assert event.occurred_at == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert event.categories == ("Toys & Games", "Building Toys", "Building Sets")
    assert event.images == (
        "http://127.0.0.1:8765/images/toy-0001-1.png",
        "https://cdn.example.com/toy-0001-2.png",
    )
    assert event.videos == ("http://127.0.0.1:8765/videos/toy-0001.mp4",)
    assert event.attributes["pieces"] == 520 and event.attributes["batteries_required"] is False
    assert (event.age_min_months, event.age_max_months, event.locale) == (72, 144, "en-US")


def test_delete_has_defaults_and_is_hashable(decoder: EventDecoder) -> None:
    path = SCHEMAS_DIR / "examples/toys.listings.v1/valid/deleted.json"
    event = decoder.decode_listing(path.read_bytes(), key=b"toy-0001")
    assert event == ListingEvent("evt-del-1", "listing.deleted", "toy-0001", 4, event.occurred_at)
    assert (event.title, event.price, event.images, event.attributes) == (None, None, (), {})
    assert hash(event) == hash(ListingEvent("evt-del-1", "listing.deleted", "toy-0001", 4, event.occurred_at))


def test_occurred_at_keeps_offset(decoder: EventDecoder) -> None:
    path = SCHEMAS_DIR / "examples/toys.listings.v1/valid/upserted_zh.json"
    event = decoder.decode_listing(path.read_bytes(), key=b"toy-0003")
    assert event.occurred_at.utcoffset() == timedelta(hours=8)
    assert event.price == Price(Decimal("289.00"), "CNY")


def test_review_fields_are_parsed(decoder: EventDecoder) -> None:
    path = SCHEMAS_DIR / "examples/toys.reviews.v1/valid/posted.json"
    review = decoder.decode_review(path.read_bytes(), key=b"toy-0001")
    assert (review.rating, review.helpful_votes, review.verified_purchase) == (5, 12, True)
    assert review.type == "review.posted" and review.review_id == "rev-00001"


def test_invalid_utf8(decoder: EventDecoder) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(b'{"title": "\xff"}', key=None)
    assert info.value.reason == "invalid_utf8"
    assert "byte 11" in info.value.message


@pytest.mark.parametrize("value", [b"{not json", b"", b'{"version": NaN}'])
def test_invalid_json(decoder: EventDecoder, value: bytes) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_review(value, key=None)
    assert info.value.reason == "invalid_json"
    assert info.value.message.startswith("review event is not JSON")


def test_schema_violation_names_field_and_rule(decoder: EventDecoder, listing_factory: Any) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(_encode(listing_factory(version=-1)), key=None)
    assert info.value.reason == "schema_violation"
    assert info.value.message.startswith("listing event field 'version': -1 is less than the minimum of 1")
    assert "schemas/toys.listings.v1.schema.json" in info.value.message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"occurred_at": "2025-03-01T12:00:00"},
            "field 'occurred_at': '2025-03-01T12:00:00' is not an RFC 3339",
        ),
        ({"occurred_at": "2025-02-30T12:00:00Z"}, "field 'occurred_at'"),
        (
            {"price": {"amount": "1.5", "currency": "EURO"}},
            "field 'price.currency': 'EURO' is not valid: ISO 4217",
        ),
        ({"title": None}, "'title' is a required property when type is 'listing.upserted'"),
        ({"type": "listing.deleted"}, "is not allowed when type is 'listing.deleted'"),
        ({"seller": "x"}, "('seller' was unexpected)"),
        ({"images": [{"uri": "file:///toy.png"}]}, "field 'images[0].uri'"),
    ],
)
def test_schema_violation_messages(
    decoder: EventDecoder, listing_factory: Any, changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(_encode(listing_factory(**changes)), key=None)
    assert expected in info.value.message


@pytest.mark.parametrize("occurred_at", [None, 20250301, ["2025-03-01T12:00:00Z"]])
def test_occurred_at_that_is_not_a_string_is_a_schema_violation(
    decoder: EventDecoder, listing_factory: Any, occurred_at: Any
) -> None:
    event = {**listing_factory(), "occurred_at": occurred_at}

    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(_encode(event), key=b"toy-0001")

    assert info.value.reason == "schema_violation" and "field 'occurred_at'" in info.value.message


def test_attributes_accept_any_key(decoder: EventDecoder, listing_factory: Any) -> None:
    attributes = {"Farbe": "rot", "weight_g": 120.5, "带电池": True}
    event = decoder.decode_listing(_encode(listing_factory(attributes=attributes)), key=b"toy-0001")
    assert event.attributes == attributes


def test_key_mismatch(decoder: EventDecoder, listing_factory: Any) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(_encode(listing_factory()), key=b"toy-9999")
    assert info.value.reason == "key_mismatch"
    assert "'toy-9999'" in info.value.message and "'toy-0001'" in info.value.message


def test_review_key_mismatch(decoder: EventDecoder) -> None:
    value = (SCHEMAS_DIR / "examples/toys.reviews.v1/valid/posted.json").read_bytes()
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_review(value, key=b"rev-00001")
    assert info.value.reason == "key_mismatch"


def test_invalid_field_age_range(decoder: EventDecoder, listing_factory: Any) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode_listing(
            _encode(listing_factory(age_min_months=48, age_max_months=36)), key=b"toy-0001"
        )
    assert info.value.reason == "invalid_field"
    assert "'age_min_months': 48 is greater than age_max_months 36" in info.value.message


def test_validate_unknown_topic(decoder: EventDecoder) -> None:
    with pytest.raises(SchemaError, match="toys.listings.v1"):
        decoder.validate("toys.unknown.v1", {})


def test_missing_schema_dir(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read schema"):
        EventDecoder(tmp_path)


def test_broken_schema_file(tmp_path: Path) -> None:
    for path in SCHEMAS_DIR.glob("*.schema.json"):
        shutil.copy(path, tmp_path)
    (tmp_path / "toys.reviews.v1.schema.json").write_text('{"type": 12}')
    with pytest.raises(SchemaError, match="not a valid JSON Schema"):
        EventDecoder(tmp_path)


def test_deadletter_record_validates(decoder: EventDecoder) -> None:
    now = datetime(2025, 3, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    record = deadletter_record(
        value=b"\xff\x00",
        key=b"toy-0001",
        topic="toys.listings.v1",
        partition=3,
        offset=17,
        timestamp_ms=None,
        reason="invalid_utf8",
        message="listing event is not UTF-8",
        worker="toyfuse-test",
        now=now,
    )
    decoder.validate("toys.deadletter.v1", record)
    assert base64.b64decode(record["original_b64"]) == b"\xff\x00"
    assert record["source"]["key_b64"] == base64.b64encode(b"toy-0001").decode()
    assert record["failed_at"] == "2025-03-01T12:30:00Z"


def test_deadletter_record_without_key(decoder: EventDecoder) -> None:
    record = deadletter_record(
        value=b"{}",
        key=None,
        topic="toys.reviews.v1",
        partition=0,
        offset=0,
        timestamp_ms=1_740_830_400_000,
        reason="schema_violation",
        message="review event: 'type' is a required property",
        worker="w",
        now=datetime.now(UTC),
    )
    decoder.validate("toys.deadletter.v1", record)
    assert record["source"]["key_b64"] is None


def test_embedding_record_validates(decoder: EventDecoder) -> None:
    record = embedding_record(
        listing_id="toy-0001",
        change="upserted",
        version=3,
        model_version="text_encoder@1",
        modalities=["text", "image", "text"],
        updated_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
        source_event_id="evt-1",
    )
    decoder.validate("toys.embeddings.v1", record)
    assert record["modalities"] == ["text", "image"]
    assert record["updated_at"] == "2025-03-01T12:00:00Z"


def test_builders_reject_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        embedding_record(
            listing_id="toy-0001",
            change="deleted",
            version=4,
            model_version="m",
            modalities=[],
            updated_at=datetime(2025, 3, 1, 12),
            source_event_id="evt-2",
        )


def test_a_huge_original_is_cut_so_its_dead_letter_fits_any_producer(decoder: EventDecoder) -> None:
    original = b'{"title": "' + b"x" * 750_000 + b'"}'
    record = deadletter_record(
        value=original,
        key=b"k" * 5000,
        topic="toys.listings.v1",
        partition=0,
        offset=9,
        timestamp_ms=None,
        reason="schema_violation",
        message="m" * 10_000,
        worker="w",
        now=datetime.now(UTC),
    )

    decoder.validate("toys.deadletter.v1", record)
    assert len(json.dumps(record)) < 400_000
    assert record["original_truncated"] is True and record["original_size"] == len(original)
    assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert base64.b64decode(record["original_b64"]) == original[: 256 * 1024]
    assert len(base64.b64decode(record["source"]["key_b64"])) == 1024 and len(record["message"]) <= 2001


def test_a_small_original_is_kept_whole(decoder: EventDecoder) -> None:
    record = deadletter_record(
        value=b"{}", key=b"toy-1", topic="t", partition=0, offset=0, timestamp_ms=None,
        reason="invalid_json", message="m", worker="w", now=datetime.now(UTC),
    )  # fmt: skip

    assert "original_truncated" not in record and record["original_size"] == 2
