"""Dead-letter records read back from Kafka: parsing, selection by reason and time, and formatting."""

import base64
import binascii
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from stream.contracts.events import DEADLETTER_MAX_KEY_BYTES, EventDecoder
from stream.contracts.schemas import DEADLETTER_SCHEMA, format_rfc3339, parse_rfc3339
from stream.errors import DeadLetterReason, InvalidEventError

_AGE = re.compile(r"^(\d+)([smhd])$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_MESSAGE_WIDTH = 100


@dataclass(frozen=True)
class DeadLetter:
    """One ``toys.deadletter.v1`` record, and where it sits on the dead-letter topic."""

    topic: str  # the dead-letter topic, partition and offset this record was read from
    partition: int
    offset: int
    event_id: str
    failed_at: datetime
    reason: DeadLetterReason
    message: str
    worker: str
    source_topic: str  # where the original message was consumed
    source_partition: int
    source_offset: int
    source_timestamp_ms: int | None
    key: bytes | None  # the original key and value, decoded from base64 (possibly cut short)
    original: bytes
    original_size: int | None  # size and SHA-256 of the whole original, when the record says
    original_sha256: str | None
    truncated: bool  # the record holds only the start of a larger original

    @property
    def complete(self) -> bool:
        """Whether the record holds the whole original key and value, so replaying it is faithful."""
        if self.truncated or (self.key is not None and len(self.key) >= DEADLETTER_MAX_KEY_BYTES):
            return False  # a key of the limit's length may have been cut there
        if self.original_size is not None and len(self.original) != self.original_size:
            return False
        digest = hashlib.sha256(self.original).hexdigest()
        return self.original_sha256 is None or digest == self.original_sha256

    @property
    def position(self) -> str:
        """``topic/partition/offset`` of this record on the dead-letter topic (the replay ledger's key)."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def source(self) -> str:
        """Where the original came from, as ``topic[partition]@offset``."""
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the original's topic, key and value: the same message dead-lettered twice shares it."""
        digest = hashlib.sha256(self.source_topic.encode("utf-8") + b"\0")
        digest.update(b"-" if self.key is None else b"k" + base64.b64encode(self.key))
        digest.update(b"\0" + self.original)
        return digest.hexdigest()


def parse_deadletter(
    decoder: EventDecoder, topic: str, partition: int, offset: int, value: bytes
) -> DeadLetter:
    """Decode and validate one record of the dead-letter topic.

    Args:
        decoder: validates against ``schemas/toys.deadletter.v1.schema.json``.
        topic: the dead-letter topic the record was read from.
        partition: its partition.
        offset: its offset.
        value: the record's value (JSON).

    Returns:
        The typed record, original key and value decoded.

    Raises:
        InvalidEventError: the value is not a valid ``toys.deadletter.v1`` record.
    """
    try:
        obj = json.loads(value)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidEventError(
            "invalid_json", f"dead-letter record {topic}/{partition}/{offset}: {exc}"
        ) from exc
    decoder.validate(DEADLETTER_SCHEMA, obj)
    source = obj["source"]
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=obj["event_id"],
        failed_at=parse_rfc3339(obj["failed_at"]),
        reason=obj["reason"],
        message=obj["message"],
        worker=obj["worker"],
        source_topic=source["topic"],
        source_partition=source["partition"],
        source_offset=source["offset"],
        source_timestamp_ms=source["timestamp_ms"],
        key=None if source["key_b64"] is None else _unb64(source["key_b64"]),
        original=_unb64(obj["original_b64"]),
        original_size=obj.get("original_size"),
        original_sha256=obj.get("original_sha256"),
        truncated=obj.get("original_truncated", False),
    )


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise InvalidEventError(
            "schema_violation", f"dead-letter record holds invalid base64: {exc}"
        ) from exc


def parse_since(text: str, now: datetime) -> datetime:
    """Read a ``--since`` value: an age (``30m``, ``2h``, ``7d``), an RFC 3339 time or a date (UTC).

    Example:
        >>> parse_since("2h", datetime(2025, 3, 1, 12, tzinfo=UTC))
        datetime.datetime(2025, 3, 1, 10, 0, tzinfo=datetime.timezone.utc)

    Raises:
        ValueError: ``text`` is none of these.
    """
    age = _AGE.match(text.strip())
    if age:
        return now - timedelta(**{_AGE_UNITS[age[2]]: int(age[1])})
    try:
        return parse_rfc3339(text.strip())
    except ValueError:
        pass
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time; give an age such as 30m, 2h or 7d, "
            "an RFC 3339 time such as 2025-03-01T12:00:00Z, or a date such as 2025-03-01"
        ) from None


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command works on: by reason (none given: every reason) and failure time."""

    reasons: frozenset[DeadLetterReason] = frozenset()
    since: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        """Return whether ``letter`` has a selected reason and failed at or after ``since``."""
        if self.reasons and letter.reason not in self.reasons:
            return False
        return self.since is None or letter.failed_at >= self.since

    def apply(self, letters: Iterable[DeadLetter]) -> list[DeadLetter]:
        """The selected letters, in the order given."""
        return [letter for letter in letters if self.matches(letter)]


def shown_key(key: bytes | None) -> str:
    """A key as a person reads it: UTF-8 with escapes for other bytes, ``-`` when there is none."""
    return "-" if key is None else key.decode("utf-8", errors="backslashreplace")


def one_line(text: str, width: int = _MESSAGE_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_line(letter: DeadLetter) -> str:
    """One line for a person: time, reason, source topic[partition]@offset, key, message shortened."""
    return (
        f"{format_rfc3339(letter.failed_at)}  {letter.reason:<16}  {letter.source}  "
        f"key={shown_key(letter.key)}  {one_line(letter.message)}"
    )


def to_json(letter: DeadLetter) -> dict[str, Any]:
    """The record as its JSON fields, plus ``deadletter``: where it sits on the dead-letter topic."""
    return {
        "deadletter": {"topic": letter.topic, "partition": letter.partition, "offset": letter.offset},
        "event_id": letter.event_id,
        "failed_at": format_rfc3339(letter.failed_at),
        "reason": letter.reason,
        "message": letter.message,
        "worker": letter.worker,
        "source": {
            "topic": letter.source_topic,
            "partition": letter.source_partition,
            "offset": letter.source_offset,
            "key_b64": None if letter.key is None else base64.b64encode(letter.key).decode("ascii"),
            "timestamp_ms": letter.source_timestamp_ms,
        },
        "original_b64": base64.b64encode(letter.original).decode("ascii"),
        **_whole_original(letter),
    }


def _whole_original(letter: DeadLetter) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "original_size": letter.original_size,
        "original_sha256": letter.original_sha256,
    }
    present = {name: value for name, value in fields.items() if value is not None}
    return {**present, "original_truncated": True} if letter.truncated else present


def format_summary(letters: Iterable[DeadLetter]) -> str:
    """``3 dead letters: schema_violation 2, invalid_json 1`` (most frequent reason first)."""
    counts = Counter(letter.reason for letter in letters)
    total = sum(counts.values())
    noun = "dead letter" if total == 1 else "dead letters"
    detail = ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items(), key=_by_count))
    return f"{total} {noun}" + (f": {detail}" if detail else "")


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]
