"""ONNX files of the encoders, exported from their packages' weights and cached by what they were made from."""

import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal, get_args

import torch

from stream.contracts.shapes import IMAGE_SIZE
from stream.encoders.exceptions import EncoderError, ExportError
from stream.encoders.int8 import quantize_text
from stream.encoders.networks import (
    IMAGE_PACKAGE,
    TEXT_PACKAGE,
    image_network,
    package_version,
    text_network,
    text_tokenizer,
)
from stream.encoders.sessions import OUTPUT

Precision = Literal["fp32", "int8"]
# Bump when this module changes what it writes: every cached file is then exported again.
EXPORT_VERSION = 3  # 3: an int8 file is cached only once it passes stream.encoders.int8.check_text_int8
OPSET = 17
TEXT_INPUTS = ("input_ids", "attention_mask")
IMAGE_INPUT = "images"


@dataclass(frozen=True)
class EncoderExport:
    """How one encoder becomes ONNX: the package its weights come from, its export, its int8 variant."""

    model: str  # the Triton model name
    package: str  # the registry package holding the weights
    network: Callable[[], torch.nn.Module]  # the torch network, in evaluation mode
    example: Callable[[], tuple[torch.Tensor, ...]]  # inputs to trace the export with
    inputs: tuple[str, ...]  # names of the network's inputs, in forward's order
    sequences: bool  # the inputs are token sequences: their second axis varies too
    quantize: Callable[[Path, Path], None] | None  # fp32 file -> int8 file; None: fp32 only

    def export(self, path: Path) -> None:
        """Write the fp32 network to ``path``, with dynamic batch (and token) axes."""
        varying = {0: "batch", 1: "tokens"} if self.sequences else {0: "batch"}
        axes = {**{name: varying for name in self.inputs}, OUTPUT: {0: "batch"}}
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the tracer's warnings concern shapes, made dynamic by ``axes``
            torch.onnx.export(
                self.network(),
                self.example(),
                str(path),
                dynamo=False,
                input_names=list(self.inputs),
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=OPSET,
            )


def cache_fields(encoder: EncoderExport, precision: Precision) -> dict[str, str]:
    """Everything a cached file was made from: a change to any of them exports it again."""
    return {
        "model": encoder.model,
        "package": f"{encoder.package}=={package_version(encoder.package)}",
        "export_version": str(EXPORT_VERSION),
        "precision": precision,
        "torch": torch.__version__,
        "onnxruntime": version("onnxruntime"),
    }


def cache_path(cache_dir: Path, fields: dict[str, str]) -> Path:
    """``<model>-<precision>-<digest of fields>.onnx`` in ``cache_dir``."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"{fields['model']}-{fields['precision']}-{digest}.onnx"


@contextmanager
def _exclusive(cache_dir: Path) -> Iterator[None]:
    """Hold the cache folder's lock: instances loading at once build each file once, one at a time (the
    quantiser writes a scratch file beside its input that another build would delete)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached(cache_dir: Path, fields: dict[str, str], build: Callable[[Path], None]) -> Path:
    """The cached file for ``fields``, built by ``build(path)`` when missing; older builds of it are removed.

    The file is written aside and renamed into place, under the folder's lock, so a reader never sees half
    of one and concurrent callers build it once.

    Raises:
        ExportError: ``build`` failed, or the cache folder is not writable.
        EncoderError: ``build`` refused what it made (e.g. AccuracyCheckFailed); nothing is cached.
    """
    path = cache_path(cache_dir, fields)
    if path.exists():
        return path
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with _exclusive(cache_dir):
            if path.exists():
                return path
            build(partial)
            partial.replace(path)
            path.with_suffix(".json").write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")
    except EncoderError:
        partial.unlink(missing_ok=True)
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise ExportError(
            f"cannot write {path.name} into {cache_dir}: {type(exc).__name__}: {exc}; check the folder is "
            f"writable and {fields['package']} is installed"
        ) from exc
    for stale in cache_dir.glob(f"{fields['model']}-{fields['precision']}-*.onnx"):
        if stale != path:
            stale.unlink(missing_ok=True)
            stale.with_suffix(".json").unlink(missing_ok=True)
    return path


def onnx_file(cache_dir: Path, encoder: EncoderExport, precision: str) -> Path:
    """The encoder's ONNX file at ``precision``, from the cache or exported into it (int8 from the fp32 one).

    Raises:
        ExportError: the precision is unknown or not offered for this encoder, or the export failed.
    """
    if precision not in get_args(Precision):
        raise ExportError(
            f"{encoder.model}: unknown precision {precision!r}; use one of {get_args(Precision)}"
        )
    quantize = encoder.quantize
    if precision == "int8" and quantize is None:
        raise ExportError(f"{encoder.model} is offered in fp32 only; set its precision parameter to fp32")
    fp32 = cached(cache_dir, cache_fields(encoder, "fp32"), encoder.export)
    if precision == "fp32" or quantize is None:
        return fp32
    return cached(cache_dir, cache_fields(encoder, "int8"), lambda path: quantize(fp32, path))


def text_example() -> tuple[torch.Tensor, ...]:
    """Two tokenised texts of different lengths, padded: what the text encoder is traced with."""
    tokens = text_tokenizer()(
        ["a wooden train set", "a plush bunny, medium size"], padding=True, return_tensors="pt"
    )
    return tokens["input_ids"], tokens["attention_mask"]


def image_example() -> tuple[torch.Tensor, ...]:
    """Two black uint8 NHWC images: what the image encoder is traced with."""
    return (torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, 3, dtype=torch.uint8),)


TEXT_ENCODER = EncoderExport(
    "text_encoder", TEXT_PACKAGE, text_network, text_example, TEXT_INPUTS, True, quantize_text
)
IMAGE_ENCODER = EncoderExport(
    "image_encoder", IMAGE_PACKAGE, image_network, image_example, (IMAGE_INPUT,), False, None
)
