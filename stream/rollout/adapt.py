"""``toyfuse rollout adapt``: the served fusion adapted to the stored catalog, without labels or training.

Listings are sampled from Redis (their stored per-modality vectors, the fusion's inputs). The served
network's blocks are recentred on them and, unless told not to, its block weights are scaled by each
input's estimated reliability there (:mod:`stream.train.reliability`). The result is exported into a
model repository of its own, which ``toyfuse rollout start`` then puts into service like any new model.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from stream.config import Settings
from stream.errors import RolloutError, SettingsError
from stream.features.vectors import FloatArray
from stream.model.fusion import ListingModel
from stream.model.loading import load_exported
from stream.rollout.fusing import fusion_inputs
from stream.rollout.registry import RolloutRegistry
from stream.rollout.service import opened
from stream.train.export import Exported, export_model
from stream.train.reliability import reweight_fusion

MIN_LISTINGS = 10  # fewer stored listings say nothing about the catalog


@dataclass(frozen=True)
class Adapted:
    """What ``rollout adapt`` did."""

    listings: int  # stored listings it was adapted on
    accuracies: dict[str, float] | None  # each input's estimated accuracy (None: not reweighted)
    exported: Exported


async def sampled_vectors(registry: RolloutRegistry, sample: int, batch: int) -> list[dict[str, FloatArray]]:
    """The stored vectors of up to ``sample`` live listings, in the order Redis scans them."""
    cursor, first, seen = 0, True, set()
    vectors: list[dict[str, FloatArray]] = []
    while (first or cursor != 0) and len(vectors) < sample:
        cursor, listing_ids = await registry.scan(cursor, batch)
        first = False
        fresh = [listing_id for listing_id in listing_ids if listing_id not in seen]
        seen.update(fresh)
        snapshots = await registry.read(fresh) if fresh else []
        vectors += [snapshot.vectors for snapshot in snapshots if snapshot.model_version]
    return vectors[:sample]


@torch.no_grad()
def adapt_model(
    model: ListingModel, vectors: Sequence[Mapping[str, FloatArray]], dims: Mapping[str, int], reweight: bool
) -> dict[str, float] | None:
    """Recentre ``model``'s blocks on these listings' stored vectors and, with ``reweight``, scale its block
    weights by reliability (in place; no labels read); returns the estimated accuracies when reweighted.

    Raises:
        SettingsError: the fusion has no centred blocks, or (reweighting) fewer than three inputs are stored.
    """
    config = model.config
    if config.fusion_kind != "blocks" or not config.center_blocks:
        raise SettingsError(
            f"the served fusion ({config.fusion_kind}, center_blocks {config.center_blocks}) has no centred "
            "blocks to adapt; train and export a block fusion (the default), then adapt it"
        )
    arrays, mask = fusion_inputs(vectors, dims)
    inputs = tuple(torch.from_numpy(array) for array in arrays)
    present = torch.from_numpy(mask)[:, model.fusion.token_modality] > 0
    model.eval()
    model.fusion.recentre(inputs, present)
    return reweight_fusion(model.fusion, inputs, present) if reweight else None


async def adapt(settings: Settings, out: Path, *, sample: int, batch: int, reweight: bool) -> Adapted:
    """Adapt the served fusion to ``sample`` stored listings and export it into ``out``.

    Raises:
        SettingsError: ``out`` is the served repository, or the model cannot be adapted.
        RolloutError: fewer than :data:`MIN_LISTINGS` listings are stored.
    """
    if out.resolve() == settings.model_repository.resolve():
        raise SettingsError(
            f"--out {out} is the served model repository; write the adapted model elsewhere and roll it out "
            "with `toyfuse rollout start --model-repository`"
        )
    model = load_exported(settings.model_repository)
    async with opened(settings) as (registry, _):
        vectors = await sampled_vectors(registry, sample, batch)
    if len(vectors) < MIN_LISTINGS:
        raise RolloutError(
            f"only {len(vectors)} listings are stored; adapting needs at least {MIN_LISTINGS}: let the worker "
            "embed the catalog first"
        )
    accuracies = adapt_model(model, vectors, model.config.input_dims(), reweight)
    return Adapted(len(vectors), accuracies, export_model(model, out))
