"""Pure statistics of benchmark samples: percentiles, rates and recall."""

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

PERCENTILES = (50, 95, 99)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99, mean and max of latency samples, in milliseconds (empty: no samples).

    >>> latency_summary([0.001, 0.002, 0.003])["p50_ms"]
    2.0
    """
    if not seconds:
        return {}
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    summary = {f"p{p}_ms": float(np.percentile(values, p)) for p in PERCENTILES}
    return summary | {"mean_ms": float(values.mean()), "max_ms": float(values.max()), "samples": len(values)}


def rate(count: int, seconds: float) -> float:
    """Items per second (0.0 for an empty or instantaneous run).

    >>> rate(10, 2.0)
    5.0
    """
    return count / seconds if count and seconds > 0 else 0.0


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is zero (nothing to compare with)."""
    return numerator / denominator if denominator else None


def recall_at_k(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]]) -> float:
    """Mean share of each query's true top-k ids that the search returned (queries with no truth skipped).

    >>> recall_at_k([[1, 2], [3, 9]], [[1, 2], [3, 4]])
    0.75
    """
    shares = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True) if len(t)]
    return float(np.mean(shares)) if shares else 0.0


def cdf(seconds: Sequence[float]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sorted samples and their cumulative share, for a CDF plot."""
    values = np.sort(np.asarray(seconds, dtype=np.float64))
    return values, np.arange(1, len(values) + 1, dtype=np.float64) / max(len(values), 1)
