"""Embed cached features with a trained model and score retrieval of the same product on a split."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stream.contracts.shapes import MODALITIES
from stream.model.fusion import ListingBatch, ListingModel
from stream.train.cache import FeatureSet
from stream.train.data import Rows, take
from stream.train.ranking import retrieval_metrics

EMBED_CHUNK = 256
ENGLISH_PREFIX = "en"


def keep_modalities(batch: ListingBatch, modalities: Sequence[str]) -> ListingBatch:
    """The batch with every modality outside ``modalities`` marked absent."""
    allowed = torch.tensor([name in modalities for name in MODALITIES], dtype=batch.modality_mask.dtype)
    return batch._replace(modality_mask=batch.modality_mask * allowed)


@torch.inference_mode()
def embed(model: ListingModel, batch: ListingBatch) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Fused vectors [N, d] and modality weights [N, 4] of a batch, in evaluation mode."""
    model.eval()
    fused, weights = [], []
    for start in range(0, len(batch.text), EMBED_CHUNK):
        rows = np.arange(start, min(start + EMBED_CHUNK, len(batch.text)), dtype=np.int64)
        vectors, modality_weights = model(take(batch, rows))
        fused.append(vectors.numpy())
        weights.append(modality_weights.numpy())
    return np.concatenate(fused), np.concatenate(weights)


def query_sources(features: FeatureSet) -> Rows:
    """One query per product: the row of its first English listing (its first listing if none is English).

    The query text is that listing's title without the brand; the listing itself is excluded from the
    query's candidates, so the query must find the product's other listings.
    """
    chosen: dict[str, int] = {}
    for row, (family, locale) in enumerate(zip(features.families, features.locales, strict=True)):
        english = str(locale).startswith(ENGLISH_PREFIX)
        if family not in chosen or (
            english and not str(features.locales[chosen[family]]).startswith(ENGLISH_PREFIX)
        ):
            chosen[family] = row
    return np.array(sorted(chosen.values()), dtype=np.int64)


def listing_metrics(vectors: NDArray[np.floating[Any]], families: Sequence[str]) -> dict[str, float]:
    """Each listing queries all others; relevant = the other listings of its product."""
    return retrieval_metrics(vectors, families, vectors, families, np.eye(len(families), dtype=bool))


def query_metrics(
    queries: NDArray[np.floating[Any]],
    sources: Rows,
    candidates: NDArray[np.floating[Any]],
    families: Sequence[str],
) -> dict[str, float]:
    """Text queries (one per row of ``sources``) against all candidates but their own source listing."""
    excluded = np.zeros((len(sources), len(candidates)), dtype=bool)
    excluded[np.arange(len(sources)), sources] = True
    return retrieval_metrics(queries, [families[s] for s in sources], candidates, families, excluded)


def fusion_scores(model: ListingModel, features: FeatureSet, modalities: Sequence[str]) -> dict[str, float]:
    """Listing and (when text is allowed) query Recall@1/MRR of the learned fusion; ``score`` is their mean.

    Only listings that keep at least one allowed modality take part.
    """
    batch = keep_modalities(features.listing_batch(), modalities)
    rows = np.flatnonzero(batch.modality_mask.sum(dim=1).numpy() > 0).astype(np.int64)
    subset = features.subset(rows)
    vectors, _ = embed(model, take(batch, rows))
    listing = listing_metrics(vectors, list(subset.families))
    scores = {"listing_recall@1": listing["recall@1"], "listing_mrr": listing["mrr"]}
    if "text" in modalities:
        sources = query_sources(subset)
        queries, _ = embed(model, take(subset.query_batch(), sources))
        query = query_metrics(queries, sources, vectors, list(subset.families))
        scores |= {"query_recall@1": query["recall@1"], "query_mrr": query["mrr"]}
    recalls = [value for name, value in scores.items() if name.endswith("recall@1")]
    return scores | {"score": float(np.mean(recalls))}
