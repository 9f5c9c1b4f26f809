"""Whether a reduced-precision encoder may replace its fp32 reference: per-item cosine and retrieval (pure)."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.encoders.exceptions import AccuracyCheckFailed

MIN_COSINE = 0.99  # every item's cosine to its fp32 vector
# Listing -> same-product listing Recall@1 the candidate may lose. A gain is no loss of accuracy: on 120
# listings one query is 0.008, so a bound both ways refused an int8 export that found two more products
# than fp32 did (every cosine >= 0.9946).
MAX_RECALL_LOSS = 0.01

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AccuracyReport:
    """A candidate encoder's vectors against the reference's, on the same items."""

    min_cosine: float
    median_cosine: float
    worst_item: int  # index of the item with the lowest cosine
    reference_recall: float
    candidate_recall: float

    @property
    def recall_change(self) -> float:
        """Candidate minus reference Recall@1."""
        return self.candidate_recall - self.reference_recall


def unit(vectors: Vectors) -> Vectors:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def cosines(reference: Vectors, candidate: Vectors) -> Vectors:
    """Cosine of each candidate row to the reference row of the same item."""
    return np.asarray((unit(reference) * unit(candidate)).sum(axis=1), dtype=np.float32)


def recall_at_1(vectors: Vectors, labels: Sequence[str]) -> float:
    """Share of items whose nearest other item has their label, over items whose label another item has.

    >>> recall_at_1(np.eye(3, dtype=np.float32)[[0, 0, 1]], ["a", "a", "b"])
    1.0
    """
    keys = np.asarray(labels)
    similarity = unit(vectors) @ unit(vectors).T
    np.fill_diagonal(similarity, -np.inf)
    same = keys[:, None] == keys[None, :]
    np.fill_diagonal(same, False)
    queries = same.any(axis=1)
    if not queries.any():
        raise ValueError("recall needs at least two items with the same label")
    hits = keys[similarity.argmax(axis=1)] == keys
    return float(hits[queries].mean())


def compare(reference: Vectors, candidate: Vectors, labels: Sequence[str]) -> AccuracyReport:
    """How far ``candidate`` is from ``reference`` on items labelled by ``labels`` (e.g. their product)."""
    if reference.shape != candidate.shape or len(labels) != len(reference):
        raise ValueError(f"shapes differ: {reference.shape}, {candidate.shape}, {len(labels)} labels")
    item_cosines = cosines(reference, candidate)
    return AccuracyReport(
        min_cosine=float(item_cosines.min()),
        median_cosine=float(np.median(item_cosines)),
        worst_item=int(item_cosines.argmin()),
        reference_recall=recall_at_1(reference, labels),
        candidate_recall=recall_at_1(candidate, labels),
    )


def check(report: AccuracyReport, name: str) -> AccuracyReport:
    """``report`` if ``name`` passes: every cosine >= MIN_COSINE, Recall@1 at most MAX_RECALL_LOSS below the
    reference's.

    Raises:
        AccuracyCheckFailed: either bound is broken; the message gives both figures.
    """
    problems = []
    if report.min_cosine < MIN_COSINE:
        problems.append(f"item {report.worst_item} has cosine {report.min_cosine:.4f} < {MIN_COSINE}")
    if report.recall_change < -MAX_RECALL_LOSS:
        problems.append(
            f"Recall@1 {report.candidate_recall:.4f} vs {report.reference_recall:.4f} "
            f"(change {report.recall_change:+.4f}, at most {MAX_RECALL_LOSS} lost)"
        )
    if problems:
        raise AccuracyCheckFailed(f"{name} fails its accuracy check: {'; '.join(problems)}; serve it in fp32")
    return report
