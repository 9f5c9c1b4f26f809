"""The one retry policy, and the real Redis and Triton clients waiting out outages under it."""

from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis
from tritonclient.grpc import InferenceServerException

from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.errors import StoreUnavailable, TritonError, TritonUnavailable
from stream.inference.triton import TritonEncoder
from stream.retry import NO_RETRY, RetryPolicy
from stream.store.listings import EmbeddingStore
from tests.conftest import free_port


def recording(sleeps: list[float], **fields: Any) -> RetryPolicy:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return RetryPolicy(0.5, 2.0, sleep=record_sleep, **fields)


def test_delays_double_up_to_the_cap() -> None:
    assert [RetryPolicy(0.5, 3.0).delay(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_worker_policy_comes_from_settings() -> None:
    policy = RetryPolicy.from_settings(Settings(retry_initial_s=0.1, retry_max_s=0.4))

    assert (policy.initial_s, policy.max_s, policy.max_attempts) == (0.1, 0.4, None)


async def test_retries_until_the_call_succeeds() -> None:
    sleeps: list[float] = []
    failures = [TritonUnavailable("down"), StoreUnavailable("down"), TritonUnavailable("down")]

    async def flaky() -> str:
        if failures:
            raise failures.pop()
        return "done"

    assert await recording(sleeps).call("test", flaky) == "done"
    assert sleeps == [0.5, 1.0, 2.0]


async def test_other_errors_are_not_retried() -> None:
    sleeps: list[float] = []

    async def broken() -> None:
        raise TritonError("bad input")

    with pytest.raises(TritonError):
        await recording(sleeps).call("test", broken)
    assert sleeps == []


async def test_a_store_gives_up_after_its_attempts(schema: IndexSchema) -> None:
    sleeps: list[float] = []
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    store = EmbeddingStore(redis, schema, recording(sleeps, max_attempts=3))

    with pytest.raises(StoreUnavailable, match="Redis unreachable"):
        await store.guard_states(["toy-0001"])
    assert sleeps == [0.5, 1.0]
    await redis.aclose()


async def test_a_reader_fails_fast_by_default(schema: IndexSchema) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")

    with pytest.raises(StoreUnavailable):
        await EmbeddingStore(redis, schema).get_many(["toy-0001"])
    assert EmbeddingStore(redis, schema).retry is NO_RETRY
    await redis.aclose()


class FlakyTriton:
    """A gRPC client whose first ``outages`` calls fail as an unreachable server does."""

    def __init__(self, outages: int) -> None:
        self.outages, self.calls = outages, 0

    async def infer(self, model: str, inputs: Any, outputs: Any, client_timeout: float) -> Any:
        self.calls += 1
        if self.outages:
            self.outages -= 1
            raise InferenceServerException("connection refused", status="StatusCode.UNAVAILABLE")
        rows = inputs[0].shape()[0]
        return type("Result", (), {"as_numpy": staticmethod(lambda name: np.ones((rows, 4), np.float32))})()


async def test_the_triton_encoder_waits_out_an_outage() -> None:
    sleeps: list[float] = []
    client = FlakyTriton(outages=2)
    encoder = TritonEncoder(client, "text_encoder", 4, 1.0, recording(sleeps))  # type: ignore[arg-type]

    vectors = await encoder.embed_texts(["a", "b"])

    assert vectors.shape == (2, 4) and client.calls == 3
    assert sleeps == [0.5, 1.0]
