"""The fusion network: mask handling, unit-norm output, modality weights, video pooling."""

import itertools
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from stream.config import REPO_ROOT
from stream.contracts.index import IndexSchema
from stream.errors import SettingsError
from stream.model.fusion import (
    FusionConfig,
    FusionKind,
    FusionModel,
    ListingBatch,
    ListingModel,
    PresentCentering,
    VideoPooling,
    masked_softmax,
)

KINDS = [("blocks", 0), ("attention", 0), ("attention", 1)]
SUBSETS = [mask for mask in itertools.product([0.0, 1.0], repeat=4) if any(mask)]


def _inputs(config: FusionConfig, rows: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(rows, dims, generator=generator) for dims in config.input_dims().values()]


def _fusion(config: FusionConfig) -> FusionModel:
    torch.manual_seed(0)
    return FusionModel(config).eval()


def test_config_takes_the_input_dims_from_the_embedding_layout() -> None:
    schema = IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")
    config = FusionConfig.from_schema(schema, shared_dim=64)

    assert config.input_dims() == {
        "text": 384,
        "text_multilingual": 512,
        "image": 1280,
        "video": 1280,
        "reviews": 512,
    }
    assert config.shared_dim == 64


def test_config_refuses_video_vectors_of_another_size_than_images() -> None:
    schema = IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")
    vectors = dict(schema.vectors)
    vectors["video"] = vectors["video"].model_copy(update={"dims": 512})

    with pytest.raises(SettingsError, match="video vectors \\(512-d\\) must match image vectors"):
        FusionConfig.from_schema(schema.model_copy(update={"vectors": vectors}))


def test_config_json_round_trip(tmp_path: Path, tiny_config: FusionConfig) -> None:
    config = tiny_config.with_changes(video_pooling="netvlad")
    config.write_json(tmp_path / "config.json")

    assert FusionConfig.read_json(tmp_path / "config.json") == config


@pytest.mark.parametrize(("kind", "layers"), KINDS)
def test_every_subset_of_modalities_gives_a_unit_vector_and_weights_over_the_present_ones(
    tiny_config: FusionConfig, kind: FusionKind, layers: int
) -> None:
    model = _fusion(tiny_config.with_changes(fusion_kind=kind, layers=layers))
    mask = torch.tensor(SUBSETS)
    fused, weights = model(*_inputs(tiny_config, len(SUBSETS)), mask)

    torch.testing.assert_close(fused.norm(dim=1), torch.ones(len(SUBSETS)))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(len(SUBSETS)))
    assert torch.all(weights[mask == 0] == 0)
    assert torch.all(weights[mask == 1] > 0)


@pytest.mark.parametrize(("kind", "layers"), KINDS)
def test_absent_modalities_do_not_change_the_output(
    tiny_config: FusionConfig, kind: FusionKind, layers: int
) -> None:
    model = _fusion(tiny_config.with_changes(fusion_kind=kind, layers=layers))
    text, multilingual, image, video, reviews = _inputs(tiny_config, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 3)
    other_video, other_reviews = torch.randn_like(video), torch.randn_like(reviews)

    first = model(text, multilingual, image, video, reviews, mask)
    second = model(text, multilingual, image, other_video, other_reviews, mask)

    torch.testing.assert_close(first, second)


def test_text_only_is_what_a_search_text_goes_through(tiny_config: FusionConfig) -> None:
    model = _fusion(tiny_config)
    text, multilingual, *_ = _inputs(tiny_config, 2)
    zeros = [torch.zeros(2, tiny_config.image_dims)] * 2 + [torch.zeros(2, tiny_config.reviews_dims)]

    fused, weights = model(text, multilingual, *zeros, torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 2))

    torch.testing.assert_close(weights, torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 2))
    torch.testing.assert_close(fused.norm(dim=1), torch.ones(2))


def test_attention_weights_depend_on_the_input(tiny_config: FusionConfig) -> None:
    config = tiny_config.with_changes(fusion_kind="attention")
    model = _fusion(config)
    _, weights = model(*_inputs(config, 2), torch.ones(2, 4))

    assert not torch.allclose(weights[0], weights[1])


