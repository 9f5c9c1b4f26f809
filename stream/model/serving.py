"""Plumbing shared by the Triton Python-backend models: device, config, per-request batched execute."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

# triton_python_backend_utils, importable only inside the backend stub (or a stand-in in tests); no stubs.
PbUtils = Any
# One array per input, each the concatenation of every request's rows -> one array per output.
Compute = Callable[..., Sequence[npt.NDArray[Any]]]


def device(args: dict[str, Any]) -> torch.device:
    """The GPU Triton placed this instance on, if it did and CUDA is available; else the CPU.

    Args:
        args: the ``initialize`` arguments (``model_instance_kind``, ``model_instance_device_id``).

    Returns:
        ``cuda:<model_instance_device_id>`` or ``cpu``.
    """
    import torch  # here, not at the top: the numpy-only models never load torch

    on_gpu = args["model_instance_kind"] == "GPU" and torch.cuda.is_available()
    return torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")


def onnx_cache_dir(args: dict[str, Any], fallback_root: Path | None = None) -> Path:
    """Where a model caches its exported ONNX files: ``onnx/`` in its version folder (git-ignored).

    A read-only model repository (the compose file mounts it so) caches under the user's cache folder.

    Args:
        args: the ``initialize`` arguments (``model_repository``: the model's folder, ``model_version``).
        fallback_root: where read-only repositories cache; ``~/.cache/toyfuse/onnx`` when None.

    Returns:
        ``<model folder>/<version>/onnx``, or ``<fallback_root>/<model folder name>``; created on first export.
    """
    version_folder = Path(args["model_repository"]) / str(args["model_version"])
    if os.access(version_folder, os.W_OK):
        return version_folder / "onnx"
    root = fallback_root if fallback_root is not None else Path.home() / ".cache" / "toyfuse" / "onnx"
    return root / Path(args["model_repository"]).name


def limit_threads(threads: int) -> None:
    """Cap the BLAS and OpenMP thread pools this stub has loaded (numpy's OpenBLAS, torch's intra-op pool) at
    ``threads``; 0 leaves each library's default of one thread per core.

    Triton runs every instance in a stub process of its own, and a pool's idle threads spin while they wait
    for work: on 2 cores, torch's fusion took 12.7 ms of CPU per call with two threads for the 3 ms one
    thread takes, CPU taken from the encoders beside it. A model that is often called alone (the
    multilingual encoder, by the review pipeline) gains from a thread per core instead. Call it after the
    model's libraries are imported: a pool loaded later keeps its default.
    """
    if threads > 0:
        from threadpoolctl import threadpool_limits  # here: only the stubs set their pools

        threadpool_limits(limits=threads)


def parameters(config: dict[str, Any]) -> dict[str, str]:
    """The ``parameters`` of a model config, as ``key -> string_value``."""
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def output_dtypes(
    pb_utils: PbUtils, config: dict[str, Any], names: Sequence[str]
) -> dict[str, np.dtype[Any]]:
    """The numpy dtype of each named output, as the model config declares it, in the order of ``names``."""
    configs = {name: pb_utils.get_output_config_by_name(config, name) for name in names}
    return {name: np.dtype(pb_utils.triton_string_to_numpy(c["data_type"])) for name, c in configs.items()}


def decode_texts(array: npt.NDArray[Any]) -> list[str]:
    """The items of a BYTES tensor as UTF-8 strings (undecodable bytes replaced), flattened."""
    return [
        item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
        for item in array.reshape(-1)
    ]


def error_response(pb_utils: PbUtils, model: str, exc: Exception) -> Any:
    """The ``InferenceResponse`` of one failed request: its error names the model and the exception."""
    error = pb_utils.TritonError(f"{model} failed: {type(exc).__name__}: {exc}")
    return pb_utils.InferenceResponse(error=error)


@dataclass(frozen=True)
class BatchedExecute:
    """A model's ``execute``: compute runs once on all requests' rows, and each request gets its rows back.

    If the batch fails, each request is retried alone, so only a request that fails on its own gets an error.

    Example:
        >>> dtypes = output_dtypes(pb_utils, config, ["IMAGE_EMBEDDING"])
        >>> self.batched = BatchedExecute(pb_utils, "image_encoder", ("IMAGE",), dtypes, self._embed)
        >>> self.batched(requests)  # in execute: one response per request
    """

    pb_utils: PbUtils
    model: str  # named in error messages
    inputs: tuple[str, ...]  # read from every request; compute gets them concatenated, in this order
    outputs: dict[str, np.dtype[Any]]  # compute's outputs, in its order, each cast to its dtype
    compute: Compute

    def __call__(self, requests: Sequence[Any]) -> list[Any]:
        """Answer each request with its rows of every output, or with its own error.

        Args:
            requests: the ``InferenceRequest`` objects Triton hands to ``execute``.

        Returns:
            one ``InferenceResponse`` per request, in the order of ``requests``.
        """
        try:
            return self._respond(requests)
        except Exception as exc:  # noqa: BLE001 - a failure goes into the responses, never out of execute
            if len(requests) == 1:
                return [error_response(self.pb_utils, self.model, exc)]
            return [self([request])[0] for request in requests]

    def _respond(self, requests: Sequence[Any]) -> list[Any]:
        arrays = [self._read(request) for request in requests]
        results = self.compute(*(np.concatenate(column) for column in zip(*arrays, strict=True)))
        bounds = list(itertools.accumulate((len(request[0]) for request in arrays), initial=0))
        outputs = dict(zip(self.outputs, results, strict=True))
        for name, value in outputs.items():
            if len(value) != bounds[-1]:
                raise ValueError(f"{self.model} gave {len(value)} rows of {name} for {bounds[-1]} input rows")
        return [self._response(outputs, slice(start, stop)) for start, stop in itertools.pairwise(bounds)]

    def _read(self, request: Any) -> list[npt.NDArray[Any]]:
        return [self.pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs]

    def _response(self, outputs: dict[str, npt.NDArray[Any]], rows: slice) -> Any:
        cast = {name: outputs[name][rows].astype(dtype) for name, dtype in self.outputs.items()}
        tensors = [self.pb_utils.Tensor(name, value) for name, value in cast.items()]
        return self.pb_utils.InferenceResponse(tensors)
