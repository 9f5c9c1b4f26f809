"""Triton Python-backend model: learned fusion of a listing's modality vectors (from `toyfuse export`)."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

from stream.model.loading import load_fusion

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
    """Fuses each request's rows; the dynamic batcher's requests run as one batch, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        on_gpu = args["model_instance_kind"] == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")
        self.model = load_fusion(Path(args["model_repository"]) / args["model_version"]).to(self.device)
        self.dtypes = {
            name: pb_utils.triton_string_to_numpy(
                pb_utils.get_output_config_by_name(config, name)["data_type"]
            )
            for name in OUTPUTS
        }

    def execute(self, requests: list[Any]) -> list[Any]:
        inputs = [
            [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in INPUTS]
            for request in requests
        ]
        try:
            fused, weights = self._fuse([np.concatenate(column) for column in zip(*inputs)])
        except Exception as exc:  # noqa: BLE001 - every request of the failed batch must get an error response
            error = pb_utils.TritonError(f"fusion failed on a batch of {len(requests)} requests: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for arrays in inputs:
            rows = slice(start, start + len(arrays[0]))
            start = rows.stop
            outputs = zip(OUTPUTS, (fused[rows], weights[rows]), strict=True)
            responses.append(
                pb_utils.InferenceResponse(
                    [pb_utils.Tensor(name, value.astype(self.dtypes[name])) for name, value in outputs]
                )
            )
        return responses

    @torch.inference_mode()
    def _fuse(self, arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        tensors = [
            torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)
            for array in arrays
        ]
        fused, weights = self.model(*tensors)
        return fused.cpu().numpy(), weights.cpu().numpy()
