"""Dead-letter records: parsing what the worker writes, selection by reason and time, formatting."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from stream.contracts.events import DEADLETTER_MAX_KEY_BYTES, DEADLETTER_MAX_ORIGINAL_BYTES, EventDecoder
from stream.deadletters.records import (
    Selection,
    format_line,
    format_summary,
    one_line,
    parse_deadletter,
    parse_since,
    to_json,
)
from stream.errors import InvalidEventError
from tests.stream.deadletters.conftest import FAILED_AT, DeadLetterFactory


def test_a_worker_record_parses_back_to_its_original_bytes_and_source(
    deadletter_factory: DeadLetterFactory,
) -> None:
    letter = deadletter_factory(dlq_offset=5, value=b"\xff not utf-8", key=None)

    assert (letter.original, letter.key, letter.failed_at) == (b"\xff not utf-8", None, FAILED_AT)
    assert (letter.position, letter.source) == ("toys.deadletter.v1/0/5", "toys.listings.v1[2]@17")


@pytest.mark.parametrize("value", [b"not json", b'{"reason": "invalid_json"}', b"\xff"])
def test_a_record_that_is_not_a_dead_letter_is_refused(decoder: EventDecoder, value: bytes) -> None:
    with pytest.raises(InvalidEventError):
        parse_deadletter(decoder, "toys.deadletter.v1", 0, 0, value)


@pytest.mark.parametrize("size", [10, DEADLETTER_MAX_ORIGINAL_BYTES + 1])
def test_json_output_round_trips_through_the_parser(
    decoder: EventDecoder, deadletter_factory: DeadLetterFactory, size: int
) -> None:
    letter = deadletter_factory(dlq_offset=3, dlq_partition=1, value=b"v" * size)
    printed = to_json(letter)
    where = printed.pop("deadletter")

    again = parse_deadletter(
        decoder, where["topic"], where["partition"], where["offset"], json.dumps(printed).encode()
    )

    assert again == letter
    assert base64.b64decode(printed["original_b64"]) == letter.original


def test_a_record_is_complete_only_with_the_whole_original_and_key(
    decoder: EventDecoder, deadletter_factory: DeadLetterFactory
) -> None:
    whole = deadletter_factory()
    cut = deadletter_factory(value=b"v" * (DEADLETTER_MAX_ORIGINAL_BYTES + 1))
    long_key = deadletter_factory(key=b"k" * (DEADLETTER_MAX_KEY_BYTES + 5))
    printed = {**to_json(whole), "original_b64": base64.b64encode(b"other").decode()}
    del printed["deadletter"]
    corrupt = parse_deadletter(decoder, "toys.deadletter.v1", 0, 0, json.dumps(printed).encode())

    assert whole.complete and not whole.truncated
    assert cut.truncated and len(cut.original) == DEADLETTER_MAX_ORIGINAL_BYTES and not cut.complete
    assert not long_key.complete and not corrupt.complete


def test_the_same_original_dead_lettered_twice_shares_its_fingerprint(
    deadletter_factory: DeadLetterFactory,
) -> None:
    first, again = deadletter_factory(), deadletter_factory(dlq_offset=99, reason="processing_error")
    other_key, other_topic = deadletter_factory(key=b"toy-0002"), deadletter_factory(topic="toys.reviews.v1")

    assert first.fingerprint == again.fingerprint
    assert len({first.fingerprint, other_key.fingerprint, other_topic.fingerprint}) == 3
    assert deadletter_factory(key=None).fingerprint != deadletter_factory(key=b"").fingerprint


def test_selection_by_reason_and_time(deadletter_factory: DeadLetterFactory) -> None:
    old = deadletter_factory(now=FAILED_AT - timedelta(days=2))
    new = deadletter_factory(reason="invalid_json")
    letters = [old, new]

    assert Selection().apply(letters) == letters
    assert Selection(frozenset({"invalid_json", "key_mismatch"})).apply(letters) == [new]
    assert Selection(since=FAILED_AT - timedelta(days=1)).apply(letters) == [new]
    assert Selection(frozenset({"schema_violation"}), since=FAILED_AT).apply(letters) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", datetime(2025, 3, 1, 11, 58, 30, tzinfo=UTC)),
        ("30m", datetime(2025, 3, 1, 11, 30, tzinfo=UTC)),
        ("2h", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("7d", datetime(2025, 2, 22, 12, tzinfo=UTC)),
        ("2025-02-28T13:00:00+01:00", datetime(2025, 2, 28, 12, tzinfo=UTC)),
        ("2025-02-28", datetime(2025, 2, 28, tzinfo=UTC)),
    ],
)
def test_since_takes_an_age_a_time_or_a_date(text: str, expected: datetime) -> None:
    assert parse_since(text, FAILED_AT) == expected


@pytest.mark.parametrize("text", ["yesterday", "2h ago", "2025-02-28T13:00:00", "-1h"])
def test_since_refuses_anything_else_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="30m, 2h or 7d"):
        parse_since(text, FAILED_AT)


def test_a_line_names_time_reason_source_key_and_a_short_message(
    deadletter_factory: DeadLetterFactory,
) -> None:
    letter = deadletter_factory(message="bad\nvalue " + "x" * 300, key=b"toy-\xff")

    line = format_line(letter)

    assert line.startswith(
        "2025-03-01T12:00:00Z  schema_violation  toys.listings.v1[2]@17  key=toy-\\xff  bad value"
    )
    assert line.endswith("…") and "\n" not in line and len(line) < 200


def test_one_line_keeps_short_text_whole() -> None:
    assert one_line("  two\twords ") == "two words"
    assert one_line("abcdef", width=4) == "abc…"


def test_summary_counts_each_reason_most_frequent_first(deadletter_factory: DeadLetterFactory) -> None:
    letters = [deadletter_factory(reason="invalid_json"), deadletter_factory(), deadletter_factory()]

    assert format_summary(letters) == "3 dead letters: schema_violation 2, invalid_json 1"
    assert format_summary(letters[:1]) == "1 dead letter: invalid_json 1"
    assert format_summary([]) == "0 dead letters"
