"""Fixtures of the store tests: what the store made the throwaway Redis run."""

from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

VsimSent = Callable[[Awaitable[object]], Awaitable[str]]


@pytest.fixture
def vsim_sent(redis_client: Redis) -> VsimSent:
    """Await a search and return the ``VSIM`` command it made Redis run (MONITOR shows a script's too)."""

    async def sent(search: Awaitable[object]) -> str:
        async with redis_client.monitor() as monitor:
            await search
            while not (command := (await monitor.next_command())["command"]).startswith("VSIM"):
                pass
        return str(command)

    return sent
