"""The worker's figures from two scrapes of its metrics: rates, histogram quantiles and lag (pure)."""

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from stream.status.scrape import Bucket, Scrape

Window = Literal["interval", "since_start"]
FRESHNESS_METRICS = {
    "event_time": "toyfuse_embedding_freshness_seconds",
    "produce_time": "toyfuse_embedding_freshness_from_produce_seconds",
}


def increase(before: float, after: float) -> float:
    """How much a counter grew between two samples; a counter that went down was reset, so all of
    ``after`` is new (as Prometheus' ``increase`` counts it).

    >>> increase(10.0, 15.0), increase(10.0, 3.0)
    (5.0, 3.0)
    """
    return after - before if after >= before else after


def rate(before: float, after: float, seconds: float) -> float:
    """Per-second growth of a counter between two samples ``seconds`` apart.

    Raises:
        ValueError: ``seconds`` is not positive.

    >>> rate(10.0, 16.0, 2.0)
    3.0
    """
    if seconds <= 0:
        raise ValueError(f"two samples must be apart in time to give a rate, got {seconds} s")
    return increase(before, after) / seconds


def bucket_increase(before: Sequence[Bucket], after: Sequence[Bucket]) -> list[Bucket]:
    """The observations a histogram gained between two scrapes, as cumulative buckets.

    A histogram whose bounds changed or whose any bucket went down was reset: all of ``after`` is new.

    >>> bucket_increase([(1.0, 2.0), (math.inf, 3.0)], [(1.0, 5.0), (math.inf, 7.0)])
    [(1.0, 3.0), (inf, 4.0)]
    """
    if [b for b, _ in before] != [b for b, _ in after] or any(
        new < old for (_, old), (_, new) in zip(before, after, strict=True)
    ):
        return list(after)
    return [(bound, new - old) for (bound, old), (_, new) in zip(before, after, strict=True)]


def histogram_quantile(q: float, buckets: Sequence[Bucket]) -> float | None:
    """The ``q``-quantile of a histogram, interpolated linearly inside its bucket, as Prometheus does.

    Args:
        q: between 0 and 1.
        buckets: cumulative counts by upper bound, sorted, +Inf last; the first bucket starts at 0.

    Returns:
        The estimate, None when the histogram is empty. A quantile in the +Inf bucket is the highest
        finite bound (nothing more is known).

    Raises:
        ValueError: ``q`` is outside [0, 1] or the last bucket is not +Inf.

    >>> histogram_quantile(0.5, [(1.0, 1.0), (2.0, 3.0), (math.inf, 4.0)])
    1.5
    """
    if not 0 <= q <= 1:
        raise ValueError(f"a quantile is between 0 and 1, got {q}")
    if not buckets or buckets[-1][0] != math.inf:
        raise ValueError("a histogram's last bucket is +Inf; the page is cut short")
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0] if len(buckets) > 1 else None
    lower, below = buckets[index - 1] if index > 0 else (0.0, 0.0)
    upper, count = buckets[index]
    inside = count - below
    return upper if inside <= 0 else lower + (upper - lower) * (rank - below) / inside


def beyond_top(q: float, buckets: Sequence[Bucket]) -> bool:
    """Whether the ``q``-quantile lies above the highest finite bound (its value then is only a floor).

    >>> beyond_top(0.5, [(1.0, 1.0), (math.inf, 4.0)]), beyond_top(0.25, [(1.0, 1.0), (math.inf, 4.0)])
    (True, False)
    """
    finite = buckets[-2][1] if len(buckets) > 1 else 0.0
    return q * buckets[-1][1] > finite


@dataclass(frozen=True)
class Freshness:
    """Quantiles of a freshness histogram, over the sample interval or, when it saw nothing new then,
    over everything since the worker started."""

    p50_s: float | None
    p99_s: float | None
    events: float
    window: Window
    beyond: list[str] = field(default_factory=list)  # quantiles above the highest bound: at least their value


