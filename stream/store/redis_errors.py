"""Translates redis-py errors into toyfuse's store errors, in one place for every Redis reader and writer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream.errors import StoreError, StoreUnavailable, VectorSetMismatch
from stream.store.vector_sets import REBUILD_ADVICE

# How Redis refuses a VADD whose quantisation or M differs from the existing set's ("asked M value
# mismatch with existing vector set"): fixed when the set was created, so no retry or event can mend it.
SET_BUILT_OTHERWISE = "mismatch with existing vector set"


@asynccontextmanager
async def redis_errors(action: str) -> AsyncIterator[None]:
    """Raise StoreUnavailable (retry later), VectorSetMismatch (a vector set was built otherwise than the
    insert asks) or StoreError (Redis refused) for redis-py errors in the block.

    Args:
        action: what the block does, for the message, e.g. ``"writing 3 listings"``.
    """
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise StoreUnavailable(f"Redis unreachable while {action}: {exc}") from exc
    except ResponseError as exc:
        if SET_BUILT_OTHERWISE in str(exc):
            raise VectorSetMismatch(f"Redis refused {action}: {exc}. {REBUILD_ADVICE}") from exc
        raise StoreError(f"Redis refused {action}: {exc}") from exc
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
