"""``toyfuse rollout compare``: how much the shadow set's neighbours differ from live, and Recall@1 of each."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stream.model.fusion import ListingModel
from stream.model.loading import load_exported
from stream.rollout.registry import RolloutRegistry, RolloutState
from stream.train.cache import load
from stream.train.ranking import retrieval_metrics

K = 10


def overlap_at_k(live: Sequence[str], shadow: Sequence[str], k: int = K) -> float:
    """Share of the first ``k`` live neighbours that are also among the first ``k`` shadow ones (pure).

    >>> overlap_at_k(["a", "b"], ["b", "c"], 2)
    0.5
    """
    return len(set(live[:k]) & set(shadow[:k])) / k


async def neighbour_overlap(registry: RolloutRegistry, state: RolloutState, sample: int) -> dict[str, Any]:
    """Mean overlap@10 between the live and shadow neighbours of up to ``sample`` shadow listings."""
    live_set = await registry.searched_set()
    listing_ids = await registry.random_members(state.vector_set, sample)
    pairs = [await registry.neighbours(key, listing_ids, K) for key in (live_set, state.vector_set)]
    overlaps = [
        overlap_at_k(live, shadow)
        for live, shadow in zip(*pairs, strict=True)
        if live is not None and shadow is not None
    ]
    return {"listings": len(overlaps), f"overlap@{K}": float(np.mean(overlaps)) if overlaps else None}


@torch.inference_mode()
def recall_at_1(model: ListingModel, features: Path) -> float:
    """Listing -> same-product Recall@1 of a network's fused vectors on a cached evaluation catalog."""
    cached = load(features)
    fused, _ = model.eval()(cached.listing_batch())
    families = list(cached.families)
    metrics = retrieval_metrics(
        fused.numpy(), families, fused.numpy(), families, np.eye(len(families), dtype=bool)
    )
    return metrics.get("recall@1", float("nan"))


def catalog_recall(served: Path, state: RolloutState, features: Path) -> dict[str, float]:
    """Recall@1 of the served and the rolled-out networks on the evaluation catalog ``features``."""
    return {
        "live": recall_at_1(load_exported(served), features),
        "shadow": recall_at_1(load_exported(state.repository), features),
    }


def format_table(report: dict[str, Any]) -> str:
    """The comparison as a plain-text table (pure)."""
    rows: list[tuple[str, str, str]] = [
        ("metric", "live", "shadow"),
        ("version", report["live_version"], report["shadow_version"]),
    ]
    rows.append(
        (f"neighbour overlap@{K} ({report['listings']} listings)", "", _number(report[f"overlap@{K}"]))
    )
    if "recall@1" in report:
        recall = report["recall@1"]
        rows.append(("Recall@1 (evaluation catalog)", _number(recall["live"]), _number(recall["shadow"])))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
