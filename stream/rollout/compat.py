"""Whether a new model repository can be rolled out from the stored vectors, or needs re-embedding."""

import json
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file

from stream.contracts.index import IndexSchema
from stream.errors import ReembedRequired, SettingsError
from stream.inference.listing import LISTING_MODEL
from stream.model.loading import ARCHITECTURE, FUSION, VIDEO_POOLING, WEIGHTS
from stream.store.versions import check_version

# The FusionConfig fields that shape the video pooling network (the others only concern fusion).
POOLING_FIELDS = (
    "image_dims",
    "frames",
    "video_pooling",
    "pooling_hidden",
    "netvlad_clusters",
    "netvlad_dim",
)
PARAMETER = re.compile(r'key:\s*"([^"]+)",\s*value:\s*\{\s*string_value:\s*"([^"]*)"')
REEMBED = "re-embed the listings from the source topics (`toyfuse replay` the events or re-produce them)"


def parameters(repository: Path, model: str) -> dict[str, str]:
    """The string parameters of ``<repository>/<model>/config.pbtxt`` (empty when it has none).

    Raises:
        SettingsError: the model has no config.pbtxt there.
    """
    path = repository / model / "config.pbtxt"
    try:
        return dict(PARAMETER.findall(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc}; is {repository} a Triton model repository?") from exc


def newest_version(repository: Path, model: str) -> int | None:
    """The highest numbered version folder of a model, as Triton serves it (None when there is none)."""
    folder = repository / model
    versions = (
        [int(child.name) for child in folder.iterdir() if child.name.isdigit()] if folder.is_dir() else []
    )
    return max(versions, default=None)


def fusion_version(repository: Path) -> str:
    """The ``model_version`` parameter ``toyfuse export`` wrote into the fusion config.

    Raises:
        SettingsError: there is none, or it cannot name a vector set.
    """
    version = parameters(repository, FUSION).get("model_version")
    if version is None:
        raise SettingsError(f"{repository / FUSION / 'config.pbtxt'} names no model_version; re-export it")
    return check_version(version)


def check_video_pooling(new: Path, served: Path) -> None:
    """Refuse a repository whose video pooling differs from the served one: stored ``vec:video`` is pooled.

    Raises:
        ReembedRequired: the architecture or a weight differs.
        SettingsError: a repository has no exported video pooling.
    """
    folders = [repository / VIDEO_POOLING / "1" for repository in (new, served)]
    try:
        configs = [json.loads((folder / ARCHITECTURE).read_text(encoding="utf-8")) for folder in folders]
        weights = [load_file(str(folder / WEIGHTS)) for folder in folders]
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"cannot read an exported video pooling: {exc}; run `toyfuse export` again"
        ) from exc
    same_shape = all(configs[0].get(name) == configs[1].get(name) for name in POOLING_FIELDS)
    same_weights = weights[0].keys() == weights[1].keys() and all(
        torch.equal(weights[0][name], weights[1][name]) for name in weights[0]
    )
    if not (same_shape and same_weights):
        raise ReembedRequired(
            f"the video pooling in {new} differs from the served one in {served}, and the stored video "
            f"vectors were pooled by the served one, so they cannot be re-fused; {REEMBED} with the new "
            "model served instead of `toyfuse rollout`"
        )


def encoder_models(schema: IndexSchema) -> list[str]:
    """The served models that make the stored per-modality vectors (not fusion nor video pooling)."""
    named = {field.model for field in schema.vectors.values() if field.model is not None}
    return sorted((named - {FUSION, VIDEO_POOLING}) | {LISTING_MODEL})


def check_encoders(new: Path, served: Path, schema: IndexSchema) -> str:
    """Refuse a repository that brings encoders other than the served ones.

    Returns:
        the encoder part of the model_version records must name, e.g. ``listing_embedder/1``.

    Raises:
        ReembedRequired: an encoder in ``new`` has another version or other parameters than the served one.
    """
    for model in encoder_models(schema):
        if not (new / model).is_dir():
            continue
        mine, theirs = (
            (newest_version(new, model), parameters(new, model)),
            (
                newest_version(served, model),
                parameters(served, model),
            ),
        )
        if mine != theirs:
            raise ReembedRequired(
                f"{new} brings {model} version {mine[0]} {mine[1]}, but {served} serves version {theirs[0]} "
                f"{theirs[1]}: a changed encoder changes the stored vectors; {REEMBED} with it served instead "
                "of `toyfuse rollout`"
            )
    return f"{LISTING_MODEL}/{newest_version(new, LISTING_MODEL) or newest_version(served, LISTING_MODEL)}"


def check_records(encoders: str, named: Iterable[tuple[str, str]]) -> None:
    """Refuse when a record was embedded by other encoders than the ones that will serve (pure).

    Args:
        encoders: what :func:`check_encoders` returned.
        named: ``(listing id, encoder part of its model_version)`` pairs.

    Raises:
        ReembedRequired: a record names other encoders.
    """
    for listing_id, record_encoders in named:
        if record_encoders != encoders:
            raise ReembedRequired(
                f"listing {listing_id} was embedded by {record_encoders!r}, but {encoders} serves now: its "
                f"vectors are not what the served encoders make; {REEMBED} instead of `toyfuse rollout`"
            )
