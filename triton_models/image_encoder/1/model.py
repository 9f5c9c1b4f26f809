"""Triton Python-backend model: EfficientNet-Lite0 ImageNet features of 224x224 RGB uint8 images."""

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from stream.encoders.export import IMAGE_ENCODER, IMAGE_INPUT
from stream.encoders.served import encoder_runner
from stream.model.serving import BatchedExecute, device, onnx_cache_dir, output_dtypes, parameters


class TritonPythonModel:
    """Embeds each request's images; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        self.encoder = encoder_runner(
            IMAGE_ENCODER,
            device(args),
            onnx_cache_dir(args),
            params["precision"],
            int(params["intra_op_threads"]),
        )
        dtypes = output_dtypes(pb_utils, config, ["IMAGE_EMBEDDING"])
        self.batched = BatchedExecute(pb_utils, "image_encoder", ("IMAGE",), dtypes, self._embed)

    def execute(self, requests: list[Any]) -> list[Any]:
        return self.batched(requests)

    def _embed(self, images: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32]]:
        return (self.encoder({IMAGE_INPUT: images}),)
