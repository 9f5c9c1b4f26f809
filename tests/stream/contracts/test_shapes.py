"""Every Triton config.pbtxt agrees with schemas/embedding_index.yaml, as read by stream/contracts/shapes.py."""

import re
from pathlib import Path

import pytest

from stream.config import REPO_ROOT, Settings
from stream.contracts import shapes

MODELS = REPO_ROOT / "triton_models"
PREFERRED = re.compile(r"preferred_batch_size:\s*\[([^\]]*)\]")
INSTANCES = re.compile(r"instance_group\s*\[\s*\{\s*count:\s*(\d+)")
ENCODERS = ("text_encoder", "text_multilingual_encoder", "image_encoder")
TENSOR = re.compile(r'\{\s*name:\s*"(\w+)",\s*data_type:\s*(\w+),\s*dims:\s*\[([^\]]*)\]')
N = len(shapes.MODALITIES)
IMAGE = list(shapes.IMAGE_SHAPE)
# Each model's tensors, by name, as the shapes module says they must be (batch dimension left out).
EXPECTED: dict[str, dict[str, list[int]]] = {
    "text_encoder": {"TEXT": [1], "TEXT_EMBEDDING": [shapes.DIMS["text"]]},
    "text_multilingual_encoder": {"TEXT": [1], "TEXT_EMBEDDING": [shapes.DIMS["text_multilingual"]]},
    "image_encoder": {"IMAGE": IMAGE, "IMAGE_EMBEDDING": [shapes.DIMS["image"]]},
    "video_pooling": {
        "FRAME_EMBEDDINGS": [shapes.FRAMES_PER_VIDEO, shapes.DIMS["image"]],
        "FRAME_MASK": [shapes.FRAMES_PER_VIDEO],
        "VIDEO_EMBEDDING": [shapes.DIMS["video"]],
    },
    "fusion": {
        "TEXT_EMBEDDING": [shapes.DIMS["text"]],
        "TEXT_MULTILINGUAL_EMBEDDING": [shapes.DIMS["text_multilingual"]],
        "IMAGE_EMBEDDING": [shapes.DIMS["image"]],
        "VIDEO_EMBEDDING": [shapes.DIMS["video"]],
        "REVIEWS_EMBEDDING": [shapes.DIMS["reviews"]],
        "MODALITY_MASK": [N],
        "FUSED_EMBEDDING": [shapes.DIMS["fused"]],
        "MODALITY_WEIGHTS": [N],
    },
    "listing_embedder": {
        "TEXT": [-1],
        "IMAGES": [-1, *IMAGE],
        "IMAGE_LISTING": [-1],
        "FRAMES": [-1, *IMAGE],
        "FRAME_LISTING": [-1],
        "REVIEWS_EMBEDDING": [-1, shapes.DIMS["reviews"]],
        "REVIEWS_MASK": [-1],
        "FUSED_EMBEDDING": [-1, shapes.DIMS["fused"]],
        "TEXT_EMBEDDING": [-1, shapes.DIMS["text"]],
        "TEXT_MULTILINGUAL_EMBEDDING": [-1, shapes.DIMS["text_multilingual"]],
        "IMAGE_EMBEDDING": [-1, shapes.DIMS["image"]],
        "PHOTO_EMBEDDINGS": [-1, shapes.DIMS["photos"]],
        "VIDEO_EMBEDDING": [-1, shapes.DIMS["video"]],
        "MODALITY_MASK": [-1, N],
        "MODALITY_WEIGHTS": [-1, N],
    },
}


def tensor_dims(config: str) -> dict[str, list[int]]:
    """Every input and output tensor of a config.pbtxt with its dims."""
    return {name: [int(d) for d in dims.split(",")] for name, _, dims in TENSOR.findall(config)}


def max_batch_size(config: str) -> int:
    match = re.search(r"^max_batch_size:\s*(\d+)", config, re.MULTILINE)
    assert match, "config.pbtxt has no max_batch_size"
    return int(match.group(1))


def test_every_model_in_the_repository_is_checked() -> None:
    assert {path.parent.name for path in MODELS.glob("*/config.pbtxt")} == set(EXPECTED)


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_config_tensors_match_the_index_schema(model: str) -> None:
    config = (MODELS / model / "config.pbtxt").read_text(encoding="utf-8")
    assert tensor_dims(config) == EXPECTED[model]


@pytest.mark.parametrize("model", sorted(set(EXPECTED) - {"listing_embedder"}))
def test_inner_models_take_the_batch_cap(model: str) -> None:
    config = (MODELS / model / "config.pbtxt").read_text(encoding="utf-8")
    assert max_batch_size(config) == shapes.MAX_BATCH


@pytest.mark.parametrize("model", ENCODERS)
def test_batches_in_flight_run_on_instances_of_their_own(model: str) -> None:
    """Triton's batcher merges queued requests up to the largest preferred size: with 64 preferred, two
    batches of 32 in flight ran as one on one instance while the other waited."""
    config = (MODELS / model / "config.pbtxt").read_text(encoding="utf-8")
    fields = Settings.model_fields
    in_flight = max(fields["listing_batches_in_flight"].default, fields["review_batches_in_flight"].default)
    preferred = PREFERRED.search(config)
    instances = INSTANCES.search(config)
    assert preferred and instances, f"{model}: no preferred_batch_size or instance count"
    assert max(int(size) for size in preferred.group(1).split(",")) <= fields["batch_size"].default
    assert int(instances.group(1)) >= in_flight


def test_a_disagreeing_config_is_caught(tmp_path: Path) -> None:
    config = (MODELS / "fusion" / "config.pbtxt").read_text(encoding="utf-8")
    edited = config.replace(f"dims: [ {shapes.DIMS['fused']} ]", "dims: [ 128 ]")
    assert tensor_dims(edited) != EXPECTED["fusion"]


def test_modalities_follow_the_schema_order() -> None:
    assert shapes.MODALITIES == shapes.INDEX.modalities == ("text", "image", "video", "reviews")
