"""The embedding layout file."""

from pathlib import Path

import pytest

from stream.contracts.index import BUILD_M_RANGE, MAX_BUILD_EF, IndexSchema
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


def test_a_build_effort_redis_would_refuse_is_refused_at_load(tmp_path: Path, schemas_dir: Path) -> None:
    layout = (schemas_dir / "embedding_index.yaml").read_text()
    assert "build_ef: 200 " in layout, "the layout's build_ef line changed; update this test"
    for refused in (MAX_BUILD_EF + 1, 0):
        (tmp_path / "layout.yaml").write_text(layout.replace("build_ef: 200 ", f"build_ef: {refused} "))
        with pytest.raises(SettingsError, match="build_ef"):
            IndexSchema.from_yaml(tmp_path / "layout.yaml")
    (tmp_path / "layout.yaml").write_text(layout.replace("build_ef: 200 ", f"build_ef: {MAX_BUILD_EF} "))
    assert IndexSchema.from_yaml(tmp_path / "layout.yaml").search.build_ef == MAX_BUILD_EF


def test_links_per_node_redis_would_refuse_are_refused_at_load(tmp_path: Path, schemas_dir: Path) -> None:
    layout = (schemas_dir / "embedding_index.yaml").read_text()
    assert "build_m: 16 " in layout, "the layout's build_m line changed; update this test"
    low, high = BUILD_M_RANGE
    for refused in (low - 1, high + 1):
        (tmp_path / "layout.yaml").write_text(layout.replace("build_m: 16 ", f"build_m: {refused} "))
        with pytest.raises(SettingsError, match="build_m"):
            IndexSchema.from_yaml(tmp_path / "layout.yaml")
    for accepted in BUILD_M_RANGE:
        (tmp_path / "layout.yaml").write_text(layout.replace("build_m: 16 ", f"build_m: {accepted} "))
        assert IndexSchema.from_yaml(tmp_path / "layout.yaml").search.build_m == accepted


def test_a_key_prefix_with_a_brace_is_refused_at_load(tmp_path: Path, schemas_dir: Path) -> None:
    layout = (schemas_dir / "embedding_index.yaml").read_text()
    assert "key_prefix: toyfuse\n" in layout, "the layout's key_prefix line changed; update this test"
    for refused in ("toy{fuse", "toy}fuse"):
        (tmp_path / "layout.yaml").write_text(
            layout.replace("key_prefix: toyfuse\n", f"key_prefix: '{refused}'\n")
        )
        with pytest.raises(SettingsError, match="key_prefix"):
            IndexSchema.from_yaml(tmp_path / "layout.yaml")
