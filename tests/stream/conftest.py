"""Fixtures shared by the model and training tests: a fusion config small enough for the CPU."""

import pytest

from stream.model.fusion import FusionConfig

DIMS = {"text": 12, "text_multilingual": 10, "image": 16, "reviews": 10}


@pytest.fixture
def tiny_config() -> FusionConfig:
    """A FusionConfig small enough to train on the CPU in a test."""
    return FusionConfig(
        text_dims=DIMS["text"],
        text_multilingual_dims=DIMS["text_multilingual"],
        image_dims=DIMS["image"],
        reviews_dims=DIMS["reviews"],
        shared_dim=8,
        hidden_dim=8,
        heads=2,
        pooling_hidden=4,
        netvlad_clusters=2,
        netvlad_dim=4,
        dropout=0.0,
    )
