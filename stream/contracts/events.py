"""Typed toyfuse events: decode incoming Kafka messages, build the records toyfuse produces."""

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, cast

from stream.contracts.rules import (
    TEXT_RULES,
    Clock,
    check_integers,
    check_occurred_at,
    check_visible,
    clean,
    integer_limits,
    parse_json,
    utc_now,
)
from stream.contracts.schemas import (
    LABELS,
    LISTINGS_SCHEMA,
    REVIEWS_SCHEMA,
    SCHEMA_NAMES,
    first_violation,
    format_rfc3339,
    load_validators,
)
from stream.contracts.shapes import Modality
from stream.errors import DeadLetterReason, InvalidEventError, SchemaError

ListingEventType = Literal["listing.upserted", "listing.deleted"]
ReviewEventType = Literal["review.posted", "review.deleted"]
EmbeddingChange = Literal["upserted", "deleted"]
AttributeValue = str | int | float | bool


@dataclass(frozen=True)
class Price:
    """A price as an exact decimal amount in an ISO 4217 currency."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class ListingEvent:
    """One decoded ``toys.listings.v1`` event; upsert-only fields are None or empty on deletes."""

    event_id: str
    type: ListingEventType
    listing_id: str
    version: int
    occurred_at: datetime
    title: str | None = None
    description: str | None = None
    brand: str | None = None
    categories: tuple[str, ...] = ()
    attributes: dict[str, AttributeValue] = field(default_factory=dict, hash=False)
    age_min_months: int | None = None
    age_max_months: int | None = None
    price: Price | None = None
    images: tuple[str, ...] = ()  # image URIs, in the producer's order
    videos: tuple[str, ...] = ()  # video URIs, in the producer's order
    locale: str | None = None


@dataclass(frozen=True)
class ReviewEvent:
    """One decoded ``toys.reviews.v1`` event; posted-only fields are None on deletes."""

    event_id: str
    type: ReviewEventType
    review_id: str
    listing_id: str
    occurred_at: datetime
    rating: int | None = None
    text: str | None = None
    title: str | None = None
    helpful_votes: int | None = None
    verified_purchase: bool | None = None
    locale: str | None = None


class EventDecoder:
    """Decodes Kafka messages into typed events; schemas are loaded and compiled once.

    Beyond the schemas it applies :mod:`stream.contracts.rules`: strict JSON (unique keys), no lone
    surrogates or control characters, NFC text, exact integers, ``occurred_at`` from 2000 to a day
    ahead of ``clock``, a visible title and a Kafka key equal to ``listing_id``.

    Example:
        >>> decoder = EventDecoder(Path("schemas"))
        >>> event = decoder.decode_listing(value, key=b"toy-0001")
    """

    def __init__(self, schemas_dir: Path, *, clock: Clock = utc_now) -> None:
        """Load and compile every topic schema.

        Args:
            schemas_dir: folder holding ``<topic>.schema.json`` files.
            clock: returns the aware current time that bounds ``occurred_at`` (a fixed one in tests).

        Raises:
            SchemaError: if a schema file is missing or not a valid JSON Schema, or an integer field is unbounded.
        """
        self._validators = load_validators(schemas_dir)
        self._integers = {
            name: integer_limits(self._validators[name].schema) for name in (LISTINGS_SCHEMA, REVIEWS_SCHEMA)
        }
        self._clock = clock

    def validate(self, topic_name: str, obj: object) -> None:
        """Check a decoded JSON object against the schema of ``topic_name``.

        Args:
            topic_name: schema name, e.g. ``"toys.embeddings.v1"``.
            obj: the decoded JSON value.

        Raises:
            SchemaError: if no schema is known for ``topic_name``.
            InvalidEventError: ``schema_violation`` naming the first failing field and rule.
        """
        validator = self._validators.get(topic_name)
        if validator is None:
            raise SchemaError(f"no schema for topic {topic_name!r}; known topics: {', '.join(SCHEMA_NAMES)}")
        message = first_violation(validator, topic_name, obj)
        if message is not None:
            raise InvalidEventError("schema_violation", message)

    def decode_listing(self, value: bytes, key: bytes | None, *, keyed: bool = True) -> ListingEvent:
        """Decode and validate one ``toys.listings.v1`` message.

        Args:
            value: the Kafka message value (UTF-8 JSON).
            key: the Kafka key; it must equal ``listing_id`` (a message without a key is refused).
            keyed: False for events read from a file rather than Kafka: there is no key to check.

        Returns:
            The typed event, its text fields in Unicode NFC.

        Raises:
            InvalidEventError: with reason ``invalid_utf8``, ``invalid_json``, ``schema_violation``,
                ``key_mismatch`` or ``invalid_field``.
        """
        obj = self._decode(LISTINGS_SCHEMA, value, key, keyed)
        if obj["type"] == "listing.upserted":
            check_visible(LABELS[LISTINGS_SCHEMA], "title", obj["title"])
        _check_age_range(obj)
        return _listing_from_json(obj)

    def decode_review(self, value: bytes, key: bytes | None, *, keyed: bool = True) -> ReviewEvent:
        """Decode and validate one ``toys.reviews.v1`` message.

        Args:
            value: the Kafka message value (UTF-8 JSON).
            key: the Kafka key; it must equal ``listing_id`` (a message without a key is refused).
            keyed: False for events read from a file rather than Kafka: there is no key to check.

        Returns:
            The typed event, its text fields in Unicode NFC.

        Raises:
            InvalidEventError: with reason ``invalid_utf8``, ``invalid_json``, ``schema_violation``,
                ``key_mismatch`` or ``invalid_field``.
        """
        obj = self._decode(REVIEWS_SCHEMA, value, key, keyed)
        return ReviewEvent(
            event_id=obj["event_id"],
            type=obj["type"],
            review_id=obj["review_id"],
            listing_id=obj["listing_id"],
            occurred_at=obj["occurred_at"],
            rating=obj.get("rating"),
            text=obj.get("text"),
            title=obj.get("title"),
            helpful_votes=obj.get("helpful_votes"),
            verified_purchase=obj.get("verified_purchase"),
            locale=obj.get("locale"),
        )

    def _decode(self, name: str, value: bytes, key: bytes | None, keyed: bool) -> dict[str, Any]:
        """The schema-valid event with ``occurred_at`` parsed (an aware datetime)."""
        label = LABELS[name]
        obj = clean(label, parse_json(label, value), TEXT_RULES[name])
        self.validate(name, obj)
        event = cast(dict[str, Any], obj)
        check_integers(label, event, self._integers[name])
        event["occurred_at"] = check_occurred_at(label, event["occurred_at"], self._clock())
        if keyed:
            _check_key(label, key, event["listing_id"])
        return event


def _check_key(label: str, key: bytes | None, listing_id: str) -> None:
    if key is None:
        raise InvalidEventError(
            "key_mismatch",
            f"{label} has no Kafka key; produce it with its listing_id {listing_id!r} (UTF-8) as key "
            "so its partition is stable",
        )
    decoded = key.decode("utf-8", errors="replace")
    if decoded != listing_id:
        raise InvalidEventError(
            "key_mismatch",
            f"{label} has Kafka key {decoded!r} but listing_id {listing_id!r}; "
            "produce it with the listing_id (UTF-8) as key so its partition is stable",
        )


def _check_age_range(obj: Mapping[str, Any]) -> None:
    low, high = obj.get("age_min_months"), obj.get("age_max_months")
    if low is not None and high is not None and low > high:
        raise InvalidEventError(
            "invalid_field",
            f"listing event field 'age_min_months': {low} is greater than age_max_months {high}; "
            "send age_min_months <= age_max_months",
        )


def _uris(media: Iterable[Mapping[str, str]]) -> tuple[str, ...]:
    return tuple(item["uri"] for item in media)


def _listing_from_json(obj: Mapping[str, Any]) -> ListingEvent:
    price = obj.get("price")
    return ListingEvent(
        event_id=obj["event_id"],
        type=obj["type"],
        listing_id=obj["listing_id"],
        version=int(obj["version"]),
        occurred_at=obj["occurred_at"],
        title=obj.get("title"),
        description=obj.get("description"),
        brand=obj.get("brand"),
        categories=tuple(obj.get("categories", ())),
        attributes=dict(obj.get("attributes", {})),
        age_min_months=obj.get("age_min_months"),
        age_max_months=obj.get("age_max_months"),
        price=Price(Decimal(price["amount"]), price["currency"]) if price else None,
        images=_uris(obj.get("images", ())),
        videos=_uris(obj.get("videos", ())),
        locale=obj.get("locale"),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Dead-letter records stay far below Kafka's default 1 MiB request size, whatever the input was.
DEADLETTER_MAX_ORIGINAL_BYTES = 256 * 1024
DEADLETTER_MAX_KEY_BYTES = 1024
DEADLETTER_MAX_MESSAGE_CHARS = 2000


def deadletter_record(
    *,
    value: bytes,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    reason: DeadLetterReason,
    message: str,
    worker: str,
    now: datetime,
) -> dict[str, Any]:
    """Build a ``toys.deadletter.v1`` record for a message the worker gave up on.

    Args:
        value: the original value bytes, kept verbatim (base64).
        key: the original key bytes, or None.
        topic: topic the message was read from.
        partition: its partition.
        offset: its offset.
        timestamp_ms: its Kafka timestamp in ms, or None when unknown.
        reason: machine-readable failure class.
        message: human sentence saying what failed and how to fix it.
        worker: name of the worker that failed.
        now: aware time of the failure.

    Returns:
        A dict that validates against ``schemas/toys.deadletter.v1.schema.json``, never larger than
        about 350 KB: an original over DEADLETTER_MAX_ORIGINAL_BYTES is cut there (``original_truncated``),
        and ``original_size`` and ``original_sha256`` always describe the whole original.
    """
    record: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "failed_at": format_rfc3339(now),
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key_b64": None if key is None else _b64(key[:DEADLETTER_MAX_KEY_BYTES]),
            "timestamp_ms": timestamp_ms,
        },
        "original_b64": _b64(value[:DEADLETTER_MAX_ORIGINAL_BYTES]),
        "original_size": len(value),
        "original_sha256": hashlib.sha256(value).hexdigest(),
        "reason": reason,
        "message": message
        if len(message) <= DEADLETTER_MAX_MESSAGE_CHARS
        else message[:DEADLETTER_MAX_MESSAGE_CHARS] + "…",
        "worker": worker,
    }
    if len(value) > DEADLETTER_MAX_ORIGINAL_BYTES:
        record["original_truncated"] = True
    return record


def embedding_record(
    *,
    listing_id: str,
    change: EmbeddingChange,
    version: int,
    model_version: str,
    modalities: Iterable[Modality],
    updated_at: datetime,
    source_event_id: str,
) -> dict[str, Any]:
    """Build a ``toys.embeddings.v1`` event announcing a stored or removed embedding.

    Args:
        listing_id: the listing whose embedding changed.
        change: ``"upserted"`` or ``"deleted"``.
        version: listing version the embedding reflects.
        model_version: id of the encoders + fusion model used.
        modalities: inputs fused into the vector (empty for deletes).
        updated_at: aware time the store was updated.
        source_event_id: event_id of the input event that caused the change.

    Returns:
        A dict that validates against ``schemas/toys.embeddings.v1.schema.json``.
    """
    return {
        "event_id": uuid.uuid4().hex,
        "listing_id": listing_id,
        "change": change,
        "version": version,
        "model_version": model_version,
        "modalities": list(dict.fromkeys(modalities)),
        "updated_at": format_rfc3339(updated_at),
        "source_event_id": source_event_id,
    }
