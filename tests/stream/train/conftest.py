"""Fixtures of the training tests: synthetic cached features."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from numpy.typing import NDArray

from stream.config import REPO_ROOT
from stream.train.cache import FeatureSet
from tests.stream.conftest import DIMS

FeatureSetFactory = Callable[..., FeatureSet]


def _noisy(
    prototypes: NDArray[Any], owner: NDArray[Any], rng: np.random.Generator, *shape: int
) -> NDArray[Any]:
    noisy: NDArray[Any] = (
        prototypes[owner].reshape(len(owner), *([1] * (len(shape) - 1)), -1)
        + 0.3 * rng.standard_normal((len(owner), *shape))
    ).astype(np.float32)
    return noisy


@pytest.fixture
def feature_set_factory() -> FeatureSetFactory:
    """Synthetic features: each product has a prototype vector per modality, its listings are noisy copies."""

    def build(families: int = 12, per_family: int = 3, seed: int = 0) -> FeatureSet:
        rng = np.random.default_rng(seed)
        owner = np.repeat(np.arange(families), per_family)
        n = len(owner)
        proto = {name: rng.standard_normal((families, dims)) for name, dims in DIMS.items()}
        mask = (rng.random((n, 4)) < 0.7).astype(np.float32)
        mask[:, 0] = 1.0
        frame_mask = np.zeros((n, 8), np.float32)
        frame_mask[:, :6] = mask[:, 2:3]
        photo_mask = np.zeros((n, 4), np.float32)
        photo_mask[:, :2] = mask[:, 1:2]
        return FeatureSet(
            listing_ids=np.array([f"toy-{i:04d}" for i in range(n)]),
            families=np.array([f"fam-{f:03d}" for f in owner]),
            categories=np.array([f"cat-{f % 3}" for f in owner]),
            locales=np.array(["zh-CN" if i % 5 == 0 else "en-US" for i in range(n)]),
            text=_noisy(proto["text"], owner, rng, DIMS["text"]),
            text_multilingual=_noisy(proto["text_multilingual"], owner, rng, DIMS["text_multilingual"]),
            photos=_noisy(proto["image"], owner, rng, 4, DIMS["image"]) * photo_mask[..., None],
            photo_mask=photo_mask,
            image=_noisy(proto["image"], owner, rng, DIMS["image"]) * mask[:, 1:2],
            frames=_noisy(proto["image"], owner, rng, 8, DIMS["image"]) * frame_mask[..., None],
            frame_mask=frame_mask,
            reviews=_noisy(proto["reviews"], owner, rng, DIMS["reviews"]) * mask[:, 3:4],
            modality_mask=mask,
            query_text=_noisy(proto["text"], owner, rng, DIMS["text"]),
            query_text_multilingual=_noisy(proto["text_multilingual"], owner, rng, DIMS["text_multilingual"]),
        )

    return build


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Train on one thread: on shared cores two threads contend and run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_layout(tmp_path: Path) -> Path:
    """The embedding layout with the vector sizes of the synthetic features (``layout.yaml`` in tmp_path)."""
    layout = yaml.safe_load((REPO_ROOT / "schemas" / "embedding_index.yaml").read_text(encoding="utf-8"))
    for name, dims in {**DIMS, "video": DIMS["image"], "photos": DIMS["image"]}.items():
        layout["vectors"][name]["dims"] = dims
    path = tmp_path / "layout.yaml"
    path.write_text(yaml.safe_dump(layout), encoding="utf-8")
    return path
