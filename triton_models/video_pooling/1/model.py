"""Triton Python-backend model: learned temporal pooling of frame features (weights from `toyfuse export`)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

from stream.model.loading import load_video_pooling

INPUTS = ("FRAME_EMBEDDINGS", "FRAME_MASK")
OUTPUT = "VIDEO_EMBEDDING"


class TritonPythonModel:
    """Pools each request's clips; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        on_gpu = args["model_instance_kind"] == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")
        self.model = load_video_pooling(Path(args["model_repository"]) / args["model_version"]).to(
            self.device
        )
        output = pb_utils.get_output_config_by_name(config, OUTPUT)
        self.dtype = pb_utils.triton_string_to_numpy(output["data_type"])

    def execute(self, requests: list[Any]) -> list[Any]:
        inputs = [
            [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in INPUTS]
            for request in requests
        ]
        try:
            pooled = self._pool([np.concatenate(column) for column in zip(*inputs)])
        except Exception as exc:  # noqa: BLE001 - every request of the failed batch must get an error response
            error = pb_utils.TritonError(
                f"video_pooling failed on a batch of {len(requests)} requests: {exc}"
            )
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for frames, _ in inputs:
            batch = pooled[start : start + len(frames)].astype(self.dtype)
            start += len(frames)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(OUTPUT, batch)]))
        return responses

    @torch.inference_mode()
    def _pool(self, arrays: list[np.ndarray]) -> np.ndarray:
        frames, mask = (
            torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device) for a in arrays
        )
        return self.model(frames, mask).cpu().numpy()
