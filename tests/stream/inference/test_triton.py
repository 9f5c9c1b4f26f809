"""A broken model is an outage, bad input is not: the canary decides which one a Triton error is; the call metrics."""

import uuid
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY
from tritonclient.grpc import InferenceServerException

from stream.errors import TritonError, TritonUnavailable
from stream.inference.triton import (
    TEXT_OUTPUT,
    TritonEncoder,
    blame_model_or_input,
    infer,
    text_batch,
)
from stream.retry import RetryPolicy


async def answer(value: str) -> str:
    return value


async def fail(message: str) -> str:
    raise TritonError(message)


async def test_the_answer_passes_through() -> None:
    assert await blame_model_or_input("m", lambda: answer("ok"), lambda: fail("unused")) == "ok"


async def test_an_error_with_a_healthy_canary_blames_the_input() -> None:
    with pytest.raises(TritonError, match="bad input") as caught:
        await blame_model_or_input("m", lambda: fail("bad input"), lambda: answer("canary ok"))
    assert not isinstance(caught.value, TritonUnavailable)


async def test_an_error_with_a_failing_canary_is_an_outage() -> None:
    with pytest.raises(TritonUnavailable, match="'m' is unhealthy"):
        await blame_model_or_input("m", lambda: fail("stub died"), lambda: fail("stub died"))


async def test_an_outage_needs_no_canary() -> None:
    canaries: list[str] = []

    async def unreachable() -> str:
        raise TritonUnavailable("connection refused")

    async def canary() -> str:
        canaries.append("sent")
        return "ok"

    with pytest.raises(TritonUnavailable):
        await blame_model_or_input("m", unreachable, canary)
    assert canaries == []


class SickModel:
    """A gRPC client whose model fails its first ``broken_calls`` requests (a dead stub), and any
    request of more than ``max_rows`` rows (an input it cannot take)."""

    def __init__(self, broken_calls: int = 0, max_rows: int = 64) -> None:
        self.broken_calls, self.max_rows, self.rows = broken_calls, max_rows, []

    async def infer(self, model: str, inputs: Any, outputs: Any, client_timeout: float) -> Any:
        rows = inputs[0].shape()[0]
        self.rows.append(rows)
        if len(self.rows) <= self.broken_calls:
            raise InferenceServerException("Stub process is not healthy", status="StatusCode.INTERNAL")
        if rows > self.max_rows:
            raise InferenceServerException("cannot embed this", status="StatusCode.INTERNAL")
        return type("Result", (), {"as_numpy": staticmethod(lambda name: np.ones((rows, 4), np.float32))})()


def encoder(client: SickModel, sleeps: list[float], model: str = "text_encoder") -> TritonEncoder:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return TritonEncoder(client, model, 4, 1.0, RetryPolicy(0.5, 2.0, sleep=record_sleep))  # type: ignore[arg-type]


async def test_a_broken_model_is_waited_out_and_the_texts_embedded() -> None:
    sleeps: list[float] = []
    client = SickModel(broken_calls=4)

    vectors = await encoder(client, sleeps).embed_texts(["a", "b", "c"])

    assert vectors.shape == (3, 4)
    assert client.rows == [3, 1, 3, 1, 3], "each failed call is followed by a one-text canary"
    assert sleeps == [0.5, 1.0]


async def test_an_input_the_model_rejects_is_not_retried() -> None:
    sleeps: list[float] = []
    client = SickModel(max_rows=2)

    with pytest.raises(TritonError, match="cannot embed this"):
        await encoder(client, sleeps).embed_texts(["a", "b", "c"])
    assert client.rows == [3, 1] and sleeps == []


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_every_call_observes_its_batch_size_and_a_failure_its_reason() -> None:
    model = f"model-{uuid.uuid4().hex[:8]}"
    client = SickModel(broken_calls=2)  # the call and its canary fail: a broken model, waited out
    await encoder(client, [], model).embed_texts(["a", "b", "c"])

    assert client.rows == [3, 1, 3], "the failed call, its failed canary, the retry"
    assert sample("toyfuse_triton_batch_size_items_count", {"model": model}) == 3
    assert sample("toyfuse_triton_batch_size_items_sum", {"model": model}) == 7
    assert sample("toyfuse_triton_batch_size_items_bucket", {"model": model, "le": "1.0"}) == 1
    assert sample("toyfuse_triton_request_failures_total", {"model": model, "reason": "model_error"}) == 2


class FailingServer:
    """A gRPC client whose every request fails with one status."""

    def __init__(self, status: str) -> None:
        self.status = status

    async def infer(self, model: str, inputs: Any, outputs: Any, client_timeout: float) -> Any:
        raise InferenceServerException("no answer", status=self.status)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("StatusCode.UNAVAILABLE", "unavailable"),
        ("StatusCode.RESOURCE_EXHAUSTED", "unavailable"),
        ("StatusCode.DEADLINE_EXCEEDED", "timeout"),
        ("StatusCode.INVALID_ARGUMENT", "model_error"),
    ],
)
async def test_a_failed_request_is_counted_by_its_reason(status: str, reason: str) -> None:
    model = f"model-{uuid.uuid4().hex[:8]}"

    with pytest.raises(TritonError):
        await infer(FailingServer(status), model, [text_batch(["a", "b"])], [TEXT_OUTPUT], 1.0)  # type: ignore[arg-type]

    assert sample("toyfuse_triton_request_failures_total", {"model": model, "reason": reason}) == 1
    assert sample("toyfuse_triton_batch_size_items_sum", {"model": model}) == 2
    assert sample("toyfuse_triton_request_seconds_count", {"model": model}) == 1, "the duration stays"