def freshness(before: Sequence[Bucket] | None, after: Sequence[Bucket]) -> Freshness:
    """Freshness over the interval between two scrapes, else the whole histogram (said by ``window``)."""
    gained = bucket_increase(before, after) if before is not None else []
    window: Window = "interval" if gained and gained[-1][1] > 0 else "since_start"
    buckets = gained if window == "interval" else list(after)
    quantiles = {"p50": 0.5, "p99": 0.99}
    return Freshness(
        histogram_quantile(0.5, buckets),
        histogram_quantile(0.99, buckets),
        buckets[-1][1],
        window,
        [name for name, q in quantiles.items() if buckets[-1][1] > 0 and beyond_top(q, buckets)],
    )


@dataclass(frozen=True)
class TopicLag:
    """A topic's records the worker's group has not committed: in all, and on its worst partition."""

    messages: float
    worst_partition: int
    worst_partition_messages: float
    commit_age_s: float | None  # the oldest commit among its partitions


def lag_by_topic(
    lag: Mapping[tuple[str, ...], float], commit_age: Mapping[tuple[str, ...], float]
) -> dict[str, TopicLag]:
    """Sum the lag per topic and find its worst partition (the lowest-numbered on a tie).

    Args:
        lag: records behind, by (topic, partition).
        commit_age: seconds since the last commit moved, by (topic, partition).

    >>> lag_by_topic({("t", "0"): 2.0, ("t", "1"): 5.0}, {("t", "0"): 1.0, ("t", "1"): 4.0})
    {'t': TopicLag(messages=7.0, worst_partition=1, worst_partition_messages=5.0, commit_age_s=4.0)}
    """
    partitions: dict[str, dict[int, float]] = defaultdict(dict)
    for (topic, partition), behind in lag.items():
        partitions[topic][int(partition)] = behind
    ages: dict[str, list[float]] = defaultdict(list)
    for (topic, _), age in commit_age.items():
        ages[topic].append(age)
    found = {}
    for topic, by_partition in sorted(partitions.items()):
        worst = min(by_partition, key=lambda p: (-by_partition[p], p))
        oldest = max(ages[topic]) if ages[topic] else None
        found[topic] = TopicLag(sum(by_partition.values()), worst, by_partition[worst], oldest)
    return found


@dataclass(frozen=True)
class WorkerFigures:
    """What the worker's metrics say, the rates over the ``interval_s`` between two scrapes."""

    interval_s: float
    throughput: dict[str, float]  # events handled per second, by topic
    lag: dict[str, TopicLag]
    freshness: dict[str, dict[str, Freshness]]  # by kind (event_time, produce_time), then topic
    batches_in_flight: dict[str, float]
    deadletters: dict[str, float]  # by reason, since the worker started
    model_info: dict[str, str]


def worker_figures(before: Scrape, after: Scrape) -> WorkerFigures:
    """Read the figures of ``toyfuse status`` off two scrapes of the worker's ``/metrics``.

    Raises:
        ValueError: ``after`` was not taken after ``before``, or a histogram lacks its +Inf bucket.
    """
    seconds = after.taken_at - before.taken_at
    processed = "toyfuse_events_processed_total"
    earlier = before.sum_by(processed, "topic")
    throughput = {
        topic: rate(earlier.get(topic, 0.0), count, seconds)
        for topic, count in sorted(after.sum_by(processed, "topic").items())
    }
    info = after.samples.get("toyfuse_model_info", ())
    return WorkerFigures(
        interval_s=seconds,
        throughput=throughput,
        lag=lag_by_topic(
            after.by_labels("toyfuse_consumer_lag_messages", "topic", "partition"),
            after.by_labels("toyfuse_consumer_commit_age_seconds", "topic", "partition"),
        ),
        freshness={kind: _freshness(before, after, name) for kind, name in FRESHNESS_METRICS.items()},
        batches_in_flight=after.sum_by("toyfuse_batches_in_flight", "topic"),
        deadletters=dict(sorted(after.sum_by("toyfuse_deadletter_total", "reason").items())),
        model_info=dict(info[0].labels) if info else {},
    )


def _freshness(before: Scrape, after: Scrape, name: str) -> dict[str, Freshness]:
    earlier = before.histograms(name, "topic")
    return {
        topic: freshness(earlier.get(topic), buckets)
        for topic, buckets in sorted(after.histograms(name, "topic").items())
    }
