"""The fusion configuration of the repository layout, for the rollout tests."""

import pytest

from stream.config import REPO_ROOT
from stream.contracts.index import IndexSchema
from stream.model.fusion import FusionConfig


@pytest.fixture
def layout_config() -> FusionConfig:
    """The FusionConfig `toyfuse train` builds from schemas/embedding_index.yaml."""
    return FusionConfig.from_schema(IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml"))
