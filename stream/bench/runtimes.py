"""The text encoder's runtimes side by side, in-process on the same listing texts: the torch network as it
was served before ONNX Runtime (transformers' default attention, one batch padded to its longest per call), and the ONNX files at fp32 and
int8 as they are served now (groups of similar length). Rates are texts per CPU second of this process,
every runtime on one thread, rounds alternating between them, medians: a neighbour taking the cores slows
the wall clock, not the CPU seconds a text costs."""

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from stream.bench.throughput import Progress
from stream.encoders.batching import embed_in_length_groups, padded
from stream.encoders.export import TEXT_ENCODER, onnx_file
from stream.encoders.networks import text_network, text_tokenizer
from stream.encoders.sessions import onnx_runner, torch_runner
from stream.model.serving import onnx_cache_dir
from stream.rollout.compat import parameters

BASELINE = "torch_fp32"
RUNTIMES = (BASELINE, "onnx_fp32", "onnx_int8")
Embed = Callable[[Sequence[Sequence[int]]], object]  # token ids of one call -> its vectors


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
        ``{"texts_per_cpu_s": {runtime: median}, "over_torch": {runtime: ratio}, "served": runtime,
        "texts", "batch", "rounds"}``.

    Raises:
        ExportError, AccuracyCheckFailed: an ONNX file could not be made.
    """
    served = parameters(repository, TEXT_ENCODER.model)
    tokenizer = text_tokenizer()
    pad = tokenizer.pad_token_id
    token_ids = tokenizer(list(texts), truncation=True, max_length=int(served["max_tokens"]))["input_ids"]
    calls = [token_ids[start : start + batch] for start in range(0, len(token_ids), batch)]
    cache = onnx_cache_dir({"model_repository": str(repository / TEXT_ENCODER.model), "model_version": 1})
    runtimes = _runtimes(cache, pad, int(served["group_size"]))
    rates: dict[str, list[float]] = {name: [] for name in runtimes}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(rounds):
            for name, embed in runtimes.items():
                started = time.process_time()
                for call in calls:
                    embed(call)
                    progress(len(call))
                rates[name].append(len(token_ids) / (time.process_time() - started))
    finally:
        torch.set_num_threads(threads)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "texts_per_cpu_s": medians,
        "over_torch": {name: rate / medians[BASELINE] for name, rate in medians.items()},
        "served": f"onnx_{served['precision']}",
        "texts": len(token_ids),
        "batch": batch,
        "rounds": rounds,
    }


def _runtimes(cache_dir: Path, pad: int, group_size: int) -> dict[str, Embed]:
    network = torch_runner(text_network(attention="sdpa"), torch.device("cpu"))
    files = {
        precision: onnx_runner(onnx_file(cache_dir, TEXT_ENCODER, precision), 1)
        for precision in ("fp32", "int8")
    }

    def grouped(precision: str) -> Embed:
        return lambda call: embed_in_length_groups(files[precision], call, pad, group_size)

    return dict(
        zip(
            RUNTIMES,
            (lambda call: network(dict(padded(call, pad))), grouped("fp32"), grouped("int8")),
            strict=True,
        )
    )


def runtime_items(texts: int, rounds: int = 3) -> int:
    """How many texts ``text_runtimes`` embeds (for a progress bar)."""
    return len(RUNTIMES) * texts * rounds
