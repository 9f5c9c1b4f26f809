"""Translates redis-py errors into toyfuse's store errors, in one place for every Redis reader and writer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream.errors import StoreError, StoreUnavailable


@asynccontextmanager
async def redis_errors(action: str) -> AsyncIterator[None]:
    """Raise StoreUnavailable (retry later) or StoreError (Redis refused) for redis-py errors in the block.

    Args:
        action: what the block does, for the message, e.g. ``"writing 3 listings"``.
    """
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise StoreUnavailable(f"Redis unreachable while {action}: {exc}") from exc
    except RedisError as exc:
        raise StoreError(f"Redis refused {action}: {exc}") from exc


@asynccontextmanager
async def pipelined(redis: Redis, action: str) -> AsyncIterator[Pipeline]:
    """A non-transactional pipeline whose redis-py errors become StoreUnavailable or StoreError.

    Args:
        redis: the client.
        action: what the pipeline does, for the message, e.g. ``"writing 3 listings"``.
    """
    async with redis_errors(action), redis.pipeline(transaction=False) as pipe:
        yield pipe
