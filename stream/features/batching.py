"""Pure batch plumbing of the listing path: which photo or frame belongs to which listing, pooling, masks.

The ``listing_embedder`` Triton model and the worker both use these, so the packing on one side
is exactly the unpacking on the other.
"""

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from stream.contracts.shapes import FRAMES_PER_VIDEO, MODALITIES, Modality
from stream.features.vectors import FloatArray, l2_normalize

IntArray = NDArray[np.int32]


def owners_of(counts: list[int]) -> IntArray:
    """Owner index of each item when listing ``i`` contributes ``counts[i]`` consecutive items.

    >>> owners_of([2, 0, 1]).tolist()
    [0, 0, 2]
    """
    return np.repeat(np.arange(len(counts), dtype=np.int32), counts)


def pool_photos(photos: FloatArray, owners: IntArray, listings: int) -> tuple[FloatArray, FloatArray]:
    """Mean of each listing's photo vectors, L2-normalised.

    Args:
        photos: per-photo vectors [P, d].
        owners: listing index of each photo [P].
        listings: number of listings n.

    Returns:
        pooled [n, d] (zeros where a listing has no photo) and presence [n] (1.0 where it has one).
    """
    sums = np.zeros((listings, photos.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, photos)
    counts = np.bincount(owners, minlength=listings).astype(np.float32)
    return l2_normalize(sums), (counts > 0).astype(np.float32)


def frames_by_listing(
    frames: FloatArray, owners: IntArray, listings: int, per_video: int = FRAMES_PER_VIDEO
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Arrange per-frame vectors into a padded [n, per_video, d] block with a frame mask.

    Frames keep their order; a listing's frames beyond ``per_video`` are dropped.

    Returns:
        frames [n, per_video, d], frame mask [n, per_video] and presence [n].
    """
    block = np.zeros((listings, per_video, frames.shape[1]), dtype=np.float32)
    mask = np.zeros((listings, per_video), dtype=np.float32)
    filled = np.zeros(listings, dtype=np.int64)
    for vector, owner in zip(frames, owners, strict=True):
        slot = filled[owner]
        if slot < per_video:
            block[owner, slot], mask[owner, slot] = vector, 1.0
            filled[owner] += 1
    return block, mask, (filled > 0).astype(np.float32)


def modality_mask(image: FloatArray, video: FloatArray, reviews: FloatArray) -> FloatArray:
    """[n, 4] presence of (text, image, video, reviews); every listing has text."""
    mask: FloatArray = np.stack([np.ones_like(image), image, video, reviews], axis=1).astype(np.float32)
    return mask


def present_modalities(mask_row: FloatArray) -> list[Modality]:
    """Names of the modalities marked present in one row of :func:`modality_mask`."""
    return [name for name, flag in zip(MODALITIES, mask_row, strict=True) if flag > 0]


def modalities_of(vectors: Mapping[str, FloatArray]) -> list[Modality]:
    """User-facing modalities present among a listing's vectors, in canonical order (pure)."""
    return [name for name in MODALITIES if name in vectors]
