"""Real listing texts and photos of a generated catalog, and an ONNX cache the tests export into."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from stream.catalog.generate import generate_catalog
from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.encoders.export import TEXT_INPUTS
from stream.encoders.networks import text_tokenizer
from stream.encoders.sessions import Runner
from stream.features.text import text_of
from stream.media.images import preprocess_image
from stream.train.catalog_io import media_path, read_catalog

BASE_URL = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Material:
    """What the encoders embed for a catalog: each listing's text and product, and its photos."""

    texts: list[str]
    products: list[str]  # of each text
    photos: np.ndarray  # uint8 NHWC, every photo of the catalog


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    """120 listings of 40 products from the catalog generator, as the worker would embed them."""
    folder = tmp_path_factory.mktemp("catalog")
    generate_catalog(folder, seed=5, families=40, listings=120, reviews=0, media_base_url=BASE_URL)
    records = read_catalog(folder, EventDecoder(REPO_ROOT / "schemas"))
    photos = [
        preprocess_image(media_path(uri, records.media_dir).read_bytes())
        for event in records.listings
        for uri in event.images
    ]
    return Material([text_of(event) for event in records.listings], records.families, np.stack(photos))


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty cache folder, shared by the tests of a session so each encoder is exported once."""
    return tmp_path_factory.mktemp("onnx")


def served_parameters(model: str) -> dict[str, str]:
    """The string parameters of ``triton_models/<model>/config.pbtxt``."""
    text = (REPO_ROOT / "triton_models" / model / "config.pbtxt").read_text(encoding="utf-8")
    return dict(re.findall(r'\{ key: "([^"]+)", value: \{ string_value: "([^"]*)" \} \}', text))


def embed(runner: Runner, texts: list[str], max_tokens: int = 256) -> np.ndarray:
    """``texts`` through ``runner`` in batches of 32, each padded to its longest text."""
    tokenizer = text_tokenizer()
    batches = []
    for start in range(0, len(texts), 32):
        tokens = tokenizer(
            texts[start : start + 32],
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="np",
        )
        batches.append(runner({name: tokens[name] for name in TEXT_INPUTS}))
    return np.concatenate(batches)
