"""The new fusion network applied in-process to stored per-modality vectors, as Triton's fusion would."""

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from stream.contracts.shapes import MODALITIES
from stream.features.vectors import FloatArray
from stream.model.fusion import INPUTS, FusionModel

FUSION_CHUNK = 256  # listings per forward pass: bounded memory whatever the batch


def fusion_inputs(
    vectors: Sequence[Mapping[str, FloatArray]], dims: Mapping[str, int]
) -> tuple[list[FloatArray], FloatArray]:
    """Stack stored vectors into fusion inputs, zeros where one is absent, and the modality mask (pure).

    The mask is the one the worker's re-fusion sends: text is always present (it covers both text
    vectors), every other modality when its vector is stored.

    Args:
        vectors: per listing, its stored vectors by name (any of ``INPUTS``; others are ignored).
        dims: the dimension of each input, by name.

    Returns:
        one [n, dims] array per name of ``INPUTS``, in that order, and the [n, 4] mask.
    """
    arrays = [
        np.stack([item.get(name, np.zeros(dims[name], np.float32)) for item in vectors]).astype(np.float32)
        for name in INPUTS
    ]
    mask = np.array([[name == "text" or name in item for name in MODALITIES] for item in vectors], np.float32)
    return arrays, mask


@torch.inference_mode()
def fuse(
    model: FusionModel, vectors: Sequence[Mapping[str, FloatArray]], dims: Mapping[str, int]
) -> FloatArray:
    """Fused vectors [n, shared_dim] of listings from their stored vectors, on the CPU.

    Args:
        model: the fusion network, in evaluation mode.
        vectors: per listing, its stored vectors by name.
        dims: the dimension of each input, by name.
    """
    chunks = []
    for start in range(0, len(vectors), FUSION_CHUNK):
        arrays, mask = fusion_inputs(vectors[start : start + FUSION_CHUNK], dims)
        fused, _ = model(*(torch.from_numpy(array) for array in (*arrays, mask)))
        chunks.append(fused.numpy().astype(np.float32))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
