"""The replay ledger: a JSON-lines file of the dead letters ``toyfuse dlq replay`` has produced again.

Each line names a dead letter by its ``topic/partition/offset`` and ``event_id`` (offsets start
again at 0 when the topic is re-created; the id tells such records apart) and carries the
fingerprint of its original message. A record is "already replayed" when either is in the
ledger: so the dead letter that a replayed event earns when it fails again is not replayed in a
loop. The file is appended to (one line per acknowledged replay) under an exclusive lock, so two
replays at once cannot both produce a record; a line torn by a crash is ignored.
"""

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from stream.config import Settings
from stream.contracts.schemas import format_rfc3339
from stream.deadletters.records import DeadLetter
from stream.errors import DeadLetterError


@dataclass(frozen=True)
class LedgerEntry:
    """One replayed dead letter."""

    position: str  # topic/partition/offset on the dead-letter topic
    event_id: str  # the dead-letter record's own id
    fingerprint: str  # DeadLetter.fingerprint of its original
    replayed_at: str  # RFC 3339


def ledger_path(settings: Settings) -> Path:
    """Where the ledger of this run folder lives."""
    return settings.run_dir / "deadletters" / "replayed.jsonl"


class ReplayLedger:
    """The set of replayed dead letters; ``mark`` also appends to the ledger file when one is open.

    Example:
        >>> ledger = ReplayLedger()
        >>> ledger.mark(letter, datetime.now(UTC))
        >>> ledger.replayed(letter)
        True
    """

    def __init__(self, entries: Iterable[LedgerEntry] = (), sink: TextIO | None = None) -> None:
        self._positions: set[tuple[str, str]] = set()
        self._fingerprints: set[str] = set()
        self._sink = sink
        for entry in entries:
            self._add(entry)

    def replayed(self, letter: DeadLetter) -> bool:
        """Return whether this dead letter, or another copy of its original, was replayed."""
        return (
            letter.position,
            letter.event_id,
        ) in self._positions or letter.fingerprint in self._fingerprints

    def mark(self, letter: DeadLetter, now: datetime) -> None:
        """Record that ``letter`` has been produced again (call once the broker acknowledged it)."""
        entry = LedgerEntry(letter.position, letter.event_id, letter.fingerprint, format_rfc3339(now))
        self._add(entry)
        if self._sink is not None:
            self._sink.write(json.dumps(asdict(entry)) + "\n")
            self._sink.flush()

    def _add(self, entry: LedgerEntry) -> None:
        self._positions.add((entry.position, entry.event_id))
        self._fingerprints.add(entry.fingerprint)


def parse_entries(lines: Iterable[str]) -> Iterator[LedgerEntry]:
    """The ledger entries of a file's lines, skipping blank or torn ones."""
    for line in lines:
        try:
            yield LedgerEntry(**json.loads(line))
        except (ValueError, TypeError):
            continue


def read_ledger(path: Path) -> ReplayLedger:
    """The ledger at ``path`` as it is now, read only (an absent file is an empty ledger)."""
    if not path.exists():
        return ReplayLedger()
    with path.open(encoding="utf-8") as lines:
        return ReplayLedger(parse_entries(lines))


@contextmanager
def locked_ledger(path: Path) -> Iterator[ReplayLedger]:
    """Open the ledger for appending under an exclusive lock, load it, and fsync it on the way out.

    Raises:
        DeadLetterError: another replay holds the lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DeadLetterError(
                f"another `toyfuse dlq replay` holds {path}; wait for it to finish and run this again"
            ) from exc
        file.seek(0)
        text = file.read()
        if text and not text.endswith("\n"):
            file.write("\n")  # end a torn line, so the next entry starts a line of its own
        ledger = ReplayLedger(parse_entries(text.splitlines()), sink=file)
        try:
            yield ledger
        finally:
            file.flush()
            os.fsync(file.fileno())
