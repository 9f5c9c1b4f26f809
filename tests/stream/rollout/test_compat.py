"""What a rollout refuses: another video pooling, other encoders, records of other encoders."""

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stream.config import REPO_ROOT
from stream.contracts.index import IndexSchema
from stream.errors import ReembedRequired, SettingsError
from stream.model.fusion import FusionConfig, VideoPooling
from stream.model.loading import ARCHITECTURE, VIDEO_POOLING, WEIGHTS
from stream.rollout.compat import check_encoders, check_records, check_video_pooling, fusion_version


def pooling_repository(folder: Path, config: FusionConfig, seed: int) -> Path:
    torch.manual_seed(seed)
    version = folder / VIDEO_POOLING / "1"
    version.mkdir(parents=True)
    save_file(VideoPooling(config).state_dict(), str(version / WEIGHTS))
    config.write_json(version / ARCHITECTURE)
    return folder


def test_the_same_video_pooling_passes_and_other_weights_or_kind_are_refused(
    tmp_path: Path, layout_config: FusionConfig
) -> None:
    served = pooling_repository(tmp_path / "served", layout_config, seed=1)
    check_video_pooling(pooling_repository(tmp_path / "same", layout_config, seed=1), served)

    with pytest.raises(ReembedRequired, match="video pooling.*toyfuse replay"):
        check_video_pooling(pooling_repository(tmp_path / "retrained", layout_config, seed=2), served)
    netvlad = layout_config.with_changes(video_pooling="netvlad")
    with pytest.raises(ReembedRequired):
        check_video_pooling(pooling_repository(tmp_path / "netvlad", netvlad, seed=1), served)
    with pytest.raises(SettingsError):
        check_video_pooling(tmp_path / "empty", served)


def test_encoders_brought_by_the_new_repository_must_be_the_served_ones(tmp_path: Path) -> None:
    schema = IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")
    served, new = tmp_path / "served", tmp_path / "new"
    for name in ("listing_embedder", "text_encoder"):
        shutil.copytree(
            REPO_ROOT / "triton_models" / name, served / name, ignore=shutil.ignore_patterns("*.py*")
        )
    new.mkdir()
    assert check_encoders(new, served, schema) == "listing_embedder/1"

    shutil.copytree(served / "text_encoder", new / "text_encoder")
    config = new / "text_encoder" / "config.pbtxt"
    config.write_text(config.read_text().replace("all-MiniLM-L6-v2", "all-MiniLM-L12-v2"))
    with pytest.raises(ReembedRequired, match="text_encoder.*all-MiniLM-L12-v2"):
        check_encoders(new, served, schema)


def test_records_must_name_the_serving_encoders() -> None:
    check_records("listing_embedder/1", [("a", "listing_embedder/1")])
    with pytest.raises(ReembedRequired, match="listing b was embedded by 'listing_embedder/0'"):
        check_records("listing_embedder/1", [("a", "listing_embedder/1"), ("b", "listing_embedder/0")])


def test_the_fusion_version_comes_from_the_exported_config(tmp_path: Path) -> None:
    (tmp_path / "fusion").mkdir()
    (tmp_path / "fusion" / "config.pbtxt").write_text(
        'parameters [\n  { key: "model_version", value: { string_value: "fusion-20260101-abcd0123" } }\n]\n'
    )
    assert fusion_version(tmp_path) == "fusion-20260101-abcd0123"
    (tmp_path / "fusion" / "config.pbtxt").write_text(
        'parameters [ { key: "model_version", value: { string_value: "a b" } } ]'
    )
    with pytest.raises(SettingsError, match="cannot name a vector set"):
        fusion_version(tmp_path)
