"""Triton Python-backend model: learned temporal pooling of frame features (weights from `toyfuse export`)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import triton_python_backend_utils as pb_utils

from stream.model.loading import load_video_pooling
from stream.model.serving import BatchedExecute, device, limit_threads, output_dtypes, parameters

INPUTS = ("FRAME_EMBEDDINGS", "FRAME_MASK")
OUTPUT = "VIDEO_EMBEDDING"


class TritonPythonModel:
    """Pools each request's clips; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.device = device(args)
        limit_threads(int(parameters(config)["intra_op_threads"]))
        self.model = load_video_pooling(Path(args["model_repository"]) / args["model_version"]).to(
            self.device
        )
        dtypes = output_dtypes(pb_utils, config, [OUTPUT])
        self.batched = BatchedExecute(pb_utils, "video_pooling", INPUTS, dtypes, self._pool)

    def execute(self, requests: list[Any]) -> list[Any]:
        return self.batched(requests)

    @torch.inference_mode()
    def _pool(self, *arrays: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32]]:
        frames, mask = (
            torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device) for a in arrays
        )
        return (self.model(frames, mask).cpu().numpy(),)
