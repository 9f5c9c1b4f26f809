"""Bar charts of an evaluation report (matplotlib, written to a PNG)."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt

PANELS = (
    ("listing_to_listing", "Listing -> same product"),
    ("query_to_listing", "Text query -> listing"),
    ("missing_modality", "Learned fusion, modality removed"),
)
METRICS = ("recall@1", "recall@10", "ndcg@10", "mrr")


def plot_report(report: dict[str, Any], path: Path) -> None:
    """One panel per table: a group of bars per method, one bar per metric."""
    figure, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4.5))
    width = 0.8 / len(METRICS)
    for axis, (table, title) in zip(axes, PANELS, strict=True):
        methods = list(report[table])
        for offset, metric in enumerate(METRICS):
            positions = [i + (offset - (len(METRICS) - 1) / 2) * width for i in range(len(methods))]
            axis.bar(positions, [report[table][m][metric] for m in methods], width, label=metric)
        axis.set_xticks(range(len(methods)), methods, rotation=35, ha="right")
        axis.set_ylim(0, 1)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper right", ncol=len(METRICS))
    figure.suptitle(f"{report['split']} split: {report['listings']} listings, {report['products']} products")
    figure.tight_layout(rect=(0.0, 0.0, 1.0, 0.92))
    figure.savefig(path, dpi=110)
    plt.close(figure)
