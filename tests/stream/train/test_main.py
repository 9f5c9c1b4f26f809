"""CPU tests of `toyfuse train` (every label mode) and `toyfuse export`: synthetic features -> checkpoint -> models."""

import importlib.util
import json
import re
import sys
import types
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from stream.config import REPO_ROOT
from stream.contracts.shapes import MODALITIES
from stream.model import serving
from stream.model.fusion import INPUTS, FusionConfig
from stream.train import cache
from stream.train.cache import FeatureSet
from stream.train.data import LabelMode
from stream.train.evaluate import recentred_on
from stream.train.export import export, load_checkpoint
from stream.train.loss import LossWeights
from stream.train.main import Trainer, cosine_lr, main, seed_everything
from stream.train.params import TrainParams
from stream.train.reliability import reweight
from stream.train.retrieval import fusion_scores
from tests.stream.conftest import DIMS
from tests.stream.train.conftest import FeatureSetFactory

SMALL = [
    "--shared-dim",
    "8",
    "--hidden-dim",
    "8",
    "--heads",
    "2",
    "--layers",
    "1",
    "--batch-products",
    "4",
    "--no-progress",
]


@pytest.fixture
def small_run(tmp_path: Path, feature_set_factory: FeatureSetFactory, tiny_layout: Path) -> list[str]:
    """Arguments of a training run on synthetic features with a schema of matching (tiny) sizes."""
    cache.save(feature_set_factory(), tmp_path / "features.npz", {"catalog": "synthetic"})
    return ["--features", str(tmp_path / "features.npz"), "--schema", str(tiny_layout), *SMALL]


def _fake_pb_utils() -> types.SimpleNamespace:
    """The few names of ``triton_python_backend_utils`` the fusion and video pooling models use."""

    class Tensor:
        def __init__(self, name: str, array: NDArray[Any]) -> None:
            self.name, self.array = name, array

        def as_numpy(self) -> NDArray[Any]:
            return self.array

    class InferenceResponse:
        def __init__(self, output_tensors: list[Tensor] | None = None, error: Any = None) -> None:
            self.outputs = {tensor.name: tensor.array for tensor in output_tensors or []}
            self.error = error

    return types.SimpleNamespace(
        Tensor=Tensor,
        InferenceResponse=InferenceResponse,
        TritonError=RuntimeError,
        get_input_tensor_by_name=lambda request, name: Tensor(name, request[name]),
        get_output_config_by_name=lambda config, name: next(o for o in config["output"] if o["name"] == name),
        triton_string_to_numpy={"TYPE_FP32": np.float32}.__getitem__,
    )


def _model_config(pbtxt: str) -> dict[str, Any]:
    """The outputs and parameters of an exported config.pbtxt, as Triton hands them to ``initialize``."""
    block = pbtxt.split("output [")[1].split("]\n")[0]
    outputs = re.findall(r'name: "(\w+)", data_type: (\w+), dims: \[ ([\d, ]+) \]', block)
    parameters = re.findall(r'key: "(\w+)", value: \{ string_value: "([^"]*)" \}', pbtxt)
    return {
        "output": [
            {"name": n, "data_type": t, "dims": [int(d) for d in dims.split(",")]} for n, t, dims in outputs
        ],
        "parameters": {key: {"string_value": value} for key, value in parameters},
    }


