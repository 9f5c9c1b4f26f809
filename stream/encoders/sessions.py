"""Running an encoder network: an ONNX Runtime session of its file on the CPU, or the torch network on a device."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch

OUTPUT = "embedding"  # the name of every exported encoder's output
# Named input arrays -> the float32 embedding rows.
Runner = Callable[[dict[str, npt.NDArray[Any]]], npt.NDArray[np.float32]]


def session_options(threads: int) -> ort.SessionOptions:
    """Every graph optimisation, ``threads`` intra-op threads (0: one per core) and one inter-op thread.

    Threads do not spin while they wait: several models share the cores, and a spinning one takes them.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def onnx_runner(path: Path, threads: int) -> Runner:
    """A CPU ONNX Runtime session of ``path`` with ``session_options(threads)``."""
    session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])

    def run(inputs: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
        return np.asarray(session.run([OUTPUT], inputs)[0], dtype=np.float32)

    return run


def torch_runner(network: torch.nn.Module, device: torch.device) -> Runner:
    """``network`` on ``device``, its inputs passed by name."""
    network = network.to(device)

    @torch.inference_mode()
    def run(inputs: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
        tensors = {name: torch.from_numpy(array).to(device) for name, array in inputs.items()}
        return np.asarray(network(**tensors).cpu().numpy(), dtype=np.float32)

    return run