def test_block_weights_depend_only_on_what_is_present(tiny_config: FusionConfig) -> None:
    model = _fusion(tiny_config.with_changes(gate_scale=1.0))
    with torch.no_grad():
        model.input_logits.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0, -3.0]))

    with torch.no_grad():
        _, weights = model(
            *_inputs(tiny_config, 3), torch.tensor([[1.0] * 4, [1.0] * 4, [1.0, 1.0, 0.0, 0.0]])
        )

    torch.testing.assert_close(weights[0], weights[1])
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0, -1.0, -3.0]), dim=0)
    torch.testing.assert_close(weights[0], torch.stack([expected[0] + expected[1], *expected[2:]]))
    assert float(weights[2, 2:].sum()) == 0 and float(weights[2].sum()) == pytest.approx(1.0)


def test_block_cosine_is_the_weighted_sum_of_each_inputs_cosine(tiny_config: FusionConfig) -> None:
    model = _fusion(tiny_config)
    first, second = _inputs(tiny_config, 1, seed=1), _inputs(tiny_config, 1, seed=2)
    present = torch.ones(1, 4)

    fused = [model(*inputs, present)[0] for inputs in (first, second)]

    weights = torch.softmax(model.gate_scale * model.input_logits, dim=0)
    cosines = torch.stack(
        [
            torch.nn.functional.cosine_similarity(model.projections[name](a), model.projections[name](b))[0]
            for name, a, b in zip(model.projections, first, second, strict=True)
        ]
    )
    torch.testing.assert_close((fused[0] * fused[1]).sum(), (weights * cosines).sum())


def test_block_shares_must_leave_every_input_a_dim(tiny_config: FusionConfig) -> None:
    assert sum(tiny_config.block_widths()) == tiny_config.shared_dim
    with pytest.raises(SettingsError, match="block_shares"):
        tiny_config.with_changes(block_shares=(1, 1, 1))
    with pytest.raises(SettingsError, match="at least one of the 8 fused dims"):
        tiny_config.with_changes(block_shares=(100, 1, 1, 1, 1))


def test_a_config_saved_before_blocks_existed_loads_as_attention(
    tiny_config: FusionConfig, tmp_path: Path
) -> None:
    fields = json.loads(json.dumps(asdict(tiny_config)))
    del fields["fusion_kind"], fields["block_shares"]
    (tmp_path / "config.json").write_text(json.dumps(fields))

    assert FusionConfig.read_json(tmp_path / "config.json").fusion_kind == "attention"


@pytest.mark.parametrize(("kind", "layers"), KINDS)
def test_a_row_with_nothing_present_gives_zeros_not_nan(
    tiny_config: FusionConfig, kind: FusionKind, layers: int
) -> None:
    model = _fusion(tiny_config.with_changes(fusion_kind=kind, layers=layers))
    fused, weights = model(*_inputs(tiny_config, 2), torch.tensor([[0.0] * 4, [1.0] * 4]))

    assert torch.all(fused[0] == 0) and torch.all(weights[0] == 0)
    assert torch.isfinite(fused).all()


@pytest.mark.parametrize("kind", ["attention", "netvlad"])
def test_video_pooling_ignores_padded_frames_and_is_unit_length(tiny_config: FusionConfig, kind: str) -> None:
    torch.manual_seed(0)
    pooling = VideoPooling(tiny_config.with_changes(video_pooling=kind)).eval()
    frames = torch.randn(2, tiny_config.frames, tiny_config.image_dims)
    mask = torch.zeros(2, tiny_config.frames)
    mask[:, :3] = 1.0
    padded_differently = frames.clone()
    padded_differently[:, 3:] = torch.randn(2, tiny_config.frames - 3, tiny_config.image_dims)

    pooled = pooling(frames, mask)

    assert pooled.shape == (2, tiny_config.image_dims)
    torch.testing.assert_close(pooled.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(pooling(padded_differently, mask), pooled)


def test_attention_pooling_of_identical_frames_is_that_frame(tiny_config: FusionConfig) -> None:
    pooling = VideoPooling(tiny_config).eval()
    frame = torch.randn(1, 1, tiny_config.image_dims)

    pooled = pooling(frame.repeat(1, tiny_config.frames, 1), torch.ones(1, tiny_config.frames))

    torch.testing.assert_close(pooled, torch.nn.functional.normalize(frame[:, 0], dim=-1))


def test_listing_model_pools_frames_then_fuses(tiny_config: FusionConfig) -> None:
    torch.manual_seed(0)
    model = ListingModel(tiny_config).eval()
    text, multilingual, image, _, reviews = _inputs(tiny_config, 2)
    batch = ListingBatch(
        text,
        multilingual,
        image,
        torch.randn(2, tiny_config.frames, tiny_config.image_dims),
        torch.ones(2, tiny_config.frames),
        reviews,
        torch.ones(2, 4),
    )

    fused, _ = model(batch)
    video = model.video_pooling(batch.frames, batch.frame_mask)

    torch.testing.assert_close(
        fused, model.fusion(text, multilingual, image, video, reviews, batch.modality_mask)[0]
    )


def test_masked_softmax() -> None:
    weights = masked_softmax(
        torch.tensor([[0.0, 5.0, 0.0], [1.0, 1.0, 1.0]]),
        torch.tensor([[True, False, True], [False, False, False]]),
    )

    torch.testing.assert_close(weights, torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]))


