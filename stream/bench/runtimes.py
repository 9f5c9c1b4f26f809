"""The encoders' runtimes side by side, in-process on the same catalog items: each torch network as it was
served before ONNX Runtime, and its ONNX files as they are served now. Rates are items per CPU second of
this process, every runtime on one thread, rounds alternating between them, medians: a neighbour taking the
cores slows the wall clock, not the CPU seconds an item costs.

- text: torch with transformers' default attention, one batch padded to its longest per call, against the
  ONNX fp32 and int8 files run as groups of texts of similar length (the served ``group_size``);
- image: the torch EfficientNet against its ONNX fp32 file, on the same uint8 photo batches.
"""

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from stream.bench.throughput import Progress
from stream.encoders.batching import embed_in_length_groups, padded
from stream.encoders.export import IMAGE_ENCODER, IMAGE_INPUT, TEXT_ENCODER, EncoderExport, onnx_file
from stream.encoders.networks import text_network, text_tokenizer
from stream.encoders.sessions import Runner, onnx_runner, torch_runner
from stream.model.serving import onnx_cache_dir
from stream.rollout.compat import parameters

BASELINE = "torch_fp32"
TEXT_RUNTIMES = (BASELINE, "onnx_fp32", "onnx_int8")
IMAGE_RUNTIMES = (BASELINE, "onnx_fp32")
# What the runtimes embed, sliced into calls: token id lists, or a photo array.
Items = TypeVar("Items", Sequence[Sequence[int]], NDArray[np.uint8])


def text_runtimes(
    texts: Sequence[str],
    repository: Path,
    progress: Progress,
    *,
    batch: int = 32,
    rounds: int = 3,
) -> dict[str, Any]:
    """Texts per CPU second of each runtime of the text encoder, and each one's ratio to torch.

    Args:
        texts: the listing texts, embedded ``batch`` at a time, ``rounds`` times by each runtime.
        repository: the model repository: its ``text_encoder`` config gives the token limit, the group size
            and the served precision, and its ONNX cache the files Triton exported (or they are exported
            into it now).
        progress: called with the number of texts of each call.

    Returns:
        ``compare_runtimes``'s figures, with ``served`` (the runtime Triton serves).

    Raises:
        ExportError, AccuracyCheckFailed: an ONNX file could not be made.
    """
    served = parameters(repository, TEXT_ENCODER.model)
    tokenizer = text_tokenizer()
    pad, group_size = tokenizer.pad_token_id, int(served["group_size"])
    token_ids = tokenizer(list(texts), truncation=True, max_length=int(served["max_tokens"]))["input_ids"]
    network = torch_runner(text_network(attention="sdpa"), torch.device("cpu"))
    fp32, int8 = (_onnx(repository, TEXT_ENCODER, precision) for precision in ("fp32", "int8"))
    runtimes: dict[str, Callable[[Sequence[Sequence[int]]], object]] = dict(
        zip(
            TEXT_RUNTIMES,
            (
                lambda call: network(dict(padded(call, pad))),
                lambda call: embed_in_length_groups(fp32, call, pad, group_size),
                lambda call: embed_in_length_groups(int8, call, pad, group_size),
            ),
            strict=True,
        )
    )
    return {
        **compare_runtimes(runtimes, token_ids, batch, progress, rounds),
        "served": f"onnx_{served['precision']}",
    }


def image_runtimes(
    photos: NDArray[np.uint8],
    repository: Path,
    progress: Progress,
    *,
    batch: int = 32,
    rounds: int = 3,
) -> dict[str, Any]:
    """Photos per CPU second of the image encoder in torch and in ONNX fp32 (served), and their ratio.

    Args:
        photos: preprocessed uint8 NHWC photos, embedded ``batch`` at a time, ``rounds`` times by each.
        repository: the model repository, whose ``image_encoder`` ONNX cache holds (or receives) the file.
        progress: called with the number of photos of each call.

    Raises:
        ExportError: the ONNX file could not be made.
    """
    network = torch_runner(IMAGE_ENCODER.network(), torch.device("cpu"))
    fp32 = _onnx(repository, IMAGE_ENCODER, "fp32")
    runtimes: dict[str, Callable[[NDArray[np.uint8]], object]] = dict(
        zip(
            IMAGE_RUNTIMES,
            (lambda call: network({IMAGE_INPUT: call}), lambda call: fp32({IMAGE_INPUT: call})),
            strict=True,
        )
    )
    return {**compare_runtimes(runtimes, photos, batch, progress, rounds), "served": "onnx_fp32"}


def compare_runtimes(
    runtimes: dict[str, Callable[[Items], object]],
    items: Items,
    batch: int,
    progress: Progress,
    rounds: int,
) -> dict[str, Any]:
    """Run ``items``, ``batch`` per call, through each runtime in turn, ``rounds`` times, torch held to one
    thread.

    Returns:
        ``{"per_cpu_s": {runtime: median items per CPU second}, "over_torch": {runtime: ratio to
        BASELINE}, "items", "batch", "rounds"}``.
    """
    calls = [items[start : start + batch] for start in range(0, len(items), batch)]
    rates: dict[str, list[float]] = {name: [] for name in runtimes}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(rounds):
            for name, run in runtimes.items():
                started = time.process_time()
                for call in calls:
                    run(call)
                    progress(len(call))
                rates[name].append(len(items) / (time.process_time() - started))
    finally:
        torch.set_num_threads(threads)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "per_cpu_s": medians,
        "over_torch": {name: rate / medians[BASELINE] for name, rate in medians.items()},
        "items": len(items),
        "batch": batch,
        "rounds": rounds,
    }


def _onnx(repository: Path, encoder: EncoderExport, precision: str) -> Runner:
    """A one-thread session of ``encoder``'s file at ``precision``, from its folder's ONNX cache (as Triton's)."""
    cache = onnx_cache_dir({"model_repository": str(repository / encoder.model), "model_version": 1})
    return onnx_runner(onnx_file(cache, encoder, precision), 1)


def runtime_items(texts: int, photos: int, rounds: int = 3) -> int:
    """How many items ``text_runtimes`` and ``image_runtimes`` embed together (for a progress bar)."""
    return (len(TEXT_RUNTIMES) * texts + len(IMAGE_RUNTIMES) * photos) * rounds
