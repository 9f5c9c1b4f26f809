"""Packing photos and frames of a batch of listings."""

import numpy as np

from stream.features.batching import (
    frames_by_listing,
    modality_mask,
    owners_of,
    pool_photos,
    present_modalities,
)


def test_pool_photos_means_each_listings_photos() -> None:
    photos = np.array([[3.0, 0.0], [0.0, 3.0], [1.0, 0.0]], dtype=np.float32)

    pooled, present = pool_photos(photos, owners_of([2, 0, 1]), 3)

    np.testing.assert_allclose(pooled, [[0.7071068, 0.7071068], [0.0, 0.0], [1.0, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(present, [1.0, 0.0, 1.0])


def test_frames_are_padded_masked_and_capped() -> None:
    frames = np.arange(5, dtype=np.float32).reshape(5, 1)

    block, mask, present = frames_by_listing(frames, owners_of([0, 4, 1]), 3, per_video=3)

    np.testing.assert_array_equal(block[:, :, 0], [[0, 0, 0], [0, 1, 2], [4, 0, 0]])
    np.testing.assert_array_equal(mask, [[0, 0, 0], [1, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(present, [0, 1, 1])


def test_modality_mask_and_names() -> None:
    mask = modality_mask(np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.array([1.0, 1.0]))

    np.testing.assert_array_equal(mask, [[1, 1, 0, 1], [1, 0, 0, 1]])
    assert present_modalities(mask[0]) == ["text", "image", "reviews"]
