"""``toyfuse export``: write trained video pooling and fusion into a Triton model repository, versioned."""

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from stream.config import REPO_ROOT
from stream.contracts.shapes import MAX_BATCH, MODALITIES
from stream.errors import SettingsError
from stream.model.fusion import FusionConfig, ListingModel
from stream.model.loading import ARCHITECTURE, FUSION, VIDEO_POOLING, WEIGHTS

SOURCE_REPOSITORY = REPO_ROOT / "triton_models"  # where the models' model.py files live
INTRA_OP_THREADS = 1  # idle pool threads spin: one per instance leaves the other cores to the encoders


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote."""

    model_version: str
    folders: tuple[Path, ...]  # each model's version folder
    weight_bytes: int


def _unreadable(path: Path, exc: Exception) -> SettingsError:
    return SettingsError(f"cannot load checkpoint {path}: {exc}; pass a best.pt written by `toyfuse train`")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise _unreadable(path, exc) from exc
    return state


def load_checkpoint(path: Path) -> ListingModel:
    """The trained network saved by ``toyfuse train`` (best.pt / last.pt), in evaluation mode.

    Raises:
        SettingsError: the file is missing or is not a toyfuse checkpoint.
    """
    state = _read_checkpoint(path)
    try:
        model = ListingModel(FusionConfig(**state["config"]))
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise _unreadable(path, exc) from exc
    return model.eval()


def checkpoint_params(path: Path) -> dict[str, Any]:
    """The ``toyfuse train`` parameters saved in a checkpoint (features, split_seed, ...), as JSON values.

    Raises:
        SettingsError: the file is missing, is not a toyfuse checkpoint or records no parameters.
    """
    params = _read_checkpoint(path).get("params")
    if not isinstance(params, dict):
        raise _unreadable(path, KeyError("params"))
    return params


def model_version(model: ListingModel, today: date) -> str:
    """``fusion-<yyyymmdd>-<first 8 hex of the SHA-256 of every weight>``."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"fusion-{today:%Y%m%d}-{digest.hexdigest()[:8]}"


def _tensor_line(name: str, dims: list[int]) -> str:
    return f'  {{ name: "{name}", data_type: TYPE_FP32, dims: [ {", ".join(map(str, dims))} ] }}'


def _pbtxt(
    name: str, summary: str, inputs: dict[str, list[int]], outputs: dict[str, list[int]], version: str
) -> str:
    return "\n".join(
        [
            f"# {summary}",
            "# Written by `toyfuse export` (stream/train/export.py): re-export rather than edit.",
            f'name: "{name}"',
            'backend: "python"',
            f"max_batch_size: {MAX_BATCH}",
            "input [",
            ",\n".join(_tensor_line(n, d) for n, d in inputs.items()),
            "]",
            "output [",
            ",\n".join(_tensor_line(n, d) for n, d in outputs.items()),
            "]",
            "dynamic_batching { max_queue_delay_microseconds: 2000 }",
            "instance_group [ { count: 1, kind: KIND_AUTO } ]",
            "parameters [",
            f'  {{ key: "model_version", value: {{ string_value: "{version}" }} }},',
            f'  {{ key: "weights", value: {{ string_value: "{WEIGHTS}" }} }},',
            f'  {{ key: "architecture", value: {{ string_value: "{ARCHITECTURE}" }} }},',
            "  # torch threads per instance (stream/model/serving.py limit_threads; 0: one per core)",
            f'  {{ key: "intra_op_threads", value: {{ string_value: "{INTRA_OP_THREADS}" }} }}',
            "]",
            "",
        ]
    )


def fusion_pbtxt(config: FusionConfig, version: str) -> str:
    """config.pbtxt of the fusion model (tensor sizes from ``config``)."""
    inputs = {
        "TEXT_EMBEDDING": [config.text_dims],
        "TEXT_MULTILINGUAL_EMBEDDING": [config.text_multilingual_dims],
        "IMAGE_EMBEDDING": [config.image_dims],
        "VIDEO_EMBEDDING": [config.image_dims],
        "REVIEWS_EMBEDDING": [config.reviews_dims],
        "MODALITY_MASK": [len(MODALITIES)],
    }
    outputs = {"FUSED_EMBEDDING": [config.shared_dim], "MODALITY_WEIGHTS": [len(MODALITIES)]}
    summary = "Learned fusion of a listing's modality vectors (stream.model.fusion.FusionModel)."
    return _pbtxt(FUSION, summary, inputs, outputs, version)


def video_pooling_pbtxt(config: FusionConfig, version: str) -> str:
    """config.pbtxt of the video pooling model."""
    inputs = {"FRAME_EMBEDDINGS": [config.frames, config.image_dims], "FRAME_MASK": [config.frames]}
    summary = f"Learned {config.video_pooling} pooling of frame features (stream.model.fusion.VideoPooling)."
    return _pbtxt(VIDEO_POOLING, summary, inputs, {"VIDEO_EMBEDDING": [config.image_dims]}, version)


def _write_model(
    repository: Path, name: str, module: torch.nn.Module, config: FusionConfig, pbtxt: str, version: str
) -> Path:
    folder = repository / name / "1"
    folder.mkdir(parents=True, exist_ok=True)
    weights = {key: tensor.detach().cpu().contiguous() for key, tensor in module.state_dict().items()}
    save_file(weights, str(folder / WEIGHTS), metadata={"model_version": version})
    (folder / WEIGHTS).chmod(0o644)  # safetensors writes 0600; the server may run as another user
    config.write_json(folder / ARCHITECTURE)
    (repository / name / "config.pbtxt").write_text(pbtxt, encoding="utf-8")
    source = SOURCE_REPOSITORY / name / "1" / "model.py"
    if source.resolve() != (folder / "model.py").resolve():
        shutil.copyfile(source, folder / "model.py")
    return folder


def export(checkpoint: Path, repository: Path, today: date | None = None) -> Exported:
    """Write ``fusion`` and ``video_pooling`` (config.pbtxt, model.py, weights, architecture).

    Args:
        checkpoint: a checkpoint written by ``toyfuse train``.
        repository: the Triton model repository (e.g. ``triton_models/``).
        today: the date in the model version (default: today, UTC).

    Returns:
        the model version recorded in both config.pbtxt files, the folders and the weights' size.

    Raises:
        SettingsError: the checkpoint cannot be loaded.
    """
    return export_model(load_checkpoint(checkpoint), repository, today)


def export_model(model: ListingModel, repository: Path, today: date | None = None) -> Exported:
    """Write ``model`` as :func:`export` writes a checkpoint's."""
    config = model.config
    version = model_version(model, today or datetime.now(UTC).date())
    folders = (
        _write_model(repository, FUSION, model.fusion, config, fusion_pbtxt(config, version), version),
        _write_model(
            repository,
            VIDEO_POOLING,
            model.video_pooling,
            config,
            video_pooling_pbtxt(config, version),
            version,
        ),
    )
    return Exported(version, folders, sum((folder / WEIGHTS).stat().st_size for folder in folders))
