"""Tests for stream/worker/refusion.py's pure parts: what a re-fused record is made of and called."""

import numpy as np

from stream.store.listings import StoredListing
from stream.worker.refusion import fusion_inputs, refused_model_version


def test_a_refused_record_names_the_fusion_that_refused_it_and_keeps_its_encoders() -> None:
    stored = "listing_embedder/1 fusion=fusion-20261127-83862b81"

    assert refused_model_version(stored, "fusion-20261201-fe30e4c2") == (
        "listing_embedder/1 fusion=fusion-20261201-fe30e4c2"
    )
    assert refused_model_version(stored, None) == stored


def test_fusion_inputs_replace_only_the_reviews() -> None:
    vectors = {name: np.full(2, i, np.float32) for i, name in enumerate(("text", "image", "reviews"))}
    stored = StoredListing("toy-0001", 3, "listing_embedder/1", "2026-12-01T00:00:00Z", [], vectors, {})
    new_reviews = np.ones(2, np.float32)

    inputs = fusion_inputs(stored, new_reviews)

    assert set(inputs) == {"text", "image", "reviews"}
    assert inputs["reviews"] is new_reviews and inputs["text"] is vectors["text"]
    assert "reviews" not in fusion_inputs(stored, None)
