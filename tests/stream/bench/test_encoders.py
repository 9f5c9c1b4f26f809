"""The encoder ceilings: every encoder called in batches at every concurrency, through a stand-in client."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from tritonclient.grpc import InferInput, InferRequestedOutput

from stream.bench.encoders import EncoderWork, encoder_ceilings, work_items
from stream.bench.throughput import CONCURRENCIES

DIMS = {"TEXT_EMBEDDING": 3, "IMAGE_EMBEDDING": 5}


class FakeResult:
    def __init__(self, rows: int, name: str) -> None:
        self.array = np.zeros((rows, DIMS[name]), dtype=np.float32)

    def as_numpy(self, name: str) -> np.ndarray:
        return self.array


class FakeClient:
    """Answers every call with zero vectors; records each call's model and row count."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def infer(
        self, model: str, inputs: Sequence[InferInput], outputs: Sequence[InferRequestedOutput], **_: Any
    ) -> FakeResult:
        rows = inputs[0].shape()[0]
        self.calls.append((model, rows))
        return FakeResult(rows, outputs[0].name())


@pytest.mark.asyncio
async def test_each_encoder_is_timed_at_each_concurrency_in_batches() -> None:
    client = FakeClient()
    work = EncoderWork(
        texts=[f"toy {n}" for n in range(10)], photos=np.zeros((6, 4, 4, 3), np.uint8), batch=4
    )
    done: list[int] = []

    results = await encoder_ceilings(client, work, done.append)  # type: ignore[arg-type]

    assert set(results) == {"text_encoder", "text_multilingual_encoder", "image_encoder"}
    for result in results.values():
        assert set(result["by_concurrency"]) == {str(c) for c in CONCURRENCIES} and result["batch"] == 4
    text_calls = [rows for model, rows in client.calls if model == "text_encoder"]
    # A warm-up batch, then the ten texts as batches of 4, 4 and 2 at each concurrency.
    assert text_calls[0] == 4 and sorted(text_calls[1:]) == [2] * len(CONCURRENCIES) + [4] * 2 * len(
        CONCURRENCIES
    )
    assert sum(done) == work_items(work)


@pytest.mark.asyncio
async def test_without_photos_only_the_text_encoders_are_timed() -> None:
    client = FakeClient()
    work = EncoderWork(texts=["a", "b"], photos=np.zeros((0, 4, 4, 3), np.uint8), repeats=2)

    results = await encoder_ceilings(client, work, lambda _: None)  # type: ignore[arg-type]

    assert set(results) == {"text_encoder", "text_multilingual_encoder"}
    assert {rows for _, rows in client.calls} == {4}  # both passes over the two texts fit in one batch
