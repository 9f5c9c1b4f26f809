"""Fusion version names: parsing and rewriting model_version, key and field names."""

import pytest

from stream.config import REPO_ROOT
from stream.contracts.index import IndexSchema
from stream.errors import SettingsError
from stream.store.versions import (
    VersionKeys,
    encoders_of,
    fusion_version_of,
    shadow_field,
    version_set_key,
    with_fusion_version,
)

MODEL_VERSION = "listing_embedder/1 fusion=fusion-20261127-83862b81"


def test_model_version_splits_into_encoders_and_fusion_and_can_name_another_fusion() -> None:
    assert fusion_version_of(MODEL_VERSION) == "fusion-20261127-83862b81"
    assert fusion_version_of("text_encoder/1:test") is None
    assert encoders_of(MODEL_VERSION) == "listing_embedder/1"
    assert with_fusion_version(MODEL_VERSION, "fusion-b") == "listing_embedder/1 fusion=fusion-b"
    assert with_fusion_version("", "fusion-b") == "fusion=fusion-b"


def test_keys_and_fields_name_the_version_and_refuse_unsafe_names() -> None:
    schema = IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")
    keys = VersionKeys.of(schema)

    assert keys.routing() == ["toyfuse:similar:fused", "toyfuse:fusion:sets", "toyfuse:rollout", keys.changed]
    assert version_set_key(schema, "fusion-b") == "toyfuse:similar:fused:fusion-b"
    assert shadow_field(schema, "fusion-b") == "vec:fused@fusion-b"
    with pytest.raises(SettingsError, match="cannot name a vector set"):
        shadow_field(schema, "fusion b*")
