"""The served model versions as the labels of the ``toyfuse_model`` info metric (pure)."""

import re
from collections.abc import Mapping

from stream.store.versions import encoders_of, fusion_version_of

NOT_A_LABEL_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")


def label_name(name: str) -> str:
    """``name`` as a valid Prometheus label name: other characters become ``_``, a leading digit gets one.

    >>> label_name("text-encoder.v2"), label_name("2d_model")
    ('text_encoder_v2', '_2d_model')
    """
    cleaned = NOT_A_LABEL_CHARACTER.sub("_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


def model_labels(model_version: str, encoders: Mapping[str, str]) -> dict[str, str]:
    """The info labels: the served ``model_version`` whole and split, and each encoder's fingerprint.

    Args:
        model_version: what the records carry, e.g. ``listing_embedder/1 fusion=fusion-20261127-ab12cd``.
        encoders: each encoder model's fingerprint (:meth:`ListingEncoder.encoder_versions`).

    >>> labels = model_labels("listing_embedder/1 fusion=fusion-a", {"text_encoder": "text_encoder/1#3f"})
    >>> labels["listing_model"], labels["fusion"], labels["text_encoder"]
    ('listing_embedder/1', 'fusion-a', 'text_encoder/1#3f')
    """
    return {
        "model_version": model_version,
        "listing_model": encoders_of(model_version),
        "fusion": fusion_version_of(model_version) or "unknown",
        **{label_name(model): fingerprint for model, fingerprint in sorted(encoders.items())},
    }
