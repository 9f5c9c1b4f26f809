"""Async Triton gRPC client for the embedding models."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from tritonclient.grpc import InferenceServerException, InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient

from stream import metrics
from stream.errors import EmbeddingDimMismatch, TritonError, TritonUnavailable
from stream.features.vectors import FloatArray
from stream.retry import NO_RETRY, RetryPolicy, retried

R = TypeVar("R")

TEXT_INPUT = "TEXT"
CANARY_TEXT = "wooden toy train"  # a known-good input: if a model fails on it, the model is broken
TEXT_OUTPUT = "TEXT_EMBEDDING"
# gRPC status codes after which the same request can succeed later.
RETRYABLE_STATUSES = {
    "StatusCode.UNAVAILABLE",
    "StatusCode.DEADLINE_EXCEEDED",
    "StatusCode.RESOURCE_EXHAUSTED",
}
TIMEOUT_STATUS = "StatusCode.DEADLINE_EXCEEDED"
FailureReason = Literal["unavailable", "timeout", "model_error"]


def failure_reason(status: str) -> FailureReason:
    """The ``toyfuse_triton_request_failures_total`` reason of a failed call's gRPC status (pure).

    A timeout is retryable like an unavailable server but told apart: it points at a slow model, not a
    missing one. Any status that is not retryable is the model's (or its input's) error.

    >>> [failure_reason(s) for s in ("StatusCode.DEADLINE_EXCEEDED", "StatusCode.UNAVAILABLE", "StatusCode.INTERNAL")]
    ['timeout', 'unavailable', 'model_error']
    """
    if status == TIMEOUT_STATUS:
        return "timeout"
    return "unavailable" if status in RETRYABLE_STATUSES else "model_error"


async def infer(
    client: InferenceServerClient, model: str, inputs: list[InferInput], outputs: list[str], timeout_s: float
) -> dict[str, FloatArray]:
    """One inference request; returns each requested output as float32.

    The first dimension of the first input is the request's batch (every model's first input has one row
    per item), observed in ``toyfuse_triton_batch_size_items``; a failure is counted by its reason.

    Raises:
        TritonUnavailable: the server could not be reached or timed out (retry later).
        TritonError: the server answered with another error.
    """
    metrics.triton_batch_size_items.labels(model).observe(inputs[0].shape()[0])
    try:
        with metrics.triton_request_seconds.labels(model).time():
            result = await client.infer(
                model,
                inputs,
                outputs=[InferRequestedOutput(name) for name in outputs],
                client_timeout=timeout_s,
            )
    except InferenceServerException as exc:
        status = str(exc.status())
        metrics.triton_request_failures_total.labels(model, failure_reason(status)).inc()
        error = TritonUnavailable if status in RETRYABLE_STATUSES else TritonError
        raise error(f"Triton request to {model!r} failed ({status}): {exc.message()}") from exc
    return {name: np.asarray(result.as_numpy(name), dtype=np.float32) for name in outputs}


async def blame_model_or_input(
    model: str, call: Callable[[], Awaitable[R]], canary: Callable[[], Awaitable[object]]
) -> R:
    """Await ``call()``; when Triton answers it with an error, find out whether the model or the input is at fault.

    A known-good ``canary`` request of the same shape is sent: if it fails too, the model is broken
    (e.g. a dead Python-backend stub), which is an outage, so the clients' retry policy waits for it to
    recover instead of dead-lettering valid events. If the canary succeeds, the input is at fault.

    Raises:
        TritonUnavailable: the model itself is unhealthy (retry later).
        TritonError: the model works, this input makes it fail.
    """
    try:
        return await call()
    except TritonUnavailable:
        raise
    except TritonError as exc:
        try:
            await canary()
        except TritonError as canary_failure:
            metrics.model_canary_failures_total.labels(model).inc()
            raise TritonUnavailable(
                f"Triton model {model!r} is unhealthy: a known-good canary request failed too "
                f"({canary_failure}); waiting for it to recover (check the Triton log, or `toyfuse stack up`)"
            ) from exc
        raise


async def model_info(client: InferenceServerClient, model: str) -> tuple[str, dict[str, str]]:
    """A served model's newest version and its config parameters.

    Raises:
        TritonUnavailable: the model is not ready on the server.
    """
    try:
        metadata = await client.get_model_metadata(model, as_json=True)
        config = await client.get_model_config(model, as_json=True)
    except InferenceServerException as exc:
        raise TritonUnavailable(
            f"Triton model {model!r} is not ready: {exc.message()}; "
            "start the stack with `toyfuse stack up` and read its Triton log"
        ) from exc
    return version_and_parameters(metadata, config)


def version_and_parameters(metadata: dict[str, Any], config: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """A model's newest version and its config parameters, from Triton's JSON metadata and config (pure).

    >>> version_and_parameters({"versions": ["2", "10"]}, {"config": {"parameters": {"p": {"string_value": "x"}}}})
    ('10', {'p': 'x'})
    """
    parameters = {
        key: value.get("string_value", "") for key, value in config["config"].get("parameters", {}).items()
    }
    return max(metadata["versions"], key=int), parameters


def text_batch(texts: Sequence[str]) -> InferInput:
    """Pack strings as a [n, 1] BYTES tensor, the input layout of text models."""
    array = np.array([[text.encode("utf-8")] for text in texts], dtype=np.object_)
    tensor = InferInput(TEXT_INPUT, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


class TritonEncoder:
    """Calls one Triton text model; batches are sent whole and Triton's dynamic batcher merges them."""

    def __init__(
        self,
        client: InferenceServerClient,
        model_name: str,
        dims: int,
        timeout_s: float,
        retry: RetryPolicy = NO_RETRY,
    ) -> None:
        self._client = client
        self.retry = retry
        self._model_name = model_name
        self._dims = dims
        self._timeout_s = timeout_s

    @retried("triton")
    async def model_version(self) -> str:
        """Identify what produces the vectors, e.g. ``text_encoder/1:all-MiniLM-L6-v2``.

        Raises:
            TritonUnavailable: the model is not ready on the server.
        """
        version, parameters = await model_info(self._client, self._model_name)
        return f"{self._model_name}/{version}:{parameters.get('embedding_model') or 'unknown'}"

    @retried("triton")
    async def embed_texts(self, texts: Sequence[str]) -> FloatArray:
        """Embed texts in one request.

        Returns:
            float32 array of shape (len(texts), dims).

        Raises:
            TritonUnavailable: the server could not be reached or timed out (retry later).
            TritonError: the server answered with another error.
            EmbeddingDimMismatch: the model returned vectors of another size.
        """
        if not texts:
            return np.zeros((0, self._dims), dtype=np.float32)
        outputs = await blame_model_or_input(
            self._model_name, lambda: self._infer(texts), lambda: self._infer([CANARY_TEXT])
        )
        vectors = outputs[TEXT_OUTPUT]
        if vectors.shape != (len(texts), self._dims):
            raise EmbeddingDimMismatch(
                f"{self._model_name} returned {list(vectors.shape)}, expected [{len(texts)}, {self._dims}]; "
                "re-export the model or update schemas/embedding_index.yaml"
            )
        return vectors

    async def _infer(self, texts: Sequence[str]) -> dict[str, FloatArray]:
        return await infer(
            self._client, self._model_name, [text_batch(texts)], [TEXT_OUTPUT], self._timeout_s
        )
