"""One scrape of a Prometheus text page, and the series `toyfuse status` reads from it (pure)."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

Bucket = tuple[float, float]  # (upper bound ``le``, cumulative count), +Inf last


class Sample(NamedTuple):
    """One line of the page: its labels and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """The samples of one page by sample name, and when it was read (monotonic seconds)."""

    taken_at: float
    samples: Mapping[str, tuple[Sample, ...]]

    def sum_by(self, name: str, label: str) -> dict[str, float]:
        """The values of ``name`` summed over every label but ``label``.

        >>> page = 'c_total{topic="a",outcome="x"} 2\\nc_total{topic="a",outcome="y"} 3\\n'
        >>> parse_scrape(page, 0.0).sum_by("c_total", "topic")
        {'a': 5.0}
        """
        sums: dict[str, float] = defaultdict(float)
        for sample in self.samples.get(name, ()):
            sums[sample.labels.get(label, "")] += sample.value
        return dict(sums)

    def by_labels(self, name: str, *labels: str) -> dict[tuple[str, ...], float]:
        """The values of ``name`` keyed by the given labels' values (the last sample wins on a tie)."""
        return {
            tuple(sample.labels.get(label, "") for label in labels): sample.value
            for sample in self.samples.get(name, ())
        }

    def histograms(self, name: str, label: str) -> dict[str, list[Bucket]]:
        """The buckets of histogram ``name`` per value of ``label``, summed over its other labels.

        Args:
            name: the histogram's name, without ``_bucket``.
            label: the label to keep, e.g. ``topic``.

        Returns:
            Per label value, the cumulative buckets sorted by upper bound (+Inf last).
        """
        counts: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for sample in self.samples.get(f"{name}_bucket", ()):
            counts[sample.labels.get(label, "")][float(sample.labels["le"])] += sample.value
        return {key: sorted(buckets.items()) for key, buckets in counts.items()}


def parse_scrape(text: str, taken_at: float) -> Scrape:
    """Read a page in the Prometheus text format.

    Args:
        text: the page, as ``/metrics`` serves it.
        taken_at: when it was read (``time.monotonic()``), for rates between two scrapes.

    Returns:
        Its samples by sample name (``x_total``, ``x_bucket``, ``x_info``, ...).

    Raises:
        ValueError: the text is not in the Prometheus text format.
    """
    samples: dict[str, list[Sample]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append(Sample(dict(sample.labels), float(sample.value)))
    return Scrape(taken_at, {name: tuple(found) for name, found in samples.items()})
