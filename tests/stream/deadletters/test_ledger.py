"""The replay ledger: what it counts as replayed, and its file (append, lock, torn lines)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.config import Settings
from stream.deadletters.ledger import ReplayLedger, ledger_path, locked_ledger, read_ledger
from stream.errors import DeadLetterError
from tests.stream.deadletters.conftest import DeadLetterFactory

NOW = datetime(2025, 3, 2, tzinfo=UTC)


def test_a_marked_letter_and_every_copy_of_its_original_count_as_replayed(
    deadletter_factory: DeadLetterFactory,
) -> None:
    ledger = ReplayLedger()
    letter = deadletter_factory(dlq_offset=4)
    copy = deadletter_factory(dlq_offset=9, reason="processing_error")  # the same original, failed again
    other = deadletter_factory(dlq_offset=5, key=b"toy-0002")

    ledger.mark(letter, NOW)

    assert ledger.replayed(letter) and ledger.replayed(copy) and not ledger.replayed(other)


def test_a_record_at_a_marked_offset_of_a_recreated_topic_is_new(
    deadletter_factory: DeadLetterFactory,
) -> None:
    ledger = ReplayLedger()
    ledger.mark(deadletter_factory(dlq_offset=0), NOW)

    assert not ledger.replayed(deadletter_factory(dlq_offset=0, value=b"another original"))


def test_entries_survive_in_the_file_and_an_absent_file_is_empty(
    tmp_path: Path, deadletter_factory: DeadLetterFactory
) -> None:
    path, letter = tmp_path / "ledger" / "replayed.jsonl", deadletter_factory()
    assert not read_ledger(path).replayed(letter)

    with locked_ledger(path) as ledger:
        ledger.mark(letter, NOW)

    assert read_ledger(path).replayed(letter)
    with locked_ledger(path) as ledger:
        assert ledger.replayed(letter)
    assert len(path.read_text().splitlines()) == 1


def test_a_torn_line_is_ignored_and_the_next_entry_starts_its_own_line(
    tmp_path: Path, deadletter_factory: DeadLetterFactory
) -> None:
    path, letter = tmp_path / "replayed.jsonl", deadletter_factory()
    path.write_text('{"position": "toys.deadletter.v1/0/1", "event_')

    with locked_ledger(path) as ledger:
        ledger.mark(letter, NOW)

    assert read_ledger(path).replayed(letter)
    assert len(path.read_text().splitlines()) == 2


def test_a_second_replay_at_the_same_time_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "replayed.jsonl"
    with (
        locked_ledger(path),
        pytest.raises(DeadLetterError, match="another `toyfuse dlq replay`"),
        locked_ledger(path),
    ):
        pass


def test_the_ledger_lives_in_the_run_folder(tmp_path: Path) -> None:
    assert ledger_path(Settings(run_dir=tmp_path)) == tmp_path / "deadletters" / "replayed.jsonl"
