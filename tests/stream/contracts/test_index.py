"""The embedding layout file."""

from pathlib import Path

import pytest

from stream.contracts.index import IndexSchema
from stream.errors import SettingsError


def test_repository_layout_loads(schemas_dir: Path) -> None:
    schema = IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml")

    assert schema.vectors["text"].dims == 384
    assert schema.vectors["photos"].multi
    assert schema.listing_key("toy-1") == "toyfuse:listing:toy-1"
    assert schema.vector_set_key == "toyfuse:similar:fused"


def test_search_vector_must_be_declared(tmp_path: Path, schemas_dir: Path) -> None:
    text = (schemas_dir / "embedding_index.yaml").read_text().replace("vector: fused", "vector: combined")
    (tmp_path / "layout.yaml").write_text(text)

    with pytest.raises(SettingsError, match="search.vector 'combined' is not one of vectors"):
        IndexSchema.from_yaml(tmp_path / "layout.yaml")
