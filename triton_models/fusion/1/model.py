"""Triton Python-backend model: learned fusion of a listing's modality vectors (from `toyfuse export`)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import triton_python_backend_utils as pb_utils

from stream.model.loading import load_fusion
from stream.model.serving import BatchedExecute, device, limit_threads, output_dtypes, parameters

INPUTS = (
    "TEXT_EMBEDDING",
    "TEXT_MULTILINGUAL_EMBEDDING",
    "IMAGE_EMBEDDING",
    "VIDEO_EMBEDDING",
    "REVIEWS_EMBEDDING",
    "MODALITY_MASK",
)
OUTPUTS = ("FUSED_EMBEDDING", "MODALITY_WEIGHTS")


class TritonPythonModel:
    """Fuses each request's rows; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.device = device(args)
        limit_threads(int(parameters(config)["intra_op_threads"]))
        self.model = load_fusion(Path(args["model_repository"]) / args["model_version"]).to(self.device)
        dtypes = output_dtypes(pb_utils, config, OUTPUTS)
        self.batched = BatchedExecute(pb_utils, "fusion", INPUTS, dtypes, self._fuse)

    def execute(self, requests: list[Any]) -> list[Any]:
        return self.batched(requests)

    @torch.inference_mode()
    def _fuse(self, *arrays: npt.NDArray[np.float32]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        tensors = [
            torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)
            for array in arrays
        ]
        fused, weights = self.model(*tensors)
        return fused.cpu().numpy(), weights.cpu().numpy()
