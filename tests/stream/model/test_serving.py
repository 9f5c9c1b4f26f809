"""The Triton models' shared plumbing: batched execute with per-request errors, dtypes, device choice."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from stream.model.serving import (
    BatchedExecute,
    decode_texts,
    device,
    onnx_cache_dir,
    output_dtypes,
    parameters,
)

Request = dict[str, NDArray[Any]]
TRITON_TYPES = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16, "TYPE_INT64": np.int64}


class FakeTensor:
    """``pb_utils.Tensor``: a name and an array."""

    def __init__(self, name: str, array: NDArray[Any]) -> None:
        self.name, self.array = name, array

    def as_numpy(self) -> NDArray[Any]:
        return self.array


class FakeError:
    """``pb_utils.TritonError``: a message."""

    def __init__(self, message: str) -> None:
        self.text = message

    def message(self) -> str:
        return self.text


class FakeResponse:
    """``pb_utils.InferenceResponse``: records its output tensors by name, or its error."""

    def __init__(self, output_tensors: list[FakeTensor] | None = None, error: FakeError | None = None):
        self.outputs = {tensor.name: tensor.array for tensor in output_tensors or []}
        self.error = error


class FakePbUtils:
    """The names of ``triton_python_backend_utils`` that stream.model.serving uses; requests are dicts."""

    Tensor = FakeTensor
    InferenceResponse = FakeResponse
    TritonError = FakeError

    @staticmethod
    def get_input_tensor_by_name(request: Request, name: str) -> FakeTensor | None:
        return FakeTensor(name, request[name]) if name in request else None

    @staticmethod
    def get_output_config_by_name(config: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((output for output in config["output"] if output["name"] == name), None)

    @staticmethod
    def triton_string_to_numpy(data_type: str) -> type:
        return TRITON_TYPES[data_type]


@pytest.fixture
def batched_factory() -> Callable[..., tuple[BatchedExecute, list[int]]]:
    """Build a BatchedExecute around ``compute``; also return the row count of each compute call."""

    def build(
        compute: Callable[..., Any],
        inputs: tuple[str, ...] = ("X",),
        outputs: dict[str, Any] | None = None,
    ) -> tuple[BatchedExecute, list[int]]:
        calls: list[int] = []

        def recorded(*arrays: NDArray[Any]) -> Any:
            calls.append(len(arrays[0]))
            return compute(*arrays)

        dtypes = {name: np.dtype(dtype) for name, dtype in (outputs or {"Y": np.float32}).items()}
        return BatchedExecute(FakePbUtils, "toy_model", inputs, dtypes, recorded), calls

    return build


def _rows(start: int, count: int) -> NDArray[np.float64]:
    return np.arange(start, start + count, dtype=np.float64).reshape(count, 1) * np.ones((1, 3))


def _refuse_negative(x: NDArray[Any]) -> tuple[NDArray[Any]]:
    if (x < 0).any():
        raise ValueError("negative input")
    return (x * 2,)


def test_one_batched_call_and_each_request_gets_its_own_rows(batched_factory: Any) -> None:
    batched, calls = batched_factory(lambda x: (x * 2,))
    requests = [{"X": _rows(0, 1)}, {"X": _rows(1, 3)}, {"X": _rows(4, 2)}]

    responses = batched(requests)

    assert calls == [6]
    assert len(responses) == 3
    for request, response in zip(requests, responses, strict=True):
        assert response.error is None
        np.testing.assert_array_equal(response.outputs["Y"], request["X"] * 2)


def test_outputs_are_cast_to_their_configured_dtype(batched_factory: Any) -> None:
    batched, _ = batched_factory(
        lambda x: (x / 3, x.astype(np.int32)), outputs={"HALF": np.float16, "WIDE": np.int64}
    )

    (response,) = batched([{"X": _rows(1, 2)}])

    assert response.outputs["HALF"].dtype == np.float16
    assert response.outputs["WIDE"].dtype == np.int64
    np.testing.assert_allclose(response.outputs["HALF"], _rows(1, 2) / 3, rtol=1e-3)


def test_inputs_reach_compute_concatenated_in_their_order(batched_factory: Any) -> None:
    batched, _ = batched_factory(lambda a, b: (a - b,), inputs=("A", "B"))
    requests = [{"A": _rows(10, 2), "B": _rows(0, 2)}, {"A": _rows(20, 1), "B": _rows(5, 1)}]

    first, second = batched(requests)

    np.testing.assert_array_equal(first.outputs["Y"], np.full((2, 3), 10.0))
    np.testing.assert_array_equal(second.outputs["Y"], np.full((1, 3), 15.0))


def test_a_failing_request_gets_an_error_and_the_others_their_rows(batched_factory: Any) -> None:
    batched, calls = batched_factory(_refuse_negative)
    requests = [{"X": _rows(0, 2)}, {"X": -_rows(1, 1)}, {"X": _rows(5, 3)}]

    good, bad, other = batched(requests)

    assert calls == [6, 2, 1, 3]  # the batch, then each request alone
    assert bad.outputs == {} and bad.error is not None
    assert bad.error.message() == "toy_model failed: ValueError: negative input"
    for request, response in ((requests[0], good), (requests[2], other)):
        assert response.error is None
        np.testing.assert_array_equal(response.outputs["Y"], request["X"] * 2)


def test_a_request_missing_an_input_fails_alone(batched_factory: Any) -> None:
    batched, _ = batched_factory(lambda x: (x + 1,))

    good, bad = batched([{"X": _rows(0, 2)}, {"OTHER": _rows(0, 2)}])

    assert good.error is None and good.outputs["Y"].shape == (2, 3)
    assert bad.error is not None and bad.error.message().startswith("toy_model failed: AttributeError")


def test_a_single_failing_request_is_not_computed_twice(batched_factory: Any) -> None:
    batched, calls = batched_factory(_refuse_negative)

    (response,) = batched([{"X": -_rows(1, 2)}])

    assert calls == [2]
    assert response.error is not None and "negative input" in response.error.message()


def test_a_compute_with_too_few_rows_is_an_error(batched_factory: Any) -> None:
    batched, _ = batched_factory(lambda x: (x[:1],))

    (response,) = batched([{"X": _rows(0, 3)}])

    assert response.error is not None
    assert response.error.message() == (
        "toy_model failed: ValueError: toy_model gave 1 rows of Y for 3 input rows"
    )


def test_text_inputs_concatenate_as_bytes_and_decode_to_str(batched_factory: Any) -> None:
    seen: list[list[str]] = []

    def lengths(text: NDArray[np.object_]) -> tuple[NDArray[np.float32]]:
        seen.append(decode_texts(text))
        return (np.array([[len(item)] for item in seen[-1]], dtype=np.float32),)

    batched, _ = batched_factory(lengths, inputs=("TEXT",))
    first = np.array([[b"train"], ["caf\u00e9".encode()]], dtype=np.object_)
    second = np.array([[b"\xffblock"]], dtype=np.object_)

    responses = batched([{"TEXT": first}, {"TEXT": second}])

    assert seen == [["train", "caf\u00e9", "\ufffdblock"]]
    assert [r.outputs["Y"].ravel().tolist() for r in responses] == [[5.0, 4.0], [6.0]]


def test_output_dtypes_and_parameters_come_from_the_model_config() -> None:
    config = {
        "output": [{"name": "A", "data_type": "TYPE_FP16"}, {"name": "B", "data_type": "TYPE_FP32"}],
        "parameters": {"max_tokens": {"string_value": "256"}},
    }

    assert output_dtypes(FakePbUtils, config, ["B", "A"]) == {"B": np.float32, "A": np.float16}
    assert list(output_dtypes(FakePbUtils, config, ["B", "A"])) == ["B", "A"]
    assert parameters(config) == {"max_tokens": "256"}
    assert parameters({"output": []}) == {}


@pytest.mark.parametrize(
    ("kind", "cuda", "expected"),
    [("CPU", True, "cpu"), ("GPU", False, "cpu"), ("GPU", True, "cuda:1")],
)
def test_device_is_the_instance_gpu_only_where_cuda_is_there(
    kind: str, cuda: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)

    chosen = device({"model_instance_kind": kind, "model_instance_device_id": "1"})

    assert chosen == torch.device(expected)


def test_the_onnx_cache_is_in_the_served_version_folder(tmp_path: Path) -> None:
    (tmp_path / "text_encoder" / "1").mkdir(parents=True)
    args = {"model_repository": str(tmp_path / "text_encoder"), "model_version": "1"}
    assert onnx_cache_dir(args) == tmp_path / "text_encoder" / "1" / "onnx"


def test_a_repository_the_model_cannot_write_to_caches_elsewhere(tmp_path: Path) -> None:
    # os.access is False for a missing folder even as root, as on a read-only mount.
    args = {"model_repository": str(tmp_path / "read-only" / "text_encoder"), "model_version": "1"}
    assert onnx_cache_dir(args, fallback_root=tmp_path / "cache") == tmp_path / "cache" / "text_encoder"


POOLS_AFTER = """
import json, sys
import numpy, torch
from threadpoolctl import threadpool_info
from stream.model.serving import limit_threads
limit_threads(int(sys.argv[1]))
pools = {pool["internal_api"]: pool["num_threads"] for pool in threadpool_info()}
print(json.dumps({**pools, "torch": torch.get_num_threads()}))
"""


def _pools_after_limit(threads: int) -> dict[str, int]:
    """The thread pools of a fresh interpreter whose libraries default to 2 threads, after limit_threads."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    run = subprocess.run(
        [sys.executable, "-c", POOLS_AFTER, str(threads)], env=env, capture_output=True, text=True, check=True
    )
    pools: dict[str, int] = json.loads(run.stdout)
    return pools


def test_limit_threads_caps_numpy_blas_and_torch_pools() -> None:
    pools = _pools_after_limit(1)

    assert {"openblas", "openmp", "torch"} <= pools.keys()
    assert set(pools.values()) == {1}


def test_limit_threads_zero_keeps_each_library_default() -> None:
    assert set(_pools_after_limit(0).values()) == {2}
