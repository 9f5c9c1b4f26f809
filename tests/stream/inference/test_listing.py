"""Packing a batch for listing_embedder and splitting its outputs."""

import numpy as np

from stream.inference.listing import ListingInputs, canary_like, pack_listings, unpack_listings


def pixels(count: int) -> np.ndarray:
    return np.zeros((count, 224, 224, 3), np.uint8)


def test_pack_sends_photos_and_frames_flat_with_owners() -> None:
    listings = [
        ListingInputs("a", pixels(2), pixels(0)),
        ListingInputs("b", pixels(0), pixels(3), np.ones(512, np.float32)),
        ListingInputs("c", pixels(1)),
    ]

    tensors = {tensor.name(): tensor for tensor in pack_listings(listings, 512)}

    assert tensors["TEXT"].shape() == [3]
    assert tensors["IMAGES"].shape() == [3, 224, 224, 3]
    assert tensors["FRAMES"].shape() == [3, 224, 224, 3]
    assert tensors["REVIEWS_EMBEDDING"].shape() == [3, 512]
    assert set(tensors) == {
        "TEXT",
        "IMAGES",
        "IMAGE_LISTING",
        "FRAMES",
        "FRAME_LISTING",
        "REVIEWS_EMBEDDING",
        "REVIEWS_MASK",
    }


def test_pack_leaves_out_optional_media_when_none() -> None:
    names = {tensor.name() for tensor in pack_listings([ListingInputs("a")], 512)}

    assert names == {"TEXT", "REVIEWS_EMBEDDING", "REVIEWS_MASK"}


def test_unpack_keeps_only_present_vectors() -> None:
    listings = [
        ListingInputs("a", pixels(2)),
        ListingInputs("b", pixels(0), pixels(3), np.ones(512, np.float32)),
    ]
    outputs = {
        "FUSED_EMBEDDING": np.ones((2, 256)),
        "TEXT_EMBEDDING": np.ones((2, 384)),
        "TEXT_MULTILINGUAL_EMBEDDING": np.ones((2, 512)),
        "IMAGE_EMBEDDING": np.ones((2, 1280)),
        "VIDEO_EMBEDDING": np.ones((2, 1280)),
        "PHOTO_EMBEDDINGS": np.arange(2 * 1280).reshape(2, 1280),
        "MODALITY_MASK": np.array([[1, 1, 0, 0], [1, 0, 1, 1]]),
        "MODALITY_WEIGHTS": np.array([[0.6, 0.4, 0, 0], [0.5, 0, 0.3, 0.2]]),
    }

    first, second = unpack_listings(outputs, listings)

    assert first.modalities == ["text", "image"]
    assert sorted(first.vectors) == ["fused", "image", "photos", "text", "text_multilingual"]
    assert first.vectors["photos"].shape == (2, 1280)
    assert first.weights == {"text": 0.6, "image": 0.4}
    assert second.modalities == ["text", "video", "reviews"]
    assert sorted(second.vectors) == ["fused", "reviews", "text", "text_multilingual", "video"]


def test_the_canary_has_the_modalities_of_the_batch() -> None:
    photos_only = canary_like([ListingInputs("a", pixels(2)), ListingInputs("b")])
    everything = canary_like([ListingInputs("a", pixels(1), pixels(3), np.ones(512, np.float32))])

    assert (len(photos_only.photos), photos_only.frames, photos_only.reviews) == (1, None, None)
    assert len(everything.photos) == 1 and everything.frames is not None and len(everything.frames) == 2
    assert everything.reviews is not None and abs(float(np.linalg.norm(everything.reviews)) - 1.0) < 1e-5
