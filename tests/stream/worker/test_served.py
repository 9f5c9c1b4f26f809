"""The toyfuse_model info labels: the served version whole and split, each encoder's, all valid label names."""

import re

from prometheus_client import CollectorRegistry, Info, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.worker.served import label_name, model_labels

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ENCODERS = {
    "text_encoder": "text_encoder/1#0a1b2c3d4e5f",
    "text_multilingual_encoder": "text_multilingual_encoder/1#0a1b2c3d4e5f",
    "image_encoder": "image_encoder/2#0a1b2c3d4e5f",
    "video_pooling": "video_pooling/1#0a1b2c3d4e5f",
}


def test_the_labels_name_every_version() -> None:
    labels = model_labels("listing_embedder/1 fusion=fusion-20261127-83862b81", ENCODERS)

    assert labels == {
        "model_version": "listing_embedder/1 fusion=fusion-20261127-83862b81",
        "listing_model": "listing_embedder/1",
        "fusion": "fusion-20261127-83862b81",
        **ENCODERS,
    }


def test_a_version_without_fusion_tag_says_unknown() -> None:
    assert model_labels("listing_embedder/3", {})["fusion"] == "unknown"


def test_label_names_are_valid_prometheus_names() -> None:
    names = model_labels(
        "listing_embedder/1 fusion=f", {"text-encoder.v2": "a", "3d_encoder": "b", **ENCODERS}
    )

    assert all(LABEL_NAME.fullmatch(name) and not name.startswith("__") for name in names)
    assert {label_name("text-encoder.v2"), label_name("3d_encoder")} == {"text_encoder_v2", "_3d_encoder"}


def test_an_info_metric_exports_the_labels() -> None:
    registry = CollectorRegistry()
    Info("toyfuse_model", "served", registry=registry).info(
        model_labels("listing_embedder/1 fusion=f", ENCODERS)
    )

    (family,) = text_string_to_metric_families(generate_latest(registry).decode())
    (sample,) = family.samples
    assert sample.labels["fusion"] == "f" and sample.labels["image_encoder"] == ENCODERS["image_encoder"]