def _triton_model(repository: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _fake_pb_utils())
    capped: list[int] = []  # the stub caps its thread pools; this test process keeps its own
    monkeypatch.setattr(serving, "limit_threads", capped.append)
    spec = importlib.util.spec_from_file_location(f"exported_{name}", repository / name / "1" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    model.initialize(
        {
            "model_config": json.dumps(_model_config((repository / name / "config.pbtxt").read_text())),
            "model_instance_kind": "CPU",
            "model_instance_device_id": "0",
            "model_repository": str(repository / name),
            "model_version": "1",
        }
    )
    assert capped == [1]  # the exported config's intra_op_threads
    return model


def test_cosine_schedule_warms_up_then_decays_to_zero() -> None:
    assert [round(cosine_lr(step, 10, 2), 3) for step in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]


def test_train_one_step_then_export_and_serve_the_same_vectors(
    small_run: list[str],
    tmp_path: Path,
    feature_set_factory: FeatureSetFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*small_run, "--out", str(tmp_path / "run"), "--epochs", "1", "--steps", "1"]) == 0
    assert "checkpoint:" in capsys.readouterr().out
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 1 and history[0]["loss"]["loss"] > 0

    exported = export(tmp_path / "run" / "best.pt", tmp_path / "repo", today=date(2026, 1, 2))
    assert re.fullmatch(r"fusion-20260102-[0-9a-f]{8}", exported.model_version)
    for name in ("fusion", "video_pooling"):
        assert (
            f'string_value: "{exported.model_version}"'
            in (tmp_path / "repo" / name / "config.pbtxt").read_text()
        )

    batch = feature_set_factory().listing_batch()
    model = load_checkpoint(tmp_path / "run" / "best.pt")
    with torch.inference_mode():
        video = model.video_pooling(batch.frames, batch.frame_mask)
        expected = model(batch)

    pooling = _triton_model(tmp_path / "repo", "video_pooling", monkeypatch)
    halves = [
        {"FRAME_EMBEDDINGS": batch.frames[rows].numpy(), "FRAME_MASK": batch.frame_mask[rows].numpy()}
        for rows in (slice(0, 5), slice(5, None))
    ]
    served_video = np.concatenate([r.outputs["VIDEO_EMBEDDING"] for r in pooling.execute(halves)])
    np.testing.assert_allclose(served_video, video.numpy(), rtol=1e-5, atol=1e-6)

    fusion = _triton_model(tmp_path / "repo", "fusion", monkeypatch)
    request = {
        "TEXT_EMBEDDING": batch.text.numpy(),
        "TEXT_MULTILINGUAL_EMBEDDING": batch.text_multilingual.numpy(),
        "IMAGE_EMBEDDING": batch.image.numpy(),
        "VIDEO_EMBEDDING": served_video,
        "REVIEWS_EMBEDDING": batch.reviews.numpy(),
        "MODALITY_MASK": batch.modality_mask.numpy(),
    }
    (response,) = fusion.execute([request])
    np.testing.assert_allclose(response.outputs["FUSED_EMBEDDING"], expected[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        response.outputs["MODALITY_WEIGHTS"], expected[1].numpy(), rtol=1e-5, atol=1e-5
    )


def test_training_is_reproducible(small_run: list[str], tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main([*small_run, "--out", str(tmp_path / name), "--epochs", "2", "--steps", "3"]) == 0

    first, second = (torch.load(tmp_path / n / "last.pt", weights_only=True)["model"] for n in ("a", "b"))
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_a_failed_request_batch_gets_error_responses(
    small_run: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main([*small_run, "--out", str(tmp_path / "run"), "--epochs", "1", "--steps", "1"]) == 0
    export(tmp_path / "run" / "best.pt", tmp_path / "repo")
    pooling = _triton_model(tmp_path / "repo", "video_pooling", monkeypatch)

    responses = pooling.execute(
        [{"FRAME_EMBEDDINGS": np.zeros((2, 8, 3), np.float32), "FRAME_MASK": np.ones((2, 8), np.float32)}]
    )

    assert len(responses) == 1 and "video_pooling failed" in str(responses[0].error)


def test_features_of_other_sizes_than_the_layout_are_refused(
    small_run: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        a if a != str(tmp_path / "layout.yaml") else str(REPO_ROOT / "schemas" / "embedding_index.yaml")
        for a in small_run
    ]

    assert main([*args, "--out", str(tmp_path / "run"), "--epochs", "1"]) == 1
    assert "cached text features are 12-d but the embedding layout says 384" in capsys.readouterr().err


def test_a_video_only_run_scores_listings_that_have_a_video(small_run: list[str], tmp_path: Path) -> None:
    args = [
        *small_run,
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "1",
        "--modalities",
        "video",
        "--video-pooling",
        "netvlad",
    ]

    assert main(args) == 0
    val = json.loads((tmp_path / "run" / "history.json").read_text())[0]["val"]
    assert set(val) == {"listing_recall@1", "listing_mrr", "score"}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["video_pooling"] == "netvlad"


def test_unknown_modalities_are_refused(small_run: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([*small_run, "--out", str(tmp_path / "run"), "--modalities", "smell"])


def _shared_latent_features(products: int, seed: int = 0, rank: int = 6, nuisance: float = 2.0) -> FeatureSet:
    """Two listings per product: every vector is the product's latent through that vector's own random map,
    plus as strong a listing-specific nuisance that no other modality shares (label-free training must learn
    to ignore it). Odd products carry one GTIN per product as their weak key."""
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(products), 2)
    latent = rng.standard_normal((products, rank))[owner]

    def vectors(dims: int) -> NDArray[np.float32]:
        own = nuisance * rng.standard_normal((len(owner), rank)) @ rng.standard_normal((rank, dims))
        return (latent @ rng.standard_normal((rank, dims)) + own).astype(np.float32)

    def copies(base: NDArray[np.float32], count: int) -> NDArray[np.float32]:
        noise = 0.3 * rng.standard_normal((len(owner), count, base.shape[1]))
        return (base[:, None] + noise).astype(np.float32)

    photos = copies(vectors(DIMS["image"]), 4)
    image = photos.sum(axis=1) / np.linalg.norm(photos.sum(axis=1), axis=1, keepdims=True)
    text, multilingual = vectors(DIMS["text"]), vectors(DIMS["text_multilingual"])
    ones = np.ones((len(owner), 1), np.float32)
    return FeatureSet(
        listing_ids=np.array([f"toy-{i:04d}" for i in range(len(owner))]),
        families=np.array([f"fam-{f:03d}" for f in owner]),
        categories=np.array([f"cat-{f % 3}" for f in owner]),
        locales=np.array(["en-US"] * len(owner)),
        text=text,
        text_multilingual=multilingual,
        photos=photos,
        photo_mask=ones.repeat(4, axis=1),
        image=image.astype(np.float32),
        frames=copies(vectors(DIMS["image"]), 8),
        frame_mask=ones.repeat(8, axis=1),
        reviews=vectors(DIMS["reviews"]),
        modality_mask=ones.repeat(4, axis=1),
        query_text=copies(text, 1)[:, 0],
        query_text_multilingual=copies(multilingual, 1)[:, 0],
        weak_keys=np.array([f"gtin:{f:014d}" if f % 2 else "" for f in owner]),
    )


@pytest.mark.parametrize("labels", ["none", "weak"])
@pytest.mark.usefixtures("one_thread")
def test_training_without_product_labels_finds_held_out_products(labels: LabelMode, tmp_path: Path) -> None:
    seed_everything(0)
    features = _shared_latent_features(products=150)
    dims = (DIMS["text"], DIMS["text_multilingual"], DIMS["image"], DIMS["reviews"])
    config = FusionConfig(
        *dims, shared_dim=16, hidden_dim=32, heads=2, fusion_kind="attention"
    )  # cross-modal views
    params = TrainParams(
        tmp_path / "features.npz",
        tmp_path / "run",
        epochs=100,
        batch_products=16,
        warmup_steps=10,
        loss=LossWeights(query=0.0),  # only the views' agreement can teach it
        labels=labels,
        steps=120,
        progress=False,
    )
    trainer = Trainer(params, config, features)
    held_out = features.subset(trainer.rows["test"])
    before = fusion_scores(trainer.model, held_out, MODALITIES)

    for epoch in range(params.epochs):
        if trainer.steps >= 120:
            break
        trainer.run_epoch(epoch)

    after = fusion_scores(trainer.model, held_out, MODALITIES)
    assert after["listing_mrr"] > before["listing_mrr"] + 0.07
    assert after["listing_recall@1"] > before["listing_recall@1"]


def test_a_label_free_run_records_its_modes_and_validates_without_labels(
    small_run: list[str], tmp_path: Path
) -> None:
    args = ["--out", str(tmp_path / "run"), "--epochs", "1", "--labels", "none", "--val-labels", "none"]

    assert main([*small_run, *args, "--fusion-kind", "attention"]) == 0

    val = json.loads((tmp_path / "run" / "history.json").read_text())[0]["val"]
    assert set(val) == {"text_to_media_recall@1", "media_to_text_recall@1", "score"}
    params = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["params"]
    assert (params["labels"], params["val_labels"]) == ("none", "none")
    assert params["noise_rate"] == 0.15 and params["augment"]["photo_keep"] == 0.5


def test_label_free_validation_needs_text_and_media(
    small_run: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--out", str(tmp_path / "run"), "--val-labels", "none", "--modalities", "text,reviews"]

    assert main([*small_run, *args, "--fusion-kind", "attention"]) == 1
    assert "allow text and image or video, or pass --val-labels product" in capsys.readouterr().err


def test_block_fusion_refuses_the_cross_modal_validation(
    small_run: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*small_run, "--out", str(tmp_path / "run"), "--val-labels", "none"]) == 1
    assert "pass --val-labels agreement or --fusion-kind attention" in capsys.readouterr().err


def test_an_agreement_run_validates_on_agreement_pairs(small_run: list[str], tmp_path: Path) -> None:
    args = [
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "1",
        "--labels",
        "agreement",
        "--val-labels",
        "agreement",
    ]

    assert main([*small_run, *args]) == 0

    val = json.loads((tmp_path / "run" / "history.json").read_text())[0]["val"]
    assert {"listing_recall@1", "score"} <= set(val)
    params = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["params"]
    assert (params["labels"], params["val_labels"]) == ("agreement", "agreement")


def test_agreement_validation_without_any_agreeing_pair_is_refused_naming_the_way_out(
    small_run: list[str],
    tmp_path: Path,
    feature_set_factory: FeatureSetFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    features = feature_set_factory()
    mask = features.modality_mask.copy()
    mask[:, 1] = 0.0  # no photos: photos and texts can never both agree
    cache.save(replace(features, modality_mask=mask), tmp_path / "features.npz", {"catalog": "synthetic"})
    args = ["--out", str(tmp_path / "run"), "--labels", "agreement", "--val-labels", "agreement"]

    assert main([*small_run, *args]) == 1

    error = capsys.readouterr().err
    assert (
        "agree on no pair among the" in error and "pass --val-labels none, or another --split-seed" in error
    )
    assert not (tmp_path / "run" / "best.pt").exists()


def test_weak_labels_without_any_key_warn(
    small_run: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main([*small_run, "--out", str(tmp_path / "run"), "--epochs", "1", "--labels", "weak"]) == 0
    assert "no listing has a weak key" in caplog.text


def test_noise_changes_training_and_stays_reproducible(small_run: list[str], tmp_path: Path) -> None:
    runs = {"quiet": ["--noise-rate", "0", "--noisy-reviews-rate", "0"], "a": [], "b": []}
    for name, extra in runs.items():
        assert main([*small_run, "--out", str(tmp_path / name), "--epochs", "1", "--steps", "2", *extra]) == 0

    quiet, first, second = (torch.load(tmp_path / n / "last.pt", weights_only=True)["model"] for n in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], quiet[key]) for key in first)


def test_a_run_can_start_from_a_trained_model_and_keeps_its_architecture(
    small_run: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*small_run, "--out", str(tmp_path / "first"), "--epochs", "1"]) == 0
    start = tmp_path / "first" / "best.pt"

    still = ["--out", str(tmp_path / "adapted"), "--init", str(start), "--lr", "0", "--epochs", "1"]
    assert main([*small_run, *still]) == 0

    before, after = (
        torch.load(path, weights_only=True)["model"] for path in (start, tmp_path / "adapted" / "last.pt")
    )
    assert all(torch.equal(before[key], after[key]) for key in before if "running_mean" not in key)
    with pytest.raises(SystemExit):
        main([*small_run, "--out", str(tmp_path / "x"), "--init", str(start), "--hidden-dim", "4"])
    error = capsys.readouterr().err
    assert "--init keeps the architecture" in error and "drop hidden_dim" in error


def _trained_and_another_catalog(
    small_run: list[str], tmp_path: Path, feature_set_factory: FeatureSetFactory
) -> tuple[Path, Path]:
    """A checkpoint trained one epoch, and the features of another catalog to adapt it to."""
    assert main([*small_run, "--out", str(tmp_path / "first"), "--epochs", "1"]) == 0
    other = tmp_path / "other.npz"
    cache.save(feature_set_factory(seed=5), other, {"catalog": "another"})
    return tmp_path / "first" / "best.pt", other


def test_epochs_0_recentres_the_starting_model_on_the_features_and_changes_nothing_else(
    small_run: list[str], tmp_path: Path, feature_set_factory: FeatureSetFactory
) -> None:
    start, other = _trained_and_another_catalog(small_run, tmp_path, feature_set_factory)
    args = [*small_run, "--features", str(other), "--out", str(tmp_path / "recentred"), "--init", str(start)]

    assert main([*args, "--epochs", "0", "--recentre"]) == 0

    before = torch.load(start, weights_only=True)["model"]
    after = torch.load(tmp_path / "recentred" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(before[key], after[key]) for key in before if "running_mean" not in key)
    model = load_checkpoint(tmp_path / "recentred" / "best.pt")
    features = cache.load(other)
    expected = model.fusion.projections["text"](torch.from_numpy(features.text)).mean(dim=0)
    torch.testing.assert_close(model.fusion.centering["text"].running_mean, expected.detach())
    assert not torch.equal(
        before["fusion.centering.text.running_mean"], after["fusion.centering.text.running_mean"]
    )


def test_recentring_needs_centred_blocks_and_epochs_0_needs_a_model_to_recentre(
    small_run: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path / "run")]

    assert main([*small_run, *out, "--recentre", "--fusion-kind", "attention"]) == 1
    assert "drop --recentre" in capsys.readouterr().err
    assert main([*small_run, *out, "--epochs", "0"]) == 1
    assert "pass --init and --recentre or --reweight, or more epochs" in capsys.readouterr().err


def test_epochs_0_reweights_the_recentred_starting_model_and_changes_only_its_input_weights(
    small_run: list[str], tmp_path: Path, feature_set_factory: FeatureSetFactory
) -> None:
    start, other = _trained_and_another_catalog(small_run, tmp_path, feature_set_factory)
    args = [*small_run, "--features", str(other), "--init", str(start), "--epochs", "0", "--recentre"]

    assert main([*args, "--out", str(tmp_path / "recentred")]) == 0
    assert main([*args, "--out", str(tmp_path / "reweighted"), "--reweight"]) == 0

    recentred = load_checkpoint(tmp_path / "recentred" / "best.pt")
    reweighted = load_checkpoint(tmp_path / "reweighted" / "best.pt")
    expected = recentred_on(recentred, cache.load(other))
    assert expected is not None
    accuracies = reweight(expected, cache.load(other).listing_batch())
    torch.testing.assert_close(reweighted.fusion.input_weights(), expected.fusion.input_weights())
    assert not torch.allclose(reweighted.fusion.input_weights(), recentred.fusion.input_weights())
    assert set(accuracies) == set(INPUTS)
    before, after = recentred.state_dict(), reweighted.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before if key != "fusion.input_logits")


def test_reweighting_refuses_epochs_that_would_train_it_away(
    small_run: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*small_run, "--out", str(tmp_path / "run"), "--epochs", "1", "--reweight"]) == 1
    assert "pass --epochs 0 (with --init), or drop --reweight" in capsys.readouterr().err
