"""Per-listing locks, so a listing's upsert and its review re-fusion never interleave in one worker."""

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager


class ListingLocks:
    """Async locks keyed by listing id, taken in sorted order (no deadlock between two batches).

    A lock is forgotten once nobody holds or waits for it, so memory stays bounded.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, listing_ids: Iterable[str]) -> AsyncIterator[None]:
        """Hold the locks of all ``listing_ids`` for the duration of the ``async with`` block."""
        held: list[str] = []
        try:
            for listing_id in sorted(set(listing_ids)):
                lock = self._locks.setdefault(listing_id, asyncio.Lock())
                self._users[listing_id] = self._users.get(listing_id, 0) + 1
                try:
                    await lock.acquire()
                except BaseException:
                    self._forget(listing_id)
                    raise
                held.append(listing_id)
            yield
        finally:
            for listing_id in reversed(held):
                self._locks[listing_id].release()
                self._forget(listing_id)

    def _forget(self, listing_id: str) -> None:
        self._users[listing_id] -= 1
        if not self._users[listing_id]:
            del self._users[listing_id], self._locks[listing_id]

    def __len__(self) -> int:
        return len(self._locks)
