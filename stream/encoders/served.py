"""The runner an encoder is served with: its torch network where a GPU is given, else its ONNX file."""

from pathlib import Path

import torch

from stream.encoders.export import EncoderExport, onnx_file
from stream.encoders.sessions import Runner, onnx_runner, torch_runner


def encoder_runner(
    encoder: EncoderExport,
    device: torch.device,
    cache_dir: Path,
    precision: str,
    threads: int,
) -> Runner:
    """The torch network on a GPU device (fp32, ``precision`` unused); else ONNX Runtime at ``precision``.

    Raises:
        ExportError: the ONNX file could not be exported, or ``precision`` is not offered.
        AccuracyCheckFailed: an int8 file made now strays too far from fp32 (nothing is cached).
    """
    if device.type == "cuda":
        return torch_runner(encoder.network(), device)
    return onnx_runner(onnx_file(cache_dir, encoder, precision), threads)