def test_centering_uses_only_the_rows_that_have_the_input() -> None:
    centering = PresentCentering(2, momentum=0.5).train()
    block = torch.tensor([[1.0, 3.0], [3.0, 5.0], [100.0, 100.0]])

    centred = centering(block, torch.tensor([True, True, False]))

    torch.testing.assert_close(centred[:2], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    torch.testing.assert_close(centering.running_mean, torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(
        centering.eval()(block, torch.ones(3, dtype=torch.bool))[0], torch.tensor([0.0, 1.0])
    )


def test_a_centred_block_that_ignores_its_input_adds_nothing(tiny_config: FusionConfig) -> None:
    model = _fusion(tiny_config).train()
    with torch.no_grad():
        model.projections["reviews"][-1].weight.zero_()  # every review becomes the same (bias) vector
    inputs = _inputs(tiny_config, 4)

    with_reviews, _ = model(*inputs, torch.ones(4, 4))

    reviews_block = with_reviews[:, -tiny_config.block_widths()[-1] :]
    torch.testing.assert_close(reviews_block, torch.zeros_like(reviews_block))


def test_recentring_centres_each_block_on_the_listings_that_have_its_input(tiny_config: FusionConfig) -> None:
    torch.manual_seed(0)
    model = ListingModel(tiny_config).train()
    text, multilingual, image, _, reviews = _inputs(tiny_config, 4)
    present = torch.tensor(
        [[1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
    )
    frames = torch.randn(4, tiny_config.frames, tiny_config.image_dims)
    batch = ListingBatch(
        text, multilingual, image, frames, torch.ones(4, tiny_config.frames), reviews, present
    )
    video_mean = model.fusion.centering["video"].running_mean.clone()

    model.recentre(batch)

    assert model.training  # recentring leaves the mode as it was
    fusion = model.fusion
    with torch.no_grad():
        for name, x, rows in (
            ("text", text, [0, 1, 2, 3]),
            ("image", image, [0, 1, 3]),
            ("reviews", reviews, [0, 2]),
        ):
            expected = fusion.projections[name].eval()(x[rows]).mean(dim=0)
            torch.testing.assert_close(fusion.centering[name].running_mean, expected)
    torch.testing.assert_close(fusion.centering["video"].running_mean, video_mean)  # no listing has a video


def test_recentring_on_a_catalog_removes_an_offset_its_inputs_share(tiny_config: FusionConfig) -> None:
    """Reviews of another domain than training (a common offset): recentred, the review block of two
    listings no longer agrees more than the reviews themselves do."""
    torch.manual_seed(0)
    model = ListingModel(tiny_config).eval()
    text, multilingual, image, _, reviews = _inputs(tiny_config, 64)
    offset = reviews + 5.0 * torch.randn(1, tiny_config.reviews_dims)
    frames = torch.zeros(64, tiny_config.frames, tiny_config.image_dims)
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0]]).repeat(64, 1)
    batch = ListingBatch(text, multilingual, image, frames, torch.zeros(64, tiny_config.frames), offset, mask)

    @torch.no_grad()
    def mean_review_block_cosine() -> float:
        fused, _ = model(batch)
        block = torch.nn.functional.normalize(fused[:, -tiny_config.block_widths()[-1] :], dim=-1)
        similarity = block @ block.T
        return float(similarity[~torch.eye(64, dtype=torch.bool)].mean())

    before = mean_review_block_cosine()
    model.recentre(batch)

    assert before > 0.5
    assert abs(mean_review_block_cosine()) < 0.05
