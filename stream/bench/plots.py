"""The benchmark's plots: ceiling / naive / pipeline bars, throughput against offered load, freshness CDFs,
the vector set's recall against latency by search effort."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt

from stream.bench.index import Build
from stream.bench.report import throughput_rows
from stream.bench.stats import cdf


def plot_bench(report: dict[str, Any], samples: dict[str, list[float]], out_dir: Path) -> list[Path]:
    """Write ``bench-throughput.png``, when freshness ran ``bench-load.png`` and ``bench-freshness.png``, and
    when the index ran ``bench-index.png``.

    Args:
        report: what ``toyfuse bench`` writes to ``bench.json``.
        samples: freshness samples in seconds, by curve label.
        out_dir: where the files go.

    Returns:
        The files written.
    """
    written = []
    rows = throughput_rows(report)
    if rows:
        figure, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 4), squeeze=False)
        for axis, (name, unit, top, base, pipe) in zip(axes[0], rows, strict=True):
            axis.bar(
                ["ceiling", "naive", "pipeline"], [top, base, pipe], color=["#4c72b0", "#c44e52", "#55a868"]
            )
            axis.set_title(f"{name}: {unit}")
        written.append(_save(figure, out_dir / "bench-throughput.png"))
    loads = (report.get("freshness") or {}).get("loads")
    if loads:
        figure, axis = plt.subplots(figsize=(5, 4))
        offered = [load["offered_per_s"] for load in loads]
        axis.plot(offered, [load["per_s"] for load in loads], "o-", label="achieved")
        axis.plot(offered, offered, "--", color="grey", label="offered")
        axis.set_xlabel("offered listings/s")
        axis.set_ylabel("stored listings/s")
        axis.legend()
        written.append(_save(figure, out_dir / "bench-load.png"))
    if samples:
        figure, axis = plt.subplots(figsize=(6, 4))
        for label, seconds in samples.items():
            values, shares = cdf(seconds)
            axis.plot(values, shares, label=label)
        axis.axvline(1.0, color="grey", linestyle=":", label="1 s")
        axis.set_xlabel("produced -> stored (s)")
        axis.set_ylabel("share of events")
        axis.legend()
        written.append(_save(figure, out_dir / "bench-freshness.png"))
    if report.get("index"):
        written.append(_plot_efforts(report["index"], out_dir / "bench-index.png"))
    return written


def _plot_efforts(section: dict[str, Any], path: Path) -> Path:
    """Recall@10 against p99 latency, one curve per build and case, each point labelled by its effort."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for result in section["builds"]:
        for case, key in (("unfiltered", "ef"), ("filtered", "filter_ef")):
            sweep = result["search"][case]["sweep"]
            p99 = [point["latency"]["p99_ms"] for point in sweep]
            axis.plot(
                p99, [point["recall@10"] for point in sweep], "o-", label=f"{Build.of(result).label()} {case}"
            )
            for x, point in zip(p99, sweep, strict=True):
                axis.annotate(str(point[key]), (x, point["recall@10"]), fontsize=7)
    axis.set_xlabel("VSIM p99 (ms); labels: EF unfiltered, FILTER-EF filtered")
    axis.set_ylabel("recall@10")
    axis.legend()
    return _save(figure, path)


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
