"""Contrastive objectives on L2-normalised embeddings: symmetric InfoNCE and batch-hard triplet."""

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F


@dataclass(frozen=True)
class LossWeights:
    """How the terms of :func:`fusion_loss` are mixed."""

    triplet: float = 0.5  # weight of the batch-hard triplet term beside InfoNCE
    margin: float = 0.2  # triplet margin, in cosine similarity
    query: float = 0.5  # weight of the text-query -> listing InfoNCE term


def info_nce(anchors: Tensor, positives: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE: row i of ``anchors`` and of ``positives`` match, every other row is a negative.

    Args:
        anchors: [P, d] unit vectors.
        positives: [P, d] unit vectors, ``positives[i]`` the positive of ``anchors[i]``.
        logit_scale: log of the inverse temperature (a learned scalar).

    Returns:
        The mean of the anchor->positive and positive->anchor cross-entropies.
    """
    logits = logit_scale.exp() * anchors @ positives.T
    targets = torch.arange(len(anchors), device=anchors.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def batch_hard_triplet(embeddings: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Triplet loss with the hardest positive and hardest negative of each anchor in the batch.

    Args:
        embeddings: [N, d] unit vectors.
        labels: [N] product labels; equal labels are positives.
        margin: required gap between positive and negative cosine similarity.

    Returns:
        mean over anchors that have a positive and a negative of ``relu(margin + s_neg - s_pos)``.
    """
    similarity = embeddings @ embeddings.T
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    hardest_positive = similarity.masked_fill(~positive, float("inf")).min(dim=1).values
    hardest_negative = similarity.masked_fill(same, float("-inf")).max(dim=1).values
    valid = positive.any(dim=1) & (~same).any(dim=1)
    if not valid.any():
        return embeddings.sum() * 0.0
    return F.relu(margin + hardest_negative[valid] - hardest_positive[valid]).mean()


def fusion_loss(
    first: Tensor, second: Tensor, queries: Tensor | None, logit_scale: Tensor, weights: LossWeights
) -> tuple[Tensor, dict[str, float]]:
    """The training objective for a batch of P products, each seen as two different listings.

    Args:
        first: [P, d] fused vectors of one listing per product.
        second: [P, d] fused vectors of another listing of the same products.
        queries: [P, d] text-only vectors of queries written from ``first``'s listings, or None.
        logit_scale: log inverse temperature.
        weights: how the terms are mixed.

    Returns:
        the total loss and each term's value (for logging).
    """
    listing = info_nce(first, second, logit_scale)
    labels = torch.arange(len(first), device=first.device).repeat(2)
    triplet = batch_hard_triplet(torch.cat([first, second]), labels, weights.margin)
    total = listing + weights.triplet * triplet
    parts = {"infonce": float(listing.detach()), "triplet": float(triplet.detach())}
    if queries is not None:
        query = info_nce(queries, second, logit_scale)
        total = total + weights.query * query
        parts["query"] = float(query.detach())
    return total, parts
